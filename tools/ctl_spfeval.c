/*
 * mxrelayctl dns spf-eval: RFC 7208 check_host() for one address and
 * sender, through tools/spfeval, over the config's dns_servers.
 *
 *   mxrelayctl dns spf-eval [-c CONF] [--helo NAME] [--record TEXT]
 *                           [--trace] IP SENDER
 *
 * SENDER is local@domain, a bare domain (postmaster@domain), or "" (the
 * null reverse path: postmaster@HELO). Output, on stdout:
 *   line 1: the result word (none, neutral, pass, fail, softfail,
 *           temperror, permerror)
 *   line 2: "why: " and the deciding term or the reason
 *   line 3 (fail with an exp= explanation only): "explanation: " and it
 *   then, with --trace, one "trace: " line per lookup and match.
 * Exit status 0 whatever the result; 1 for a config or DNS setup error, 2
 * for a usage error.
 *
 * --helo defaults to CONF's helo_name, else SENDER's domain. --record
 * evaluates TEXT as SENDER's domain's record (includes and redirects are
 * still looked up): a record can be tried before it is published.
 */
#include "mta/shared/config.h"
#include "tools/ctl.h"
#include "tools/spfeval.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#define PROG "mxrelayctl dns spf-eval"

enum { OPT_HELO = 300, OPT_RECORD, OPT_TRACE };

struct args {
	const char *conf, *helo, *record, *ip, *sender;
	bool trace;
};

/* -1 to go on, else the exit status (a usage error is 2). */
static int
parse_args(int argc, char **argv, struct args *a)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"helo", required_argument, NULL, OPT_HELO},
	    {"record", required_argument, NULL, OPT_RECORD},
	    {"trace", no_argument, NULL, OPT_TRACE},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	memset(a, 0, sizeof *a);
	opterr = 0;
	optind = 0;
	while ((ch = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			a->conf = optarg;
			break;
		case OPT_HELO:
			a->helo = optarg;
			break;
		case OPT_RECORD:
			a->record = optarg;
			break;
		case OPT_TRACE:
			a->trace = true;
			break;
		default:
			return ctl_opt_end(ch, argv, PROG, ctl_dns_usage);
		}
	}
	if (argc - optind != 2)
		return ctl_usage_error(PROG, ctl_dns_usage, "expected IP and SENDER", NULL);
	a->ip = argv[optind];
	a->sender = argv[optind + 1];
	if (a->helo != NULL && a->helo[0] == '\0')
		return ctl_usage_error(PROG, ctl_dns_usage, "empty --helo", NULL);
	return -1;
}

static void
print_result(const struct spf_eval *ev, bool trace)
{
	printf("%s\nwhy: %s\n", spf_result_name(ev->result), ev->why);
	if (ev->result == SPF_R_FAIL && ev->explanation[0] != '\0')
		printf("explanation: %s\n", ev->explanation);
	if (!trace)
		return;
	for (size_t i = 0; i < ev->ntrace; i++)
		printf("trace: %s\n", ev->trace[i]);
	if (ev->trace_dropped > 0)
		printf("trace: (%zu more lines not kept)\n", ev->trace_dropped);
	printf("trace: %d DNS-querying terms, %d void lookups (RFC 7208 4.6.4: at most 10 and 2)\n",
	       ev->lookups, ev->void_lookups);
}

int
ctl_dns_spf_eval(int argc, char **argv)
{
	struct args a;
	struct config *cfg = NULL;
	struct spf_ip ip;
	struct spf_eval ev;
	struct spf_eval_opts opts = {0};
	char err[256];
	const char *helo, *at;
	int rc = parse_args(argc, argv, &a);

	if (rc >= 0)
		return rc;
	if (spf_ip_parse(a.ip, 0, &ip) != 0)
		return ctl_usage_error(PROG, ctl_dns_usage, "bad IP address", a.ip);
	if (ctl_load_config(PROG, a.conf, &cfg) != 0)
		return 1;
	if (dnsq_set_servers(cfg->dns_servers, err, sizeof err) != 0) {
		fprintf(stderr, "%s: dns_servers: %s\n", PROG, err);
		config_free(cfg);
		return 1;
	}
	at = strrchr(a.sender, '@');
	helo = a.helo ? a.helo : cfg->helo_name ? cfg->helo_name : at ? at + 1 : a.sender;
	if (helo[0] == '\0') {
		config_free(cfg);
		return ctl_usage_error(PROG, ctl_dns_usage, "SENDER \"\" needs --helo", NULL);
	}
	opts.record = a.record;
	if (spf_eval(spf_dns_system(), &ip, a.sender, helo, &opts, &ev) != 0) {
		fprintf(stderr, "%s: %s\n", PROG, ev.why);
		rc = 1;
	} else {
		print_result(&ev, a.trace);
		rc = 0;
	}
	spf_eval_free(&ev);
	config_free(cfg);
	return rc;
}
