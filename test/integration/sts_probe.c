/*
 * sts_probe: drives the daemon's MTA-STS code (mta/delivery/sts.c with
 * https.c, the dns module and the spool's sts_policies) alone, for
 * it.test_mta_sts: the same pieces mxrelayd builds in deliver_new, from a
 * real mxrelay.conf, on a libevent loop, with the writer thread storing the
 * policies. Lines on stdin: "get DOMAIN" asks sts_get and prints the view
 * as one JSON line on stdout; "stats" prints the fetch counters
 * (mxrelay_sts_fetch_total); "post URL TEXT" POSTs TEXT with https_post and
 * prints the result; "reget DOMAIN" is "get" whose callback asks sts_get
 * again for DOMAIN (a waiter starting a new round; that view is printed
 * too); "sweep SECONDS" runs sts_sweep as at now + SECONDS and prints the
 * domains left; "entries" prints https_dns_entries of the probe's own
 * client (the one "post" uses); "quit" ends. Logs go where the config says.
 *     sts_probe CONFIG
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mta/async.h"
#include "mta/delivery/https.h"
#include "mta/delivery/resolver.h"
#include "mta/delivery/smtpc_tls.h"
#include "mta/delivery/sts.h"
#include "mta/metrics.h"
#include "mta/server.h"
#include "mta/shared/config.h"
#include "mta/shared/log.h"
#include "mta/writer.h"

struct probe {
	struct server srv;
	struct resolver *res;
	struct sts *sts;
	struct https *https; /* the probe's own, for "post" (TLS-RPT's use of https.c) */
	struct event *in;
	char buf[4096];
	size_t len;
};

/* JSON string: the views hold policy text from the network (printable expected). */
static void
jstr(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void
on_view(void *arg, const struct sts_view *v)
{
	char *domain = arg;

	printf("{\"domain\": ");
	jstr(domain);
	printf(", \"mode\": \"%s\", \"id\": ", sts_mode_name(v->mode));
	jstr(v->id);
	printf(", \"mx\": [");
	for (size_t i = 0; i < v->nmx; i++) {
		printf(i ? ", " : "");
		jstr(v->mx[i]);
	}
	printf("], \"problem\": \"%s\", \"detail\": ", tls_result_name(v->problem));
	jstr(v->problem_detail ? v->problem_detail : "");
	printf(", \"policy\": ");
	jstr(v->policy_text ? v->policy_text : "");
	printf("}\n");
	fflush(stdout);
	free(domain);
}

static struct probe *the_probe;

/* A waiter that starts a new round from its callback (sts.c round_end must cope). */
static void
on_view_reget(void *arg, const struct sts_view *v)
{
	char *domain = strdup(arg);

	on_view(arg, v);
	sts_get(the_probe->sts, domain, on_view, domain);
}

static void
on_posted(void *arg, const struct https_result *r)
{
	(void)arg;
	printf("{\"status\": \"%s\", \"http_code\": %ld, \"error\": ", https_status_name(r->status),
	       r->http_code);
	jstr(r->error);
	printf(", \"body\": ");
	jstr(r->body);
	printf("}\n");
	fflush(stdout);
}

static void
command(struct probe *p, char *line)
{
	char *sp;

	if (strncmp(line, "post ", 5) == 0 && (sp = strchr(line + 5, ' ')) != NULL) {
		*sp = '\0'; /* post URL BODY */
		if (https_post(p->https, line + 5, "application/tlsrpt+gzip", sp + 1,
		               strlen(sp + 1), on_posted, NULL) == NULL) {
			printf("{\"status\": \"refused\"}\n");
			fflush(stdout);
		}
		return;
	}
	if (strncmp(line, "get ", 4) == 0) {
		if (sts_get(p->sts, line + 4, on_view, strdup(line + 4)) == NULL) {
			printf("{\"error\": \"sts off\"}\n");
			fflush(stdout);
		}
	} else if (strncmp(line, "reget ", 6) == 0) {
		sts_get(p->sts, line + 6, on_view_reget, strdup(line + 6));
	} else if (strncmp(line, "sweep ", 6) == 0) {
		printf("{\"domains\": %zu}\n",
		       sts_sweep(p->sts, (int64_t)time(NULL) + strtol(line + 6, NULL, 10)));
		fflush(stdout);
	} else if (strcmp(line, "entries") == 0) {
		printf("{\"dns_entries\": %zu}\n", https_dns_entries(p->https));
		fflush(stdout);
	} else if (strcmp(line, "stats") == 0) {
		printf("{\"fetch_ok\": %llu, \"fetch_error\": %llu}\n",
		       (unsigned long long)metrics_counter(M_STS_FETCH_OK),
		       (unsigned long long)metrics_counter(M_STS_FETCH_ERR));
		fflush(stdout);
	} else if (strcmp(line, "quit") == 0) {
		event_base_loopexit(p->srv.base, NULL);
	}
}

static void
on_stdin(evutil_socket_t fd, short what, void *arg)
{
	struct probe *p = arg;
	ssize_t n = read((int)fd, p->buf + p->len, sizeof p->buf - p->len - 1);
	char *nl;

	(void)what;
	if (n <= 0) {
		event_base_loopexit(p->srv.base, NULL);
		return;
	}
	p->len += (size_t)n;
	p->buf[p->len] = '\0';
	while ((nl = strchr(p->buf, '\n')) != NULL) {
		*nl = '\0';
		command(p, p->buf);
		p->len -= (size_t)(nl + 1 - p->buf);
		memmove(p->buf, nl + 1, p->len + 1);
	}
}

static int
setup(struct probe *p, const char *conf, char *err, size_t errlen)
{
	struct dns_opts o = {0};

	if (config_load(&p->srv.cfg, conf, err, errlen) != 0)
		return -1;
	log_init("sts_probe", p->srv.cfg->log);
	p->srv.base = event_base_new();
	p->srv.client_tls = smtpc_tls_ctx_new(p->srv.cfg, err, errlen);
	if (p->srv.client_tls == NULL ||
	    (p->srv.async = async_new(p->srv.base, 1, err, errlen)) == NULL ||
	    (p->srv.writer = writer_new(p->srv.cfg->data_dir, NULL, p->srv.async, err, errlen)) ==
	        NULL)
		return -1;
	o.servers = p->srv.cfg->dns_servers;
	o.allow_private = p->srv.cfg->allow_private_mx;
	if ((p->res = resolver_new(p->srv.base, &o, err, errlen)) == NULL)
		return -1;
	p->sts = sts_new(&p->srv, p->res);
	p->https = https_new(p->srv.base, resolver_dns(p->res), p->srv.client_tls, err, errlen);
	if (p->https == NULL)
		return -1;
	p->in = event_new(p->srv.base, 0, EV_READ | EV_PERSIST, on_stdin, p);
	return event_add(p->in, NULL);
}

int
main(int argc, char **argv)
{
	static struct probe p;
	char err[512] = "";

	the_probe = &p;
	if (argc != 2) {
		fprintf(stderr, "usage: sts_probe CONFIG\n");
		return 2;
	}
	if (setup(&p, argv[1], err, sizeof err) != 0) {
		fprintf(stderr, "sts_probe: %s\n", err);
		return 1;
	}
	printf("{\"ready\": true}\n");
	fflush(stdout);
	event_base_dispatch(p.srv.base);
	/* the order of main.c: stored policies are durable before exit */
	writer_stop(p.srv.writer);
	async_free(p.srv.async);
	writer_free(p.srv.writer);
	sts_free(p.sts);
	https_free(p.https);
	resolver_free(p.res);
	event_free(p.in);
	SSL_CTX_free(p.srv.client_tls);
	event_base_free(p.srv.base);
	config_free(p.srv.cfg);
	return 0;
}
