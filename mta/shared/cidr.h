/*
 * cidr: IPv4/IPv6 networks for allowlists ("192.0.2.0/24", "2001:db8::/32",
 * a bare address means a host route). IPv4-mapped IPv6 peers
 * (::ffff:192.0.2.1) match IPv4 networks.
 */
#ifndef MXRELAY_CIDR_H
#define MXRELAY_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct cidr {
	int family;		/* AF_INET or AF_INET6 */
	unsigned char addr[16];	/* network order, host bits cleared */
	int prefix;
};

struct cidr_list {
	struct cidr *v;
	size_t n;
};

/* Parse one network. 0 / -1 (err names the bad text). Host bits must be zero. */
int cidr_parse(struct cidr *out, const char *s, char *err, size_t errlen);

/* Parse a list separated by spaces and/or commas. 0 / -1. out must be zeroed or freed. */
int cidr_list_parse(struct cidr_list *out, const char *s, char *err, size_t errlen);
void cidr_list_free(struct cidr_list *l);

bool cidr_match(const struct cidr *c, const struct sockaddr *sa);
bool cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa);

/* Text of a peer address ("192.0.2.1" or "2001:db8::1", mapped v4 shown as v4). */
void cidr_addr_text(const struct sockaddr *sa, char *out, size_t outlen);

/*
 * The reverse: ip ("192.0.2.1", "2001:db8::1") as a socket address in *ss,
 * returned; NULL when ip is NULL or no address (the spool's "local (uid N)").
 */
const struct sockaddr *cidr_addr_parse(const char *ip, struct sockaddr_storage *ss);

#endif
