/*
 * tlspol_dest: the TLS facts one destination remembers between its
 * connections (tlspol.h): TLSA answers per MX host and the domain's
 * MTA-STS policy. Loop thread only; owned by its struct dest.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mta/delivery/tlspol.h"
#include "mta/shared/util.h"

struct tlsa_host {
	char host[256];
	enum tlspol_tlsa cls;
	struct dns_tlsa_rec *recs; /* data points into blob */
	size_t n;
	unsigned char *blob;
	char why[128];
	struct tlsa_host *next;
};

struct tlspol_dest {
	struct tlsa_host *hosts;
	enum tlspol_sts sts;
	char **sts_mx;
	size_t sts_nmx;
	char sts_id[33];
	char *sts_text;
};

struct tlspol_dest *
tlspol_dest_new(void)
{
	return xcalloc(1, sizeof(struct tlspol_dest));
}

void
tlspol_dest_reset(struct tlspol_dest *p)
{
	struct tlsa_host *h, *n;

	for (h = p->hosts; h; h = n) {
		n = h->next;
		free(h->recs);
		free(h->blob);
		free(h);
	}
	p->hosts = NULL;
}

static void
sts_clear(struct tlspol_dest *p)
{
	for (size_t i = 0; i < p->sts_nmx; i++)
		free(p->sts_mx[i]);
	free(p->sts_mx);
	p->sts_mx = NULL;
	p->sts_nmx = 0;
	free(p->sts_text);
	p->sts_text = NULL;
}

void
tlspol_dest_free(struct tlspol_dest *p)
{
	if (p == NULL)
		return;
	tlspol_dest_reset(p);
	sts_clear(p);
	free(p);
}

static struct tlsa_host *
find(const struct tlspol_dest *p, const char *host)
{
	for (struct tlsa_host *h = p->hosts; h; h = h->next)
		if (strcasecmp(h->host, host) == 0)
			return h;
	return NULL;
}

int
tlspol_dest_tlsa(const struct tlspol_dest *p, struct tlspol_in *in)
{
	const struct tlsa_host *h = find(p, in->host);

	if (h == NULL)
		return -1;
	in->tlsa = h->cls;
	in->recs = h->recs;
	in->nrecs = h->n;
	return 0;
}

const char *
tlspol_dest_tlsa_why(const struct tlspol_dest *p, const char *host)
{
	const struct tlsa_host *h = find(p, host);

	return h ? h->why : "";
}

void
tlspol_dest_tlsa_put(struct tlspol_dest *p, const char *host, const struct dns_tlsa_result *res)
{
	struct tlsa_host *h = find(p, host);
	size_t total = 0, off = 0;

	if (h == NULL) {
		h = xcalloc(1, sizeof(*h));
		snprintf(h->host, sizeof(h->host), "%s", host);
		h->next = p->hosts;
		p->hosts = h;
	}
	free(h->recs);
	free(h->blob);
	h->recs = NULL;
	h->blob = NULL;
	h->n = 0;
	h->cls = tlspol_tlsa_class(res);
	snprintf(h->why, sizeof(h->why), "%s", h->cls == TLSPOL_TLSA_FAILED ? res->reason : "");
	if (h->cls != TLSPOL_TLSA_USABLE && h->cls != TLSPOL_TLSA_UNUSABLE)
		return;
	for (size_t i = 0; i < res->n; i++)
		total += res->recs[i].len;
	h->recs = xcalloc(res->n, sizeof(*h->recs));
	h->blob = xcalloc(1, total ? total : 1);
	for (size_t i = 0; i < res->n; i++) {
		h->recs[i] = res->recs[i];
		memcpy(h->blob + off, res->recs[i].data, res->recs[i].len);
		h->recs[i].data = h->blob + off;
		off += res->recs[i].len;
	}
	h->n = res->n;
}

void
tlspol_dest_sts_put(struct tlspol_dest *p, enum tlspol_sts mode, const char *const *mx, size_t nmx,
                    const char *id, const char *text)
{
	sts_clear(p);
	p->sts = mode;
	p->sts_text = xstrdup(text ? text : "");
	snprintf(p->sts_id, sizeof(p->sts_id), "%s", id ? id : "");
	if (nmx == 0)
		return;
	p->sts_mx = xcalloc(nmx, sizeof(*p->sts_mx));
	for (size_t i = 0; i < nmx; i++)
		p->sts_mx[i] = xstrdup(mx[i]);
	p->sts_nmx = nmx;
}

void
tlspol_dest_sts(const struct tlspol_dest *p, struct tlspol_in *in)
{
	in->sts = p->sts;
	in->sts_mx = (const char *const *)p->sts_mx;
	in->sts_nmx = p->sts_nmx;
	in->sts_id = p->sts_id;
}

const char *
tlspol_dest_sts_text(const struct tlspol_dest *p)
{
	return p->sts_text ? p->sts_text : "";
}
