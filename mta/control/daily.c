/*
 * daily (control): what the daily report jobs (tlsrpt.c's TLS reports,
 * bdigest_job.c's bounce digests) share: the timer, fn(arg) once a day at a
 * fixed time of day in UTC, plus a random jitter when asked (spreading the
 * load on report receivers), never while the daemon drains; and the
 * hand-off of the messages they write to intake, like a local submission
 * (so they are judged, signed and queued as any mail). Loop thread only.
 */
#include "mta/control/control_int.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mta/intake/content.h"
#include "mta/server.h"
#include "mta/shared/config.h"
#include "mta/shared/util.h"

#define DAY 86400
#define EARLY_MAX 60 /* a timer firing this early is today's run: next is tomorrow */

struct daily {
	struct server *srv;
	struct event *timer;
	int at, jitter; /* seconds after 00:00 UTC; 0 .. jitter - 1 more */
	void (*fn)(void *arg);
	void *arg;
};

/* Seconds from now to the next run (today's when still ahead, else tomorrow's). */
static time_t
next_delay(const struct daily *d)
{
	time_t now = time(NULL);
	time_t at = (now / DAY) * DAY + d->at;
	char hex[9];

	if (d->jitter > 0 && util_random_hex(hex, 8) == 0)
		at += (time_t)(strtoul(hex, NULL, 16) % (unsigned long)d->jitter);
	return (at > now + EARLY_MAX ? at : at + DAY) - now;
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct daily *d = arg;
	struct timeval tv = {next_delay(d), 0};

	(void)fd;
	(void)what;
	if (!d->srv->draining)
		d->fn(d->arg);
	evtimer_add(d->timer, &tv);
}

struct daily *
daily_new(struct server *srv, int at, int jitter, void (*fn)(void *arg), void *arg)
{
	struct daily *d = xcalloc(1, sizeof(*d));
	struct timeval tv;

	d->srv = srv;
	d->at = at;
	d->jitter = jitter;
	d->fn = fn;
	d->arg = arg;
	tv.tv_sec = next_delay(d);
	tv.tv_usec = 0;
	d->timer = evtimer_new(srv->base, on_timer, d);
	if (d->timer)
		evtimer_add(d->timer, &tv);
	return d;
}

void
daily_free(struct daily *d)
{
	if (d == NULL)
		return;
	if (d->timer)
		event_free(d->timer);
	free(d);
}

/* Feed msg (CRLF lines) to the content rules, dot-stuffed as DATA is. */
static void
feed(struct content *ct, const char *msg, size_t len)
{
	const char *p = msg, *end = msg + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		content_line_unstuffed(ct, p, n);
		p += n;
	}
}

void
daily_submit(struct server *srv, const struct intake_env *env, const char *what, const char *msg,
             size_t len, intake_done_fn done, void *arg)
{
	char received[512], date[64];
	struct content *ct;

	util_rfc5322_date(date, sizeof date, time(NULL));
	snprintf(received, sizeof received,
	         "Received: by %s (mxrelay) with local id %s\r\n\t(%s);\r\n\t%s\r\n",
	         srv->cfg->hostname, env->qid, what, date);
	ct = content_new(srv, env->qid, env->sender, received);
	feed(ct, msg, len);
	intake_submit(srv, env, ct, done, arg);
}
