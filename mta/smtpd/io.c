/*
 * smtpd_io: a session's output and lifetime, the lowest file of smtpd/:
 * replies, the close after a reply, the libevent callbacks (socket and TLS
 * I/O, timeouts, the STARTTLS switch) and the end of a wait. session.c,
 * cmd.c, auth.c and data.c all use it; it calls none of them. Input goes up
 * through s->process, the command loop session.c sets when the session
 * starts, and the last hold frees through the evref's free function, also
 * session.c's.
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
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mta/shared/config.h"
#include "mta/shared/log.h"
#include "mta/shared/util.h"
#include "mta/event.h"
#include "mta/metrics.h"
#include "mta/smtpd/tls.h"

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

const char *
smtpd_state_name(enum sstate st)
{
	static const char *const names[] = {
	    [SS_CMD] = "cmd",   [SS_AUTH] = "auth",       [SS_DATA] = "data",
	    [SS_WAIT] = "wait", [SS_CLOSING] = "closing",
	};
	return (unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st] : "unknown";
}

/* Longer than any reply we send: an address (ADDR_MAX) or a host name plus text. */
#define SMTPD_REPLY_MAX 1024

void
smtpd_reply_line(struct session *s, const char *line)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	evbuffer_add(out, line, strlen(line));
	evbuffer_add(out, "\r\n", 2);
}

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

void
smtpd_session_drop(struct session *s)
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

void
smtpd_resume(struct session *s)
{
	session_enter(s);
	if (s->wait_held) {
		s->wait_held = false;
		evref_leave(&s->ref); /* still held: entered above */
	}
	s->last_read = util_now_ms(); /* a long wait is not the client's idle time */
	if (s->closed)
		session_close(s);
	else if (s->state != SS_CLOSING && !evref_closing(&s->ref))
		s->process(s);
	session_leave(s);
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	session_enter(s);
	s->last_read = util_now_ms(); /* limits.c: idle time under stress */
	if (!evref_closing(&s->ref))
		s->process(s);
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
		s->process(s);
	}
	session_leave(s);
}

static void
tls_established(struct session *s)
{
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
	int ver = SSL_version(ssl);

	s->tls_done = true;
	loop_timer_stop(s->hs_timer);
	snprintf(s->tls_version, sizeof(s->tls_version), "%s", SSL_get_version(ssl));
	snprintf(s->tls_cipher, sizeof(s->tls_cipher), "%s", SSL_get_cipher_name(ssl));
	s->tls_legacy = ver < TLS1_2_VERSION;
	metrics_tls_seen(s->tls_version);
	if (s->tls_legacy) {
		log_warn("s=%s event=legacy_tls ip=%s listener=%s version=%s cipher=%s", s->id,
		         s->ip, s->lis->conf->name, s->tls_version, s->tls_cipher);
		smtpd_sunset_tls(s);
	} else
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
		log_info("s=%s event=timeout ip=%s reason=idle state=%s", s->id, s->ip,
		         smtpd_state_name(s->state));
		metrics_inc(M_CLOSED_IDLE);
		if (s->state == SS_WAIT || s->state == SS_CLOSING) {
			smtpd_session_drop(s);
			return;
		}
		smtpd_reply_id(s, R_TIMEOUT, s->srv->cfg->hostname);
		smtpd_close_after_reply(s);
		return;
	}
	if ((what & BEV_EVENT_ERROR) && s->tls && !s->tls_done) {
		unsigned long e = bufferevent_get_openssl_error(bev);
		char buf[256] = "connection closed during handshake", day[16] = "";
		if (e)
			ERR_error_string_n(e, buf, sizeof(buf));
		const char *rule = e ? smtpd_tls_refusal_rule(s, e, day, sizeof day) : NULL;
		log_warn("s=%s event=tls_failed ip=%s listener=%s reason=\"%s\"%s%s%s%s", s->id,
		         s->ip, s->lis->conf->name, buf, rule ? " rule=" : "", rule ? rule : "",
		         day[0] ? " date=" : "", rule ? day : "");
	}
	smtpd_session_drop(s);
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
on_hs_timeout(void *arg)
{
	struct session *s = arg;

	session_enter(s);
	if (!evref_closing(&s->ref)) {
		log_info("s=%s event=tls_failed ip=%s listener=%s reason=\"handshake timeout\"",
		         s->id, s->ip, s->lis->conf->name);
		smtpd_session_drop(s);
	}
	session_leave(s);
}

/*
 * A client that connects and never finishes the handshake must not hold a
 * slot: the handshake is one exchange, bounded like a command line.
 */
static void
arm_handshake_timer(struct session *s)
{
	const struct config *cfg = s->srv->cfg;
	unsigned secs = cfg->command_deadline < cfg->session_timeout ? cfg->command_deadline
	                                                             : cfg->session_timeout;
	if (s->hs_timer == NULL)
		s->hs_timer = loop_timer_new(s->srv->base, false, on_hs_timeout, s);
	loop_timer_add(s->hs_timer, secs * 1000);
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

SSL *
smtpd_new_ssl(struct session *s)
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
	ssl = smtpd_new_ssl(s);
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
smtpd_io_attach(struct session *s)
{
	setup_bev(s);
	if (s->tls)
		arm_handshake_timer(s);
}

/* On an implicit-TLS port a plaintext reply would only read as a broken handshake. */
void
smtpd_refuse_fd(const struct listener *l, int fd, enum reply_id id)
{
	char line[512];

	if (l->conf->tls != LTLS_IMPLICIT) {
		size_t n = reply_format(line, sizeof(line) - 2, id, l->srv->cfg->hostname);
		memcpy(line + n, "\r\n", 2);
		ssize_t r = send(fd, line, n + 2, MSG_DONTWAIT | MSG_NOSIGNAL);
		(void)r;
	}
	close(fd);
}
