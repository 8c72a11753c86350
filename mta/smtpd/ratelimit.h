/*
 * smtpd_ratelimit: the rate_limit rules (issue 15 item 4), messages and
 * recipients per hour per credential, listener or client network, so a
 * leaked device credential cannot spend the relay's IP reputation. Called
 * by smtpd/cmd.c at MAIL and RCPT; calls nothing else in smtpd/.
 */
#ifndef MXRELAY_SMTPD_RATELIMIT_H
#define MXRELAY_SMTPD_RATELIMIT_H

#include <sys/socket.h>
#include <time.h>

#include "mta/shared/config.h"

#define RATELIMIT_KEYS_MAX 4096 /* counters kept at once (see ratelimit.c) */
#define RATELIMIT_KEY_MAX 320

/* The client asking, as config_who_matches takes it, plus its address as text. */
struct ratelimit_client {
	const char *user;            /* AUTH user, NULL: none */
	const char *listener;        /* listener section name */
	const struct sockaddr *addr; /* the client address */
	const char *ip;              /* the same, as text */
};

/* Why a request was refused: the rule, its counter and when it frees up. */
struct ratelimit_hit {
	char rule[RATELIMIT_KEY_MAX]; /* "WHO MESSAGES RECIPIENTS" as configured */
	char who[RATELIMIT_KEY_MAX / 2]; /* its WHO: "user:NAME", "listener:NAME", a CIDR, "*" */
	char key[RATELIMIT_KEY_MAX];  /* the counter: the rule, plus the sender for * and listener: */
	const char *what;             /* "messages" or "recipients" */
	unsigned limit;
	int line; /* the rule's config line */
	time_t free_at;
};

/*
 * Count msgs messages and rcpts recipients for cl against every rate_limit
 * rule of c that matches it, each rule with its own counter. 0: counted in
 * all of them; -1: some rule is at its limit, *hit says which, nothing
 * counted. now: time(NULL) (a parameter for the unit tests).
 */
int ratelimit_take(const struct config *c, const struct ratelimit_client *cl, unsigned msgs,
                   unsigned rcpts, time_t now, struct ratelimit_hit *hit);

/* The window in seconds: 3600, or MXRELAY_TEST_RATE_WINDOW (1..3600) for tests. */
unsigned ratelimit_window(void);

/* Forget every counter (unit tests). */
void ratelimit_reset(void);

#endif
