/*
 * ctl_dmarc: finding a domain's DMARC policy record (RFC 7489 6.6.3), for
 * `mxrelayctl dns dmarc` and `dns check` (implemented in
 * tools/ctl_dns_dmarc.c).
 */
#ifndef MXRELAY_TOOLS_CTL_DMARC_H
#define MXRELAY_TOOLS_CTL_DMARC_H

#include <stdbool.h>
#include <stddef.h>

#include "tools/dnsq.h"

struct ctl_dmarc_found {
	enum dnsq_status st; /* of the last lookup: DNSQ_OK when records were found */
	char at[256];        /* the domain whose _dmarc held them (domain or its org domain) */
	char where[300];     /* "_dmarc." + at */
	bool org;            /* at is the organisational domain, not domain itself */
	struct dnsq_list l;  /* the TXT records that start with v=DMARC1 (6.6.3 step 3) */
};

/*
 * RFC 7489 6.6.3: the DMARC records at _dmarc.DOMAIN, else at the
 * organisational domain's _dmarc (tools/orgdomain). f->l holds only the
 * records starting with v=DMARC1; f->l.n == 0 means none (f->st then tells
 * NXDOMAIN/NODATA from a failed lookup; a name with only other TXT records
 * reads DNSQ_NODATA). Free with ctl_dmarc_found_free.
 */
void ctl_dmarc_find(const char *domain, struct ctl_dmarc_found *f);
void ctl_dmarc_found_free(struct ctl_dmarc_found *f);

#endif
