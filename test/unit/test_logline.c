/*
 * Unit tests for the log's shared shapes: tools/ctl_report_parse.c (the line
 * reader of mxrelayctl report: every form of the log, keys inside quoted
 * values, reason keys, domains) and mta/delivery/dlvlog.c (delays= as
 * Postfix writes it). Tables of label, input, expected; every failing row
 * is reported, then the test fails once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "mta/delivery/dlvlog.h"
#include "tools/ctl_report.h"

#include <stdio.h>
#include <string.h>

struct pcase {
	const char *label;
	const char *line;
	int rc;
	const char *day;
	const char *event;
};

static const struct pcase pcases[] = {
    {"stderr", "2026-12-06T21:07:36.123Z mxrelayd[42]: level=info s=a qid=q event=accepted", 0,
     "2026-12-06", "accepted"},
    {"short-iso", "2026-12-06T21:07:36+0000 relay mxrelayd[42]: level=info event=delivery", 0,
     "2026-12-06", "delivery"},
    {"rsyslog rfc3339", "2026-12-06T21:07:36.000001+01:00 relay mxrelayd[7]: event=removed", 0,
     "2026-12-06", "removed"},
    {"space form", "2026-12-06 21:07:36 relay mxrelayd: event=expired", 0, "2026-12-06", "expired"},
    {"bsd one digit", "Dec  6 21:07:36 relay mxrelayd[1]: level=warn s=a event=auth_failed", 0,
     "2025-12-06", "auth_failed"},
    {"bsd two digits", "Jan 16 01:02:03 relay mxrelayd[1]: event=accepted", 0, "2025-01-16",
     "accepted"},
    {"journal short", "Dec 06 21:07:36 relay mxrelayd[1]: event=accepted", 0, "2025-12-06",
     "accepted"},
    {"cat with priority", "<4>level=warn s=a event=auth_failed ip=192.0.2.1", 0, "", "auth_failed"},
    {"stderr under journald", "<6>mxrelayd[42]: level=info qid=q event=removed", 0, "", "removed"},
    {"cat bare", "qid=q event=bounce bounce_qid=r", 0, "", "bounce"},
    {"another program", "2026-12-06T21:07:36+0000 relay postfix/smtpd[9]: event=accepted", -1, NULL,
     NULL},
    {"another ident", "Dec  6 21:07:36 relay mxrelaydx[1]: event=accepted", -1, NULL, NULL},
    {"no event", "2026-12-06T21:07:36.123Z mxrelayd[42]: level=info listening", -1, NULL, NULL},
    {"event only quoted", "x=\"event=accepted\"", -1, NULL, NULL},
    {"bad month", "Foo  6 21:07:36 relay mxrelayd[1]: event=accepted", -1, NULL, NULL},
    {"day 0", "Dec  0 21:07:36 relay mxrelayd[1]: event=accepted", -1, NULL, NULL},
    {"cat, other text", "hello event=accepted", -1, NULL, NULL},
    {"cat, control id", "c=12 event=ctl_flush uid=0", 0, "", "ctl_flush"},
    {"empty", "", -1, NULL, NULL},
};

static void
test_parse(void **state)
{
	(void)state;
	int bad = 0;
	char ev[64];

	for (size_t i = 0; i < sizeof(pcases) / sizeof(pcases[0]); i++) {
		const struct pcase *c = &pcases[i];
		struct rlog_line l;
		int rc = rlog_parse(c->line, strlen(c->line), 2025, &l);
		if (rc != c->rc) {
			printf("FAIL %s: rc %d, want %d\n", c->label, rc, c->rc);
			bad++;
			continue;
		}
		if (rc != 0)
			continue;
		rlog_get(&l, "event", ev, sizeof(ev));
		if (strcmp(l.day, c->day) != 0 || strcmp(ev, c->event) != 0) {
			printf("FAIL %s: day '%s' event '%s', want '%s' '%s'\n", c->label, l.day,
			       ev, c->day, c->event);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

struct gcase {
	const char *label;
	const char *kv;
	const char *key;
	bool found;
	const char *value;
};

static const struct gcase gcases[] = {
    {"plain", "event=delivery status=sent", "status", true, "sent"},
    {"quoted with spaces", "event=x reply=\"451 4.2.0 busy\" dsn=4.2.0", "reply", true,
     "451 4.2.0 busy"},
    {"key inside a quoted value", "event=x user=\"a ip=6.6.6.6\" ip=192.0.2.1", "ip", true,
     "192.0.2.1"},
    {"suffix is not the key", "event=x xip=1 ip=2", "ip", true, "2"},
    {"missing", "event=x", "ip", false, ""},
    {"empty value", "event=x ip= dsn=1", "ip", true, ""},
    {"unterminated quote", "event=x reply=\"abc", "reply", true, "abc"},
    {"words without =", "event=x junk more ip=3", "ip", true, "3"},
    {"first of two", "event=x ip=1 ip=2", "ip", true, "1"},
};

static void
test_get(void **state)
{
	(void)state;
	int bad = 0;
	char v[64];

	for (size_t i = 0; i < sizeof(gcases) / sizeof(gcases[0]); i++) {
		const struct gcase *c = &gcases[i];
		struct rlog_line l = {"", c->kv, strlen(c->kv)};
		bool found = rlog_get(&l, c->key, v, sizeof(v));
		if (found != c->found || strcmp(v, c->value) != 0) {
			printf("FAIL %s: %d '%s', want %d '%s'\n", c->label, found, v, c->found,
			       c->value);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

static void
test_reason_and_domain(void **state)
{
	(void)state;
	char out[64], small[8];

	rlog_reason("550 5.1.1 <perm-d@x.example>: no  such user", out, sizeof(out));
	assert_string_equal(out, "550 5.1.1 : no such user");
	rlog_reason("<<a>> x <b", out, sizeof(out));
	assert_string_equal(out, "x");
	rlog_reason("0123456789abc", small, sizeof(small));
	assert_string_equal(small, "0123456");
	rlog_domain("<Bob@Example.NET>", out, sizeof(out));
	assert_string_equal(out, "example.net");
	rlog_domain("<>", out, sizeof(out));
	assert_string_equal(out, "");
	rlog_domain("a@b@c.example", out, sizeof(out));
	assert_string_equal(out, "c.example");
}

struct dcase {
	double a, b, c, d;
	const char *want;
};

static const struct dcase dcases[] = {
    {0.014, 0, 0.123, 0.031, "0.014/0/0.12/0.031"},
    {0.009, -1, 0.0, 0.01, "0/0/0/0.01"},
    {9.3, 9.99, 10.2, 1393.4, "9.3/10/10/1393"},
    {1.25, 0.5, 0.27, 2, "1.2/0.5/0.27/2"},
};

static void
test_delays(void **state)
{
	(void)state;
	char out[64], tiny[6];

	for (size_t i = 0; i < sizeof(dcases) / sizeof(dcases[0]); i++) {
		const struct dcase *c = &dcases[i];
		assert_string_equal(dlvlog_delays(out, sizeof(out), c->a, c->b, c->c, c->d),
		                    c->want);
	}
	/* cut, never overrun */
	dlvlog_delays(tiny, sizeof(tiny), 1393, 1393, 1393, 1393);
	assert_true(strlen(tiny) < sizeof(tiny));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_get),
	    cmocka_unit_test(test_reason_and_domain),
	    cmocka_unit_test(test_delays),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
