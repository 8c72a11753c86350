/*
 * Unit tests for mta/delivery/bounce.c. Every built DSN is checked twice: in C for
 * the wire rules (CRLF only, lines <= 998 octets, 7-bit outside part 3), and
 * by an independent parser, Debian's /usr/bin/python3 with the stdlib email
 * package, for the MIME and RFC 3464 structure. The python script prints
 * key=value lines; each case lists lines it expects.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "mta/delivery/bounce.h"

#define PYTHON "/usr/bin/python3"

/* Parse argv[1] and print what the tests compare, one key=value per line. */
static const char py_script[] =
    "import sys, re, email, email.policy, email.utils\n"
    "sys.stdout.reconfigure(errors='backslashreplace')\n"
    "raw = open(sys.argv[1], 'rb').read()\n"
    "m = email.message_from_bytes(raw)\n"
    "def unfold(v): return re.sub(r'\\r?\\n(?=[ \\t])', '', str(v))\n"
    "def p(k, v): print('%s=%s' % (k, v))\n"
    "p('type', m.get_content_type())\n"
    "p('report-type', m.get_param('report-type'))\n"
    "parts = m.get_payload() if m.is_multipart() else []\n"
    "p('parts', len(parts))\n"
    "for i, part in enumerate(parts): p('part%d' % (i + 1), part.get_content_type())\n"
    "p('defects', sum(len(x.defects) for x in m.walk()))\n"
    "for h in ('From', 'Subject', 'Auto-Submitted', 'MIME-Version'): p(h.lower(), m[h])\n"
    "p('to', unfold(m['To']))\n"
    "d = email.message_from_bytes(raw, policy=email.policy.default)\n"
    "p('to-decoded', str(d['To']))\n"
    "p('date-ok', int(email.utils.parsedate_to_datetime(m['Date']).tzinfo is not None))\n"
    "p('msgid-ok', int(re.fullmatch(r'<[^<>@\\s]+@[^<>@\\s]+>', m['Message-ID']) is not None))\n"
    "ds = parts[1].get_payload()\n"
    "p('ds-blocks', len(ds))\n"
    "p('reporting-mta', ds[0]['Reporting-MTA'])\n"
    "p('arrival-ok', int(email.utils.parsedate_to_datetime(ds[0]['Arrival-Date']) is not None))\n"
    "for i, b in enumerate(ds[1:]):\n"
    "  for k in ('Final-Recipient', 'Action', 'Status', 'Remote-MTA', 'Diagnostic-Code'):\n"
    "    if b[k] is not None: p('rcpt%d.%s' % (i, k.lower()), unfold(b[k]))\n"
    "  p('rcpt%d.last-attempt-ok' % i, int(email.utils.parsedate_to_datetime(\n"
    "    b['Last-Attempt-Date']) is not None))\n"
    "  p('rcpt%d.fields' % i, ','.join(b.keys()))\n"
    "bad = ('x-evil', 'x-bad', 'bcc')\n"
    "p('injected', sum(k.lower() in bad for x in [m] + ds for k in x.keys()))\n"
    "text = parts[0].get_payload(decode=True).decode('ascii')\n"
    "p('text', ' '.join(text.split()))\n"
    "hb = parts[2].get_payload(decode=True)\n"
    "p('orig-bytes-ok', int(len(hb) <= 65536 + 1024))\n"
    "o = email.message_from_bytes(hb)\n"
    "sm = re.search(rb'^Subject: ?(.*?)\\r?$', hb, re.M | re.I)\n"
    "p('orig.subject', sm.group(1).decode('utf-8', 'replace') if sm else None)\n"
    "p('orig.fields', len(o.keys()))\n"
    "p('orig.has-body', int(b'Body-Secret' in hb))\n"
    "p('part3-cte', parts[2]['Content-Transfer-Encoding'])\n"
    "p('cte', m['Content-Transfer-Encoding'])\n";

/* Run the parser on BUF; returns its stdout (malloc'd), fails the test on a crash. */
static char *
python_parse(const char *buf, size_t len)
{
	char path[] = "/tmp/test_bounce.XXXXXX", *out = NULL;
	size_t olen = 0, cap = 0;
	int fd, pfd[2], status;
	ssize_t r;
	pid_t pid;

	assert_true((fd = mkstemp(path)) >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
	assert_int_equal(pipe(pfd), 0);
	assert_true((pid = fork()) >= 0);
	if (pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		execl(PYTHON, PYTHON, "-c", py_script, path, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		if (cap - olen < 4096) {
			cap = cap ? cap * 2 : 65536;
			assert_non_null(out = realloc(out, cap));
		}
		if ((r = read(pfd[0], out + olen, cap - olen - 1)) <= 0)
			break;
		olen += (size_t)r;
	}
	out[olen] = '\0';
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	unlink(path);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("python parser failed (status %d); output:\n%s", status, out);
	return out;
}

/*
 * EXPECT is "key=value" (the whole line), "key~text" (line contains text),
 * "key^text" (value starts with text) or "key$text" (value ends with text).
 */
static void
check_expect(const char *label, const char *out, const char *expect)
{
	size_t klen = strcspn(expect, "=~^$");
	char op = expect[klen];
	const char *want = expect + klen + 1, *line = out;

	assert_true(op != '\0');
	while (line != NULL && *line != '\0') {
		const char *eol = strchr(line, '\n');
		size_t llen = eol ? (size_t)(eol - line) : strlen(line);

		if (llen > klen && strncmp(line, expect, klen) == 0 && line[klen] == '=') {
			const char *v = line + klen + 1;
			size_t vlen = llen - klen - 1, wlen = strlen(want);
			int ok;

			if (op == '=')
				ok = vlen == wlen && memcmp(v, want, wlen) == 0;
			else if (op == '^')
				ok = vlen >= wlen && memcmp(v, want, wlen) == 0;
			else if (op == '$')
				ok = vlen >= wlen && memcmp(v + vlen - wlen, want, wlen) == 0;
			else
				ok = memmem(v, vlen, want, wlen) != NULL;
			if (ok)
				return;
			fail_msg("%s: want %s, got %.*s", label, expect, (int)llen, line);
		}
		line = eol ? eol + 1 : NULL;
	}
	fail_msg("%s: no %.*s in parser output:\n%s", label, (int)klen, expect, out);
}

/*
 * The wire rules, checked byte by byte: every line ends CRLF, no bare CR or
 * LF, no line over 998 octets, and no 8-bit byte before part 3's body
 * (which then must declare 8bit).
 */
static void
check_wire(const char *label, const char *m, size_t len)
{
	const char *p3 = strstr(m, "Content-Type: text/rfc822-headers\r\n");
	size_t i, linelen = 0, first8 = len;

	assert_non_null(p3);
	assert_int_equal(m[len], '\0');
	assert_true(len >= 2 && m[len - 2] == '\r' && m[len - 1] == '\n');
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)m[i];

		if (c == '\r') {
			if (i + 1 >= len || m[i + 1] != '\n')
				fail_msg("%s: bare CR at %zu", label, i);
			if (linelen > 998)
				fail_msg("%s: line of %zu octets at %zu", label, linelen, i);
			linelen = 0;
			i++;
			continue;
		}
		if (c == '\n')
			fail_msg("%s: bare LF at %zu", label, i);
		if (c == '\0')
			fail_msg("%s: NUL at %zu", label, i);
		if (c >= 0x80 && first8 == len)
			first8 = i;
		linelen++;
	}
	if (first8 < len) {
		if (m + first8 < p3)
			fail_msg("%s: 8-bit byte at %zu, before part 3", label, first8);
		if (strstr(p3, "Content-Transfer-Encoding: 8bit\r\n") == NULL)
			fail_msg("%s: 8-bit part 3 without CTE 8bit", label);
		/* The top-level header block ends at the first empty line. */
		if (memmem(m, (size_t)(strstr(m, "\r\n\r\n") - m) + 2,
		           "\r\nContent-Transfer-Encoding: 8bit\r\n", 35) == NULL)
			fail_msg("%s: 8-bit multipart without CTE 8bit", label);
	}
}

static const char orig_plain[] = "Received: from client.example\r\n"
                                 "Subject: Quarterly report\r\n"
                                 "From: Alice <alice@example.org>\r\n"
                                 "To: bob@example.net\r\n"
                                 "\r\n"
                                 "Body-Secret: this is the body, never returned\r\n";

static const char orig_8bit[] = "Subject: Gr\xc3\xbc\xc3\x9f"
                                "e aus K\xc3\xb6ln\r\n"
                                "From: j\xc3\xb6rg@example.org\r\n"
                                "\n" /* bare LF ends the header block too */
                                "Body-Secret: x\r\n";

/* Only a header block, no empty line, last line unterminated, odd bytes. */
static const char orig_headers_only[] = "Subject: no body\r\n"
                                        "X-Odd: cr\rinside and nul\0here\r\n"
                                        "X-Last: unterminated";

static const struct bounce_rcpt rcpts_failed[] = {
    {"bob@example.net", "5.1.1", "mx1.example.net",
     "550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown"},
    {"carol@example.net", NULL, NULL, "Host or domain name not found"},
    {"dave@example.net", "5.7.1", "mx2.example.net", NULL},
};

static const struct bounce_rcpt rcpts_delayed[] = {
    {"erin@example.com", "4.4.1", "mx.example.com", "421 4.4.1 Connection timed out"},
};

#define A100                                                                                       \
	"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" \
	"AAAAAAAAAAAA"
#define A1000 A100 A100 A100 A100 A100 A100 A100 A100 A100 A100
#define W100                                                                                       \
	"word word word word word word word word word word word word word word word word word wor" \
	"d word word "
#define W1000 W100 W100 W100 W100 W100 W100 W100 W100 W100 W100

static const struct bounce_rcpt rcpts_hostile[] = {
    {"j\xc3\xb6rg@ex\xc3\xa4mple.test", "5.1.1", "mx.example.test",
     "550-5.7.1 first line\r\n550-5.7.1 Injected: header\r\nX-Evil: yes\r\n\r\n--b\n"
     "550 5.7.1 last"},
    {"evil\r\nBcc: victim@example.test", "5.1.1\r\nX-Bad: 1", "mx.example\r\nX-Bad: 1",
     "550 " A1000 A1000},
    {"plain+tag@example.test", "9.9.9", NULL, "550 " W1000 W1000},
    {"bad\xff\xfe@example.test", "5.1.10", "[192.0.2.1]", "5\r\n"},
};

static char big_orig[200 * 1024];

/* 200 KiB of header lines (one of 5000 octets) before the body. */
static void
make_big_orig(void)
{
	size_t off = 0, i;

	off += (size_t)snprintf(big_orig, sizeof big_orig, "Subject: big header\r\nX-Long: ");
	memset(big_orig + off, 'L', 5000);
	off += 5000;
	memcpy(big_orig + off, "\r\n", 2);
	off += 2;
	for (i = 0; off + 100 < sizeof big_orig - 64; i++)
		off += (size_t)snprintf(
		    big_orig + off, sizeof big_orig - off, "X-Filler-%06zu: %s\r\n", i,
		    "0123456789012345678901234567890123456789012345678901234567");
	snprintf(big_orig + off, sizeof big_orig - off, "\r\nBody-Secret: x\r\n");
}

static const struct {
	const char *label;
	struct bounce_info bi;
	const char *expect[40];
} cases[] = {
    {"failed, three recipients",
     {"mx.relay.test", "0123456789abcdef", "alice@example.org", 1700000000, 0, rcpts_failed, 3,
      orig_plain, sizeof orig_plain - 1, NULL},
     {"type=multipart/report",
      "report-type=delivery-status",
      "parts=3",
      "part1=text/plain",
      "part2=message/delivery-status",
      "part3=text/rfc822-headers",
      "defects=0",
      "from=Mail Delivery System <MAILER-DAEMON@mx.relay.test>",
      "to=<alice@example.org>",
      "subject=Undelivered Mail Returned to Sender",
      "auto-submitted=auto-replied",
      "mime-version=1.0",
      "date-ok=1",
      "msgid-ok=1",
      "reporting-mta=dns; mx.relay.test",
      "arrival-ok=1",
      "ds-blocks=4",
      "rcpt0.final-recipient=rfc822; bob@example.net",
      "rcpt0.action=failed",
      "rcpt0.status=5.1.1",
      "rcpt0.remote-mta=dns; mx1.example.net",
      "rcpt0.diagnostic-code=smtp; 550 5.1.1 <bob@example.net>: Recipient address rejected:"
      " User unknown",
      "rcpt0.last-attempt-ok=1",
      "rcpt1.final-recipient=rfc822; carol@example.net",
      "rcpt1.status=5.0.0",
      "rcpt1.diagnostic-code=X-mxrelay; Host or domain name not found",
      "rcpt1.fields=Final-Recipient,Action,Status,Diagnostic-Code,Last-Attempt-Date",
      "rcpt2.fields=Final-Recipient,Action,Status,Remote-MTA,Last-Attempt-Date",
      "rcpt2.status=5.7.1",
      "text~bob@example.net: host mx1.example.net said: 550 5.1.1 <bob@example.net>:"
      " Recipient address rejected: User unknown (status 5.1.1)",
      "text~carol@example.net: Host or domain name not found (status 5.0.0)",
      "text~Queue ID: 0123456789abcdef",
      "orig.subject=Quarterly report",
      "orig.fields=4",
      "orig.has-body=0",
      "part3-cte=None",
      "cte=None",
      "injected=0"}},
    {"delayed, 8-bit original header",
     {"relay.example", "fedcba9876543210", "bob@example.com", 1700000000, 1, rcpts_delayed, 1,
      orig_8bit, sizeof orig_8bit - 1, NULL},
     {"type=multipart/report", "report-type=delivery-status", "parts=3", "defects=0",
      "subject=Delayed Mail (still being retried)", "ds-blocks=2",
      "rcpt0.final-recipient=rfc822; erin@example.com", "rcpt0.action=delayed",
      "rcpt0.status=4.4.1", "rcpt0.diagnostic-code=smtp; 421 4.4.1 Connection timed out",
      "text~has not been delivered yet",
      "orig.subject=Gr\xc3\xbc\xc3\x9f"
      "e aus K\xc3\xb6ln",
      "orig.fields=2", "orig.has-body=0", "part3-cte=8bit", "cte=8bit"}},
    {"hostile replies, addresses and sender",
     {"relay.example", "../\r\nX-Bad: 1", "b\xc3\xbcr\xc3\xb6@example.test", 0, 0, rcpts_hostile, 4,
      orig_headers_only, sizeof orig_headers_only - 1, NULL},
     {"type=multipart/report",
      "parts=3",
      "defects=0",
      "injected=0",
      "to-decoded~b\xc3\xbcr\xc3\xb6@example.test",
      "ds-blocks=5",
      "rcpt0.final-recipient=utf-8; j\\x{F6}rg@ex\\x{E4}mple.test",
      "rcpt0.diagnostic-code=smtp; 550-5.7.1 first line 550-5.7.1 Injected: header X-Evil:"
      " yes --b 550 5.7.1 last",
      "rcpt1.final-recipient^utf-8; evil\\x{D}\\x{A}Bcc:\\x{20}victim@example.test",
      "rcpt1.status=5.0.0",
      "rcpt1.remote-mta=dns; mx.example\\x{D}\\x{A}X-Bad:\\x{20}1",
      "rcpt1.diagnostic-code^smtp; 550 AAAAAAAA",
      "rcpt1.diagnostic-code$AAA...",
      "rcpt2.final-recipient=rfc822; plain+tag@example.test",
      "rcpt2.status=5.0.0",
      "rcpt2.diagnostic-code^smtp; 550 word word word",
      "rcpt2.diagnostic-code$...",
      "rcpt3.final-recipient=utf-8; bad\\x{FFFD}\\x{FFFD}@example.test",
      "rcpt3.status=5.1.10",
      "rcpt3.remote-mta=dns; [192.0.2.1]",
      "rcpt3.diagnostic-code=X-mxrelay; 5",
      "text~j\\x{F6}rg@ex\\x{E4}mple.test: host mx.example.test said: 550-5.7.1 first line",
      "text~evil Bcc: victim@example.test",
      "orig.subject=no body",
      "orig.fields=3"}},
    {"huge original header",
     {"relay.example", NULL, "alice@example.org", 1700000000, 0, rcpts_failed, 1, big_orig,
      sizeof big_orig - 1, NULL},
     {"parts=3", "defects=0", "orig.subject=big header", "orig-bytes-ok=1", "orig.has-body=0"}},
    {"no original",
     {"relay.example", NULL, "alice@example.org", 1700000000, 0, rcpts_failed, 1, NULL, 0, NULL},
     {"parts=3", "defects=0", "part3=text/rfc822-headers", "orig.fields=0"}},
    {"bounce_owner: to the owner, the text says why",
     {"relay.example", NULL, "scanner@example.org", 1700000000, 0, rcpts_failed, 1, NULL, 0,
      "it-team@example.org"},
     {"parts=3", "defects=0", "to=<it-team@example.org>", "injected=0",
      "text~You receive this notice as the bounce owner of this sender",
      "text~<scanner@example.org>", "text~instead of the envelope sender"}},
};

static void
test_build_cases(void **state)
{
	size_t c, i;

	(void)state;
	make_big_orig();
	for (c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		char err[256] = "", *msg = NULL, *out;
		size_t len = 0;

		if (bounce_build(&cases[c].bi, &msg, &len, err, sizeof err) != 0)
			fail_msg("%s: %s", cases[c].label, err);
		assert_int_equal(strlen(msg), len); /* no NUL inside */
		check_wire(cases[c].label, msg, len);
		out = python_parse(msg, len);
		for (i = 0; i < 40 && cases[c].expect[i] != NULL; i++)
			check_expect(cases[c].label, out, cases[c].expect[i]);
		free(out);
		free(msg);
	}
}

/* The headers part stays within its bound and keeps whole lines. */
static void
test_headers_bounded(void **state)
{
	struct bounce_info bi = cases[3].bi;
	char err[256] = "", *msg = NULL, *p3, *end;
	size_t len;

	(void)state;
	make_big_orig();
	assert_int_equal(bounce_build(&bi, &msg, &len, err, sizeof err), 0);
	p3 = strstr(msg, "Content-Type: text/rfc822-headers\r\n");
	assert_non_null(p3);
	p3 = strstr(p3, "\r\n\r\n") + 4;
	end = strstr(p3, "\r\n--=_mxrelay_");
	assert_non_null(end);
	assert_true((size_t)(end - p3) <= BOUNCE_HEADERS_MAX);
	assert_true((size_t)(end - p3) > BOUNCE_HEADERS_MAX - 200);
	/* The 5000-octet line is folded, not cut: all its L's are there. */
	assert_int_equal(strspn(strstr(p3, "X-Long: ") + 8, "L"), 990 - 8);
	free(msg);
}

static void
test_message_ids_differ(void **state)
{
	char err[256] = "", *a = NULL, *b = NULL, *ia, *ib;
	size_t la, lb;

	(void)state;
	assert_int_equal(bounce_build(&cases[0].bi, &a, &la, err, sizeof err), 0);
	assert_int_equal(bounce_build(&cases[0].bi, &b, &lb, err, sizeof err), 0);
	ia = strstr(a, "\r\nMessage-ID: <");
	ib = strstr(b, "\r\nMessage-ID: <");
	assert_non_null(ia);
	assert_non_null(ib);
	assert_true(strncmp(ia, ib, (size_t)(strchr(ia + 2, '\r') - ia)) != 0);
	/* The qid is in it, for grep. */
	assert_non_null(strstr(ia, "0123456789abcdef"));
	free(a);
	free(b);
}

static void
test_build_errors(void **state)
{
	static const struct bounce_rcpt no_addr[] = {{NULL, "5.0.0", NULL, NULL}};
	static const struct {
		const char *label;
		const char *hostname, *sender;
		const struct bounce_rcpt *rcpts;
		size_t nrcpts;
		const char *err;
	} bad[] = {
	    {"null sender", "relay.example", "", rcpts_failed, 1, "never bounced"},
	    {"mailer-daemon sender", "relay.example", "MAILER-DAEMON@x.example", rcpts_failed, 1,
	     "never bounced"},
	    {"NULL sender", "relay.example", NULL, rcpts_failed, 1, "never bounced"},
	    {"bad hostname", "relay example", "a@b.example", rcpts_failed, 1, "bad hostname"},
	    {"header injection in hostname", "relay\r\nX: y", "a@b.example", rcpts_failed, 1,
	     "bad hostname"},
	    {"empty hostname", "", "a@b.example", rcpts_failed, 1, "bad hostname"},
	    {"no recipients", "relay.example", "a@b.example", rcpts_failed, 0, "no recipients"},
	    {"recipient without address", "relay.example", "a@b.example", no_addr, 1,
	     "without address"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct bounce_info bi = {.hostname = bad[i].hostname,
		                         .orig_sender = bad[i].sender,
		                         .rcpts = bad[i].rcpts,
		                         .nrcpts = bad[i].nrcpts};
		char err[256] = "", *msg = (char *)1;
		size_t len = 99;

		if (bounce_build(&bi, &msg, &len, err, sizeof err) != -1)
			fail_msg("%s: accepted", bad[i].label);
		assert_null(msg);
		assert_int_equal(len, 0);
		if (strstr(err, bad[i].err) == NULL)
			fail_msg("%s: err: %s", bad[i].label, err);
	}
}

static void
test_bounce_wanted(void **state)
{
	static const struct {
		const char *sender;
		bool want;
	} t[] = {
	    {NULL, false},
	    {"", false},
	    {"MAILER-DAEMON@relay.example", false},
	    {"mailer-daemon@relay.example", false},
	    {"Mailer-Daemon", false},
	    {"mailer-daemon-fan@example.org", true},
	    {"xmailer-daemon@example.org", true},
	    {"postmaster@example.org", true},
	    {"alice@example.org", true},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof t / sizeof t[0]; i++)
		if (bounce_wanted(t[i].sender) != t[i].want)
			fail_msg("bounce_wanted(%s) != %d", t[i].sender ? t[i].sender : "NULL",
			         t[i].want);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_build_cases),        cmocka_unit_test(test_headers_bounded),
	    cmocka_unit_test(test_message_ids_differ), cmocka_unit_test(test_build_errors),
	    cmocka_unit_test(test_bounce_wanted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
