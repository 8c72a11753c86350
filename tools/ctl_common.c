/*
 * ctl_common: what every mxrelayctl sub-command shares (ctl.h): loading
 * the daemon's configuration (and its resolvers for tools/dnsq), and the
 * usage-error and --help output of the option parsers, and one request to
 * the control socket, so each command's messages read the same.
 */
#include "tools/ctl.h"
#include "tools/ctlsock.h"
#include "tools/dnsq.h"
#include "mta/shared/config.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int
ctl_load_config(const char *prog, const char *path, struct config **out)
{
	char err[512];

	if (path == NULL && access(CTL_DEFAULT_CONF, F_OK) == 0)
		path = CTL_DEFAULT_CONF;
	if (config_load(out, path, err, sizeof err) != 0) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return -1;
	}
	/* the relay's resolvers for every lookup, never silently /etc/resolv.conf */
	dnsq_set_timeout((*out)->dns_timeout_ms, (*out)->dns_tries);
	if (dnsq_set_servers((*out)->dns_servers, err, sizeof err) != 0) {
		fprintf(stderr, "%s: %s: dns_servers: %s\n", prog, ctl_config_name(*out), err);
		config_free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

const char *
ctl_config_name(const struct config *c)
{
	return c->path != NULL ? c->path : "(default)";
}

int
ctl_usage_error(const char *prog, void (*usage)(FILE *f), const char *what, const char *arg)
{
	if (arg != NULL)
		fprintf(stderr, "%s: %s '%s'\n", prog, what, arg);
	else
		fprintf(stderr, "%s: %s\n", prog, what);
	if (usage != NULL) {
		fputs("usage:\n", stderr);
		usage(stderr);
	}
	return 2;
}

int
ctl_help(void (*usage)(FILE *f))
{
	fputs("usage:\n", stdout);
	usage(stdout);
	return 0;
}

int
ctl_opt_end(int ch, char **argv, const char *prog, void (*usage)(FILE *f))
{
	if (ch == 'h')
		return ctl_help(usage);
	if (ch == ':')
		return ctl_usage_error(prog, usage, "missing argument for", argv[optind - 1]);
	return ctl_usage_error(prog, usage, "unknown option", argv[optind - 1]);
}

int
ctl_socket_path(const char *prog, const char *conf, const char *socket, char *out, size_t outlen)
{
	struct config *c = NULL;

	if (socket != NULL) {
		snprintf(out, outlen, "%s", socket);
		return 0;
	}
	if (ctl_load_config(prog, conf, &c) != 0)
		return -1;
	snprintf(out, outlen, "%s", c->control_socket);
	config_free(c);
	return 0;
}

int
ctl_request(const char *prog, const char *path, const char *line, struct json **doc, char **raw)
{
	char err[4200];

	switch (ctlsock_ask(path, line, strlen(line), doc, raw, err, sizeof(err))) {
	case CTLSOCK_OK:
		return 0;
	case CTLSOCK_DOWN:
		fprintf(stderr, "%s: mxrelayd is not running (control socket %s)\n", prog, err);
		break;
	case CTLSOCK_DENIED:
		fprintf(stderr,
		        "%s: root and the group mxrelay may use the control socket (control socket "
		        "%s)\n",
		        prog, err);
		break;
	case CTLSOCK_IO:
		fprintf(stderr, "%s: control socket %s\n", prog, err);
		break;
	case CTLSOCK_BADJSON:
		fprintf(stderr, "%s: %s\n", prog, err);
		break;
	}
	return 1;
}
