/*
 * Building DNS response packets byte by byte (RFC 1035 4.1), for the tests
 * that feed canned answers to dns/'s parser or serve them over UDP
 * (header-only: each test is one program). Include after <cmocka.h> and
 * "dns/dns_int.h".
 */
#ifndef MXRELAY_DNSPKT_H
#define MXRELAY_DNSPKT_H

#include <stdint.h>
#include <string.h>

struct pkt {
	unsigned char b[4096];
	size_t n;
};

static inline void
put8(struct pkt *p, unsigned v)
{
	assert_true(p->n < sizeof p->b);
	p->b[p->n++] = (unsigned char)v;
}

static inline void
put16(struct pkt *p, unsigned v)
{
	put8(p, v >> 8 & 0xff);
	put8(p, v & 0xff);
}

static inline void
put32(struct pkt *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p, v & 0xffff);
}

/* A name as uncompressed labels; "" is the root. */
static inline void
putname(struct pkt *p, const char *name)
{
	while (*name) {
		const char *dot = strchr(name, '.');
		size_t len = dot ? (size_t)(dot - name) : strlen(name);
		put8(p, (unsigned)len);
		for (size_t i = 0; i < len; i++)
			put8(p, (unsigned char)name[i]);
		name += len + (dot ? 1 : 0);
	}
	put8(p, 0);
}

/* Start p afresh: header (id, flags word, one question, an answers, ns
 * authority records, no additional), then the question, class IN. */
static inline void
pkt_header(struct pkt *p, unsigned id, unsigned flags, unsigned an, unsigned ns, const char *qname,
           int qtype)
{
	p->n = 0;
	put16(p, id);
	put16(p, flags);
	put16(p, 1);
	put16(p, an);
	put16(p, ns);
	put16(p, 0);
	putname(p, qname);
	put16(p, (unsigned)qtype);
	put16(p, 1);
}

/* Owner, type, class IN, ttl; returns where rdlength goes (fill with rdlen()). */
static inline size_t
rr_start(struct pkt *p, const char *owner, int type, uint32_t ttl)
{
	size_t at;

	putname(p, owner);
	put16(p, (unsigned)type);
	put16(p, 1);
	put32(p, ttl);
	at = p->n;
	put16(p, 0);
	return at;
}

/* The rdlength at `at`: what was put since. */
static inline void
rdlen(struct pkt *p, size_t at)
{
	p->b[at] = (unsigned char)((p->n - at - 2) >> 8);
	p->b[at + 1] = (unsigned char)((p->n - at - 2) & 0xff);
}

/*
 * p parsed by dns/'s parser as the answer to (qname, qtype), failing the
 * test under label unless it goes as expected: error NULL, an answer (the
 * caller unrefs it); else NULL, the parser having said error.
 */
static inline struct dns_answer *
tu_parse(const struct pkt *p, const char *label, const char *qname, int qtype, const char *error)
{
	char why[64] = "";
	struct dns_answer *a = dns__parse(p->b, p->n, qname, qtype, why, sizeof why);

	if (error != NULL) {
		if (a != NULL || strcmp(why, error) != 0)
			fail_msg("%s: expected error \"%s\", got \"%s\"", label, error, why);
		return NULL;
	}
	if (a == NULL)
		fail_msg("%s: parse failed: %s", label, why);
	return a;
}

#endif
