/* cidr: network parsing and matching (see cidr.h). */
#include "mta/shared/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
cidr_parse(struct cidr *out, const char *s, char *err, size_t errlen)
{
	char buf[INET6_ADDRSTRLEN + 8];
	char *slash, *end;
	int maxbits, i;
	long prefix;
	size_t len = strlen(s);

	if (len >= sizeof(buf))
		goto bad;
	memcpy(buf, s, len + 1);
	memset(out, 0, sizeof(*out));
	slash = strchr(buf, '/');
	if (slash != NULL)
		*slash = '\0';
	if (inet_pton(AF_INET, buf, out->addr) == 1) {
		out->family = AF_INET;
		maxbits = 32;
	} else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		out->family = AF_INET6;
		maxbits = 128;
	} else
		goto bad;
	prefix = maxbits;
	if (slash != NULL) {
		if (slash[1] < '0' || slash[1] > '9')
			goto bad;
		prefix = strtol(slash + 1, &end, 10);
		if (*end != '\0' || prefix < 0 || prefix > maxbits)
			goto bad;
	}
	out->prefix = (int)prefix;
	/* host bits set is almost always a typo ("10.0.0.1/8"): refuse it */
	for (i = out->prefix; i < maxbits; i++)
		if (out->addr[i / 8] & (0x80 >> (i % 8))) {
			snprintf(err, errlen, "\"%s\" has host bits set", s);
			return -1;
		}
	return 0;
bad:
	snprintf(err, errlen, "\"%s\" is not an IP address or CIDR network", s);
	return -1;
}

int
cidr_list_parse(struct cidr_list *out, const char *s, char *err, size_t errlen)
{
	char *copy = strdup(s), *tok, *save = NULL;
	int rc = -1;

	if (copy == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (tok = strtok_r(copy, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
		struct cidr c;
		if (cidr_parse(&c, tok, err, errlen) != 0)
			goto done;
		struct cidr *v = realloc(out->v, (out->n + 1) * sizeof(*v));
		if (v == NULL)
			goto done;
		out->v = v;
		out->v[out->n++] = c;
	}
	rc = 0;
done:
	free(copy);
	return rc;
}

void
cidr_list_free(struct cidr_list *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Peer address as (family, bytes), unwrapping IPv4-mapped IPv6. */
static int
peer_bytes(const struct sockaddr *sa, unsigned char *b)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (sa->sa_family == AF_INET) {
		memcpy(b, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return AF_INET;
	}
	if (sa->sa_family == AF_INET6) {
		const unsigned char *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		if (memcmp(a, mapped, 12) == 0) {
			memcpy(b, a + 12, 4);
			return AF_INET;
		}
		memcpy(b, a, 16);
		return AF_INET6;
	}
	return -1;
}

bool
cidr_match(const struct cidr *c, const struct sockaddr *sa)
{
	unsigned char b[16];
	int full, rem;

	if (peer_bytes(sa, b) != c->family)
		return false;
	full = c->prefix / 8;
	rem = c->prefix % 8;
	if (memcmp(b, c->addr, (size_t)full) != 0)
		return false;
	if (rem == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rem));
	return (b[full] & mask) == c->addr[full];
}

bool
cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa)
{
	size_t i;
	for (i = 0; i < l->n; i++)
		if (cidr_match(&l->v[i], sa))
			return true;
	return false;
}

void
cidr_addr_text(const struct sockaddr *sa, char *out, size_t outlen)
{
	unsigned char b[16];
	int fam = peer_bytes(sa, b);

	if (fam < 0 || inet_ntop(fam, b, out, (socklen_t)outlen) == NULL)
		snprintf(out, outlen, "unknown");
}

const struct sockaddr *
cidr_addr_parse(const char *ip, struct sockaddr_storage *ss)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (ip == NULL)
		return NULL;
	if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		return (const struct sockaddr *)ss;
	}
	if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		return (const struct sockaddr *)ss;
	}
	return NULL;
}
