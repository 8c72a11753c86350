/*
 * Unit tests for tools/exo_csv.c (exo_parse_buf): Microsoft 365's SMTP AUTH
 * Clients report, RFC 4180 CSV with columns found by header name. One
 * table: label, input, then either the error expected or the rows' count
 * and the first row; every failing row is reported, then the test fails once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tools/ctl_exo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HDR "Sender address,TLS 1.0,TLS 1.1,TLS 1.2,Messages sent\r\n"

struct row {
	const char *label;
	const char *in;
	const char *err; /* NULL: parses */
	size_t n;
	const char *sender;
	double tls10, tls11, tls12;
	int64_t messages;
	int line;
};

static const struct row rows[] = {
    {"plain", HDR "a@example.com,0,25,75,10\r\n", NULL, 1, "a@example.com", 0, 25, 75, 10, 2},
    {"BOM and quotes", "\xef\xbb\xbf\"Sender address\",\"Domain\",\"TLS 1.0\",\"TLS 1.1\","
     "\"TLS 1.2\",\"Messages sent\"\r\n\"a@example.com\",\"example.com\",\"100\",\"0\","
     "\"0\",\"1,250\"\r\n", NULL, 1, "a@example.com", 100, 0, 0, 1250, 2},
    {"LF, order, case, extras", "count,x,UPN,tls1.2,TLS 1.1 (%),tls 1.0 percentage\n"
     "7,y,b@example.org,12.5%, 0 ,87.5\n", NULL, 1, "b@example.org", 87.5, 0, 12.5, 7, 2},
    {"doubled quote, comma in quotes", "Sender address,Note,TLS 1.0,TLS 1.1,TLS 1.2,Messages sent"
     "\r\na@example.com,\"say \"\"hi\"\", ok\",,,,3\r\n", NULL, 1, "a@example.com", 0, 0, 0, 3,
     2},
    {"blank lines, no final EOL", HDR "\r\n\r\na@example.com,0,0,100,1\r\nb@example.com,0,0,"
     "100,2", NULL, 2, "a@example.com", 0, 0, 100, 1, 4},
    {"header only", HDR, NULL, 0, NULL, 0, 0, 0, 0, 0},
    {"empty", "", "f.csv:1: empty file: no header line", 0, NULL, 0, 0, 0, 0, 0},
    {"no sender column", "TLS 1.0,TLS 1.1,TLS 1.2,Messages sent\n",
     "f.csv:1: column 'Sender address': not in the header: export the SMTP AUTH clients "
     "report (Exchange admin center, Reports > Mail flow) as CSV", 0, NULL, 0, 0, 0, 0, 0},
    {"bad share", HDR "a@example.com,x,0,0,1\r\n",
     "f.csv:2: column 2 'TLS 1.0': not a percentage from 0 to 100 'x'", 0, NULL, 0, 0, 0, 0, 0},
    {"negative share", HDR "a@example.com,-1,0,0,1\r\n",
     "f.csv:2: column 2 'TLS 1.0': not a percentage from 0 to 100 '-1'", 0, NULL, 0, 0, 0, 0,
     0},
    {"nan share", HDR "a@example.com,0,nan,0,1\r\n",
     "f.csv:2: column 3 'TLS 1.1': not a percentage from 0 to 100 'nan'", 0, NULL, 0, 0, 0, 0,
     0},
    {"bad count", HDR "a@example.com,0,0,0,-3\r\n",
     "f.csv:2: column 5 'Messages sent': not a count of messages '-3'", 0, NULL, 0, 0, 0, 0, 0},
    {"huge count", HDR "a@example.com,0,0,0,99999999999999999999\r\n",
     "f.csv:2: column 5 'Messages sent': not a count of messages '99999999999999999999'", 0,
     NULL, 0, 0, 0, 0, 0},
    {"no address", HDR "scanner,0,0,0,1\r\n",
     "f.csv:2: column 1 'Sender address': not a mail address (want user@domain) 'scanner'", 0,
     NULL, 0, 0, 0, 0, 0},
    {"comma in address", HDR "\"a,b@example.com\",0,0,0,1\r\n",
     "f.csv:2: column 1 'Sender address': not a mail address (want user@domain) "
     "'a,b@example.com'", 0, NULL, 0, 0, 0, 0, 0},
    {"short row", HDR "a@example.com,0\r\n",
     "f.csv:2: column 3 'TLS 1.1': missing: the row has 2 columns", 0, NULL, 0, 0, 0, 0, 0},
    {"open quote", HDR "\"a@example.com,0,0,0,1",
     "f.csv:2: column 1: quoted field not closed", 0, NULL, 0, 0, 0, 0, 0},
    {"line break in quotes", HDR "\"a@\nexample.com\",0,0,0,1\r\n",
     "f.csv:2: column 1: line break or NUL inside a field", 0, NULL, 0, 0, 0, 0, 0},
};

static int
check_row(const struct row *r)
{
	struct exo_row *out = NULL;
	char err[1024] = "";
	size_t n = 99;
	int rc = exo_parse_buf("f.csv", r->in, strlen(r->in), &out, &n, err, sizeof err);
	int bad = 0;

	if (r->err) {
		bad = rc != -1 || strcmp(err, r->err) != 0 || out != NULL || n != 0;
		if (bad)
			fprintf(stderr, "%s: rc %d err '%s'\n", r->label, rc, err);
	} else if (rc != 0 || n != r->n) {
		fprintf(stderr, "%s: rc %d n %zu err '%s'\n", r->label, rc, n, err);
		bad = 1;
	} else if (n > 0 &&
	           (strcmp(out[0].sender, r->sender) != 0 || out[0].tls10 != r->tls10 ||
	            out[0].tls11 != r->tls11 || out[0].tls12 != r->tls12 ||
	            out[0].messages != r->messages || out[0].line != r->line)) {
		fprintf(stderr, "%s: got %s %g %g %g %lld line %d\n", r->label, out[0].sender,
		        out[0].tls10, out[0].tls11, out[0].tls12, (long long)out[0].messages,
		        out[0].line);
		bad = 1;
	}
	free(out);
	return bad;
}

static void
test_table(void **state)
{
	int bad = 0;
	(void)state;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		bad += check_row(&rows[i]);
	assert_int_equal(bad, 0);
}

/* EXO_MAX_FIELD bounds every field; a longer one is refused, not cut. */
static void
test_long_field(void **state)
{
	size_t len = strlen(HDR) + EXO_MAX_FIELD + 32;
	char *in = malloc(len), err[1024];
	struct exo_row *out = NULL;
	size_t n;
	(void)state;

	assert_non_null(in);
	strcpy(in, HDR);
	memset(in + strlen(HDR), 'a', EXO_MAX_FIELD);
	strcpy(in + strlen(HDR) + EXO_MAX_FIELD, "@x,0,0,0,1\r\n");
	assert_int_equal(exo_parse_buf("f.csv", in, strlen(in), &out, &n, err, sizeof err), -1);
	assert_string_equal(err, "f.csv:2: column 1: field longer than 319 bytes");
	free(in);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_long_field),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
