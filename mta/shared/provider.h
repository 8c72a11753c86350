/*
 * provider: what the large mailbox providers' replies mean, and which
 * provider an MX host belongs to (issue 15 item 8). A pure module: text in,
 * a table entry out; no logging, no state, so the daemon (delivery log,
 * metrics, backoff) and mxrelayctl (`queue show`) read a reply the same way.
 *
 * Owns: the table of known replies (enhanced status code, RFC 3463, plus a
 * text pattern), each with a reason code, the provider group, whether it
 * asks us to send slower, and the fix; the MX host suffixes of each group.
 * Never: decides what to do about a reply (delivery/dest.c does).
 */
#ifndef MXRELAY_PROVIDER_H
#define MXRELAY_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>

/* The provider groups: destinations whose MX hosts share a suffix. */
enum provider_group {
	PROVIDER_NONE = -1,
	PROVIDER_MICROSOFT,
	PROVIDER_GOOGLE,
	PROVIDER_YAHOO,
	PROVIDER__COUNT
};

/* The reason codes, in table order (metrics count them by this index). */
enum provider_reason {
	PRV_MS_IP_THROTTLED,	     /* 4.7.650 / 4.7.651 */
	PRV_MS_BANNED_IP,	     /* 5.7.606 */
	PRV_MS_AUTH_REQUIRED,	     /* 5.7.515 */
	PRV_MS_DIRECT_SEND_REJECTED, /* 5.7.68 */
	PRV_GMAIL_RATE_LIMITED,	     /* 4.7.28 */
	PRV_GMAIL_UNAUTHENTICATED,   /* 5.7.26 */
	PRV_GMAIL_NO_MESSAGE_ID,     /* 5.7.1 missing Message-ID */
	PRV_YAHOO_TSS04,	     /* [TSS04] */
	PRV__COUNT
};

struct provider_reply {
	enum provider_reason reason;
	const char *code;	/* "ms_ip_throttled": the log's reason_code, the metric label */
	enum provider_group group;
	bool rate_limit;	/* the provider asks us to send slower */
	const char *fix;	/* what to do, with the page that says more */
};

/*
 * The known reply that text ("451 4.7.650 The mail server ...", a whole
 * reply as struct smtpc_reply keeps it) is, or NULL (always for a reply that
 * is not 4xx or 5xx). The result points into a static table.
 */
const struct provider_reply *provider_classify(const char *text);

/*
 * The known reply only when a host of its own provider gave it: relay
 * ("host[ip]:port", as the delivery log's relay=) is the host that said
 * text. With relay NULL, text is one the relay wrote itself (a queued
 * recipient's last_reply, "all MX hosts ... failed; last: ..."): only a
 * remote reply it quotes as provider_said wrote it is read, with that
 * host; anything else is NULL. So the log, metrics and `queue show` never
 * give Microsoft's delisting page for another MX's copy of its text.
 */
const struct provider_reply *provider_classify_from(const char *text, const char *relay);

/* "host RELAY said: REPLY" into buf (cut to len): how a remote reply is quoted and stored. */
void provider_said(char *buf, size_t len, const char *relay, const char *reply);

/* The entry of a reason code (PRV_*), never NULL for a valid one. */
const struct provider_reply *provider_reply_of(enum provider_reason r);

/* The group whose MX host suffix host ("x.mail.protection.outlook.com.") has, or PROVIDER_NONE. */
enum provider_group provider_group_of_host(const char *host);

/* "microsoft", "google", "yahoo" ("none" for PROVIDER_NONE). */
const char *provider_group_name(enum provider_group g);

#endif
