/*
 * bounce: delivery status notifications (RFC 3464 in an RFC 6522
 * multipart/report), for failed and for delayed recipients.
 *
 * Owns: the DSN text and its shape. Never: touches the spool, sends mail,
 * logs, or decides WHEN to bounce (sched and deliver do). The caller stores
 * the result as a new message (spool_update.bounce) with:
 *   - the NULL envelope sender "" (RFC 5321 4.5.5, RFC 3464 2), so a DSN
 *     can never cause another DSN;
 *   - the original envelope sender as the only recipient (or the owner
 *     address of a bounce_owner rule, bounce_info.owner);
 *   - only when bounce_wanted(original sender) says so: a message whose
 *     sender is "" (a bounce itself) or MAILER-DAEMON@... is never bounced,
 *     or two relays could bounce a message back and forth for ever.
 *
 * The result is 7-bit, CRLF, every line at most 998 octets (RFC 5322
 * 2.1.1). Only part 3 (the original header block, as is) can hold 8-bit
 * bytes; it then says "Content-Transfer-Encoding: 8bit" and the caller must
 * send the DSN with BODY=8BITMIME (SMTPUTF8 when the original had it).
 */
#ifndef MXRELAY_BOUNCE_H
#define MXRELAY_BOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "spool/spool.h"

/* The original header block copied into part 3 is cut (at a line end) here. */
#define BOUNCE_HEADERS_MAX (64 * 1024)
/* A remote reply is cut to this many octets (after cleaning) in the DSN. */
#define BOUNCE_DIAG_MAX 1024

/* One recipient to report. All strings borrowed; any may hold hostile bytes. */
struct bounce_rcpt {
	const char *address;    /* envelope recipient, required */
	const char *status;     /* RFC 3463 "x.y.z"; NULL or malformed: 5.0.0 / 4.0.0 */
	const char *remote_mta; /* host name of the MX that answered, or NULL */
	const char *diagnostic; /* remote reply (CR/LF allowed) or local text, or NULL */
};

/* One notice: every recipient in it shares the kind (failed or delayed). */
struct bounce_info {
	const char *hostname;    /* our name: From, Message-ID, Reporting-MTA */
	const char *qid;         /* queue id of the original message, may be NULL */
	const char *orig_sender; /* envelope sender of the original: the To */
	time_t arrival;          /* when we accepted the original (Arrival-Date) */
	int delayed;             /* 0: "failed" notice; 1: "delayed" (still retried) */
	const struct bounce_rcpt *rcpts;
	size_t nrcpts;    /* at least 1 */
	const char *orig; /* original message (headers + body), may be NULL */
	size_t orig_len;
	/* bounce_owner (issue 15): NULL, or the address the DSN goes to instead
	 * of orig_sender: it is the To, and the text says why */
	const char *owner;
};

/*
 * Build the complete DSN message (header and body) into *out, a malloc'd
 * buffer of *outlen bytes plus a NUL (not counted) that the caller frees.
 * Date and Last-Attempt-Date are the time of the call. -1 with a reason in
 * err (and *out NULL) on a bad hostname, a null or MAILER-DAEMON sender (see
 * bounce_wanted), no recipients, or out of memory.
 */
int bounce_build(const struct bounce_info *bi, char **out, size_t *outlen, char *err,
                 size_t errlen);

/*
 * May a message from envelope SENDER be bounced? false for NULL, the null
 * sender "" and MAILER-DAEMON (any case, with or without @domain).
 */
bool bounce_wanted(const char *sender);

/*
 * The DSN as a message for the spool: a new queue id, from <> (RFC 5321
 * 4.5.5) to the original sender `to`, through *rcpt_slot (the caller's: it
 * must live as long as in). in is cleared first; body is borrowed.
 */
struct spool_msg_in;
void bounce_msg_in(struct spool_msg_in *in, const char **rcpt_slot, const char *to,
                   const char *body, size_t len, time_t when);

/*
 * postmaster_bounce_copy (issue 16; Postfix's notify_classes = bounce): a
 * copy of the notice of bi for the postmaster address `to`: the same
 * report (the original's headers only, never its body) with To: `to`, a
 * "Postmaster Copy:" subject and a line saying whose notice it copies.
 * bc->in is the message for the spool (spool_update.bounce_copy), from <>,
 * a new queue id; bc owns its body: bounce_copy_clear frees it. 0 / -1
 * with err (then bc holds nothing).
 */
struct bounce_copy {
	char *body;
	size_t len;
	struct spool_msg_in in;
	const char *rcpt; /* in.rcpts points here */
};
int bounce_copy_make(struct bounce_copy *bc, const struct bounce_info *bi, const char *to,
                     time_t when, char *err, size_t errlen);
void bounce_copy_clear(struct bounce_copy *bc);

#endif
