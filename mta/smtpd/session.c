/*
 * smtpd_session: one SMTP server session's life: socket and TLS I/O on a
 * libevent bufferevent, the read loop that feeds commands or DATA, reply
 * output, timeouts, and closing.
 *
 * Lifetime (mta/event.h): every libevent callback holds the session while
 * it runs, and so does a wait for a worker, the spool writer or a timer
 * (state SS_WAIT: taken when a handler ends in SS_WAIT, given back by
 * smtpd_resume, which every wait's completion calls). A hang-up during a
 * wait marks the session closed; it is freed when the completion is done
 * with it, never inside a callback that still uses it.
 */
#include "mta/smtpd/smtpd_int.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "mta/shared/config.h"
#include "mta/shared/creds.h"
#include "mta/shared/log.h"
#include "mta/shared/util.h"
#include "mta/event.h"
#include "mta/metrics.h"

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

void
smtpd_reply_line(struct session *s, const char *line)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	evbuffer_add(out, line, strlen(line));
	evbuffer_add(out, "\r\n", 2);
}

/* Longer than any reply we send: an address (ADDR_MAX) or a host name plus text. */
#define SMTPD_REPLY_MAX 1024

static void
reply_line(struct session *s, bool more, enum reply_id id, va_list ap)
{
	char line[SMTPD_REPLY_MAX];
	size_t n = reply_vformat(line, sizeof(line), id, ap);

	if (more && n > 3)
		line[3] = '-';
	evbuffer_add(bufferevent_get_output(s->bev), line, n);
	evbuffer_add(bufferevent_get_output(s->bev), "\r\n", 2);
}

void
smtpd_reply_id(struct session *s, enum reply_id id, ...)
{
	va_list ap;
	va_start(ap, id);
	reply_line(s, false, id, ap);
	va_end(ap);
}

void
smtpd_reply_more(struct session *s, enum reply_id id, ...)
{
	va_list ap;
	va_start(ap, id);
	reply_line(s, true, id, ap);
	va_end(ap);
}

bool
smtpd_auth_offered(const struct session *s)
{
	return s->srv->creds != NULL && s->auth_user == NULL &&
	       (s->tls || s->lis->conf->auth_without_tls);
}

const struct cred *
smtpd_cred(const struct session *s)
{
	if (s->auth_user == NULL || s->srv->creds == NULL)
		return NULL;
	return creds_find(s->srv->creds, s->auth_user);
}

/* evref's free_fn: the last hold on a closing session is gone. */
static void
session_free(void *obj)
{
	struct session *s = obj;
	struct server *srv = s->srv;

	log_info("s=%s event=disconnect ip=%s transactions=%u", s->id, s->ip, s->ntx);
	if (s->prev)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	srv->nsessions--;
	metrics_gauge_add(G_SESSIONS, -1);
	peers_release(srv, (struct sockaddr *)&s->peer);
	smtpd_tx_reset(s);
	smtpd_auth_cleanup(s);
	if (s->timer)
		event_free(s->timer);
	if (s->hs_timer)
		event_free(s->hs_timer);
	if (s->bev) {
		/*
		 * After STARTTLS the last reply may still sit, encrypted, in the
		 * socket bufferevent under the TLS filter: push it out before
		 * freeing, or a client never sees the 221 to its QUIT.
		 */
		struct bufferevent *u = bufferevent_get_underlying(s->bev);
		if (u != NULL && !s->closed) {
			/* socket bufferevents freeze their output's start: thaw to write it */
			struct evbuffer *o = bufferevent_get_output(u);
			evbuffer_unfreeze(o, 1);
			if (evbuffer_write(o, bufferevent_getfd(u)) < 0)
				log_debug("s=%s event=close_flush_failed", s->id);
		}
		bufferevent_free(s->bev);
	}
	free(s->helo);
	free(s->auth_user);
	free(s);
}

/* A callback or a wait's completion starts using s. */
static void
session_enter(struct session *s)
{
	evref_enter(&s->ref);
}

/*
 * The callback is done with s. If it left s waiting (SS_WAIT: work handed
 * to a worker, the writer or a timer), the wait holds s until smtpd_resume.
 * s may be freed here.
 */
static void
session_leave(struct session *s)
{
	if (s->state == SS_WAIT && !s->wait_held && !s->closed) {
		s->wait_held = true;
		evref_enter(&s->ref);
	}
	evref_leave(&s->ref);
}

/* Close: no callback reaches s any more; freed when nothing holds it (maybe now). */
static void
session_close(struct session *s)
{
	if (evref_closing(&s->ref))
		return;
	bufferevent_setcb(s->bev, NULL, NULL, NULL, NULL);
	evref_close(&s->ref);
}

/* The peer is gone or we hang up now. */
static void
session_drop(struct session *s)
{
	if (s->state == SS_WAIT) {
		s->closed = true;
		bufferevent_disable(s->bev, EV_READ | EV_WRITE);
	}
	session_close(s);
}

void
smtpd_close_after_reply(struct session *s)
{
	s->state = SS_CLOSING;
	bufferevent_disable(s->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		session_close(s);
	/* else on_write frees it once the reply is out */
}

/* Read one command line into a malloc'd string. 1: got one, 0: need more. */
static int
read_line(struct session *s, struct evbuffer *in, char **line, size_t *len)
{
	size_t max = SMTPD_AUTH_LINE_MAX;
	struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);

	if (eol.pos < 0) {
		size_t have = evbuffer_get_length(in);
		if (have > max) {
			/* no line end in sight: drop what we have, keep dropping to the LF */
			evbuffer_drain(in, have);
			if (!s->discard_line) {
				s->discard_line = true;
				smtpd_reply_id(s, R_CMD_TOO_LONG);
				s->bad_cmds++;
			}
		}
		return 0;
	}
	*line = evbuffer_readln(in, len, EVBUFFER_EOL_CRLF);
	if (*line == NULL)
		return 0;
	if (*len > max && !s->discard_line) {
		/* arrived whole in one read: still too long */
		free(*line);
		*line = NULL;
		smtpd_reply_id(s, R_CMD_TOO_LONG);
		s->bad_cmds++;
		return 1;
	}
	if (s->discard_line) {
		s->discard_line = false;
		free(*line);
		*line = NULL;
		return 1;
	}
	return 1;
}

static void
process(struct session *s)
{
	while (s->state == SS_CMD || s->state == SS_AUTH || s->state == SS_DATA) {
		/* fetched each time: STARTTLS replaces s->bev */
		struct evbuffer *in = bufferevent_get_input(s->bev);
		struct evbuffer *out = bufferevent_get_output(s->bev);

		if (evbuffer_get_length(out) > SMTPD_OUT_MAX) {
			/* a client pipelining without reading: stop until it catches up */
			s->paused = true;
			bufferevent_disable(s->bev, EV_READ);
			return;
		}
		if (s->state == SS_DATA) {
			if (smtpd_data_feed(s, in))
				return;
			continue;
		}
		char *line = NULL;
		size_t len = 0;
		if (!read_line(s, in, &line, &len))
			return;
		if (line == NULL)
			continue; /* tail of an over-long line */
		if (s->state == SS_AUTH)
			smtpd_auth_line(s, line);
		else
			smtpd_dispatch(s, line, len);
		free(line);
		if (s->bad_cmds >= SMTPD_BAD_CMDS_MAX && s->state != SS_CLOSING) {
			smtpd_reply_id(s, R_TOO_MANY_ERRORS, s->srv->cfg->hostname);
			smtpd_close_after_reply(s);
			return;
		}
	}
}

void
smtpd_resume(struct session *s)
{
	session_enter(s);
	if (s->wait_held) {
		s->wait_held = false;
		evref_leave(&s->ref); /* still held: entered above */
	}
	if (s->closed)
		session_close(s);
	else if (s->state != SS_CLOSING && !evref_closing(&s->ref))
		process(s);
	session_leave(s);
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	session_enter(s);
	if (!evref_closing(&s->ref))
		process(s);
	session_leave(s);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	session_enter(s);
	if (evref_closing(&s->ref)) {
		/* going away: nothing more to do */
	} else if (s->state == SS_CLOSING) {
		session_close(s);
	} else if (s->paused) {
		s->paused = false;
		bufferevent_enable(s->bev, EV_READ);
		process(s);
	}
	session_leave(s);
}

static void
tls_established(struct session *s)
{
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
	int ver = SSL_version(ssl);

	s->tls_done = true;
	if (s->hs_timer)
		evtimer_del(s->hs_timer);
	snprintf(s->tls_version, sizeof(s->tls_version), "%s", SSL_get_version(ssl));
	snprintf(s->tls_cipher, sizeof(s->tls_cipher), "%s", SSL_get_cipher_name(ssl));
	s->tls_legacy = ver < TLS1_2_VERSION;
	metrics_tls_seen(s->tls_version);
	if (s->tls_legacy)
		log_warn("s=%s event=legacy_tls ip=%s listener=%s version=%s cipher=%s", s->id,
		         s->ip, s->lis->conf->name, s->tls_version, s->tls_cipher);
	else
		log_info("s=%s event=tls ip=%s version=%s cipher=%s", s->id, s->ip, s->tls_version,
		         s->tls_cipher);
}

/* Handshake done, timeout, error or EOF on the connection. */
static void
handle_event(struct session *s, struct bufferevent *bev, short what)
{
	if (what & BEV_EVENT_CONNECTED) {
		tls_established(s);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		log_info("s=%s event=timeout ip=%s state=%d", s->id, s->ip, (int)s->state);
		if (s->state == SS_WAIT || s->state == SS_CLOSING) {
			session_drop(s);
			return;
		}
		smtpd_reply_id(s, R_TIMEOUT, s->srv->cfg->hostname);
		smtpd_close_after_reply(s);
		return;
	}
	if ((what & BEV_EVENT_ERROR) && s->tls && !s->tls_done) {
		unsigned long e = bufferevent_get_openssl_error(bev);
		char buf[256] = "connection closed during handshake";
		if (e)
			ERR_error_string_n(e, buf, sizeof(buf));
		log_warn("s=%s event=tls_failed ip=%s listener=%s reason=\"%s\"", s->id, s->ip,
		         s->lis->conf->name, buf);
	}
	session_drop(s);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;

	session_enter(s);
	if (!evref_closing(&s->ref))
		handle_event(s, bev, what);
	session_leave(s);
}

static void
on_hs_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	session_enter(s);
	if (!evref_closing(&s->ref)) {
		log_info("s=%s event=tls_failed ip=%s listener=%s reason=\"handshake timeout\"",
		         s->id, s->ip, s->lis->conf->name);
		session_drop(s);
	}
	session_leave(s);
}

/* A client that connects and never finishes the handshake must not hold a slot. */
static void
arm_handshake_timer(struct session *s)
{
	struct timeval tv = {(time_t)s->srv->cfg->session_timeout, 0};
	if (s->hs_timer == NULL)
		s->hs_timer = evtimer_new(s->srv->base, on_hs_timeout, s);
	evtimer_add(s->hs_timer, &tv);
}

static void
setup_bev(struct session *s)
{
	struct timeval tv = {(time_t)s->srv->cfg->session_timeout, 0};
	bufferevent_setcb(s->bev, on_read, on_write, on_event, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, 256 * 1024);
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

static SSL *
new_ssl(struct session *s)
{
	bool legacy = tls_legacy_allowed(s->lis->conf, (struct sockaddr *)&s->peer, time(NULL));
	return tls_new_ssl(&s->lis->tls, legacy);
}

int
smtpd_starttls(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t junk = evbuffer_get_length(in);
	struct bufferevent *tb;
	SSL *ssl;

	/* RFC 3207 6 / CVE-2011-0411: anything sent after STARTTLS in plaintext is dropped */
	if (junk > 0) {
		evbuffer_drain(in, junk);
		log_warn("s=%s event=starttls_injection ip=%s bytes=%zu", s->id, s->ip, junk);
	}
	ssl = new_ssl(s);
	if (ssl == NULL)
		return -1;
	tb = bufferevent_openssl_filter_new(s->srv->base, s->bev, ssl, BUFFEREVENT_SSL_ACCEPTING,
	                                    BEV_OPT_CLOSE_ON_FREE);
	if (tb == NULL) {
		SSL_free(ssl);
		return -1;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(tb, 1);
	s->bev = tb;
	s->tls = true;
	setup_bev(s);
	arm_handshake_timer(s);
	return 0;
}

void
session_start(struct listener *l, int fd, const struct sockaddr *sa, socklen_t salen,
              bool refuse_tls)
{
	struct server *srv = l->srv;
	struct session *s = xcalloc(1, sizeof(*s));
	int one = 1;

	evref_init(&s->ref, session_free, s);
	s->srv = srv;
	s->lis = l;
	s->refuse_tls = refuse_tls;
	memcpy(&s->peer, sa, salen);
	s->peerlen = salen;
	cidr_addr_text(sa, s->ip, sizeof(s->ip));
	util_random_hex(s->id, 12);
	s->allowlisted = cidr_list_match(&srv->cfg->relay_from, sa);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (l->conf->tls == LTLS_IMPLICIT) {
		SSL *ssl = new_ssl(s);
		s->bev = ssl ? bufferevent_openssl_socket_new(srv->base, fd, ssl,
		                                              BUFFEREVENT_SSL_ACCEPTING,
		                                              BEV_OPT_CLOSE_ON_FREE)
		             : NULL;
		if (s->bev)
			bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
		s->tls = true;
	} else {
		s->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	}
	if (s->bev == NULL) {
		log_err("event=session_error ip=%s reason=\"cannot set up connection\"", s->ip);
		close(fd);
		peers_release(srv, sa);
		free(s);
		return;
	}
	s->next = srv->sessions;
	if (s->next)
		s->next->prev = s;
	srv->sessions = s;
	srv->nsessions++;
	metrics_gauge_add(G_SESSIONS, 1);
	metrics_inc(M_SESSIONS_TOTAL);
	setup_bev(s);
	if (s->tls)
		arm_handshake_timer(s);
	log_info("s=%s event=connect ip=%s listener=%s allowlisted=%s", s->id, s->ip, l->conf->name,
	         s->allowlisted ? "yes" : "no");
	if (refuse_tls) {
		/* queued now, sent once the handshake is done */
		smtpd_reply_id(s, R_TOO_MANY_CONNS, srv->cfg->hostname);
		smtpd_close_after_reply(s);
		return;
	}
	smtpd_reply_id(s, R_GREETING, srv->cfg->hostname);
}

void
sessions_drain(struct server *srv)
{
	struct session *s, *n;
	for (s = srv->sessions; s; s = n) {
		n = s->next;
		if (s->state == SS_CMD && !s->in_tx) {
			smtpd_reply_id(s, R_SHUTTING_DOWN, srv->cfg->hostname);
			smtpd_close_after_reply(s);
		}
	}
}

void
sessions_abort(struct server *srv)
{
	struct session *s, *n;
	for (s = srv->sessions; s; s = n) {
		n = s->next;
		if (s->spooling)
			continue; /* in the spool writer's hands: its answer comes soon */
		log_warn("s=%s event=aborted ip=%s reason=shutdown_timeout", s->id, s->ip);
		session_drop(s);
	}
}
