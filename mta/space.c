/* space: free-space floor, spool cap and spool reserve for the writer (see space.h). */
#include "mta/space.h"

#include <stdio.h>
#include <stdlib.h>

#include "mta/metrics.h"
#include "mta/shared/log.h"
#include "mta/shared/util.h"
#include "spool/spool.h"

#define CHECK_EVERY_MS 250 /* statvfs at most this often, unless forced */

struct space {
	char *dir;
	struct spool *sp; /* the writer's handle, borrowed */
	struct space_conf c;
	uint64_t fs_free;   /* last statvfs (what the reserve file can take) */
	uint64_t free_b;    /* fs_free plus the free pages inside spool.db: room for mail */
	uint64_t spent;     /* 2 x the bytes let in since that statvfs (the WAL, then the db) */
	int64_t checked_ms; /* when (util_now_ms), 0: never */
	int reserve_used;   /* released for results (or at open), not refilled yet */
	int paused;         /* intake refused for free space: for the log lines on change */
	int capped;         /* intake refused by spool_max_size at the last insert batch */
};

int
space_judge(uint64_t free_b, uint64_t minfree, uint64_t reserve, int reserve_used)
{
	/*
	 * With the reserve in use, the results need its worth of room on top of
	 * the floor before new mail may take any: free pages inside spool.db
	 * serve them as well as the reserve file did (the file itself comes back
	 * only when the file system has room for it, maybe never without a vacuum).
	 */
	if (reserve_used)
		return free_b >= minfree + reserve ? 0 : -1;
	return minfree == 0 || free_b >= minfree ? 0 : -1;
}

/*
 * Refill when the reserve is short and, after taking its blocks, the free
 * space is still queue_minfree plus as much again as the reserve: right
 * after a release, or just above the floor, it would take back the space
 * the results need and pause intake again. A reserve short at start (a
 * file system too small for it) is no reason to stop intake: only a used
 * one is.
 */
static void
refill(struct space *s)
{
	char err[256];
	uint64_t have = spool_reserve_size(s->dir), missing;

	if (s->c.reserve == 0 || have >= s->c.reserve)
		return;
	missing = s->c.reserve - have;
	if (s->fs_free < 2 * missing || s->free_b - 2 * missing < s->c.minfree)
		return;
	if (spool_reserve_fill(s->dir, s->c.reserve, err, sizeof(err)) != 0) {
		log_warn("event=spool_reserve state=short free=%llu error=\"%s\"",
		         (unsigned long long)s->free_b, err);
		return;
	}
	if (s->reserve_used)
		log_info("event=spool_reserve state=refilled bytes=%llu",
		         (unsigned long long)s->c.reserve);
	s->reserve_used = 0;
	s->fs_free -= missing;
	s->free_b -= missing;
}

/* left: the free space the decision saw (the last figure less what was let in since) */
static void
set_paused(struct space *s, int paused, const char *why, uint64_t left)
{
	metrics_gauge_set(G_INTAKE_PAUSED, paused || s->capped);
	if (paused == s->paused)
		return;
	s->paused = paused;
	if (paused)
		log_warn("event=intake_paused reason=%s free=%llu queue_minfree=%llu", why,
		         (unsigned long long)left, (unsigned long long)s->c.minfree);
	else
		log_info("event=intake_resumed free=%llu", (unsigned long long)left);
}

static void judge(struct space *s);

static void
refresh(struct space *s, int force)
{
	char err[256];
	int64_t now = util_now_ms();

	uint64_t used = 0, reusable = 0;

	if (!force && s->checked_ms != 0 && now - s->checked_ms < CHECK_EVERY_MS)
		return;
	s->checked_ms = now;
	if (spool_fs_free(s->dir, &s->fs_free, err, sizeof(err)) != 0) {
		log_warn("event=spool_space_failed error=\"%s\"", err);
		return; /* keep the last figure */
	}
	/* pages freed by deliveries are reused before the file grows: they count as free */
	if (spool_bytes(s->sp, &used, &reusable, err, sizeof(err)) != 0)
		reusable = 0;
	s->free_b = s->fs_free + reusable;
	s->spent = 0;
	refill(s);
	metrics_gauge_set(G_SPOOL_FREE, (int64_t)s->free_b);
	judge(s);
}

/* Decide on the last figures less what was let in since (a burst can fill a small disk
 * well within the 250 ms between two statvfs calls). */
static void
judge(struct space *s)
{
	uint64_t left = s->free_b > s->spent ? s->free_b - s->spent : 0;

	if (space_judge(left, s->c.minfree, s->c.reserve, s->reserve_used) == 0)
		set_paused(s, 0, NULL, left);
	else
		set_paused(s, 1, s->reserve_used ? "spool_reserve" : "queue_minfree", left);
}

struct space *
space_new(const char *dir, struct spool *sp, const struct space_conf *c, int reserve_released)
{
	struct space *s = xcalloc(1, sizeof(*s));

	s->dir = xstrdup(dir);
	s->sp = sp;
	s->c = *c;
	s->reserve_used = reserve_released;
	if (reserve_released)
		log_warn("event=spool_reserve state=used reason=open");
	if (c->reserve == 0 && spool_reserve_size(dir) > 0) {
		char err[256];
		if (spool_reserve_release(dir, err, sizeof(err)) != 0)
			log_warn("event=spool_reserve state=stale error=\"%s\"", err);
	}
	refresh(s, 1);
	if (c->reserve > 0 && spool_reserve_size(dir) < c->reserve && !s->reserve_used)
		log_warn("event=spool_reserve state=short bytes=%llu free=%llu",
		         (unsigned long long)spool_reserve_size(dir),
		         (unsigned long long)s->free_b);
	return s;
}

void
space_free(struct space *s)
{
	if (s == NULL)
		return;
	free(s->dir);
	free(s);
}

/* spool_max_size: the pages in use and the WAL, plus what this batch adds */
static int
over_cap(struct space *s, uint64_t incoming, char *err, size_t errlen)
{
	uint64_t used = 0, reusable = 0;

	if (s->c.max_size == 0)
		return 0;
	if (spool_bytes(s->sp, &used, &reusable, err, errlen) != 0)
		return 0; /* cannot tell: let SQLite itself say whether it fits */
	if (used + incoming <= s->c.max_size) {
		if (s->capped)
			log_info("event=intake_resumed reason=spool_max_size used=%llu",
			         (unsigned long long)used);
		s->capped = 0;
		return 0;
	}
	if (!s->capped)
		log_warn("event=intake_paused reason=spool_max_size used=%llu spool_max_size=%llu",
		         (unsigned long long)used, (unsigned long long)s->c.max_size);
	s->capped = 1;
	metrics_gauge_set(G_INTAKE_PAUSED, 1);
	snprintf(err, errlen,
	         "spool: insert: spool_max_size reached (%llu bytes used, %llu more, cap %llu)",
	         (unsigned long long)used, (unsigned long long)incoming,
	         (unsigned long long)s->c.max_size);
	return 1;
}

int
space_intake(struct space *s, uint64_t incoming, char *err, size_t errlen)
{
	refresh(s, 0);
	judge(s);
	if (s->paused) {
		if (s->reserve_used)
			snprintf(err, errlen,
			         "spool: insert: the spool reserve is in use (%llu bytes free)",
			         (unsigned long long)s->free_b);
		else
			snprintf(
			    err, errlen,
			    "spool: insert: %llu bytes free (less what was let in since the "
			    "last check), under queue_minfree (%llu)",
			    (unsigned long long)(s->free_b > s->spent ? s->free_b - s->spent : 0),
			    (unsigned long long)s->c.minfree);
		return -1;
	}
	if (over_cap(s, incoming, err, errlen))
		return -1;
	s->spent += 2 * incoming;
	return 0;
}

int
space_use_reserve(struct space *s)
{
	char err[256];

	if (s->c.reserve == 0 || spool_reserve_size(s->dir) == 0)
		return -1;
	if (spool_reserve_release(s->dir, err, sizeof(err)) != 0) {
		log_err("event=spool_reserve state=stuck error=\"%s\"", err);
		return -1;
	}
	s->reserve_used = 1;
	/* with room again the WAL's frames can reach the db, and the WAL restart from its start */
	spool_checkpoint(s->sp);
	refresh(s, 1);
	log_warn("event=spool_reserve state=used bytes=%llu free=%llu",
	         (unsigned long long)s->c.reserve, (unsigned long long)s->free_b);
	return 0;
}

void
space_tick(struct space *s)
{
	char err[256];

	refresh(s, 0);
	/* capped is otherwise judged only by an insert batch, and while the gauge says
	 * paused new mail is refused at MAIL FROM: none would come to lift it */
	if (s->capped && over_cap(s, 0, err, sizeof(err)) == 0)
		metrics_gauge_set(G_INTAKE_PAUSED, s->paused);
}
