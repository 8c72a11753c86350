/*
 * Unit tests for mta/reply.c, the one table of replies: every entry has a
 * code and an enhanced status code that agree (RFC 3463 2: the class digit
 * is the code's first digit, 2, 4 or 5), templates hold only "%s" marks,
 * rendering with arguments is byte for byte what the daemon sent before the
 * table existed (golden lines, table-driven), output is cut to the buffer
 * like snprintf, and reply_parse reads good lines and refuses bad ones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "mta/reply.h"

/* Enum markers between the blocks: they have no entry on purpose. */
static bool
is_marker(enum reply_id id)
{
	return id == R_NONE || id == R_SMTPD_FIRST_ || id == R_DELIVERY_FIRST_ ||
	       id == R_CONTROL_FIRST_;
}

/*
 * Replies that carry no enhanced code: the greeting and the HELO/EHLO
 * replies (RFC 2034 3); 3xx replies have no RFC 3463 class at all.
 */
static bool
may_lack_status(enum reply_id id)
{
	return id == R_GREETING || id == R_HELO || id == R_EHLO_HELLO || reply_code(id) / 100 == 3;
}

/* "c.sss.ddd" (RFC 3463 2): class one digit, subject and detail 1 to 3 digits. */
static bool
status_ok(const char *st, unsigned code)
{
	size_t subj = strspn(st + 2, "0123456789");
	size_t det = strspn(st + 2 + subj + 1, "0123456789");

	if (strlen(st) < 5 || st[1] != '.' || subj < 1 || subj > 3 || st[2 + subj] != '.' ||
	    det < 1 || det > 3 || st[2 + subj + 1 + det] != '\0')
		return false;
	return (st[0] == '2' || st[0] == '4' || st[0] == '5') &&
	       (unsigned)(st[0] - '0') == code / 100;
}

static void
test_every_entry_agrees(void **state)
{
	char line[1024], label[32];
	unsigned id;

	(void)state;
	for (id = 0; id < R__COUNT; id++) {
		unsigned code = reply_code((enum reply_id)id);
		const char *st = reply_status((enum reply_id)id);

		snprintf(label, sizeof(label), "reply id %u", id);
		if (is_marker((enum reply_id)id)) {
			if (code != 0)
				fail_msg("%s: a block marker has an entry", label);
			continue;
		}
		if (code < 200 || code > 599)
			fail_msg("%s: no entry in the table, or code %u outside 2xx-5xx", label,
			         code);
		if (st[0] == '\0') {
			if (!may_lack_status((enum reply_id)id))
				fail_msg("%s: code %u without an enhanced status code", label,
				         code);
		} else if (!status_ok(st, code)) {
			fail_msg("%s: status \"%s\" does not agree with code %u", label, st, code);
		}
		if (code < 400 && reply_class((enum reply_id)id) != RC_NONE)
			fail_msg("%s: a %u reply counts as a refusal", label, code);
		/* rendered with every mark empty: one line, no printf residue */
		reply_format(line, sizeof(line), (enum reply_id)id, "", "", "", "");
		if (strpbrk(line, "\r\n%") != NULL)
			fail_msg("%s: \"%s\" has CR, LF or a %% other than %%s", label, line);
		/* RFC 5321 4.5.3.1.5: 512 octets with CRLF, before any argument */
		if (strlen(line) + 2 > 512)
			fail_msg("%s: longer than a reply line may be", label);
	}
}

struct golden {
	const char *label;
	enum reply_id id;
	const char *a, *b;
	const char *want;
};

/* What the daemon sent before the table, byte for byte (integration tests compare these). */
static const struct golden goldens[] = {
    {"greeting", R_GREETING, "mx.test", NULL, "220 mx.test ESMTP mxrelay"},
    {"helo", R_HELO, "mx.test", NULL, "250 mx.test"},
    {"ehlo first line", R_EHLO_HELLO, "mx.test", "127.0.0.1", "250 mx.test Hello [127.0.0.1]"},
    {"helo syntax", R_HELO_SYNTAX, "EHLO", NULL, "501 5.5.4 Syntax: EHLO hostname"},
    {"mail ok", R_MAIL_OK, NULL, NULL, "250 2.1.0 Ok"},
    {"rcpt ok", R_RCPT_OK, NULL, NULL, "250 2.1.5 Ok"},
    {"bye", R_BYE, "mx.test", NULL, "221 2.0.0 mx.test Bye"},
    {"relay denied", R_RELAY_DENIED, "a@b.test", NULL, "554 5.7.1 <a@b.test>: Relay access denied"},
    {"bad sender", R_SENDER_BAD, "why", NULL, "501 5.1.7 Bad sender address syntax: why"},
    {"bad rcpt", R_RCPT_BAD, "why", NULL, "501 5.1.3 Bad recipient address syntax: why"},
    {"no dkim key", R_SENDER_NO_DKIM_KEY, "a@b.test", NULL,
     "550 5.7.1 <a@b.test>: no DKIM key for this sender domain; mail from it is not relayed "
     "unsigned"},
    {"size param", R_MSG_TOO_BIG, NULL, NULL, "552 5.3.4 Message size exceeds fixed limit"},
    {"auth challenge", R_AUTH_CHALLENGE, NULL, NULL, "334 "},
    {"auth username", R_AUTH_USERNAME, NULL, NULL, "334 VXNlcm5hbWU6"},
    {"auth need tls", R_AUTH_NEED_TLS, NULL, NULL,
     "538 5.7.11 Encryption required for requested authentication mechanism"},
    {"auth blocked close", R_AUTH_BLOCKED_CLOSE, "mx.test", NULL,
     "421 4.7.0 mx.test Too many failed authentication attempts, closing connection"},
    {"shutting down", R_SHUTTING_DOWN, "mx.test", NULL, "421 4.3.2 mx.test Service shutting down"},
    {"shutting down at accept", R_SHUTTING_DOWN_RETRY, "mx.test", NULL,
     "421 4.3.2 mx.test Service shutting down, try again later"},
    {"too many connections", R_TOO_MANY_CONNS, "mx.test", NULL,
     "421 4.7.0 mx.test Too many connections, try again later"},
    {"proxy untrusted", R_PROXY_UNTRUSTED, "mx.test", NULL,
     "421 4.7.0 mx.test Connect through the load balancer"},
    {"admin bounce", R_ADMIN_BOUNCE, NULL, NULL, "554 5.0.0 bounced by the administrator"},
    {"NULL argument", R_RELAY_DENIED, NULL, NULL, "554 5.7.1 <>: Relay access denied"},
};

static void
test_golden_lines(void **state)
{
	char line[512];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(goldens) / sizeof(goldens[0]); i++) {
		const struct golden *g = &goldens[i];
		n = reply_format(line, sizeof(line), g->id, g->a, g->b);
		if (strcmp(line, g->want) != 0 || n != strlen(g->want))
			fail_msg("%s: got \"%s\" (%zu), want \"%s\"", g->label, line, n, g->want);
	}
}

static void
test_format_text(void **state)
{
	char line[128];

	(void)state;
	assert_int_equal(reply_format_text(line, sizeof(line), R_TIMEOUT, "mx.test"),
	                 strlen("mx.test Timeout, closing connection"));
	assert_string_equal(line, "mx.test Timeout, closing connection");
	reply_format_text(line, sizeof(line), R_AUTH_PASSWORD);
	assert_string_equal(line, "UGFzc3dvcmQ6");
	/* an argument that looks like a format is copied, never interpreted */
	reply_format(line, sizeof(line), R_ADDR_REJECTED, "%s%n%d");
	assert_string_equal(line, "553 5.1.3 Address rejected: %s%n%d");
}

static size_t
vformat(char *buf, size_t len, enum reply_id id, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, id);
	n = reply_vformat(buf, len, id, ap);
	va_end(ap);
	return n;
}

static void
test_vformat(void **state)
{
	char line[128];

	(void)state;
	assert_int_equal(vformat(line, sizeof(line), R_EHLO_HELLO, "h", "::1"), 17);
	assert_string_equal(line, "250 h Hello [::1]");
}

struct cut {
	size_t len;
	const char *want;
};

static void
test_truncation(void **state)
{
	/* "421 4.3.2 mx.test Service shutting down" cut like snprintf, NUL always */
	static const struct cut cuts[] = {
	    {1, ""},
	    {2, "4"},
	    {4, "421"},
	    {11, "421 4.3.2 "},
	    {14, "421 4.3.2 mx."},
	    {19, "421 4.3.2 mx.test "},
	    {20, "421 4.3.2 mx.test S"},
	    {40, "421 4.3.2 mx.test Service shutting down"},
	};
	char buf[64];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		memset(buf, 'x', sizeof(buf));
		n = reply_format(buf, cuts[i].len, R_SHUTTING_DOWN, "mx.test");
		assert_string_equal(buf, cuts[i].want);
		assert_int_equal(n, strlen(cuts[i].want));
		assert_int_equal(buf[cuts[i].len], 'x'); /* nothing past len */
	}
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(reply_format(buf, 0, R_SHUTTING_DOWN, "mx.test"), 0);
	assert_int_equal(buf[0], 'x');
}

static void
test_unknown_id(void **state)
{
	(void)state;
	assert_int_equal(reply_code(R__COUNT), 0);
	assert_string_equal(reply_status(R__COUNT), "");
	assert_int_equal(reply_class((enum reply_id) - 1), RC_NONE);
}

struct parse_case {
	const char *line;
	bool ok;
	unsigned code, cls, subj, det;
};

static const struct parse_case parses[] = {
    {"550 5.1.1 user unknown", true, 550, 5, 1, 1},
    {"250 2.0.0 Ok: queued as X", true, 250, 2, 0, 0},
    {"421-4.7.0 more follows", true, 421, 4, 7, 0},
    {"538 5.7.11", true, 538, 5, 7, 11},
    {"452 4.5.3 Too many", true, 452, 4, 5, 3},
    {"550 5.999.999 x", true, 550, 5, 999, 999},
    {"250 ok", false, 250, 0, 0, 0}, /* code alone still set */
    {"550 4.1.1 class mismatch", false, 550, 4, 1, 1},
    /* what remote servers really send: extra blanks, punctuation after the status */
    {"550 5.1.1x", true, 550, 5, 1, 1},
    {"550 5.7.1: Relay denied", true, 550, 5, 7, 1},
    {"451 4.7.1;x", true, 451, 4, 7, 1},
    {"550  5.1.1 x", true, 550, 5, 1, 1},
    {"550 5.1.1\tx", true, 550, 5, 1, 1},
    {"550-5.1.1 The email account that you tried to reach does not exist", true, 550, 5, 1, 1},
    {"550 5.1.1234 x", false, 550, 5, 1, 123},
    {"550 5.1234.1 x", false, 550, 5, 123, 0},
    {"550 5..1 x", false, 550, 5, 0, 0},
    {"550", false, 550, 0, 0, 0},
    {"199 1.0.0 x", false, 199, 0, 0, 0},
    {"600 6.0.0 x", false, 600, 0, 0, 0},
    {"55 5.1.1 x", false, 55, 0, 0, 0},
    {"abc", false, 0, 0, 0, 0},
    {"", false, 0, 0, 0, 0},
};

static void
test_parse(void **state)
{
	unsigned code, cls, subj, det;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(parses) / sizeof(parses[0]); i++) {
		const struct parse_case *p = &parses[i];
		bool ok = reply_parse(p->line, &code, &cls, &subj, &det);
		if (ok != p->ok || code != p->code ||
		    (ok && (cls != p->cls || subj != p->subj || det != p->det)))
			fail_msg("\"%s\": got %d %u %u.%u.%u", p->line, ok, code, cls, subj, det);
	}
	assert_false(reply_parse(NULL, &code, &cls, &subj, &det));
	assert_int_equal(code, 0);
}

/* Every rendered entry with a status reads back as its own code and status. */
static void
test_format_parses_back(void **state)
{
	char line[1024], st[16];
	unsigned id, code, cls, subj, det;

	(void)state;
	for (id = 1; id < R__COUNT; id++) {
		if (is_marker((enum reply_id)id) || reply_status((enum reply_id)id)[0] == '\0')
			continue;
		reply_format(line, sizeof(line), (enum reply_id)id, "a", "b", "c", "d");
		if (!reply_parse(line, &code, &cls, &subj, &det))
			fail_msg("reply id %u: \"%s\" does not parse", id, line);
		snprintf(st, sizeof(st), "%u.%u.%u", cls, subj, det);
		assert_int_equal(code, reply_code((enum reply_id)id));
		assert_string_equal(st, reply_status((enum reply_id)id));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_entry_agrees),
	    cmocka_unit_test(test_golden_lines),
	    cmocka_unit_test(test_format_text),
	    cmocka_unit_test(test_vformat),
	    cmocka_unit_test(test_truncation),
	    cmocka_unit_test(test_unknown_id),
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_format_parses_back),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
