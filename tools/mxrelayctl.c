/*
 * mxrelayctl: the administration tool. main() only dispatches to a
 * sub-command (tools/ctl.h); each sub-command parses its own options.
 */
#include "tools/ctl.h"
#include "tools/ctl_report.h"

#include <stdio.h>
#include <string.h>

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
};

static const struct command commands[] = {
    {"passwd", ctl_passwd},
    {"dkim", ctl_dkim},
    {"dns", ctl_dns},
    {"audit", ctl_audit},
    {"stats", ctl_stats},
    {"queue", ctl_queue},
    {"tls", ctl_tls},
    {"m365", ctl_m365},
    {"reload", ctl_reload},
    {"log-reopen", ctl_log_reopen},
    {"unblock", ctl_unblock},
    {"backup", ctl_backup},
    {"report", ctl_report},
};

static void
usage(FILE *f)
{
	fputs("usage: mxrelayctl COMMAND [ARGS...]\n"
	      "       mxrelayctl -h | --help      this help (COMMAND --help: one command's)\n"
	      "       mxrelayctl -V | --version   the version\n"
	      "\n"
	      "commands:\n",
	      f);
	ctl_passwd_usage(f);
	ctl_dkim_usage(f);
	ctl_dns_usage(f);
	ctl_audit_usage(f);
	ctl_stats_usage(f);
	ctl_queue_usage(f);
	ctl_tls_usage(f);
	ctl_m365_usage(f);
	ctl_reload_usage(f);
	ctl_unblock_usage(f);
	ctl_backup_usage(f);
	ctl_report_usage(f);
}

int
main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("mxrelayctl %s\n", MXRELAY_VERSION);
		return 0;
	}
	for (i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	}
	fprintf(stderr, "mxrelayctl: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
