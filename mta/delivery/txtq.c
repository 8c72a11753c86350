/*
 * txtq: TXT lookups for control/ through delivery's resolver (txtq.h).
 * A thin adapter over dns_resolve_txt: it owns no state beyond one query.
 */
#include "mta/delivery/txtq.h"

#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"
#include "mta/delivery/deliver_int.h"
#include "mta/delivery/resolver.h"
#include "mta/shared/util.h"

#define TXTQ_MAX 64 /* records passed on; dns/ keeps at most as many */

struct txtq {
	struct dns_query *q;
	txtq_cb cb;
	void *arg;
};

static void
on_txt(void *arg, const struct dns_txt_result *res)
{
	struct txtq *t = arg;
	const char *txts[TXTQ_MAX];
	enum txtq_status st;
	size_t i, n = 0;

	if (res->status == DNS_OK) {
		st = TXTQ_OK;
		for (i = 0; i < res->n && n < TXTQ_MAX; i++)
			if (memchr(res->txt[i].data, '\0', res->txt[i].len) == NULL)
				txts[n++] = res->txt[i].data;
	} else {
		st = res->status == DNS_TEMPFAIL ? TXTQ_TEMPFAIL : TXTQ_NONE;
	}
	t->cb(t->arg, st, txts, n, res->reason);
	free(t);
}

struct txtq *
txtq_start(struct deliver *dl, const char *name, txtq_cb cb, void *arg)
{
	struct txtq *t = xcalloc(1, sizeof *t);

	t->cb = cb;
	t->arg = arg;
	t->q = dns_resolve_txt(resolver_dns(dl->res), name, on_txt, t);
	if (t->q == NULL) {
		free(t);
		return NULL;
	}
	return t;
}

void
txtq_cancel(struct txtq *q)
{
	if (q == NULL)
		return;
	dns_cancel(q->q);
	free(q);
}
