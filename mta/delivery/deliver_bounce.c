/*
 * deliver_bounce: the DSN of a delivery job (split out of deliver.c): one
 * RFC 3464 report for every failed recipient, addressed to the envelope
 * sender or to its bounce_owner (issue 15), the owner's digest entries, and
 * the postmaster's copy (postmaster_bounce_copy, issue 16). Builds only:
 * deliver.c stores them with the job's last apply.
 */
#include "mta/delivery/deliver_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mta/delivery/bdigest.h"
#include "mta/delivery/bounce.h"
#include "mta/delivery/bowner.h"
#include "mta/server.h"
#include "mta/shared/config.h"
#include "mta/shared/log.h"
#include "mta/shared/util.h"

/* event=bounce; with a bounce_owner rule, also the sender and the rule (new fields). */
static void
bounce_logged(struct djob *j, const struct bounce_owner_conf *bo, size_t n)
{
	char qa[300], qs[300], who[300];

	if (bo == NULL) {
		log_info("qid=%s event=bounce bounce_qid=%s to=\"<%s>\" failed=%zu", j->w->qid,
		         j->bounce.qid, LOG_Q(qa, j->w->sender), n);
		return;
	}
	config_who_text(&bo->who, who, sizeof(who));
	log_info("qid=%s event=bounce bounce_qid=%s to=\"<%s>\" failed=%zu sender=\"<%s>\" "
	         "bounce_owner=\"%s\" line=%d",
	         j->w->qid, j->bounce.qid, LOG_Q(qa, bo->address), n, LOG_Q(qs, j->w->sender), who,
	         bo->line);
}

/*
 * bounce_owner ... digest: the failures wait for the owner's daily digest,
 * stored by the job's last apply with the failures themselves (bdigest.h).
 */
static void
digest_note(struct djob *j, const struct bounce_owner_conf *bo, const struct bounce_rcpt *br,
            size_t n)
{
	free(j->digest);
	j->digest = xcalloc(n, sizeof(*j->digest));
	j->ndigest = n;
	for (size_t i = 0; i < n; i++)
		bdigest_fill(&j->digest[i], bo->address, j->w->qid, j->w->sender, br[i].address,
		             br[i].status ? br[i].status : "5.0.0", br[i].diagnostic, time(NULL));
}

/* One DSN for every failed recipient (RFC 3464). 0 / -1 (then no bounce). */
int
job_make_bounce(struct djob *j)
{
	const struct config *c = j->dl->srv->cfg;
	struct bounce_rcpt *br = xcalloc(j->w->nrcpts, sizeof(*br));
	char(*mta)[256] = xcalloc(j->w->nrcpts, sizeof(*mta));
	size_t i, n = 0, len;
	char err[256] = "";
	int rc;

	for (i = 0; i < j->w->nrcpts; i++) {
		struct rres *r = &j->res[i];
		if (r->state != SPOOL_RCPT_FAILED)
			continue;
		if (r->relay)
			snprintf(mta[n], sizeof(mta[n]), "%.*s", (int)strcspn(r->relay, "["),
			         r->relay);
		br[n].address = j->w->rcpts[i].address;
		br[n].status = r->dsn;
		br[n].remote_mta = r->relay && mta[n][0] ? mta[n] : NULL;
		br[n].diagnostic = r->reply;
		n++;
	}
	/* bounce_owner (issue 15): a device sender without a mailbox has an owner */
	const struct bounce_owner_conf *bo =
	    bowner_find(c, j->w->auth_user, j->w->listener, j->w->client_ip);
	const char *to = bo != NULL ? bo->address : j->w->sender;
	struct bounce_info bi = {c->hostname, j->w->qid, j->w->sender, j->w->received, 0,
	                         br,          n,         j->w->body,   j->w->body_len, NULL};
	bi.owner = bo != NULL ? bo->address : NULL;
	rc = n ? bounce_build(&bi, &j->bounce_body, &len, err, sizeof(err)) : -1;
	if (rc == 0) {
		bounce_msg_in(&j->bounce, &j->bounce_rcpt, to, j->bounce_body, len, time(NULL));
		j->has_bounce = true;
		bounce_logged(j, bo, n);
		/* issue 16: Postfix's notify_classes = bounce; a failed copy costs no notice */
		if (c->postmaster_bounce_copy &&
		    bounce_copy_make(&j->bcopy, &bi, c->postmaster_bounce_copy, time(NULL), err,
		                     sizeof(err)) != 0)
			log_err("qid=%s event=bounce_copy_failed error=\"%s\"", j->w->qid, err);
	} else if (n) {
		log_err("qid=%s event=bounce_failed error=\"%s\"", j->w->qid, err);
	}
	if (bo != NULL && bo->digest && n)
		digest_note(j, bo, br, n);
	free(br);
	free(mta);
	return rc;
}
