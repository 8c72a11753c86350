/*
 * Unit tests for mta/intake/dispname.c: which From fields show an address
 * of another domain in a display name or comment (display_name_address).
 * Table: label, the field value as sent, the From mailbox it parsed to,
 * the address reported ("" = none).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "mta/intake/dispname.h"

static const struct {
	const char *label, *value, *from, *shown;
} cases[] = {
    {"plain name", " Scans <scans@example.com>\r\n", "scans@example.com", ""},
    {"bare address", " scans@example.com\r\n", "scans@example.com", ""},
    {"quoted foreign", " \"ceo@bank.example\" <scans@example.com>\r\n", "scans@example.com",
     "ceo@bank.example"},
    {"angle inside quotes", " \"<ceo@bank.example>\" <scans@example.com>\r\n",
     "scans@example.com", "ceo@bank.example"},
    {"comment", " scans@example.com (CEO ceo@bank.example)\r\n", "scans@example.com",
     "ceo@bank.example"},
    {"own domain", " \"it@example.com\" <scans@example.com>\r\n", "scans@example.com", ""},
    {"own domain, other case", " \"IT@EXAMPLE.COM\" <scans@example.com>\r\n",
     "scans@example.com", ""},
    {"subdomain", " \"desk@mail.example.com\" <scans@example.com>\r\n", "scans@example.com",
     ""},
    {"parent domain", " \"boss@example.com\" <scans@dev.example.com>\r\n",
     "scans@dev.example.com", ""},
    {"suffix but not a subdomain", " \"ceo@badexample.com\" <scans@example.com>\r\n",
     "scans@example.com", "ceo@badexample.com"},
    {"no dot after @", " \"Scan@Floor 2\" <scans@example.com>\r\n", "scans@example.com", ""},
    {"spaced dot", " \"ceo@bank .example\" <scans@example.com>\r\n", "scans@example.com",
     "ceo@bank.example"},
    {"tab dot", " \"ceo@bank\t.example\" <scans@example.com>\r\n", "scans@example.com",
     "ceo@bank.example"},
    {"folded", " \"ceo@bank\r\n .example\" <scans@example.com>\r\n", "scans@example.com",
     "ceo@bank.example"},
    {"look-alike dot U+2024", " \"ceo@bank\xe2\x80\xa4" "example\" <scans@example.com>\r\n",
     "scans@example.com", "ceo@bank???example"},
    {"encoded word B", " =?utf-8?b?Y2VvQGJhbmsuZXhhbXBsZQ==?= <scans@example.com>\r\n",
     "scans@example.com", "ceo@bank.example"},
    {"encoded word Q", " =?utf-8?Q?ceo=40bank.example?= <scans@example.com>\r\n",
     "scans@example.com", "ceo@bank.example"},
    {"encoded word, own domain", " =?utf-8?q?it=40example.com?= <scans@example.com>\r\n",
     "scans@example.com", ""},
    {"encoded CR LF never reach the reply", " =?utf-8?q?x=0D=0Aceo@bank.example?= <a@b.c>\r\n",
     "a@b.c", "ceo@bank.example"},
    {"broken encoded word read as text", " =?utf-8?x?ceo@bank.example?= <scans@example.com>\r\n",
     "scans@example.com", "=?utf-8?x?ceo@bank.example?="},
    {"trailing dot dropped", " \"write to ceo@bank.example.\" <scans@example.com>\r\n",
     "scans@example.com", "ceo@bank.example"},
    {"no local part", " \"@bank.example\" <scans@example.com>\r\n", "scans@example.com", ""},
};

static void
test_table(void **state)
{
	char out[320];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		bool got;

		memset(out, 0, sizeof out);
		got = dispname_foreign(cases[i].value, strlen(cases[i].value), cases[i].from, out,
		                       sizeof out);
		if (got != (cases[i].shown[0] != '\0') || (got && strcmp(out, cases[i].shown) != 0))
			fail_msg("%s: got %d \"%s\", want \"%s\"", cases[i].label, got, out,
			         cases[i].shown);
	}
}

static void
test_bounds(void **state)
{
	char big[3000], out[8];

	(void)state;
	/* longer than a field hdrfrom reads: nothing (hdrfrom refuses it itself) */
	memset(big, 'a', sizeof big);
	memcpy(big + 10, "x@bank.example", 14);
	assert_false(dispname_foreign(big, sizeof big, "a@b.c", out, sizeof out));
	/* a small output is cut, never overrun */
	const char *v = " \"ceo@bank.example\" <a@b.c>";
	assert_true(dispname_foreign(v, strlen(v), "a@b.c", out, sizeof out));
	assert_string_equal(out, "ceo@ban");
	/* an encoded word cut short at the end of the value is text */
	assert_false(dispname_foreign(" =?utf-8?b?Y2Vv", 15, "a@b.c", out, sizeof out));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
