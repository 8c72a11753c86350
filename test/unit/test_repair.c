/*
 * Unit tests for mta/intake/repair.c: the from_at rewrite, table-driven
 * (label, the From value as sent, the repaired value or NULL for "left
 * alone"), and repair_choose's rule ranking (user > listener > CIDR > *,
 * "none" switching a broader rule off, the first rule winning a tie).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "mta/intake/repair.h"
#include "mta/shared/config.h"
#include "mta/shared/config_int.h"

struct from_case {
	const char *label, *in, *want; /* want NULL: not repaired */
};

static const struct from_case FROM_CASES[] = {
    {"address as name", " scans@example.com <scans@example.com>\r\n",
     " \"scans@example.com\" <scans@example.com>\r\n"},
    {"name with @", " John@Acme <j@acme.example>\r\n", " \"John@Acme\" <j@acme.example>\r\n"},
    {"folded", " Scan@Floor 2\r\n\t<s@x.example>\r\n", " \"Scan@Floor 2\" <s@x.example>\r\n"},
    {"no space before <", " John@Acme<j@acme.example>\r\n", " \"John@Acme\" <j@acme.example>\r\n"},
    {"utf-8 name", " Kop\xc3\xadrka@2 <k@x.example>\r\n", " \"Kop\xc3\xadrka@2\" <k@x.example>\r\n"},
    {"fine already", " \"John@Acme\" <j@acme.example>\r\n", NULL},
    {"no @ in name", " John Acme <j@acme.example>\r\n", NULL},
    {"bare address", " j@acme.example\r\n", NULL},
    {"angle only", " <j@acme.example>\r\n", NULL},
    {"another address", " ceo@bank.example <scans@example.com>\r\n", NULL},
    {"another address among words", " Scanner ceo@bank.example <s@example.com>\r\n", NULL},
    {"comma: maybe a list", " a@b, c@d <e@f.example>\r\n", NULL},
    {"comment", " J@A (x) <j@acme.example>\r\n", NULL},
    {"group", " g@x: <j@acme.example>;\r\n", NULL},
    {"half quoted", " \"J\"@A <j@acme.example>\r\n", NULL},
    {"nothing after >", " J@A <j@acme.example> x\r\n", NULL},
    {"no @ in address", " J@A <jacme>\r\n", NULL},
    {"two angles", " J@A <x@y> <j@acme.example>\r\n", NULL},
    {"control octet", " J@\x01 <j@acme.example>\r\n", NULL},
};

static void
test_from_at_table(void **state)
{
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(FROM_CASES) / sizeof(FROM_CASES[0]); i++) {
		const struct from_case *t = &FROM_CASES[i];
		char out[2048];
		int n = repair_from_at(t->in, strlen(t->in), out, sizeof(out));

		if (t->want == NULL) {
			if (n != -1)
				fail_msg("%s: repaired as '%.*s'", t->label, n, out);
			continue;
		}
		if (n < 0)
			fail_msg("%s: not repaired", t->label);
		if ((size_t)n != strlen(t->want) || memcmp(out, t->want, (size_t)n) != 0)
			fail_msg("%s: got '%.*s', want '%s'", t->label, n, out, t->want);
	}
}

static void
test_from_at_line_limit(void **state)
{
	char in[1100], out[2048];
	(void)state;

	/* a name that fits the field but would make "From:" line longer than 998 octets */
	memset(in, 'a', sizeof(in));
	in[0] = ' ';
	in[10] = '@';
	snprintf(in + 990, sizeof(in) - 990, " <j@x.example>\r\n");
	assert_int_equal(repair_from_at(in, strlen(in), out, sizeof(out)), -1);
	/* too small an output buffer: refused, nothing overrun */
	assert_int_equal(repair_from_at(" J@A <j@a.example>\r\n", 20, out, 8), -1);
}

static void
rule(struct config *c, const char *line)
{
	char why[256];

	if (config_sender_rule_add(c, "header_repair", line, 1, why, sizeof(why)) != 0)
		fail_msg("%s: %s", line, why);
}

static void
test_choose(void **state)
{
	struct config c;
	struct sockaddr_in in4 = {.sin_family = AF_INET};
	const struct sockaddr *sa = (const struct sockaddr *)&in4;
	(void)state;

	memset(&c, 0, sizeof(c));
	inet_pton(AF_INET, "192.0.2.7", &in4.sin_addr);
	assert_int_equal(repair_choose(&c, NULL, "main", sa), 0); /* off by default */
	rule(&c, "* add_to");
	rule(&c, "192.0.2.0/24 from_at");
	rule(&c, "listener:dev from_at,add_to");
	rule(&c, "user:quiet none");
	rule(&c, "* from_at"); /* a tie with the first '*': the first stays */
	assert_int_equal(repair_choose(&c, NULL, "main", NULL), HREPAIR_ADD_TO);
	assert_int_equal(repair_choose(&c, NULL, "main", sa), HREPAIR_FROM_AT);
	assert_int_equal(repair_choose(&c, NULL, "dev", sa), HREPAIR_FROM_AT | HREPAIR_ADD_TO);
	assert_int_equal(repair_choose(&c, "quiet", "dev", sa), 0);
	assert_int_equal(repair_choose(&c, "loud", "dev", sa), HREPAIR_FROM_AT | HREPAIR_ADD_TO);
	config_sender_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_from_at_table),
	    cmocka_unit_test(test_from_at_line_limit),
	    cmocka_unit_test(test_choose),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
