/*
 * libFuzzer target: RFC 7208 check_host() (tools/spfeval: the record
 * parser, macro expansion, every mechanism, include/redirect/exp, the
 * limits of 4.6.4). Built by -DMXRELAY_FUZZ=ON (test/fuzz/README.md).
 *
 * Input: lines separated by '\n'. The first line is the record evaluated
 * at the sender's domain fuzz.test (opts.record); each further line is a
 * DNS row "NAME TYPE VALUE" (TXT, A, AAAA, MX "PREF HOST", PTR, CNAME,
 * TIMEOUT) served by the table of test/unit/spftable.h, so includes,
 * redirects, exp= texts and addresses come from the input too. Each input
 * is evaluated for an IPv4 client (192.0.2.3) and an IPv6 one (2001:db8::3).
 *
 * Beyond "no crash": a known result; a reason for none, temperror and
 * permerror; over_limit only with permerror; at most 11 DNS-querying terms
 * and 3 void lookups counted (the one past the limit stops it); an
 * explanation only with fail; the lookups bounded (4.6.4's limits make
 * any record cost at most a few hundred).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "test/unit/spftable.h"
#include "tools/spfeval.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXROWS 64
#define MAXINPUT 16384
#define MAXQUERIES 400

static void
check_one(struct spftable *t, const char *record, const char *ip)
{
	struct spf_dns dns = spftable_dns(t);
	struct spf_eval_opts opts = {.record = record, .receiver = "mx.fuzz.test", .now = 1};
	struct spf_eval ev;
	struct spf_ip a;

	if (spf_ip_parse(ip, 0, &a) != 0)
		abort();
	t->queries = 0;
	if (spf_eval(&dns, &a, "user@fuzz.test", "helo.fuzz.test", &opts, &ev) != 0)
		abort();
	if (ev.result > SPF_R_PERMERROR)
		abort();
	if ((ev.result == SPF_R_NONE || ev.result >= SPF_R_TEMPERROR) && ev.why[0] == '\0')
		abort();
	if (ev.over_limit && ev.result != SPF_R_PERMERROR)
		abort();
	if (ev.lookups > 11 || ev.void_lookups > 3)
		abort();
	if (ev.explanation[0] != '\0' && ev.result != SPF_R_FAIL)
		abort();
	if (t->queries > MAXQUERIES || ev.ntrace > SPF_EVAL_TRACE_MAX)
		abort();
	spf_eval_free(&ev);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spftable_row rows[MAXROWS];
	struct spftable t = {rows, 0, 0};
	char *buf, *line, *next;

	if (size > MAXINPUT)
		return 0;
	buf = malloc(size + 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	next = strchr(buf, '\n');
	if (next != NULL)
		*next++ = '\0';
	for (line = next; line != NULL && t.n < MAXROWS; line = next) {
		char *type, *value;

		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if ((type = strchr(line, ' ')) == NULL)
			continue;
		*type++ = '\0';
		value = strchr(type, ' ');
		if (value != NULL)
			*value++ = '\0';
		rows[t.n++] = (struct spftable_row){line, type, value ? value : ""};
	}
	check_one(&t, buf, "192.0.2.3");
	check_one(&t, buf, "2001:db8::3");
	free(buf);
	return 0;
}
