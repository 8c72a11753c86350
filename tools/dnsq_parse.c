/*
 * tools/dnsq_parse: one DNS response message read into dnsq's text (see
 * dnsq_parse.h). Every read goes through get8/get16 or a length checked
 * against the message's end first; compression pointers (RFC 1035 4.1.4)
 * are followed a bounded number of times, and a name is never longer than
 * the 255 bytes RFC 1035 2.3.4 allows.
 */
#include "tools/dnsq_parse.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define HEADER_LEN 12
#define NAME_WIRE_MAX 255
#define POINTER_MAX 64 /* compression pointers in one name: more is a loop */
#define CHAIN_MAX 8    /* CNAME hops followed inside one answer */
#define CLASS_IN 1

struct msg {
	const unsigned char *p;
	size_t len;
};

struct rr {
	char owner[DNSQ_NAME_MAX];
	unsigned type, cls;
	size_t rd, rdlen; /* rdata offset and length, inside the message */
};

static unsigned
get16(const struct msg *m, size_t off)
{
	return (unsigned)m->p[off] << 8 | m->p[off + 1];
}

/* One label byte in presentation form (RFC 1035 5.1): lowercase, "\DDD" when not plain. */
static size_t
put_label_byte(char *out, unsigned char c)
{
	if (c >= 'A' && c <= 'Z') {
		out[0] = (char)(c + ('a' - 'A'));
		return 1;
	}
	if (c > 0x20 && c < 0x7f && c != '.' && c != '\\') {
		out[0] = (char)c;
		return 1;
	}
	snprintf(out, 5, "\\%03u", c);
	return 4;
}

/*
 * The name at off into out (DNSQ_NAME_MAX bytes), lowercase, without the
 * trailing dot, "." for the root. *end: the offset after the name where it
 * starts (after its first pointer). -1 when malformed.
 */
static int
read_name(const struct msg *m, size_t off, char *out, size_t *end)
{
	size_t pos = 0, wire = 1, jumps = 0;
	bool jumped = false;

	for (;;) {
		unsigned c;

		if (off >= m->len)
			return -1;
		c = m->p[off];
		if ((c & 0xc0) == 0xc0) {
			if (off + 1 >= m->len || ++jumps > POINTER_MAX)
				return -1;
			if (!jumped)
				*end = off + 2;
			jumped = true;
			off = get16(m, off) & 0x3fff;
			continue;
		}
		if (c > 63) /* 0x40 and 0x80: extended label types (RFC 6891 5), none in use */
			return -1;
		off++;
		if (c == 0)
			break;
		wire += c + 1;
		if (c > m->len - off || wire > NAME_WIRE_MAX)
			return -1;
		if (pos > 0)
			out[pos++] = '.';
		for (unsigned i = 0; i < c; i++)
			pos += put_label_byte(out + pos, m->p[off + i]);
		off += c;
	}
	if (!jumped)
		*end = off;
	if (pos == 0)
		out[pos++] = '.';
	out[pos] = '\0';
	return 0;
}

/* The resource record at *off (RFC 1035 4.1.3); *off moves past it. -1 when malformed. */
static int
read_rr(const struct msg *m, size_t *off, struct rr *rr)
{
	size_t p;

	if (read_name(m, *off, rr->owner, &p) != 0 || m->len - p < 10)
		return -1;
	rr->type = get16(m, p);
	rr->cls = get16(m, p + 2);
	rr->rdlen = get16(m, p + 8);
	rr->rd = p + 10;
	if (rr->rdlen > m->len - rr->rd)
		return -1;
	*off = rr->rd + rr->rdlen;
	return 0;
}

/* TXT rdata: <length><bytes> character-strings joined (RFC 1035 3.3.14); a NUL as '?'. */
static char *
txt_join(const struct msg *m, const struct rr *rr)
{
	const unsigned char *rd = m->p + rr->rd;
	char *s = malloc(rr->rdlen + 1);
	size_t pos = 0, i = 0;

	if (s == NULL)
		return NULL;
	while (i < rr->rdlen) {
		size_t len = rd[i++];

		if (len > rr->rdlen - i) {
			free(s);
			return NULL;
		}
		for (size_t k = 0; k < len; k++)
			s[pos++] = rd[i + k] != '\0' ? (char)rd[i + k] : '?';
		i += len;
	}
	s[pos] = '\0';
	return s;
}

/* A name inside rr's rdata, starting at off, as text; NULL when it runs past the rdata. */
static char *
rdata_name(const struct msg *m, const struct rr *rr, size_t off)
{
	char name[DNSQ_NAME_MAX];
	size_t end;

	if (off >= rr->rd + rr->rdlen || read_name(m, off, name, &end) != 0 ||
	    end > rr->rd + rr->rdlen)
		return NULL;
	return strdup(name);
}

/* One answer record of the asked type as dnsq's text, or NULL when it is malformed. */
static char *
rr_text(const struct msg *m, const struct rr *rr)
{
	char buf[INET6_ADDRSTRLEN + 16], *host, *s;
	size_t len;

	switch (rr->type) {
	case DNSQ_T_TXT:
		return txt_join(m, rr);
	case DNSQ_T_A:
		return rr->rdlen == 4 && inet_ntop(AF_INET, m->p + rr->rd, buf, sizeof buf)
		           ? strdup(buf)
		           : NULL;
	case DNSQ_T_AAAA:
		return rr->rdlen == 16 && inet_ntop(AF_INET6, m->p + rr->rd, buf, sizeof buf)
		           ? strdup(buf)
		           : NULL;
	case DNSQ_T_PTR:
	case DNSQ_T_CNAME:
		return rdata_name(m, rr, rr->rd);
	case DNSQ_T_SOA:
		return strdup("SOA"); /* only its presence matters (dnsq_exists) */
	case DNSQ_T_MX:
		if (rr->rdlen < 3 || (host = rdata_name(m, rr, rr->rd + 2)) == NULL)
			return NULL;
		len = strlen(host) + 7; /* "PREF HOST": a 16-bit preference is at most 5 digits */
		s = malloc(len);
		if (s != NULL)
			snprintf(s, len, "%u %s", get16(m, rr->rd), host);
		free(host);
		return s;
	default:
		return NULL;
	}
}

static int
list_add(struct dnsq_list *l, char *s)
{
	char **nv;

	if (s == NULL)
		return -1;
	nv = realloc(l->v, (l->n + 1) * sizeof *nv);
	if (nv == NULL) {
		free(s);
		return -1;
	}
	l->v = nv;
	l->v[l->n++] = s;
	return 0;
}

/*
 * One pass over the answer section for the records of type owned by name:
 * appended to out; a CNAME owned by name copied to target. -1 malformed.
 */
static int
scan_answers(const struct msg *m, size_t off, unsigned an, const char *name, enum dnsq_type type,
             struct dnsq_list *out, char *target)
{
	struct rr rr;

	for (unsigned i = 0; i < an; i++) {
		if (read_rr(m, &off, &rr) != 0)
			return -1;
		if (rr.cls != CLASS_IN || strcmp(rr.owner, name) != 0)
			continue;
		if (rr.type == (unsigned)type) {
			if (list_add(out, rr_text(m, &rr)) != 0)
				return -1;
		} else if (rr.type == DNSQ_T_CNAME && target[0] == '\0') {
			char *t = rdata_name(m, &rr, rr.rd);

			if (t == NULL)
				return -1;
			snprintf(target, DNSQ_NAME_MAX, "%s", t);
			free(t);
		}
	}
	return 0;
}

/* qname as read_name writes names: lowercase, no trailing dot. -1 when too long. */
static int
norm_name(const char *qname, char *out)
{
	size_t n = strlen(qname);

	if (n > 1 && qname[n - 1] == '.')
		n--;
	if (n == 0 || n >= DNSQ_NAME_MAX)
		return -1;
	for (size_t i = 0; i < n; i++)
		out[i] =
		    (char)(qname[i] >= 'A' && qname[i] <= 'Z' ? qname[i] + ('a' - 'A') : qname[i]);
	out[n] = '\0';
	return 0;
}

/* The offset of the answer section: after the header and qd questions. -1 when malformed. */
static int
skip_questions(const struct msg *m, unsigned qd, size_t *off)
{
	char name[DNSQ_NAME_MAX];

	*off = HEADER_LEN;
	for (unsigned i = 0; i < qd; i++) {
		if (read_name(m, *off, name, off) != 0 || m->len - *off < 4)
			return -1;
		*off += 4;
	}
	return 0;
}

static enum dnsq_status
fail(struct dnsq_list *out, size_t before)
{
	while (out->n > before)
		free(out->v[--out->n]);
	return DNSQ_FAIL;
}

enum dnsq_status
dnsq_parse(const unsigned char *msg, size_t len, const char *qname, enum dnsq_type type,
           struct dnsq_list *out, char *next)
{
	struct msg m = {msg, len};
	char cur[DNSQ_NAME_MAX], target[DNSQ_NAME_MAX], q[DNSQ_NAME_MAX];
	size_t off, before = out->n;
	unsigned rcode, hops;

	next[0] = '\0';
	/* a response (QR set, RFC 1035 4.1.1) with a header and the name we asked */
	if (len < HEADER_LEN || !(msg[2] & 0x80) || norm_name(qname, q) != 0)
		return DNSQ_FAIL;
	rcode = msg[3] & 0x0f;
	if (rcode == 3)
		return DNSQ_NXDOMAIN; /* for the end of any chain too (RFC 6604 2.1) */
	if (rcode != 0 || skip_questions(&m, get16(&m, 4), &off) != 0)
		return DNSQ_FAIL; /* SERVFAIL, REFUSED...: nothing can be concluded */
	memcpy(cur, q, sizeof cur);
	for (hops = 0; hops <= CHAIN_MAX; hops++) {
		target[0] = '\0';
		if (scan_answers(&m, off, get16(&m, 6), cur, type, out, target) != 0)
			return fail(out, before);
		if (out->n > before)
			return DNSQ_OK;
		if (target[0] == '\0')
			break;
		/* RFC 1034 3.6.2: the data is at the alias' target */
		memcpy(cur, target, sizeof cur);
	}
	if (hops > CHAIN_MAX)
		return DNSQ_FAIL; /* a CNAME loop */
	if (strcmp(cur, q) != 0)
		snprintf(next, DNSQ_NAME_MAX, "%s", cur);
	return DNSQ_NODATA;
}
