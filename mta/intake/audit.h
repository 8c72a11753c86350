/*
 * audit: what the legacy-client audit learns from one accepted message
 * (spool/spool_audit.c stores it). Part of the SMTP server: it reads the
 * session (TLS version and cipher, AUTH, allowlist, envelope sender) and
 * the message's header From, and fills a spool_audit_in that rides along
 * with the message into the spool writer's transaction.
 */
#ifndef MXRELAY_AUDIT_H
#define MXRELAY_AUDIT_H

#include <stddef.h>

#include "mta/shared/addr.h"
#include "spool/spool.h"

#define AUDIT_FROM_MAX 5 /* header From mailboxes recorded per message */

struct audit_msg {
	struct spool_audit_in in;
	char from[AUDIT_FROM_MAX][ADDR_MAX];
	const char *fromv[AUDIT_FROM_MAX];
};

struct session;

/*
 * Fill a for the message s is about to spool; from/from_len: its header
 * From (a mailbox list, read with addr_list_next), may be empty. Returns &a->in, which points into
 * a and into s (ip, TLS names, user, envelope sender): both must stay
 * unchanged until the writer job that carries it is done.
 */
const struct spool_audit_in *audit_fill(struct audit_msg *a, const struct session *s,
                                        const char *from, size_t from_len);

#endif
