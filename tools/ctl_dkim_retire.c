/*
 * mxrelayctl dkim rotate, the last step and the report: retiring the old
 * keys once the delay after the switch is over (ctl_dkim_rotate.c has the
 * first two steps and the command), --status and --abort.
 */
#include "tools/ctl.h"
#include "tools/ctl_dkim.h"
#include "mta/shared/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROG ROT_PROG

/* ---- step 3: retire the old keys ---- */

/* text without the retired comments of the old keys. NULL when there is none. */
static char *
retired_text(const struct rot_run *r, const char *text)
{
	char *out = NULL, dom[256], sel[64];
	size_t len = 0;
	bool removed = false;

	rot_append(&out, &len, "", 0);
	for (const char *p = text; *p != '\0';) {
		const char *nl = strchr(p, '\n'), *kv;
		size_t n = nl != NULL ? (size_t)(nl - p + 1) : strlen(p);
		bool drop = false;

		if (strncmp(p, ROT_RETIRED_MARK, strlen(ROT_RETIRED_MARK)) == 0 &&
		    (kv = strstr(p, ": dkim_key = ")) != NULL && kv < p + n &&
		    sscanf(kv, ": dkim_key = %255s %63s", dom, sel) == 2 &&
		    strcasecmp(dom, r->domain) == 0)
			for (size_t i = 0; i < r->s.nold; i++)
				drop = drop || strcasecmp(sel, r->s.old[i].selector) == 0;
		if (drop) {
			printf("- %.*s\n", (int)(nl != NULL ? n - 1 : n), p);
			removed = true;
		} else {
			rot_append(&out, &len, p, n);
		}
		p += n;
	}
	if (!removed) {
		free(out);
		return NULL;
	}
	return out;
}

const struct dkim_key_conf *
rot_conf_key(const struct rot_run *r, const char *path)
{
	struct stat a, b;
	bool have = stat(path, &a) == 0;

	for (const struct dkim_key_conf *c = r->c->dkim_keys; c != NULL; c = c->next)
		if (strcmp(c->path, path) == 0 ||
		    (have && stat(c->path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino))
			return c;
	return NULL;
}

/*
 * Move an old key file aside (PATH.retired) rather than deleting it: the
 * tool cannot see when its DNS record is gone, and until then a copy lets
 * the admin roll back. A file a dkim_key line still uses stays. The copy
 * is made owner-only: the daemon's group no longer needs to read it.
 */
static void
retire_key_file(const struct rot_run *r, const struct rot_key *k)
{
	const struct dkim_key_conf *c = rot_conf_key(r, k->path);
	char aside[4200];

	if (c != NULL) {
		printf("Kept %s: %s:%d still uses it.\n", k->path, r->conf, c->line);
		return;
	}
	snprintf(aside, sizeof aside, "%s.retired", k->path);
	if (rename(k->path, aside) != 0) {
		fprintf(stderr, PROG ": warning: cannot move %s aside: %s\n", k->path,
		        strerror(errno));
		return;
	}
	if (chmod(aside, 0600) != 0)
		fprintf(stderr, PROG ": warning: cannot make %s owner-only: %s\n", aside,
		        strerror(errno));
	printf("Moved the old key %s to %s (mode 0600; delete it once its DNS record is gone).\n",
	       k->path, aside);
}

int
rot_step_retire(struct rot_run *r)
{
	time_t due = r->s.switched + r->s.retire_days * ROT_DAY;
	char err[1200], d1[32], bak[PATH_MAX + 8], *old, *text;
	size_t oldlen;

	if (r->o->selector != NULL || r->o->algs != 0 || r->o->check) {
		fprintf(stderr,
		        PROG ": the rotation of %s switched to %s on %s; it has nothing to "
		             "check: run " PROG " %s to retire the old key when due\n",
		        r->domain, r->s.new[0].selector, rot_fmt_time(r->s.switched, d1, sizeof d1),
		        r->domain);
		return 1;
	}
	if (r->now < due) {
		long left = (long)(due - r->now);
		if (r->o->retire_days >= 0 &&
		    rot_state_save(r->state_path, &r->s, err, sizeof err) != 0)
			fprintf(stderr, PROG ": warning: %s\n", err);
		printf("The old key%s of %s retire%s on %s, in %ld days %ld hours: keep %s DNS "
		       "record%s published until then. Nothing changed.\n",
		       r->s.nold > 1 ? "s" : "", r->domain, r->s.nold > 1 ? "" : "s",
		       rot_fmt_time(due, d1, sizeof d1), left / ROT_DAY, left % ROT_DAY / 3600,
		       r->s.nold > 1 ? "their" : "its", r->s.nold > 1 ? "s" : "");
		return 0;
	}
	if ((old = rot_read_file(r->conf, &oldlen, err, sizeof err)) == NULL) {
		fprintf(stderr, PROG ": %s\n", err);
		return 1;
	}
	printf("Retiring the old key%s of %s:\n", r->s.nold > 1 ? "s" : "", r->domain);
	text = retired_text(r, old);
	if (text != NULL &&
	    rot_replace_config(r->conf, old, oldlen, text, bak, sizeof bak, err, sizeof err) != 0) {
		fprintf(stderr, PROG ": %s: nothing changed\n", err);
		free(text);
		free(old);
		return 1;
	}
	if (text != NULL)
		printf("Changed %s (the previous version is %s).\n", r->conf, bak);
	free(text);
	free(old);
	for (size_t i = 0; i < r->s.nold; i++)
		retire_key_file(r, &r->s.old[i]);
	printf("\nDelete %s DNS record%s (or revoke with an empty key, \"v=DKIM1; p=\", RFC 6376 "
	       "3.6.1):\n",
	       r->s.nold > 1 ? "these" : "this", r->s.nold > 1 ? "s" : "");
	for (size_t i = 0; i < r->s.nold; i++)
		printf("  %s._domainkey.%s. IN TXT\n", r->s.old[i].selector, r->domain);
	if (unlink(r->state_path) != 0)
		fprintf(stderr, PROG ": warning: cannot remove %s: %s\n", r->state_path,
		        strerror(errno));
	printf("The rotation of %s is complete.\n", r->domain);
	return 0;
}

/* ---- --status ---- */

int
rot_status(const struct rot_run *r)
{
	char d1[32];
	struct mxdkim_key *key = NULL;
	char err[512];

	if (r->s.phase == ROT_NONE) {
		printf("No key rotation of %s under way (%s); start one with " PROG " %s.\n",
		       r->domain, r->state_path, r->domain);
		return 0;
	}
	printf("Key rotation of %s (state %s):\n  started %s\n", r->domain, r->state_path,
	       rot_fmt_time(r->s.started, d1, sizeof d1));
	for (size_t i = 0; i < r->s.nold; i++)
		printf("  old: %s (%s) %s\n", r->s.old[i].selector,
		       mxdkim_alg_name(r->s.old[i].alg), r->s.old[i].path);
	for (size_t i = 0; i < r->s.nnew; i++)
		printf("  new: %s (%s) %s\n", r->s.new[i].selector,
		       mxdkim_alg_name(r->s.new[i].alg), r->s.new[i].path);
	if (r->s.phase == ROT_SWITCHED) {
		printf(
		    "  switched %s: mxrelayd signs with the new key; the old one retires on %s\n",
		    rot_fmt_time(r->s.switched, d1, sizeof d1),
		    rot_fmt_time(r->s.switched + r->s.retire_days * ROT_DAY, d1, sizeof d1));
		return 0;
	}
	printf("  pending: mxrelayd signs with the old key until the new record is published:\n\n");
	for (size_t i = 0; i < r->s.nnew; i++) {
		if (mxdkim_key_load(&key, r->s.new[i].path, err, sizeof err) != 0) {
			fprintf(stderr, PROG ": %s\n", err);
			return 1;
		}
		ctl_dkim_print_record(PROG, r->domain, r->s.new[i].selector, key);
		mxdkim_key_free(key);
		printf("\n");
	}
	return 0;
}

/*
 * Drop a pending rotation: its new keys were never used to sign nor
 * configured, so they are deleted with the state. After the switch the
 * config already names them: going back is an edit (CONF.bak), not this.
 */
int
rot_abort(const struct rot_run *r)
{
	if (r->s.phase == ROT_NONE) {
		fprintf(stderr, PROG ": no key rotation of %s under way\n", r->domain);
		return 1;
	}
	if (r->s.phase == ROT_SWITCHED) {
		fprintf(stderr,
		        PROG
		        ": the rotation of %s has switched %s to selector %s already: to go back, "
		        "restore the old dkim_key lines (%s.bak) and reload mxrelayd\n",
		        r->domain, r->conf, r->s.new[0].selector, r->conf);
		return 1;
	}
	for (size_t i = 0; i < r->s.nnew; i++) {
		const struct dkim_key_conf *c = rot_conf_key(r, r->s.new[i].path);

		if (c == NULL)
			continue;
		/* switched by hand: deleting the key would break the next reload */
		fprintf(stderr,
		        PROG ": %s:%d signs with the new key %s already (the switch happened): "
		             "nothing deleted; run " PROG " %s -c %s to record the switch\n",
		        r->conf, c->line, r->s.new[i].path, r->domain, r->conf);
		return 1;
	}
	for (size_t i = 0; i < r->s.nnew; i++) {
		if (unlink(r->s.new[i].path) != 0 && errno != ENOENT) {
			fprintf(stderr, PROG ": cannot delete %s: %s\n", r->s.new[i].path,
			        strerror(errno));
			return 1;
		}
		printf(
		    "Deleted the unused new key %s; remove its DNS record %s._domainkey.%s if you "
		    "published it.\n",
		    r->s.new[i].path, r->s.new[i].selector, r->domain);
	}
	if (unlink(r->state_path) != 0) {
		fprintf(stderr, PROG ": cannot delete %s: %s\n", r->state_path, strerror(errno));
		return 1;
	}
	printf("The rotation of %s is abandoned; nothing in %s was changed by it.\n", r->domain,
	       r->conf);
	return 0;
}
