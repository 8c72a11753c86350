/*
 * smtpd_ratelimit: rate_limit = WHO MESSAGES [RECIPIENTS] per hour.
 *
 * Every rule that matches a client applies, each with its own counter: a
 * user: rule and a CIDR rule both count the same message. A user: or CIDR
 * rule has one counter for the rule (the whole network shares it, as a
 * leaked credential used from many addresses does); a "*" or listener:
 * rule has one counter per sender under it (the AUTH user, else the client
 * address), so one chatty device cannot starve the others.
 *
 * A counter is a fixed window opened by its first use: it holds what was
 * counted since, and frees up window seconds later (the time the 451 names).
 * Counters live for the process and are found by their text, which holds the
 * rule as written (WHO and both numbers): a SIGHUP that keeps a rule keeps its
 * counters; a changed rule starts from zero.
 *
 * Memory is bounded: at most RATELIMIT_KEYS_MAX counters. A new one takes a
 * free or expired slot; when all are live, the per-address counter ("*" or
 * listener: rules without AUTH) opened earliest is dropped, and a shared
 * user:/CIDR one only when there is none, so a flood of allowlisted addresses
 * cannot reset a credential's or a network's limit (its sender starts again
 * from zero, logged as event=rate_table_full). Only
 * clients that may relay are ever counted (cmd.c), so the table holds
 * credentials and allowlisted addresses, not the Internet at large.
 */
#include "mta/smtpd/ratelimit.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mta/shared/log.h"

struct rl_entry {
	uint64_t hash;
	time_t start; /* 0: free */
	unsigned msgs, rcpts;
	bool per_addr; /* "ip:" counter: dropped first when the table is full */
	char key[RATELIMIT_KEY_MAX];
};

static struct rl_entry table[RATELIMIT_KEYS_MAX];

unsigned
ratelimit_window(void)
{
	static unsigned window;
	const char *v;
	char *end;
	unsigned long n;

	if (window != 0)
		return window;
	window = 3600;
	/* test hook: integration tests shorten the hour to watch a limit recover */
	v = getenv("MXRELAY_TEST_RATE_WINDOW");
	if (v != NULL && *v != '\0') {
		n = strtoul(v, &end, 10);
		if (*end == '\0' && n >= 1 && n <= 3600)
			window = (unsigned)n;
	}
	return window;
}

void
ratelimit_reset(void)
{
	memset(table, 0, sizeof(table));
}

static uint64_t
key_hash(const char *k)
{
	uint64_t h = 14695981039346656037ull; /* FNV-1a */
	for (; *k; k++)
		h = (h ^ (unsigned char)*k) * 1099511628211ull;
	return h;
}

static bool
live(const struct rl_entry *e, time_t now)
{
	return e->start != 0 && now < e->start + (time_t)ratelimit_window();
}

/* The live counter named key, or NULL. */
static struct rl_entry *
rl_find(const char *key, uint64_t h, time_t now)
{
	size_t i;

	for (i = 0; i < RATELIMIT_KEYS_MAX; i++)
		if (table[i].hash == h && live(&table[i], now) && strcmp(table[i].key, key) == 0)
			return &table[i];
	return NULL;
}

/* Whether a should be dropped before b: per-address first, then the older. */
static bool
evict_before(const struct rl_entry *a, const struct rl_entry *b)
{
	if (a->per_addr != b->per_addr)
		return a->per_addr;
	return a->start < b->start;
}

/* A new counter named key: a free or expired slot, else see evict_before. */
static struct rl_entry *
rl_new(const char *key, uint64_t h, time_t now, bool per_addr)
{
	struct rl_entry *oldest = &table[0];
	size_t i;

	for (i = 0; i < RATELIMIT_KEYS_MAX; i++) {
		if (!live(&table[i], now))
			break;
		if (evict_before(&table[i], oldest))
			oldest = &table[i];
	}
	if (i == RATELIMIT_KEYS_MAX) {
		char qk[RATELIMIT_KEY_MAX + 40];
		log_warn("event=rate_table_full max=%d dropped=\"%s\"", RATELIMIT_KEYS_MAX,
		         LOG_Q(qk, oldest->key));
		i = (size_t)(oldest - table);
	}
	memset(&table[i], 0, sizeof(table[i]));
	snprintf(table[i].key, sizeof(table[i].key), "%s", key);
	table[i].hash = h;
	table[i].start = now;
	table[i].per_addr = per_addr;
	return &table[i];
}

/* The rule as written, and the name of its counter for cl; true: a per-address one. */
static bool
rule_key(const struct rate_limit_conf *r, const struct ratelimit_client *cl, char *rule,
         char *key)
{
	char who[RATELIMIT_KEY_MAX / 2];

	config_who_text(&r->who, who, sizeof(who));
	snprintf(rule, RATELIMIT_KEY_MAX, "%s %u %u", who, r->messages, r->recipients);
	if (r->who.kind == WHO_ALL || r->who.kind == WHO_LISTENER) {
		if (cl->user != NULL)
			snprintf(key, RATELIMIT_KEY_MAX, "%.150s user:%.150s", rule, cl->user);
		else
			snprintf(key, RATELIMIT_KEY_MAX, "%.150s ip:%.100s", rule, cl->ip);
		return cl->user == NULL;
	}
	snprintf(key, RATELIMIT_KEY_MAX, "%s", rule);
	return false;
}

/* Would r refuse msgs/rcpts more? 0, or -1 with *hit filled. */
static int
rule_check(const struct rate_limit_conf *r, const struct ratelimit_client *cl, unsigned msgs,
           unsigned rcpts, time_t now, struct ratelimit_hit *hit)
{
	char rule[RATELIMIT_KEY_MAX], key[RATELIMIT_KEY_MAX];
	const struct rl_entry *e;

	rule_key(r, cl, rule, key);
	e = rl_find(key, key_hash(key), now);
	if (e == NULL)
		return 0; /* a fresh window: a limit of 1 or more lets one through */
	if (r->messages != 0 && msgs != 0 && e->msgs + msgs > r->messages) {
		hit->what = "messages";
		hit->limit = r->messages;
	} else if (r->recipients != 0 && rcpts != 0 && e->rcpts + rcpts > r->recipients) {
		hit->what = "recipients";
		hit->limit = r->recipients;
	} else {
		return 0;
	}
	snprintf(hit->rule, sizeof(hit->rule), "%s", rule);
	config_who_text(&r->who, hit->who, sizeof(hit->who));
	snprintf(hit->key, sizeof(hit->key), "%s", key);
	hit->line = r->line;
	hit->free_at = e->start + (time_t)ratelimit_window();
	return -1;
}

int
ratelimit_take(const struct config *c, const struct ratelimit_client *cl, unsigned msgs,
               unsigned rcpts, time_t now, struct ratelimit_hit *hit)
{
	const struct rate_limit_conf *r;
	char rule[RATELIMIT_KEY_MAX], key[RATELIMIT_KEY_MAX];
	struct rl_entry *e;
	uint64_t h;
	bool per_addr;

	/* check every rule first: a refusal counts nowhere */
	for (r = c->rate_limits; r != NULL; r = r->next)
		if (config_who_matches(&r->who, cl->user, cl->listener, cl->addr) &&
		    rule_check(r, cl, msgs, rcpts, now, hit) != 0)
			return -1;
	for (r = c->rate_limits; r != NULL; r = r->next) {
		if (!config_who_matches(&r->who, cl->user, cl->listener, cl->addr) ||
		    (r->messages == 0 && r->recipients == 0))
			continue;
		per_addr = rule_key(r, cl, rule, key);
		h = key_hash(key);
		e = rl_find(key, h, now);
		if (e == NULL)
			e = rl_new(key, h, now, per_addr);
		e->msgs += msgs;
		e->rcpts += rcpts;
	}
	return 0;
}
