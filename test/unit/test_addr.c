/*
 * Unit tests for mta/shared/addr: the MAIL FROM / RCPT TO path parser
 * (RFC 5321 4.1.2 syntax, 4.5.3.1 limits, the relay-trick refusals, RFC 6531
 * UTF-8), addr_domain and the header From extractor (RFC 5322 3.4).
 *
 * Every table is checked row by row; a failing row is printed with its label
 * and the test fails once at the end, so one broken row never hides another.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "mta/shared/addr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N ADDR_F_NULL_OK
#define U ADDR_F_UTF8
#define S ADDR_F_STRICT

static const char *
st_name(enum addr_status st)
{
	static const char *const names[] = {"ADDR_OK",        "ADDR_SYNTAX",    "ADDR_TOO_LONG",
	                                    "ADDR_NEED_UTF8", "ADDR_ROUTE",     "ADDR_PERCENT",
	                                    "ADDR_BANG",      "ADDR_QUOTED_AT", "ADDR_NO_DOMAIN",
	                                    "ADDR_END",       "ADDR_NUL",       "ADDR_GROUP",
	                                    "ADDR_MANY",      "ADDR_EMPTY"};
	if ((unsigned)st < sizeof names / sizeof names[0])
		return names[st];
	return "(unknown status)";
}

/* ---- addr_parse_path ---- */

struct path_case {
	const char *label;
	const char *arg; /* as after "MAIL FROM:" / "RCPT TO:" */
	unsigned flags;
	enum addr_status st;
	const char *mailbox; /* only checked on ADDR_OK */
	const char *params;  /* only checked on ADDR_OK */
};

static const struct path_case path_cases[] = {
    /* plain forms */
    {"plain", "<a@b.example>", 0, ADDR_OK, "a@b.example", ""},
    {"plain strict", "<a@b.example>", S, ADDR_OK, "a@b.example", ""},
    {"leading spaces", "   <a@b.example>", 0, ADDR_OK, "a@b.example", ""},
    {"no brackets (liberal)", "a@b.example", 0, ADDR_OK, "a@b.example", ""},
    {"no brackets, leading space", " a@b.example", 0, ADDR_OK, "a@b.example", ""},
    {"no brackets with params", "a@b.example SIZE=10", 0, ADDR_OK, "a@b.example", "SIZE=10"},
    {"dotted local part", "<first.last@sub.b.example>", S, ADDR_OK, "first.last@sub.b.example", ""},
    {"atext specials", "<a+tag=x#y$z&'*/?^_`{|}~-@b.example>", S, ADDR_OK,
     "a+tag=x#y$z&'*/?^_`{|}~-@b.example", ""},
    {"upper case kept", "<Alice@B.Example>", 0, ADDR_OK, "Alice@B.Example", ""},
    {"single-label domain", "<root@localhost>", 0, ADDR_OK, "root@localhost", ""},
    {"numeric labels", "<a@123.45.example>", 0, ADDR_OK, "a@123.45.example", ""},

    /* null path */
    {"null path, NULL_OK", "<>", N, ADDR_OK, "", ""},
    {"null path refused without NULL_OK", "<>", 0, ADDR_SYNTAX, NULL, NULL},
    {"null path refused in RCPT", "<>", S, ADDR_SYNTAX, NULL, NULL},
    {"null path with params", "<> SIZE=100", N, ADDR_OK, "", "SIZE=100"},
    {"null path after spaces", "  <>", N, ADDR_OK, "", ""},
    /* RFC 5321 4.1.1.2: Reverse-path = Path / "<>"; nothing at all is not the null path */
    {"empty argument is not <>", "", N, ADDR_SYNTAX, NULL, NULL},
    {"blank argument is not <>", "   ", N, ADDR_SYNTAX, NULL, NULL},
    {"empty argument without NULL_OK", "", 0, ADDR_SYNTAX, NULL, NULL},

    /* parameters and what follows '>' */
    {"params", "<a@b.example> SIZE=100 BODY=8BITMIME", 0, ADDR_OK, "a@b.example",
     "SIZE=100 BODY=8BITMIME"},
    {"params after several spaces", "<a@b.example>    SIZE=100", 0, ADDR_OK, "a@b.example",
     "SIZE=100"},
    {"trailing spaces only", "<a@b.example>   ", 0, ADDR_OK, "a@b.example", ""},
    {"garbage after > without space", "<a@b.example>SIZE=100", 0, ADDR_SYNTAX, NULL, NULL},
    {"double >", "<a@b.example>>", 0, ADDR_SYNTAX, NULL, NULL},
    {"missing >", "<a@b.example", 0, ADDR_SYNTAX, NULL, NULL},
    {"missing > before params", "<a@b.example SIZE=1", 0, ADDR_SYNTAX, NULL, NULL},
    {"missing <", "a@b.example>", 0, ADDR_SYNTAX, NULL, NULL},
    {"nested brackets", "<<a@b.example>>", 0, ADDR_SYNTAX, NULL, NULL},

    /* dot rules, RFC 5321 Dot-string and Domain */
    {"leading dot in local part", "<.a@b.example>", 0, ADDR_SYNTAX, NULL, NULL},
    {"trailing dot in local part", "<a.@b.example>", 0, ADDR_SYNTAX, NULL, NULL},
    {"double dot in local part", "<a..b@b.example>", 0, ADDR_SYNTAX, NULL, NULL},
    {"local part only a dot", "<.@b.example>", 0, ADDR_SYNTAX, NULL, NULL},
    {"leading dot in domain", "<a@.b.example>", 0, ADDR_SYNTAX, NULL, NULL},
    {"trailing dot in domain", "<a@b.example.>", 0, ADDR_SYNTAX, NULL, NULL},
    {"double dot in domain", "<a@b..example>", 0, ADDR_SYNTAX, NULL, NULL},
    {"empty domain", "<a@>", 0, ADDR_SYNTAX, NULL, NULL},
    {"two @", "<a@b@c.example>", 0, ADDR_SYNTAX, NULL, NULL},

    /* hyphens in labels (RFC 5321 sub-domain: Let-dig [Ldh-str]) */
    {"inner hyphen", "<a@a-b.example>", 0, ADDR_OK, "a@a-b.example", ""},
    {"double inner hyphen (IDNA)", "<a@xn--bcher-kva.example>", 0, ADDR_OK,
     "a@xn--bcher-kva.example", ""},
    {"label starts with hyphen", "<a@-ab.example>", 0, ADDR_SYNTAX, NULL, NULL},
    {"label ends with hyphen", "<a@ab-.example>", 0, ADDR_SYNTAX, NULL, NULL},
    {"last label starts with hyphen", "<a@ab.-example>", 0, ADDR_SYNTAX, NULL, NULL},
    {"domain ends with hyphen", "<a@ab.example->", 0, ADDR_SYNTAX, NULL, NULL},
    {"domain only a hyphen", "<a@->", 0, ADDR_SYNTAX, NULL, NULL},
    {"underscore in domain", "<a@a_b.example>", 0, ADDR_SYNTAX, NULL, NULL},
    {"hyphen in local part", "<-a-@b.example>", 0, ADDR_OK, "-a-@b.example", ""},

    /* quoted local parts */
    {"quoted with space", "<\"john doe\"@x.example>", 0, ADDR_OK, "\"john doe\"@x.example", ""},
    {"quoted with space, strict", "<\"john doe\"@x.example>", S, ADDR_OK, "\"john doe\"@x.example",
     ""},
    {"quoted escaped quote", "<\"a\\\"b\"@x.example>", S, ADDR_OK, "\"a\\\"b\"@x.example", ""},
    {"quoted escaped backslash", "<\"a\\\\b\"@x.example>", S, ADDR_OK, "\"a\\\\b\"@x.example", ""},
    {"quoted >", "<\"a>b\"@x.example> SIZE=1", 0, ADDR_OK, "\"a>b\"@x.example", "SIZE=1"},
    {"empty quoted string", "<\"\"@x.example>", 0, ADDR_OK, "\"\"@x.example", ""},
    {"quoted with params", "<\"john doe\"@x.example> BODY=7BIT", 0, ADDR_OK,
     "\"john doe\"@x.example", "BODY=7BIT"},
    {"unterminated quote", "<\"ab@x.example>", 0, ADDR_SYNTAX, NULL, NULL},
    {"quote inside dot-string", "<a\"b\"@x.example>", 0, ADDR_SYNTAX, NULL, NULL},
    {"text after closing quote", "<\"a\"b@x.example>", 0, ADDR_SYNTAX, NULL, NULL},
    {"control char in quotes", "<\"a\001b\"@x.example>", 0, ADDR_SYNTAX, NULL, NULL},
    {"DEL in quotes", "<\"a\x7f\"@x.example>", 0, ADDR_SYNTAX, NULL, NULL},
    {"quoted-pair of a control char", "<\"a\\\x01\"@x.example>", 0, ADDR_SYNTAX, NULL, NULL},
    {"quoted @, strict", "<\"a@b\"@x.example>", S, ADDR_QUOTED_AT, NULL, NULL},
    {"quoted @, liberal", "<\"a@b\"@x.example>", 0, ADDR_OK, "\"a@b\"@x.example", ""},
    {"quoted %, strict", "<\"a%b\"@x.example>", S, ADDR_QUOTED_AT, NULL, NULL},
    {"quoted %, liberal", "<\"a%b\"@x.example>", 0, ADDR_OK, "\"a%b\"@x.example", ""},
    {"quoted !, strict", "<\"b!a\"@x.example>", S, ADDR_QUOTED_AT, NULL, NULL},
    {"quoted !, liberal", "<\"b!a\"@x.example>", 0, ADDR_OK, "\"b!a\"@x.example", ""},
    {"quoted-pair @, strict", "<\"a\\@b\"@x.example>", S, ADDR_QUOTED_AT, NULL, NULL},

    /* relay tricks */
    {"percent hack, strict", "<u%h.example@relay.example>", S, ADDR_PERCENT, NULL, NULL},
    {"percent hack, liberal", "<u%h.example@relay.example>", 0, ADDR_OK,
     "u%h.example@relay.example", ""},
    {"bang path, strict", "<h.example!u@relay.example>", S, ADDR_BANG, NULL, NULL},
    {"bang path, liberal", "<h.example!u@relay.example>", 0, ADDR_OK, "h.example!u@relay.example",
     ""},
    {"source route", "<@a.example,@b.example:u@c.example>", 0, ADDR_ROUTE, NULL, NULL},
    {"source route, strict", "<@a.example,@b.example:u@c.example>", S, ADDR_ROUTE, NULL, NULL},
    {"one-hop source route", "<@a.example:u@c.example>", N, ADDR_ROUTE, NULL, NULL},
    {"postmaster without domain", "<postmaster>", S, ADDR_NO_DOMAIN, NULL, NULL},
    {"user without domain", "<user>", 0, ADDR_NO_DOMAIN, NULL, NULL},
    {"no domain, liberal form", "postmaster", S, ADDR_NO_DOMAIN, NULL, NULL},
    {"quoted, no domain", "<\"a b\">", 0, ADDR_SYNTAX, NULL, NULL},

    /* address literals (RFC 5321 4.1.3) */
    {"IPv4 literal", "<a@[192.0.2.1]>", S, ADDR_OK, "a@[192.0.2.1]", ""},
    {"IPv6 literal", "<a@[IPv6:2001:db8::1]>", S, ADDR_OK, "a@[IPv6:2001:db8::1]", ""},
    {"literal with params", "<a@[192.0.2.1]> SIZE=5", 0, ADDR_OK, "a@[192.0.2.1]", "SIZE=5"},
    {"empty literal", "<a@[]>", 0, ADDR_SYNTAX, NULL, NULL},
    {"unclosed literal", "<a@[192.0.2.1>", 0, ADDR_SYNTAX, NULL, NULL},
    {"literal then label", "<a@[192.0.2.1].example>", 0, ADDR_SYNTAX, NULL, NULL},
    {"space in literal", "<a@[192.0.2.1 ]>", 0, ADDR_SYNTAX, NULL, NULL},
    {"name in literal", "<a@[mail.example]>", 0, ADDR_SYNTAX, NULL, NULL},

    /* UTF-8 (RFC 6531 3.3) */
    {"UTF-8 local part without SMTPUTF8", "<j\xc3\xb6rg@x.example>", 0, ADDR_NEED_UTF8, NULL, NULL},
    {"UTF-8 local part with SMTPUTF8", "<j\xc3\xb6rg@x.example>", U, ADDR_OK,
     "j\xc3\xb6rg@x.example", ""},
    {"UTF-8 domain without SMTPUTF8", "<a@b\303\274cher.example>", S, ADDR_NEED_UTF8, NULL, NULL},
    {"UTF-8 domain with SMTPUTF8", "<a@b\303\274cher.example>", S | U, ADDR_OK,
     "a@b\303\274cher.example", ""},
    {"UTF-8 both, strict", "<\xd0\xb8\xd0\xbc\xd1\x8f@\xd0\xbf\xd1\x80.example>", S | U, ADDR_OK,
     "\xd0\xb8\xd0\xbc\xd1\x8f@\xd0\xbf\xd1\x80.example", ""},
    {"UTF-8 in quotes without SMTPUTF8", "<\"\xc3\xa9 x\"@x.example>", 0, ADDR_NEED_UTF8, NULL,
     NULL},
    {"UTF-8 in quotes with SMTPUTF8", "<\"\xc3\xa9 x\"@x.example>", U, ADDR_OK,
     "\"\xc3\xa9 x\"@x.example", ""},
    {"UTF-8, liberal form", "j\xc3\xb6rg@x.example", U, ADDR_OK, "j\xc3\xb6rg@x.example", ""},
    {"8-bit byte without SMTPUTF8", "<\xff@x.example>", 0, ADDR_NEED_UTF8, NULL, NULL},
    {"8-bit byte in domain without SMTPUTF8", "<a@x\xe9.example>", 0, ADDR_NEED_UTF8, NULL, NULL},
    /* RFC 6531 3.3 UTF8-non-ascii is well-formed UTF-8 (RFC 3629), not any 8-bit byte */
    {"invalid UTF-8 local part (0xFF)", "<a\xff@x.example>", U, ADDR_SYNTAX, NULL, NULL},
    {"invalid UTF-8 domain (lone continuation)", "<a@x\x80y.example>", U, ADDR_SYNTAX, NULL, NULL},
    {"invalid UTF-8 (overlong /)", "<a\xc0\xaf@x.example>", U, ADDR_SYNTAX, NULL, NULL},
    {"invalid UTF-8 (truncated sequence)", "<a\xc3@x.example>", U, ADDR_SYNTAX, NULL, NULL},

    /* control characters and spaces */
    {"control char in local part", "<a\001b@x.example>", 0, ADDR_SYNTAX, NULL, NULL},
    {"DEL in domain", "<a@x\x7f.example>", 0, ADDR_SYNTAX, NULL, NULL},
    {"tab in local part", "<a\tb@x.example>", 0, ADDR_SYNTAX, NULL, NULL},
    {"space in local part", "<a b@x.example>", 0, ADDR_SYNTAX, NULL, NULL},
    {"space in domain", "<a@x.exa mple>", 0, ADDR_SYNTAX, NULL, NULL},
    {"CR in domain", "<a@x.example\r>", 0, ADDR_SYNTAX, NULL, NULL},
    {"tab before params, liberal", "a@b.example\tSIZE=1", 0, ADDR_SYNTAX, NULL, NULL},
    {"leading tab", "\t<a@b.example>", 0, ADDR_SYNTAX, NULL, NULL},
    {"comma in local part", "<a,b@x.example>", 0, ADDR_SYNTAX, NULL, NULL},
    {"colon in local part", "<a:b@x.example>", 0, ADDR_SYNTAX, NULL, NULL},
};

static int
check_path_row(const struct path_case *pc)
{
	char out[ADDR_MAX + 16];
	const char *params = (const char *)out; /* must be overwritten on success */
	enum addr_status st;

	memset(out, 'X', sizeof out);
	st = addr_parse_path(pc->arg, pc->flags, out, sizeof out, &params);
	if (st != pc->st) {
		print_error("path \"%s\": got %s, want %s\n", pc->label, st_name(st),
		            st_name(pc->st));
		return 1;
	}
	if (st != ADDR_OK)
		return 0;
	if (strcmp(out, pc->mailbox) != 0 || params == out || strcmp(params, pc->params) != 0) {
		print_error("path \"%s\": got mailbox \"%s\" params \"%s\", want \"%s\" \"%s\"\n",
		            pc->label, out, params == out ? "(unset)" : params, pc->mailbox,
		            pc->params);
		return 1;
	}
	/* params points into arg, never into a copy */
	if (params < pc->arg || params > pc->arg + strlen(pc->arg)) {
		print_error("path \"%s\": params does not point into arg\n", pc->label);
		return 1;
	}
	return 0;
}

static void
test_parse_path_table(void **state)
{
	size_t i, n = sizeof path_cases / sizeof path_cases[0];
	int bad = 0;

	(void)state;
	for (i = 0; i < n; i++)
		bad += check_path_row(&path_cases[i]);
	if (bad)
		fail_msg("%d of %zu addr_parse_path rows failed", bad, n);
}

/* ---- length limits (RFC 5321 4.5.3.1) ---- */

struct len_case {
	const char *label;
	size_t local;     /* length of the local part */
	size_t labels[5]; /* domain label lengths, 0-terminated */
	int brackets;
	enum addr_status st;
};

static const struct len_case len_cases[] = {
    {"local part 64", 64, {7, 0}, 1, ADDR_OK},
    {"local part 65", 65, {7, 0}, 1, ADDR_TOO_LONG},
    {"local part 65, no brackets", 65, {7, 0}, 0, ADDR_TOO_LONG},
    {"domain label 63", 1, {63, 7, 0}, 1, ADDR_OK},
    {"domain label 64", 1, {64, 7, 0}, 1, ADDR_SYNTAX},
    {"last label 63", 1, {7, 63, 0}, 1, ADDR_OK},
    {"last label 64", 1, {7, 64, 0}, 1, ADDR_SYNTAX},
    /* 64 + 1 + (63+1+63+1+61) = 254, with brackets exactly 256 */
    {"path of 256", 64, {63, 63, 61, 0}, 1, ADDR_OK},
    {"path of 257", 64, {63, 63, 62, 0}, 1, ADDR_TOO_LONG},
    {"path of 256, no brackets", 64, {63, 63, 61, 0}, 0, ADDR_OK},
    {"path of 257, no brackets", 64, {63, 63, 62, 0}, 0, ADDR_TOO_LONG},
    {"path far too long", 10, {63, 63, 63, 63, 0}, 1, ADDR_TOO_LONG},
};

/* "<lll...@ddd.ddd...>" from a len_case; the caller frees. Also returns the mailbox. */
static char *
build_path(const struct len_case *lc, char **mailbox)
{
	char *p = malloc(1024), *m;
	size_t n = 0, i;

	assert_non_null(p);
	if (lc->brackets)
		p[n++] = '<';
	m = p + n;
	memset(p + n, 'l', lc->local);
	n += lc->local;
	p[n++] = '@';
	for (i = 0; lc->labels[i]; i++) {
		if (i)
			p[n++] = '.';
		memset(p + n, (int)('a' + i), lc->labels[i]);
		n += lc->labels[i];
	}
	p[n] = '\0';
	*mailbox = strdup(m);
	assert_non_null(*mailbox);
	if (lc->brackets)
		p[n++] = '>';
	p[n] = '\0';
	return p;
}

static void
test_parse_path_lengths(void **state)
{
	size_t i, n = sizeof len_cases / sizeof len_cases[0];
	int bad = 0;

	(void)state;
	for (i = 0; i < n; i++) {
		const struct len_case *lc = &len_cases[i];
		char out[ADDR_MAX], *mailbox, *arg = build_path(lc, &mailbox);
		const char *params = NULL;
		enum addr_status st = addr_parse_path(arg, S, out, sizeof out, &params);

		if (st != lc->st) {
			print_error("length \"%s\": got %s, want %s\n", lc->label, st_name(st),
			            st_name(lc->st));
			bad++;
		} else if (st == ADDR_OK && (strcmp(out, mailbox) != 0 || *params != '\0')) {
			print_error("length \"%s\": wrong mailbox or params\n", lc->label);
			bad++;
		}
		free(arg);
		free(mailbox);
	}
	if (bad)
		fail_msg("%d of %zu length rows failed", bad, n);
}

/* The output buffer bound, and a NULL params pointer. */
static void
test_parse_path_outbuf(void **state)
{
	static const struct {
		const char *label;
		const char *arg;
		size_t outlen;
		enum addr_status st;
	} cases[] = {
	    {"exact fit", "<a@b.example>", sizeof "a@b.example", ADDR_OK},
	    {"one byte short", "<a@b.example>", sizeof "a@b.example" - 1, ADDR_TOO_LONG},
	    {"null path in 1 byte", "<>", 1, ADDR_OK},
	};
	size_t i;
	char canary[32];

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *out = malloc(cases[i].outlen); /* ASan catches a write past outlen */

		assert_non_null(out);
		assert_int_equal(addr_parse_path(cases[i].arg, N, out, cases[i].outlen, NULL),
		                 cases[i].st);
		if (cases[i].st == ADDR_OK)
			assert_int_equal(strlen(out) + 1, cases[i].outlen);
		free(out);
	}
	/* params may be NULL */
	assert_int_equal(addr_parse_path("<a@b.example> SIZE=1", 0, canary, sizeof canary, NULL),
	                 ADDR_OK);
	assert_string_equal(canary, "a@b.example");
}

static void
test_strerror(void **state)
{
	enum addr_status st;

	(void)state;
	assert_string_equal(addr_strerror(ADDR_OK), "ok");
	for (st = ADDR_SYNTAX; st <= ADDR_EMPTY; st++) {
		const char *t = addr_strerror(st);
		assert_non_null(t);
		assert_true(strlen(t) > 0);
		/* every status has its own text: the SMTP reply tells them apart */
		for (enum addr_status o = ADDR_OK; o < st; o++)
			assert_string_not_equal(t, addr_strerror(o));
	}
	assert_non_null(addr_strerror((enum addr_status)99));
}

/* ---- addr_domain ---- */

static void
test_domain(void **state)
{
	static const struct {
		const char *label;
		const char *mailbox;
		const char *domain; /* NULL: no domain */
	} cases[] = {
	    {"plain", "a@b.example", "b.example"},
	    {"literal", "a@[192.0.2.1]", "[192.0.2.1]"},
	    {"quoted @ is not the separator", "\"x@y\"@z.example", "z.example"},
	    {"quoted-pair quote", "\"x\\\"@y\"@z.example", "z.example"},
	    {"no domain", "postmaster", NULL},
	    {"null path", "", NULL},
	    {"only quoted @", "\"x@y\"", NULL},
	    {"UTF-8 domain", "a@b\303\274cher.example", "b\303\274cher.example"},
	    /* dtext (RFC 5322 3.4.1) holds '"' and '@': a From the header reader takes */
	    {"quotes in a domain literal", "a@[\"\"\"]", "[\"\"\"]"},
	    {"@ in a domain literal", "a@[x@y]", "[x@y]"},
	};
	size_t i, n = sizeof cases / sizeof cases[0];
	int bad = 0;

	(void)state;
	for (i = 0; i < n; i++) {
		const char *d = addr_domain(cases[i].mailbox);
		int ok = cases[i].domain ? d != NULL && strcmp(d, cases[i].domain) == 0 : d == NULL;

		if (!ok) {
			print_error("domain \"%s\": got %s%s%s, want %s\n", cases[i].label,
			            d ? "\"" : "", d ? d : "NULL", d ? "\"" : "",
			            cases[i].domain ? cases[i].domain : "NULL");
			bad++;
		}
	}
	if (bad)
		fail_msg("%d of %zu addr_domain rows failed", bad, n);
}

/* ---- header address lists (addr_list_next, addr_header_mailbox) ---- */

#define G ADDR_L_GROUPS
#define MAXBOX 4

struct list_case {
	const char *label;
	const char *value;
	size_t len;    /* 0: strlen(value) */
	unsigned flags;
	int nboxes;    /* mailboxes before the end or the error */
	const char *boxes[MAXBOX];
	enum addr_status end; /* ADDR_END, or the error after nboxes mailboxes */
};

static const struct list_case list_cases[] = {
    {"name and angle address", "Name <a@b.example>", 0, 0, 1, {"a@b.example"}, ADDR_END},
    {"quoted name with comma", "\"Doe, John\" <j@d.example>", 0, 0, 1, {"j@d.example"}, ADDR_END},
    {"quoted name with <>", "\"<evil@e.example>\" <good@g.example>", 0, 0, 1, {"good@g.example"},
     ADDR_END},
    {"bare with trailing comment", "a@b.example (comment)", 0, 0, 1, {"a@b.example"}, ADDR_END},
    {"bare with leading comment", "(c) a@b.example", 0, 0, 1, {"a@b.example"}, ADDR_END},
    {"angle only", "<a@b.example>", 0, 0, 1, {"a@b.example"}, ADDR_END},
    {"bare only", "a@b.example", 0, 0, 1, {"a@b.example"}, ADDR_END},
    {"bare with leading space and line end", "  a@b.example\r\n", 0, 0, 1, {"a@b.example"},
     ADDR_END},
    {"folded before angle", "\r\n\t<a@b.example>", 0, 0, 1, {"a@b.example"}, ADDR_END},
    {"name folded before angle", "Name\r\n <a@b.example>\r\n", 0, 0, 1, {"a@b.example"},
     ADDR_END},
    {"folded before bare address", "\r\n\ta@b.example", 0, 0, 1, {"a@b.example"}, ADDR_END},
    {"angle inside comment", "(x <evil@e.example>) <good@g.example>", 0, 0, 1, {"good@g.example"},
     ADDR_END},
    {"nested comment", "(a (b <evil@e.example>) c) <good@g.example>", 0, 0, 1,
     {"good@g.example"}, ADDR_END},
    {"escaped paren in comment", "(a \\) <evil@e.example>) <good@g.example>", 0, 0, 1,
     {"good@g.example"}, ADDR_END},
    {"CFWS inside the angle", "< a (x) @ b.example >", 0, 0, 1, {"a@b.example"}, ADDR_END},
    {"quoted local part kept as written", "<\"x y\"@b.example>", 0, 0, 1, {"\"x y\"@b.example"},
     ADDR_END},
    {"quoted '>' in a local part", "<\"x>\"@ceo.example>", 0, 0, 1, {"\"x>\"@ceo.example"},
     ADDR_END},
    {"domain literal", "a@[192.0.2.1]", 0, 0, 1, {"a@[192.0.2.1]"}, ADDR_END},
    {"obs-phrase: dot in the name", "John Q. Public <j@p.example>", 0, 0, 1, {"j@p.example"},
     ADDR_END},
    {"two mailboxes", "a@b.example, Name <c@d.example>", 0, 0, 2, {"a@b.example", "c@d.example"},
     ADDR_END},
    {"len bounds the value", "a@b.exampleXYZ", 11, 0, 1, {"a@b.example"}, ADDR_END},
    {"UTF-8 name", "J\xc3\xb6rg <j@x.example>", 0, 0, 1, {"j@x.example"}, ADDR_END},
    {"group", "Team: a@b.example, c@d.example;", 0, G, 2, {"a@b.example", "c@d.example"},
     ADDR_END},
    {"empty group then mailbox", "undisclosed:;, a@b.example", 0, G, 1, {"a@b.example"},
     ADDR_END},
    {"mailbox then empty group", "a@b.example, x: ;", 0, G, 1, {"a@b.example"}, ADDR_END},
    {"empty value", "", 0, 0, 0, {NULL}, ADDR_END},
    {"only spaces", "   ", 0, 0, 0, {NULL}, ADDR_END},

    /* errors: the list fails, nothing after the bad element is read */
    {"no address", "Undisclosed", 0, 0, 0, {NULL}, ADDR_SYNTAX},
    {"empty angle", "Name <>", 0, 0, 0, {NULL}, ADDR_SYNTAX},
    {"angle without @", "Name <postmaster>", 0, 0, 0, {NULL}, ADDR_NO_DOMAIN},
    {"unclosed angle", "Name <a@b.example", 0, 0, 0, {NULL}, ADDR_SYNTAX},
    {"address only inside comment", "(evil@e.example)", 0, 0, 0, {NULL}, ADDR_END},
    {"backslash ends quoted string", "\"\\", 0, 0, 0, {NULL}, ADDR_SYNTAX},
    {"backslash ends comment", "a@b.example (\\", 0, 0, 0, {NULL}, ADDR_SYNTAX},
    {"backslash ends comment in angle", "<a@b.example> (x\\", 0, 0, 0, {NULL}, ADDR_SYNTAX},
    {"backslash ends local part", "<\"a\\", 0, 0, 0, {NULL}, ADDR_SYNTAX},
    {"unterminated comment", "a@b.example (x", 0, 0, 0, {NULL}, ADDR_SYNTAX},
    {"unterminated quote", "\"Name <a@b.example>", 0, 0, 0, {NULL}, ADDR_SYNTAX},
    {"NUL inside the mailbox", "a\0b@c.example", 13, 0, 0, {NULL}, ADDR_NUL},
    {"NUL in the display name", "A\0B <a@b.example>", 18, 0, 0, {NULL}, ADDR_NUL},
    {"NUL after the mailbox", "a@b.example\0, c@d.example", 25, 0, 0, {NULL}, ADDR_NUL},
    {"unquoted @ in the name", "ceo@bank.example <scans@example.com>", 0, 0, 0, {NULL},
     ADDR_SYNTAX},
    {"address after the angle", "<scans@example.com> ceo@bank.example", 0, 0, 0, {NULL},
     ADDR_SYNTAX},
    {"unterminated angle in the second", "Scans <scans@example.com>, <ceo@bank.example", 0, 0, 1,
     {"scans@example.com"}, ADDR_SYNTAX},
    {"second element fails", "a@b.example, Undisclosed", 0, 0, 1, {"a@b.example"}, ADDR_SYNTAX},
    {"trailing comma", "a@b.example,", 0, 0, 1, {"a@b.example"}, ADDR_SYNTAX},
    {"leading comma", ", a@b.example", 0, 0, 0, {NULL}, ADDR_SYNTAX},
    {"two addresses without comma", "a@b.example c@d.example", 0, 0, 0, {NULL}, ADDR_SYNTAX},
    {"group not allowed", "Team: a@b.example;", 0, 0, 0, {NULL}, ADDR_GROUP},
    {"unterminated group", "Team: a@b.example", 0, G, 1, {"a@b.example"}, ADDR_SYNTAX},
    {"nested group", "A: B: a@b.example;;", 0, G, 0, {NULL}, ADDR_SYNTAX},
    {"source route", "<@relay.example:a@b.example>", 0, 0, 0, {NULL}, ADDR_ROUTE},
    {"CFWS between dot-atoms (obs)", "a . b@c.example", 0, 0, 0, {NULL}, ADDR_SYNTAX},
    {"encoded word with @ is no atom", "=?utf-8?q?ceo@bank.example?= <s@example.com>", 0, 0, 0,
     {NULL}, ADDR_SYNTAX},
    {"bare CR", "a@b.example\r", 0, 0, 0, {NULL}, ADDR_SYNTAX},
    {"bare LF in the name", "A\nB <a@b.example>", 0, 0, 0, {NULL}, ADDR_SYNTAX},
    {"fold inside a quoted local part", "<\"a\r\n b\"@c.example>", 0, 0, 0, {NULL}, ADDR_SYNTAX},
    {"invalid UTF-8 in the mailbox", "a\xff@b.example", 0, 0, 0, {NULL}, ADDR_SYNTAX},
};

static int
check_list_case(const struct list_case *lc)
{
	size_t len = lc->len ? lc->len : strlen(lc->value);
	/* an exact-size heap copy without a NUL: ASan sees any read past len */
	char *v = malloc(len ? len : 1), out[ADDR_MAX];
	struct addr_list l;
	enum addr_status st = ADDR_OK;
	int n = 0, ok = 1;

	assert_non_null(v);
	memcpy(v, lc->value, len);
	addr_list_init(&l, v, len, lc->flags);
	while (n <= MAXBOX && (st = addr_list_next(&l, out, sizeof out)) == ADDR_OK) {
		if (n >= lc->nboxes || strcmp(out, lc->boxes[n]) != 0) {
			print_error("list \"%s\": mailbox %d is \"%s\", want \"%s\"\n", lc->label, n,
			            out, n < lc->nboxes ? lc->boxes[n] : "(none)");
			ok = 0;
		}
		n++;
	}
	if (ok && (n != lc->nboxes || st != lc->end)) {
		print_error("list \"%s\": %d mailboxes then %s, want %d then %s\n", lc->label, n,
		            st_name(st), lc->nboxes, st_name(lc->end));
		ok = 0;
	}
	/* the status is sticky: a caller that goes on never reads further */
	if (ok && addr_list_next(&l, out, sizeof out) != st) {
		print_error("list \"%s\": status not sticky\n", lc->label);
		ok = 0;
	}
	free(v);
	return ok;
}

static void
test_list_table(void **state)
{
	size_t i, n = sizeof list_cases / sizeof list_cases[0];
	int bad = 0;

	(void)state;
	for (i = 0; i < n; i++)
		bad += !check_list_case(&list_cases[i]);
	if (bad)
		fail_msg("%d of %zu address-list rows failed", bad, n);
}

struct one_case {
	const char *label;
	const char *value;
	enum addr_status st;
	const char *addr;
};

static const struct one_case one_cases[] = {
    {"one mailbox", "Name <a@b.example>\r\n", ADDR_OK, "a@b.example"},
    {"two mailboxes", "a@b.example, c@d.example", ADDR_MANY, NULL},
    {"none", "(nobody)", ADDR_EMPTY, NULL},
    {"group", "G: a@b.example;", ADDR_GROUP, NULL},
    {"second one broken", "a@b.example, <c@d.example", ADDR_SYNTAX, NULL},
    {"quoted > in a second angle-addr", "Scans <scans@example.com>, <\"x>\"@ceo.example>",
     ADDR_MANY, NULL},
};

static void
test_header_mailbox(void **state)
{
	size_t i, n = sizeof one_cases / sizeof one_cases[0];
	int bad = 0;

	(void)state;
	for (i = 0; i < n; i++) {
		const struct one_case *oc = &one_cases[i];
		size_t len = strlen(oc->value);
		char *v = malloc(len), out[ADDR_MAX] = "";
		enum addr_status st;

		assert_non_null(v);
		memcpy(v, oc->value, len);
		st = addr_header_mailbox(v, len, out, sizeof out);
		if (st != oc->st || (st == ADDR_OK && strcmp(out, oc->addr) != 0)) {
			print_error("mailbox \"%s\": got %s \"%s\", want %s\n", oc->label, st_name(st),
			            out, st_name(oc->st));
			bad++;
		}
		free(v);
	}
	if (bad)
		fail_msg("%d of %zu addr_header_mailbox rows failed", bad, n);
}

static void
test_list_outbuf(void **state)
{
	static const char v[] = "Name <a@b.example>";
	char out[sizeof "a@b.example"];
	char big[300];

	(void)state;
	assert_int_equal(addr_header_mailbox(v, strlen(v), out, sizeof out), ADDR_OK);
	assert_string_equal(out, "a@b.example");
	assert_int_equal(addr_header_mailbox(v, strlen(v), out, sizeof out - 1), ADDR_TOO_LONG);
	/* longer than an SMTP path may be (RFC 5321 4.5.3.1.3) */
	memset(big, 'a', sizeof big);
	memcpy(big + sizeof big - 10, "@b.example", 10);
	assert_int_equal(addr_header_mailbox(big, sizeof big, out, sizeof out), ADDR_TOO_LONG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_path_table),
	    cmocka_unit_test(test_parse_path_lengths),
	    cmocka_unit_test(test_parse_path_outbuf),
	    cmocka_unit_test(test_strerror),
	    cmocka_unit_test(test_domain),
	    cmocka_unit_test(test_list_table),
	    cmocka_unit_test(test_header_mailbox),
	    cmocka_unit_test(test_list_outbuf),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
