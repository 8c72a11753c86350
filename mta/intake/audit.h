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

/*
 * Events counted in a client's audit row without a message being accepted
 * (issue 15): the client is identified as for audit_fill (its address and
 * AUTH user, NULL when none). Loop thread only; never blocks: the counts
 * are summed in memory and reach the spool's audit row (schema 7 columns)
 * through a writer job (mta/intake/audit_event.c).
 */
enum audit_event {
	AUDIT_EV_SUNSET_WARN,    /* a use within 30 days before its sunset date */
	AUDIT_EV_SUNSET_REFUSED, /* refused because its sunset date has passed */
	AUDIT_EV_RATE_LIMITED,   /* a rate_limit refused a message or recipient (451 4.7.1) */
	AUDIT_EV_REPAIRED,       /* header_repair changed a message */
	AUDIT_EV_BARE_LF,        /* bare LF line ends normalised in a message */
};

struct server;

void audit_event(struct server *srv, const char *client_ip, const char *auth_user,
                 enum audit_event ev);

#endif
