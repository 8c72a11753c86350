/*
 * tools/dmarc: DMARC policy records (RFC 7489) as text, for mxrelayctl.
 *
 * Owns: parsing a published record strictly enough to say why a receiver
 * would ignore it (6.3, 6.4, 6.6.3), the starter record, and reading the
 * rua= address list (7.1: report addresses in another domain need that
 * domain's authorisation record).
 *
 * Must never: query DNS or print. 0 / -1 with one line in why/err.
 */
#ifndef MXRELAY_TOOLS_DMARC_H
#define MXRELAY_TOOLS_DMARC_H

#include <stdbool.h>
#include <stddef.h>

struct dmarc_record {
	char p[12];  /* "none", "quarantine" or "reject" (lowercase) */
	char sp[12]; /* subdomain policy, "" when absent (p applies) */
	char adkim;  /* 'r' (relaxed, the default) or 's' (strict) */
	char aspf;   /* 'r' or 's' */
	int pct;     /* 0..100, 100 when absent */
	bool rua;    /* aggregate reports are requested */
};

/* true when txt starts with the DMARC version tag "v=DMARC1" (6.4: spaces around '=' allowed). */
bool dmarc_is_record(const char *txt);

/*
 * Parse a published record. -1 with why: not starting with v=DMARC1, a
 * tag without '=', a tag twice, p= missing or not none/quarantine/reject,
 * sp= likewise, adkim/aspf not r or s, pct not 0..100, fo not 0/1/d/s
 * joined by ':', rua/ruf with an entry that is not a URI.
 */
int dmarc_parse(const char *txt, struct dmarc_record *out, char *why, size_t whylen);

#define DMARC_RUA_MAX 8

struct dmarc_rua {
	size_t n;
	char domain[DMARC_RUA_MAX][256]; /* lowercase domain of each mailto: address */
};

/*
 * Read a rua= value: comma-separated "mailto:local@domain" URIs, each
 * optionally followed by "!size" (6.2). -1 with err for anything else
 * (another scheme, no '@', a bad domain, ';' or spaces, more than 8).
 */
int dmarc_rua_parse(const char *rua, struct dmarc_rua *out, char *err, size_t errlen);

/*
 * true when a report address in rua_domain needs the authorisation record
 * "DOMAIN._report._dmarc.RUA_DOMAIN TXT v=DMARC1" (7.1): rua_domain is
 * neither domain nor a subdomain of it (simplified organisational domain).
 */
bool dmarc_rua_external(const char *domain, const char *rua_domain);

/*
 * The starter record "v=DMARC1; p=none; rua=RUA; adkim=r; aspf=r; fo=1":
 * monitoring only, so nothing is rejected while reports come in. *out is
 * malloc'ed. -1 with err when rua does not parse.
 */
int dmarc_starter(const char *rua, char **out, char *err, size_t errlen);

/* true when sub is domain or one of its subdomains (case-insensitive, trailing dots ignored). */
bool dmarc_same_or_sub(const char *sub, const char *domain);

#endif
