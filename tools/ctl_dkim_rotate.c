/*
 * mxrelayctl dkim rotate DOMAIN: replace a domain's DKIM keys without a
 * moment where mail is signed with a key verifiers cannot find.
 *
 *   1. new key(s) under a new selector, record(s) printed, state written
 *      beside the config (CONF.dkim-rotate.DOMAIN); the config is not
 *      touched, so mxrelayd keeps signing with the old key(s);
 *   2. once DNS serves the new record(s) (checked through the daemon's
 *      resolver settings), the domain's dkim_key lines switch to the new
 *      selector in one atomic rewrite of the config (old lines kept as
 *      comments with their retirement date) and the daemon is reloaded;
 *   3. after --retire-after days (default 7: mail signed just before the
 *      switch may sit in queues that long, and its verifiers need the old
 *      record, RFC 6376 3.6.2 has no other way to find it) the old key
 *      files are moved aside, the comments removed and the record to
 *      delete printed.
 * The same command run again does the next step; --status only reports.
 */
#include "tools/ctl.h"
#include "tools/ctl_dkim.h"
#include "dkim/txt.h"
#include "mta/shared/config.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <pwd.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROG ROT_PROG
#define DEFAULT_RETIRE_DAYS 7L

void
ctl_dkim_rotate_usage(FILE *f)
{
	fputs("  dkim rotate DOMAIN [-c CONF] [--selector S] [--type rsa|ed25519|both]\n"
	      "         [--retire-after DAYS] [--check | --status | --abort]\n"
	      "      replace DOMAIN's DKIM keys in three runs of the same command:\n"
	      "      new key(s) and record(s) (config untouched); once DNS serves them,\n"
	      "      CONF's dkim_key lines switch (backup CONF.bak) and mxrelayd is\n"
	      "      reloaded; DAYS (default 7) later the old keys are retired.\n"
	      "      --check: only look the new records up; --status: show the state;\n"
	      "      --abort: drop a rotation whose switch has not happened\n",
	      f);
}

/* Unix time now; MXRELAYCTL_NOW (seconds) overrides it so tests can jump over the delay. */
static time_t
rot_now(void)
{
	const char *v = getenv("MXRELAYCTL_NOW");
	char *end;
	long long t;

	if (v != NULL && *v != '\0') {
		errno = 0;
		t = strtoll(v, &end, 10);
		if (errno == 0 && *end == '\0' && t > 0)
			return (time_t)t;
	}
	return time(NULL);
}

/* --type: bits of the algorithms; 0 when arg is none of them. */
static unsigned
type_arg(const char *arg)
{
	if (strcmp(arg, "rsa") == 0)
		return 1u << MXDKIM_RSA;
	if (strcmp(arg, "ed25519") == 0)
		return 1u << MXDKIM_ED25519;
	if (strcmp(arg, "both") == 0)
		return (1u << MXDKIM_RSA) | (1u << MXDKIM_ED25519);
	return 0;
}

/* -1: go on; otherwise the exit status */
static int
rot_args(int argc, char **argv, struct rot_opts *o)
{
	enum { OPT_SEL = 256, OPT_TYPE, OPT_RETIRE, OPT_CHECK, OPT_STATUS, OPT_ABORT };
	static const struct option longopts[] = {
	    {"selector", required_argument, NULL, OPT_SEL},
	    {"type", required_argument, NULL, OPT_TYPE},
	    {"retire-after", required_argument, NULL, OPT_RETIRE},
	    {"check", no_argument, NULL, OPT_CHECK},
	    {"status", no_argument, NULL, OPT_STATUS},
	    {"abort", no_argument, NULL, OPT_ABORT},
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	char *end;
	int ch;

	memset(o, 0, sizeof *o);
	o->retire_days = -1;
	opterr = 0;
	optind = 0;
	while ((ch = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		if (ch == 'c')
			o->conf = optarg;
		else if (ch == OPT_SEL)
			o->selector = optarg;
		else if (ch == OPT_TYPE && (o->algs = type_arg(optarg)) == 0)
			return ctl_usage_error(PROG, ctl_dkim_rotate_usage,
			                       "--type must be rsa, ed25519 or both, not", optarg);
		else if (ch == OPT_RETIRE) {
			errno = 0;
			o->retire_days = strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || end == optarg || o->retire_days < 0 ||
			    o->retire_days > 3650)
				return ctl_usage_error(PROG, ctl_dkim_rotate_usage,
				                       "--retire-after must be 0 to 3650 days, not",
				                       optarg);
		} else if (ch == OPT_CHECK)
			o->check = true;
		else if (ch == OPT_STATUS)
			o->status = true;
		else if (ch == OPT_ABORT)
			o->abort = true;
		else if (ch != OPT_TYPE)
			return ctl_opt_end(ch, argv, PROG, ctl_dkim_rotate_usage);
	}
	if (o->check + o->status + o->abort > 1)
		return ctl_usage_error(PROG, ctl_dkim_rotate_usage,
		                       "--check, --status and --abort exclude each other", NULL);
	if (argc - optind != 1)
		return ctl_usage_error(PROG, ctl_dkim_rotate_usage, "expected exactly one DOMAIN",
		                       NULL);
	o->domain_arg = argv[optind];
	return -1;
}

/* ---- step 1: new keys ---- */

/* Is selector taken for the domain (a dkim_key line, a key file at path, or one retired)? */
static bool
selector_taken(const struct rot_run *r, const char *selector, const char *path)
{
	char retired[4200];

	for (const struct dkim_key_conf *k = r->c->dkim_keys; k != NULL; k = k->next)
		if (strcasecmp(k->domain, r->domain) == 0 && strcasecmp(k->selector, selector) == 0)
			return true;
	/* a retired key's record may still be published: never reuse its selector */
	snprintf(retired, sizeof retired, "%s.retired", path);
	return access(path, F_OK) == 0 || access(retired, F_OK) == 0;
}

/* The key file of a new selector: beside the old key of the same algorithm. */
static void
new_key_path(const struct rot_state *s, enum mxdkim_alg alg, const char *selector, char *out,
             size_t outlen)
{
	char dir[4096];
	size_t i;

	for (i = 0; i + 1 < s->nold && s->old[i].alg != alg; i++)
		;
	snprintf(dir, sizeof dir, "%s", s->old[i].path);
	snprintf(out, outlen, "%s/%s.%s.pem", dirname(dir), s->domain, selector);
}

/*
 * The new selectors: BASE for one algorithm, BASEr and BASEe for two
 * (README's s2026r/s2026e convention). BASE is --selector, else sYYYYMM,
 * with b, c... appended until no selector or key file is taken.
 */
static int
pick_selectors(struct rot_run *r, unsigned algs)
{
	char base[64], date[16], sel[64];
	time_t now = r->now;
	struct tm tm;
	bool two = algs == ((1u << MXDKIM_RSA) | (1u << MXDKIM_ED25519));

	gmtime_r(&now, &tm);
	strftime(date, sizeof date, "s%Y%m", &tm);
	for (char suffix = 'a'; suffix <= 'z'; suffix++) {
		if (r->o->selector != NULL &&
		    ctl_dkim_selector_arg(r->o->selector, base, sizeof base - 2) != 0) {
			fprintf(stderr, PROG ": bad selector '%s'\n", r->o->selector);
			return -1;
		}
		if (r->o->selector == NULL)
			snprintf(base, sizeof base, "%s%.1s", date, suffix == 'a' ? "" : &suffix);
		bool free_all = true;
		r->s.nnew = 0;
		for (int alg = MXDKIM_RSA; alg <= MXDKIM_ED25519; alg++) {
			struct rot_key *k;
			if (!(algs & (1u << alg)))
				continue;
			k = &r->s.new[r->s.nnew++];
			k->alg = (enum mxdkim_alg)alg;
			snprintf(sel, sizeof sel, "%s%s", base,
			         !two                ? ""
			         : alg == MXDKIM_RSA ? "r"
			                             : "e");
			snprintf(k->selector, sizeof k->selector, "%s", sel);
			new_key_path(&r->s, k->alg, sel, k->path, sizeof k->path);
			if (selector_taken(r, sel, k->path))
				free_all = false;
		}
		if (free_all)
			return 0;
		if (r->o->selector != NULL) {
			fprintf(stderr,
			        PROG
			        ": selector %s of %s is taken (a dkim_key line or its key file "
			        "exists): choose another with --selector\n",
			        base, r->domain);
			return -1;
		}
	}
	fprintf(stderr, PROG ": no free selector for %s this month: give one with --selector\n",
	        r->domain);
	return -1;
}

/*
 * The domain's dkim_key lines into r->s.old (loading each key for its
 * algorithm); the algorithms found into *algs. 0 / -1 after a message.
 */
static int
collect_old(struct rot_run *r, unsigned *algs, int *rsa_bits)
{
	char err[512];

	*algs = 0;
	for (const struct dkim_key_conf *k = r->c->dkim_keys; k != NULL; k = k->next) {
		struct mxdkim_key *key = NULL;
		struct rot_key *o;

		if (strcasecmp(k->domain, r->domain) != 0)
			continue;
		if (r->s.nold == ROT_MAX_KEYS) {
			fprintf(stderr, PROG ": %s has more than %d dkim_key lines for %s\n",
			        r->conf, ROT_MAX_KEYS, r->domain);
			return -1;
		}
		if (mxdkim_key_load(&key, k->path, err, sizeof err) != 0) {
			fprintf(stderr, PROG ": %s:%d: dkim_key: %s\n", r->conf, k->line, err);
			return -1;
		}
		o = &r->s.old[r->s.nold++];
		o->alg = mxdkim_key_alg(key);
		snprintf(o->selector, sizeof o->selector, "%s", k->selector);
		snprintf(o->path, sizeof o->path, "%s", k->path);
		*algs |= 1u << o->alg;
		if (o->alg == MXDKIM_RSA && mxdkim_key_bits(key) > *rsa_bits)
			*rsa_bits = mxdkim_key_bits(key);
		mxdkim_key_free(key);
	}
	if (r->s.nold == 0) {
		fprintf(stderr,
		        PROG
		        ": %s has no dkim_key for %s: nothing to rotate; make a first key with "
		        "mxrelayctl dkim keygen %s SELECTOR\n",
		        r->conf, r->domain, r->domain);
		return -1;
	}
	return 0;
}

/* Give the new key file the owner, group and mode of the old one, so the daemon reads it too. */
static void
like_old_key(const char *path, const char *old, char *how, size_t howlen)
{
	struct stat st;

	snprintf(how, howlen, "mode 0600");
	if (stat(old, &st) != 0)
		return;
	if (chown(path, st.st_uid, st.st_gid) != 0 || chmod(path, st.st_mode & 0640) != 0) {
		fprintf(stderr, PROG ": warning: %s: cannot copy the owner and mode of %s: %s\n",
		        path, old, strerror(errno));
		return;
	}
	snprintf(how, howlen, "mode %04o, owner and group as %s", (unsigned)(st.st_mode & 0640),
	         old);
}

/*
 * After a SIGHUP mxrelayd reads changed key files as the account it runs
 * as (runas.c: `user`, else mxrelay, else nobody, when started as root):
 * warn now, with the fix, when that account could not read path.
 */
static void
warn_unreadable(const struct config *c, const char *path)
{
	struct passwd *pw = c->user != NULL ? getpwnam(c->user) : getpwnam("mxrelay");
	struct stat st;
	mode_t bit;

	if (pw == NULL && c->user == NULL)
		pw = getpwnam("nobody");
	if (geteuid() != 0 || pw == NULL || pw->pw_uid == 0 || stat(path, &st) != 0)
		return;
	bit = st.st_uid == pw->pw_uid ? 0400 : st.st_gid == pw->pw_gid ? 0040 : 0004;
	if (st.st_mode & bit)
		return;
	printf("warning: mxrelayd runs as %s and reads changed keys as that user on reload: it "
	       "cannot read %s; give it the key's group now (chgrp %u %s && chmod 0640 %s) or "
	       "restart mxrelayd after the switch instead of reloading\n\n",
	       pw->pw_name, path, (unsigned)pw->pw_gid, path, path);
}

/* Make the key of k and print its record. 0 / -1 after a message. */
static int
make_key(const struct rot_run *r, const struct rot_key *k, int rsa_bits)
{
	struct mxdkim_key *key = NULL;
	char err[512], how[PATH_MAX + 64];
	const char *old = r->s.old[0].path;
	int rc = -1;

	for (size_t i = 0; i < r->s.nold; i++)
		if (r->s.old[i].alg == k->alg)
			old = r->s.old[i].path;
	if (mxdkim_keygen(k->alg, k->alg == MXDKIM_RSA ? rsa_bits : 0, k->path, 0, err,
	                  sizeof err) != 0 ||
	    mxdkim_key_load(&key, k->path, err, sizeof err) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		goto done;
	}
	like_old_key(k->path, old, how, sizeof how);
	printf("Wrote %s (%s, %d bits, %s).\n\n", k->path, mxdkim_alg_name(k->alg),
	       mxdkim_key_bits(key), how);
	warn_unreadable(r->c, k->path);
	rc = ctl_dkim_print_record(PROG, r->domain, k->selector, key);
	printf("\n");
done:
	mxdkim_key_free(key);
	return rc;
}

/* A failed step 1 leaves no key behind: delete the first n new key files. */
static void
unmake_keys(const struct rot_state *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		unlink(s->new[i].path);
}

static int
step_start(struct rot_run *r)
{
	unsigned algs;
	int rsa_bits = MXDKIM_RSA_MIN_SIGN_BITS;
	char err[512];

	if (r->o->check) {
		fprintf(stderr,
		        PROG ": no key rotation of %s under way: start one with " PROG " %s\n",
		        r->domain, r->domain);
		return 1;
	}
	snprintf(r->s.domain, sizeof r->s.domain, "%s", r->domain);
	if (collect_old(r, &algs, &rsa_bits) != 0)
		return 1;
	if (rsa_bits > MXDKIM_RSA_MAX_BITS)
		rsa_bits = MXDKIM_RSA_MAX_BITS;
	if (pick_selectors(r, r->o->algs != 0 ? r->o->algs : algs) != 0)
		return 1;
	r->s.phase = ROT_PENDING;
	r->s.started = r->now;
	for (size_t i = 0; i < r->s.nnew; i++)
		if (make_key(r, &r->s.new[i], rsa_bits) != 0) {
			unmake_keys(&r->s, i);
			return 1;
		}
	if (rot_state_save(r->state_path, &r->s, err, sizeof err) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		unmake_keys(&r->s, r->s.nnew);
		return 1;
	}
	printf("Nothing in %s changed: mxrelayd keeps signing %s with", r->conf, r->domain);
	for (size_t i = 0; i < r->s.nold; i++)
		printf(" %s", r->s.old[i].selector);
	printf(".\n"
	       "Next:\n"
	       "  1. publish the record%s above; keep the old one%s published;\n"
	       "  2. run " PROG " %s -c %s again: it looks the new record%s up and,\n"
	       "     when DNS serves %s, switches the dkim_key line%s of %s and reloads mxrelayd;\n"
	       "  3. %ld days after the switch run it once more to retire the old key%s.\n"
	       "State: %s\n",
	       r->s.nnew > 1 ? "s" : "", r->s.nold > 1 ? "s" : "", r->domain, r->conf,
	       r->s.nnew > 1 ? "s" : "", r->s.nnew > 1 ? "them" : "it", r->s.nold > 1 ? "s" : "",
	       r->conf, r->s.retire_days, r->s.nold > 1 ? "s" : "", r->state_path);
	return 0;
}

/* ---- step 2: check the new records, switch the config ---- */

/* 0 when DNS serves a record matching every new key; prints one line per key. */
static int
check_published(const struct rot_run *r)
{
	int rc = 0;

	for (size_t i = 0; i < r->s.nnew; i++) {
		const struct rot_key *k = &r->s.new[i];
		struct mxdkim_key *key = NULL;
		char name[400], why[512], *txt = NULL;

		snprintf(name, sizeof name, "%s._domainkey.%s", k->selector, r->domain);
		if (mxdkim_key_load(&key, k->path, why, sizeof why) != 0 ||
		    rot_lookup_txt(name, &txt, why, sizeof why) != 0 ||
		    mxdkim_txt_matches(key, txt, why, sizeof why) != 0) {
			printf("not ready: %s: %s\n", name, why);
			rc = -1;
		} else {
			printf("published: %s matches %s\n", name, k->path);
		}
		free(txt);
		mxdkim_key_free(key);
	}
	return rc;
}

/* Whether config line `line` is one of the domain's old dkim_key lines. */
static const struct dkim_key_conf *
old_line(const struct rot_run *r, int line)
{
	for (const struct dkim_key_conf *k = r->c->dkim_keys; k != NULL; k = k->next) {
		if (k->line != line || strcasecmp(k->domain, r->domain) != 0)
			continue;
		for (size_t i = 0; i < r->s.nold; i++)
			if (strcasecmp(k->selector, r->s.old[i].selector) == 0)
				return k;
	}
	return NULL;
}

/*
 * text with each old dkim_key line of the domain replaced by a comment
 * naming its retirement date, the new lines after the last of them; the
 * changes printed as -/+ lines. NULL when the config has none of them.
 */
static char *
switched_text(const struct rot_run *r, const char *text, time_t retire, char **diff)
{
	char *out = NULL, line[5000], d1[32], d2[32];
	size_t len = 0, last = 0, dlen = 0;
	int no = 0;

	rot_append(&out, &len, "", 0);
	rot_append(diff, &dlen, "", 0);
	for (const char *p = text; *p != '\0';) {
		const char *nl = strchr(p, '\n');
		size_t n = nl != NULL ? (size_t)(nl - p + 1) : strlen(p);
		const struct dkim_key_conf *k = old_line(r, ++no);

		if (k == NULL) {
			rot_append(&out, &len, p, n);
		} else {
			snprintf(line, sizeof line, "line %d:\n- %.*s\n", no,
			         (int)(nl != NULL ? n - 1 : n), p);
			rot_append(diff, &dlen, line, strlen(line));
			snprintf(line, sizeof line,
			         ROT_RETIRED_MARK
			         " on %.10s, its DNS record stays until %.10s: dkim_key = %s "
			         "%s %s\n",
			         rot_fmt_time(r->now, d1, sizeof d1),
			         rot_fmt_time(retire, d2, sizeof d2), k->domain, k->selector,
			         k->path);
			rot_append(diff, &dlen, "+ ", 2);
			rot_append(diff, &dlen, line, strlen(line));
			rot_append(&out, &len, line, strlen(line));
			last = len;
		}
		p += n;
	}
	if (last == 0) {
		free(out);
		return NULL;
	}
	char *tail = strdup(out + last);
	len = last;
	for (size_t i = 0; i < r->s.nnew; i++) {
		snprintf(line, sizeof line, "dkim_key = %s %s %s\n", r->domain,
		         r->s.new[i].selector, r->s.new[i].path);
		rot_append(diff, &dlen, "+ ", 2);
		rot_append(diff, &dlen, line, strlen(line));
		rot_append(&out, &len, line, strlen(line));
	}
	rot_append(&out, &len, tail, strlen(tail));
	free(tail);
	return out;
}

/* Switch the config to the new keys, record it, reload. The exit status. */
static int
switch_config(struct rot_run *r)
{
	char err[1200], msg[1200], d1[32], bak[PATH_MAX + 8], *old, *text, *diff = NULL;
	size_t oldlen;
	time_t retire = r->now + r->s.retire_days * ROT_DAY;
	bool state_lost = false;
	int rc = 1;

	if ((old = rot_read_file(r->conf, &oldlen, err, sizeof err)) == NULL) {
		fprintf(stderr, PROG ": %s\n", err);
		return 1;
	}
	if ((text = switched_text(r, old, retire, &diff)) == NULL) {
		fprintf(stderr,
		        PROG
		        ": %s no longer has the dkim_key line of %s selector %s: put it back, or "
		        "give up this rotation with " PROG " %s --abort\n",
		        r->conf, r->domain, r->s.old[0].selector, r->domain);
		goto done;
	}
	if (rot_replace_config(r->conf, old, oldlen, text, bak, sizeof bak, err, sizeof err) != 0) {
		fprintf(stderr, PROG ": %s: nothing changed\n", err);
		goto done;
	}
	r->s.phase = ROT_SWITCHED;
	r->s.switched = r->now;
	printf("\nChanged %s (the previous version is %s):\n%s\n", r->conf, bak, diff);
	if (rot_state_save(r->state_path, &r->s, err, sizeof err) != 0) {
		/* the next run sees the config naming the new keys and records the switch */
		fprintf(stderr,
		        PROG ": %s: the config is switched, the rotation state is not: run " PROG
		             " %s -c %s again to record it\n",
		        err, r->domain, r->conf);
		state_lost = true;
	}
	int rl = rot_reload(r->c, msg, sizeof msg);
	if (rl == 0)
		printf("%s.\n", msg);
	else if (rl == 1)
		printf("%s: it signs with the new key%s when it starts.\n", msg,
		       r->s.nnew > 1 ? "s" : "");
	else
		fprintf(stderr,
		        PROG ": %s: reload mxrelayd yourself (systemctl reload mxrelayd, or "
		             "kill -HUP its pid)\n",
		        msg);
	printf("Keep the old record%s published until %s (%ld days: mail signed before the switch "
	       "may still be queued or in transit), then run " PROG " %s -c %s to retire %s.\n",
	       r->s.nold > 1 ? "s" : "", rot_fmt_time(retire, d1, sizeof d1), r->s.retire_days,
	       r->domain, r->conf, r->s.nold > 1 ? "them" : "it");
	rc = rl < 0 || state_lost ? 1 : 0;
done:
	free(diff);
	free(text);
	free(old);
	return rc;
}

/* Does the config still hold one of the old dkim_key lines of the rotation? */
static bool
has_old_lines(const struct rot_run *r)
{
	for (const struct dkim_key_conf *k = r->c->dkim_keys; k != NULL; k = k->next)
		if (old_line(r, k->line) != NULL)
			return true;
	return false;
}

/*
 * The config names every new key already (the admin switched by hand, or a
 * switch whose state could not be saved): record the switch as of now, so
 * the old keys retire after the delay; -1 when it does not.
 */
static int
record_done_switch(struct rot_run *r)
{
	char err[1200], d1[32];

	for (size_t i = 0; i < r->s.nnew; i++)
		if (rot_conf_key(r, r->s.new[i].path) == NULL)
			return -1;
	r->s.phase = ROT_SWITCHED;
	r->s.switched = r->now;
	if (rot_state_save(r->state_path, &r->s, err, sizeof err) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		return 1;
	}
	printf("%s signs with the new key%s of %s already (selector %s): the switch is recorded "
	       "as of now. Keep the old record%s published until %s, then run " PROG
	       " %s -c %s to retire %s.\n",
	       r->conf, r->s.nnew > 1 ? "s" : "", r->domain, r->s.new[0].selector,
	       r->s.nold > 1 ? "s" : "",
	       rot_fmt_time(r->now + r->s.retire_days * ROT_DAY, d1, sizeof d1), r->domain,
	       r->conf, r->s.nold > 1 ? "them" : "it");
	return 0;
}

static int
step_switch(struct rot_run *r)
{
	int rc;

	if (r->o->selector != NULL || r->o->algs != 0) {
		fprintf(stderr,
		        PROG
		        ": a rotation of %s is already pending (selector %s, state %s): run " PROG
		        " %s to switch once its record is published\n",
		        r->domain, r->s.new[0].selector, r->state_path, r->domain);
		return 1;
	}
	if (!r->o->check && (rc = record_done_switch(r)) >= 0)
		return rc;
	if (!has_old_lines(r)) {
		fprintf(stderr,
		        PROG
		        ": %s no longer has the dkim_key line of %s selector %s: put it back, or "
		        "give up this rotation with " PROG " %s --abort\n",
		        r->conf, r->domain, r->s.old[0].selector, r->domain);
		return 1;
	}
	if (check_published(r) != 0) {
		printf("Nothing changed: mxrelayd keeps signing with the old key. Publish the new "
		       "record (" PROG " %s --status prints it) and run this again.\n",
		       r->domain);
		return 1;
	}
	if (r->o->check) {
		printf("Ready: run " PROG " %s -c %s to switch to the new key.\n", r->domain,
		       r->conf);
		return 0;
	}
	return switch_config(r);
}

int
ctl_dkim_rotate(int argc, char **argv)
{
	struct rot_opts o;
	struct rot_run r;
	char err[1200], real[PATH_MAX];
	int rc = rot_args(argc, argv, &o);

	if (rc >= 0)
		return rc;
	memset(&r, 0, sizeof r);
	r.o = &o;
	r.now = rot_now();
	if (ctl_domain_arg(PROG, o.domain_arg, r.domain) != 0 ||
	    ctl_load_config(PROG, o.conf, &r.c) != 0)
		return 1;
	rc = 1;
	if (r.c->path == NULL) {
		fprintf(stderr,
		        PROG ": no config file (%s does not exist): give the daemon's with -c "
		             "CONF\n",
		        CTL_DEFAULT_CONF);
		goto done;
	}
	r.conf = r.c->path;
	/* the file's real name, so -c with a relative path or a symlink finds the same state */
	if (realpath(r.conf, real) == NULL) {
		fprintf(stderr, PROG ": %s: %s\n", r.conf, strerror(errno));
		goto done;
	}
	rot_state_path(real, r.domain, r.state_path, sizeof r.state_path);
	if (rot_state_load(r.state_path, &r.s, err, sizeof err) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		goto done;
	}
	if (o.status || o.abort) {
		rc = o.status ? rot_status(&r) : rot_abort(&r);
		goto done;
	}
	if (!o.check && rot_conf_writable(r.conf, err, sizeof err) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		goto done;
	}
	if (r.s.phase == ROT_NONE)
		r.s.retire_days = DEFAULT_RETIRE_DAYS;
	if (o.retire_days >= 0)
		r.s.retire_days = o.retire_days;
	if (r.s.phase == ROT_NONE)
		rc = step_start(&r);
	else if (r.s.phase == ROT_PENDING)
		rc = step_switch(&r);
	else
		rc = rot_step_retire(&r);
done:
	config_free(r.c);
	return rc;
}
