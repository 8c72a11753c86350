/*
 * config_sender: the per-sender rules of issue 15 (legacy senders):
 * rate_limit, bounce_owner, header_repair and display_name_address lines, each "WHO ..." where
 * WHO is "*", "user:NAME", "listener:NAME" or a CIDR, kept in file order;
 * and the matcher the daemon uses to find the rules of one client. It
 * calls nothing in config_keys.c (whose setters call it), so the two
 * depend one way.
 */
#include "mta/shared/config_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mta/shared/addr.h"
#include "mta/shared/util.h"

#define WORD_MAX 512

/* The next blank-separated word of *s into w (WORD_MAX bytes); 0, or -1 at the end or when too long. */
static int
next_word(const char **s, char *w)
{
	const char *p = *s;
	size_t n;

	while (*p == ' ' || *p == '\t')
		p++;
	n = strcspn(p, " \t");
	if (n == 0 || n >= WORD_MAX)
		return -1;
	memcpy(w, p, n);
	w[n] = '\0';
	*s = p + n;
	return 0;
}

/* local@domain, as tlsrpt_from is checked */
static int
mailbox_ok(const char *a)
{
	char box[320];
	const char *params;

	return addr_parse_path(a, 0, box, sizeof box, &params) == ADDR_OK && *params == '\0' &&
			   addr_domain(box) != NULL
		   ? 0
		   : -1;
}

static int
name_ok(const char *n)
{
	if (*n == '\0' || strlen(n) > 255)
		return -1;
	for (; *n; n++)
		if ((unsigned char)*n <= ' ' || *n == ':' || (unsigned char)*n >= 0x7f)
			return -1;
	return 0;
}

/* "*", "user:NAME", "listener:NAME" or a CIDR into w. */
static int
parse_who(const char *word, struct sender_who *w, char *why, size_t whylen)
{
	char err[256];

	memset(w, 0, sizeof(*w));
	if (strcmp(word, "*") == 0) {
		w->kind = WHO_ALL;
		return 0;
	}
	if (strncmp(word, "user:", 5) == 0 || strncmp(word, "listener:", 9) == 0) {
		const char *n = strchr(word, ':') + 1;

		if (name_ok(n) != 0)
			return util_failf(why, whylen, "\"%s\": no valid name after the ':'", word);
		w->kind = word[0] == 'u' ? WHO_USER : WHO_LISTENER;
		w->name = xstrdup(n);
		return 0;
	}
	if (cidr_parse(&w->net, word, err, sizeof err) != 0)
		return util_failf(why, whylen,
			   "\"%s\" is not *, user:NAME, listener:NAME or a network (%s)", word, err);
	w->kind = WHO_CIDR;
	return 0;
}

/*
 * The WHO that starts every rule, from *v (moved past it) into who; usage
 * ("WHO MESSAGES [RECIPIENTS]") names the rule's form when it is missing.
 */
static int
rule_who(const char **v, struct sender_who *who, const char *usage, char *why, size_t whylen)
{
	char w[WORD_MAX];

	memset(who, 0, sizeof(*who));
	if (next_word(v, w) != 0)
		return util_failf(why, whylen, "expected %s", usage);
	return parse_who(w, who, why, whylen);
}

/* A copy of item at the end of the list head (rules stay in file order). */
#define RULE_APPEND(head, item)                                                                   \
	do {                                                                                      \
		__typeof__(head) *tail_ = &(head);                                                \
		while (*tail_ != NULL)                                                            \
			tail_ = &(*tail_)->next;                                                  \
		*tail_ = xmalloc(sizeof(**tail_));                                                \
		**tail_ = (item);                                                                 \
	} while (0)

/* A count per hour: 0 .. 10000000. */
static int
parse_count(const char *word, unsigned *out)
{
	char *end;
	unsigned long n;

	if (!isdigit((unsigned char)*word))
		return -1;
	n = strtoul(word, &end, 10);
	if (strcmp(end, "/h") != 0 && *end != '\0')
		return -1;
	if (n > 10000000)
		return -1;
	*out = (unsigned)n;
	return 0;
}

/* "WHO MESSAGES [RECIPIENTS]" (per hour; "100" or "100/h") */
static int
config_rate_limit_add(struct config *c, const char *v, int line, char *why, size_t whylen)
{
	struct rate_limit_conf r = {.line = line};
	char w[WORD_MAX];

	if (rule_who(&v, &r.who, "WHO MESSAGES [RECIPIENTS] (per hour)", why, whylen) != 0)
		return -1;
	if (next_word(&v, w) != 0 || parse_count(w, &r.messages) != 0 ||
	    (next_word(&v, w) == 0 && parse_count(w, &r.recipients) != 0) || next_word(&v, w) == 0) {
		free(r.who.name);
		return util_failf(why, whylen,
			   "expected WHO MESSAGES [RECIPIENTS]: counts per hour from 0 to 10000000 "
			   "(0: no limit), e.g. \"user:scanner 100 500\"");
	}
	RULE_APPEND(c->rate_limits, r);
	return 0;
}

/* "WHO ADDRESS [digest]" */
static int
config_bounce_owner_add(struct config *c, const char *v, int line, char *why, size_t whylen)
{
	struct bounce_owner_conf b = {.line = line};
	char w[WORD_MAX];

	if (rule_who(&v, &b.who, "WHO ADDRESS [digest]", why, whylen) != 0)
		return -1;
	if (next_word(&v, w) != 0 || mailbox_ok(w) != 0) {
		free(b.who.name);
		return util_failf(why, whylen, "expected WHO ADDRESS [digest], ADDRESS a mailbox local@domain");
	}
	b.address = xstrdup(w);
	if (next_word(&v, w) == 0) {
		if (strcmp(w, "digest") != 0 || next_word(&v, w) == 0) {
			free(b.who.name);
			free(b.address);
			return util_failf(why, whylen, "after the address only \"digest\" may follow");
		}
		b.digest = 1;
	}
	RULE_APPEND(c->bounce_owners, b);
	return 0;
}

/* "from_at,add_to" or "none" into bits */
static int
parse_repairs(const char *list, unsigned *out)
{
	char w[WORD_MAX];
	const char *s = list;

	*out = 0;
	if (strcmp(list, "none") == 0)
		return 0;
	for (;;) {
		size_t n = strcspn(s, ",");

		if (n == 0 || n >= sizeof w)
			return -1;
		memcpy(w, s, n);
		w[n] = '\0';
		if (strcmp(w, "from_at") == 0)
			*out |= HREPAIR_FROM_AT;
		else if (strcmp(w, "add_to") == 0)
			*out |= HREPAIR_ADD_TO;
		else
			return -1;
		if (s[n] == '\0')
			return 0;
		s += n + 1;
	}
}

/* "WHO REPAIR[,REPAIR]" or "WHO none" */
static int
config_header_repair_add(struct config *c, const char *v, int line, char *why, size_t whylen)
{
	struct header_repair_conf h = {.line = line};
	char w[WORD_MAX];

	if (rule_who(&v, &h.who, "WHO from_at,add_to (or WHO none)", why, whylen) != 0)
		return -1;
	if (next_word(&v, w) != 0 || parse_repairs(w, &h.repairs) != 0 || next_word(&v, w) == 0) {
		free(h.who.name);
		return util_failf(why, whylen,
			   "expected WHO REPAIRS: from_at, add_to, both comma-separated, or none");
	}
	RULE_APPEND(c->header_repairs, h);
	return 0;
}

/* "WHO refuse|warn|allow" */
static int
config_display_name_add(struct config *c, const char *v, int line, char *why, size_t whylen)
{
	static const char *const actions[] = {[DNA_REFUSE] = "refuse", [DNA_WARN] = "warn",
					       [DNA_ALLOW] = "allow"};
	struct display_name_conf d = {.line = line, .action = -1};
	char w[WORD_MAX];

	if (rule_who(&v, &d.who, "WHO refuse|warn|allow", why, whylen) != 0)
		return -1;
	if (next_word(&v, w) == 0)
		for (int i = 0; i < 3; i++)
			if (strcmp(w, actions[i]) == 0)
				d.action = i;
	if (d.action < 0 || next_word(&v, w) == 0) {
		free(d.who.name);
		return util_failf(why, whylen, "expected WHO refuse, WHO warn or WHO allow");
	}
	RULE_APPEND(c->display_name_rules, d);
	return 0;
}

int
config_sender_rule_add(struct config *c, const char *key, const char *v, int line, char *why,
		       size_t whylen)
{
	if (strcmp(key, "rate_limit") == 0)
		return config_rate_limit_add(c, v, line, why, whylen);
	if (strcmp(key, "bounce_owner") == 0)
		return config_bounce_owner_add(c, v, line, why, whylen);
	if (strcmp(key, "header_repair") == 0)
		return config_header_repair_add(c, v, line, why, whylen);
	if (strcmp(key, "postmaster_bounce_copy") == 0)
		return config_pm_copy_set(c, v, line, why, whylen);
	return config_display_name_add(c, v, line, why, whylen);
}

/* A listener: rule must name a [listener NAME] section: a typo would silently never match. */
static bool
listener_known(const struct config *c, const struct sender_who *w)
{
	if (w->kind != WHO_LISTENER)
		return true;
	for (const struct listener_conf *l = c->listeners; l != NULL; l = l->next)
		if (strcmp(l->name, w->name) == 0)
			return true;
	return false;
}

#define CHECK_RULES(list, keyname)                                                                \
	for (const __typeof__(*(list)) *r_ = (list); r_ != NULL; r_ = r_->next)                   \
		if (!listener_known(c, &r_->who)) {                                               \
			*line = r_->line;                                                         \
			*key = (keyname);                                                         \
			return util_failf(why, whylen, "listener:%s names no [listener %s] section", \
					  r_->who.name, r_->who.name);                           \
		}

int
config_sender_validate(const struct config *c, int *line, const char **key, char *why,
		       size_t whylen)
{
	CHECK_RULES(c->rate_limits, "rate_limit");
	CHECK_RULES(c->bounce_owners, "bounce_owner");
	CHECK_RULES(c->header_repairs, "header_repair");
	CHECK_RULES(c->display_name_rules, "display_name_address");
	return 0;
}

void
config_sender_free(struct config *c)
{
	while (c->rate_limits) {
		struct rate_limit_conf *n = c->rate_limits->next;

		free(c->rate_limits->who.name);
		free(c->rate_limits);
		c->rate_limits = n;
	}
	while (c->bounce_owners) {
		struct bounce_owner_conf *n = c->bounce_owners->next;

		free(c->bounce_owners->who.name);
		free(c->bounce_owners->address);
		free(c->bounce_owners);
		c->bounce_owners = n;
	}
	while (c->display_name_rules) {
		struct display_name_conf *n = c->display_name_rules->next;

		free(c->display_name_rules->who.name);
		free(c->display_name_rules);
		c->display_name_rules = n;
	}
	while (c->header_repairs) {
		struct header_repair_conf *n = c->header_repairs->next;

		free(c->header_repairs->who.name);
		free(c->header_repairs);
		c->header_repairs = n;
	}
	free(c->local_sender);
	c->local_sender = NULL;
	free(c->postmaster_bounce_copy);
	c->postmaster_bounce_copy = NULL;
}

int
config_pm_copy_set(struct config *c, const char *v, int line, char *why, size_t whylen)
{
	(void)line;
	if (strcmp(v, "none") != 0 && mailbox_ok(v) != 0) {
		snprintf(why, whylen, "\"%s\" is not a mailbox (local@domain) or none", v);
		return -1;
	}
	free(c->postmaster_bounce_copy);
	c->postmaster_bounce_copy = strcmp(v, "none") == 0 ? NULL : xstrdup(v);
	return 0;
}

bool
config_who_matches(const struct sender_who *w, const char *user, const char *listener,
		   const struct sockaddr *client)
{
	switch (w->kind) {
	case WHO_ALL:
		return true;
	case WHO_USER:
		return user != NULL && strcmp(user, w->name) == 0;
	case WHO_LISTENER:
		return listener != NULL && strcmp(listener, w->name) == 0;
	case WHO_CIDR:
		return client != NULL && cidr_match(&w->net, client);
	}
	return false;
}

/*
 * best = the rule of list matching the client best: the highest
 * config_who_rank, strictly, so the first in file order wins a tie.
 */
#define BEST_RULE(list, user, listener, client, best)                                             \
	do {                                                                                      \
		(best) = NULL;                                                                    \
		for (__typeof__(best) r_ = (list); r_ != NULL; r_ = r_->next)                     \
			if (config_who_matches(&r_->who, user, listener, client) &&               \
			    ((best) == NULL ||                                                    \
			     config_who_rank(&r_->who) > config_who_rank(&(best)->who)))          \
				(best) = r_;                                                      \
	} while (0)

int
config_display_name_action(const struct config *c, const char *user, const char *listener,
			   const struct sockaddr *client, int *line)
{
	const struct display_name_conf *best;

	BEST_RULE(c->display_name_rules, user, listener, client, best);
	*line = best ? best->line : 0;
	return best ? best->action : DNA_REFUSE;
}

const struct bounce_owner_conf *
config_bounce_owner(const struct config *c, const char *user, const char *listener,
		    const struct sockaddr *client)
{
	const struct bounce_owner_conf *best;

	BEST_RULE(c->bounce_owners, user, listener, client, best);
	return best;
}

unsigned
config_header_repairs(const struct config *c, const char *user, const char *listener,
		      const struct sockaddr *client)
{
	const struct header_repair_conf *best;

	BEST_RULE(c->header_repairs, user, listener, client, best);
	return best ? best->repairs : 0;
}

int
config_who_rank(const struct sender_who *w)
{
	switch (w->kind) {
	case WHO_USER:
		return 3000;
	case WHO_LISTENER:
		return 2000;
	case WHO_CIDR:
		return 1000 + w->net.prefix;
	case WHO_ALL:
		break;
	}
	return 0;
}

void
config_who_text(const struct sender_who *w, char *buf, size_t len)
{
	char a[64];

	switch (w->kind) {
	case WHO_USER:
		snprintf(buf, len, "user:%s", w->name);
		return;
	case WHO_LISTENER:
		snprintf(buf, len, "listener:%s", w->name);
		return;
	case WHO_CIDR:
		if (inet_ntop(w->net.family, w->net.addr, a, sizeof a) == NULL)
			a[0] = '\0';
		snprintf(buf, len, "%s/%d", a, w->net.prefix);
		return;
	case WHO_ALL:
		break;
	}
	snprintf(buf, len, "*");
}
