/*
 * ctl_reload: `mxrelayctl reload` and `mxrelayctl log-reopen`, the running
 * daemon's RELOAD and LOG-REOPEN through its control socket. reload is the
 * unit's ExecReload (like `postfix reload`, it reports): it waits for the
 * daemon's outcome, prints what needs a restart, and exits 1 when the
 * daemon kept its running configuration, so `systemctl reload` fails
 * visibly. Under journald (JOURNAL_STREAM names stderr) its complaints
 * carry their priority ("<3>" err, "<4>" warning; sd-daemon(3)).
 */
#include "tools/ctl.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mta/shared/config.h"
#include "mta/shared/log.h"
#include "tools/ctlsock.h"
#include "tools/json.h"

#define PROG "mxrelayctl"

struct ropts {
	const char *conf, *socket;
	bool if_running; /* log-reopen --if-running: a stopped daemon is no error */
};

void
ctl_reload_usage(FILE *f)
{
	fputs("  mxrelayctl reload [-c FILE] [--socket PATH]\n"
	      "      make the running mxrelayd re-read FILE, the credentials, DKIM keys and\n"
	      "      TLS certificates and keys, and wait for its answer: exit 1 (the error on\n"
	      "      stderr) when it kept its running configuration; changes that need a\n"
	      "      restart are listed. The unit's ExecReload (systemctl reload mxrelayd).\n"
	      "  mxrelayctl log-reopen [-c FILE] [--socket PATH] [--if-running]\n"
	      "      reopen the log file (log = /PATH) after logrotate renamed it;\n"
	      "      --if-running: exit 0 when mxrelayd is not running\n",
	      f);
}

/* A complaint on stderr, with its journald priority when stderr is the journal. */
static void __attribute__((format(printf, 2, 3)))
say(int prio, const char *fmt, ...)
{
	va_list ap;

	if (log_stderr_is_journal())
		fprintf(stderr, "<%d>", prio);
	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* The control socket: --socket, else control_socket of the configuration. 0 / -1. */
static int
socket_path(const struct ropts *o, char *out, size_t outlen)
{
	struct config *c = NULL;
	const char *path = o->conf;
	char err[1024];

	if (o->socket) {
		snprintf(out, outlen, "%s", o->socket);
		return 0;
	}
	if (path == NULL && access(CTL_DEFAULT_CONF, F_OK) == 0)
		path = CTL_DEFAULT_CONF;
	if (config_load(&c, path, err, sizeof(err)) != 0) {
		say(3, "%s", err); /* the reload would fail the same way */
		return -1;
	}
	snprintf(out, outlen, "%s", c->control_socket);
	config_free(c);
	return 0;
}

/* One request; its reply in *doc. 0, 1 (failed, said), or 3 (not running, not said). */
static int
request(const char *path, const char *line, struct json **doc)
{
	char err[4200];

	switch (ctlsock_ask(path, line, strlen(line), doc, NULL, err, sizeof(err))) {
	case CTLSOCK_OK:
		return 0;
	case CTLSOCK_DOWN:
		return 3;
	case CTLSOCK_DENIED:
		say(3, "root and the group mxrelay may use the control socket (control socket %s)", err);
		return 1;
	case CTLSOCK_IO:
		say(3, "control socket %s", err);
		return 1;
	default:
		say(3, "%s", err);
		return 1;
	}
}

/* Options after the command name. -1: go on; else the exit status. */
static int
parse_opts(int argc, char **argv, struct ropts *o, bool reopen)
{
	enum { OPT_SOCKET = 256, OPT_IF_RUNNING };
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"socket", required_argument, NULL, OPT_SOCKET},
	    {"if-running", no_argument, NULL, OPT_IF_RUNNING},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		if (ch == 'c')
			o->conf = optarg;
		else if (ch == OPT_SOCKET)
			o->socket = optarg;
		else if (ch == OPT_IF_RUNNING && reopen)
			o->if_running = true;
		else
			return ctl_opt_end(ch == OPT_IF_RUNNING ? '?' : ch, argv, PROG,
			                   ctl_reload_usage);
	}
	if (optind < argc)
		return ctl_usage_error(PROG, ctl_reload_usage, "unexpected argument", argv[optind]);
	return -1;
}

/* The daemon's answer to RELOAD, for people (and the journal). */
static int
print_reload(const struct json *doc)
{
	const struct json *notes = json_get(doc, "notes");
	const char *err = json_gets(doc, "error");

	if (err != NULL) {
		say(3, "reload failed, mxrelayd keeps its running configuration: %s", err);
		return 1;
	}
	printf("mxrelayd reloaded %s\n", json_gets(doc, "config") ? json_gets(doc, "config") : "");
	for (size_t i = 0; notes && notes->type == JSON_ARR && i < notes->n; i++)
		if (notes->v[i]->type == JSON_STR)
			say(4, "note: %s", notes->v[i]->s);
	return 0;
}

static int
run(int argc, char **argv, bool reopen)
{
	struct ropts o = {0};
	struct json *doc = NULL;
	char path[4096];
	int rc;

	if ((rc = parse_opts(argc, argv, &o, reopen)) >= 0)
		return rc;
	if (socket_path(&o, path, sizeof(path)) != 0)
		return 1;
	rc = request(path, reopen ? "LOG-REOPEN\n" : "RELOAD\n", &doc);
	if (rc == 3) {
		if (reopen && o.if_running)
			return 0;
		say(3, "mxrelayd is not running (control socket %s: %s)", path, strerror(errno));
		return 1;
	}
	if (rc != 0)
		return rc;
	if (!reopen)
		rc = print_reload(doc);
	else if (json_gets(doc, "error") != NULL) {
		say(3, "%s", json_gets(doc, "error"));
		rc = 1;
	}
	json_free(doc);
	return rc;
}

int
ctl_reload(int argc, char **argv)
{
	return run(argc, argv, false);
}

int
ctl_log_reopen(int argc, char **argv)
{
	return run(argc, argv, true);
}
