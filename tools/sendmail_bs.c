/*
 * sendmail_bs: `mxrelay-sendmail -bs`, the server side of SMTP (RFC 5321)
 * on standard input and output, as sendmail and Postfix offer it to local
 * programs (PHP mailers, some monitoring tools). No AUTH and no STARTTLS:
 * the caller is the local user, and each message is handed to the daemon
 * through the submit socket exactly as `mxrelay-sendmail` hands its own
 * (same content rules, the uid in the Received header, the same log).
 *
 * Bounded: a command line (BS_LINE_MAX), a text line (998 octets, RFC 5322
 * 2.1.1, the daemon's limit too), the message (the daemon's
 * max_message_size, read from INFO), recipients (its max_recipients),
 * errors (BS_ERRORS_MAX) and silence (the listener's session_timeout, from
 * INFO; 5 minutes by default, RFC 5321 4.5.3.2.7).
 * Replies use the listener's words and RFC 3463 codes (mta/reply.c).
 * Line ends: CRLF, or a bare LF (a pipe is not the network: scripts write
 * LF); only a line holding "." ends DATA. Replies are flushed whenever no
 * more input is waiting, so pipelined commands (RFC 2920) get their
 * replies in one write.
 */
#include "tools/sendmail.h"
#include "tools/sendmail_smtp.h"

#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#define BS_LINE_MAX 2048 /* a command (RFC 5321 4.5.3.1.4: 512, more with extensions) */
#define BS_TEXT_MAX 998  /* a message line without its CRLF (RFC 5322 2.1.1) */
#define BS_ERRORS_MAX 20 /* refused commands in one session */
#define BS_INBUF 16384

/* Standard input, read in blocks, with a deadline per read. */
struct input {
	char buf[BS_INBUF];
	size_t pos, end;
	bool eof;
};

struct session {
	struct input in;
	bool esmtp;
	bool in_tx;            /* MAIL given */
	struct smtp_mail mail; /* its sender and parameters */
	char **rcpts;
	size_t nrcpts;
	unsigned errors;
	char user[64]; /* the caller, for the From of a null-sender message */
};

struct body {
	char *p;
	size_t len, cap;
	bool in_header, seen_from;
	bool too_long, too_big;
};

/* ---- input and output ------------------------------------------------------ */

static void
out_flush(void)
{
	if (fflush(stdout) != 0)
		exit(EX_IOERR); /* the client went away: nothing to tell it */
}

/* "CODE ENH text" (ENH "" for 220, 354) with CRLF; sent at the next flush. */
static void reply(int code, const char *enh, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void
reply(int code, const char *enh, const char *fmt, ...)
{
	va_list ap;

	printf("%d %s%s", code, enh, *enh ? " " : "");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputs("\r\n", stdout);
}

/* More input into in->buf: 1, 0 at the end, -1 after sm_daemon.idle seconds of silence. */
static int
fill(struct input *in)
{
	struct pollfd pfd = {STDIN_FILENO, POLLIN, 0};
	ssize_t r;

	out_flush(); /* nothing more to read now: the client waits for our replies */
	if (in->pos > 0) {
		memmove(in->buf, in->buf + in->pos, in->end - in->pos);
		in->end -= in->pos;
		in->pos = 0;
	}
	for (;;) {
		int n = poll(&pfd, 1, (int)sm_daemon.idle * 1000);
		if (n == 0)
			return -1;
		if (n < 0 && errno == EINTR)
			continue;
		r = read(STDIN_FILENO, in->buf + in->end, sizeof(in->buf) - in->end);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			in->eof = true;
			return 0;
		}
		in->end += (size_t)r;
		return 1;
	}
}

/*
 * One line without its line end (CRLF or LF) into out (max octets and a
 * NUL); *toolong when it had more (the rest is read and dropped). 1: a
 * line, 0: end of input, -1: timeout.
 */
static int
read_line(struct input *in, char *out, size_t max, size_t *len, bool *toolong)
{
	size_t n = 0;
	int r;

	*toolong = false;
	for (;;) {
		char *nl = memchr(in->buf + in->pos, '\n', in->end - in->pos);
		size_t take = (nl ? (size_t)(nl - in->buf) : in->end) - in->pos;
		size_t room = max - n;

		memcpy(out + n, in->buf + in->pos, take < room ? take : room);
		n += take < room ? take : room;
		*toolong |= take > room;
		in->pos += take + (nl != NULL);
		if (nl != NULL || (in->eof && n > 0))
			break;
		if (in->eof)
			return 0;
		if ((r = fill(in)) < 0)
			return -1;
		if (r == 0 && n == 0)
			return 0;
	}
	/* a CR before the LF belongs to the line end; one kept by a cut line does not */
	if (n > 0 && out[n - 1] == '\r' && !*toolong)
		n--;
	out[n] = '\0';
	*len = n;
	return 1;
}

/* ---- one transaction ---------------------------------------------------- */

static void
tx_reset(struct session *s)
{
	for (size_t i = 0; i < s->nrcpts; i++)
		free(s->rcpts[i]);
	free(s->rcpts);
	s->rcpts = NULL;
	s->nrcpts = 0;
	s->in_tx = false;
	memset(&s->mail, 0, sizeof(s->mail));
}

static void
body_add(struct body *b, const char *p, size_t n)
{
	/* the size the daemon counts: stuffed octets and CRLFs */
	if (b->too_big || b->len + n + 2 > sm_daemon.max_size) {
		b->too_big = true; /* read to the end, keep nothing more */
		return;
	}
	if (b->len + n + 3 > b->cap) {
		size_t cap = b->cap ? b->cap : 16384;
		while (cap < b->len + n + 3)
			cap *= 2;
		if ((b->p = realloc(b->p, cap)) == NULL)
			sm_die(EX_OSERR, "out of memory");
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	memcpy(b->p + b->len + n, "\r\n", 2);
	b->len += n + 2;
}

/* The header ends: a message without From gets one, as mxrelay-sendmail's own mail does. */
static void
end_header(struct session *s, struct body *b)
{
	char from[ADDR_MAX + 300];

	b->in_header = false;
	if (b->seen_from)
		return;
	if (s->mail.addr[0])
		snprintf(from, sizeof(from), "From: %s", s->mail.addr);
	else
		snprintf(from, sizeof(from), "From: %s@%s", s->user, sm_daemon.domain);
	body_add(b, from, strlen(from));
}

/* One line of DATA as the client sent it (still dot-stuffed). */
static void
body_line(struct session *s, struct body *b, const char *l, size_t n)
{
	const char *u = n > 0 && l[0] == '.' ? l + 1 : l; /* without the stuffed dot */
	size_t un = n - (size_t)(u - l);

	if (b->in_header) {
		if (un > 0 && (u[0] == ' ' || u[0] == '\t' || smtp_header_line(u, un))) {
			if (un > 5 && strncasecmp(u, "From:", 5) == 0)
				b->seen_from = true;
		} else {
			end_header(s, b);
			if (un > 0)
				body_add(b, "", 0); /* the body began without a blank line */
		}
	}
	body_add(b, l, n);
}

/* Read DATA up to the "." line: 0, or -1 when the input ended or went quiet. */
static int
read_body(struct session *s, struct body *b)
{
	char line[BS_TEXT_MAX + 2];
	size_t n;
	bool toolong;
	int r;

	b->in_header = true;
	while ((r = read_line(&s->in, line, sizeof(line) - 1, &n, &toolong)) == 1) {
		if (!toolong && n == 1 && line[0] == '.')
			break;
		/* a stuffed dot is not part of the line (RFC 5321 4.5.2) */
		if (toolong || n - (n > 0 && line[0] == '.') > BS_TEXT_MAX)
			b->too_long = true;
		else
			body_line(s, b, line, n);
	}
	if (r != 1)
		return -1;
	if (b->in_header)
		end_header(s, b);
	return 0;
}

/* "550 5.6.0" and the like: anything else from the daemon reads as 451 4.3.0. */
static bool
reply_code_ok(const char *c)
{
	return strlen(c) >= 9 && (c[0] == '4' || c[0] == '5') && c[3] == ' ' && c[5] == '.' &&
	       strspn(c, "0123456789. ") == strlen(c);
}

static int
do_data(struct session *s, const char *arg)
{
	struct body b = {0};
	struct sm_result res;

	if (*arg)
		reply(501, "5.5.4", "DATA takes no arguments");
	else if (!s->in_tx)
		reply(503, "5.5.1", "Need MAIL command first");
	else if (s->nrcpts == 0)
		reply(554, "5.5.1", "No valid recipients");
	if (*arg || !s->in_tx || s->nrcpts == 0)
		return 1;
	reply(354, "", "End data with <CR><LF>.<CR><LF>");
	if (read_body(s, &b) != 0) {
		free(b.p);
		return -1;
	}
	if (b.too_big)
		reply(552, "5.3.4", "Message size exceeds fixed limit");
	else if (b.too_long)
		reply(550, "5.6.0", "Message line longer than 998 characters (RFC 5322 2.1.1)");
	else if (sm_submit(s->mail.addr, s->rcpts, s->nrcpts, b.p ? b.p : "", b.len, &res) == 0)
		reply(250, "2.0.0", "Ok: queued as %s", res.qid);
	else if (reply_code_ok(res.code))
		printf("%s %s\r\n", res.code, res.text);
	else
		reply(451, "4.3.0", "%s", res.text);
	free(b.p);
	tx_reset(s);
	return 0;
}

/* ---- commands ------------------------------------------------------------ */

/* The reply to a MAIL FROM or RCPT TO argument smtp_*_arg refused (nothing for SA_OK). */
static void
refuse_arg(enum smtp_arg r, enum addr_status st, const char *cmd, const char *who,
           const char *enh)
{
	if (r == SA_SYNTAX)
		reply(501, "5.5.4", "Syntax: %s:<address>", cmd);
	else if (r == SA_ADDR && st == ADDR_NEED_UTF8)
		reply(553, "5.6.7", "Non-ASCII address needs SMTPUTF8");
	else if (r == SA_ADDR)
		/* RFC 3463 3.2: 5.1.7 a bad sender, 5.1.3 a bad recipient */
		reply(501, enh, "Bad %s address syntax: %s", who, addr_strerror(st));
	else if (r == SA_PARAM_SIZE)
		reply(501, "5.5.4", "Bad SIZE parameter");
	else if (r == SA_PARAM)
		reply(555, "5.5.4", "Unsupported parameter");
}

static void
do_mail(struct session *s, const char *arg)
{
	enum addr_status st;
	enum smtp_arg r;

	if (s->in_tx) {
		reply(503, "5.5.1", "Nested MAIL command");
		s->errors++;
		return;
	}
	r = smtp_mail_arg(arg, sm_daemon.domain, &s->mail, &st);
	if (r == SA_OK && s->mail.size > sm_daemon.max_size)
		reply(552, "5.3.4", "Message size exceeds fixed limit");
	else
		refuse_arg(r, st, "MAIL FROM", "sender", "5.1.7");
	if (r != SA_OK || s->mail.size > sm_daemon.max_size) {
		memset(&s->mail, 0, sizeof(s->mail));
		s->errors++;
		return;
	}
	s->in_tx = true;
	reply(250, "2.1.0", "Ok");
}

static void
do_rcpt(struct session *s, const char *arg)
{
	char addr[ADDR_MAX];
	enum addr_status st;
	enum smtp_arg r;

	if (!s->in_tx) {
		reply(503, "5.5.1", "Need MAIL command first");
		s->errors++;
		return;
	}
	if (s->nrcpts >= sm_daemon.max_rcpts) {
		reply(452, "4.5.3", "Too many recipients"); /* RFC 5321 4.5.3.1.10 */
		return;
	}
	r = smtp_rcpt_arg(arg, sm_daemon.domain, s->mail.utf8, addr, &st);
	refuse_arg(r, st, "RCPT TO", "recipient", "5.1.3");
	if (r != SA_OK) {
		s->errors++;
		return;
	}
	for (size_t i = 0; i < s->nrcpts; i++)
		if (strcmp(s->rcpts[i], addr) == 0) {
			reply(250, "2.1.5", "Ok"); /* once is enough */
			return;
		}
	if ((s->rcpts = realloc(s->rcpts, (s->nrcpts + 1) * sizeof(*s->rcpts))) == NULL ||
	    (s->rcpts[s->nrcpts] = strdup(addr)) == NULL)
		sm_die(EX_OSERR, "out of memory");
	s->nrcpts++;
	reply(250, "2.1.5", "Ok");
}

static void
do_hello(struct session *s, enum smtp_verb v, const char *arg)
{
	if (*arg == '\0') {
		reply(501, "5.5.4", "Syntax: %s hostname", v == SV_EHLO ? "EHLO" : "HELO");
		s->errors++;
		return;
	}
	tx_reset(s); /* RFC 5321 4.1.4: like RSET */
	s->esmtp = v == SV_EHLO;
	if (!s->esmtp) {
		reply(250, "", "%s", sm_daemon.hostname);
		return;
	}
	printf("250-%s Hello %s (local, uid %u)\r\n", sm_daemon.hostname, s->user,
	       (unsigned)getuid());
	printf("250-PIPELINING\r\n250-SIZE %llu\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n",
	       sm_daemon.max_size);
	printf("250 ENHANCEDSTATUSCODES\r\n");
}

/* One command. 1: go on, 0: QUIT, -1: the input ended or went quiet inside DATA. */
static int
command(struct session *s, enum smtp_verb v, const char *arg)
{
	switch (v) {
	case SV_HELO:
	case SV_EHLO:
		do_hello(s, v, arg);
		break;
	case SV_MAIL:
		do_mail(s, arg);
		break;
	case SV_RCPT:
		do_rcpt(s, arg);
		break;
	case SV_DATA:
		return do_data(s, arg) < 0 ? -1 : 1;
	case SV_RSET:
		tx_reset(s);
		reply(250, "2.0.0", "Ok");
		break;
	case SV_NOOP:
		reply(250, "2.0.0", "Ok");
		break;
	case SV_QUIT:
		reply(221, "2.0.0", "%s Bye", sm_daemon.hostname);
		return 0;
	case SV_VRFY:
		reply(252, "2.5.2",
		      "Cannot VRFY user, but will accept message and attempt delivery");
		break;
	case SV_HELP:
		reply(214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT HELP VRFY");
		break;
	case SV_EXPN:
		reply(502, "5.5.1", "EXPN not supported");
		break;
	case SV_NOT_HERE:
		reply(502, "5.5.1",
		      "Not offered on a pipe: STARTTLS and AUTH are the SMTP "
		      "listener's");
		s->errors++;
		break;
	default:
		reply(500, "5.5.1", "Command unrecognized");
		s->errors++;
	}
	return 1;
}

/* The session's loop; returns the exit status. */
static int
run(struct session *s)
{
	char line[BS_LINE_MAX + 1];
	const char *arg;
	enum smtp_verb v;
	size_t n;
	bool toolong;
	int r, c;

	reply(220, "", "%s ESMTP mxrelay (local submission)", sm_daemon.hostname);
	while ((r = read_line(&s->in, line, BS_LINE_MAX, &n, &toolong)) == 1) {
		if (toolong) {
			reply(500, "5.5.2", "Line too long");
			s->errors++;
		} else if (smtp_cmd_parse(line, n, &v, &arg) != 0) {
			reply(500, "5.5.2", "NUL byte in command");
			s->errors++;
		} else if ((c = command(s, v, arg)) <= 0) {
			r = c;
			break;
		}
		if (s->errors >= BS_ERRORS_MAX) {
			reply(421, "4.7.0", "%s Too many errors, closing", sm_daemon.hostname);
			out_flush();
			return EX_PROTOCOL;
		}
	}
	if (r < 0 && !s->in.eof)
		reply(421, "4.4.2", "%s Timeout, closing", sm_daemon.hostname);
	out_flush();
	if (r < 0) {
		fprintf(stderr, "%s: -bs: %s\n", sm_prog,
		        s->in.eof ? "end of input inside DATA: the message was not queued"
		                  : "no input within session_timeout: closed");
		return EX_TEMPFAIL;
	}
	return EX_OK;
}

int
sm_smtp_session(void)
{
	static struct session s; /* its input buffer is large */
	struct passwd *pw = getpwuid(getuid());
	int rc;

	signal(SIGPIPE, SIG_IGN); /* a client that closed its end: a write error, then exit */
	if (pw && strlen(pw->pw_name) < sizeof(s.user))
		snprintf(s.user, sizeof(s.user), "%s", pw->pw_name);
	else
		snprintf(s.user, sizeof(s.user), "uid%u", (unsigned)getuid());
	rc = run(&s);
	tx_reset(&s);
	return rc;
}
