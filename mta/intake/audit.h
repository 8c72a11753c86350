/*
 * audit: what the legacy-client audit learns from one accepted message
 * (spool/spool_audit.c stores it): the client's TLS version and cipher,
 * AUTH, allowlist and envelope sender as the SMTP server describes them
 * (struct audit_client), and the message's header From. It fills a
 * spool_audit_in that rides along with the message into the spool
 * writer's transaction. Knows nothing of sessions.
 */
#ifndef MXRELAY_AUDIT_H
#define MXRELAY_AUDIT_H

#include <stdbool.h>
#include <stddef.h>

#include "mta/shared/addr.h"
#include "spool/spool.h"

#define AUDIT_FROM_MAX 5 /* header From mailboxes recorded per message */

struct audit_msg {
	struct spool_audit_in in;
	char from[AUDIT_FROM_MAX][ADDR_MAX];
	const char *fromv[AUDIT_FROM_MAX];
};

/* The SMTP client of one message, as the audit records it. */
struct audit_client {
	const char *ip;
	const char *auth_user;   /* NULL: not authenticated */
	const char *auth_mech;   /* with auth_user */
	const char *tls_version; /* NULL: no TLS */
	const char *tls_cipher;  /* with tls_version */
	bool allowlisted;        /* relay_from allowed it */
	const char *sender;      /* the envelope sender ("" for <>) */
};

/*
 * Fill a for the message cl is about to spool; from/from_len: its header
 * From (a mailbox list, read with addr_list_next), may be empty. Returns
 * &a->in, which points into a and into cl's strings: both must stay
 * unchanged until the writer job that carries it is done.
 */
const struct spool_audit_in *audit_fill(struct audit_msg *a, const struct audit_client *cl,
                                        const char *from, size_t from_len);

#endif
