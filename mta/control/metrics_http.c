/*
 * metrics_http: the Prometheus endpoint, served by libmicrohttpd on its own
 * internal polling thread, bound only to metrics_listen.
 *
 * GET (or HEAD) /metrics answers the text format 0.0.4; any other path is
 * 404 and any other method 405. The request handler only renders the
 * atomics of metrics.c: it never touches the loop, the sessions or the
 * spool, so a slow or hostile scraper cannot stall mail. Connections are
 * capped and time out; the response is one bounded buffer.
 */
#include "mta/metrics.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mta/shared/config.h"
#include "mta/shared/log.h"
#include "mta/server.h"

#define METRICS_CONN_MAX 8           /* scrapers at once */
#define METRICS_TIMEOUT 10           /* seconds a connection may idle */
#define METRICS_BODY_MAX (64 * 1024) /* the fixed metric set renders to ~6 KiB */

static const char content_type[] = "text/plain; version=0.0.4; charset=utf-8";

static struct MHD_Daemon *mhd;
static char start_error[256]; /* last libmicrohttpd message while starting */

/* libmicrohttpd's own messages: into our log (and kept for the start-up error). */
static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[256], q[256];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strcspn(msg, "\r\n");
	msg[n] = '\0';
	snprintf(start_error, sizeof(start_error), "%s", msg);
	log_warn("event=metrics_http message=\"%s\"", log_sanitize(q, sizeof(q), msg, n));
}

static enum MHD_Result
respond(struct MHD_Connection *c, unsigned status, const char *type, char *body, size_t len,
        enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result ret;

	if (r == NULL) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
           const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	static char not_found[] = "not found: try /metrics\n";
	static char not_allowed[] = "method not allowed\n";
	char *body;
	size_t n;

	if (strcmp(url, "/metrics") != 0)
		return respond(c, MHD_HTTP_NOT_FOUND, "text/plain", not_found,
		               sizeof(not_found) - 1, MHD_RESPMEM_PERSISTENT);
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return respond(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", not_allowed,
		               sizeof(not_allowed) - 1, MHD_RESPMEM_PERSISTENT);
	body = malloc(METRICS_BODY_MAX);
	if (body == NULL)
		return MHD_NO;
	n = metrics_render(body, METRICS_BODY_MAX, time(NULL));
	if (n >= METRICS_BODY_MAX)
		n = METRICS_BODY_MAX - 1; /* cannot happen with the fixed set; never overrun */
	return respond(c, MHD_HTTP_OK, content_type, body, n, MHD_RESPMEM_MUST_FREE);
}

int
metrics_start(struct server *srv, char *err, size_t errlen)
{
	const struct config *c = srv->cfg;
	unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;

	if (c->metrics_addrlen == 0)
		return 0;
	if (c->metrics_addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	start_error[0] = '\0';
	mhd = MHD_start_daemon(
	    flags, 0, NULL, NULL, on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
	    MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&c->metrics_addr,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_CONN_MAX, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)METRICS_TIMEOUT, MHD_OPTION_END);
	if (mhd == NULL) {
		snprintf(err, errlen, "metrics_listen %s: cannot serve metrics: %s",
		         c->metrics_listen, start_error[0] ? start_error : strerror(errno));
		return -1;
	}
	metrics_poll_start(srv);
	log_info("event=metrics_listening address=%s", c->metrics_listen);
	return 0;
}

void
metrics_stop(void)
{
	metrics_poll_stop();
	if (mhd != NULL) {
		MHD_stop_daemon(mhd);
		mhd = NULL;
	}
}
