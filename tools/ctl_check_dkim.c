/*
 * ctl_check_dkim: the DKIM checks of mxrelayctl dns check (one per
 * configured key of the domain; see tools/ctl_check.c).
 */
#include "tools/ctl_check.h"
#include "tools/dkimrec.h"
#include "tools/dnsq.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "dkim/keys.h"
#include "dkim/txt.h"
#include "mta/shared/config.h"

/* ---- DKIM ---- */

/*
 * The fix for a key record: the exact zone line to publish (what
 * `mxrelayctl dns dkim DOMAIN` prints for this key), else the command.
 */
static char *
record_fix(struct ctx *c, const struct dkim_key_conf *k, const struct mxdkim_key *key,
           const char *what)
{
	char *value = NULL, *zone = NULL, *fix, err[256];

	if (mxdkim_key_txt(key, &value, err, sizeof err) != 0 ||
	    mxdkim_txt_zone_line(k->selector, c->domain, value, &zone) != 0) {
		free(value);
		return check_fmt("%s the record printed by mxrelayctl dns dkim %s", what,
		                 c->domain);
	}
	fix = check_fmt("%s this record (mxrelayctl dns dkim %s prints it): %s", what, c->domain,
	                zone);
	free(value);
	free(zone);
	return fix;
}

/*
 * The right name has no record: a panel that appends the zone to every
 * name turns SELECTOR._domainkey.DOMAIN into ...DOMAIN.DOMAIN.
 */
static void
dkim_missing(struct ctx *c, const struct dkim_key_conf *k, const struct mxdkim_key *key,
             const char *label, const char *name)
{
	struct dnsq_list l = {NULL, 0};
	char twice[600];

	snprintf(twice, sizeof twice, "%s.%s", name, c->domain);
	if (dnsq_txt(twice, &l) == DNSQ_OK) {
		check_add(
		    c, label, ST_FAIL,
		    check_fmt("no DKIM record at %s, but one at %s: the DNS panel appended "
		              "the zone to the name (RFC 6376 3.6.2.1)",
		              name, twice),
		    check_fmt("in the panel, enter the name as %s._domainkey only (or %s. with "
		              "the final dot), then delete %s; the record is the one printed by "
		              "mxrelayctl dns dkim %s",
		              k->selector, name, twice, c->domain));
	} else {
		check_add(c, label, ST_FAIL,
		          check_fmt("no DKIM record at %s (RFC 6376 3.6.2.1)", name),
		          record_fix(c, k, key, "publish"));
	}
	dnsq_list_free(&l);
}

/* Several TXT records: one key split by a panel into a record per string, or extra ones. */
static void
dkim_several(struct ctx *c, const struct dkim_key_conf *k, const struct mxdkim_key *key,
             const char *label, const char *name, const struct dnsq_list *l)
{
	char err[256];
	bool split = false, one_matches = false;

	for (size_t i = 0; i < l->n; i++)
		one_matches = one_matches || mxdkim_txt_matches(key, l->v[i], err, sizeof err) == 0;
	if (one_matches) {
		/* RFC 6376 3.6.2.2: a verifier may pick any of them, or try each */
		check_add(
		    c, label, ST_WARN,
		    check_fmt("%s has %zu TXT records, one of them this key: verifiers that pick "
		              "another one fail the signature (RFC 6376 3.6.2.2)",
		              name, l->n),
		    record_fix(c, k, key, "delete the others and keep only"));
		return;
	}
	for (size_t i = 0; i < l->n && !split; i++)
		for (size_t j = 0; j < l->n && !split; j++) {
			char *joined = i == j ? NULL : check_fmt("%s%s", l->v[i], l->v[j]);

			split =
			    joined != NULL && mxdkim_txt_matches(key, joined, err, sizeof err) == 0;
			free(joined);
		}
	check_add(c, label, ST_FAIL,
	          split ? check_fmt("%s has the key split over %zu TXT records: the DNS panel "
	                            "published each 255-byte string as a record of its own; it "
	                            "must be ONE record of several strings (RFC 6376 3.6.2.2)",
	                            name, l->n)
	                : check_fmt("%s has %zu TXT records; verifiers need exactly one "
	                            "(RFC 6376 3.6.2.2)",
	                            name, l->n),
	          record_fix(c, k, key, "delete them and publish only"));
}

/* One TXT record: usable by verifiers (tools/dkimrec), then the same key as the file. */
static void
dkim_one(struct ctx *c, const struct dkim_key_conf *k, const struct mxdkim_key *key,
         const char *label, const char *name, const char *txt)
{
	struct dkimrec rec;
	char err[512], warns[600] = "";
	struct stat sb;
	bool fail;
	const char *first;

	if (dkimrec_parse(txt, &rec) != 0) {
		first = dkimrec_first(&rec, &fail);
		/* a key of the other type: "wrong k=" says more than the key's bytes */
		if (rec.k != DKIMREC_K_OTHER &&
		    (rec.k == DKIMREC_K_RSA) != (mxdkim_key_alg(key) == MXDKIM_RSA) &&
		    mxdkim_txt_matches(key, txt, err, sizeof err) != 0)
			first = err;
		check_add(c, label, ST_FAIL,
		          check_fmt("%s: verifiers refuse this record: %s%s", name, first,
		                    first == err ? " (RFC 6376 3.6.1, RFC 8463 4.2)" : ""),
		          record_fix(c, k, key, "replace it with"));
		return;
	}
	if (mxdkim_txt_matches(key, txt, err, sizeof err) != 0) {
		check_add(c, label, ST_FAIL,
		          check_fmt("%s does not match %s: %s; signatures fail to verify "
		                    "(RFC 6376 6.1.3)",
		                    name, k->path, err),
		          record_fix(c, k, key, "replace it with"));
		return;
	}
	c->dkim_pass++;
	for (size_t i = 0; i < rec.nnotes; i++) {
		size_t len = strlen(warns);

		snprintf(warns + len, sizeof warns - len, "%s%s", len ? "; " : "",
		         rec.notes[i].text);
	}
	if (warns[0])
		check_add(
		    c, label, ST_WARN, check_fmt("%s matches %s, but %s", name, k->path, warns),
		    rec.testing ? record_fix(c, k, key, "when tests are over, replace it with")
		                : record_fix(c, k, key, "replace it with"));
	else if (stat(k->path, &sb) == 0 && (sb.st_mode & S_IROTH))
		check_add(c, label, ST_WARN,
		          check_fmt("%s matches %s, but every user can read that key file", name,
		                    k->path),
		          check_fmt("chmod o-rwx %s", k->path));
	else
		check_add(c, label, ST_PASS,
		          check_fmt("%s matches %s (%s)", name, k->path,
		                    mxdkim_alg_name(mxdkim_key_alg(key))),
		          NULL);
}

static void
check_dkim_key(struct ctx *c, const struct dkim_key_conf *k)
{
	struct mxdkim_key *key = NULL;
	struct dnsq_list l = {NULL, 0};
	enum dnsq_status st;
	char name[64 + 300], label[128], err[512];

	snprintf(label, sizeof label, "dkim %s", k->selector);
	snprintf(name, sizeof name, "%s._domainkey.%s", k->selector, c->domain);
	if (mxdkim_key_load(&key, k->path, err, sizeof err) != 0) {
		check_add(c, label, ST_FAIL,
		          check_fmt("%s:%d: cannot load the key: %s", c->conf_name, k->line, err),
		          check_fmt("fix the path, or make a key: mxrelayctl dkim keygen %s %s",
		                    c->domain, k->selector));
		return;
	}
	if (!mxdkim_key_can_sign(key)) {
		/* RFC 8301 3.2: mxdkim_signer_add refuses RSA keys under 2048 bits */
		check_add(c, label, ST_FAIL,
		          check_fmt("%s:%d: %s is a %d-bit RSA key: the relay refuses to sign with "
		                    "less than 2048 bits (RFC 8301 3.2)",
		                    c->conf_name, k->line, k->path, mxdkim_key_bits(key)),
		          check_fmt("make a new key: mxrelayctl dkim keygen %s NEWSELECTOR, "
		                    "publish its record, then point the dkim_key line at it",
		                    c->domain));
		mxdkim_key_free(key);
		return;
	}
	st = dnsq_txt(name, &l);
	if (st == DNSQ_NXDOMAIN || st == DNSQ_NODATA)
		dkim_missing(c, k, key, label, name);
	else if (st != DNSQ_OK)
		check_add(c, label, ST_FAIL,
		          check_fmt("TXT lookup of %s: %s", name, dnsq_strerror(st)),
		          check_fmt("make %s's DNS answer, then check again", c->domain));
	else if (l.n > 1)
		dkim_several(c, k, key, label, name, &l);
	else
		dkim_one(c, k, key, label, name, l.v[0]);
	dnsq_list_free(&l);
	mxdkim_key_free(key);
}

void
check_dkim(struct ctx *c)
{
	int keys = 0;

	for (const struct dkim_key_conf *k = c->cfg->dkim_keys; k != NULL; k = k->next) {
		if (strcasecmp(k->domain, c->domain) != 0)
			continue;
		keys++;
		check_dkim_key(c, k);
	}
	if (keys == 0)
		check_add(
		    c, "dkim", ST_WARN,
		    check_fmt("%s has no dkim_key for %s: its mail goes out unsigned", c->conf_name,
		              c->domain),
		    check_fmt(
		        "mxrelayctl dkim keygen %s SELECTOR, add the dkim_key line, publish the "
		        "record",
		        c->domain));
}
