/*
 * hdrfrom: the author fields of a message header (From, Sender, Resent-From,
 * Resent-Sender: RFC 5322 3.6.2, 3.6.6) as intake reads them line by line,
 * and the policy on them. Shared by SMTP DATA and local submission
 * (intake.c over content.c), so both judge a header alike.
 *
 * The relay must read these fields as receivers do: each is parsed
 * strictly (addr.h), and a field that does not parse refuses the message;
 * nothing is skipped. From must be exactly one mailbox for everyone (DKIM
 * picks its signing domain from it); an authenticated user's credential
 * must allow it and every Sender / Resent-* mailbox too. Never reads
 * outside the octets it was handed; holds no pointers into them.
 */
#ifndef MXRELAY_HDRFROM_H
#define MXRELAY_HDRFROM_H

#include <stdbool.h>
#include <stddef.h>

#include "mta/reply.h"
#include "mta/shared/addr.h"

#define HDRFROM_FIELD_MAX 2048 /* one field, folded lines included; longer: refused */
#define HDRFROM_BOXES_MAX 16   /* Sender and Resent-* mailboxes kept for the AUTH check */

struct cred;

enum hdrfrom_kind { HF_NONE, HF_FROM, HF_SENDER, HF_RESENT_FROM, HF_RESENT_SENDER };

struct hdrfrom_box {
	char addr[ADDR_MAX];
	enum hdrfrom_kind kind;
};

/*
 * A refusal: its reply id (R_NONE: acceptable) and the strings for the
 * "%s" marks of its template, in order (static texts: valid for ever).
 */
struct hdrfrom_refusal {
	enum reply_id id;
	const char *arg[3];
};

struct hdrfrom {                /* fields private to hdrfrom.c; zeroed memory is a fresh one */
	enum hdrfrom_kind kind; /* the field being read */
	char val[HDRFROM_FIELD_MAX];
	size_t len;
	bool cut;
	unsigned nfrom, nsender;
	char from[ADDR_MAX];              /* the From mailbox, once it parsed */
	char shown[ADDR_MAX];             /* another domain's address it shows (dispname.h) */
	struct hdrfrom_refusal from_err;  /* why From is refused; R_NONE so far fine */
	struct hdrfrom_refusal other_err; /* the same for Sender and Resent-* */
	struct hdrfrom_box boxes[HDRFROM_BOXES_MAX];
	size_t nboxes;
};

/*
 * A header field begins: name (namelen octets, no colon) and value (the n
 * octets after the colon, line end included). Ends the previous field.
 */
void hdrfrom_field(struct hdrfrom *h, const char *name, size_t namelen, const char *value,
                   size_t n);

/* A continuation line (leading WSP, line end included) of the current field. */
void hdrfrom_fold(struct hdrfrom *h, const char *p, size_t n);

/* The header ended: finish the last field. */
void hdrfrom_end(struct hdrfrom *h);

/*
 * missing_from = envelope: a header without From gets sender (the envelope
 * sender, not "") as its From. 0: the caller adds "From: <sender>" to the
 * message; -1: nothing to fill (a From exists, or the null sender).
 */
int hdrfrom_fill(struct hdrfrom *h, const char *sender);

/*
 * The refusal for everyone (R_FROM_*: several From, unreadable, missing)
 * into *r; returns r->id (R_NONE: acceptable).
 */
enum reply_id hdrfrom_refusal(const struct hdrfrom *h, struct hdrfrom_refusal *r);

/*
 * The refusal for a user restricted to c's senders (NULL c: the user
 * vanished): From, Sender and Resent-* (R_FROM_*, R_HDR_*, R_*_NOT_ALLOWED).
 */
enum reply_id hdrfrom_cred_refusal(const struct hdrfrom *h, const struct cred *c,
                                   struct hdrfrom_refusal *r);

/* The From mailbox ("" when there is none that parsed). */
const char *hdrfrom_mailbox(const struct hdrfrom *h);

/*
 * An address of another domain than the From mailbox's that the From
 * field shows in its display name or a comment (dispname.h), "" when none:
 * for the display_name_address policy (intake.c).
 */
const char *hdrfrom_shown(const struct hdrfrom *h);

#endif
