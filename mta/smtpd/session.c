/*
 * smtpd_session: one SMTP server session from start to free, the top of
 * smtpd/: the start (socket or implicit TLS, greeting), the command loop
 * that feeds lines to cmd.c and auth.c or the stream to data.c, the drain
 * and abort at shutdown, and the free when the last hold is gone. Output,
 * callbacks and the lifetime holds are io.c's (see there); it reaches the
 * loop here through s->process, set at the start.
 */
#include "mta/smtpd/smtpd_int.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "mta/shared/config.h"
#include "mta/shared/log.h"
#include "mta/shared/util.h"
#include "mta/event.h"
#include "mta/metrics.h"

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
	if (s->evicted)
		srv->nevicting--; /* its slot went back at the eviction (limits.c) */
	else
		peers_release(srv, (struct sockaddr *)&s->peer);
	smtpd_tx_reset(s);
	smtpd_auth_cleanup(s);
	loop_timer_free(s->timer);
	loop_timer_free(s->hs_timer);
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

/*
 * command_deadline runs from the first byte of a line to its CRLF
 * (limits.c checks it): start the clock on a partial line, stop it when
 * none is pending. A dropped over-long line is still one line.
 */
static void
line_clock(struct session *s, struct evbuffer *in)
{
	if (evbuffer_get_length(in) == 0 && !s->discard_line)
		s->line_start = 0;
	else if (s->line_start == 0)
		s->line_start = util_now_ms();
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
		if (!read_line(s, in, &line, &len)) {
			line_clock(s, in);
			return;
		}
		s->line_start = 0;
		if (line == NULL)
			continue; /* tail of an over-long line */
		if (s->state == SS_AUTH) {
			s->last_work = util_now_ms(); /* cmd.c keeps it for commands */
			smtpd_auth_line(s, line);
		} else
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
session_start(struct listener *l, int fd, const struct sockaddr *sa, socklen_t salen,
              bool refuse_tls)
{
	struct server *srv = l->srv;
	struct session *s = xcalloc(1, sizeof(*s));
	int one = 1;

	evref_init(&s->ref, session_free, s);
	s->process = process; /* io.c reaches the command loop only through this */
	s->srv = srv;
	s->lis = l;
	s->refuse_tls = refuse_tls;
	memcpy(&s->peer, sa, salen);
	s->peerlen = salen;
	cidr_addr_text(sa, s->ip, sizeof(s->ip));
	util_random_hex(s->id, 12);
	s->allowlisted = cidr_list_match(&srv->cfg->relay_from, sa);
	s->last_read = s->last_work = util_now_ms();
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (l->conf->tls == LTLS_IMPLICIT) {
		SSL *ssl = smtpd_new_ssl(s);
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
	smtpd_io_attach(s);
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
		if (s->state == SS_WAIT || s->state == SS_CLOSING) {
			smtpd_session_drop(
			    s); /* a worker's answer is due, or the 421 is on its way */
			continue;
		}
		/* RFC 5321 3.8: tell the client why, also in the middle of DATA */
		smtpd_reply_id(s, R_SHUTTING_DOWN, srv->cfg->hostname);
		smtpd_close_after_reply(s);
	}
}
