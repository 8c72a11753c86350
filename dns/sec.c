/*
 * sec: TLSA, TXT and host-address lookups with the DNSSEC "secure" flag
 * (dns.h). Placeholder until the DNS security work lands: every call
 * reports that nothing was started.
 */
#include <errno.h>

#include "dns/dns_int.h"

struct dns_query *
dns_resolve_tlsa(struct dns *d, const char *host, unsigned port, dns_tlsa_cb cb, void *arg)
{
	(void)d, (void)host, (void)port, (void)cb, (void)arg;
	errno = ENOSYS;
	return NULL;
}

struct dns_query *
dns_resolve_txt(struct dns *d, const char *name, dns_txt_cb cb, void *arg)
{
	(void)d, (void)name, (void)cb, (void)arg;
	errno = ENOSYS;
	return NULL;
}

struct dns_query *
dns_resolve_addrs(struct dns *d, const char *host, dns_mx_cb cb, void *arg)
{
	(void)d, (void)host, (void)cb, (void)arg;
	errno = ENOSYS;
	return NULL;
}

bool
dns_resolver_trusted(const struct dns *d)
{
	(void)d;
	return false;
}
