/*
 * audit_event: events counted in the legacy-client audit without a message
 * (see mta/intake/audit.h), stored by spool_audit_events on the writer.
 *
 * The loop thread never waits for SQLite: events are summed per (client
 * address, AUTH user) in a pending batch; when no batch is at the writer,
 * the pending one goes at once, else it waits for that batch's done(), so a
 * burst (a leaked credential hitting its rate limit) becomes a few
 * transactions, not one per event. Both batches are fixed arrays: memory
 * stays bounded, and a full batch counts what it could not keep as dropped
 * (logged once per batch). Loop thread only.
 */
#include "mta/intake/audit.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mta/server.h"
#include "mta/shared/log.h"
#include "mta/writer.h"
#include "spool/spool.h"

#define EV_KEYS 256 /* distinct clients per batch */
#define EV_IP_MAX 64
#define EV_USER_MAX 256

_Static_assert(AUDIT_EV_BARE_LF + 1 == SPOOL_AUDIT_NEVENTS,
               "enum audit_event is in the spool's column order");

struct ev_key {
	char ip[EV_IP_MAX];
	char user[EV_USER_MAX];
};

struct ev_batch {
	struct writer_job wj;
	struct server *srv;
	struct ev_key key[EV_KEYS];
	struct spool_audit_event ev[EV_KEYS];
	size_t n;
	unsigned long long dropped;
};

static struct ev_batch batches[2];
static struct ev_batch *pending = &batches[0];
static int in_flight; /* batches[1 - (pending - batches)] is at the writer */

static struct spool_audit_event *
slot(struct ev_batch *b, const char *ip, const char *user)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		if (strcmp(b->key[i].ip, ip) == 0 && strcmp(b->key[i].user, user) == 0)
			return &b->ev[i];
	if (b->n == EV_KEYS || strlen(ip) >= EV_IP_MAX || strlen(user) >= EV_USER_MAX)
		return NULL;
	memcpy(b->key[i].ip, ip, strlen(ip) + 1);
	memcpy(b->key[i].user, user, strlen(user) + 1);
	memset(&b->ev[i], 0, sizeof b->ev[i]);
	b->ev[i].client_ip = b->key[i].ip;
	b->ev[i].auth_user = b->key[i].user;
	b->n++;
	return &b->ev[i];
}

static int
batch_fn(struct spool *sp, void *arg, char *err, size_t errlen)
{
	struct ev_batch *b = arg;

	return spool_audit_events(sp, b->ev, b->n, err, errlen);
}

static void submit(struct server *srv);

static void
batch_done(struct writer_job *wj)
{
	struct ev_batch *b = wj->arg;
	struct server *srv = b->srv;

	if (wj->status != 0)
		log_warn("event=audit_events_lost clients=%zu error=\"%s\"", b->n, wj->err);
	b->n = 0;
	in_flight = 0;
	if (pending->n > 0 || pending->dropped > 0)
		submit(srv);
}

static void
submit(struct server *srv)
{
	struct ev_batch *b = pending;

	if (b->dropped) {
		log_warn("event=audit_events_full dropped=%llu", b->dropped);
		b->dropped = 0;
	}
	if (b->n == 0 || srv->writer == NULL)
		return;
	pending = b == &batches[0] ? &batches[1] : &batches[0];
	pending->n = 0;
	in_flight = 1;
	memset(&b->wj, 0, sizeof b->wj);
	b->wj.kind = WRITER_FN;
	b->wj.fn = batch_fn;
	b->wj.done = batch_done;
	b->wj.arg = b;
	b->srv = srv;
	writer_submit(srv->writer, &b->wj);
}

void
audit_event(struct server *srv, const char *client_ip, const char *auth_user, enum audit_event ev)
{
	struct spool_audit_event *e;

	if (srv == NULL || client_ip == NULL || *client_ip == '\0' ||
	    (unsigned)ev >= SPOOL_AUDIT_NEVENTS)
		return;
	e = slot(pending, client_ip, auth_user ? auth_user : "");
	if (e == NULL) {
		pending->dropped++;
		return;
	}
	e->count[ev]++;
	e->when = time(NULL);
	if (!in_flight)
		submit(srv);
}
