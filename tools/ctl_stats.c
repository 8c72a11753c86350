/*
 * mxrelayctl stats: fetch the daemon's /metrics (metrics_listen in the
 * configuration) and print a readable summary, or --json.
 *
 * The client is a plain-socket HTTP/1.0 GET: one request to a loopback
 * address we configured ourselves, read to EOF with a size cap and a
 * timeout. That needs no TLS, redirects, proxies or keep-alive, so a
 * library such as libcurl would add a dependency (and its configuration
 * surface) to the tool for nothing.
 */
#include "tools/ctl.h"
#include "tools/json.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "mta/shared/config.h"

#define PROG "mxrelayctl stats"
#define RESP_MAX (1024 * 1024) /* the daemon's page is ~6 KiB */
#define TIMEOUT_S 5
#define SAMPLES_MAX 512
#define PREFIX "mxrelay_"

struct sample {
	char name[96];
	char label[64]; /* the one label's value ("size", "TLSv1.3", le "0.5"); "" none */
	double value;
};

struct page {
	struct sample s[SAMPLES_MAX];
	size_t n;
};

void
ctl_stats_usage(FILE *f)
{
	fputs("  stats [-c CONF] [--json]\n"
	      "      counters, queue and latencies from the running daemon's metrics\n"
	      "      endpoint (metrics_listen in CONF)\n",
	      f);
}

static int
usage_error(const char *what, const char *arg)
{
	return ctl_usage_error(PROG, ctl_stats_usage, what, arg);
}

/* Connect to the metrics address; a wildcard bind is reached over loopback. */
static int
dial(const struct config *c, char *err, size_t errlen)
{
	struct sockaddr_storage ss = c->metrics_addr;
	struct timeval tv = {TIMEOUT_S, 0};
	int fd;

	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		if (s4->sin_addr.s_addr == htonl(INADDR_ANY))
			s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		if (IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr))
			s6->sin6_addr = in6addr_loopback;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	/* on Linux SO_SNDTIMEO also bounds connect() */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&ss, c->metrics_addrlen) != 0) {
		snprintf(err, errlen, "cannot connect to %s: %s (is mxrelayd running?)",
		         c->metrics_listen, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* GET /metrics; the body (NUL-terminated, malloc'd) or NULL with err. */
static char *
fetch(const struct config *c, char *err, size_t errlen)
{
	char req[512], *buf = NULL, *body;
	size_t len = 0;
	ssize_t k = 0;
	int fd = dial(c, err, errlen), n;

	if (fd < 0)
		return NULL;
	n = snprintf(req, sizeof req,
	             "GET /metrics HTTP/1.0\r\nHost: %s\r\nUser-Agent: mxrelayctl\r\n\r\n",
	             c->metrics_listen);
	if (write(fd, req, (size_t)n) != n) {
		snprintf(err, errlen, "%s: write: %s", c->metrics_listen, strerror(errno));
		goto fail;
	}
	if ((buf = malloc(RESP_MAX + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	while (len < RESP_MAX && (k = read(fd, buf + len, RESP_MAX - len)) > 0)
		len += (size_t)k;
	if (len < RESP_MAX && k < 0) {
		snprintf(err, errlen, "%s: read: %s", c->metrics_listen, strerror(errno));
		goto fail;
	}
	buf[len] = '\0';
	if (len < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || strncmp(buf + 8, " 200", 4) != 0) {
		snprintf(err, errlen, "%s: unexpected answer: %.*s", c->metrics_listen,
		         (int)strcspn(buf, "\r\n"), buf);
		goto fail;
	}
	if ((body = strstr(buf, "\r\n\r\n")) == NULL) {
		snprintf(err, errlen, "%s: truncated answer", c->metrics_listen);
		goto fail;
	}
	memmove(buf, body + 4, strlen(body + 4) + 1);
	close(fd);
	return buf;
fail:
	free(buf);
	close(fd);
	return NULL;
}

/* "name{k=\"v\"} 12" -> sample. Lines we don't understand are skipped. */
static void
parse_line(struct page *p, const char *ln)
{
	struct sample *s = &p->s[p->n];
	const char *q = ln + strcspn(ln, "{ "), *val;
	size_t nl = (size_t)(q - ln);
	char *end;

	if (p->n >= SAMPLES_MAX || ln[0] == '#' || ln[0] == '\0' || nl >= sizeof s->name ||
	    strncmp(ln, PREFIX, strlen(PREFIX)) != 0)
		return;
	memset(s, 0, sizeof *s);
	memcpy(s->name, ln + strlen(PREFIX), nl - strlen(PREFIX));
	val = q;
	if (*q == '{') {
		const char *v = strchr(q, '"'), *e = v ? strchr(v + 1, '"') : NULL;
		if (e == NULL || (size_t)(e - v - 1) >= sizeof s->label)
			return;
		memcpy(s->label, v + 1, (size_t)(e - v - 1));
		val = strchr(e, '}');
		if (val == NULL)
			return;
		val++;
	}
	s->value = strtod(val, &end);
	if (end == val)
		return;
	p->n++;
}

static void
parse_page(struct page *p, char *body)
{
	char *save = NULL, *ln;
	for (ln = strtok_r(body, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save))
		parse_line(p, ln);
}

static double
get(const struct page *p, const char *name, const char *label)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->s[i].name, name) == 0 &&
		    strcmp(p->s[i].label, label ? label : "") == 0)
			return p->s[i].value;
	return 0;
}

/* Counters with one label: "size 1, relay 2" (non-zero ones), or "" */
static void
labelled(const struct page *p, const char *name, char *out, size_t len)
{
	size_t o = 0;
	out[0] = '\0';
	for (size_t i = 0; i < p->n && o < len; i++) {
		const struct sample *s = &p->s[i];
		if (strcmp(s->name, name) != 0 || s->value == 0)
			continue;
		int w = snprintf(out + o, len - o, "%s%s %.0f", o ? ", " : "", s->label, s->value);
		o += w > 0 ? (size_t)w : 0;
	}
}

static void
duration(char *out, size_t len, double s)
{
	long t = (long)s;
	if (t >= 86400)
		snprintf(out, len, "%ldd%02ldh", t / 86400, t % 86400 / 3600);
	else if (t >= 3600)
		snprintf(out, len, "%ldh%02ldm", t / 3600, t % 3600 / 60);
	else if (t >= 60)
		snprintf(out, len, "%ldm%02lds", t / 60, t % 60);
	else
		snprintf(out, len, "%lds", t);
}

/* "40, mean 0.012 s, 90% within 0.05 s" from a histogram's buckets. */
static void
hist_line(const struct page *p, const char *base, char *out, size_t len)
{
	char bucket[96], sum[96], count[96];
	double n, total, q90 = -1;

	snprintf(bucket, sizeof bucket, "%s_bucket", base);
	snprintf(sum, sizeof sum, "%s_sum", base);
	snprintf(count, sizeof count, "%s_count", base);
	n = get(p, count, NULL);
	total = get(p, sum, NULL);
	if (n <= 0) {
		snprintf(out, len, "none yet");
		return;
	}
	/* the smallest bucket bound holding 90%: an upper bound, as buckets allow */
	for (size_t i = 0; i < p->n && q90 < 0; i++)
		if (strcmp(p->s[i].name, bucket) == 0 && p->s[i].value >= 0.9 * n &&
		    strcmp(p->s[i].label, "+Inf") != 0)
			q90 = strtod(p->s[i].label, NULL);
	if (q90 >= 0)
		snprintf(out, len, "%.0f, mean %.3f s, 90%% within %g s", n, total / n, q90);
	else
		snprintf(out, len, "%.0f, mean %.3f s", n, total / n);
}

static void
print_text(const struct page *p, const struct config *c)
{
	char rej[256], tls[256], age[32], dns[128], dlv[128];

	labelled(p, "rejected_total", rej, sizeof rej);
	labelled(p, "tls_sessions_total", tls, sizeof tls);
	duration(age, sizeof age, get(p, "queue_oldest_age_seconds", NULL));
	hist_line(p, "dns_lookup_seconds", dns, sizeof dns);
	hist_line(p, "delivery_attempt_seconds", dlv, sizeof dlv);
	double nrej = 0;
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->s[i].name, "rejected_total") == 0)
			nrej += p->s[i].value;
	printf("mxrelayd metrics from %s\n", c->metrics_listen);
	printf("  messages:    %.0f accepted, %.0f rejected%s%s%s\n",
	       get(p, "accepted_total", NULL), nrej, rej[0] ? " (" : "", rej, rej[0] ? ")" : "");
	printf("  recipients:  %.0f delivered, %.0f deferred, %.0f bounced\n",
	       get(p, "delivered_total", NULL), get(p, "deferred_total", NULL),
	       get(p, "bounced_total", NULL));
	printf("  queue:       %.0f messages, oldest %s; %.0f held\n",
	       get(p, "queue_messages", "queued"),
	       get(p, "queue_messages", "queued") + get(p, "queue_messages", "held") > 0 ? age : "-",
	       get(p, "queue_messages", "held"));
	printf("  sessions:    %.0f open, %.0f since start\n", get(p, "sessions", NULL),
	       get(p, "sessions_total", NULL));
	printf("  TLS clients: %s\n", tls[0] ? tls : "none yet");
	printf("  AUTH:        %.0f succeeded, %.0f failed\n", get(p, "auth_total", "success"),
	       get(p, "auth_total", "failure"));
	printf("  DNS lookups: %s\n", dns);
	printf("  deliveries:  %s\n", dlv);
}

/* JSON: one key per metric (prefix dropped); a labelled family becomes an object. */
static void
print_json(const struct page *p)
{
	size_t i, j;
	int first = 1;

	fputs("{", stdout);
	for (i = 0; i < p->n; i++) {
		const struct sample *s = &p->s[i];
		for (j = 0; j < i && strcmp(p->s[j].name, s->name) != 0; j++)
			;
		if (j < i)
			continue; /* family already printed */
		printf("%s\n  ", first ? "" : ",");
		json_write_str(stdout, s->name); /* text from an HTTP page: strict JSON */
		fputs(": ", stdout);
		first = 0;
		if (s->label[0] == '\0') {
			printf("%.17g", s->value);
			continue;
		}
		fputs("{", stdout);
		for (j = i; j < p->n; j++)
			if (strcmp(p->s[j].name, s->name) == 0) {
				fputs(j == i ? "" : ", ", stdout);
				json_write_str(stdout, p->s[j].label);
				printf(": %.17g", p->s[j].value);
			}
		fputs("}", stdout);
	}
	fputs("\n}\n", stdout);
}

int
ctl_stats(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static struct page page;
	const char *conf = NULL;
	struct config *c = NULL;
	char err[512], *body;
	int ch, json = 0;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			conf = optarg;
			break;
		case 'j':
			json = 1;
			break;
		default:
			return ctl_opt_end(ch, argv, PROG, ctl_stats_usage);
		}
	}
	if (optind != argc)
		return usage_error("unexpected argument", argv[optind]);
	if (ctl_load_config(PROG, conf, &c) != 0)
		return 1;
	if (c->metrics_addrlen == 0) {
		fprintf(stderr,
		        PROG ": metrics are off in %s: set metrics_listen = 127.0.0.1:9125\n",
		        ctl_config_name(c));
		config_free(c);
		return 1;
	}
	if ((body = fetch(c, err, sizeof err)) == NULL) {
		fprintf(stderr, PROG ": %s\n", err);
		config_free(c);
		return 1;
	}
	page.n = 0;
	parse_page(&page, body);
	free(body);
	if (json)
		print_json(&page);
	else
		print_text(&page, c);
	config_free(c);
	return 0;
}
