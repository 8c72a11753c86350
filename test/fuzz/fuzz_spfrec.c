/*
 * libFuzzer target: the SPF record findings and joins of mxrelayctl
 * (tools/spf_lint.c spf_lint_terms and spf_lint_fix, tools/spf_join.c
 * spf_join and spf_include_targets, then tools/spf.c spf_merge of the
 * join). Built by -DMXRELAY_FUZZ=ON (test/fuzz/README.md). The input is an
 * RRset of TXT records as DNS hands them over: records separated by a
 * 0xff byte, each copied into its own NUL-terminated buffer (NUL bytes in
 * a record cut it short, as C strings do).
 *
 * Beyond "no crash": every fix spf_lint_fix offers is an SPF record
 * without the finding it fixes (for the codes whose terms it removes or
 * rewrites); a join is an SPF record holding no unknown term and every
 * ip4:/ip6: term of every record (no authorisation lost); and, evaluated
 * by tools/spfeval over an in-memory table serving the _spfN records of
 * the inclusion form, the join passes a sample address (every pass ip4/
 * ip6 term's) exactly when one of the records alone passes it, wherever
 * no record alone errs for it and the join stays within the limits of
 * RFC 7208 4.6.4 (those are shared across includes).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test/unit/spftable.h"
#include "tools/spf.h"
#include "tools/spf_lint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXREC 4

static void
check_fixes(const char *rec)
{
	static const enum spf_fcode gone[] = {SPF_F_UNKNOWN, SPF_F_TWICE, SPF_F_WIDE,
	                                      SPF_F_HOST_BITS, SPF_F_PLUS_ALL};
	struct spf_findings f;

	for (int code = 0; code < SPF_F_COUNT; code++) {
		char *fix = spf_lint_fix(rec, (enum spf_fcode)code);

		if (fix == NULL)
			continue;
		if (!spf_is_record(fix) || spf_lint_terms(fix, &f) != 0)
			abort();
		for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++)
			if ((int)gone[i] == code && f.f[code].count != 0)
				abort();
		free(fix);
	}
}

/* Every ip4:/ip6: term of rec is a term of joined (case aside). */
static void
check_ips_kept(const char *rec, const char *joined)
{
	const char *p = rec;

	while ((p = strstr(p, "ip")) != NULL) {
		size_t n = strcspn(p, " \t\r\n");
		bool start = p == rec || strchr(" \t\r\n+", p[-1]) != NULL;

		if (start && n > 4 && (p[2] == '4' || p[2] == '6') && p[3] == ':') {
			char *t = strndup(p, n);
			const char *q = joined;
			bool found = false;

			while (t != NULL && !found && (q = strcasestr(q, t)) != NULL) {
				found =
				    (q[-1] == ' ' || q[-1] == '+') && (q[n] == ' ' || q[n] == '\0');
				q++;
			}
			if (t != NULL && !found)
				abort();
			free(t);
		}
		p += 2;
	}
}

static enum spf_result
eval_at(struct spftable *t, const struct spf_ip *ip, const char *record, bool *over)
{
	struct spf_dns dns = spftable_dns(t);
	struct spf_eval_opts o = {.record = record, .receiver = "mx.example.org", .now = 1};
	struct spf_eval ev;
	enum spf_result r;

	if (spf_eval(&dns, ip, "user@example.org", "helo.example.org", &o, &ev) != 0)
		abort();
	r = ev.result;
	*over = ev.over_limit;
	spf_eval_free(&ev);
	return r;
}

/* The join passes each sample exactly when a record alone does (see the head comment). */
static void
check_pass_sets(char **recs, size_t n, const struct spf_join *j)
{
	struct spftable_row rows[SPF_JOIN_MAX];
	struct spftable t = {rows, 0, 0};
	struct spf_ip ips[16];

	for (size_t i = 0; i < j->nparts; i++)
		rows[t.n++] = (struct spftable_row){j->part_name[i], "TXT", j->part_record[i]};
	for (size_t r = 0; r < n; r++) {
		size_t k = spf_sample_ips(recs[r], NULL, NULL, ips, 16);

		for (size_t i = 0; i < k; i++) {
			bool err = false, pass = false, over;
			enum spf_result got;

			for (size_t q = 0; q < n; q++) {
				enum spf_result one = eval_at(&t, &ips[i], recs[q], &over);

				pass |= one == SPF_R_PASS;
				err |= one == SPF_R_PERMERROR || one == SPF_R_TEMPERROR;
			}
			got = eval_at(&t, &ips[i], j->record, &over);
			if (!err && !over && (got == SPF_R_PASS) != pass)
				abort();
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *recs[MAXREC];
	size_t n = 0, start = 0;
	struct spf_findings f;
	struct spf_join j;
	struct spf_merge m;
	struct spf_ip ip;
	char err[256], targets[SPF_TARGETS_MAX][256];

	for (size_t i = 0; i <= size && n < MAXREC; i++) {
		if (i < size && data[i] != 0xff)
			continue;
		recs[n] = strndup((const char *)data + start, i - start);
		if (recs[n] == NULL)
			break;
		n++;
		start = i + 1;
	}
	for (size_t i = 0; i < n; i++)
		if (spf_lint_terms(recs[i], &f) == 0)
			check_fixes(recs[i]);
	if (spf_join("example.org", (const char *const *)recs, n, NULL, NULL, &j, err,
	             sizeof err) == 0) {
		if (!spf_is_record(j.record) || spf_lint_terms(j.record, &f) != 0 ||
		    f.f[SPF_F_UNKNOWN].count != 0)
			abort();
		for (size_t i = 0; i < n; i++)
			check_ips_kept(recs[i], j.by_include ? j.part_record[i] : j.record);
		check_pass_sets(recs, n, &j);
		spf_include_targets(j.record, targets, SPF_TARGETS_MAX);
		spf_ip_parse("192.0.2.1", 0, &ip);
		if (spf_merge(j.record, &ip, 1, &m, err, sizeof err) == 0)
			spf_merge_free(&m);
		spf_join_free(&j);
	}
	for (size_t i = 0; i < n; i++)
		free(recs[i]);
	return 0;
}
