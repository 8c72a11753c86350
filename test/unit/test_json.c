/*
 * Unit tests for the JSON string writer and its terminal twin (tools/json.c:
 * json_write_str, json_write_text): whatever bytes DNS or the spool hold,
 * the JSON is strict UTF-8 (RFC 8259 8.1, RFC 3629 4) and the text shows
 * stray bytes and control characters as \xNN. Each table reports every
 * failing row, then fails once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tools/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

struct row {
	const char *label;
	const char *in;
	const char *json; /* what json_write_str prints */
	const char *text; /* what json_write_text prints */
};

static const struct row rows[] = {
    {"ascii", "v=spf1 -all", "\"v=spf1 -all\"", "v=spf1 -all"},
    {"quote and backslash", "a\"b\\c", "\"a\\\"b\\\\c\"", "a\"b\\c"},
    {"newline, tab, escape", "a\nb\tc\x1b[31m", "\"a\\nb\\u0009c\\u001b[31m\"",
     "a\\x0ab\\x09c\\x1b[31m"},
    {"DEL", "a\x7f", "\"a\\u007f\"", "a\\x7f"},
    {"valid 2-byte (e-acute)", "caf\xc3\xa9", "\"caf\xc3\xa9\"", "caf\xc3\xa9"},
    {"valid 3-byte (euro)", "\xe2\x82\xac", "\"\xe2\x82\xac\"", "\xe2\x82\xac"},
    {"valid 4-byte (emoji)", "\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"", "\xf0\x9f\x98\x80"},
    {"U+FFFD itself", "\xef\xbf\xbd", "\"\xef\xbf\xbd\"", "\xef\xbf\xbd"},
    {"Latin-1 byte", "caf\xe9!", "\"caf\\ufffd!\"", "caf\\xe9!"},
    {"cut 2-byte at the end", "a\xc3", "\"a\\ufffd\"", "a\\xc3"},
    {"cut 3-byte before ASCII", "\xe2\x82x", "\"\\ufffd\\ufffdx\"", "\\xe2\\x82x"},
    {"cut 4-byte", "\xf0\x9f\x98", "\"\\ufffd\\ufffd\\ufffd\"", "\\xf0\\x9f\\x98"},
    {"overlong '/' (2 bytes)", "\xc0\xaf", "\"\\ufffd\\ufffd\"", "\\xc0\\xaf"},
    {"overlong NUL-ish (3 bytes)", "\xe0\x80\x80", "\"\\ufffd\\ufffd\\ufffd\"", "\\xe0\\x80\\x80"},
    {"overlong (4 bytes)", "\xf0\x80\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"",
     "\\xf0\\x80\\x80\\xaf"},
    {"surrogate U+D800", "\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"", "\\xed\\xa0\\x80"},
    {"surrogate U+DFFF", "\xed\xbf\xbf", "\"\\ufffd\\ufffd\\ufffd\"", "\\xed\\xbf\\xbf"},
    {"above U+10FFFF", "\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"",
     "\\xf4\\x90\\x80\\x80"},
    {"F5 lead byte", "\xf5\x80", "\"\\ufffd\\ufffd\"", "\\xf5\\x80"},
    {"lone continuation", "\x80x", "\"\\ufffdx\"", "\\x80x"},
    {"C1 control (CSI)", "\xc2\x9b[", "\"\xc2\x9b[\"", "\\xc2\\x9b["},
    {"U+00A0 is text", "\xc2\xa0", "\"\xc2\xa0\"", "\xc2\xa0"},
    {"empty", "", "\"\"", ""},
};

/* What print(f, in) writes, malloc'd. */
static char *
capture(void (*print)(FILE *f, const char *s), const char *in)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	print(f, in);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void
test_writers(void **state)
{
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		char *json = capture(json_write_str, rows[i].in);
		char *text = capture(json_write_text, rows[i].in);

		if (strcmp(json, rows[i].json) != 0) {
			print_error("%s: json %s, expected %s\n", rows[i].label, json,
			            rows[i].json);
			bad++;
		}
		if (strcmp(text, rows[i].text) != 0) {
			print_error("%s: text %s, expected %s\n", rows[i].label, text,
			            rows[i].text);
			bad++;
		}
		free(json);
		free(text);
	}
	assert_int_equal(bad, 0);
}

/* Every string the writer prints reads back through json_parse as itself (valid input). */
static void
test_round_trip(void **state)
{
	char err[128];

	(void)state;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		char *json = capture(json_write_str, rows[i].in);
		struct json *j = json_parse(json, strlen(json), err, sizeof err);

		if (j == NULL)
			fail_msg("%s: %s does not parse: %s", rows[i].label, json, err);
		assert_int_equal(j->type, JSON_STR);
		if (strstr(rows[i].json, "\\ufffd") == NULL && strcmp(j->s, rows[i].in) != 0)
			fail_msg("%s: read back as %s", rows[i].label, j->s);
		json_free(j);
		free(json);
	}
}

static void
test_null(void **state)
{
	char *json = capture(json_write_str, NULL), *text = capture(json_write_text, NULL);

	(void)state;
	assert_string_equal(json, "null");
	assert_string_equal(text, "");
	free(json);
	free(text);
}

/*
 * A mailq of 100,000 messages is a document of ~10 MB with ~10 strings per
 * message: each string gets room for itself, not for the rest of the
 * document (that took gigabytes and the OOM killer). Address space is
 * capped at 2 GB so a regression fails here instead of filling the machine
 * (not under ASan, whose shadow memory needs far more).
 */
static void
test_many_strings(void **state)
{
	size_t n = 200000, cap = n * 64 + 64, len = 0;
	char *doc = malloc(cap), err[128];
	struct json *j;

	(void)state;
#ifndef __SANITIZE_ADDRESS__
	struct rlimit rl = {2UL << 30, 2UL << 30};
	assert_int_equal(setrlimit(RLIMIT_AS, &rl), 0);
#endif
	assert_non_null(doc);
	len += (size_t)snprintf(doc + len, cap - len, "{\"messages\": [");
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(doc + len, cap - len, "%s{\"qid\": \"q%zu\", \"to\": \"a@b\"}",
		                        i ? "," : "", i);
	len += (size_t)snprintf(doc + len, cap - len, "]}");
	j = json_parse(doc, len, err, sizeof err);
	assert_non_null(j);
	assert_int_equal(json_get(j, "messages")->n, n);
	assert_string_equal(json_gets(json_get(j, "messages")->v[n - 1], "qid"), "q199999");
	json_free(j);
	free(doc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_writers),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_null),
	    cmocka_unit_test(test_many_strings), /* last: it caps the address space */
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
