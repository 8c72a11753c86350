/*
 * reply: every reply the daemon sends to a client, and every outcome it
 * records for a delivery, in one table: an enum of outcomes mapped to the
 * reply code (RFC 5321 4.2), the enhanced status code (RFC 3463) and the
 * text. Nobody else writes "550 5.x.y ..." literals or parses them back:
 * callers name an outcome, and reply_format renders it.
 *
 * A template's "%s" marks take the string arguments of reply_format in
 * order (only strings: callers render numbers first), so the table holds
 * no printf formats.
 */
#ifndef MXRELAY_REPLY_H
#define MXRELAY_REPLY_H

#include <stdbool.h>
#include <stddef.h>

enum reply_id {
	R_NONE = 0, /* no reply: acceptable / nothing to say */

	/* intake: the end of DATA or of a local submission (mta/intake/) */
	R_QUEUED,             /* 250 2.0.0 Ok: queued as QID */
	R_SPOOL_FULL,         /* 452 4.3.1 */
	R_LOCAL_ERROR,        /* 451 4.3.0 */
	R_DKIM_FAILED,        /* 451 4.3.0 */
	R_DKIM_NO_KEY,        /* 550 5.7.1 */
	R_BARE_LINE_END,      /* 550 5.6.0 */
	R_NUL_BYTE,           /* 550 5.6.0 */
	R_MSG_TOO_BIG,        /* 552 5.3.4 */
	R_HEADER_TOO_BIG,     /* 552 5.3.4 */
	R_LINE_TOO_LONG,      /* 550 5.6.0 */
	R_FROM_NONE,          /* 550 5.7.1 no From header */
	R_FROM_MANY,          /* 550 5.7.1 more than one From header */
	R_FROM_NOT_ONE,       /* 550 5.7.1 From is not exactly one mailbox: DETAIL */
	R_FROM_TOO_LONG,      /* 550 5.7.1 */
	R_HDR_TOO_LONG,       /* 550 5.7.1 Header NAME too long */
	R_HDR_NOT_ADDR,       /* 550 5.7.1 Header NAME is not WHAT: DETAIL */
	R_HDR_TOO_MANY_BOXES, /* 550 5.7.1 */
	R_SENDER_MANY,        /* 550 5.7.1 more than one Sender header */
	R_FROM_NOT_ALLOWED,   /* 550 5.7.1 (AUTH user's allowed senders) */
	R_SENDER_NOT_ALLOWED,
	R_RESENT_FROM_NOT_ALLOWED,
	R_RESENT_SENDER_NOT_ALLOWED,

	/* shared by every listener and socket */
	R_SHUTTING_DOWN, /* 421 4.3.2 HOST Service shutting down */

	/* smtpd: greeting, commands, AUTH, PROXY, session limits (mta/smtpd/) */
	R_SMTPD_FIRST_,

	/* delivery: outcomes recorded for recipients (mta/delivery/) */
	R_DELIVERY_FIRST_,
	R_DLV_NO_DOT_250,    /* 451 4.3.0 no 250 to the message data from RELAY */
	R_DLV_PROTOCOL,      /* 451 4.5.0 WHY (the server broke the protocol) */
	R_DLV_LOST,          /* 451 4.4.2 HOW with RELAY during WHAT */
	R_DLV_NO_SMTPUTF8,   /* 553 5.6.7 */
	R_DLV_NO_8BITMIME,   /* 554 5.6.3 */
	R_DLV_TOO_BIG,       /* 552 5.3.4 message size N exceeds RELAY's limit N */
	R_DLV_ALL_MX_FAILED, /* 451 4.4.1 */
	R_DLV_NO_CONNECTION, /* 451 4.4.0 (socket or bind failed for every target) */
	R_DLV_NXDOMAIN,      /* 550 5.1.2 REASON */
	R_DLV_NULL_MX,       /* 556 5.1.10 (RFC 7505) */
	R_DLV_DNS_FAILED,    /* 451 4.4.3 REASON */
	R_DLV_DNS_START,     /* 451 4.4.3 cannot start a DNS query */
	R_DLV_BAD_IDN,       /* 501 5.1.2 */
	R_DLV_BAD_DOMAIN,    /* 501 5.1.2 */
	R_DLV_EXPIRED,       /* 554 5.4.7 message expired after N UNIT; last: REPLY */

	/* control: local submission envelope, queue commands (mta/control/) */
	R_CONTROL_FIRST_,

	R__COUNT
};

/* What a refusal counts as in the metrics (mxrelay_rejected_total{reason}). */
enum reply_class { RC_NONE, RC_POLICY, RC_SIZE, RC_CONTENT, RC_SYSTEM };

unsigned reply_code(enum reply_id id);      /* 250, 550, ... */
const char *reply_status(enum reply_id id); /* "5.7.1" */
enum reply_class reply_class(enum reply_id id);

/*
 * "CODE X.Y.Z text" into buf (always NUL-terminated, cut to fit), each "%s"
 * of the template replaced by the next const char * argument (NULL reads
 * as ""). Returns the length written.
 */
size_t reply_format(char *buf, size_t len, enum reply_id id, ...);

/* The same without "CODE X.Y.Z ": the text alone (JSON errors, logs). */
size_t reply_format_text(char *buf, size_t len, enum reply_id id, ...);

/*
 * The code and enhanced status code of a reply line that someone else wrote
 * (a remote server's reply, recorded): "550 5.1.1 text" gives 550 and 5, 1, 1.
 * false when the line does not start that way (the code alone may still be set).
 */
bool reply_parse(const char *line, unsigned *code, unsigned *cls, unsigned *subj, unsigned *det);

#endif
