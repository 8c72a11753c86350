/*
 * ctl_check_dkim: the DKIM checks of mxrelayctl dns check (one per
 * configured key of the domain; see tools/ctl_check.c).
 */
#include "tools/ctl_check.h"
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

static void
check_dkim_key(struct ctx *c, const struct dkim_key_conf *k)
{
	struct mxdkim_key *key = NULL;
	struct dnsq_list l = {NULL, 0};
	enum dnsq_status st;
	char name[64 + 300], label[128], err[512];
	struct stat sb;

	snprintf(label, sizeof label, "dkim %s", k->selector);
	snprintf(name, sizeof name, "%s._domainkey.%s", k->selector, c->domain);
	if (mxdkim_key_load(&key, k->path, err, sizeof err) != 0) {
		check_add(c, label, ST_FAIL,
		          check_fmt("%s:%d: cannot load the key: %s", c->conf_name, k->line, err),
		          check_fmt("fix the path, or make a key: mxrelayctl dkim keygen %s %s",
		                    c->domain, k->selector));
		return;
	}
	st = dnsq_txt(name, &l);
	if (st == DNSQ_NXDOMAIN || st == DNSQ_NODATA) {
		check_add(
		    c, label, ST_FAIL, check_fmt("no DKIM record at %s", name),
		    check_fmt("publish the record printed by mxrelayctl dns dkim %s", c->domain));
	} else if (st != DNSQ_OK) {
		check_add(c, label, ST_FAIL,
		          check_fmt("TXT lookup of %s: %s", name, dnsq_strerror(st)),
		          check_fmt("make %s's DNS answer, then check again", c->domain));
	} else if (l.n > 1) {
		check_add(
		    c, label, ST_FAIL,
		    check_fmt(
		        "%s has %zu TXT records; verifiers need exactly one (RFC 6376 3.6.2.2)",
		        name, l.n),
		    check_fmt("keep only the record printed by mxrelayctl dns dkim %s", c->domain));
	} else if (mxdkim_txt_matches(key, l.v[0], err, sizeof err) != 0) {
		check_add(
		    c, label, ST_FAIL, check_fmt("%s does not match %s: %s", name, k->path, err),
		    check_fmt("publish the record printed by mxrelayctl dns dkim %s", c->domain));
	} else if (stat(k->path, &sb) == 0 && (sb.st_mode & S_IROTH)) {
		c->dkim_pass++;
		check_add(c, label, ST_WARN,
		          check_fmt("%s matches %s, but every user can read that key file", name,
		                    k->path),
		          check_fmt("chmod o-rwx %s", k->path));
	} else {
		c->dkim_pass++;
		check_add(c, label, ST_PASS,
		          check_fmt("%s matches %s (%s)", name, k->path,
		                    mxdkim_alg_name(mxdkim_key_alg(key))),
		          NULL);
	}
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
