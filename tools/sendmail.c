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
 *   -C FILE     mxrelayd's configuration (for submit_socket, control_socket)
 *   -bm         mail from standard input (the default mode)
 *   -bp         list the queue (also: called as mailq), sendmail_bp.c
 *   -bs         SMTP on standard input and output, sendmail_bs.c
 *   -q, -qR DOMAIN, -qI QUEUEID   deliver queued mail now (-qINTERVAL: ignored)
 *   -oX..., -v, -N, -R, -B, -U, -h N, -p, -V, -X   accepted, ignored
 *   --help (or -h alone), --version
 *
 * The sockets: submit_socket and control_socket of -C FILE, else
 * $MXRELAY_SUBMIT_SOCKET and $MXRELAY_CONTROL_SOCKET, else
 * /var/lib/mxrelay/submit.sock and control.sock. Bare names ("root") get
 * "@" and DOMAIN: the daemon's local_sender, else its hostname (a host name
 * seldom has a mailbox: local_sender keeps cron's bounces from vanishing,
 * issue 15). Exit status as sendmail's (sysexits.h): 0 queued, 64 usage, 65
 * refused content, 67 bad address, 69 refused (or, for -bp and -q, the
 * daemon not running), 75 try later (daemon not running or a temporary
 * failure), 77 -bp or -q by a user outside the group mxrelay; a line on
 * stderr says why.
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
#include "tools/sendmail.h"
#include "tools/sendmail_smtp.h"

#define PROG "mxrelay-sendmail"
#define DEFAULT_SOCKET "/var/lib/mxrelay/submit.sock"
#define DEFAULT_CONTROL "/var/lib/mxrelay/control.sock"
#define LINE_MAX_IN (1024 * 1024) /* one input line; the daemon refuses > 998 anyway */
#define HDR_MAX (1024 * 1024)     /* To/Cc/Bcc text collected for -t */

struct buf {
	char *p;
	size_t len, cap;
};

enum sm_mode { MODE_MAIL, MODE_QUEUE, MODE_SMTP, MODE_FLUSH };

struct opts {
	bool extract, dots_ok, verbose;
	const char *sender, *fullname, *conf;
	enum sm_mode mode;
	const char *flush; /* -qR DOMAIN, -qI ID: what to flush (NULL: all) */
	bool q_interval;   /* -q30m: sendmail's queue-runner interval (ours runs always) */
};

#define die sm_die

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
	if (m->stuffed > sm_daemon.max_size)
		die(EX_DATAERR, "message too big: mxrelayd takes at most %llu bytes",
		    sm_daemon.max_size);
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
			    (smtp_header_line(line, n) || line[0] == ' ' || line[0] == '\t')) {
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
	char *q = sm_qualify(a);
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
	struct sm_result res;
	const char *code = res.code;

	if (sm_submit(sender, r->v, r->n, m->out.p ? m->out.p : "", m->out.len, &res) == 0) {
		if (verbose)
			printf("queued as %s\n", res.qid);
		return;
	}
	if (*code)
		fprintf(stderr, PROG ": %s (%s)\n", res.text, code);
	else
		fprintf(stderr, PROG ": %s\n", res.text);
	exit(code[0] == '4'               ? EX_TEMPFAIL
	     : strstr(code, " 5.1.")      ? EX_NOUSER
	     : strncmp(code, "5", 1) == 0 ? EX_DATAERR
	                                  : EX_UNAVAILABLE);
}

/* ---- main ------------------------------------------------------------------ */

static void
usage(FILE *f)
{
	fputs("usage: " PROG " [-t] [-i] [-f SENDER] [-F NAME] [-C FILE] [--] [RECIPIENT...]\n"
	      "       " PROG " -bp [-C FILE]     (also: mailq [-C FILE])\n"
	      "       " PROG " -bs [-C FILE]\n"
	      "       " PROG " -q [-C FILE] | -qR DOMAIN | -qI QUEUEID\n"
	      "  reads a message on standard input and queues it with the running mxrelayd\n"
	      "  -t          recipients from To, Cc and Bcc too (Bcc is removed)\n"
	      "  -i, -oi     a line with a single \".\" does not end the message\n"
	      "  -f SENDER   envelope sender (also -r SENDER); default USER@HOSTNAME\n"
	      "  -F NAME     full name for the From header added when the message has none\n"
	      "  -C FILE     mxrelayd's configuration, for its submit_socket and control_socket\n"
	      "              (default: $MXRELAY_SUBMIT_SOCKET and $MXRELAY_CONTROL_SOCKET, else\n"
	      "              " DEFAULT_SOCKET " and " DEFAULT_CONTROL ")\n"
	      "  -v          print the daemon's answer\n"
	      "  -bm         read mail from standard input (the default)\n"
	      "  -bp         list the queue like Postfix's mailq: queue id (* being delivered,\n"
	      "              ! held), size, arrival time, sender, then each pending recipient\n"
	      "              under its last reply; root and the group mxrelay only\n"
	      "  -bs         speak SMTP on standard input and output (no AUTH, no STARTTLS):\n"
	      "              each message is queued as by " PROG ", as your uid\n"
	      "  -q          deliver every queued message now (postqueue -f); -qR DOMAIN:\n"
	      "              those for DOMAIN; -qI QUEUEID: that one; -qINTERVAL: ignored\n"
	      "  -oX, -B X, -h N, -N X, -n, -p X, -R X, -U, -V X, -X X\n"
	      "              sendmail options, accepted and ignored\n"
	      "  --help      this help (also -h alone); --version: the version\n"
	      "exit status: 0 queued, 64 usage, 65 refused content, 67 bad address,\n"
	      "  69 refused (-bp, -q: mxrelayd not running), 75 mxrelayd not running or a\n"
	      "  temporary failure, 77 -bp or -q outside the group mxrelay\n",
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

/* -bX: the mode. */
static void
take_mode(struct opts *o, const char *arg)
{
	if (strcmp(arg, "m") == 0)
		o->mode = MODE_MAIL;
	else if (strcmp(arg, "p") == 0)
		o->mode = MODE_QUEUE;
	else if (strcmp(arg, "s") == 0)
		o->mode = MODE_SMTP;
	else
		die(EX_USAGE, "-b%s is not supported (-bm, -bp and -bs are)", arg);
}

/*
 * -q: flush everything; -qR DOMAIN (sendmail's -qRsite, Postfix's flush of a
 * site) and -qI QUEUEID the ones named; -q30m (a queue runner's interval)
 * is a no-op, as in Postfix: mxrelayd schedules its own retries.
 */
static void
take_q(struct opts *o, const char *arg)
{
	o->mode = MODE_FLUSH;
	if (arg == NULL || *arg == '\0')
		return;
	if (arg[0] == 'R' || arg[0] == 'I') {
		o->flush = arg[1] ? arg + 1 : NULL; /* NULL: the next argument (q_value) */
		return;
	}
	if (strspn(arg, "0123456789smhdw") != strlen(arg))
		die(EX_USAGE, "-q%s: want -q, -qR DOMAIN, -qI QUEUEID or -qINTERVAL", arg);
	o->q_interval = true;
}

/* The other letters: modes, sendmail's ignored ones, --help, --version; exits on an unknown one. */
static void
other_opt(struct opts *o, int c)
{
	switch (c) {
	case 'b':
		take_mode(o, optarg);
		break;
	case 'q':
		take_q(o, optarg);
		break;
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

/* "-qR DOMAIN" and "-qI ID" with the value as the next argument. */
static void
q_value(int argc, char **argv, struct opts *o)
{
	const char *prev;

	if (o->mode != MODE_FLUSH || o->flush != NULL || optind < 2)
		return;
	prev = argv[optind - 1];
	if (strcmp(prev, "-qR") == 0 || strcmp(prev, "-qI") == 0) {
		if (optind >= argc)
			die(EX_USAGE, "%s needs a value", prev);
		o->flush = argv[optind++];
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
	/* sendmail's letters; those taking a value take it even when ignored; -q's is optional */
	while ((c = getopt_long(argc, argv, "B:b:C:F:f:h:iN:no:p:q::R:r:tUvV:X:", longopts,
	                        NULL)) != -1) {
		if (!take_opt(o, c))
			other_opt(o, c);
		q_value(argc, argv, o);
	}
}

static void
find_sockets(const struct opts *o)
{
	const char *env = getenv("MXRELAY_SUBMIT_SOCKET"), *cenv = getenv("MXRELAY_CONTROL_SOCKET");

	if (o->conf) {
		struct config *c = NULL;
		char err[1024];
		if (config_load(&c, o->conf, err, sizeof(err)) != 0)
			die(EX_CONFIG, "%s", err);
		snprintf(sm_daemon.submit_path, sizeof(sm_daemon.submit_path), "%s",
		         c->submit_socket);
		snprintf(sm_daemon.control_path, sizeof(sm_daemon.control_path), "%s",
		         c->control_socket);
		config_free(c);
		return;
	}
	snprintf(sm_daemon.submit_path, sizeof(sm_daemon.submit_path), "%s",
	         env && *env ? env : DEFAULT_SOCKET);
	snprintf(sm_daemon.control_path, sizeof(sm_daemon.control_path), "%s",
	         cenv && *cenv ? cenv : DEFAULT_CONTROL);
}

/* The envelope sender of -f (or the user): "<a@b>", "<>" and "a@b" alike, qualified. malloc'd. */
static char *
envelope_sender(const struct opts *o, const char *user)
{
	char bare[ADDR_MAX];
	size_t n;

	if (o->sender == NULL)
		return sm_qualify(user);
	n = strlen(o->sender);
	check_arg("sender", o->sender);
	if (n >= 2 && o->sender[0] == '<' && o->sender[n - 1] == '>')
		snprintf(bare, sizeof(bare), "%.*s", (int)n - 2, o->sender + 1);
	else
		snprintf(bare, sizeof(bare), "%s", o->sender);
	return sm_qualify(bare);
}

/* -bp, -q, -bs: their own paths. Returns only for plain mail. */
static void
other_modes(const struct opts *o, int nargs)
{
	if (o->mode == MODE_MAIL)
		return;
	if (nargs > 0 && o->mode != MODE_SMTP)
		die(EX_USAGE, "%s takes no recipients", o->mode == MODE_QUEUE ? "-bp" : "-q");
	if (o->mode == MODE_QUEUE)
		exit(sm_mailq());
	if (o->mode == MODE_FLUSH)
		exit(o->q_interval ? EX_OK : sm_flush(o->flush));
	if (nargs > 0)
		die(EX_USAGE, "-bs takes no recipients: they come with RCPT TO");
	sm_get_info();
	exit(sm_smtp_session());
}

int
main(int argc, char **argv)
{
	struct opts o = {0};
	struct msg m = {0};
	struct rcpts r = {0};
	struct passwd *pw = getpwuid(getuid());
	const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	char user[64], *sender, *from_addr;
	int i;

	/* mailq is this program by another name (a symlink), as with Postfix and sendmail */
	if (strcmp(base, "mailq") == 0) {
		sm_prog = "mailq";
		o.mode = MODE_QUEUE;
	}
	parse_opts(argc, argv, &o);
	if (pw && strlen(pw->pw_name) < sizeof(user))
		snprintf(user, sizeof(user), "%s", pw->pw_name);
	else
		snprintf(user, sizeof(user), "uid%u", (unsigned)getuid());
	find_sockets(&o);
	other_modes(&o, argc - optind);
	sm_get_info();
	for (i = optind; i < argc; i++) {
		check_arg("recipient", argv[i]);
		add_rcpt(&r, argv[i]);
	}
	sender = envelope_sender(&o, user);
	/* the header From: the sender, or the user for mail with a null sender */
	from_addr = *sender ? sender : sm_qualify(user);
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
