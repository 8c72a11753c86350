/*
 * config_tls: the outbound transport-security keys after parsing: the
 * tls_policy lookup by recipient domain (the setter is in config_keys.c),
 * the checks that tie keys together (a client certificate needs its key;
 * tlsrpt_from must be a mailbox) and their frees.
 */
#include "mta/shared/config_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mta/shared/addr.h"
#include "mta/shared/util.h"

const struct tls_policy_conf *
config_tls_policy(const struct config *c, const char *domain)
{
	const struct tls_policy_conf *t, *best = NULL;
	size_t dlen = strlen(domain), blen = 0;

	if (dlen && domain[dlen - 1] == '.')
		dlen--;
	for (t = c->tls_policies; t; t = t->next) {
		size_t n = strlen(t->domain);
		if (t->domain[0] != '.') {
			if (n == dlen && strncasecmp(t->domain, domain, dlen) == 0)
				return t;
			continue;
		}
		/* ".example.com" covers a.example.com, not example.com itself */
		if (dlen > n && strncasecmp(domain + dlen - n, t->domain, n) == 0 && n > blen) {
			best = t;
			blen = n;
		}
	}
	return best;
}

int
config_tls_validate(struct config_parse *p, struct config *c, int from_line)
{
	char box[320];
	const char *params;

	p->key = "tls_client_cert";
	p->line = c->tls_client_cert_line;
	if ((c->tls_client_cert == NULL) != (c->tls_client_key == NULL))
		return config_fail(p, "tls_client_cert and tls_client_key must be given together");
	p->key = "tlsrpt_from";
	p->line = from_line;
	if (c->tlsrpt_from != NULL &&
	    (addr_parse_path(c->tlsrpt_from, 0, box, sizeof box, &params) != ADDR_OK ||
	     *params != '\0' || addr_domain(box) == NULL))
		return config_fail(p, "\"%s\" is not a mailbox (local@domain)", c->tlsrpt_from);
	return 0;
}

void
config_tls_free(struct config *c)
{
	for (struct tls_policy_conf *t = c->tls_policies, *n; t; t = n) {
		n = t->next;
		free(t->domain);
		free(t);
	}
	free(c->tls_ca_file);
	free(c->tls_client_cert);
	free(c->tls_client_key);
	free(c->tlsrpt_from);
}

const char *
config_tlsrpt_from(const struct config *c, char *buf, size_t len)
{
	if (c->tlsrpt_from)
		return c->tlsrpt_from;
	snprintf(buf, len, "tlsrpt-noreply@%s", c->hostname);
	return buf;
}
