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

#include <stdarg.h>
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
	R_BARE_CR,            /* 550 5.6.0 bare CR (bare_lf = normalize: LF alone is fine) */
	R_BARE_DOT,           /* 550 5.6.0 a "." line next to a bare LF (smuggling shape) */
	R_LF_DOT_END,         /* 550 5.6.0 DATA ended with LF.LF, then silence */
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
	R_SENDER_NO_DKIM_KEY, /* 550 5.7.1 <SENDER>: dkim_unsigned = refuse, at MAIL / FROM */
	R_FROM_DISPLAY_ADDRESS, /* 550 5.7.1 From shows ADDR of another domain (display_name_address) */

	/* local submission's envelope (control/submit.c) */
	R_SUBMIT_SHUTTING_DOWN,  /* 421 4.3.2 */
	R_SUBMIT_BAD_SENDER,     /* 553 5.1.7 Bad sender address <ARG>: WHY */
	R_SUBMIT_BAD_RCPT,       /* 553 5.1.3 Bad recipient address <ARG>: WHY */
	R_SUBMIT_TOO_MANY_RCPTS, /* 552 5.5.3 (at most N) */
	R_SUBMIT_FROM_TWICE,     /* 503 5.5.1 */
	R_SUBMIT_NO_ENVELOPE,    /* 503 5.5.1 DATA before FROM and TO */
	R_SUBMIT_DATA_SIZE,      /* 501 5.5.4 */
	R_SUBMIT_UNKNOWN_LINE,   /* 500 5.5.2 */
	R_SUBMIT_LINE_TOO_LONG,  /* 500 5.5.2 */

	/* shared by every listener and socket */
	R_SHUTTING_DOWN, /* 421 4.3.2 HOST Service shutting down */

	/* smtpd: greeting, commands, AUTH, PROXY, session limits (mta/smtpd/) */
	R_SMTPD_FIRST_,
	R_GREETING,            /* 220 HOST ESMTP mxrelay (no enhanced code: RFC 2034 3) */
	R_HELO,                /* 250 HOST; also each EHLO keyword line */
	R_EHLO_HELLO,          /* 250-HOST Hello [IP], the first EHLO line */
	R_HELO_SYNTAX,         /* 501 5.5.4 Syntax: VERB hostname */
	R_OK_DONE,             /* 250 2.0.0 Ok (RSET, NOOP) */
	R_MAIL_OK,             /* 250 2.1.0 Ok */
	R_RCPT_OK,             /* 250 2.1.5 Ok */
	R_BYE,                 /* 221 2.0.0 HOST Bye */
	R_HELP_COMMANDS,       /* 214 2.0.0 (first HELP line) */
	R_HELP_MORE,           /* 214 2.0.0 (last HELP line) */
	R_VRFY,                /* 252 2.5.2 */
	R_EXPN,                /* 502 5.5.1 */
	R_CMD_NUL,             /* 500 5.5.2 NUL byte in command */
	R_CMD_UNKNOWN,         /* 500 5.5.1 */
	R_CMD_TOO_LONG,        /* 500 5.5.2 Line too long */
	R_NEED_HELO,           /* 503 5.5.1 */
	R_NEED_TLS,            /* 530 5.7.0 */
	R_NEED_MAIL,           /* 503 5.5.1 */
	R_NESTED_MAIL,         /* 503 5.5.1 */
	R_MAIL_SYNTAX,         /* 501 5.5.4 Syntax: MAIL FROM:<address> */
	R_RCPT_SYNTAX,         /* 501 5.5.4 Syntax: RCPT TO:<address> */
	R_ADDR_NEED_UTF8,      /* 553 5.6.7 */
	R_ADDR_REJECTED,       /* 553 5.1.3 Address rejected: WHY */
	R_SENDER_BAD,          /* 501 5.1.7 Bad sender address syntax: WHY */
	R_RCPT_BAD,            /* 501 5.1.3 Bad recipient address syntax: WHY */
	R_PARAM_NEED_EHLO,     /* 555 5.5.4 */
	R_PARAM_SIZE,          /* 501 5.5.4 Bad SIZE parameter */
	R_PARAM_BODY,          /* 555 5.5.4 Unsupported BODY type */
	R_PARAM_UNSUPPORTED,   /* 555 5.5.4 Unsupported parameter */
	R_MAIL_NOT_ALLOWED,    /* 553 5.7.1 <ADDR>: (AUTH user's allowed senders) */
	R_AUTH_REQUIRED,       /* 530 5.7.0 */
	R_RELAY_DENIED,        /* 554 5.7.1 <ADDR>: Relay access denied */
	R_LITERAL_NO_ROUTE,    /* 550 5.1.2 <ADDR>: address literal without a route */
	R_TOO_MANY_RCPTS,      /* 452 4.5.3 */
	R_RATE_LIMITED,        /* 451 4.7.1 rate_limit WHO: N messages|recipients per hour; after TIME */
	R_DATA_START,          /* 354 End data with <CR><LF>.<CR><LF> */
	R_DATA_ARGS,           /* 501 5.5.4 */
	R_NO_RCPTS,            /* 554 5.5.1 No valid recipients */
	R_TLS_UNAVAILABLE,     /* 502 5.5.1 */
	R_TLS_ACTIVE,          /* 503 5.5.1 */
	R_TLS_ARGS,            /* 501 5.5.4 */
	R_TLS_READY,           /* 220 2.0.0 Ready to start TLS */
	R_AUTH_OK,             /* 235 2.7.0 */
	R_AUTH_CHALLENGE,      /* 334 (empty challenge, RFC 4954 4) */
	R_AUTH_USERNAME,       /* 334 "Username:" in base64 */
	R_AUTH_PASSWORD,       /* 334 "Password:" in base64 */
	R_AUTH_FAILED,         /* 535 5.7.8 */
	R_AUTH_BLOCKED,        /* 454 4.7.0 */
	R_AUTH_BLOCKED_CLOSE,  /* 421 4.7.0 HOST ... closing connection */
	R_AUTH_BAD_B64,        /* 501 5.5.2 Cannot decode response */
	R_AUTH_BAD_PLAIN,      /* 501 5.5.2 */
	R_AUTH_CANCELLED,      /* 501 5.0.0 */
	R_AUTH_ALREADY,        /* 503 5.5.1 */
	R_AUTH_UNAVAILABLE,    /* 502 5.5.1 */
	R_AUTH_NEED_TLS,       /* 538 5.7.11 */
	R_AUTH_NO_TLS_SUNSET,  /* 538 5.7.11 auth_without_tls_until passed */
	R_AUTH_NO_TLS_SUNSET_MOVE, /* 538 5.7.11 the same on a tls = none listener: another has TLS */
	R_AUTH_NO_TLS_SUNSET_NONE, /* 538 5.7.11 the same, and no listener has TLS */
	R_AUTH_SUNSET,         /* 535 5.7.13 the credential's sunset passed */
	R_AUTH_IN_TX,          /* 503 5.5.1 */
	R_AUTH_MECH,           /* 504 5.5.4 */
	R_TOO_MANY_ERRORS,     /* 421 4.7.0 HOST Too many errors, closing connection */
	R_TIMEOUT,             /* 421 4.4.2 HOST Timeout, closing connection */
	R_TOO_MANY_CONNS,      /* 421 4.7.0 HOST Too many connections, try again later */
	R_SHUTTING_DOWN_RETRY, /* 421 4.3.2 HOST ..., try again later (at accept) */
	R_PROXY_BAD,           /* 421 4.7.0 HOST Bad or missing PROXY header */
	R_PROXY_TIMEOUT,       /* 421 4.4.2 HOST No PROXY header, closing connection */
	R_PROXY_UNTRUSTED,     /* 421 4.7.0 HOST Connect through the load balancer */
	R_EVICTED,             /* 421 4.7.0 HOST Idle session closed to make room */

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
	R_DLV_MX_NXDOMAIN,   /* 550 5.4.4 Host or domain name not found: REASON (no MX host exists) */
	R_DLV_NULL_MX,       /* 556 5.1.10 (RFC 7505) */
	R_DLV_DNS_FAILED,    /* 451 4.4.3 REASON */
	R_DLV_DNS_START,     /* 451 4.4.3 cannot start a DNS query */
	R_DLV_BAD_IDN,       /* 501 5.1.2 */
	R_DLV_BAD_DOMAIN,    /* 501 5.1.2 */
	R_DLV_EXPIRED,       /* 554 5.4.7 message expired after N UNIT; last: REPLY */
	/* transport security (RFC 7672, 8461): always 4xx, never a plaintext retry */
	R_DLV_TLS_NOT_OFFERED, /* 451 4.7.4 RELAY offered no STARTTLS (WHY); TLS required by POLICY */
	R_DLV_TLS_CERT,        /* 451 4.7.5 RELAY certificate: REASON; required by POLICY */
	R_DLV_TLS_HANDSHAKE,   /* 451 4.7.5 TLS handshake with RELAY failed: ERR; required by POLICY */
	R_DLV_TLSA_FAILED,     /* 451 4.7.5 TLSA lookup for HOST failed: WHY */
	R_DLV_DANE_REQUIRED,   /* 451 4.7.5 no usable DNSSEC-signed TLSA for HOST (tls_policy dane) */
	R_DLV_STS_NO_MX,       /* 451 4.7.0 no MX host of DOMAIN matches its MTA-STS policy (id ID) */
	R_DLV_STS_FETCH,       /* 451 4.7.0 MTA-STS policy of DOMAIN could not be fetched: WHY */

	/* control: local submission envelope, queue commands (mta/control/) */
	R_CONTROL_FIRST_,
	R_ADMIN_BOUNCE, /* 554 5.0.0 bounced by the administrator (mxrelayctl bounce) */
	R_ADMIN_DELETE, /* 554 5.0.0 deleted by the administrator (queue delete --to/--domain) */

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
 * as ""). Returns the length written. An entry without an enhanced status
 * code renders "CODE text": the greeting and the HELO/EHLO replies (RFC
 * 2034 3) and the 334 AUTH challenges (RFC 4954 4) carry none.
 */
size_t reply_format(char *buf, size_t len, enum reply_id id, ...);

/* The same with the arguments in a va_list (for callers that take "..."). */
size_t reply_vformat(char *buf, size_t len, enum reply_id id, va_list ap);

/* The same without "CODE X.Y.Z ": the text alone (JSON errors, logs). */
size_t reply_format_text(char *buf, size_t len, enum reply_id id, ...);

/*
 * The code and enhanced status code of a reply line that someone else wrote
 * (a remote server's reply, recorded): "550 5.1.1 text" gives 550 and 5, 1, 1,
 * and so do "550-5.1.1 ..." (each line of a multi-line reply carries it, RFC
 * 2034 3), "550  5.1.1", "550 5.1.1: text". false when the line does not
 * start that way (the code alone may still be set).
 */
bool reply_parse(const char *line, unsigned *code, unsigned *cls, unsigned *subj, unsigned *det);

#endif
