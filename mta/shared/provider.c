/*
 * provider: the known replies of the large mailbox providers (provider.h).
 *
 * Each entry is matched by the reply's enhanced status code (RFC 3463, the
 * first one of the reply) and a case-insensitive text pattern; either may be
 * NULL (any). The texts were checked against the providers' own pages and
 * replies seen in the wild:
 * - Microsoft, "Email non-delivery reports and SMTP errors in Exchange Online"
 *   (learn.microsoft.com/exchange/mail-flow-best-practices/non-delivery-reports-in-exchange-online/):
 *   "451 4.7.650 The mail server [IP] has been temporarily rate limited due
 *   to IP reputation." (4.7.651 the same), "550 5.7.606 Access denied,
 *   banned sending IP [IP]. To request removal from this list please visit
 *   https://sender.office.com/ ...", "550 5.7.515 Access denied, sending
 *   domain [D] doesn't meet the required authentication level.",
 *   "550 5.7.68 TenantInboundAttribution; Direct Send not allowed ...".
 * - Google, "Gmail SMTP errors and codes" (support.google.com/a/answer/3726730):
 *   "421 4.7.28 ... unusual rate of unsolicited mail ...", "550 5.7.26
 *   This mail has been blocked because the sender is unauthenticated ...",
 *   "550 5.7.1 Messages missing a valid Message-ID header are not accepted."
 *   (older hosts said "messageId").
 * - Yahoo Sender Hub, "SMTP error codes" (senders.yahooinc.com/smtp-error-codes/):
 *   "421 4.7.0 [TSS04] Messages from IP temporarily deferred due to
 *   unexpected volume or user complaints".
 */
#include "mta/shared/provider.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MS_NDR                                                                                      \
	"https://learn.microsoft.com/exchange/mail-flow-best-practices/non-delivery-reports-in-"   \
	"exchange-online/non-delivery-reports-in-exchange-online"
#define GMAIL_ERRORS "https://support.google.com/a/answer/3726730"
#define GMAIL_GUIDE "https://support.google.com/a/answer/81126"
#define YAHOO_ERRORS "https://senders.yahooinc.com/smtp-error-codes/"
#define DNS_FIX "run `mxrelayctl dns check DOMAIN` and follow docs/deployment.md"

struct entry {
	const char *enh;     /* "4.7.650"; NULL: any */
	const char *pattern; /* case-insensitive substring; NULL: any */
	struct provider_reply r;
};

/* 4.7.650 and 4.7.651 are one reason (Microsoft's two throttling pools) */
#define MS_THROTTLED                                                                                \
	{PRV_MS_IP_THROTTLED, "ms_ip_throttled", PROVIDER_MICROSOFT, true,                          \
	 "Microsoft rate-limits this IP for its reputation: mxrelay slows down every Microsoft "    \
	 "MX; check the IP's reputation (Microsoft SNDS) and the senders' complaint rates, "        \
	 "see " MS_NDR}

static const struct entry table[] = {
    {"4.7.650", NULL, MS_THROTTLED},
    {"4.7.651", NULL, MS_THROTTLED},
    {"5.7.606", NULL,
     {PRV_MS_BANNED_IP, "ms_banned_ip", PROVIDER_MICROSOFT, false,
      "this relay's IP is on Microsoft's block list: request delisting at "
      "https://sender.office.com"}},
    {"5.7.515", NULL,
     {PRV_MS_AUTH_REQUIRED, "ms_auth_required", PROVIDER_MICROSOFT, false,
      "the sending domain fails Microsoft's authentication requirements (SPF, DKIM and DMARC "
      "must pass): " DNS_FIX}},
    {"5.7.68", NULL,
     {PRV_MS_DIRECT_SEND_REJECTED, "ms_direct_send_rejected", PROVIDER_MICROSOFT, false,
      "the recipient tenant rejects Direct Send: its admin needs an inbound partner connector "
      "for this relay (by IP or certificate), and the sending domain must authenticate: " DNS_FIX}},
    {"4.7.28", NULL,
     {PRV_GMAIL_RATE_LIMITED, "gmail_rate_limited", PROVIDER_GOOGLE, true,
      "Gmail rate-limits mail from this IP or domain: mxrelay slows down every Google MX; "
      "follow Google's sender guidelines, see " GMAIL_GUIDE}},
    {"5.7.26", "unauthenticated",
     {PRV_GMAIL_UNAUTHENTICATED, "gmail_unauthenticated", PROVIDER_GOOGLE, false,
      "Gmail requires SPF or DKIM to pass for the sending domain: " DNS_FIX ", see " GMAIL_GUIDE}},
    {"5.7.1", "missing a valid message",
     {PRV_GMAIL_NO_MESSAGE_ID, "gmail_no_message_id", PROVIDER_GOOGLE, false,
      "the message has no valid Message-ID header (RFC 5322 3.6.4): fix the sending device or "
      "script, see " GMAIL_ERRORS}},
    {NULL, "[TSS04]",
     {PRV_YAHOO_TSS04, "yahoo_tss04", PROVIDER_YAHOO, true,
      "Yahoo defers mail from this IP for user complaints or unusual traffic: mxrelay slows "
      "down every Yahoo MX; lower complaint rates, see " YAHOO_ERRORS}},
};

/* MX host suffixes per group (the providers' published MX names). */
static const struct {
	const char *suffix;
	enum provider_group g;
} suffixes[] = {
    {".protection.outlook.com", PROVIDER_MICROSOFT}, /* *.mail.protection.outlook.com */
    {".google.com", PROVIDER_GOOGLE},                /* aspmx.l.google.com, gmail-smtp-in.l... */
    {".googlemail.com", PROVIDER_GOOGLE},
    {".yahoodns.net", PROVIDER_YAHOO}, /* mta5.am0.yahoodns.net */
};

static const char *const group_names[PROVIDER__COUNT] = {"microsoft", "google", "yahoo"};

/* Case-insensitive substring: the reply text comes from the network, any case. */
static bool
ci_contains(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return true;
	return false;
}

/* "451 4.7.650 ..." / "451-4.7.650 ...": the enhanced code into enh ("" when none). */
static void
enh_of(const char *text, char *enh, size_t len)
{
	size_t i = 0;

	enh[0] = '\0';
	if (strlen(text) < 5 || !isdigit((unsigned char)text[0]) || !isdigit((unsigned char)text[1]) ||
	    !isdigit((unsigned char)text[2]) || (text[3] != ' ' && text[3] != '-'))
		return;
	text += 4;
	/* RFC 3463 2: class "." subject (1-3 digits) "." detail (1-3 digits) */
	while (i + 1 < len && (isdigit((unsigned char)text[i]) || text[i] == '.'))
		i++;
	if (i + 1 >= len || (text[i] != '\0' && text[i] != ' '))
		return;
	memcpy(enh, text, i);
	enh[i] = '\0';
}

const struct provider_reply *
provider_classify(const char *text)
{
	char enh[16];

	/* only a refusal or deferral means something here: never a 2xx that happens to match */
	if (text == NULL || (text[0] != '4' && text[0] != '5'))
		return NULL;
	enh_of(text, enh, sizeof(enh));
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const struct entry *e = &table[i];
		if (e->enh && strcmp(e->enh, enh) != 0)
			continue;
		if (e->pattern && !ci_contains(text, e->pattern))
			continue;
		return &e->r;
	}
	return NULL;
}

#define SAID_HOST "host "
#define SAID " said: "
#define SAID_LAST "; last: " /* reply.c's R_DLV_ALL_MX_FAILED: "... failed; last: %s" */

void
provider_said(char *buf, size_t len, const char *relay, const char *reply)
{
	snprintf(buf, len, SAID_HOST "%s" SAID "%s", relay, reply);
}

const struct provider_reply *
provider_classify_from(const char *text, const char *relay)
{
	const struct provider_reply *pr;
	const char *p, *said;
	char host[256];

	if (text == NULL)
		return NULL;
	if (relay == NULL) {
		/* ours at the start, or after the domain (no ';' in it) of the all-MX text */
		p = strncmp(text, SAID_HOST, strlen(SAID_HOST)) == 0 ? text : strstr(text, SAID_LAST);
		if (p == NULL || (p != text && strncmp(p += strlen(SAID_LAST), SAID_HOST,
		                                       strlen(SAID_HOST)) != 0))
			return NULL;
		relay = p + strlen(SAID_HOST);
		if ((said = strstr(relay, SAID)) == NULL)
			return NULL;
		text = said + strlen(SAID);
	}
	pr = provider_classify(text);
	if (pr == NULL)
		return NULL;
	snprintf(host, sizeof(host), "%.*s", (int)strcspn(relay, "[ "), relay);
	return provider_group_of_host(host) == pr->group ? pr : NULL;
}

const struct provider_reply *
provider_reply_of(enum provider_reason r)
{
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (table[i].r.reason == r)
			return &table[i].r;
	return NULL;
}

enum provider_group
provider_group_of_host(const char *host)
{
	size_t n;

	if (host == NULL)
		return PROVIDER_NONE;
	n = strlen(host);
	if (n > 0 && host[n - 1] == '.')
		n--; /* the root label */
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		size_t s = strlen(suffixes[i].suffix);
		if (n > s && strncasecmp(host + n - s, suffixes[i].suffix, s) == 0)
			return suffixes[i].g;
	}
	return PROVIDER_NONE;
}

const char *
provider_group_name(enum provider_group g)
{
	return g >= 0 && g < PROVIDER__COUNT ? group_names[g] : "none";
}
