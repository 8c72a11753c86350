/*
 * smtpc internals shared by smtpc.c (the connection and its state machine:
 * I/O, events, the one enter function and the one reply decision) and
 * smtpc_tx.c (below it: the mail transaction's bookkeeping, what each reply
 * to MAIL, RCPT, DATA and the final dot leads to, the body's bytes). The
 * dependency goes one way: smtpc.c calls smtpc_tx.c, never the reverse.
 * Nothing outside these two includes this (smtpc_tls.c, the TLS setup and
 * verdict, sees no struct smtpc: smtpc.c hands it the SSL and the request).
 */
#ifndef MXRELAY_SMTPC_INT_H
#define MXRELAY_SMTPC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mta/delivery/smtpc.h"
#include "mta/delivery/smtpc_reply.h"
#include "mta/event.h"
#include "mta/reply.h"

struct evbuffer;

/*
 * The states. Entering one sends its command (smtpc.c enter()); the reply
 * decides the next. C_MAIL..C_RSET are the transaction (C_DOT: the body and
 * its final dot went out). C_READY and C_DEAD report to the owner: ready or
 * a transaction's result, and a failure, a transaction's result or the end
 * of QUIT. C_DEAD: nothing more happens on the connection.
 */
enum cstate {
	C_CONNECTING,
	C_BANNER,
	C_EHLO,
	C_HELO,
	C_STARTTLS,
	C_HANDSHAKE,
	C_EHLO2,
	C_READY,
	C_MAIL,
	C_RCPT,
	C_DATA,
	C_DOT,
	C_RSET,
	C_QUIT,
	C_DEAD
};

struct smtpc {
	struct event_base *base;
	struct bufferevent *bev;
	struct smtpc_conf conf;
	char helo[256];
	char mx[256];
	char peer[80];
	struct sockaddr_storage dst; /* where C_CONNECTING connects to */
	socklen_t dstlen;
	struct smtpc_cbs cbs;
	void *arg;
	struct evref ref; /* deferred free: smtpc_free inside our handlers */
	enum cstate state;
	struct smtpc_caps caps; /* from the last EHLO reply */
	bool tls_on;
	char tls_ver[16];
	struct tls_req req;	/* copy of conf.req (or opportunistic) */
	struct tls_outcome out;
	struct smtpc_rd *rd;
	unsigned outstanding; /* commands sent, reply not yet read */
	unsigned wait_s;      /* time allowed for the awaited reply */
	int64_t deadline_ms;  /* the awaited reply must be complete by then */
	/* why the connection failed outside a transaction (fail callback, C_DEAD) */
	enum smtpc_stage fail_stage;
	struct smtpc_reply why;
	/* the transaction */
	struct smtpc_msg m;
	struct smtpc_reply *rr; /* per recipient */
	bool *rcpt_ok;
	bool pipelined; /* this transaction's commands went out together */
	bool mail_ok, any_ok, dot_ok;
	size_t rcpt; /* C_RCPT: the recipient whose reply is awaited */
};

/* smtpc_tx.c */

/* A local reply from the table (mta/reply.h) into r; a, b, c fill its "%s" marks. */
void smtpc__local_reply(struct smtpc_reply *r, enum reply_id id, const char *a, const char *b,
                        const char *c);
/* A transaction for m starts: every recipient's outcome unknown. */
void smtpc_tx_begin(struct smtpc *c, const struct smtpc_msg *m);
/* MAIL FROM's parameters for this server (SIZE, BODY, SMTPUTF8), "" or " SIZE=..." */
void smtpc_tx_mail_params(const struct smtpc *c, char *buf, size_t len);
/* The body dot-stuffed and the final dot (a lone dot when no recipient was accepted). */
void smtpc_tx_body(const struct smtpc *c, struct evbuffer *out);
/*
 * A reply in C_MAIL, C_RCPT, C_DATA or C_DOT: record what it says for the
 * recipients and return the state it leads to. extra: bytes came after it
 * although no other reply was awaited; unsent: octets of ours not yet handed
 * to the kernel. A protocol error returns C_DEAD with its reason in proto.
 */
enum cstate smtpc_tx_next(struct smtpc *c, const struct smtpc_reply *r, bool extra, size_t unsent,
                          char *proto, size_t protolen);
/* The server broke the protocol mid-transaction: every recipient deferred (RFC 2920 3.1). */
void smtpc_tx_broken(struct smtpc *c, const char *why);
/* The connection was lost mid-transaction: every undecided recipient deferred. */
void smtpc_tx_lost(struct smtpc *c, const char *how);
/* The transaction is over: no 2xx stands without a 250 to the final dot (smtpc.h). */
void smtpc_tx_settle(struct smtpc *c);

#endif
