/*
 * smtpd internals shared by smtpd/session.c (start, command loop, free),
 * smtpd/cmd.c (envelope commands), smtpd/auth.c (AUTH), smtpd/data.c (DATA)
 * and smtpd/io.c (output, callbacks, lifetime). Calls go one way, top down,
 * in the order session.c, cmd.c, data.c, auth.c, io.c: each file calls only
 * files after it. io.c reaches the command loop only through s->process.
 * Not for other modules: main.c uses smtpd.h.
 */
#ifndef MXRELAY_SMTPD_INT_H
#define MXRELAY_SMTPD_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "mta/event.h"
#include "mta/reply.h"
#include "mta/server.h"
#include "mta/smtpd/smtpd.h"
#include "spool/spool.h"

#define SMTPD_CMD_MAX 512         /* RFC 5321 4.5.3.1.4, incl. CRLF */
#define SMTPD_AUTH_LINE_MAX 12288 /* RFC 4954 4: AUTH lines may be this long */
#define SMTPD_OUT_MAX (64 * 1024) /* stop reading while this much output is unsent */
#define SMTPD_BAD_CMDS_MAX 10     /* protocol errors before we hang up */
#define SMTPD_AUTH_REFUSALS_MAX 3 /* 454s to a blocked address, then 421 and close */

enum sstate {
	SS_CMD,     /* reading commands */
	SS_AUTH,    /* reading an AUTH continuation line */
	SS_DATA,    /* reading message content */
	SS_WAIT,    /* waiting for a worker, the spool or a timer */
	SS_CLOSING, /* flushing the last reply, then close */
};

struct smtpd_data; /* smtpd/data.c */
struct evbuffer;

struct session {
	struct server *srv;
	struct listener *lis;
	struct bufferevent *bev;
	struct session *prev, *next;
	char id[13];
	struct sockaddr_storage peer;
	socklen_t peerlen;
	char ip[64];
	enum sstate state;
	struct evref ref; /* callbacks and waits hold it (mta/event.h) */
	/* session.c's command loop: io.c calls it on input and when a wait ends */
	void (*process)(struct session *s);
	bool wait_held;    /* SS_WAIT's hold on ref, given back by smtpd_resume */
	bool closed;       /* peer gone while we wait: free when the wait ends */
	bool paused;       /* stopped reading: too much unsent output */
	bool discard_line; /* dropping the rest of an over-long line */
	bool allowlisted;
	bool refuse_tls; /* over the per-address cap: 421 once TLS is up, then close */

	char *helo;
	bool esmtp;
	bool tls, tls_done, tls_legacy;
	bool sunset_tls_due;  /* legacy TLS in the warning window: counted at MAIL */
	bool sunset_auth_due; /* AUTH without TLS in the window: counted if AUTH succeeds */
	char tls_version[16];
	char tls_cipher[64];

	char *auth_user;
	const char *auth_mech;
	int auth_step; /* LOGIN: 0 wants user, 1 wants password; PLAIN: 0 */
	char *auth_login_user;
	unsigned auth_refusals; /* AUTHs refused because the address is blocked */
	struct event *timer;    /* delayed replies (failed AUTH) */
	struct event *hs_timer; /* TLS handshake deadline: libevent's TLS filter has none */

	/* the transaction */
	bool in_tx;
	char *mail_from;
	unsigned mail_flags; /* SPOOL_F_* */
	char **rcpts;
	size_t nrcpts;
	struct smtpd_data *data;
	bool spooling; /* job is in the spool writer's hands */
	char qid[SPOOL_QID_LEN + 1];

	unsigned bad_cmds;
	unsigned ntx;

	/* limits.c reads these (util_now_ms milliseconds) for deadlines and evictions */
	int64_t line_start;  /* first byte of the command line being read; 0: none */
	int64_t last_read;   /* the last input: idle time under stress */
	int64_t last_work;   /* the last working command (cmd.c), or the start: eviction order */
	int64_t data_start;  /* the 354 went out (SS_DATA) */
	uint64_t data_bytes; /* DATA octets read since the 354 */
	bool evicted;        /* closing after an eviction: counted in srv->nevicting */
};

/* smtpd/io.c */
/* One reply line already rendered from reply.h (intake's answer), CRLF added. */
void smtpd_reply_line(struct session *s, const char *line);
/*
 * Refuse a connection before any session exists (listener.c, proxy_accept.c):
 * one write of the reply id, then close; on an implicit-TLS port just close.
 */
void smtpd_refuse_fd(const struct listener *l, int fd, enum reply_id id);
/*
 * Send the reply id of mta/reply.h, its "%s" marks filled from the const
 * char * arguments; _more sends it as a continuation line ("250-...",
 * RFC 5321 4.2.1) of a multi-line reply.
 */
void smtpd_reply_id(struct session *s, enum reply_id id, ...);
void smtpd_reply_more(struct session *s, enum reply_id id, ...);
void smtpd_close_after_reply(struct session *s);
/*
 * A wait (SS_WAIT) ended: every completion calls this once, last (s may be
 * freed inside). Continues with buffered input (s->process), or frees a
 * closed session.
 */
void smtpd_resume(struct session *s);
/* The peer is gone or we hang up now (a wait in progress frees s when it ends). */
void smtpd_session_drop(struct session *s);
/* RFC 3207: put the TLS filter over s->bev. 0, or -1 (nothing changed but the input drained). */
int smtpd_starttls(struct session *s);
/* An SSL for s's listener (legacy versions allowed for s's address?); NULL on failure. */
SSL *smtpd_new_ssl(struct session *s);
/* Callbacks, watermark and timeouts on s->bev; the handshake deadline when s->tls. */
void smtpd_io_attach(struct session *s);

/* The state as a word for logs ("cmd", "data"...). */
const char *smtpd_state_name(enum sstate st);

/* smtpd/limits.c: deadlines that count work, and slots shared fairly */
/* Start / stop the once-a-second check of every session's deadlines (listener.c). */
void smtpd_limits_start(struct server *srv);
void smtpd_limits_stop(struct server *srv);
/*
 * A connection from sa wants a session: take its slot (one peers_take), if
 * need be by evicting an idle session. 0, or -1 with *why the cap that
 * refuses it ("max_connections" or "max_connections_per_ip").
 */
int smtpd_slot_take(struct server *srv, const struct sockaddr *sa, const char **why);

/* smtpd/cmd.c: one handler per verb; arg is the text after the verb (may be "") */
void smtpd_dispatch(struct session *s, char *line, size_t len);

/* smtpd/auth.c */
void smtpd_cmd_auth(struct session *s, char *arg);
void smtpd_auth_line(struct session *s, char *line);
void smtpd_auth_cleanup(struct session *s);
bool smtpd_auth_offered(const struct session *s);
/* The credentials of the logged-in user; NULL before AUTH or once they are gone. */
const struct cred *smtpd_cred(const struct session *s);

/* sunset.c: the sunset dates of issue 15 (false: refused and logged; day names the date) */
void smtpd_sunset_tls(struct session *s);
bool smtpd_sunset_auth_cmd(struct session *s, char *day, size_t daylen);
/* auth_without_tls_until has passed and s has no TLS (EHLO then offers no AUTH). */
bool smtpd_sunset_auth_passed(const struct session *s);
bool smtpd_sunset_cred(struct session *s, const char *user, char *day, size_t daylen);
/* sunset.c: count a due warning against the user, once known (after AUTH; at MAIL) */
void smtpd_sunset_auth_ok(struct session *s);
void smtpd_sunset_mail(struct session *s);
/* Which setting refused a handshake whose OpenSSL error is ERR (NULL: not a version refusal). */
const char *smtpd_tls_refusal_rule(const struct session *s, unsigned long err, char *day,
                                   size_t daylen);

/* smtpd/data.c */
void smtpd_data_begin(struct session *s);
/* Consume DATA input; returns true when the input is used up (wait for more). */
bool smtpd_data_feed(struct session *s, struct evbuffer *in);
/*
 * limits.c's sweep: DATA ended with "LF . LF" (or LF "." CRLF) and the
 * client has been quiet since: refuse (550 5.6.0), close, true.
 */
bool smtpd_data_stalled(struct session *s, int64_t now);
void smtpd_data_free(struct session *s);
/* Forget the transaction (and its DATA), as RSET does. */
void smtpd_tx_reset(struct session *s);

#endif
