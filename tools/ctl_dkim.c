/*
 * mxrelayctl dkim keygen / dns dkim: make DKIM keys and print their DNS
 * records. Keys and record text come from dkim/ (mxdkim_*), shared with the
 * daemon so both agree on the format; this file only handles arguments,
 * paths and output.
 */
#include "tools/ctl.h"
#include "tools/ctl_dkim.h"
#include "dkim/keys.h"
#include "dkim/txt.h"
#include "mta/shared/config.h"

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEYGEN_PROG "mxrelayctl dkim keygen"
#define DNS_DKIM_PROG "mxrelayctl dns dkim"
#define DEFAULT_KEY_DIR "/etc/mxrelay/dkim"
#define DAEMON_GROUP "mxrelay"

struct keygen_opts {
	const char *conf;
	const char *out;
	const char *domain;
	const char *selector;
	enum mxdkim_alg alg;
	int bits; /* 0: the default */
};

void
ctl_dkim_usage(FILE *f)
{
	fputs("  dkim keygen DOMAIN SELECTOR [--type rsa|ed25519] [--bits 2048]\n"
	      "         [--out FILE] [-c CONF]\n"
	      "      make a DKIM key (mode 0600, or root:mxrelay 0640 when group mxrelay\n"
	      "      exists; an existing file is never replaced) and\n"
	      "      print its DNS record and the dkim_key line for the config.\n"
	      "      --bits 2048..4096 for RSA; FILE defaults to\n"
	      "      " DEFAULT_KEY_DIR "/DOMAIN.SELECTOR.pem\n",
	      f);
	ctl_dkim_rotate_usage(f);
}

static int
usage_error(const char *prog, const char *what, const char *arg)
{
	return ctl_usage_error(prog, ctl_dkim_usage, what, arg);
}

/* -1: go on; otherwise the exit status */
static int
keygen_args(int argc, char **argv, struct keygen_opts *o)
{
	enum { OPT_TYPE = 256, OPT_BITS, OPT_OUT };
	static const struct option longopts[] = {
	    {"type", required_argument, NULL, OPT_TYPE},
	    {"bits", required_argument, NULL, OPT_BITS},
	    {"out", required_argument, NULL, OPT_OUT},
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	char *end;
	long bits;
	int ch;

	memset(o, 0, sizeof *o);
	o->alg = MXDKIM_RSA;
	opterr = 0;
	optind = 0;
	while ((ch = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->conf = optarg;
			break;
		case OPT_TYPE:
			if (strcmp(optarg, "rsa") == 0)
				o->alg = MXDKIM_RSA;
			else if (strcmp(optarg, "ed25519") == 0)
				o->alg = MXDKIM_ED25519;
			else
				return usage_error(KEYGEN_PROG,
				                   "--type must be rsa or ed25519, not", optarg);
			break;
		case OPT_BITS:
			errno = 0;
			bits = strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || end == optarg ||
			    bits < MXDKIM_RSA_MIN_SIGN_BITS || bits > MXDKIM_RSA_MAX_BITS)
				return usage_error(KEYGEN_PROG, "--bits must be 2048 to 4096, not",
				                   optarg);
			o->bits = (int)bits;
			break;
		case OPT_OUT:
			o->out = optarg;
			break;
		default:
			return ctl_opt_end(ch, argv, KEYGEN_PROG, ctl_dkim_usage);
		}
	}
	if (o->bits != 0 && o->alg != MXDKIM_RSA)
		return usage_error(KEYGEN_PROG, "--bits applies to RSA keys only", NULL);
	if (argc - optind != 2)
		return usage_error(KEYGEN_PROG, "expected DOMAIN and SELECTOR", NULL);
	o->domain = argv[optind];
	o->selector = argv[optind + 1];
	return -1;
}

/*
 * Make the default key folder: root's, mode 0750 and, when the group exists,
 * group mxrelay, so keys handed to that group (docs/deployment.md) can be
 * re-read by the daemon after it dropped privileges.
 */
static int
make_default_dir(void)
{
	struct group *gr;

	if (mkdir("/etc/mxrelay", 0755) != 0 && errno != EEXIST)
		return -1;
	if (mkdir(DEFAULT_KEY_DIR, 0750) != 0) {
		if (errno != EEXIST)
			return -1;
		return 0; /* an existing folder keeps its owner and mode */
	}
	gr = getgrnam(DAEMON_GROUP);
	if (gr != NULL && geteuid() == 0 && chown(DEFAULT_KEY_DIR, (uid_t)-1, gr->gr_gid) != 0)
		fprintf(stderr, KEYGEN_PROG ": warning: %s: cannot set group %s: %s\n",
		        DEFAULT_KEY_DIR, DAEMON_GROUP, strerror(errno));
	return 0;
}

/* Note a dkim_key line of the config that names the same domain and selector. */
static void
note_existing(const struct config *c, const char *domain, const char *selector)
{
	for (const struct dkim_key_conf *k = c->dkim_keys; k != NULL; k = k->next)
		if (strcasecmp(k->domain, domain) == 0 && strcasecmp(k->selector, selector) == 0)
			printf("\n"
			       "note: %s:%d already has dkim_key = %s %s %s: replace that line\n",
			       ctl_config_name(c), k->line, k->domain, k->selector, k->path);
}

/* The key file: --out, or DEFAULT_KEY_DIR/DOMAIN.SELECTOR.pem (the directory made). 0 / -1. */
static int
key_path(const struct keygen_opts *o, const char *domain, const char *selector, char *path,
         size_t size)
{
	if (o->out != NULL) {
		snprintf(path, size, "%s", o->out);
		return 0;
	}
	snprintf(path, size, DEFAULT_KEY_DIR "/%s.%s.pem", domain, selector);
	if (make_default_dir() != 0) {
		fprintf(stderr, KEYGEN_PROG ": cannot create " DEFAULT_KEY_DIR ": %s\n",
		        strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * The systemd unit runs mxrelayd as user mxrelay: give the key to that
 * group (0640) when it exists, so the daemon can read it and nobody else.
 * Returns the mode, as printed.
 */
static const char *
share_with_daemon(const char *path)
{
	struct group *gr = getgrnam("mxrelay");

	if (gr != NULL && geteuid() == 0 && chown(path, 0, gr->gr_gid) == 0 &&
	    chmod(path, 0640) == 0)
		return "0640, group mxrelay";
	return "0600";
}

static int
keygen(int argc, char **argv)
{
	struct keygen_opts o;
	struct mxdkim_key *key = NULL;
	struct config *c = NULL;
	char domain[256], selector[256], path[PATH_MAX], abs[PATH_MAX], err[512];
	const char *conf;
	int rc = keygen_args(argc, argv, &o);

	if (rc >= 0)
		return rc;
	if (ctl_domain_arg(KEYGEN_PROG, o.domain, domain) != 0)
		return 1;
	if (ctl_dkim_selector_arg(o.selector, selector, sizeof selector) != 0) {
		fprintf(stderr, KEYGEN_PROG ": bad selector '%s'\n", o.selector);
		return 1;
	}
	/* a config given with -c must load: its name goes into the advice below */
	if (o.conf != NULL && ctl_load_config(KEYGEN_PROG, o.conf, &c) != 0)
		return 1;
	rc = 1;
	conf = o.conf != NULL ? o.conf : CTL_DEFAULT_CONF;
	if (key_path(&o, domain, selector, path, sizeof path) != 0)
		goto done;
	if (mxdkim_keygen(o.alg, o.bits, path, 0, err, sizeof err) != 0 ||
	    mxdkim_key_load(&key, path, err, sizeof err) != 0) {
		fprintf(stderr, KEYGEN_PROG ": %s\n", err);
		goto done;
	}
	if (realpath(path, abs) == NULL)
		snprintf(abs, sizeof abs, "%s", path);
	printf("Wrote %s (%s, %d bits, mode %s).\n\n", abs, mxdkim_alg_name(o.alg),
	       mxdkim_key_bits(key), share_with_daemon(path));
	if (ctl_dkim_print_record(KEYGEN_PROG, domain, selector, key) != 0)
		goto done;
	printf("\n"
	       "Add this line to %s, then reload mxrelayd (SIGHUP):\n"
	       "dkim_key = %s %s %s\n",
	       conf, domain, selector, abs);
	if (c != NULL)
		note_existing(c, domain, selector);
	printf("\n"
	       "Check the published record with: mxrelayctl dns check %s\n",
	       domain);
	rc = 0;
done:
	mxdkim_key_free(key);
	config_free(c);
	return rc;
}

int
ctl_dkim(int argc, char **argv)
{
	if (argc < 2)
		return usage_error("mxrelayctl dkim", "expected keygen or rotate", NULL);
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)
		return ctl_help(ctl_dkim_usage);
	if (strcmp(argv[1], "keygen") == 0)
		return keygen(argc - 1, argv + 1);
	if (strcmp(argv[1], "rotate") == 0)
		return ctl_dkim_rotate(argc - 1, argv + 1);
	return usage_error("mxrelayctl dkim", "unknown sub-command", argv[1]);
}

/* ---- dns dkim ---- */

int
ctl_dns_dkim(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *conf = NULL;
	struct config *c = NULL;
	const struct dkim_key_conf *k;
	char domain[256], err[512];
	int ch, found = 0, rc = 0;

	opterr = 0;
	optind = 0;
	while ((ch = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			conf = optarg;
			break;
		case 'h':
			return ctl_help(ctl_dns_usage);
		default: /* errors here print no synopsis */
			return ctl_opt_end(ch, argv, DNS_DKIM_PROG, NULL);
		}
	}
	if (argc - optind != 1)
		return ctl_usage_error(DNS_DKIM_PROG, NULL, "expected exactly one DOMAIN", NULL);
	if (ctl_domain_arg(DNS_DKIM_PROG, argv[optind], domain) != 0 ||
	    ctl_load_config(DNS_DKIM_PROG, conf, &c) != 0)
		return 1;
	for (k = c->dkim_keys; k != NULL; k = k->next) {
		struct mxdkim_key *key = NULL;

		if (strcasecmp(k->domain, domain) != 0)
			continue;
		if (found++)
			printf("\n");
		if (mxdkim_key_load(&key, k->path, err, sizeof err) != 0) {
			fprintf(stderr, DNS_DKIM_PROG ": %s:%d: dkim_key: %s\n", ctl_config_name(c),
			        k->line, err);
			rc = 1;
			continue;
		}
		if (ctl_dkim_print_record(DNS_DKIM_PROG, domain, k->selector, key) != 0)
			rc = 1;
		mxdkim_key_free(key);
	}
	if (found == 0) {
		fprintf(stderr,
		        DNS_DKIM_PROG ": %s has no dkim_key for %s: make one with mxrelayctl dkim "
		                      "keygen %s SELECTOR\n",
		        ctl_config_name(c), domain, domain);
		rc = 1;
	}
	config_free(c);
	return rc;
}
