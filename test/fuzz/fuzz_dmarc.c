/*
 * libFuzzer target: the DMARC record parser and the never-weaker proposal
 * (tools/dmarc.c: dmarc_parse, RFC 7489 6.3; dmarc_propose; dmarc_rua_parse
 * on the rua= value). Built by -DMXRELAY_FUZZ=ON (test/fuzz/README.md).
 * The input is the record text, cut at its first NUL byte, in an
 * exact-size copy.
 *
 * Beyond "no crash": a record that parses has a policy of none,
 * quarantine or reject and pct 0..100; its proposal parses again with the
 * same p, sp and pct (never weaker) and keeps its rua= addresses.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tools/dmarc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
policy_ok(const char *p, bool empty_ok)
{
	return (empty_ok && p[0] == '\0') || strcmp(p, "none") == 0 ||
	       strcmp(p, "quarantine") == 0 || strcmp(p, "reject") == 0;
}

static void
check_proposal(const struct dmarc_record *r)
{
	struct dmarc_record again;
	char why[512], *out = NULL, *changes = NULL;

	if (dmarc_propose(r, r->rua ? NULL : "mailto:dmarc@example.com", &out, &changes, why,
	                  sizeof why) != 0)
		abort();
	if (dmarc_parse(out, &again, why, sizeof why) != 0 || strcmp(again.p, r->p) != 0 ||
	    strcmp(again.sp, r->sp) != 0 || again.pct != r->pct ||
	    (r->rua && strstr(again.rua_list, r->rua_list) == NULL))
		abort();
	free(out);
	free(changes);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dmarc_record r;
	struct dmarc_rua rua;
	char *txt = malloc(size + 1), why[512];

	if (txt == NULL)
		return 0;
	memcpy(txt, data, size);
	txt[size] = '\0';
	if (dmarc_parse(txt, &r, why, sizeof why) == 0) {
		if (!policy_ok(r.p, false) || !policy_ok(r.sp, true) || r.pct < 0 || r.pct > 100 ||
		    r.nnotes > DMARC_NOTES_MAX)
			abort();
		check_proposal(&r);
	} else if (memchr(why, '\0', sizeof why) == NULL) {
		abort();
	}
	if (dmarc_rua_parse(txt, &rua, why, sizeof why) == 0 && rua.n > DMARC_RUA_MAX)
		abort();
	free(txt);
	return 0;
}
