/*
 * parse: DNS responses to answers (see dns_int.h).
 *
 * Network input: every read goes through a bounds-checked cursor, names
 * through ares_expand_name (which checks compression pointers and loops).
 * Two passes over the answer section: the first follows the CNAME chain
 * from the asked name, the second collects the records of the asked type
 * owned by the end of the chain.
 */
#include "dns/dns_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cur {
	const unsigned char *b;
	size_t len, off;
};

struct rrhdr {
	char owner[256];
	uint16_t type, cls;
	uint32_t ttl;
	size_t rdoff, rdlen; /* rdata bounds in the packet */
};

struct cname {
	char owner[256], target[256];
	uint32_t ttl;
};

#define HDR_LEN 12
#define C_IN 1

static int
get16(struct cur *c, uint16_t *v)
{
	if (c->len - c->off < 2)
		return -1;
	*v = (uint16_t)(c->b[c->off] << 8 | c->b[c->off + 1]);
	c->off += 2;
	return 0;
}

static int
get32(struct cur *c, uint32_t *v)
{
	if (c->len - c->off < 4)
		return -1;
	*v = (uint32_t)c->b[c->off] << 24 | (uint32_t)c->b[c->off + 1] << 16 |
	     (uint32_t)c->b[c->off + 2] << 8 | c->b[c->off + 3];
	c->off += 4;
	return 0;
}

/* Decode the name at the cursor into out (256 bytes); "" is the root. */
static int
getname(struct cur *c, char *out)
{
	char *s = NULL;
	long enclen = 0;
	int rc = -1;

	if (c->off >= c->len || c->len > 65535)
		return -1;
	if (ares_expand_name(c->b + c->off, c->b, (int)c->len, &s, &enclen) != ARES_SUCCESS)
		return -1;
	if (enclen <= 0 || (size_t)enclen > c->len - c->off || strlen(s) > 255)
		goto done;
	memcpy(out, s, strlen(s) + 1);
	c->off += (size_t)enclen;
	rc = 0;
done:
	ares_free_string(s);
	return rc;
}

static int
get_rrhdr(struct cur *c, struct rrhdr *h)
{
	uint16_t rdlen;

	if (getname(c, h->owner) < 0 || get16(c, &h->type) < 0 || get16(c, &h->cls) < 0 ||
	    get32(c, &h->ttl) < 0 || get16(c, &rdlen) < 0)
		return -1;
	if (c->len - c->off < rdlen)
		return -1;
	/* RFC 2181 8: a TTL with the top bit set is read as zero */
	if (h->ttl > 0x7fffffffu)
		h->ttl = 0;
	h->rdoff = c->off;
	h->rdlen = rdlen;
	c->off += rdlen;
	return 0;
}

/* A cursor over one record's rdata only, so nothing reads past it. */
static struct cur
rdata_cur(const struct cur *c, const struct rrhdr *h)
{
	struct cur r = {c->b, h->rdoff + h->rdlen, h->rdoff};
	return r;
}

bool
dns__name_eq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++) {
		char x = *a, y = *b;
		if (x >= 'A' && x <= 'Z')
			x = (char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (char)(y - 'A' + 'a');
		if (x != y)
			return false;
	}
	return *a == *b;
}

static const char *
rcode_text(unsigned rcode)
{
	switch (rcode) {
	case 1:
		return "FORMERR";
	case 2:
		return "SERVFAIL";
	case 4:
		return "NOTIMP";
	case 5:
		return "REFUSED";
	default:
		return NULL;
	}
}

/* Skip the question section; leaves the cursor at the answer section. */
static int
skip_questions(struct cur *c, unsigned qd)
{
	char name[256];
	uint16_t t, cl;

	for (unsigned i = 0; i < qd; i++)
		if (getname(c, name) < 0 || get16(c, &t) < 0 || get16(c, &cl) < 0)
			return -1;
	return 0;
}

/* Pass 1: CNAME records of the answer section (at most DNS_MAX_CHAIN * 2). */
static int
collect_cnames(struct cur c, unsigned an, struct cname *cn, size_t *ncn)
{
	struct rrhdr h;

	*ncn = 0;
	for (unsigned i = 0; i < an; i++) {
		if (get_rrhdr(&c, &h) < 0)
			return -1;
		if (h.type != DNS_T_CNAME || h.cls != C_IN || *ncn == DNS_MAX_CHAIN * 2)
			continue;
		struct cur r = rdata_cur(&c, &h);
		if (getname(&r, cn[*ncn].target) < 0)
			return -1;
		memcpy(cn[*ncn].owner, h.owner, sizeof h.owner);
		cn[*ncn].ttl = h.ttl;
		(*ncn)++;
	}
	return 0;
}

/*
 * TXT rdata: one or more character-strings (RFC 1035 3.3.14), joined into
 * one value as RFC 7208 3.3 and RFC 8461 3.1 read them. *total counts the
 * bytes of the whole answer against DNS_TXT_MAX.
 */
static int
get_txt(struct cur *r, struct dns_rr *rr, size_t *total)
{
	size_t len = 0, off = r->off;

	if (r->off == r->len)
		return -1; /* no character-string at all */
	while (off < r->len) {
		size_t n = r->b[off];
		if (r->len - off - 1 < n)
			return -1;
		len += n;
		off += 1 + n;
	}
	if (len > DNS_TXT_MAX - *total)
		return -1;
	if ((rr->data = malloc(len + 1)) == NULL)
		return -1;
	rr->len = 0;
	for (off = r->off; off < r->len; off += 1 + r->b[off]) {
		memcpy(rr->data + rr->len, r->b + off + 1, r->b[off]);
		rr->len += r->b[off];
	}
	rr->data[len] = '\0';
	*total += len;
	return 0;
}

/*
 * TLSA rdata (RFC 6698 2.1): usage, selector, matching type, then the
 * association data, which must not be empty. Whether the data length
 * fits the matching type is the consumer's check (such a record is
 * unusable for DANE, not a broken answer: dns.h).
 */
static int
get_tlsa(const struct cur *r, struct dns_rr *rr)
{
	size_t n = r->len - r->off;

	if (n < 4)
		return -1;
	memcpy(rr->tlsa, r->b + r->off, 3);
	if ((rr->data = malloc(n - 3)) == NULL)
		return -1;
	memcpy(rr->data, r->b + r->off + 3, n - 3);
	rr->len = n - 3;
	return 0;
}

/* Decode one record of the asked type into rr. 0 ok, -1 malformed. */
static int
get_rdata(const struct cur *c, const struct rrhdr *h, struct dns_rr *rr, size_t *txt_total)
{
	struct cur r = rdata_cur(c, h);
	char name[256];

	switch (h->type) {
	case DNS_T_A:
		if (h->rdlen != 4)
			return -1;
		memcpy(rr->addr, c->b + h->rdoff, 4);
		return 0;
	case DNS_T_AAAA:
		if (h->rdlen != 16)
			return -1;
		memcpy(rr->addr, c->b + h->rdoff, 16);
		return 0;
	case DNS_T_MX:
		if (get16(&r, &rr->pref) < 0 || getname(&r, name) < 0)
			return -1;
		rr->name = strdup(name);
		return rr->name ? 0 : -1;
	case DNS_T_TXT:
		return get_txt(&r, rr, txt_total);
	case DNS_T_TLSA:
		return get_tlsa(&r, rr);
	default:
		return -1;
	}
}

/* The SOA in the authority section gives the negative TTL (RFC 2308 5). */
static uint32_t
negative_ttl(struct cur c, unsigned ns)
{
	struct rrhdr h;
	char n1[256], n2[256];
	uint32_t v[5];

	for (unsigned i = 0; i < ns; i++) {
		if (get_rrhdr(&c, &h) < 0)
			break;
		if (h.type != DNS_T_SOA)
			continue;
		struct cur r = rdata_cur(&c, &h);
		if (getname(&r, n1) < 0 || getname(&r, n2) < 0)
			break;
		for (int k = 0; k < 5; k++)
			if (get32(&r, &v[k]) < 0)
				return DNS_NEG_TTL_NOSOA;
		return h.ttl < v[4] ? h.ttl : v[4];
	}
	return DNS_NEG_TTL_NOSOA;
}

static struct dns_answer *
answer_new(size_t n)
{
	struct dns_answer *a = calloc(1, sizeof *a + n * sizeof a->rr[0]);

	if (a)
		a->refs = 1;
	return a;
}

void
dns__answer_unref(struct dns_answer *a)
{
	if (a == NULL || --a->refs > 0)
		return;
	for (size_t i = 0; i < a->n; i++) {
		free(a->rr[i].name);
		free(a->rr[i].data);
	}
	free(a->cname);
	free(a);
}

/* Pass 2: the records of qtype owned by `owner`. NULL with why on error. */
static struct dns_answer *
collect_data(struct cur c, unsigned an, const char *owner, int qtype, uint32_t ttl, char *why,
             size_t whylen)
{
	struct cur scan = c;
	struct rrhdr h;
	size_t n = 0, txt_total = 0;
	struct dns_answer *a;

	for (unsigned i = 0; i < an; i++) {
		if (get_rrhdr(&scan, &h) < 0)
			goto bad;
		if (h.type == qtype && h.cls == C_IN && dns__name_eq(h.owner, owner))
			n++;
	}
	if (n > DNS_MAX_RR)
		n = DNS_MAX_RR;
	if ((a = answer_new(n)) == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	a->type = qtype;
	a->ttl = ttl;
	for (unsigned i = 0; i < an && a->n < n; i++) {
		if (get_rrhdr(&c, &h) < 0)
			break;
		if (h.type != qtype || h.cls != C_IN || !dns__name_eq(h.owner, owner))
			continue;
		if (get_rdata(&c, &h, &a->rr[a->n], &txt_total) < 0) {
			dns__answer_unref(a);
			goto bad;
		}
		if (h.ttl < a->ttl)
			a->ttl = h.ttl;
		a->n++;
	}
	a->kind = DNS_A_DATA;
	return a;
bad:
	snprintf(why, whylen, "malformed answer");
	return NULL;
}

/* Follow qname's CNAME chain through cn; sets *end and lowers *ttl. -1 on a loop. */
static int
follow_chain(const struct cname *cn, size_t ncn, const char *qname, const char **end, uint32_t *ttl)
{
	const char *cur = qname;

	for (int hop = 0;; hop++) {
		size_t i;
		for (i = 0; i < ncn; i++)
			if (dns__name_eq(cn[i].owner, cur))
				break;
		if (i == ncn)
			break;
		if (hop == DNS_MAX_CHAIN)
			return -1;
		cur = cn[i].target;
		if (cn[i].ttl < *ttl)
			*ttl = cn[i].ttl;
	}
	*end = cur;
	return 0;
}

/* NXDOMAIN or NODATA: the negative TTL from the SOA after the answer section. */
static struct dns_answer *
denial(struct dns_answer *a, struct cur c, unsigned an, unsigned ns, bool nxdomain)
{
	struct rrhdr h;
	uint32_t neg;

	for (unsigned i = 0; i < an; i++)
		if (get_rrhdr(&c, &h) < 0)
			break;
	neg = negative_ttl(c, ns);
	a->kind = nxdomain ? DNS_A_NXDOMAIN : DNS_A_NODATA;
	a->ttl = neg < a->ttl ? neg : a->ttl;
	return a;
}

struct dns_answer *
dns__parse(const unsigned char *buf, size_t len, const char *qname, int qtype, char *why,
           size_t whylen)
{
	struct cur c = {buf, len, 0};
	uint16_t id, flags, qd, an, ns, ar;
	struct cname cn[DNS_MAX_CHAIN * 2];
	size_t ncn;
	const char *end;
	uint32_t ttl = DNS_TTL_MAX;
	struct dns_answer *a;

	if (buf == NULL || len < HDR_LEN || len > 65535 || get16(&c, &id) < 0 ||
	    get16(&c, &flags) < 0 || get16(&c, &qd) < 0 || get16(&c, &an) < 0 ||
	    get16(&c, &ns) < 0 || get16(&c, &ar) < 0 || !(flags & 0x8000)) {
		snprintf(why, whylen, "malformed answer");
		return NULL;
	}
	unsigned rcode = flags & 0xf;
	if (rcode != 0 && rcode != 3) {
		const char *t = rcode_text(rcode);
		if (t)
			snprintf(why, whylen, "%s", t);
		else
			snprintf(why, whylen, "rcode %u", rcode);
		return NULL;
	}
	if (skip_questions(&c, qd) < 0 || collect_cnames(c, an, cn, &ncn) < 0) {
		snprintf(why, whylen, "malformed answer");
		return NULL;
	}
	if (follow_chain(cn, ncn, qname, &end, &ttl) < 0) {
		snprintf(why, whylen, "CNAME chain too long");
		return NULL;
	}
	if ((a = collect_data(c, an, end, qtype, ttl, why, whylen)) == NULL)
		return NULL;
	/*
	 * RFC 4035 3.2.3 / RFC 6840 5.7: a validating resolver sets AD when it
	 * validated every RRset of the answer and authority sections, so one
	 * bit covers the whole chain inside this packet (and a denial).
	 */
	a->secure = (flags & DNS_HDR_AD) != 0;
	if (a->n > 0)
		return a;

	/* nothing of the asked type: NXDOMAIN, a dangling CNAME, or NODATA */
	if (rcode == 3 || end == qname)
		return denial(a, c, an, ns, rcode == 3);
	a->kind = DNS_A_CNAME;
	if ((a->cname = strdup(end)) == NULL) {
		dns__answer_unref(a);
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	return a;
}
