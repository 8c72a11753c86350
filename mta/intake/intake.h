/*
 * intake: the one way a message enters the queue, for SMTP DATA
 * (smtpd/data.c) and local submission (control/submit.c) alike.
 *
 * It takes a finished message (the envelope below and the content.h
 * builder), applies the content and sender policy (content_end, then
 * hdrfrom.h: the credential's rules when there is one), signs on a worker
 * (async_run + dkimsign), commits through the spool writer
 * (WRITER_INSERT), and only after the commit logs event=accepted, counts
 * and hands the id to the scheduler. A refusal is logged (event=rejected)
 * and counted the same way whichever door the message came in by. The
 * caller gets one result: a reply id of reply.h and its rendered text,
 * which it turns into its own reply form (an SMTP reply line, a JSON
 * document); nobody else formats an intake reply.
 *
 * Never touches sessions or connections: what it needs of them is in the
 * envelope. Must never send a reply itself.
 */
#ifndef MXRELAY_INTAKE_H
#define MXRELAY_INTAKE_H

#include <stdbool.h>
#include <stddef.h>

#include "mta/reply.h"

struct server;
struct content;
struct cred;
struct audit_client;

/* Everything borrowed: it must stay unchanged until done() has run. */
struct intake_env {
	const char *log_id; /* "s=ID" (SMTP) or "c=ID" (submit socket): starts each log line */
	const char *qid;    /* the queue id (content_new had it too) */
	const char *sender; /* the envelope sender, "" for <> */
	const char *const *rcpts; /* nrcpts >= 1 */
	size_t nrcpts;
	unsigned flags;          /* SPOOL_F_* */
	const char *client_ip;   /* the spool's client_ip: "192.0.2.1" or "local (uid N)" */
	const char *helo;        /* NULL for local submission */
	const char *auth_user;   /* NULL: no credential rules apply */
	const char *listener;    /* the accepting listener's name; NULL: not SMTP (stored as NULL) */
	const struct cred *cred; /* with auth_user; NULL: the user vanished (refused) */
	const struct audit_client *audit; /* NULL: no audit record (local submission) */
	/* log keys after "event=..." naming the client: `ip=192.0.2.1` or `ip=local uid=N` */
	const char *log_who;
	const char *log_who_accepted; /* the same on event=accepted (NULL: log_who) */
	const char
	    *log_accepted_tail; /* appended to event=accepted (" tls=... auth=..."), or NULL */
	const bool *gone; /* the client left: after signing, nothing is stored (NULL: never) */
	bool *spooling;   /* set while the spool writer holds the message (NULL: not wanted) */
};

struct intake_result {
	enum reply_id id;  /* R_QUEUED; a refusal; R_NONE when *gone stopped it */
	const char *reply; /* "250 2.0.0 Ok: queued as QID": the whole reply line ("" for R_NONE) */
	const char *text;  /* the same without "CODE X.Y.Z " (JSON errors) */
	const char *code;  /* "250 2.0.0": code and enhanced status code */
	bool waited;       /* false: answered inside intake_submit, the caller never waited */
};

/* res and its strings are valid during the call only. Loop thread. */
typedef void (*intake_done_fn)(void *arg, const struct intake_result *res);

/*
 * Judge and store one message: content (taken: intake frees it) must have
 * seen all its lines. done(arg, result) runs exactly once on the loop
 * thread: before intake_submit returns when the message is refused at
 * once (content or sender policy, dkim_unsigned = refuse), else later,
 * after signing and the spool commit (the caller waits meanwhile).
 */
void intake_submit(struct server *srv, const struct intake_env *env, struct content *content,
                   intake_done_fn done, void *arg);

/*
 * dkim_unsigned = refuse: the envelope sender's domain must have a key
 * (checked at MAIL FROM by SMTP, at FROM by local submission). R_NONE or
 * R_SENDER_NO_DKIM_KEY (args: the sender).
 */
enum reply_id intake_sender_refusal(const struct server *srv, const char *sender);

#endif
