/*
 * tools/spf: SPF records (RFC 7208) as text, for mxrelayctl's DNS tools.
 *
 * Owns: merging the relay's addresses into a domain's SPF record, the lint
 * warnings (+all, ptr, no all, lookup count, lengths), counting the
 * DNS-querying terms (RFC 7208 4.6.4) recursively through a caller's fetch
 * function, validating a record with libspf2's compiler, and the zone-file
 * line (character-strings of at most 255 bytes).
 *
 * Must never: query DNS itself (lookups arrive through spf_fetch_fn),
 * print, or exit. Only mxrelayctl links this (and with it libspf2): the
 * daemon never evaluates SPF.
 *
 * Return convention: 0 / -1 with one line in err (err may be NULL when
 * errlen is 0). Strings handed out are malloc'ed; the caller frees them.
 */
#ifndef MXRELAY_TOOLS_SPF_H
#define MXRELAY_TOOLS_SPF_H

#include <stdbool.h>
#include <stddef.h>

#define SPF_LOOKUP_LIMIT 10 /* RFC 7208 4.6.4 */
#define SPF_STRING_MAX 255  /* one TXT character-string, RFC 7208 3.3 */
#define SPF_UDP_MAX 450     /* RFC 7208 3.4: keep the answer within 512-byte UDP */
#define SPF_NEW_ALL "~all"  /* how a record made from nothing ends */

enum spf_warning {
	SPF_W_PLUS_ALL = 1u << 0,         /* "+all" or "all": everyone passes */
	SPF_W_PTR = 1u << 1,              /* ptr: RFC 7208 5.5 SHOULD NOT be used */
	SPF_W_NO_ALL = 1u << 2,           /* neither all nor redirect: default neutral (4.7) */
	SPF_W_REDIRECT_IGNORED = 1u << 3, /* all and redirect: redirect ignored (6.1) */
	SPF_W_AFTER_ALL = 1u << 4,        /* terms after all are never evaluated (5.1) */
	SPF_W_LOOKUPS = 1u << 5,          /* over SPF_LOOKUP_LIMIT DNS-querying terms */
	SPF_W_SPLIT = 1u << 6,            /* over 255 bytes: several strings in one TXT */
	SPF_W_UDP = 1u << 7,              /* over 450 bytes: may not fit a UDP answer */
	SPF_W_IP_BLOCKED = 1u << 8,       /* an earlier -/~/? ip term matches a relay IP */
	SPF_W_MULTIPLE = 1u << 9,         /* several SPF records at the name (callers set it) */
};
#define SPF_W_COUNT 10

/* One relay address. family is AF_INET or AF_INET6. */
struct spf_ip {
	int family;
	unsigned char addr[16];
};

/*
 * Parse an IPv4 or IPv6 address (no prefix length). family 0 accepts
 * either; AF_INET or AF_INET6 only that one.
 */
int spf_ip_parse(const char *text, int family, struct spf_ip *out);

/* The address in its canonical text form (inet_ntop); buf of 46 bytes is enough. */
void spf_ip_format(const struct spf_ip *ip, char *buf, size_t len);

/* The SPF mechanism for ip: "ip4:A" or "ip6:B". */
void spf_ip_mechanism(const struct spf_ip *ip, char *buf, size_t len);

/* true when txt is an SPF record: "v=spf1" followed by a space or its end (4.5). */
bool spf_is_record(const char *txt);

struct spf_merge {
	char *record;       /* the result; free with spf_merge_free */
	unsigned added;     /* mechanisms added */
	unsigned added_ips; /* bit i set: ips[i] was added (the first 32) */
	unsigned covered;   /* relay IPs already passed by an ip4/ip6 term of current */
	unsigned warnings;  /* SPF_W_IP_BLOCKED when current fails a relay IP first */
};

/*
 * The record authorising ips. current NULL (or empty): a new record
 * "v=spf1 ip4:.. ip6:.. ~all". Otherwise current's terms are kept in order,
 * whitespace normalised to one space and the version to "v=spf1", and an
 * ip4:/ip6: mechanism for every relay IP not already passed by an ip4/ip6
 * term (exact or a covering prefix) is inserted before the first "all" or
 * -/~/? mechanism (so a published -ip4: covering the relay cannot fail it);
 * without "all" after the last mechanism, so modifiers such as redirect=
 * stay last (a redirect applies only when no mechanism matched, 6.1).
 * -1 when current is not an SPF record or has a term the merge cannot read.
 */
int spf_merge(const char *current, const struct spf_ip *ips, size_t nips, struct spf_merge *out,
              char *err, size_t errlen);
/* spf_merge with the relay's mechanisms first, before every term of current (joined records). */
int spf_merge_first(const char *current, const struct spf_ip *ips, size_t nips,
                    struct spf_merge *out, char *err, size_t errlen);
void spf_merge_free(struct spf_merge *m);

/*
 * Fetch the SPF record of domain for spf_count_lookups: 0 with a
 * malloc'ed *record, or -1 with a one-line reason (no record, DNS failure).
 */
typedef int (*spf_fetch_fn)(void *ctx, const char *domain, char **record, char *why, size_t whylen);

#define SPF_JOIN_MAX 8 /* records joined at one name */

struct spf_join {
	char *record;        /* the domain's one record; free with spf_join_free */
	size_t records;      /* how many were joined */
	unsigned duplicates; /* inline: mechanisms left out because an equal one came first */
	char all[8];         /* the all ending the record ("-all", "~all", "?all", "+all") */
	bool all_differed;   /* the records' effective defaults differed */
	bool by_include;     /* the inclusion form: each record at a name of its own */
	char why[300];       /* by_include: why inline would change results */
	size_t nparts;       /* by_include: names to publish, in order */
	char part_name[SPF_JOIN_MAX][256]; /* "_spfN.DOMAIN" */
	char *part_record[SPF_JOIN_MAX];   /* record N for it */
};

/*
 * Join n SPF records published at domain into one (RFC 7208 4.5: several
 * are a permerror, so receivers honour none of them today) that passes
 * every address any of them passes alone and never ends weaker:
 *  - all: the strictest effective default of the records (a literal all,
 *    or through redirect= the target's, followed with fetch, else ?all);
 *  - inline when every record holds only pass mechanisms, then at most one
 *    all (and nothing but exp= / unknown modifiers after it), no redirect,
 *    one exp= text: every mechanism in order, byte-exact duplicates once;
 *  - otherwise by inclusion: record N is to be published at _spfN.DOMAIN
 *    (bare a, mx, ptr get DOMAIN written out; a %{d} macro is refused) and
 *    the domain's record is "v=spf1 include:_spf1.DOMAIN ... ALL": an
 *    include matches exactly when its record passes (5.2), so the pass
 *    sets add up; why says which term made inline unsafe.
 * fetch may be NULL (redirect targets then count as ?all). -1 with err for
 * a record that is not SPF, an unknown mechanism, or more than SPF_JOIN_MAX.
 */
int spf_join(const char *domain, const char *const *records, size_t n, spf_fetch_fn fetch,
             void *ctx, struct spf_join *out, char *err, size_t errlen);
void spf_join_free(struct spf_join *j);

struct spf_lint {
	unsigned warnings; /* SPF_W_* bits found in the record itself */
	int lookups;       /* DNS-querying terms of this record alone (4.6.4) */
	size_t length;     /* bytes */
};

/*
 * The warnings of record (SPF_W_LOOKUPS from its own terms only; recursive
 * counting is spf_count_lookups). -1 when it is not an SPF record.
 */
int spf_lint(const char *record, struct spf_lint *out, char *err, size_t errlen);

/* One line naming the problem and its fix; "" for an unknown bit. */
const char *spf_warning_text(enum spf_warning w);

struct spf_count {
	int total;         /* DNS-querying terms, includes and redirects followed */
	int not_followed;  /* include/redirect targets that could not be counted */
	char problem[256]; /* the first reason one was not followed, or "" */
};

/*
 * Count record's DNS-querying terms (include, a, mx, ptr, exists, and
 * redirect when there is no all) plus, through fetch, those of every
 * include and redirect target, recursively (RFC 7208 4.6.4). Targets with
 * macros, loops and fetch failures count 1 and are not followed. fetch
 * NULL counts the top level only. -1 when record is not an SPF record.
 */
int spf_count_lookups(const char *record, spf_fetch_fn fetch, void *ctx, struct spf_count *out);

/*
 * 0 when libspf2 compiles record without error and no modifier appears
 * twice (RFC 7208 6: redirect and exp at most once); -1 with the reason.
 */
int spf_validate(const char *record, char *why, size_t whylen);

/*
 * The zone-file line publishing record at name:
 *   name. IN TXT "first 255 bytes" "next 255"
 * (strings are joined without a space by receivers, RFC 7208 3.3; '"' and
 * '\' are escaped). -1 with errno EINVAL for an empty name or record.
 */
int spf_zone_line(const char *name, const char *record, char **out);

#define SPF_TARGETS_MAX 32

/*
 * The include: targets of record, then its redirect= target, in order,
 * lowercase, without macros (those need an evaluation): at most max of
 * them into targets. Returns how many.
 */
size_t spf_include_targets(const char *record, char (*targets)[256], size_t max);

/*
 * A sample address a record authorises: the first ip4:/ip6: term with a
 * pass qualifier (its network address), looked for depth first through
 * includes and redirect (fetched with fetch, at most 10 deep). -1 when
 * there is none.
 */
int spf_sample_ip(const char *record, spf_fetch_fn fetch, void *ctx, struct spf_ip *out);

/* Like spf_sample_ip, every such address (not only the first), at most max. Returns how many. */
size_t spf_sample_ips(const char *record, spf_fetch_fn fetch, void *ctx, struct spf_ip *out,
                      size_t max);

#endif
