/*
 * dkimsign: configured DKIM keys -> a dkim/ signer (see dkimsign.h).
 * The published-key check uses c-ares synchronously: it runs at start-up
 * and on SIGHUP only, before the loop or between its events.
 */
#include "mta/intake/dkimsign.h"

#include <ares.h>
#include <arpa/nameser.h>
#include <idn2.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dkim/signer.h"
#include "dkim/txt.h"
#include "mta/shared/config.h"
#include "mta/shared/log.h"
#include "mta/shared/util.h"
#include "mta/runas.h"

struct dkimsign {
	struct mxdkim_signer *signer;
	int refs;
};

/*
 * domain as the signer knows it: an internationalized one (SMTPUTF8, RFC
 * 6531) by its A-label, since d= carries A-labels only (RFC 8616 4) and keys
 * are configured that way. Returns domain itself when it is ASCII, buf with
 * the A-label, or NULL when it is not a valid IDN.
 */
static const char *
sign_domain(const char *domain, char *buf, size_t buflen)
{
	char *alabel = NULL;
	const char *p;

	for (p = domain; *p && (unsigned char)*p < 0x80; p++)
		;
	if (*p == '\0')
		return domain;
	if (idn2_to_ascii_8z(domain, &alabel, IDN2_NONTRANSITIONAL) != IDN2_OK)
		return NULL;
	if (strlen(alabel) >= buflen) {
		idn2_free(alabel);
		return NULL;
	}
	memcpy(buf, alabel, strlen(alabel) + 1);
	idn2_free(alabel);
	return buf;
}

struct txt_lookup {
	int done, status;
	char *text;	/* the TXT strings of the first record, joined */
};

static void
on_txt(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct txt_lookup *t = arg;
	struct ares_txt_ext *txt = NULL, *p;
	size_t n = 0;

	t->done = 1;
	t->status = status;
	if (status != ARES_SUCCESS || ares_parse_txt_reply_ext(abuf, alen, &txt) != ARES_SUCCESS)
		return;
	/* a DKIM key record may be split into several strings: join the first record's */
	for (p = txt; p; p = p->next) {
		if (p != txt && p->record_start)
			break;
		t->text = xrealloc(t->text, n + p->length + 1);
		memcpy(t->text + n, p->txt, p->length);
		n += p->length;
		t->text[n] = '\0';
	}
	ares_free_data(txt);
}

/* The published TXT value for SELECTOR._domainkey.DOMAIN, or NULL (why says). */
static char *
lookup_txt(const struct config *c, const char *name, char *why, size_t whylen)
{
	struct ares_options o;
	ares_channel ch;
	struct txt_lookup t = {0, 0, NULL};

	memset(&o, 0, sizeof(o));
	o.timeout = (int)c->dns_timeout_ms;
	o.tries = (int)c->dns_tries;
	if (ares_init_options(&ch, &o, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES) != ARES_SUCCESS) {
		snprintf(why, whylen, "resolver setup failed");
		return NULL;
	}
	if (c->dns_servers && ares_set_servers_ports_csv(ch, c->dns_servers) != ARES_SUCCESS) {
		snprintf(why, whylen, "bad dns_servers");
		ares_destroy(ch);
		return NULL;
	}
	ares_query(ch, name, ns_c_in, ns_t_txt, on_txt, &t);
	while (!t.done) {
		ares_socket_t socks[ARES_GETSOCK_MAXNUM];
		struct pollfd pfd[ARES_GETSOCK_MAXNUM];
		int bits = ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM), n = 0;
		struct timeval tv, *tvp;
		/* c-ares' macros shift a signed int by up to 31: test the bits unsigned */
		unsigned ub = (unsigned)bits;
		for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			bool r = (ub >> i) & 1u, w = (ub >> (i + ARES_GETSOCK_MAXNUM)) & 1u;
			if (!r && !w)
				continue;
			pfd[n].fd = socks[i];
			pfd[n].events = (short)((r ? POLLIN : 0) | (w ? POLLOUT : 0));
			pfd[n++].revents = 0;
		}
		tvp = ares_timeout(ch, NULL, &tv);
		poll(pfd, (nfds_t)n, tvp ? (int)(tvp->tv_sec * 1000 + tvp->tv_usec / 1000) : 1000);
		for (int i = 0; i < n; i++)
			ares_process_fd(ch, pfd[i].revents & POLLIN ? pfd[i].fd : ARES_SOCKET_BAD,
					pfd[i].revents & POLLOUT ? pfd[i].fd : ARES_SOCKET_BAD);
		if (n == 0)
			ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	}
	ares_destroy(ch);
	if (t.text == NULL)
		snprintf(why, whylen, "no TXT record at %s (%s)", name, ares_strerror(t.status));
	return t.text;
}

/* 0: publish check passed (or not required); -1: hold the key back (why says). */
static int
check_published(const struct config *c, const struct dkim_key_conf *kc,
		const struct mxdkim_key *key, char *why, size_t whylen)
{
	char name[512];
	char *txt;
	int rc;

	if (!c->dkim_require_published)
		return 0;
	snprintf(name, sizeof(name), "%s._domainkey.%s", kc->selector, kc->domain);
	txt = lookup_txt(c, name, why, whylen);
	if (txt == NULL)
		return -1;
	rc = mxdkim_txt_matches(key, txt, why, whylen);
	free(txt);
	return rc;
}

int
dkimsign_load(const struct config *c, struct dkimsign **out, char *err, size_t errlen)
{
	const struct dkim_key_conf *kc;
	struct dkimsign *d;
	const char *file = c->path ? c->path : "(default)";
	char e[512], fix[8400];

	*out = NULL;
	if (c->dkim_keys == NULL)
		return 0;
	d = xcalloc(1, sizeof(*d));
	d->refs = 1;
	d->signer = mxdkim_signer_new();
	if (d->signer == NULL) {
		snprintf(err, errlen, "%s: dkim_key: cannot initialise libopendkim", file);
		free(d);
		return -1;
	}
	for (kc = c->dkim_keys; kc; kc = kc->next) {
		struct mxdkim_key *key;
		char abuf[256];
		const char *alabel = sign_domain(kc->domain, abuf, sizeof(abuf));
		if (alabel != NULL && alabel != kc->domain) {
			snprintf(e, sizeof(e), "write the domain as its A-label: %s", alabel);
			goto fail;
		}
		if (mxdkim_key_load(&key, kc->path, e, sizeof(e)) != 0)
			goto fail;
		if (runas_key_exposed(kc->path, e, sizeof(e), fix, sizeof(fix)))
			log_warn("event=dkim_key_exposed path=%s reason=\"%s\" fix=\"%s\"", kc->path,
				 e, fix);
		if (check_published(c, kc, key, e, sizeof(e)) != 0) {
			log_warn("event=dkim_key_held domain=%s selector=%s reason=\"%s\"", kc->domain,
				 kc->selector, e);
			mxdkim_key_free(key);
			continue;
		}
		if (mxdkim_signer_add(d->signer, kc->domain, kc->selector, key, e, sizeof(e)) != 0)
			goto fail;
		log_info("event=dkim_key domain=%s selector=%s", kc->domain, kc->selector);
	}
	if (!mxdkim_signer_parsed_once(d->signer))
		log_warn("event=dkim_slow_path note=\"libopendkim parses the key for every signature "
			 "and leaks with Ed25519 keys: the key hand-off does not reach it\"");
	*out = d;
	return 0;
fail:
	snprintf(err, errlen, "%s:%d: dkim_key: %s", file, kc->line, e);
	mxdkim_signer_free(d->signer);
	free(d);
	return -1;
}

struct dkimsign *
dkimsign_ref(struct dkimsign *d)
{
	if (d)
		d->refs++;
	return d;
}

void
dkimsign_unref(struct dkimsign *d)
{
	if (d && --d->refs == 0) {
		mxdkim_signer_free(d->signer);
		free(d);
	}
}

bool
dkimsign_has(const struct dkimsign *d, const char *domain)
{
	char buf[256];

	if (d == NULL || domain == NULL || (domain = sign_domain(domain, buf, sizeof(buf))) == NULL)
		return false;
	return mxdkim_signer_has(d->signer, domain);
}

int
dkimsign_sign(const struct dkimsign *d, const char *domain, const char *msg, size_t len,
	      char **headers, char *err, size_t errlen)
{
	char buf[256];
	const char *name = sign_domain(domain, buf, sizeof(buf));

	if (name == NULL) {
		*headers = NULL;
		snprintf(err, errlen, "%.200s is not a valid internationalized domain name", domain);
		return -1;
	}
	return mxdkim_sign(d->signer, name, msg, len, headers, err, errlen);
}
