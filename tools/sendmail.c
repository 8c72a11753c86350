/*
 * mxrelay-sendmail: the sendmail(8) command line for cron jobs and scripts
 * on the relay's host. Reads one message on standard input and hands it to
 * the running mxrelayd through its submit socket (see mta/control/submit.c), which
 * queues it like SMTP mail and answers only once it is on disk.
 *
 *   -t          recipients from To, Cc and Bcc too (Bcc is always removed)
 *   -i, -oi     a line with a single "." does not end the message
 *   -f SENDER   envelope sender (also -r); default USER@DOMAIN
 *   -F NAME     full name for the From header added when the message has none
 *   -C FILE     mxrelayd's configuration (for submit_socket)
 *   -oX..., -v, -N, -R, -B, -U, -h N, -p, -V, -X, -bm   accepted, ignored
 *   --help (or -h alone), --version
 *
 * The socket: submit_socket of -C FILE, else $MXRELAY_SUBMIT_SOCKET, else
 * /var/lib/mxrelay/submit.sock. Bare names ("root") get "@" and DOMAIN:
 * the daemon's local_sender, else its hostname (a host name seldom has a
 * mailbox: local_sender keeps cron's bounces from vanishing, issue 15). Exit status as sendmail's (sysexits.h): 0 queued,
 * 64 usage, 65 refused content, 67 bad address, 69 refused, 75 try later
 * (daemon not running or a temporary failure); a line on stderr says why.
 */
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include "mta/shared/config.h"
#include "mta/shared/addr.h"
#include "tools/ctlsock.h"
#include "tools/json.h"

#define PROG "mxrelay-sendmail"
#define DEFAULT_SOCKET "/var/lib/mxrelay/submit.sock"
#define LINE_MAX_IN (1024 * 1024) /* one input line; the daemon refuses > 998 anyway */
#define HDR_MAX (1024 * 1024)     /* To/Cc/Bcc text collected for -t */

struct buf {
	char *p;
	size_t len, cap;
};

struct opts {
	bool extract, dots_ok, verbose;
	const char *sender, *fullname, *conf;
};

static struct {
	char hostname[256]; /* the domain of bare names: local_sender, else the hostname */
	unsigned long long max_size;
	char path[4096];
} daemon_info;

static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void
die(int code, const char *fmt, ...)
{
	va_list ap;
	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

static void
badd(struct buf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 8192;
		while (cap < b->len + n + 1)
			cap *= 2;
		if ((b->p = realloc(b->p, cap)) == NULL)
			die(EX_OSERR, "out of memory");
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
badds(struct buf *b, const char *s)
{
	badd(b, s, strlen(s));
}

/* ---- the daemon -------------------------------------------------------- */

static struct json *
ask(const char *request, size_t reqlen)
{
	char err[128], *raw;
	size_t len;
	struct json *doc;
	int fd = ctlsock_connect(daemon_info.path);

	if (fd < 0) {
		if (errno == ENOENT || errno == ECONNREFUSED)
			die(EX_TEMPFAIL, "mxrelayd is not running (submit socket %s: %s)",
			    daemon_info.path, strerror(errno));
		die(EX_TEMPFAIL, "submit socket %s: %s", daemon_info.path, strerror(errno));
	}
	if (ctlsock_send(fd, request, reqlen) != 0 || (raw = ctlsock_read_all(fd, &len)) == NULL)
		die(EX_TEMPFAIL, "submit socket %s: %s", daemon_info.path, strerror(errno));
	close(fd);
	if ((doc = json_parse(raw, len, err, sizeof(err))) == NULL)
		die(EX_TEMPFAIL, "no answer from mxrelayd (%s)", len ? err : "connection closed");
	free(raw);
	return doc;
}

static void
get_info(void)
{
	struct json *doc = ask("INFO\n", 5);
	const char *host = json_gets(doc, "hostname"), *err = json_gets(doc, "error");
	const char *local = json_gets(doc, "local_sender");

	if (err)
		die(EX_UNAVAILABLE, "mxrelayd refused: %s", err);
	if (host == NULL || strlen(host) >= sizeof(daemon_info.hostname))
		die(EX_UNAVAILABLE, "mxrelayd did not tell its hostname");
	if (local != NULL && *local != '\0' && strlen(local) < sizeof(daemon_info.hostname))
		host = local;
	snprintf(daemon_info.hostname, sizeof(daemon_info.hostname), "%s", host);
	daemon_info.max_size = (unsigned long long)json_geti(doc, "max_message_size", 35 << 20);
	json_free(doc);
}

/* "root" -> "root@DOMAIN" (local_sender or hostname); anything with an '@' stays. malloc'd. */
static char *
qualify(const char *a)
{
	size_t n = strlen(a) + strlen(daemon_info.hostname) + 2;
	char *q = malloc(n);

	if (q == NULL)
		die(EX_OSERR, "out of memory");
	if (strchr(a, '@') || *a == '\0')
		snprintf(q, n, "%s", a);
	else
		snprintf(q, n, "%s@%s", a, daemon_info.hostname);
	return q;
}

/* ---- the message ---------------------------------------------------------- */

struct msg {
	struct buf out;           /* CRLF, dot-stuffed */
	struct buf rcpt_hdrs;     /* To, Cc, Bcc values for -t, one per line */
	bool in_header, skipping; /* skipping: inside a Bcc field */
	bool collecting;          /* inside a To/Cc/Bcc field (for -t) */
	bool seen_from;
	uint64_t stuffed; /* octets the daemon will count */
};

static bool
is_field(const char *line, size_t n, const char *name)
{
	size_t k = strlen(name);
	return n > k && line[k] == ':' && strncasecmp(line, name, k) == 0;
}

static bool
is_header_line(const char *l, size_t n)
{
	size_t i;
	for (i = 0; i < n && l[i] != ':'; i++)
		if ((unsigned char)l[i] <= 32 || (unsigned char)l[i] >= 127)
			return false;
	return i > 0 && i < n;
}

/* One output line (without its line end): dot-stuffed, CRLF. */
static void
put_line(struct msg *m, const char *l, size_t n)
{
	if (n > 0 && l[0] == '.') {
		badd(&m->out, ".", 1); /* RFC 5321 4.5.2 */
		m->stuffed++;
	}
	badd(&m->out, l, n);
	badd(&m->out, "\r\n", 2);
	m->stuffed += n + 2;
	if (m->stuffed > daemon_info.max_size)
		die(EX_DATAERR, "message too big: mxrelayd takes at most %llu bytes",
		    daemon_info.max_size);
}

/* RFC 2047 encoded word for a non-ASCII display name. */
static void
put_name(struct buf *b, const char *name)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = (const unsigned char *)name;
	size_t n = strlen(name), i;
	bool ascii = true;

	for (i = 0; i < n; i++)
		if (p[i] >= 0x80 || p[i] < 0x20)
			ascii = false;
	if (ascii) {
		badd(b, "\"", 1);
		for (i = 0; i < n; i++) {
			if (p[i] == '"' || p[i] == '\\')
				badd(b, "\\", 1);
			badd(b, &p[i], 1);
		}
		badd(b, "\"", 1);
		return;
	}
	badds(b, "=?UTF-8?B?");
	for (i = 0; i < n && i < 300; i += 3) {
		unsigned v =
		    p[i] << 16 | (i + 1 < n ? p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
		char q[4] = {b64[v >> 18], b64[(v >> 12) & 63],
		             i + 1 < n ? b64[(v >> 6) & 63] : '=', i + 2 < n ? b64[v & 63] : '='};
		badd(b, q, 4);
	}
	badds(b, "?=");
}

/* The header ends: add From when the message has none. */
static void
end_header(struct msg *m, const struct opts *o, const char *from_addr)
{
	if (!m->seen_from) {
		struct buf f = {0};
		badds(&f, "From: ");
		if (o->fullname && *o->fullname) {
			put_name(&f, o->fullname);
			badds(&f, " <");
			badds(&f, from_addr);
			badds(&f, ">");
		} else {
			badds(&f, from_addr);
		}
		put_line(m, f.p, f.len);
		free(f.p);
	}
	m->in_header = false;
}

static void
header_line(struct msg *m, const struct opts *o, const char *l, size_t n)
{
	if (n > 0 && (l[0] == ' ' || l[0] == '\t')) {
		if (m->collecting && m->rcpt_hdrs.len + n < HDR_MAX) {
			badd(&m->rcpt_hdrs, " ", 1);
			badd(&m->rcpt_hdrs, l, n);
		}
		if (!m->skipping)
			put_line(m, l, n);
		return;
	}
	if (m->collecting)
		badd(&m->rcpt_hdrs, "\n", 1);
	m->skipping = is_field(l, n, "Bcc");
	m->collecting = o->extract && (m->skipping || is_field(l, n, "To") || is_field(l, n, "Cc"));
	if (m->collecting && m->rcpt_hdrs.len + n < HDR_MAX) {
		const char *colon = memchr(l, ':', n);
		badd(&m->rcpt_hdrs, colon + 1, n - (size_t)(colon + 1 - l));
	}
	if (is_field(l, n, "From"))
		m->seen_from = true;
	if (!m->skipping)
		put_line(m, l, n);
}

/* Read standard input into m (bounded), the way sendmail reads it. */
static void
read_message(struct msg *m, const struct opts *o, const char *from_addr)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t r;

	m->in_header = true;
	while ((r = getline(&line, &cap, stdin)) > 0) {
		size_t n = (size_t)r;
		if ((size_t)r > LINE_MAX_IN)
			die(EX_DATAERR, "input line longer than %d bytes", LINE_MAX_IN);
		if (line[n - 1] == '\n')
			n--;
		if (n > 0 && line[n - 1] == '\r')
			n--;
		/* sendmail without -i: a lone "." ends the message */
		if (!o->dots_ok && n == 1 && line[0] == '.')
			break;
		if (m->in_header) {
			if (n > 0 &&
			    (is_header_line(line, n) || line[0] == ' ' || line[0] == '\t')) {
				header_line(m, o, line, n);
				continue;
			}
			if (m->collecting)
				badd(&m->rcpt_hdrs, "\n", 1);
			m->collecting = m->skipping = false;
			end_header(m, o, from_addr);
			if (n > 0)
				put_line(m, "", 0); /* the body began without a blank line */
		}
		put_line(m, line, n);
	}
	if (ferror(stdin))
		die(EX_IOERR, "reading standard input: %s", strerror(errno));
	if (m->in_header) {
		end_header(m, o, from_addr);
		put_line(m, "", 0);
	}
	free(line);
}

/* ---- the envelope ------------------------------------------------------- */

struct rcpts {
	char **v;
	size_t n;
};

static void
add_rcpt(struct rcpts *r, const char *a)
{
	char *q = qualify(a);
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->v[i], q) == 0) {
			free(q);
			return;
		}
	if ((r->v = realloc(r->v, (r->n + 1) * sizeof(*r->v))) == NULL)
		die(EX_OSERR, "out of memory");
	r->v[r->n++] = q;
}

static void
rcpts_from_headers(struct rcpts *r, const struct buf *h)
{
	const char *p = h->p ? h->p : "";

	while (*p) {
		size_t n = strcspn(p, "\n");
		char a[ADDR_MAX];
		struct addr_list l;
		enum addr_status st;

		/* an address-list (RFC 5322 3.4) read strictly: a bad one is not skipped */
		addr_list_init(&l, p, n, ADDR_L_GROUPS);
		while ((st = addr_list_next(&l, a, sizeof(a))) == ADDR_OK)
			add_rcpt(r, a);
		if (st != ADDR_END)
			die(EX_DATAERR, "cannot read the recipients in a To, Cc or Bcc header: %s",
			    addr_strerror(st));
		p += n + (p[n] == '\n');
	}
}

static void
check_arg(const char *what, const char *v)
{
	if (strlen(v) >= ADDR_MAX || strpbrk(v, "\r\n"))
		die(EX_NOUSER, "bad %s address '%s'", what, v);
}

static void
submit(const char *sender, const struct rcpts *r, const struct msg *m, bool verbose)
{
	struct buf req = {0};
	char n[32];
	struct json *doc;
	const char *err, *code;

	badds(&req, "SUBMIT\nFROM ");
	badds(&req, sender);
	badds(&req, "\n");
	for (size_t i = 0; i < r->n; i++) {
		badds(&req, "TO ");
		badds(&req, r->v[i]);
		badds(&req, "\n");
	}
	snprintf(n, sizeof(n), "DATA %zu\n", m->out.len);
	badds(&req, n);
	badd(&req, m->out.p ? m->out.p : "", m->out.len);
	doc = ask(req.p, req.len);
	free(req.p);
	if ((err = json_gets(doc, "error")) != NULL) {
		code = json_gets(doc, "code");
		fprintf(stderr, PROG ": %s%s%s%s\n", err, code ? " (" : "", code ? code : "",
		        code ? ")" : "");
		exit(code == NULL            ? EX_UNAVAILABLE
		     : code[0] == '4'        ? EX_TEMPFAIL
		     : strstr(code, " 5.1.") ? EX_NOUSER
		                             : EX_DATAERR);
	}
	if (json_gets(doc, "queued") == NULL)
		die(EX_TEMPFAIL, "unexpected answer from mxrelayd");
	if (verbose)
		printf("queued as %s\n", json_gets(doc, "queued"));
	json_free(doc);
}

/* ---- main ------------------------------------------------------------------ */

static void
usage(FILE *f)
{
	fputs("usage: " PROG " [-t] [-i] [-f SENDER] [-F NAME] [-C FILE] [--] [RECIPIENT...]\n"
	      "  reads a message on standard input and queues it with the running mxrelayd\n"
	      "  -t          recipients from To, Cc and Bcc too (Bcc is removed)\n"
	      "  -i, -oi     a line with a single \".\" does not end the message\n"
	      "  -f SENDER   envelope sender (also -r SENDER); default USER@HOSTNAME\n"
	      "  -F NAME     full name for the From header added when the message has none\n"
	      "  -C FILE     mxrelayd's configuration, for its submit_socket (default:\n"
	      "              $MXRELAY_SUBMIT_SOCKET, else " DEFAULT_SOCKET ")\n"
	      "  -v          print the daemon's answer\n"
	      "  -bm         read mail from standard input (the only mode)\n"
	      "  -oX, -B X, -h N, -N X, -n, -p X, -R X, -U, -V X, -X X\n"
	      "              sendmail options, accepted and ignored\n"
	      "  --help      this help (also -h alone); --version: the version\n"
	      "exit status: 0 queued, 64 usage, 65 refused content, 67 bad address,\n"
	      "  69 refused, 75 mxrelayd not running or a temporary failure\n",
	      f);
}

static void
usage_error(void)
{
	usage(stderr);
	exit(EX_USAGE);
}

/* The letters that set an option in *o; false when c is not one of them. */
static bool
take_opt(struct opts *o, int c)
{
	switch (c) {
	case 't':
		o->extract = true;
		break;
	case 'i':
		o->dots_ok = true;
		break;
	case 'o':
		if (optarg[0] == 'i' && optarg[1] == '\0')
			o->dots_ok = true; /* -oi; other -oX are sendmail.cf options */
		break;
	case 'f':
	case 'r':
		o->sender = optarg;
		break;
	case 'F':
		o->fullname = optarg;
		break;
	case 'C':
		o->conf = optarg;
		break;
	case 'v':
		o->verbose = true;
		break;
	default:
		return false;
	}
	return true;
}

/* The other letters: modes, sendmail's ignored ones, --help, --version; exits on an unknown one. */
static void
other_opt(int c)
{
	switch (c) {
	case 'b':
		if (strcmp(optarg, "m") != 0)
			die(EX_USAGE, "-b%s is not supported (only mail from standard input)",
			    optarg);
		break;
	case 'q':
		die(EX_USAGE, "-q is not supported: mxrelayd runs its own queue");
	case 'B':
	case 'h':
	case 'N':
	case 'n':
	case 'p':
	case 'R':
	case 'U':
	case 'V':
	case 'X':
		break;
	case 1:
		usage(stdout);
		exit(EX_OK);
	case 2:
		printf(PROG " %s\n", MXRELAY_VERSION);
		exit(EX_OK);
	default:
		usage_error();
	}
}

static void
parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 1}, {"version", no_argument, NULL, 2}, {NULL, 0, NULL, 0}};
	int c;

	/* sendmail's -h takes a hop count: only a lone -h asks for help */
	if (argc == 2 && strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		exit(EX_OK);
	}
	/* sendmail's letters; those that take a value take it even when ignored */
	while ((c = getopt_long(argc, argv, "B:b:C:F:f:h:iN:no:p:q:R:r:tUvV:X:", longopts, NULL)) !=
	       -1)
		if (!take_opt(o, c))
			other_opt(c);
}

static void
find_socket(const struct opts *o)
{
	const char *env = getenv("MXRELAY_SUBMIT_SOCKET");

	if (o->conf) {
		struct config *c = NULL;
		char err[1024];
		if (config_load(&c, o->conf, err, sizeof(err)) != 0)
			die(EX_CONFIG, "%s", err);
		snprintf(daemon_info.path, sizeof(daemon_info.path), "%s", c->submit_socket);
		config_free(c);
	} else {
		snprintf(daemon_info.path, sizeof(daemon_info.path), "%s",
		         env && *env ? env : DEFAULT_SOCKET);
	}
}

int
main(int argc, char **argv)
{
	struct opts o = {0};
	struct msg m = {0};
	struct rcpts r = {0};
	struct passwd *pw = getpwuid(getuid());
	char user[64], *sender, *from_addr;
	int i;

	parse_opts(argc, argv, &o);
	if (pw && strlen(pw->pw_name) < sizeof(user))
		snprintf(user, sizeof(user), "%s", pw->pw_name);
	else
		snprintf(user, sizeof(user), "uid%u", (unsigned)getuid());
	find_socket(&o);
	get_info();
	for (i = optind; i < argc; i++) {
		check_arg("recipient", argv[i]);
		add_rcpt(&r, argv[i]);
	}
	if (o.sender) {
		char bare[ADDR_MAX];
		size_t n = strlen(o.sender);
		check_arg("sender", o.sender);
		/* "<a@b>" and "<>" as well as "a@b" */
		if (n >= 2 && o.sender[0] == '<' && o.sender[n - 1] == '>')
			snprintf(bare, sizeof(bare), "%.*s", (int)n - 2, o.sender + 1);
		else
			snprintf(bare, sizeof(bare), "%s", o.sender);
		sender = qualify(bare);
	} else {
		sender = qualify(user);
	}
	/* the header From: the sender, or the user for mail with a null sender */
	from_addr = *sender ? sender : qualify(user);
	read_message(&m, &o, from_addr);
	if (o.extract)
		rcpts_from_headers(&r, &m.rcpt_hdrs);
	if (r.n == 0)
		die(EX_USAGE, "no recipients: name them as arguments%s",
		    o.extract ? " or in To, Cc or Bcc" : " or use -t");
	submit(sender, &r, &m, o.verbose);
	for (size_t k = 0; k < r.n; k++)
		free(r.v[k]);
	free(r.v);
	if (from_addr != sender)
		free(from_addr);
	free(sender);
	free(m.out.p);
	free(m.rcpt_hdrs.p);
	return EX_OK;
}
