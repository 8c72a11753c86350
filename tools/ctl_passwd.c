/*
 * mxrelayctl passwd: add a user to the credentials file, or change its
 * password, allowed senders or state (mta/shared/creds does the file work);
 * --list and --delete are ctl_passwd_admin.c's.
 *
 * The password comes from the terminal with echo off, asked twice, or as
 * one line on standard input; never from argv, where ps(1) would show it.
 */
#include "tools/ctl.h"
#include "mta/shared/creds.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define PROG "mxrelayctl passwd"
#define DEFAULT_FILE "/etc/mxrelay/passwd"
#define DAEMON_GROUP "mxrelay"

/* One spare byte for the '\r' of a CRLF line, one for the NUL. */
#define PW_BUF (CREDS_MAX_PASSWORD + 2)

struct opts {
	const char *file;
	const char *user;
	const char *senders; /* NULL: keep */
	int disabled;        /* -1 keep, 0 enable, 1 disable */
	const char *sunset_arg; /* --sunset DATE|none, NULL: keep */
	time_t sunset;       /* -1 keep, 0 none, else creds_parse_date's value */
	int use_stdin;
	int no_password;
	int list, json;         /* --list [--json] */
	const char *delete_user; /* --delete USER */
};

/* The terminal state to put back when a signal ends us at a prompt. */
static const int tty_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
static struct sigaction tty_old_actions[sizeof tty_signals / sizeof tty_signals[0]];
static struct termios tty_saved;
static volatile sig_atomic_t tty_fd = -1;

void
ctl_passwd_usage(FILE *f)
{
	fputs("  passwd USER [-f FILE] [--senders LIST] [--disable|--enable]\n"
	      "         [--sunset YYYY-MM-DD|none] [--stdin | --no-password]\n"
	      "      add USER or set its password (asked on the terminal, or one line\n"
	      "      on standard input when it is not a terminal or with --stdin).\n"
	      "      --senders a@dom,@dom2,*  allowed senders (replaces the list)\n"
	      "      --sunset DATE|none       last day USER may authenticate (warnings\n"
	      "                               from 30 days before); none removes it\n"
	      "      --no-password            keep the password of an existing user\n"
	      "  passwd --list [--json] [-f FILE]\n"
	      "      the users: state, sunset, allowed senders (never the hashes)\n"
	      "  passwd --delete USER [-f FILE]\n"
	      "      remove USER (the file is rewritten in place, locked against other\n"
	      "      passwd runs); the running mxrelayd forgets USER at its next reload\n"
	      "      (systemctl reload mxrelayd, or SIGHUP)\n"
	      "      FILE defaults to " DEFAULT_FILE "\n",
	      f);
}

static int
usage_error(const char *what, const char *arg)
{
	return ctl_usage_error(PROG, ctl_passwd_usage, what, arg);
}

/* --sunset: absent (-1, keep), "none" (0) or a date (creds_parse_date). 0 / -1. */
static int
parse_sunset(const char *v, time_t *out)
{
	*out = v == NULL ? -1 : 0;
	if (v == NULL || strcmp(v, "none") == 0)
		return 0;
	return creds_parse_date(v, out);
}

enum {
	OPT_SENDERS = 256,
	OPT_DISABLE,
	OPT_ENABLE,
	OPT_STDIN,
	OPT_NO_PASSWORD,
	OPT_SUNSET,
	OPT_LIST,
	OPT_DELETE,
	OPT_JSON
};

/* One option into *o (enable/disable counted); 0, or -1 when ch is none of ours. */
static int
take_opt(int ch, struct opts *o, int *enable, int *disable)
{
	switch (ch) {
	case 'f':
		o->file = optarg;
		break;
	case OPT_SENDERS:
		o->senders = optarg;
		break;
	case OPT_DISABLE:
		*disable = 1;
		break;
	case OPT_ENABLE:
		*enable = 1;
		break;
	case OPT_STDIN:
		o->use_stdin = 1;
		break;
	case OPT_NO_PASSWORD:
		o->no_password = 1;
		break;
	case OPT_SUNSET:
		o->sunset_arg = optarg;
		break;
	case OPT_LIST:
		o->list = 1;
		break;
	case OPT_DELETE:
		o->delete_user = optarg;
		break;
	case OPT_JSON:
		o->json = 1;
		break;
	default:
		return -1;
	}
	return 0;
}

/* --list and --delete USER stand alone (only -f, and --json for --list). 0 or 2. */
static int
check_admin(int argc, char **argv, const struct opts *o, int changes)
{
	if (o->json && !o->list)
		return usage_error("--json is only for --list", NULL);
	if (!o->list && !o->delete_user)
		return 0;
	if (o->list && o->delete_user)
		return usage_error("--list and --delete exclude each other", NULL);
	if (changes)
		return usage_error(o->list ? "--list takes no other option than -f and --json"
		                           : "--delete USER takes no other option than -f",
		                   NULL);
	if (argc - optind != 0)
		return usage_error(o->list ? "--list takes no USER"
		                           : "--delete takes one USER only",
		                   argv[optind]);
	return 0;
}

/* 0, or the exit status (2, or 0 after --help) when the caller must stop. */
static int
parse_args(int argc, char **argv, struct opts *o, int *stop)
{
	static const struct option longopts[] = {
	    {"file", required_argument, NULL, 'f'},
	    {"senders", required_argument, NULL, OPT_SENDERS},
	    {"disable", no_argument, NULL, OPT_DISABLE},
	    {"enable", no_argument, NULL, OPT_ENABLE},
	    {"stdin", no_argument, NULL, OPT_STDIN},
	    {"no-password", no_argument, NULL, OPT_NO_PASSWORD},
	    {"sunset", required_argument, NULL, OPT_SUNSET},
	    {"list", no_argument, NULL, OPT_LIST},
	    {"delete", required_argument, NULL, OPT_DELETE},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch, enable = 0, disable = 0, rc;

	memset(o, 0, sizeof *o);
	o->file = DEFAULT_FILE;
	o->disabled = -1;
	*stop = 1;
	/* our own messages: getopt's would be prefixed "passwd:", like passwd(1) */
	opterr = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, ":f:h", longopts, NULL)) != -1)
		if (take_opt(ch, o, &enable, &disable) != 0)
			return ctl_opt_end(ch, argv, PROG, ctl_passwd_usage);
	rc = check_admin(argc, argv, o,
	                 o->senders || enable || disable || o->use_stdin || o->no_password ||
	                     o->sunset_arg);
	if (rc != 0)
		return rc;
	if (o->list || o->delete_user) {
		*stop = 0; /* ctl_passwd_list / ctl_passwd_delete */
		return 0;
	}
	if (enable && disable)
		return usage_error("--enable and --disable exclude each other", NULL);
	if (o->no_password && o->use_stdin)
		return usage_error("--no-password and --stdin exclude each other", NULL);
	if (argc - optind != 1)
		return usage_error("expected exactly one USER", NULL);
	o->disabled = disable ? 1 : enable ? 0 : -1;
	o->user = argv[optind];
	*stop = 0;
	return 0;
}

/*
 * One line from fd into pw (PW_BUF bytes) without its "\n" or "\r\n". Reads
 * a byte at a time so nothing after the line is consumed, and reads an
 * over-long line to its end: left on a terminal, the rest would be typed
 * into the shell once we exit.
 */
static int
read_secret_line(int fd, char *pw, char *err, size_t errlen)
{
	size_t len = 0;
	int got = 0, toolong = 0;
	ssize_t r;
	char ch;

	for (;;) {
		r = read(fd, &ch, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "reading the password: %s", strerror(errno));
			return -1;
		}
		if (r == 0 || ch == '\n')
			break;
		got = 1;
		if (len < PW_BUF - 1)
			pw[len++] = ch;
		else
			toolong = 1;
	}
	if (len > 0 && pw[len - 1] == '\r')
		len--;
	pw[len] = '\0';
	if (!got && r == 0) {
		snprintf(err, errlen, "no password given (end of input)");
		return -1;
	}
	if (toolong || len > CREDS_MAX_PASSWORD) {
		snprintf(err, errlen, "password longer than %d bytes", CREDS_MAX_PASSWORD);
		return -1;
	}
	if (memchr(pw, '\0', len)) {
		snprintf(err, errlen, "password contains a NUL byte");
		return -1;
	}
	if (len == 0) {
		snprintf(err, errlen, "empty password");
		return -1;
	}
	return 0;
}

static void
restore_tty_and_reraise(int sig)
{
	/* tcsetattr, signal and raise are async-signal-safe */
	if (tty_fd >= 0)
		tcsetattr(tty_fd, TCSAFLUSH, &tty_saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void
tty_guard(int on)
{
	struct sigaction sa;
	size_t i;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = restore_tty_and_reraise;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof tty_signals / sizeof tty_signals[0]; i++) {
		if (on)
			sigaction(tty_signals[i], &sa, &tty_old_actions[i]);
		else
			sigaction(tty_signals[i], &tty_old_actions[i], NULL);
	}
}

/* Ask twice on /dev/tty with echo off. */
static int
prompt_password(const char *user, char *pw, char *err, size_t errlen)
{
	char again[PW_BUF];
	struct termios noecho;
	int fd, rc = -1;

	fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "/dev/tty: %s (use --stdin)", strerror(errno));
		return -1;
	}
	if (tcgetattr(fd, &tty_saved) < 0) {
		snprintf(err, errlen, "/dev/tty: %s (use --stdin)", strerror(errno));
		close(fd);
		return -1;
	}
	tty_fd = fd;
	tty_guard(1);
	noecho = tty_saved;
	noecho.c_lflag &= ~(tcflag_t)ECHO;
	noecho.c_lflag |= ECHONL; /* the Enter still moves to the next line */
	if (tcsetattr(fd, TCSAFLUSH, &noecho) < 0) {
		snprintf(err, errlen, "/dev/tty: %s", strerror(errno));
		goto done;
	}
	dprintf(fd, "New password for %s: ", user);
	if (read_secret_line(fd, pw, err, errlen) < 0)
		goto done;
	dprintf(fd, "Retype new password: ");
	if (read_secret_line(fd, again, err, errlen) < 0)
		goto done;
	if (strcmp(pw, again) != 0) {
		snprintf(err, errlen, "passwords do not match");
		goto done;
	}
	rc = 0;
done:
	tcsetattr(fd, TCSAFLUSH, &tty_saved);
	tty_guard(0);
	tty_fd = -1;
	close(fd);
	explicit_bzero(again, sizeof again);
	return rc;
}

/*
 * A file root creates is root:root 0640, which the daemon, running as the
 * mxrelay user after startup, could not read on a SIGHUP reload. Hand a
 * new file to the daemon's group when that group exists.
 */
static void
give_to_daemon_group(const char *path)
{
	struct group *gr;

	if (geteuid() != 0)
		return;
	gr = getgrnam(DAEMON_GROUP);
	if (!gr)
		return;
	if (chown(path, (uid_t)-1, gr->gr_gid) < 0)
		fprintf(stderr, PROG ": warning: %s: cannot set group " DAEMON_GROUP ": %s\n", path,
		        strerror(errno));
}

/*
 * Show the sunset as written, and warn when the user as written can
 * authenticate but may send nothing.
 */
static void
warn_no_senders(const struct opts *o)
{
	struct creds *c = NULL;
	const struct cred *cr;
	char err[512];

	if (creds_load(&c, o->file, err, sizeof err) < 0)
		return;
	cr = creds_find(c, o->user);
	if (cr && cr->sunset > 0) {
		char day[16];

		creds_format_date(cr->sunset, day, sizeof day);
		printf(PROG ": %s sunset=%s (the last day it may authenticate)\n", o->user, day);
		/* sunset is the first second refused (end of that day UTC) */
		if (time(NULL) >= cr->sunset)
			fprintf(stderr,
			        PROG ": warning: %s's sunset %s has passed: mxrelayd refuses its AUTH "
			             "from now on (--sunset a later date or none to undo)\n",
			        o->user, day);
	}
	if (cr && cr->nsenders == 0)
		fprintf(stderr,
		        PROG ": warning: %s has no allowed senders and cannot send mail "
		             "(see --senders)\n",
		        o->user);
	creds_free(c);
}

/*
 * The file as it is now into *c (NULL and *is_new_file set when it does not
 * exist yet). Read first: a broken file or a missing user should stop us
 * before anyone types a password twice. 0 / -1 with err.
 */
static int
load_existing(const struct opts *o, struct creds **c, int *is_new_file, char *err, size_t errlen)
{
	struct stat st;

	if (stat(o->file, &st) == 0)
		return creds_load(c, o->file, err, errlen);
	if (errno == ENOENT) {
		*is_new_file = 1;
		return 0;
	}
	snprintf(err, errlen, "%s: %s", o->file, strerror(errno));
	return -1;
}

/*
 * The password's hash into hash (read from stdin or asked on the tty), or
 * with --no-password a check that there is something else to change and
 * hash left empty. 0 / -1 with err.
 */
static int
new_hash(const struct opts *o, int exists, char *hash, size_t hashlen, char *err, size_t errlen)
{
	char pw[PW_BUF];
	int rc = -1;

	if (o->no_password) {
		if (!exists) {
			snprintf(err, errlen,
			         "user %s does not exist in %s; a new user needs a password",
			         o->user, o->file);
			return -1;
		}
		if (!o->senders && o->disabled < 0 && o->sunset < 0) {
			snprintf(err, errlen,
			         "nothing to change: --no-password with neither "
			         "--senders, --sunset, --disable nor --enable");
			return -1;
		}
		return 0;
	}
	pw[0] = '\0';
	if (o->use_stdin || !isatty(STDIN_FILENO)) {
		if (read_secret_line(STDIN_FILENO, pw, err, errlen) < 0)
			goto done;
	} else if (prompt_password(o->user, pw, err, errlen) < 0) {
		goto done;
	}
	rc = creds_hash_password(pw, hash, hashlen, err, errlen);
done:
	explicit_bzero(pw, sizeof pw);
	return rc;
}

int
ctl_passwd(int argc, char **argv)
{
	char err[1024], hash[CREDS_HASH_MAX];
	struct creds *c = NULL;
	struct opts o;
	int status, stop, exists, is_new_file = 0;

	status = parse_args(argc, argv, &o, &stop);
	if (stop)
		return status;
	if (o.list)
		return ctl_passwd_list(o.file, o.json);
	if (o.delete_user)
		return ctl_passwd_delete(o.file, o.delete_user);
	if (parse_sunset(o.sunset_arg, &o.sunset) < 0)
		return usage_error("--sunset wants a date YYYY-MM-DD or none, not", o.sunset_arg);
	status = 1;
	hash[0] = '\0';
	if (creds_check_user(o.user, err, sizeof err) < 0 ||
	    (o.senders && creds_check_senders(o.senders, err, sizeof err) < 0))
		goto fail;
	if (load_existing(&o, &c, &is_new_file, err, sizeof err) < 0)
		goto fail;
	exists = creds_find(c, o.user) != NULL;
	if (new_hash(&o, exists, hash, sizeof hash, err, sizeof err) < 0)
		goto fail;
	if (creds_update_file_sunset(o.file, o.user, o.no_password ? NULL : hash, o.senders,
	                             o.disabled, o.sunset, err, sizeof err) < 0)
		goto fail;
	if (is_new_file)
		give_to_daemon_group(o.file);
	printf(PROG ": %s user %s %s %s\n", exists ? "updated" : "added", o.user,
	       exists ? "in" : "to", o.file);
	warn_no_senders(&o);
	status = 0;
	goto done;
fail:
	fprintf(stderr, PROG ": %s\n", err);
done:
	explicit_bzero(hash, sizeof hash);
	creds_free(c);
	return status;
}
