/*
 * mxrelayctl queue: list, show, summary, flush, hold, release, delete and
 * bounce through the running daemon's control socket, so every change goes
 * through its scheduler and its spool writer (never behind their back).
 * Output is a table for people, or with --json the daemon's JSON document.
 */
#include "tools/ctl.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mta/shared/config.h"
#include "mta/shared/provider.h"
#include "tools/ctlsock.h"
#include "tools/json.h"

#define PROG "mxrelayctl queue"

struct qopts {
	const char *conf;
	const char *socket;
	bool json;
	const char *limit;
	const char *from, *to, *domain; /* issue 16: bulk selections */
};

void
ctl_queue_usage(FILE *f)
{
	fputs(
	    "  queue [-c FILE | --socket PATH] [--json] list [--limit N] | show ID |\n"
	    "         summary | flush [ID|DOMAIN] | hold ID | release ID | delete ID | bounce ID |\n"
	    "         bounce-digest\n"
	    "  queue [-c FILE | --socket PATH] [--json] hold|release|delete|bounce|flush\n"
	    "         ALL | ID... | [--from ADDR] [--to ADDR] [--domain DOMAIN]\n"
	    "  queue [-c FILE] cat [-e] [-h] [-b] ID\n"
	    "      work on the running daemon's queue through its control socket:\n"
	    "      list      messages, oldest first (--limit N, default 1000)\n"
	    "      show      one message with every recipient's state and last reply\n"
	    "      summary   counts and oldest age per destination domain and per age\n"
	    "      flush     try now: one message, one destination domain, or all\n"
	    "      hold      keep a message from delivery until it is released\n"
	    "      release   undo hold: the message is tried at once\n"
	    "      delete    remove a message from the queue, without notice\n"
	    "      bounce    fail its pending recipients (5.0.0) and send the sender a DSN\n"
	    "      bounce-digest  send the bounce owners' digests due now (bounce_owner ... digest)\n"
	    "      ALL, several IDs (up to 59) or the selectors pick many messages at once:\n"
	    "      --from ADDR    the envelope sender (--from '<>': the null sender, bounces)\n"
	    "      --to ADDR      a pending recipient; bounce and delete then fail only the\n"
	    "                     matching recipients, the others stay queued\n"
	    "      --domain DOMAIN  a pending recipient's domain (same rule as --to)\n"
	    "                     selectors combine (all must match); no prompt: scriptable.\n"
	    "                     Prints what was done (\"deleted 42 messages\"); exit 1 only\n"
	    "                     when an ID is not in the queue (nothing matching is no error)\n"
	    "      cat       the stored message, read from spool.db (read-only, as root or the\n"
	    "                daemon's user): -e envelope, -h headers, -b body (default all)\n"
	    "      the socket is control_socket of FILE (default " CTL_DEFAULT_CONF
	    " if present, else the built-in default); root or group mxrelay may use it\n",
	    f);
}

static int
usage_error(const char *what, const char *arg)
{
	fprintf(stderr, PROG ": %s%s%s\n", what, arg ? " " : "", arg ? arg : "");
	fputs("usage:\n", stderr);
	ctl_queue_usage(stderr);
	return 2;
}

/* ---- text output -------------------------------------------------------- */

static const char *
ago(int64_t s, char *buf, size_t len)
{
	if (s < 0)
		s = 0;
	if (s < 60)
		snprintf(buf, len, "%llds", (long long)s);
	else if (s < 3600)
		snprintf(buf, len, "%lldm", (long long)(s / 60));
	else if (s < 86400)
		snprintf(buf, len, "%lldh%02lldm", (long long)(s / 3600),
		         (long long)(s % 3600 / 60));
	else
		snprintf(buf, len, "%lldd%02lldh", (long long)(s / 86400),
		         (long long)(s % 86400 / 3600));
	return buf;
}

static const char *
human_size(int64_t n, char *buf, size_t len)
{
	if (n < 1024)
		snprintf(buf, len, "%lld", (long long)n);
	else if (n < 1024 * 1024)
		snprintf(buf, len, "%.1fK", n / 1024.0);
	else
		snprintf(buf, len, "%.1fM", n / (1024.0 * 1024.0));
	return buf;
}

static const char *
when(const struct json *m, int64_t now, char *buf, size_t len)
{
	const struct json *nt = json_get(m, "next_try");
	char a[32];

	if (strcmp(json_gets(m, "state") ? json_gets(m, "state") : "", "held") == 0)
		snprintf(buf, len, "held");
	else if (json_getb(m, "in_flight"))
		snprintf(buf, len, "now");
	else if (nt == NULL || nt->type != JSON_NUM || nt->i <= now)
		snprintf(buf, len, "due");
	else
		snprintf(buf, len, "in %s", ago(nt->i - now, a, sizeof(a)));
	return buf;
}

static const char *
sender_text(const struct json *m)
{
	const char *s = json_gets(m, "sender");
	return s && *s ? s : "<>";
}

static void
print_list(const struct json *doc)
{
	const struct json *msgs = json_get(doc, "messages");
	int64_t now = json_geti(doc, "now", (int64_t)time(NULL));
	size_t i, k, held = 0;
	char a[32], b[32], c[32];

	if (msgs == NULL || msgs->n == 0) {
		puts("the queue is empty");
		return;
	}
	printf("%-16s  %-7s %6s %5s  %-9s %s\n", "QID", "AGE", "SIZE", "TRIES", "NEXT", "SENDER");
	for (i = 0; i < msgs->n; i++) {
		const struct json *m = msgs->v[i], *to = json_get(m, "to");
		const char *last = json_gets(m, "last_reply");
		int64_t pending = json_geti(m, "pending", 0);

		held += when(m, now, c, sizeof(c))[0] == 'h';
		printf("%-16s  %-7s %6s %5lld  %-9s %s\n", json_gets(m, "qid"),
		       ago(json_geti(m, "age", 0), a, sizeof(a)),
		       human_size(json_geti(m, "size", 0), b, sizeof(b)),
		       (long long)json_geti(m, "attempts", 0), c, sender_text(m));
		printf("%18sto: ", "");
		for (k = 0; to && k < to->n; k++)
			printf("%s%s", k ? ", " : "", to->v[k]->s ? to->v[k]->s : "?");
		if (pending > (int64_t)k)
			printf(" (+%lld more)", (long long)(pending - (int64_t)k));
		putchar('\n');
		if (last)
			printf("%18slast: %s\n", "", last);
	}
	printf("-- %zu message%s%s", msgs->n, msgs->n == 1 ? "" : "s",
	       json_getb(doc, "truncated") ? " shown (more in the queue: use --limit)" : "");
	if (held)
		printf(" (%zu held)", held);
	putchar('\n');
}

/* A large provider's known reply (mta/shared/provider.h): its reason code and the fix. */
static void
print_provider(const char *last)
{
	const struct provider_reply *pr = provider_classify_from(last, NULL);

	if (pr == NULL)
		return;
	printf("             reason: %s (%s)\n", pr->code, provider_group_name(pr->group));
	printf("             fix: %s\n", pr->fix);
}

static void
print_show(const struct json *m)
{
	const struct json *rc = json_get(m, "recipients");
	int64_t now = (int64_t)time(NULL), rcv = json_geti(m, "received", 0);
	char a[32], t[64], w[32];
	time_t tt = (time_t)rcv;
	struct tm tm;
	size_t i;

	localtime_r(&tt, &tm);
	strftime(t, sizeof(t), "%Y-%m-%d %H:%M:%S %z", &tm);
	printf("qid:         %s\n", json_gets(m, "qid"));
	printf("state:       %s%s\n", json_gets(m, "state"),
	       json_getb(m, "in_flight") ? " (being delivered now)" : "");
	printf("received:    %s (%s ago)\n", t, ago(json_geti(m, "age", 0), a, sizeof(a)));
	printf("size:        %lld bytes\n", (long long)json_geti(m, "size", 0));
	printf("sender:      %s\n", sender_text(m));
	printf("client:      %s", json_gets(m, "client_ip") ? json_gets(m, "client_ip") : "(none)");
	if (json_gets(m, "helo"))
		printf(", helo %s", json_gets(m, "helo"));
	if (json_gets(m, "auth_user"))
		printf(", user %s", json_gets(m, "auth_user"));
	printf("\nattempts:    %lld\n", (long long)json_geti(m, "attempts", 0));
	printf("next try:    %s\n", when(m, now, w, sizeof(w)));
	printf("recipients:  %lld pending, %lld delivered, %lld failed\n",
	       (long long)json_geti(m, "pending", 0), (long long)json_geti(m, "delivered", 0),
	       (long long)json_geti(m, "failed", 0));
	for (i = 0; rc && i < rc->n; i++) {
		const struct json *r = rc->v[i];
		const char *last = json_gets(r, "last_reply");
		printf("  %-9s  %s  (%lld attempt%s)\n", json_gets(r, "state"),
		       json_gets(r, "address"), (long long)json_geti(r, "attempts", 0),
		       json_geti(r, "attempts", 0) == 1 ? "" : "s");
		if (last)
			printf("             last: %s\n", last);
		print_provider(last);
	}
}

static void
print_summary(const struct json *s)
{
	const struct json *doms = json_get(s, "domains"), *ages = json_get(s, "ages");
	const struct json *oldest = json_get(s, "oldest_age");
	char a[32];
	size_t i;

	printf("messages:    %lld (%lld held, %lld being delivered)\n",
	       (long long)json_geti(s, "messages", 0), (long long)json_geti(s, "held", 0),
	       (long long)json_geti(s, "in_flight", 0));
	printf("recipients:  %lld pending\n", (long long)json_geti(s, "recipients", 0));
	printf("oldest:      %s\n",
	       oldest && oldest->type == JSON_NUM ? ago(oldest->i, a, sizeof(a)) : "-");
	printf("\nby destination domain:\n  %-32s %8s %8s  %s\n", "DOMAIN", "MESSAGES", "RCPTS",
	       "OLDEST");
	for (i = 0; doms && i < doms->n; i++) {
		const struct json *d = doms->v[i];
		printf("  %-32s %8lld %8lld  %s\n", json_gets(d, "domain"),
		       (long long)json_geti(d, "messages", 0),
		       (long long)json_geti(d, "recipients", 0),
		       ago(json_geti(d, "oldest_age", 0), a, sizeof(a)));
	}
	if (doms && (int64_t)doms->n < json_geti(s, "domains_total", 0))
		printf("  ... %lld domains in all\n", (long long)json_geti(s, "domains_total", 0));
	printf("\nby age:\n  %-8s %8s  %s\n", "AGE", "MESSAGES", "OLDEST");
	for (i = 0; ages && i < ages->n; i++) {
		const struct json *g = ages->v[i], *o = json_get(g, "oldest_age");
		printf("  %-8s %8lld  %s\n", json_gets(g, "age"),
		       (long long)json_geti(g, "messages", 0),
		       o && o->type == JSON_NUM ? ago(o->i, a, sizeof(a)) : "-");
	}
}

static void
print_change(const char *verb, const struct json *d)
{
	const char *qid = json_gets(d, verb);

	if (strcmp(verb, "flushed") == 0) {
		int64_t n = json_geti(d, "messages", 0), f = json_geti(d, "in_flight", 0);
		printf("flush %s: %lld message%s due now", qid, (long long)n, n == 1 ? "" : "s");
		if (f)
			printf(", %lld being delivered already", (long long)f);
		putchar('\n');
	} else if (strcmp(verb, "bounced") == 0) {
		const char *dsn = json_gets(d, "dsn");
		printf("%s bounced: %lld recipient%s failed; ", qid,
		       (long long)json_geti(d, "recipients", 0),
		       json_geti(d, "recipients", 0) == 1 ? "" : "s");
		if (dsn)
			printf("DSN %s queued for the sender\n", dsn);
		else
			printf("no DSN (null sender)\n");
	} else {
		printf("%s %s%s\n", qid, verb,
		       json_getb(d, "in_flight")
		           ? " (the delivery attempt under way finishes; it is not tried again)"
		       : strcmp(verb, "released") == 0 ? ": delivery starts now"
		                                       : "");
	}
}

/* The reply of a bulk command (issue 16): counts, then the ids not found (exit 1). */
static int
print_bulk(const struct json *d, bool quiet)
{
	const char *act = json_gets(d, "action");
	const struct json *nf = json_get(d, "not_found");
	int64_t msgs = json_geti(d, "messages", 0), inf = json_geti(d, "in_flight", 0);
	int64_t rc = json_geti(d, "recipients", -1);
	size_t i;

	if (!quiet && strcmp(act, "flushed") == 0) {
		printf("flushed %lld message%s (due now)", (long long)msgs, msgs == 1 ? "" : "s");
		if (json_geti(d, "held", 0))
			printf(", %lld held left alone (release them)", (long long)json_geti(d, "held", 0));
	} else if (!quiet && rc >= 0) {
		printf("%s %lld recipient%s of %lld message%s (%lld left the queue)", act,
		       (long long)rc, rc == 1 ? "" : "s", (long long)msgs, msgs == 1 ? "" : "s",
		       (long long)json_geti(d, "removed", 0));
		if (json_get(d, "dsns"))
			printf("; %lld DSN%s queued", (long long)json_geti(d, "dsns", 0),
			       json_geti(d, "dsns", 0) == 1 ? "" : "s");
	} else if (!quiet) {
		printf("%s %lld message%s", act, (long long)msgs, msgs == 1 ? "" : "s");
	}
	if (!quiet && inf)
		printf(rc >= 0 ? "; %lld being delivered right now left alone (try again)"
		               : "; %lld being delivered right now (that attempt finishes)",
		       (long long)inf);
	if (!quiet)
		putchar('\n');
	for (i = 0; nf && i < nf->n; i++)
		fprintf(stderr, PROG ": no such message %s\n", nf->v[i]->s ? nf->v[i]->s : "?");
	return nf && nf->n > 0 ? 1 : 0;
}

/* ---- talking to the daemon ----------------------------------------------- */

/* Append " key=value" (value without spaces or line ends) to line. 0 / 2 (usage error). */
static int
add_word(char *line, size_t len, const char *key, const char *val)
{
	size_t used = strlen(line);

	if (val[strcspn(val, " \t\r\n")] != '\0')
		return usage_error("no spaces or line ends in", val);
	if (snprintf(line + used, len - used, " %s%s", key, val) >= (int)(len - used))
		return usage_error("too long for one request (at most 59 queue ids):", val);
	return 0;
}

/* VERB ALL | ID... | from=ADDR to=ADDR domain=DOMAIN (issue 16). 0 / 2. */
static int
bulk_line(int argc, char **argv, const struct qopts *o, char *line, size_t len)
{
	int i, rc = 0;

	if (argc > 1 && (o->from || o->to || o->domain))
		return usage_error("give queue ids, ALL, or --from/--to/--domain, not both, to",
		                   argv[0]);
	if (o->to && (!*o->to || !strchr(o->to, '@')))
		return usage_error("--to needs a recipient address, not", o->to);
	snprintf(line, len, "%s", argv[0]);
	for (char *p = line; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	for (i = 1; i < argc && rc == 0; i++)
		rc = add_word(line, len, "", argv[i]);
	if (rc == 0 && o->from) /* "<>" keeps the null sender one word */
		rc = add_word(line, len, "from=", *o->from ? o->from : "<>");
	if (rc == 0 && o->to)
		rc = add_word(line, len, "to=", o->to);
	if (rc == 0 && o->domain)
		rc = add_word(line, len, "domain=", o->domain);
	if (rc == 0 && strlen(line) + 1 >= len)
		return usage_error("too long for one request (at most 59 queue ids):", argv[0]);
	if (rc == 0)
		strcat(line, "\n");
	return rc;
}

/* The request line for a command and its arguments; NULL after a usage error. */
static int
build_line(int argc, char **argv, const struct qopts *o, char *line, size_t len)
{
	static const struct {
		const char *cmd, *verb;
		int nargs; /* 1: one argument; -1: zero or one; 0: none */
	} cmds[] = {
	    {"list", "LIST", 0},     {"show", "SHOW", 1},     {"summary", "SUMMARY", 0},
	    {"flush", "FLUSH", -1},  {"hold", "HOLD", 1},     {"release", "RELEASE", 1},
	    {"delete", "DELETE", 1}, {"bounce", "BOUNCE", 1},
	    {"bounce-digest", "BOUNCE-DIGEST", 0},
	};
	size_t i;
	int n = argc - 1;
	bool bulk = strcmp(argv[0], "flush") == 0 || strcmp(argv[0], "hold") == 0 ||
	            strcmp(argv[0], "release") == 0 || strcmp(argv[0], "delete") == 0 ||
	            strcmp(argv[0], "bounce") == 0;

	if ((o->from || o->to || o->domain) && !bulk)
		return usage_error("--from, --to and --domain are for hold, release, delete, bounce "
		                   "and flush, not",
		                   argv[0]);
	if (bulk && (n > 1 || o->from || o->to || o->domain))
		return bulk_line(argc, argv, o, line, len);
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[0], cmds[i].cmd) != 0)
			continue;
		if ((cmds[i].nargs == 1 && n != 1) || (cmds[i].nargs == 0 && n != 0) ||
		    (cmds[i].nargs == -1 && n > 1))
			return usage_error(cmds[i].nargs == 1 ? "one queue id is needed by"
			                                      : "wrong arguments for",
			                   argv[0]);
		if (o->limit && strcmp(argv[0], "list") != 0)
			return usage_error("--limit is only for list, not", argv[0]);
		if (strchr(n ? argv[1] : "", '\n') || strlen(n ? argv[1] : "") > 300)
			return usage_error("bad argument", argv[1]);
		snprintf(line, len, "%s%s%s\n", cmds[i].verb, n || o->limit ? " " : "",
		         n          ? argv[1]
		         : o->limit ? o->limit
		                    : "");
		return 0;
	}
	return usage_error("unknown queue command", argv[0]);
}

/* The options before the command into *o. -1: go on at optind; otherwise the exit status. */
static int
parse_opts(int argc, char **argv, struct qopts *o)
{
	enum { OPT_SOCKET = 256, OPT_JSON, OPT_LIMIT, OPT_FROM, OPT_TO, OPT_DOMAIN };
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"socket", required_argument, NULL, OPT_SOCKET},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"limit", required_argument, NULL, OPT_LIMIT},
	    {"from", required_argument, NULL, OPT_FROM},
	    {"to", required_argument, NULL, OPT_TO},
	    {"domain", required_argument, NULL, OPT_DOMAIN},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			o->conf = optarg;
			break;
		case OPT_SOCKET:
			o->socket = optarg;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_LIMIT:
			o->limit = optarg;
			break;
		case OPT_FROM:
			o->from = optarg;
			break;
		case OPT_TO:
			o->to = optarg;
			break;
		case OPT_DOMAIN:
			o->domain = optarg;
			break;
		case 'h':
			ctl_queue_usage(stdout);
			return 0;
		default:
			fputs("usage:\n", stderr);
			ctl_queue_usage(stderr);
			return 2;
		}
	}
	return -1;
}

/* The daemon's answer to cmd, for people. */
static void
print_reply(const char *cmd, const struct json *doc)
{
	if (strcmp(cmd, "list") == 0)
		print_list(doc);
	else if (strcmp(cmd, "show") == 0)
		print_show(doc);
	else if (strcmp(cmd, "summary") == 0)
		print_summary(doc);
	else if (strcmp(cmd, "bounce-digest") == 0)
		printf("bounce digests queued: %lld, refused: %lld\n",
		       (long long)json_geti(doc, "digests", 0), (long long)json_geti(doc, "refused", 0));
	else
		print_change(strcmp(cmd, "flush") == 0     ? "flushed"
		             : strcmp(cmd, "hold") == 0    ? "held"
		             : strcmp(cmd, "release") == 0 ? "released"
		             : strcmp(cmd, "delete") == 0  ? "deleted"
		                                           : "bounced",
		             doc);
}

int
ctl_queue(int argc, char **argv)
{
	struct qopts o = {0};
	char path[4096], line[1024], *raw = NULL;
	struct json *doc = NULL;
	const char *err;
	int rc;

	/* cat reads the spool itself, with options of its own (-h is its headers) */
	if (ctl_queue_is_cat(argc, argv))
		return ctl_queue_cat(argc, argv);
	if ((rc = parse_opts(argc, argv, &o)) >= 0)
		return rc;
	if (optind >= argc)
		return usage_error("a command is needed (list, show, summary, flush, ...)", NULL);
	if ((rc = build_line(argc - optind, argv + optind, &o, line, sizeof(line))) != 0)
		return rc;
	if (ctl_socket_path(PROG, o.conf, o.socket, path, sizeof(path)) != 0)
		return 1;
	if ((rc = ctl_request(PROG, path, line, &doc, &raw)) != 0)
		goto done;
	if (o.json) /* a long bulk run sends spaces first to show it is alive */
		fputs(raw + strspn(raw, " "), stdout);
	if ((err = json_gets(doc, "error")) != NULL) {
		fprintf(stderr, PROG ": %s\n", err);
		rc = 1;
	} else if (json_gets(doc, "action") != NULL) {
		rc = print_bulk(doc, o.json);
	} else if (!o.json) {
		print_reply(argv[optind], doc);
	}
done:
	json_free(doc);
	free(raw);
	return rc;
}
