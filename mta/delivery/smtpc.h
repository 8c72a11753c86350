/*
 * smtpc: one outbound SMTP client connection (RFC 5321) to a recipient's MX:
 * connect from a chosen source address, banner, EHLO (HELO fallback),
 * STARTTLS (RFC 3207, SNI = MX name) opportunistic or required as the
 * struct tls_req says (smtpc_tls.h judges the certificate), PIPELINING (RFC 2920),
 * SIZE, 8BITMIME and SMTPUTF8 checks, dot-stuffing, per-recipient results,
 * and reuse of the connection for further transactions.
 *
 * Every reply is counted against the commands sent: a reply out of place
 * (221 or 250 where 354 belongs, a reply with no command, bytes after the
 * last awaited reply) is a protocol error that defers the transaction and
 * closes the connection. A recipient gets a 2xx result only when the
 * server's reply to the final dot was 250.
 *
 * Callbacks never fire inside smtpc_connect or smtpc_send. smtpc_free may be
 * called from anywhere, a callback included: while smtpc is handling an event
 * the object is only marked, and freed when that event's handling ends.
 */
#ifndef MXRELAY_SMTPC_H
#define MXRELAY_SMTPC_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "mta/delivery/smtpc_reply.h"
#include "mta/delivery/tlsreq.h"

struct event_base;
struct smtpc;

struct smtpc_conf {
	const char *helo;			/* our name in EHLO */
	const struct sockaddr *src;		/* source address to bind, or NULL */
	socklen_t srclen;
	SSL_CTX *tls;				/* NULL: never STARTTLS */
	const struct tls_req *req;		/* what TLS is required; NULL: opportunistic.
						   Copied by smtpc_connect. */
	unsigned t_connect, t_banner, t_cmd, t_data, t_block, t_dot;	/* seconds */
};

/*
 * Where a connection failed before it was ready. SMTPC_PROTOCOL: the server
 * broke the protocol (a reply out of place or malformed, data after the 220
 * to STARTTLS): never retried in plaintext as a TLS failure is.
 */
/*
 * SMTPC_TLS_REQUIRED: the request needed TLS and the server offered no
 * STARTTLS or refused it; SMTPC_TLS_VERIFY: the handshake completed but the
 * certificate does not meet the request (judged before EHLO is sent again,
 * so not one byte of mail went out). Neither is ever retried in plaintext;
 * smtpc_tls_outcome says why (RFC 8460 result type and detail).
 */
enum smtpc_stage { SMTPC_CONNECT, SMTPC_BANNER, SMTPC_EHLO, SMTPC_TLS, SMTPC_LOST,
		   SMTPC_PROTOCOL, SMTPC_TLS_REQUIRED, SMTPC_TLS_VERIFY };

/* The stage as a log word: "connect", "banner", "ehlo", "starttls", "lost", ... */
const char *smtpc_stage_name(enum smtpc_stage st);

struct smtpc_msg {
	const char *sender;	/* "" for the null sender */
	const char *const *rcpts;
	size_t nrcpts;
	const char *body;	/* CRLF lines, not dot-stuffed; must stay valid until result() */
	size_t body_len;
	bool need_8bit;		/* content has 8-bit bytes / BODY=8BITMIME */
	bool need_utf8;		/* SMTPUTF8 was used */
	int64_t *t_sent;	/* NULL, or set to util_now_ms() when MAIL FROM is sent
				 * (the owner's delays=: transmission starts) */
};

struct smtpc_cbs {
	/* Banner, EHLO and (when offered) TLS done: smtpc_send may be called. */
	void (*ready)(struct smtpc *c, void *arg);
	/* A transaction ended: one reply per recipient, in smtpc_msg order. */
	void (*result)(struct smtpc *c, void *arg, const struct smtpc_reply *r, size_t n);
	/* The connection failed outside a transaction; free it. */
	void (*fail)(struct smtpc *c, void *arg, enum smtpc_stage stage, const struct smtpc_reply *why);
};

struct smtpc *smtpc_connect(struct event_base *base, const struct smtpc_conf *conf,
			    const char *mxname, const struct sockaddr *dst, socklen_t dstlen,
			    const struct smtpc_cbs *cbs, void *arg);

/* Start a transaction; only after ready() or result() with smtpc_usable(). 0 / -1. */
int smtpc_send(struct smtpc *c, const struct smtpc_msg *m);

/*
 * What this server lacks for m (SMTPUTF8, 8BITMIME, SIZE): 0 when it can take
 * it, else -1 with a permanent local reply (5.6.7, 5.6.3, 5.3.4) in why.
 * Call before smtpc_send: we never downgrade or corrupt a message silently.
 */
int smtpc_check(const struct smtpc *c, const struct smtpc_msg *m, struct smtpc_reply *why);

/* Still connected and idle, fit for another transaction? */
bool smtpc_usable(const struct smtpc *c);

/* Send QUIT and close in the background; no callback fires afterwards. */
void smtpc_quit(struct smtpc *c);

/* Close now; no callback fires afterwards. */
void smtpc_free(struct smtpc *c);

/* TLS version in use ("TLSv1.3") or "none"; the peer's address text "[ip]:port". */
const char *smtpc_tls_version(const struct smtpc *c);
const char *smtpc_peer(const struct smtpc *c);
const char *smtpc_mxname(const struct smtpc *c);
/*
 * What TLS this connection achieved against its request: kind, verified,
 * version, and the RFC 8460 result when the request was not met. Valid
 * until smtpc_free.
 */
const struct tls_outcome *smtpc_tls_outcome(const struct smtpc *c);

#endif
