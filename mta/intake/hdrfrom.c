/* hdrfrom: From, Sender and Resent-* as intake reads them (see hdrfrom.h). */
#include "mta/intake/hdrfrom.h"

#include <stdio.h>
#include <string.h>

#include "mta/intake/dispname.h"
#include "mta/shared/creds.h"
#include "mta/shared/util.h"

static const char *const kind_name[] = {"", "From", "Sender", "Resent-From", "Resent-Sender"};

static enum hdrfrom_kind
kind_of(const char *name, size_t n)
{
	for (int k = HF_FROM; k <= HF_RESENT_SENDER; k++)
		if (strlen(kind_name[k]) == n && util_strncaseeq(name, kind_name[k], n))
			return (enum hdrfrom_kind)k;
	return HF_NONE;
}

static void
set_err(struct hdrfrom_refusal *r, enum reply_id id, const char *a0, const char *a1, const char *a2)
{
	r->id = id;
	r->arg[0] = a0;
	r->arg[1] = a1;
	r->arg[2] = a2;
}

static void
keep_box(struct hdrfrom *h, const char *addr, enum hdrfrom_kind kind)
{
	if (h->nboxes == HDRFROM_BOXES_MAX) {
		if (h->other_err.id == R_NONE)
			set_err(&h->other_err, R_HDR_TOO_MANY_BOXES, NULL, NULL, NULL);
		return;
	}
	snprintf(h->boxes[h->nboxes].addr, ADDR_MAX, "%s", addr);
	h->boxes[h->nboxes++].kind = kind;
}

/* Sender and Resent-Sender: one mailbox (3.6.2); Resent-From: a mailbox-list (3.6.6). */
static void
end_other(struct hdrfrom *h)
{
	const char *name = kind_name[h->kind];
	char box[ADDR_MAX];
	enum addr_status st;
	struct addr_list l;
	size_t n = 0;

	if (h->other_err.id != R_NONE)
		return; /* refused already */
	if (h->cut) {
		set_err(&h->other_err, R_HDR_TOO_LONG, name, NULL, NULL);
		return;
	}
	if (h->kind != HF_RESENT_FROM) {
		st = addr_header_mailbox(h->val, h->len, box, sizeof(box));
		if (st == ADDR_OK)
			keep_box(h, box, h->kind);
	} else {
		addr_list_init(&l, h->val, h->len, 0);
		for (; (st = addr_list_next(&l, box, sizeof(box))) == ADDR_OK; n++)
			keep_box(h, box, h->kind);
		if (st == ADDR_END)
			st = n ? ADDR_OK : ADDR_EMPTY;
	}
	if (st != ADDR_OK)
		set_err(&h->other_err, R_HDR_NOT_ADDR, name,
		        h->kind == HF_RESENT_FROM ? "a list of valid mailboxes"
		                                  : "exactly one valid mailbox",
		        addr_strerror(st));
}

static void
end_field(struct hdrfrom *h)
{
	enum addr_status st;

	if (h->kind == HF_FROM && h->nfrom == 1) {
		if (h->cut) {
			set_err(&h->from_err, R_FROM_TOO_LONG, NULL, NULL, NULL);
		} else if ((st = addr_header_mailbox(h->val, h->len, h->from, sizeof(h->from))) !=
		           ADDR_OK) {
			h->from[0] = '\0';
			set_err(&h->from_err, R_FROM_NOT_ONE, addr_strerror(st), NULL, NULL);
		} else if (!dispname_foreign(h->val, h->len, h->from, h->shown, sizeof(h->shown))) {
			h->shown[0] = '\0';
		}
	} else if (h->kind != HF_NONE && h->kind != HF_FROM) {
		end_other(h);
	}
	h->kind = HF_NONE;
	h->len = 0;
	h->cut = false;
}

void
hdrfrom_fold(struct hdrfrom *h, const char *p, size_t n)
{
	if (h->kind == HF_NONE)
		return;
	if (h->len + n > sizeof(h->val)) {
		h->cut = true;
		return;
	}
	memcpy(h->val + h->len, p, n);
	h->len += n;
}

void
hdrfrom_field(struct hdrfrom *h, const char *name, size_t namelen, const char *value, size_t n)
{
	end_field(h);
	h->kind = kind_of(name, namelen);
	if (h->kind == HF_FROM)
		h->nfrom++;
	else if (h->kind == HF_SENDER)
		h->nsender++;
	hdrfrom_fold(h, value, n);
}

void
hdrfrom_end(struct hdrfrom *h)
{
	end_field(h);
}

int
hdrfrom_fill(struct hdrfrom *h, const char *sender)
{
	if (h->nfrom > 0 || sender == NULL || sender[0] == '\0' || strlen(sender) >= ADDR_MAX)
		return -1;
	snprintf(h->from, sizeof(h->from), "%s", sender);
	h->nfrom = 1;
	return 0;
}

enum reply_id
hdrfrom_refusal(const struct hdrfrom *h, struct hdrfrom_refusal *r)
{
	set_err(r, R_NONE, NULL, NULL, NULL);
	/* two From fields would let a second reader pick another author and DKIM domain */
	if (h->nfrom > 1)
		r->id = R_FROM_MANY;
	else if (h->nfrom == 0)
		r->id = R_FROM_NONE;
	else
		*r = h->from_err;
	return r->id;
}

enum reply_id
hdrfrom_cred_refusal(const struct hdrfrom *h, const struct cred *c, struct hdrfrom_refusal *r)
{
	static const enum reply_id not_allowed[] = {R_NONE, R_NONE, R_SENDER_NOT_ALLOWED,
	                                            R_RESENT_FROM_NOT_ALLOWED,
	                                            R_RESENT_SENDER_NOT_ALLOWED};

	if (hdrfrom_refusal(h, r) != R_NONE)
		return r->id;
	if (c == NULL || creds_sender_allowed(c, h->from) != 0)
		r->id = R_FROM_NOT_ALLOWED;
	else if (h->nsender > 1)
		r->id = R_SENDER_MANY;
	else if (h->other_err.id != R_NONE)
		*r = h->other_err;
	for (size_t i = 0; r->id == R_NONE && i < h->nboxes; i++)
		if (creds_sender_allowed(c, h->boxes[i].addr) != 0)
			r->id = not_allowed[h->boxes[i].kind];
	return r->id;
}

const char *
hdrfrom_mailbox(const struct hdrfrom *h)
{
	return h->from;
}

const char *
hdrfrom_shown(const struct hdrfrom *h)
{
	return h->shown;
}
