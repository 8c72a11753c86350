/*
 * rptnet: TXT lookups and the HTTPS client for control's TLS-RPT job
 * (rptnet.h). Thin adapters over dns_resolve_txt and https_new: no state
 * beyond one query.
 */
#include "mta/delivery/rptnet.h"

#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"
#include "mta/delivery/deliver_int.h"
#include "mta/delivery/https.h"
#include "mta/delivery/resolver.h"
#include "mta/server.h"
#include "mta/shared/util.h"

#define RPTNET_TXT_MAX 64 /* records passed on; dns/ keeps at most as many */

struct rptnet_txt {
	struct dns_query *q;
	rptnet_txt_cb cb;
	void *arg;
};

static void
on_txt(void *arg, const struct dns_txt_result *res)
{
	struct rptnet_txt *t = arg;
	const char *txts[RPTNET_TXT_MAX];
	enum rptnet_status st;
	size_t i, n = 0;

	if (res->status == DNS_OK) {
		st = RPTNET_OK;
		for (i = 0; i < res->n && n < RPTNET_TXT_MAX; i++)
			if (memchr(res->txt[i].data, '\0', res->txt[i].len) == NULL)
				txts[n++] = res->txt[i].data;
	} else {
		st = res->status == DNS_TEMPFAIL ? RPTNET_TEMPFAIL : RPTNET_NONE;
	}
	t->cb(t->arg, st, txts, n, res->reason);
	free(t);
}

struct rptnet_txt *
rptnet_txt(struct deliver *dl, const char *name, rptnet_txt_cb cb, void *arg)
{
	struct rptnet_txt *t = xcalloc(1, sizeof *t);

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
rptnet_txt_cancel(struct rptnet_txt *q)
{
	if (q == NULL)
		return;
	dns_cancel(q->q);
	free(q);
}

struct https *
rptnet_https_new(struct deliver *dl, char *err, size_t errlen)
{
	return https_new(dl->srv->base, resolver_dns(dl->res), dl->srv->client_tls, err, errlen);
}
