/* reply: the table of replies and outcomes (see reply.h). */
#include "mta/reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct reply_def {
	unsigned short code;
	const char *status;
	enum reply_class cls;
	const char *text;
};

static const struct reply_def table[R__COUNT] = {
    [R_NONE] = {0, "", RC_NONE, ""},
    [R_QUEUED] = {250, "2.0.0", RC_NONE, "Ok: queued as %s"},
    [R_SPOOL_FULL] = {452, "4.3.1", RC_SYSTEM, "Insufficient system storage"},
    [R_LOCAL_ERROR] = {451, "4.3.0", RC_SYSTEM, "Local error in processing"},
    [R_DKIM_FAILED] = {451, "4.3.0", RC_SYSTEM, "DKIM signing failed, try again later"},
    [R_DKIM_NO_KEY] = {550, "5.7.1", RC_POLICY,
                       "No DKIM key for the header From domain; mail would be unsigned"},
    [R_BARE_LINE_END] = {550, "5.6.0", RC_CONTENT,
                         "Message contains bare CR or LF (RFC 5321 2.3.8)"},
    [R_NUL_BYTE] = {550, "5.6.0", RC_CONTENT,
                    "Message contains a NUL byte (RFC 2045 2.8, RFC 6152)"},
    [R_MSG_TOO_BIG] = {552, "5.3.4", RC_SIZE, "Message size exceeds fixed limit"},
    [R_HEADER_TOO_BIG] = {552, "5.3.4", RC_SIZE, "Message header size exceeds limit"},
    [R_LINE_TOO_LONG] = {550, "5.6.0", RC_CONTENT,
                         "Message line longer than 998 characters (RFC 5322 2.1.1)"},
    [R_FROM_NONE] = {550, "5.7.1", RC_POLICY, "Message has no From header (RFC 5322 3.6)"},
    [R_FROM_MANY] = {550, "5.7.1", RC_POLICY, "More than one From header (RFC 5322 3.6)"},
    [R_FROM_NOT_ONE] = {550, "5.7.1", RC_POLICY,
                        "Header From must be exactly one valid mailbox (RFC 5322 3.4, 3.6.2): %s"},
    [R_FROM_TOO_LONG] = {550, "5.7.1", RC_POLICY, "Header From too long to check"},
    [R_HDR_TOO_LONG] = {550, "5.7.1", RC_POLICY, "Header %s too long to check"},
    [R_HDR_NOT_ADDR] = {550, "5.7.1", RC_POLICY, "Header %s is not %s (RFC 5322 3.4, 3.6): %s"},
    [R_HDR_TOO_MANY_BOXES] = {550, "5.7.1", RC_POLICY,
                              "Too many Sender and Resent-From mailboxes to check"},
    [R_SENDER_MANY] = {550, "5.7.1", RC_POLICY, "More than one Sender header (RFC 5322 3.6)"},
    [R_FROM_NOT_ALLOWED] = {550, "5.7.1", RC_POLICY,
                            "Header From address not allowed for this user"},
    [R_SENDER_NOT_ALLOWED] = {550, "5.7.1", RC_POLICY,
                              "Header Sender address not allowed for this user"},
    [R_RESENT_FROM_NOT_ALLOWED] = {550, "5.7.1", RC_POLICY,
                                   "Header Resent-From address not allowed for this user"},
    [R_RESENT_SENDER_NOT_ALLOWED] = {550, "5.7.1", RC_POLICY,
                                     "Header Resent-Sender address not allowed for this user"},
    [R_SHUTTING_DOWN] = {421, "4.3.2", RC_SYSTEM, "%s Service shutting down"},

    /* smtpd (mta/smtpd/) */

    /* delivery (mta/delivery/): outcomes recorded per recipient, never sent to a client */
    [R_DLV_NO_DOT_250] = {451, "4.3.0", RC_NONE, "no 250 to the message data from %s"},
    [R_DLV_PROTOCOL] = {451, "4.5.0", RC_NONE, "%s"},
    [R_DLV_LOST] = {451, "4.4.2", RC_NONE, "%s with %s during %s"},
    [R_DLV_NO_SMTPUTF8] = {553, "5.6.7", RC_NONE, "%s does not support SMTPUTF8 (RFC 6531)"},
    [R_DLV_NO_8BITMIME] = {554, "5.6.3", RC_NONE,
                           "%s does not support 8BITMIME; conversion is not done"},
    [R_DLV_TOO_BIG] = {552, "5.3.4", RC_NONE, "message size %s exceeds %s's limit %s"},
    [R_DLV_ALL_MX_FAILED] = {451, "4.4.1", RC_NONE, "all MX hosts of %s failed; last: %s"},
    [R_DLV_NO_CONNECTION] = {451, "4.4.0", RC_NONE, "cannot open a connection (source address?)"},
    [R_DLV_NXDOMAIN] = {550, "5.1.2", RC_NONE, "%s"},
    [R_DLV_NULL_MX] = {556, "5.1.10", RC_NONE, "%s does not accept mail (null MX)"},
    [R_DLV_DNS_FAILED] = {451, "4.4.3", RC_NONE, "%s"},
    [R_DLV_DNS_START] = {451, "4.4.3", RC_NONE, "cannot start a DNS query"},
    [R_DLV_BAD_IDN] = {501, "5.1.2", RC_NONE,
                       "\"%s\" is not a valid internationalized domain name"},
    [R_DLV_BAD_DOMAIN] = {501, "5.1.2", RC_NONE, "\"%s\" is not a valid domain name"},
    [R_DLV_EXPIRED] = {554, "5.4.7", RC_NONE, "message expired after %s%s; last: %s"},

    /* control (mta/control/) */
};

static const struct reply_def *
def(enum reply_id id)
{
	if ((unsigned)id >= R__COUNT || table[id].text == NULL)
		return &table[R_NONE];
	return &table[id];
}

unsigned
reply_code(enum reply_id id)
{
	return def(id)->code;
}

const char *
reply_status(enum reply_id id)
{
	return def(id)->status;
}

enum reply_class
reply_class(enum reply_id id)
{
	return def(id)->cls;
}

/* Append src (n octets) at *at within buf[len], keeping room for the NUL. */
static void
put(char *buf, size_t len, size_t *at, const char *src, size_t n)
{
	if (*at + 1 >= len)
		return;
	if (n > len - 1 - *at)
		n = len - 1 - *at;
	memcpy(buf + *at, src, n);
	*at += n;
	buf[*at] = '\0';
}

static size_t
render(char *buf, size_t len, const struct reply_def *d, bool head, va_list ap)
{
	const char *t = d->text, *mark;
	size_t at = 0;

	if (len == 0)
		return 0;
	buf[0] = '\0';
	if (head) {
		char h[16];
		int n = snprintf(h, sizeof(h), "%u %s ", d->code, d->status);
		put(buf, len, &at, h, n > 0 ? (size_t)n : 0);
	}
	while ((mark = strstr(t, "%s")) != NULL) {
		const char *arg = va_arg(ap, const char *);
		put(buf, len, &at, t, (size_t)(mark - t));
		if (arg)
			put(buf, len, &at, arg, strlen(arg));
		t = mark + 2;
	}
	put(buf, len, &at, t, strlen(t));
	return at;
}

size_t
reply_format(char *buf, size_t len, enum reply_id id, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, id);
	n = render(buf, len, def(id), true, ap);
	va_end(ap);
	return n;
}

size_t
reply_format_text(char *buf, size_t len, enum reply_id id, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, id);
	n = render(buf, len, def(id), false, ap);
	va_end(ap);
	return n;
}

static const char *
number(const char *p, unsigned digits_max, unsigned *out)
{
	unsigned v = 0, n = 0;

	while (*p >= '0' && *p <= '9' && n < digits_max) {
		v = v * 10 + (unsigned)(*p++ - '0');
		n++;
	}
	*out = v;
	return n ? p : NULL;
}

bool
reply_parse(const char *line, unsigned *code, unsigned *cls, unsigned *subj, unsigned *det)
{
	const char *p = line;

	*code = *cls = *subj = *det = 0;
	if (p == NULL || (p = number(p, 3, code)) == NULL || *code < 200 || *code > 599)
		return false;
	if (*p != ' ' && *p != '-')
		return false;
	if ((p = number(p + 1, 1, cls)) == NULL || *p != '.' || *cls != *code / 100)
		return false;
	if ((p = number(p + 1, 3, subj)) == NULL || *p != '.')
		return false;
	if ((p = number(p + 1, 3, det)) == NULL)
		return false;
	return *p == '\0' || *p == ' ';
}
