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
    [R_BARE_CR] = {550, "5.6.0", RC_CONTENT,
                   "Message contains a bare CR (RFC 5321 2.3.8); end lines with CRLF or LF"},
    [R_BARE_DOT] = {550, "5.6.0", RC_CONTENT,
                    "Message contains a \".\" line next to a bare LF, which could end DATA "
                    "for another server (SMTP smuggling); end DATA with CRLF.CRLF only"},
    [R_LF_DOT_END] = {550, "5.6.0", RC_CONTENT,
                      "DATA must end with CRLF.CRLF; your client ended it with LF.LF or "
                      "another '.' line next to a bare LF (RFC 5321 4.1.1.4): make it send "
                      "CRLF line ends"},
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
    [R_FROM_DISPLAY_ADDRESS] = {550, "5.7.1", RC_POLICY,
                                "Header From display name shows another domain's address %s:"
                                " readers would take it for the author (display_name_address)"},
    [R_SENDER_NO_DKIM_KEY] = {550, "5.7.1", RC_POLICY,
                              "<%s>: no DKIM key for this sender domain; mail from it is not "
                              "relayed unsigned"},
    [R_SUBMIT_SHUTTING_DOWN] = {421, "4.3.2", RC_SYSTEM,
                                "mxrelayd is shutting down; try again later"},
    [R_SUBMIT_BAD_SENDER] = {553, "5.1.7", RC_POLICY, "Bad sender address <%s>: %s"},
    [R_SUBMIT_BAD_RCPT] = {553, "5.1.3", RC_POLICY, "Bad recipient address <%s>: %s"},
    [R_SUBMIT_TOO_MANY_RCPTS] = {552, "5.5.3", RC_POLICY, "Too many recipients (at most %s)"},
    [R_SUBMIT_FROM_TWICE] = {503, "5.5.1", RC_POLICY, "FROM given twice"},
    [R_SUBMIT_NO_ENVELOPE] = {503, "5.5.1", RC_POLICY, "FROM and at least one TO come before DATA"},
    [R_SUBMIT_DATA_SIZE] = {501, "5.5.4", RC_POLICY, "DATA needs the size in octets"},
    [R_SUBMIT_UNKNOWN_LINE] = {500, "5.5.2", RC_POLICY, "Unknown envelope line \"%s\""},
    [R_SUBMIT_LINE_TOO_LONG] = {500, "5.5.2", RC_POLICY, "Envelope line too long"},
    [R_SHUTTING_DOWN] = {421, "4.3.2", RC_SYSTEM, "%s Service shutting down"},

    /*
     * smtpd (mta/smtpd/): refusals of a command are counted by its handler
     * (M_REJ_SENDER, M_REJ_RELAY), not by class.
     */
    [R_GREETING] = {220, "", RC_NONE, "%s ESMTP mxrelay"},
    [R_HELO] = {250, "", RC_NONE, "%s"},
    [R_EHLO_HELLO] = {250, "", RC_NONE, "%s Hello [%s]"},
    [R_HELO_SYNTAX] = {501, "5.5.4", RC_NONE, "Syntax: %s hostname"},
    [R_OK_DONE] = {250, "2.0.0", RC_NONE, "Ok"},
    [R_MAIL_OK] = {250, "2.1.0", RC_NONE, "Ok"},
    [R_RCPT_OK] = {250, "2.1.5", RC_NONE, "Ok"},
    [R_BYE] = {221, "2.0.0", RC_NONE, "%s Bye"},
    [R_HELP_COMMANDS] = {214, "2.0.0", RC_NONE,
                         "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT HELP"},
    [R_HELP_MORE] = {214, "2.0.0", RC_NONE, "VRFY EXPN STARTTLS AUTH; see RFC 5321"},
    [R_VRFY] = {252, "2.5.2", RC_NONE,
                "Cannot VRFY user, but will accept message and attempt delivery"},
    [R_EXPN] = {502, "5.5.1", RC_NONE, "EXPN not supported"},
    [R_CMD_NUL] = {500, "5.5.2", RC_NONE, "NUL byte in command"},
    [R_CMD_UNKNOWN] = {500, "5.5.1", RC_NONE, "Command unrecognized"},
    [R_CMD_TOO_LONG] = {500, "5.5.2", RC_NONE, "Line too long"},
    [R_NEED_HELO] = {503, "5.5.1", RC_NONE, "Send EHLO or HELO first"},
    [R_NEED_TLS] = {530, "5.7.0", RC_NONE, "Must issue a STARTTLS command first"},
    [R_NEED_MAIL] = {503, "5.5.1", RC_NONE, "Need MAIL command first"},
    [R_NESTED_MAIL] = {503, "5.5.1", RC_NONE, "Nested MAIL command"},
    [R_MAIL_SYNTAX] = {501, "5.5.4", RC_NONE, "Syntax: MAIL FROM:<address>"},
    [R_RCPT_SYNTAX] = {501, "5.5.4", RC_NONE, "Syntax: RCPT TO:<address>"},
    [R_ADDR_NEED_UTF8] = {553, "5.6.7", RC_NONE, "Non-ASCII address needs SMTPUTF8"},
    [R_ADDR_REJECTED] = {553, "5.1.3", RC_NONE, "Address rejected: %s"},
    [R_SENDER_BAD] = {501, "5.1.7", RC_NONE, "Bad sender address syntax: %s"},
    [R_RCPT_BAD] = {501, "5.1.3", RC_NONE, "Bad recipient address syntax: %s"},
    [R_PARAM_NEED_EHLO] = {555, "5.5.4", RC_NONE, "Parameters need EHLO"},
    [R_PARAM_SIZE] = {501, "5.5.4", RC_NONE, "Bad SIZE parameter"},
    [R_PARAM_BODY] = {555, "5.5.4", RC_NONE, "Unsupported BODY type"},
    [R_PARAM_UNSUPPORTED] = {555, "5.5.4", RC_NONE, "Unsupported parameter"},
    [R_MAIL_NOT_ALLOWED] = {553, "5.7.1", RC_NONE,
                            "<%s>: Sender address not allowed for this user"},
    [R_AUTH_REQUIRED] = {530, "5.7.0", RC_NONE, "Authentication required"},
    [R_RELAY_DENIED] = {554, "5.7.1", RC_NONE, "<%s>: Relay access denied"},
    [R_LITERAL_NO_ROUTE] = {550, "5.1.2", RC_NONE,
                            "<%s>: Address literals are not relayed (no route for them)"},
    [R_TOO_MANY_RCPTS] = {452, "4.5.3", RC_NONE, "Too many recipients"},
    /* RFC 3463 4.7.1: delivery not authorized, message refused (here: for now) */
    [R_RATE_LIMITED] = {451, "4.7.1", RC_POLICY,
                        "Rate limit reached: at most %s %s per hour for %s (rate_limit, config "
                        "line %s); try again after %s"},
    [R_DATA_START] = {354, "", RC_NONE, "End data with <CR><LF>.<CR><LF>"},
    [R_DATA_ARGS] = {501, "5.5.4", RC_NONE, "DATA takes no arguments"},
    [R_NO_RCPTS] = {554, "5.5.1", RC_NONE, "No valid recipients"},
    [R_TLS_UNAVAILABLE] = {502, "5.5.1", RC_NONE, "STARTTLS not available"},
    [R_TLS_ACTIVE] = {503, "5.5.1", RC_NONE, "TLS already active"},
    [R_TLS_ARGS] = {501, "5.5.4", RC_NONE, "STARTTLS takes no arguments"},
    [R_TLS_READY] = {220, "2.0.0", RC_NONE, "Ready to start TLS"},
    [R_AUTH_OK] = {235, "2.7.0", RC_NONE, "Authentication successful"},
    [R_AUTH_CHALLENGE] = {334, "", RC_NONE, ""},
    [R_AUTH_USERNAME] = {334, "", RC_NONE, "VXNlcm5hbWU6"}, /* "Username:" */
    [R_AUTH_PASSWORD] = {334, "", RC_NONE, "UGFzc3dvcmQ6"}, /* "Password:" */
    [R_AUTH_FAILED] = {535, "5.7.8", RC_NONE, "Authentication credentials invalid"},
    [R_AUTH_BLOCKED] = {454, "4.7.0", RC_NONE,
                        "Too many failed authentication attempts, try again later"},
    [R_AUTH_BLOCKED_CLOSE] = {421, "4.7.0", RC_NONE,
                              "%s Too many failed authentication attempts, closing connection"},
    [R_AUTH_BAD_B64] = {501, "5.5.2", RC_NONE, "Cannot decode response"},
    [R_AUTH_BAD_PLAIN] = {501, "5.5.2", RC_NONE, "Malformed PLAIN response"},
    [R_AUTH_CANCELLED] = {501, "5.0.0", RC_NONE, "Authentication cancelled"},
    [R_AUTH_ALREADY] = {503, "5.5.1", RC_NONE, "Already authenticated"},
    [R_AUTH_UNAVAILABLE] = {502, "5.5.1", RC_NONE, "AUTH not available"},
    [R_AUTH_NEED_TLS] = {538, "5.7.11", RC_NONE,
                         "Encryption required for requested authentication mechanism"},
    /* issue 15: a sunset date has passed; name the date and what to change */
    [R_AUTH_NO_TLS_SUNSET] = {538, "5.7.11", RC_NONE,
                              "AUTH without TLS ended on %s on listener %s; use STARTTLS "
                              "(TLS 1.2 or newer) before AUTH"},
    /* a tls = none listener offers no STARTTLS: name the listener that has TLS */
    [R_AUTH_NO_TLS_SUNSET_MOVE] = {538, "5.7.11", RC_NONE,
                                   "AUTH without TLS ended on %s on listener %s; connect to "
                                   "listener %s at %s and use %s (TLS 1.2 or newer)"},
    [R_AUTH_NO_TLS_SUNSET_NONE] = {538, "5.7.11", RC_NONE,
                                   "AUTH without TLS ended on %s on listener %s, which offers "
                                   "no TLS; ask the relay's administrator for a listener with "
                                   "TLS 1.2 or newer"},
    /* X.7.13 "user account disabled": the right password for an account that
     * stays refused until the administrator acts (RFC 5248 registry) */
    [R_AUTH_SUNSET] = {535, "5.7.13", RC_NONE,
                       "Credential %s expired on %s (its sunset date); ask the relay's "
                       "administrator for a new credential"},
    [R_AUTH_IN_TX] = {503, "5.5.1", RC_NONE, "AUTH not permitted during a mail transaction"},
    [R_AUTH_MECH] = {504, "5.5.4", RC_NONE, "Unrecognized authentication type"},
    [R_TOO_MANY_ERRORS] = {421, "4.7.0", RC_NONE, "%s Too many errors, closing connection"},
    [R_TIMEOUT] = {421, "4.4.2", RC_NONE, "%s Timeout, closing connection"},
    [R_TOO_MANY_CONNS] = {421, "4.7.0", RC_NONE, "%s Too many connections, try again later"},
    [R_SHUTTING_DOWN_RETRY] = {421, "4.3.2", RC_SYSTEM,
                               "%s Service shutting down, try again later"},
    [R_PROXY_BAD] = {421, "4.7.0", RC_NONE, "%s Bad or missing PROXY header"},
    [R_PROXY_TIMEOUT] = {421, "4.4.2", RC_NONE, "%s No PROXY header, closing connection"},
    [R_PROXY_UNTRUSTED] = {421, "4.7.0", RC_NONE, "%s Connect through the load balancer"},
    /* RFC 5321 3.8: a server may close a session that holds a slot others need */
    [R_EVICTED] = {421, "4.7.0", RC_NONE, "%s Idle session closed to make room, try again later"},

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
    /* RFC 3463 3.5 X.4.4: unable to route (every MX host name is NXDOMAIN) */
    [R_DLV_MX_NXDOMAIN] = {550, "5.4.4", RC_NONE, "Host or domain name not found: %s"},
    [R_DLV_NULL_MX] = {556, "5.1.10", RC_NONE, "%s does not accept mail (null MX)"},
    [R_DLV_DNS_FAILED] = {451, "4.4.3", RC_NONE, "%s"},
    [R_DLV_DNS_START] = {451, "4.4.3", RC_NONE, "cannot start a DNS query"},
    [R_DLV_BAD_IDN] = {501, "5.1.2", RC_NONE,
                       "\"%s\" is not a valid internationalized domain name"},
    [R_DLV_BAD_DOMAIN] = {501, "5.1.2", RC_NONE, "\"%s\" is not a valid domain name"},
    [R_DLV_EXPIRED] = {554, "5.4.7", RC_NONE, "message expired after %s%s; last: %s"},
    /* RFC 3463 4.7.4: security features not supported; 4.7.5: cryptographic failure */
    [R_DLV_TLS_NOT_OFFERED] = {451, "4.7.4", RC_NONE,
                               "%s offered no STARTTLS (%s); TLS required by %s"},
    [R_DLV_TLS_CERT] = {451, "4.7.5", RC_NONE, "%s certificate: %s; required by %s"},
    [R_DLV_TLS_HANDSHAKE] = {451, "4.7.5", RC_NONE,
                             "TLS handshake with %s failed: %s; required by %s"},
    [R_DLV_TLSA_FAILED] = {451, "4.7.5", RC_NONE, "TLSA lookup for %s failed: %s"},
    [R_DLV_DANE_REQUIRED] = {451, "4.7.5", RC_NONE,
                             "no usable DNSSEC-signed TLSA record for %s (tls_policy dane)"},
    [R_DLV_STS_NO_MX] = {451, "4.7.0", RC_NONE,
                         "no MX host of %s matches its MTA-STS policy (id %s)"},
    [R_DLV_STS_FETCH] = {451, "4.7.0", RC_NONE, "MTA-STS policy of %s could not be fetched: %s"},

    /* control (mta/control/) */
    [R_ADMIN_BOUNCE] = {554, "5.0.0", RC_NONE, "bounced by the administrator"},
    [R_ADMIN_DELETE] = {554, "5.0.0", RC_NONE, "deleted by the administrator"},
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
		/* no enhanced code for this entry (see reply.h): "CODE text" */
		int n = d->status[0] ? snprintf(h, sizeof(h), "%u %s ", d->code, d->status)
		                     : snprintf(h, sizeof(h), "%u ", d->code);
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
reply_vformat(char *buf, size_t len, enum reply_id id, va_list ap)
{
	va_list cp;
	size_t n;

	va_copy(cp, ap);
	n = render(buf, len, def(id), true, cp);
	va_end(cp);
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
	/* remote servers are loose: "550  5.1.1", "550 5.7.1: denied", "451 4.7.1;x" */
	while (p[1] == ' ' || p[1] == '\t')
		p++;
	if ((p = number(p + 1, 1, cls)) == NULL || *p != '.' || *cls != *code / 100)
		return false;
	if ((p = number(p + 1, 3, subj)) == NULL || *p != '.')
		return false;
	if ((p = number(p + 1, 3, det)) == NULL)
		return false;
	return !(*p >= '0' && *p <= '9'); /* a fourth digit: not a status code */
}
