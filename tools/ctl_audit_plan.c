/*
 * mxrelayctl audit plan [--json]: per sender of the imported Exchange Online
 * report (ctl_audit_exo.c), joined with the relay's own audit rows
 * (spool_audit_list, read-only), the credentials file and the listeners:
 * does it send through the relay already, which credential and listener
 * it needs, does it need legacy TLS, and what is left to do.
 */
#include "tools/ctl.h"
#include "tools/ctl_exo.h"
#include "tools/json.h"

#include <ctype.h>
#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mta/shared/cidr.h"
#include "mta/shared/config.h"
#include "mta/shared/creds.h"
#include "spool/spool.h"

#define PROG "mxrelayctl audit plan"
#define TODO_MAX 4

/* Does the comma-joined list hold addr (case-insensitive)? */
static int
list_has(const char *joined, const char *addr)
{
	size_t n = strlen(addr);
	for (const char *p = joined; p && *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == n && strncasecmp(p, addr, n) == 0)
			return 1;
		p = e ? e + 1 : NULL;
	}
	return 0;
}

/* Merge the audit rows that carried e's sender into e. */
static void
join_audit(struct plan_entry *e, const struct spool_audit_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct spool_audit_row *r = &rows[i];
		if (!list_has(r->senders, e->exo->sender))
			continue;
		if (!e->seen || r->first_seen < e->first_seen)
			e->first_seen = r->first_seen;
		if (!e->seen || r->last_seen > e->last_seen) {
			e->last_seen = r->last_seen;
			snprintf(e->seen_user, sizeof e->seen_user, "%s", r->auth_user);
			snprintf(e->seen_ip, sizeof e->seen_ip, "%s", r->client_ip);
			snprintf(e->seen_listener, sizeof e->seen_listener, "%s", r->listener);
			e->allowlisted = r->allowlisted && !r->auth_user[0];
		}
		e->seen = 1;
	}
}

/* 3 the exact address, 2 "@domain", 1 "*", 0 not allowed. */
static int
cred_rank(const struct cred *cr, const char *addr)
{
	const char *at = strrchr(addr, '@');
	int best = 0;

	if (cr->disabled)
		return 0;
	for (size_t i = 0; i < cr->nsenders; i++) {
		const char *s = cr->senders[i];
		if (strcasecmp(s, addr) == 0)
			best = 3;
		else if (s[0] == '@' && at && strcasecmp(s + 1, at + 1) == 0 && best < 2)
			best = 2;
		else if (strcmp(s, "*") == 0 && best < 1)
			best = 1;
	}
	return best;
}

/* The credential allowing e's sender (most specific wins), else a name to create. */
static void
pick_cred(struct plan_entry *e, const struct creds *cs)
{
	const char *addr = e->exo->sender;
	const struct cred *seen = cs && e->seen_user[0] ? creds_find(cs, e->seen_user) : NULL;
	int best = 0;
	size_t o = 0;

	/* only a credential naming the address proves the device moved: one allowed
	 * "@domain" or "*" (a CRM server) may once have sent as a mailbox that did not */
	e->unproven = e->seen && (seen == NULL || cred_rank(seen, addr) < 3);
	for (size_t i = 0; cs && i < creds_count(cs); i++) {
		const struct cred *cr = creds_at(cs, i);
		int r = cred_rank(cr, addr);
		if (r > best || (r && e->seen_user[0] && strcmp(cr->user, e->seen_user) == 0)) {
			best = r;
			snprintf(e->cred, sizeof e->cred, "%s", cr->user);
		}
	}
	if (e->cred[0])
		return;
	/* a new user named after the local part: letters, digits, . _ - only,
	 * starting with a letter or digit (passwd would take "-x" for an option) */
	for (const char *p = addr; *p && *p != '@' && o + 1 < 64; p++)
		if (o > 0 || isalnum((unsigned char)*p))
			e->new_user[o++] = isalnum((unsigned char)*p) || strchr("._-", *p)
			                       ? (char)tolower((unsigned char)*p)
			                       : '-';
	e->new_user[o] = '\0';
	if (o == 0 || (cs && creds_find(cs, e->new_user)))
		snprintf(e->new_user + o, sizeof e->new_user - o, "%sdevice", o ? "-" : "");
}

/* The proposed names, hashed: each name once, and per base name the next
 * "-K" to try, so n colliding senders cost O(n), not O(n^3) (review 7). */
struct plan_names {
	struct pname {
		char *key;
		unsigned next; /* a base name's next suffix (0: none tried yet) */
	} *v;
	size_t cap, n;
};

static struct pname *
names_slot(struct plan_names *s, const char *key)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	size_t i;

	for (const char *p = key; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	for (i = h & (s->cap - 1); s->v[i].key && strcmp(s->v[i].key, key) != 0;
	     i = (i + 1) & (s->cap - 1))
		;
	return &s->v[i];
}

/* The slot of key, added when missing (the table grows at half full); NULL: out of memory. */
static struct pname *
names_get(struct plan_names *s, const char *key)
{
	struct pname *sl;

	if ((s->n + 1) * 2 > s->cap) {
		struct plan_names g = {calloc(s->cap ? s->cap * 2 : 64, sizeof *g.v),
		                       s->cap ? s->cap * 2 : 64, s->n};
		if (g.v == NULL)
			return NULL;
		for (size_t i = 0; i < s->cap; i++)
			if (s->v[i].key)
				*names_slot(&g, s->v[i].key) = s->v[i];
		free(s->v);
		*s = g;
	}
	sl = names_slot(s, key);
	if (sl->key == NULL && (sl->key = strdup(key)) != NULL)
		s->n++;
	return sl->key ? sl : NULL;
}

static void
names_free(struct plan_names *s)
{
	for (size_t i = 0; s && i < s->cap; i++)
		free(s->v[i].key);
	if (s)
		free(s->v);
	free(s);
}

/* Two senders must not be told to create one credential: the second passwd
 * would replace the first's password and senders. "-2", "-3"... make each
 * proposed name unique among the plan's and the credentials file's. */
static void
unique_new_user(struct plan *p, size_t i, const struct creds *cs)
{
	struct plan_entry *e = &p->e[i];
	struct pname *base, *sl;
	char name[sizeof e->new_user];

	if (e->cred[0] || !e->new_user[0])
		return;
	if (p->names == NULL && (p->names = calloc(1, sizeof *p->names)) == NULL)
		return;
	if ((base = names_get(p->names, e->new_user)) == NULL)
		return;
	if (base->next == 0 && !(cs && creds_find(cs, e->new_user))) {
		base->next = 2; /* the plain name is taken now */
		return;
	}
	for (unsigned k = base->next ? base->next : 2; k < 100000000; k++) {
		snprintf(name, sizeof name, "%s-%u", e->new_user, k);
		if (cs && creds_find(cs, name))
			continue;
		if ((sl = names_get(p->names, name)) == NULL || sl->next != 0)
			continue; /* a sender's own name already (e.g. scanner-2@...) */
		sl->next = 2;
		/* names_get may have moved the table: the base's slot again */
		if ((base = names_get(p->names, e->new_user)) != NULL)
			base->next = k + 1;
		snprintf(e->new_user, sizeof e->new_user, "%s", name);
		return;
	}
}

static int
offers_legacy(const struct listener_conf *l, time_t now)
{
	if (l->legacy_until && l->legacy_until <= now)
		return 0; /* its sunset has passed: the daemon refuses TLS 1.0/1.1 there */
	return l->legacy_tls || l->legacy_from.n > 0;
}

/* A listener with TLS where AUTH is safe; legacy TLS when the device needs it
 * and a listener still offers it (else a TLS 1.2 one, and e->ended says why). */
static void
pick_listener(struct plan_entry *e, const struct config *c, time_t now)
{
	const struct listener_conf *fit = NULL;

	/* a sender already moved keeps the listener it uses while that still serves it */
	for (const struct listener_conf *l = c->listeners; l && e->seen_listener[0]; l = l->next)
		if (strcmp(l->name, e->seen_listener) == 0 &&
		    (l->tls == LTLS_NONE || !e->legacy || offers_legacy(l, now))) {
			e->listener = l->name;
			e->listener_addr = l->address_text;
			e->sunset = l->legacy_tls || l->legacy_from.n ? l->legacy_until : 0;
			return;
		}
	for (const struct listener_conf *l = c->listeners; l && e->legacy && !fit; l = l->next)
		if (l->tls != LTLS_NONE && offers_legacy(l, now))
			fit = l;
	for (const struct listener_conf *l = c->listeners; l && e->legacy && !fit; l = l->next)
		if (l->tls != LTLS_NONE && (l->legacy_tls || l->legacy_from.n > 0) && !e->ended) {
			e->ended = l->name;
			e->ended_on = l->legacy_until;
		}
	if (e->legacy && !fit && !e->ended)
		return;
	e->sunset = fit ? fit->legacy_until : 0;
	for (const struct listener_conf *l = c->listeners; l && (!e->legacy || e->ended); l = l->next) {
		if (l->tls == LTLS_NONE)
			continue;
		if (!fit || (offers_legacy(fit, now) && !offers_legacy(l, now)))
			fit = l;
	}
	if (!fit)
		return;
	e->listener = fit->name;
	e->listener_addr = fit->address_text;
}

/*
 * The bounce_owner rule its DSNs will follow (user:, listener: and CIDR
 * rules as the daemon matches them: bowner.h): the credential it uses or
 * will use, the listener above, the address it was seen from.
 */
static void
pick_owner(struct plan_entry *e, const struct config *c)
{
	const char *user = e->seen ? e->seen_user : e->cred[0] ? e->cred : e->new_user;
	struct sockaddr_storage ss;

	e->owner = config_bounce_owner(c, *user ? user : NULL, e->listener,
	                               cidr_addr_parse(e->seen ? e->seen_ip : NULL, &ss));
}

/* Case variants of one address (Scans@ and scans@) are one mailbox: one row. */
static int
row_cmp(const void *a, const void *b)
{
	const struct exo_row *x = *(const struct exo_row *const *)a;
	const struct exo_row *y = *(const struct exo_row *const *)b;
	int r = strcasecmp(x->sender, y->sender);
	return r ? r : (x < y ? -1 : x > y);
}

static void
merge_row(struct exo_row *into, struct exo_row *r)
{
	double m1 = (double)into->messages, m2 = (double)r->messages, t = m1 + m2;

	if (t > 0) { /* the shares weighted by each row's messages */
		into->tls10 = (into->tls10 * m1 + r->tls10 * m2) / t;
		into->tls11 = (into->tls11 * m1 + r->tls11 * m2) / t;
		into->tls12 = (into->tls12 * m1 + r->tls12 * m2) / t;
	}
	into->messages = r->messages > INT64_MAX - into->messages ? INT64_MAX
	                                                          : into->messages + r->messages;
	r->sender[0] = '\0';
}

static int
merge_case_variants(struct exo_row *rows, size_t *n)
{
	struct exo_row **v = calloc(*n ? *n : 1, sizeof *v);
	size_t o = 0;

	if (!v)
		return -1;
	for (size_t i = 0; i < *n; i++)
		v[i] = &rows[i];
	qsort(v, *n, sizeof *v, row_cmp);
	for (size_t i = 1, k = 0; i < *n; i++) {
		if (strcasecmp(v[k]->sender, v[i]->sender) == 0)
			merge_row(v[k], v[i]); /* v[k] is the first in the file */
		else
			k = i;
	}
	free(v);
	for (size_t i = 0; i < *n; i++)
		if (rows[i].sender[0])
			rows[o++] = rows[i];
	*n = o;
	return 0;
}

static int
load_audit(const struct config *c, struct spool_audit_row **rows, size_t *n, char *err,
           size_t errlen)
{
	if (spool_audit_list(c->data_dir, 0, rows, n, err, errlen) == 0)
		return 0;
	if (strncmp(err, "no spool database", 17) == 0) { /* the relay has sent nothing yet */
		*rows = NULL;
		*n = 0;
		return 0;
	}
	return -1;
}

int
plan_build(const struct config *c, struct plan *p, char *err, size_t errlen)
{
	struct spool_audit_row *rows = NULL;
	struct creds *cs = NULL;
	size_t nrows = 0;

	memset(p, 0, sizeof *p);
	if (exo_store_load(c, &p->rows, &p->n, err, errlen) != 0)
		return -1;
	if (merge_case_variants(p->rows, &p->n) != 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (c->credentials && creds_load(&cs, c->credentials, err, errlen) != 0)
		goto fail;
	if (load_audit(c, &rows, &nrows, err, errlen) != 0)
		goto fail;
	p->e = calloc(p->n ? p->n : 1, sizeof *p->e);
	if (!p->e) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	p->creds_path = c->credentials ? strdup(c->credentials) : NULL;
	p->hostname = strdup(c->hostname);
	for (size_t i = 0; i < p->n; i++) {
		struct plan_entry *e = &p->e[i];
		e->exo = &p->rows[i];
		e->legacy = e->exo->tls10 > 0 || e->exo->tls11 > 0;
		join_audit(e, rows, nrows);
		pick_cred(e, cs);
		unique_new_user(p, i, cs);
		pick_listener(e, c, time(NULL));
		pick_owner(e, c);
	}
	spool_audit_rows_free(rows, nrows);
	creds_free(cs);
	return 0;
fail:
	spool_audit_rows_free(rows, nrows);
	creds_free(cs);
	plan_free(p);
	return -1;
}

void
plan_free(struct plan *p)
{
	free(p->rows);
	free(p->e);
	free(p->creds_path);
	free(p->hostname);
	names_free(p->names);
	memset(p, 0, sizeof *p);
}

static const char *
status_of(const struct plan_entry *e)
{
	return e->seen ? "moved" : e->cred[0] ? "ready" : "todo";
}

static void
stamp(char *out, size_t len, time_t t)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
day(char *out, size_t len, time_t until)
{
	struct tm tm;
	time_t t = until - 86400; /* legacy_tls_until is the end of that day */
	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%d", &tm);
}

/* v for a POSIX shell: as is when plain, else single-quoted ('\'' inside). */
void
plan_sh_quote(const char *v, char *out, size_t len)
{
	size_t o = 0;
	int plain = *v != '\0';

	for (const char *p = v; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("@._+=:/,-", *p))
			plain = 0;
	if (plain) {
		snprintf(out, len, "%s", v);
		return;
	}
	out[o++] = '\'';
	for (; *v && o + 6 < len; v++) {
		if (*v == '\'') {
			memcpy(out + o, "'\\''", 4);
			o += 4;
		} else {
			out[o++] = *v;
		}
	}
	out[o++] = '\'';
	out[o] = '\0';
}

/* host:port to connect to: the listener's address, the hostname for a wildcard. */
static void
connect_to(const char *hostname, const char *addr, char *out, size_t len)
{
	const char *port = strrchr(addr, ':');

	if (port && (strncmp(addr, "0.0.0.0:", 8) == 0 || strncmp(addr, "[::]:", 5) == 0 ||
	             strncmp(addr, "*:", 2) == 0))
		snprintf(out, len, "%s%s", hostname, port);
	else
		snprintf(out, len, "%s", addr);
}

/* What is left for e, one step per out[i]; returns how many. */
static size_t
todo_of(const struct plan *p, const struct plan_entry *e, char out[TODO_MAX][600])
{
	size_t n = 0;
	char d[16], q[EXO_MAX_FIELD * 4 + 3], f[300], to[300];

	plan_sh_quote(e->exo->sender, q, sizeof q);
	plan_sh_quote(p->creds_path ? p->creds_path : "", f, sizeof f);
	if (e->listener)
		connect_to(p->hostname, e->listener_addr, to, sizeof to);
	if (!e->cred[0])
		snprintf(out[n++], 600, "create the credential: mxrelayctl passwd %s%s%s --senders %s",
		         e->new_user, p->creds_path ? " -f " : "", p->creds_path ? f : "", q);
	if (!e->listener)
		snprintf(out[n++], 600, "add a listener with tls = starttls%s and AUTH",
		         e->legacy ? " and legacy_tls = yes" : "");
	else if (!e->seen)
		snprintf(out[n++], 600, "point the device at %s (listener %s, STARTTLS, AUTH as %s)",
		         to, e->listener, e->cred[0] ? e->cred : e->new_user);
	if (e->legacy && e->ended) {
		day(d, sizeof d, e->ended_on);
		snprintf(out[n++], 600,
		         "move the device to TLS 1.2 now: legacy TLS ended on %s (legacy_tls_until "
		         "of listener %s)",
		         d, e->ended);
	} else if (e->legacy && e->sunset) {
		day(d, sizeof d, e->sunset);
		snprintf(out[n++], 600,
		         "move the device to TLS 1.2 before %s (legacy_tls_until of listener %s)", d,
		         e->listener);
	} else if (e->legacy) {
		snprintf(out[n++], 600, "move the device to TLS 1.2, then set legacy_tls_until");
	}
	if (e->seen && e->allowlisted) /* one message from relay_from proves less than AUTH */
		snprintf(out[n++], 600,
		         "seen only without AUTH from allowlisted %s: check that this is the device, "
		         "then turn SMTP AUTH off for %s in Exchange Online",
		         e->seen_ip, e->exo->sender);
	else if (e->unproven)
		snprintf(out[n++], 600,
		         "seen as user %s, whose senders do not name %s: check that this is the "
		         "device, then turn SMTP AUTH off for it in Exchange Online",
		         e->seen_user, e->exo->sender);
	else if (e->seen)
		snprintf(out[n++], 600,
		         "turn SMTP AUTH off for %s in Exchange Online (mxrelayctl m365 --plan)",
		         e->exo->sender);
	return n;
}

static void
print_text(const struct plan *p)
{
	char todo[TODO_MAX][600], a[32], b[32], who[300];

	if (p->n == 0)
		printf("no senders in the Exchange Online inventory\n");
	for (size_t i = 0; i < p->n; i++) {
		const struct plan_entry *e = &p->e[i];
		size_t nt = todo_of(p, e, todo);
		printf("%s  %s  messages=%lld tls1.0=%g%% tls1.1=%g%% tls1.2=%g%%\n", e->exo->sender,
		       status_of(e), (long long)e->exo->messages, e->exo->tls10, e->exo->tls11,
		       e->exo->tls12);
		if (e->seen) {
			stamp(a, sizeof a, e->first_seen);
			stamp(b, sizeof b, e->last_seen);
			printf("  seen:        %s to %s from %s %s%s\n", a, b, e->seen_ip,
			       e->allowlisted ? "without AUTH (relay_from)" : "as user ",
			       e->allowlisted ? "" : e->seen_user);
		} else {
			printf("  seen:        not yet through the relay\n");
		}
		printf("  credential:  %s%s\n", e->cred[0] ? e->cred : e->new_user,
		       e->cred[0] ? "" : " (to create)");
		printf("  listener:    %s%s%s%s\n", e->listener ? e->listener : "none fits",
		       e->listener ? " " : "", e->listener ? e->listener_addr : "",
		       e->legacy ? " (legacy TLS 1.0/1.1)" : "");
		if (e->owner) {
			config_who_text(&e->owner->who, who, sizeof who);
			printf("  bounces:     to %s (bounce_owner %s, line %d)\n", e->owner->address,
			       who, e->owner->line);
		}
		for (size_t t = 0; t < nt; t++)
			printf("  todo:        %s\n", todo[t]);
	}
}

static void
json_str_or_null(FILE *f, const char *s)
{
	if (s && *s)
		json_write_str(f, s);
	else
		fputs("null", f);
}

static void
json_time(FILE *f, int have, time_t t)
{
	char buf[32];
	if (!have) {
		fputs("null", f);
		return;
	}
	stamp(buf, sizeof buf, t);
	json_write_str(f, buf);
}

static void
print_json_entry(const struct plan *p, const struct plan_entry *e)
{
	char todo[TODO_MAX][600], d[16];
	size_t nt = todo_of(p, e, todo);

	fputs("{\"sender\":", stdout);
	json_write_str(stdout, e->exo->sender);
	printf(",\"messages\":%lld,\"tls10\":%g,\"tls11\":%g,\"tls12\":%g,\"status\":",
	       (long long)e->exo->messages, e->exo->tls10, e->exo->tls11, e->exo->tls12);
	json_write_str(stdout, status_of(e));
	printf(",\"seen\":%s,\"first_seen\":", e->seen ? "true" : "false");
	json_time(stdout, e->seen, e->first_seen);
	fputs(",\"last_seen\":", stdout);
	json_time(stdout, e->seen, e->last_seen);
	fputs(",\"seen_user\":", stdout);
	json_str_or_null(stdout, e->seen ? e->seen_user : NULL);
	fputs(",\"seen_ip\":", stdout);
	json_str_or_null(stdout, e->seen ? e->seen_ip : NULL);
	fputs(",\"credential\":", stdout);
	json_str_or_null(stdout, e->cred);
	fputs(",\"create_credential\":", stdout);
	json_str_or_null(stdout, e->cred[0] ? NULL : e->new_user);
	fputs(",\"listener\":", stdout);
	json_str_or_null(stdout, e->listener);
	fputs(",\"listener_address\":", stdout);
	json_str_or_null(stdout, e->listener_addr);
	fputs(",\"bounce_owner\":", stdout);
	json_str_or_null(stdout, e->owner ? e->owner->address : NULL);
	printf(",\"legacy_tls\":%s,\"sunset\":", e->legacy ? "true" : "false");
	if (e->sunset)
		day(d, sizeof d, e->sunset);
	json_str_or_null(stdout, e->sunset ? d : NULL);
	fputs(",\"todo\":[", stdout);
	for (size_t t = 0; t < nt; t++) {
		if (t)
			fputc(',', stdout);
		json_write_str(stdout, todo[t]);
	}
	fputs("]}", stdout);
}

void
ctl_audit_plan_usage(FILE *f)
{
	fputs("  audit plan [-c CONF] [--json]\n"
	      "      per sender of the imported report: seen through the relay?, the\n"
	      "      credential and listener it needs, legacy TLS, what is left\n",
	      f);
}

int
ctl_audit_plan(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *conf = NULL;
	struct config *c = NULL;
	struct plan p;
	char err[1024];
	int ch, json = 0;

	opterr = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		if (ch == 'c')
			conf = optarg;
		else if (ch == 'j')
			json = 1;
		else
			return ctl_opt_end(ch, argv, PROG, ctl_audit_plan_usage);
	}
	if (optind != argc)
		return ctl_usage_error(PROG, ctl_audit_plan_usage, "unexpected argument", argv[optind]);
	if (ctl_load_config(PROG, conf, &c) != 0)
		return 1;
	if (plan_build(c, &p, err, sizeof err) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		config_free(c);
		return 1;
	}
	if (json) { /* p points into c: free c last */
		fputs("{\"senders\":[", stdout);
		for (size_t i = 0; i < p.n; i++) {
			if (i)
				fputc(',', stdout);
			print_json_entry(&p, &p.e[i]);
		}
		fputs("]}\n", stdout);
	} else {
		print_text(&p);
	}
	plan_free(&p);
	config_free(c);
	return 0;
}

int
ctl_audit_exo_cmd(const char *word)
{
	return strcmp(word, "import-exo") == 0 || strcmp(word, "plan") == 0;
}

int
ctl_audit_exo_run(int argc, char **argv)
{
	if (strcmp(argv[0], "plan") == 0)
		return ctl_audit_plan(argc, argv);
	return ctl_audit_import_exo(argc, argv);
}

void
ctl_audit_exo_usage(FILE *f)
{
	ctl_audit_import_usage(f);
	ctl_audit_plan_usage(f);
}
