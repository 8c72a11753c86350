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

#define DMARC_NOTES_MAX 16

/* A warning about a record receivers still apply: tag names the tag ("pct", "fo", "tag dkim"). */
struct dmarc_note {
	char tag[40];
	char text[240];
};

struct dmarc_record {
	char p[12];  /* "none", "quarantine" or "reject" (lowercase) */
	char sp[12]; /* subdomain policy, "" when absent (p applies) */
	char np[12]; /* RFC 9091 non-existent subdomain policy, "" when absent */
	char adkim;  /* 'r' (relaxed, the default) or 's' (strict) */
	char aspf;   /* 'r' or 's' */
	int pct;     /* 0..100, 100 when absent */
	bool rua;    /* aggregate reports are requested */
	bool
	    p_none_by_rua; /* on -1: no valid p= but a valid rua=: receivers apply p=none (6.6.3) */
	char rua_list[1024]; /* the rua= value as published, "" when absent */
	char ruf_list[1024]; /* the ruf= value, "" when absent */
	char fo[32];         /* "" when absent */
	char rf[32];         /* "" when absent */
	char ri[16];         /* "" when absent */
	size_t nnotes;
	struct dmarc_note notes[DMARC_NOTES_MAX];
};

/* true when txt starts with the DMARC version tag "v=DMARC1" (6.4: spaces around '=' allowed). */
bool dmarc_is_record(const char *txt);

/*
 * Parse a published record (RFC 7489 6.3, RFC 9091 np=). -1 with why only
 * where receivers drop the record: not starting with v=DMARC1, p= missing
 * or not none/quarantine/reject (p_none_by_rua says whether receivers fall
 * back to p=none), sp= likewise (6.6.3). Any other bad tag is ignored or
 * defaulted by receivers (6.3), so it is dropped or repaired here with a
 * note and the record still parses: "drop TAG" (a bad np, adkim, aspf,
 * pct, fo, rf or ri, a tag twice, a value too long), "fix rua"/"fix ruf"
 * (bad URIs dropped, a bad !size removed), "junk" (a part without '='),
 * "order" (p= not right after v=, a MUST of 6.3). Other notes: pct under
 * 100 with an enforcing policy, fo= without ruf=, rf= other than afrf, an
 * unknown tag that looks like a typo of a known one ("tag NAME").
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
 * "DOMAIN._report._dmarc.RUA_DOMAIN TXT v=DMARC1" (7.1): the two have
 * different organisational domains (tools/orgdomain, RFC 7489 3.2).
 */
bool dmarc_rua_external(const char *domain, const char *rua_domain);

/*
 * The starter record "v=DMARC1; p=none; rua=RUA; adkim=r; aspf=r; fo=1":
 * monitoring only, so nothing is rejected while reports come in. *out is
 * malloc'ed. -1 with err when rua does not parse.
 */
int dmarc_starter(const char *rua, char **out, char *err, size_t errlen);

/*
 * The record to publish in place of cur, never weaker (issue 14): cur's
 * p, sp, np, pct, adkim, aspf, rua, ruf, fo (only with ruf), rf and ri
 * kept; the addresses of add_rua (a "mailto:..." list, or NULL) appended
 * to rua= when it does not hold them yet; unknown tags dropped. *changes
 * (malloc'ed, "" when nothing that matters differs) says what changed,
 * e.g. "adds rua=mailto:dmarc@example.com, drops fo=". *out is malloc'ed.
 * The record is sized to its values, never cut. -1 with err when add_rua
 * does not parse or out of memory.
 */
int dmarc_propose(const struct dmarc_record *cur, const char *add_rua, char **out, char **changes,
                  char *err, size_t errlen);

/* true when sub is domain or one of its subdomains (case-insensitive, trailing dots ignored). */
bool dmarc_same_or_sub(const char *sub, const char *domain);

#endif
