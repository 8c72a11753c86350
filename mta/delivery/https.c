/* https: libcurl multi on the libevent loop (see https.h). */
#include "mta/delivery/https.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"
#include "mta/event.h"
#include "mta/shared/util.h"

#define POST_MAX_BODY 65536
#define RESOLVE_ADDRS 4 /* addresses handed to curl per host */

struct https {
	struct event_base *base;
	struct dns *dns;
	SSL_CTX *trust; /* one reference held; NULL: curl's default CA paths */
	CURLM *multi;
	struct event *timer;
	struct https_req *reqs; /* every live request */
	/*
	 * CURLOPT_RESOLVE entries without '+' never expire in the multi
	 * handle's DNS cache: each ended host is withdrawn ("-HOST:PORT") with
	 * the next transfer, so the cache holds live hosts and the last few.
	 */
	struct curl_slist *stale;  /* "-HOST:PORT" waiting for the next transfer */
	struct curl_slist *cached; /* "HOST:PORT" handed to curl, not withdrawn */
};

/* One socket curl wants watched (curl_multi_assign keeps it with the socket). */
struct hsock {
	struct https *h;
	curl_socket_t fd;
	struct event *ev;
};

struct https_req {
	struct https *h;
	struct https_req *next, *prev;
	struct dns_query *dq; /* while resolving */
	CURL *easy;           /* once resolved: in the multi handle */
	char *url, *host;
	long port;
	char *want_type; /* GET: wanted media type, NULL: any */
	size_t max_body;
	bool post;
	bool done; /* curl finished the transfer: its CURLOPT_RESOLVE list was applied */
	char *post_body;
	size_t post_len;
	struct curl_slist *headers, *resolve;
	char *buf; /* response body, NUL-terminated */
	size_t len;
	bool too_big;
	https_cb cb;
	void *arg;
	char errbuf[CURL_ERROR_SIZE];
};

const char *
https_status_name(enum https_status s)
{
	static const char *const names[] = {"ok",      "dns",         "connect",      "certificate",
	                                    "tls",     "http-status", "content-type", "too-large",
	                                    "timeout", "other"};

	return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "other";
}

/* ---- the DNS cache entries handed to curl ---------------------------------- */

static bool
slist_has(const struct curl_slist *l, const char *s)
{
	for (; l; l = l->next)
		if (strcmp(l->data, s) == 0)
			return true;
	return false;
}

/* l without its first item equal to s. */
static struct curl_slist *
slist_del(struct curl_slist *l, const char *s)
{
	struct curl_slist **pp = &l, *n;

	while ((n = *pp) != NULL && strcmp(n->data, s) != 0)
		pp = &n->next;
	if (n) {
		*pp = n->next;
		n->next = NULL;
		curl_slist_free_all(n);
	}
	return l;
}

static struct curl_slist *
slist_add(struct curl_slist *l, const char *s)
{
	struct curl_slist *n = slist_has(l, s) ? l : curl_slist_append(l, s);

	return n ? n : l; /* out of memory: the entry is only kept a little longer */
}

/* Another live request for r's host and port (it will hand its own entry). */
static bool
host_live(const struct https_req *r)
{
	for (const struct https_req *o = r->h->reqs; o; o = o->next)
		if (o != r && o->host && o->port == r->port && strcmp(o->host, r->host) == 0)
			return true;
	return false;
}

/*
 * r's transfer is over: withdraw its host from curl's cache with the next
 * transfer. A transfer curl never started did not apply the withdrawals r
 * carried: they wait for the next one again.
 */
static void
resolve_release(struct https_req *r)
{
	struct https *h = r->h;
	char key[300];

	for (const struct curl_slist *l = r->resolve; !r->done && l; l = l->next)
		if (l->data[0] == '-') {
			h->stale = slist_add(h->stale, l->data);
			h->cached = slist_add(h->cached, l->data + 1);
		}
	snprintf(key, sizeof key, "-%s:%ld", r->host, r->port);
	if (!host_live(r) && slist_has(h->cached, key + 1))
		h->stale = slist_add(h->stale, key);
}

static void
req_free(struct https_req *r)
{
	struct https *h = r->h;

	if (r->dq)
		dns_cancel(r->dq);
	if (r->easy) {
		curl_multi_remove_handle(h->multi, r->easy); /* may call on_socket */
		curl_easy_cleanup(r->easy);
	}
	if (r->resolve)
		resolve_release(r);
	if (r->prev)
		r->prev->next = r->next;
	else
		h->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	curl_slist_free_all(r->headers);
	curl_slist_free_all(r->resolve);
	free(r->url);
	free(r->host);
	free(r->want_type);
	free(r->post_body);
	free(r->buf);
	free(r);
}

/* Deliver the outcome and free r (the callback may cancel other requests). */
static void
req_finish(struct https_req *r, struct https_result *res)
{
	https_cb cb = r->cb;
	void *arg = r->arg;

	if (res->body == NULL) {
		res->body = r->buf ? r->buf : "";
		res->len = r->buf ? r->len : 0;
	}
	if (res->content_type == NULL)
		res->content_type = "";
	/* r's buffers stay alive through the callback; r is unlinked after */
	cb(arg, res);
	req_free(r);
}

static void
fail(struct https_req *r, enum https_status st, const char *detail)
{
	struct https_result res = {.status = st};

	snprintf(res.error, sizeof res.error, "%s", detail);
	req_finish(r, &res);
}

/* ---- curl <-> libevent -------------------------------------------------- */

static void check_done(struct https *h);

static void
on_io(evutil_socket_t fd, short what, void *arg)
{
	struct https *h = arg;
	int running, flags = ((what & EV_READ) ? CURL_CSELECT_IN : 0) |
	                     ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);

	curl_multi_socket_action(h->multi, (curl_socket_t)fd, flags, &running);
	check_done(h);
}

static void
on_timer(void *arg)
{
	struct https *h = arg;
	int running;

	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(h);
}

/* CURLMOPT_TIMERFUNCTION: -1 stops the timer; 0 means "soon" (never act from here). */
static int
on_curl_timer(CURLM *m, long ms, void *arg)
{
	struct https *h = arg;

	(void)m;
	if (ms < 0)
		loop_timer_stop(h->timer);
	else
		loop_timer_add(h->timer, (unsigned)ms);
	return 0;
}

/* CURLMOPT_SOCKETFUNCTION: (re)register fd for what curl wants, or forget it. */
static int
on_socket(CURL *e, curl_socket_t fd, int what, void *arg, void *sockp)
{
	struct https *h = arg;
	struct hsock *s = sockp;
	short ev = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) |
	                   ((what & CURL_POLL_OUT) ? EV_WRITE : 0));

	(void)e;
	if (s && s->ev) {
		event_free(s->ev); /* also from inside s->ev's own callback: allowed */
		s->ev = NULL;
	}
	if (what == CURL_POLL_REMOVE) {
		free(s);
		curl_multi_assign(h->multi, fd, NULL);
		return 0;
	}
	if (s == NULL) {
		s = xcalloc(1, sizeof *s);
		s->h = h;
		s->fd = fd;
		curl_multi_assign(h->multi, fd, s);
	}
	s->ev = event_new(h->base, fd, (short)(ev | EV_PERSIST), on_io, h);
	if (s->ev)
		event_add(s->ev, NULL);
	return 0;
}

/* The media type of a Content-Type value, parameters and case ignored (RFC 9110 8.3.1). */
static bool
type_is(const char *ct, const char *want)
{
	size_t n = strcspn(ct, ";");

	while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	return n == strlen(want) && util_strncaseeq(ct, want, n);
}

static enum https_status
curl_status(CURLcode rc, const struct https_req *r)
{
	switch (rc) {
	case CURLE_OK:
		return HTTPS_OK;
	case CURLE_PEER_FAILED_VERIFICATION:
		return HTTPS_E_CERT;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_USE_SSL_FAILED:
		return HTTPS_E_TLS;
	case CURLE_COULDNT_CONNECT:
		return HTTPS_E_CONNECT;
	case CURLE_OPERATION_TIMEDOUT:
		return HTTPS_E_TIMEOUT;
	case CURLE_FILESIZE_EXCEEDED:
		return HTTPS_E_SIZE;
	case CURLE_WRITE_ERROR:
		return r->too_big ? HTTPS_E_SIZE : HTTPS_E_OTHER;
	default:
		return HTTPS_E_OTHER;
	}
}

/* One finished transfer: judge it against what was asked. */
static void
done_one(struct https_req *r, CURLcode rc)
{
	struct https_result res = {.status = curl_status(rc, r)};
	const char *ct = NULL;
	bool ok_code;

	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &res.http_code);
	if (curl_easy_getinfo(r->easy, CURLINFO_CONTENT_TYPE, &ct) != CURLE_OK || ct == NULL)
		ct = "";
	res.content_type = ct;
	ok_code = r->post ? res.http_code / 100 == 2 : res.http_code == 200;
	if (res.status == HTTPS_E_SIZE)
		snprintf(res.error, sizeof res.error, "body larger than %zu bytes", r->max_body);
	else if (res.status != HTTPS_OK)
		snprintf(res.error, sizeof res.error, "%s",
		         r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc));
	else if (!ok_code && (res.status = HTTPS_E_HTTP) == HTTPS_E_HTTP)
		snprintf(res.error, sizeof res.error, "HTTP status %ld%s", res.http_code,
		         res.http_code / 100 == 3 ? " (redirects are not followed)" : "");
	else if (r->want_type && !type_is(ct, r->want_type) && (res.status = HTTPS_E_TYPE))
		snprintf(res.error, sizeof res.error, "Content-Type \"%.100s\", not %s", ct,
		         r->want_type);
	req_finish(r, &res);
}

static void
check_done(struct https *h)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
		struct https_req *r = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		if (r) {
			r->done = true;
			done_one(r, m->data.result);
		}
	}
}

/* ---- request setup ------------------------------------------------------ */

static size_t
on_write(char *p, size_t size, size_t n, void *arg)
{
	struct https_req *r = arg;
	size_t len = size * n;

	if (len > r->max_body - r->len) {
		r->too_big = true; /* a cap beyond MAXFILESIZE: chunked bodies have no length */
		return 0;
	}
	r->buf = xrealloc(r->buf, r->len + len + 1);
	memcpy(r->buf + r->len, p, len);
	r->len += len;
	r->buf[r->len] = '\0';
	return len;
}

/* CURLOPT_SSL_CTX_FUNCTION: verify against the SMTP client's store (tls_ca_file). */
static CURLcode
on_ssl_ctx(CURL *e, void *sslctx, void *arg)
{
	struct https *h = arg;
	X509_STORE *st = SSL_CTX_get_cert_store(h->trust);

	(void)e;
	if (st == NULL || X509_STORE_up_ref(st) != 1)
		return CURLE_SSL_CERTPROBLEM;
	SSL_CTX_set_cert_store(sslctx, st);
	return CURLE_OK;
}

static int
easy_opts(struct https_req *r)
{
	CURL *e = r->easy;
	int bad = 0;

	bad |= curl_easy_setopt(e, CURLOPT_URL, r->url);
	bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	bad |= curl_easy_setopt(e, CURLOPT_RESOLVE, r->resolve);
	bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
	bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L); /* RFC 8461 3.3 */
	bad |= curl_easy_setopt(e, CURLOPT_PROXY, "");          /* never the environment's */
	bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	bad |= curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)HTTPS_TIMEOUT_MS);
	bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)HTTPS_CONNECT_TIMEOUT_MS);
	bad |= curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max_body);
	bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "mxrelay/" MXRELAY_VERSION);
	if (r->h->trust) {
		bad |= curl_easy_setopt(e, CURLOPT_CAINFO, NULL);
		bad |= curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
		bad |= curl_easy_setopt(e, CURLOPT_CA_CACHE_TIMEOUT, 0L);
		bad |= curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
		bad |= curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, r->h);
	}
	if (r->post) {
		bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->post_body);
		bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->post_len);
		bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
	}
	return bad ? -1 : 0;
}

/*
 * r's CURLOPT_RESOLVE list: the withdrawals of ended hosts (curl applies
 * them when this transfer starts), then entry, r's own host. Its own host
 * needs no withdrawal: the new entry replaces the old one.
 */
static int
resolve_list(struct https_req *r, const char *entry)
{
	struct https *h = r->h;
	struct curl_slist *l = NULL, *n;
	char key[300];

	snprintf(key, sizeof key, "%s:%ld", r->host, r->port);
	while ((n = h->stale) != NULL) {
		h->stale = n->next;
		n->next = NULL;
		if (strcmp(n->data + 1, key) == 0) {
			curl_slist_free_all(n);
			continue;
		}
		h->cached = slist_del(h->cached, n->data + 1);
		if (l == NULL)
			l = n;
		else {
			struct curl_slist *t = l;
			while (t->next)
				t = t->next;
			t->next = n;
		}
	}
	if ((n = curl_slist_append(l, entry)) == NULL) {
		r->resolve = l; /* given back by req_free: not applied */
		return -1;
	}
	r->resolve = n;
	h->cached = slist_add(h->cached, key);
	return 0;
}

/* "host:port:addr1,addr2" for CURLOPT_RESOLVE (IPv6 in brackets). */
static int
resolve_entry(struct https_req *r, const struct dns_mx_result *res)
{
	char line[600], a[INET6_ADDRSTRLEN];
	size_t off = (size_t)snprintf(line, sizeof line, "%s:%ld:", r->host, r->port);

	for (size_t i = 0; i < res->ntargets && i < RESOLVE_ADDRS; i++) {
		const struct sockaddr_storage *ss = &res->targets[i].addr;
		const void *ip = ss->ss_family == AF_INET6
		                     ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
		                     : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;
		if (inet_ntop(ss->ss_family, ip, a, sizeof a) == NULL)
			continue;
		off += (size_t)snprintf(line + off, sizeof line - off,
		                        ss->ss_family == AF_INET6 ? "%s[%s]" : "%s%s",
		                        line[off - 1] == ':' ? "" : ",", a);
		if (off >= sizeof line)
			return -1;
	}
	if (line[off - 1] == ':')
		return -1;
	return resolve_list(r, line);
}

static void
on_addrs(void *arg, const struct dns_mx_result *res)
{
	struct https_req *r = arg;

	r->dq = NULL;
	if (res->status != DNS_OK || res->ntargets == 0) {
		fail(r, HTTPS_E_DNS, res->reason[0] ? res->reason : dns_strerror(res->status));
		return;
	}
	if (resolve_entry(r, res) != 0) {
		fail(r, HTTPS_E_DNS, "no usable address");
		return;
	}
	if ((r->easy = curl_easy_init()) == NULL || easy_opts(r) != 0) {
		fail(r, HTTPS_E_OTHER, "cannot set up the transfer");
		return;
	}
	if (curl_multi_add_handle(r->h->multi, r->easy) != CURLM_OK) {
		curl_easy_cleanup(r->easy);
		r->easy = NULL;
		fail(r, HTTPS_E_OTHER, "cannot start the transfer");
	}
}

/* https://HOST[:PORT]/... with HOST a DNS name (not an address literal). */
static int
parse_url(struct https_req *r, const char *url)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL;
	struct in6_addr a6;
	int rc = -1;

	if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
		goto done;
	if (strcmp(scheme, "https") != 0 || host[0] == '[' || inet_pton(AF_INET, host, &a6) == 1)
		goto done;
	r->host = xstrdup(host);
	r->port = strtol(port, NULL, 10);
	r->url = xstrdup(url);
	rc = r->port > 0 && r->port < 65536 ? 0 : -1;
done:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

static struct https_req *
req_start(struct https *h, struct https_req *r)
{
	r->h = h;
	r->next = h->reqs;
	if (h->reqs)
		h->reqs->prev = r;
	h->reqs = r;
	r->dq = dns_resolve_addrs(h->dns, r->host, on_addrs, r);
	if (r->dq == NULL) {
		r->cb = NULL;
		req_free(r);
		return NULL;
	}
	return r;
}

/* A request for url owned by h with its callback set, or NULL when url does not parse. */
static struct https_req *
req_new(struct https *h, const char *url, https_cb cb, void *arg)
{
	struct https_req *r = xcalloc(1, sizeof *r);

	r->h = h;
	if (parse_url(r, url) != 0) {
		free(r->host);
		free(r->url);
		free(r);
		return NULL;
	}
	r->cb = cb;
	r->arg = arg;
	return r;
}

struct https_req *
https_get(struct https *h, const char *url, const char *want_type, size_t max_body, https_cb cb,
          void *arg)
{
	struct https_req *r = req_new(h, url, cb, arg);

	if (r == NULL)
		return NULL;
	r->want_type = want_type ? xstrdup(want_type) : NULL;
	r->max_body = max_body;
	return req_start(h, r);
}

struct https_req *
https_post(struct https *h, const char *url, const char *content_type, const void *body, size_t len,
           https_cb cb, void *arg)
{
	struct https_req *r = req_new(h, url, cb, arg);
	char hdr[256];

	if (r == NULL)
		return NULL;
	snprintf(hdr, sizeof hdr, "Content-Type: %s", content_type);
	r->headers = curl_slist_append(NULL, hdr);
	r->post = true;
	r->post_body = xmalloc(len ? len : 1);
	memcpy(r->post_body, body, len);
	r->post_len = len;
	r->max_body = POST_MAX_BODY;
	return req_start(h, r);
}

void
https_cancel(struct https_req *r)
{
	if (r)
		req_free(r);
}

struct https *
https_new(struct event_base *base, struct dns *dns, struct ssl_ctx_st *trust, char *err,
          size_t errlen)
{
	struct https *h = xcalloc(1, sizeof *h);

	/* the loop thread is the only curl user; OpenSSL is initialised already */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "https: curl_global_init failed");
		free(h);
		return NULL;
	}
	h->base = base;
	h->dns = dns;
	h->multi = curl_multi_init();
	h->timer = loop_timer_new(base, false, on_timer, h);
	if (h->multi == NULL || h->timer == NULL) {
		snprintf(err, errlen, "https: cannot create the curl multi handle");
		https_free(h);
		return NULL;
	}
	if (trust && SSL_CTX_up_ref(trust) == 1)
		h->trust = trust;
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	return h;
}

void
https_set_trust(struct https *h, SSL_CTX *trust)
{
	if (h == NULL || trust == NULL || SSL_CTX_up_ref(trust) != 1)
		return;
	SSL_CTX_free(h->trust);
	h->trust = trust;
}

void
https_free(struct https *h)
{
	if (h == NULL)
		return;
	while (h->reqs)
		req_free(h->reqs);
	if (h->multi)
		curl_multi_cleanup(h->multi); /* closes its sockets through on_socket */
	loop_timer_free(h->timer);
	curl_slist_free_all(h->stale);
	curl_slist_free_all(h->cached);
	SSL_CTX_free(h->trust);
	curl_global_cleanup();
	free(h);
}

size_t
https_dns_entries(const struct https *h)
{
	size_t n = 0;

	for (const struct curl_slist *l = h->cached; l; l = l->next)
		n++;
	return n;
}
