/*
 * mxrelayctl unblock: the failed-AUTH blocks of the running daemon
 * (mta/smtpd/peers.c: auth_max_failures failures within auth_block_time
 * and the address gets 454 4.7.0 until the block ends), listed or lifted
 * through its control socket (BLOCKS, UNBLOCK: mta/control/ops.c). A
 * device whose password was fixed need not wait for auth_block_time.
 * IPv6 clients are counted per /64, so an IPv6 address lifts its /64.
 */
#include "tools/ctl.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mta/shared/config.h"
#include "tools/ctlsock.h"
#include "tools/json.h"

#define PROG "mxrelayctl unblock"

struct uopts {
	const char *conf, *socket;
	bool json, list, all;
};

void
ctl_unblock_usage(FILE *f)
{
	fputs("  unblock [-c FILE | --socket PATH] [--json] IP|CIDR | --all | --list\n"
	      "      lift the failed-AUTH block (454 4.7.0 after auth_max_failures) of an\n"
	      "      address, of the addresses in a CIDR, or of all, in the running daemon;\n"
	      "      prints what was cleared. IPv6 failures count per /64: an IPv6 address\n"
	      "      lifts its /64. --list: the addresses with failures (address, failures,\n"
	      "      blocked until). Exit 1 when IP|CIDR had nothing to clear.\n"
	      "      Through control_socket of FILE (default " CTL_DEFAULT_CONF " if present;\n"
	      "      root and the group mxrelay may use it)\n",
	      f);
}

static int
usage_error(const char *what, const char *arg)
{
	return ctl_usage_error(PROG, ctl_unblock_usage, what, arg);
}

/* "blocked until 2026-12-06 21:40:00 (9m left)" or "not blocked". */
static void
block_text(const struct json *b, int64_t now, char *out, size_t len)
{
	const struct json *u = json_get(b, "blocked_until");
	char day[32];
	time_t t;
	struct tm tm;

	if (u == NULL || u->type != JSON_NUM || u->i <= now) {
		snprintf(out, len, "not blocked");
		return;
	}
	t = (time_t)u->i;
	localtime_r(&t, &tm);
	strftime(day, sizeof(day), "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(out, len, "blocked until %s (%llds left)", day, (long long)(u->i - now));
}

static void
print_entries(const struct json *doc, const char *key, const char *verb)
{
	const struct json *v = json_get(doc, key);
	int64_t now = json_geti(doc, "now", (int64_t)time(NULL));
	char when[96];

	for (size_t i = 0; v && i < v->n; i++) {
		const struct json *b = v->v[i];
		block_text(b, now, when, sizeof(when));
		printf("%s%s%s/%lld: %lld failure%s, %s\n", verb, *verb ? " " : "",
		       json_gets(b, "address") ? json_gets(b, "address") : "?",
		       (long long)json_geti(b, "prefix", 0), (long long)json_geti(b, "failures", 0),
		       json_geti(b, "failures", 0) == 1 ? "" : "s", when);
	}
	if (v && (int64_t)v->n < json_geti(doc, "count", 0))
		printf("... %lld in all\n", (long long)json_geti(doc, "count", 0));
}

/* Options into *o; -1: go on at optind, otherwise the exit status. */
static int
parse_opts(int argc, char **argv, struct uopts *o)
{
	enum { OPT_SOCKET = 256, OPT_JSON, OPT_LIST, OPT_ALL };
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"socket", required_argument, NULL, OPT_SOCKET},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"list", no_argument, NULL, OPT_LIST},
	    {"all", no_argument, NULL, OPT_ALL},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	opterr = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		if (ch == 'c')
			o->conf = optarg;
		else if (ch == OPT_SOCKET)
			o->socket = optarg;
		else if (ch == OPT_JSON)
			o->json = true;
		else if (ch == OPT_LIST)
			o->list = true;
		else if (ch == OPT_ALL)
			o->all = true;
		else
			return ctl_opt_end(ch, argv, PROG, ctl_unblock_usage);
	}
	if ((o->list || o->all) && argc - optind != 0)
		return usage_error(o->list ? "--list takes no address" : "--all takes no address",
		                   argv[optind]);
	if (o->list && o->all)
		return usage_error("--list and --all exclude each other", NULL);
	if (!o->list && !o->all && argc - optind != 1)
		return usage_error("name one IP or CIDR, or --all, or --list", NULL);
	if (!o->list && !o->all && (strlen(argv[optind]) > 64 || strpbrk(argv[optind], " \r\n")))
		return usage_error("not an address or CIDR:", argv[optind]);
	return -1;
}

int
ctl_unblock(int argc, char **argv)
{
	struct uopts o = {0};
	char path[4096], line[128], *raw = NULL;
	struct json *doc = NULL;
	const char *err;
	int rc;

	if ((rc = parse_opts(argc, argv, &o)) >= 0)
		return rc;
	snprintf(line, sizeof(line), "%s%s\n", o.list ? "BLOCKS" : "UNBLOCK ",
	         o.list  ? ""
	         : o.all ? "ALL"
	                 : argv[optind]);
	if (ctl_socket_path(PROG, o.conf, o.socket, path, sizeof(path)) != 0)
		return 1;
	if ((rc = ctl_request(PROG, path, line, &doc, &raw)) != 0)
		goto done;
	if ((err = json_gets(doc, "error")) != NULL) {
		fprintf(stderr, PROG ": %s\n", err);
		rc = 1;
	} else if (o.json) {
		fputs(raw, stdout);
		rc = !o.list && !o.all && json_geti(doc, "count", 0) == 0;
	} else if (json_geti(doc, "count", 0) == 0 && !o.list && !o.all) {
		/* a named address with nothing to clear: likely a typo, so it is an error */
		fprintf(stderr,
		        PROG ": nothing to clear: no failed AUTH attempts recorded for %s\n",
		        argv[optind]);
		rc = 1;
	} else if (json_geti(doc, "count", 0) == 0) {
		puts(o.list ? "no address has failed AUTH attempts"
		            : "nothing to clear: no address has failed AUTH attempts");
	} else {
		print_entries(doc, o.list ? "blocks" : "cleared", o.list ? "" : "cleared");
	}
done:
	json_free(doc);
	free(raw);
	return rc;
}
