/*
 * smtpc internals shared by smtpc.c (the connection: I/O, events, greeting,
 * EHLO, STARTTLS) and smtpc_tx.c (the mail transaction: MAIL, RCPT, DATA,
 * the body and the reply to its final dot). Nothing outside these two
 * includes this.
 */
#ifndef MXRELAY_SMTPC_INT_H
#define MXRELAY_SMTPC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mta/delivery/smtpc.h"
#include "mta/delivery/smtpc_reply.h"

/* C_TX: MAIL/RCPT/DATA replies awaited; C_DOT: the body's; C_DEAD: reported, awaiting free */
enum cstate { C_CONNECTING, C_BANNER, C_EHLO, C_HELO, C_STARTTLS, C_HANDSHAKE, C_EHLO2,
	      C_READY, C_TX, C_RSET, C_DOT, C_QUIT, C_DEAD };

struct smtpc {
	struct event_base *base;
	struct bufferevent *bev;
	struct smtpc_conf conf;
	char helo[256];
	char mx[256];
	char peer[80];
	struct smtpc_cbs cbs;
	void *arg;
	enum cstate state;
	struct smtpc_caps caps;		/* from the last EHLO reply */
	bool tls_on;
	char tls_ver[16];
	struct smtpc_rd *rd;
	unsigned outstanding;		/* commands sent, reply not yet read */
	unsigned wait_s;		/* time allowed for the awaited reply */
	int64_t deadline_ms;		/* the awaited reply must be complete by then */
	/* the transaction */
	struct smtpc_msg m;
	struct smtpc_reply *rr;		/* per recipient */
	bool *rcpt_ok;
	bool pipelined;			/* this transaction's commands went out together */
	bool mail_ok, any_ok, dot_ok;
	size_t expect;			/* 0 MAIL, 1..n RCPT, n+1 DATA */
	int busy;			/* inside one of our event handlers */
	bool free_pending;
};

/* smtpc.c */
/* Queue one command line (CRLF added) and count the reply it awaits. */
void smtpc__sendf(struct smtpc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Await a reply for at most s seconds in all. */
void smtpc__await(struct smtpc *c, unsigned s);
void smtpc__local_reply(struct smtpc_reply *r, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Octets of ours not yet handed to the kernel. */
size_t smtpc__out_pending(struct smtpc *c);
/* The transaction is over: hand every recipient's reply to the owner. */
void smtpc__finish(struct smtpc *c, bool alive);
/* The server broke the protocol (r: its reply, or NULL): defer or fail, and close. */
void smtpc__proto_error(struct smtpc *c, const struct smtpc_reply *r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* smtpc_tx.c: a reply in C_TX (to MAIL, RCPT or DATA) / in C_DOT. extra: bytes
 * came after it although no other reply was awaited. */
void smtpc__tx_reply(struct smtpc *c, const struct smtpc_reply *r, bool extra);
void smtpc__dot_reply(struct smtpc *c, const struct smtpc_reply *r, bool extra);

#endif
