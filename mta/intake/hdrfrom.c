/* hdrfrom: From, Sender and Resent-* as intake reads them (see hdrfrom.h). */
#include "mta/intake/hdrfrom.h"

#include <stdio.h>
#include <string.h>

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
keep_box(struct hdrfrom *h, const char *addr, enum hdrfrom_kind kind)
{
	if (h->nboxes == HDRFROM_BOXES_MAX) {
		if (h->other_err[0] == '\0')
			snprintf(h->other_err, sizeof(h->other_err),
			         "550 5.7.1 Too many Sender and Resent-From mailboxes to check");
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

	if (h->other_err[0] != '\0')
		return; /* refused already */
	if (h->cut) {
		snprintf(h->other_err, sizeof(h->other_err),
		         "550 5.7.1 Header %s too long to check", name);
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
		snprintf(h->other_err, sizeof(h->other_err),
		         "550 5.7.1 Header %s is not %s (RFC 5322 3.4, 3.6): %s", name,
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
			snprintf(h->from_err, sizeof(h->from_err),
			         "550 5.7.1 Header From too long to check");
		} else if ((st = addr_header_mailbox(h->val, h->len, h->from, sizeof(h->from))) !=
		           ADDR_OK) {
			h->from[0] = '\0';
			snprintf(h->from_err, sizeof(h->from_err),
			         "550 5.7.1 Header From must be exactly one valid mailbox "
			         "(RFC 5322 3.4, 3.6.2): %s",
			         addr_strerror(st));
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

const char *
hdrfrom_refusal(const struct hdrfrom *h)
{
	/* two From fields would let a second reader pick another author and DKIM domain */
	if (h->nfrom > 1)
		return "550 5.7.1 More than one From header (RFC 5322 3.6)";
	if (h->nfrom == 0)
		return "550 5.7.1 Message has no From header (RFC 5322 3.6)";
	return h->from_err[0] ? h->from_err : NULL;
}

const char *
hdrfrom_cred_refusal(const struct hdrfrom *h, const struct cred *c)
{
	static const char *const not_allowed[] = {
	    "", "", "550 5.7.1 Header Sender address not allowed for this user",
	    "550 5.7.1 Header Resent-From address not allowed for this user",
	    "550 5.7.1 Header Resent-Sender address not allowed for this user"};
	const char *r = hdrfrom_refusal(h);

	if (r != NULL)
		return r;
	if (c == NULL || creds_sender_allowed(c, h->from) != 0)
		return "550 5.7.1 Header From address not allowed for this user";
	if (h->nsender > 1)
		return "550 5.7.1 More than one Sender header (RFC 5322 3.6)";
	if (h->other_err[0])
		return h->other_err;
	for (size_t i = 0; i < h->nboxes; i++)
		if (creds_sender_allowed(c, h->boxes[i].addr) != 0)
			return not_allowed[h->boxes[i].kind];
	return NULL;
}

const char *
hdrfrom_mailbox(const struct hdrfrom *h)
{
	return h->from;
}
