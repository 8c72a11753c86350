/* audit: one accepted message as the legacy-client audit sees it (see audit.h). */
#include "mta/intake/audit.h"

#include <string.h>
#include <time.h>

const struct spool_audit_in *
audit_fill(struct audit_msg *a, const struct audit_client *cl, const char *from, size_t from_len)
{
	struct spool_audit_in *in = &a->in;
	struct addr_list l;
	size_t n = 0;

	memset(in, 0, sizeof(*in));
	/* for everyone, not only AUTH users: the audit lists what each device claims to be */
	addr_list_init(&l, from ? from : "", from ? from_len : 0, 0);
	while (n < AUDIT_FROM_MAX &&
	       addr_list_next(&l, a->from[n], sizeof(a->from[n])) == ADDR_OK) {
		a->fromv[n] = a->from[n];
		n++;
	}
	in->client_ip = cl->ip;
	in->auth_user = cl->auth_user;
	in->tls_version = cl->tls_version ? cl->tls_version : "";
	in->tls_cipher = cl->tls_version ? cl->tls_cipher : "";
	in->auth_mech = cl->auth_user ? cl->auth_mech : "";
	in->plaintext_auth = cl->auth_user != NULL && cl->tls_version == NULL;
	in->allowlisted = cl->allowlisted && cl->auth_user == NULL;
	in->sender = cl->sender;
	in->header_from = a->fromv;
	in->nheader_from = n;
	in->when = time(NULL);
	return in;
}
