/*
 * libFuzzer target: the SMTP client's reply reader (mta/delivery/smtpc_reply.c) and,
 * for half the inputs, the whole client state machine (mta/delivery/smtpc.c) talking
 * to the input over a loopback TCP connection: replies in and out of place,
 * multi-line replies, EHLO capabilities, STARTTLS with bytes after the 220.
 *
 * Input: byte 0 is flags, the rest is what the "server" sends.
 *   bit 0: also run the conversation (smtpc_connect, one message to two
 *          recipients); the server's bytes are cut into segments at each
 *          0xff byte, and the next segment is sent whenever the client has
 *          sent something new (the first at once), then EOF
 *   bit 1: the client may use STARTTLS (the handshake then reads the input)
 *   bits 2-7: chunk size - 1 for the reader's second pass (1..64 octets)
 *
 * Beyond memory safety:
 * - reader: the same replies (code, text, enhanced code, lines, capabilities)
 *   and the same error at the same offset whether the bytes come at once or
 *   in chunks; a reply ends right after a LF; codes 200-559, text printable,
 *   the enhanced code of the reply's class, 1..256 lines.
 * - conversation: every recipient gets a result code 200-599, and a 2xx only
 *   if the client really sent the whole body and its final dot (issue 8: no
 *   "delivered" without delivering).
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mta/delivery/smtpc.h"
#include "mta/delivery/smtpc_reply.h"
#include "mta/shared/provider.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define MAX_REPLIES 4096

static int lfd = -1;
static FILE *trace;	/* FUZZ_SMTP_TRACE=1: what the client sent and got, on fd 2 */
static struct sockaddr_in laddr;
static SSL_CTX *tls;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	socklen_t len = sizeof(laddr);

	/* proto_error logs a line per input: keep them out of libFuzzer's output
	 * (sanitizer reports still go to fd 2) */
	if (getenv("FUZZ_SMTP_TRACE"))
		trace = fdopen(dup(2), "w");
	stderr = fopen("/dev/null", "w");
	signal(SIGPIPE, SIG_IGN);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&laddr, 0, sizeof(laddr));
	laddr.sin_family = AF_INET;
	laddr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (stderr == NULL || lfd < 0 || bind(lfd, (struct sockaddr *)&laddr, sizeof(laddr)) != 0 ||
	    listen(lfd, 16) != 0 || getsockname(lfd, (struct sockaddr *)&laddr, &len) != 0)
		abort();
	tls = SSL_CTX_new(TLS_client_method());
	if (tls == NULL)
		abort();
	SSL_CTX_set_verify(tls, SSL_VERIFY_NONE, NULL);
	return 0;
}

/* ---- the reader ----------------------------------------------------------- */

struct seen {
	struct smtpc_rd_reply r[MAX_REPLIES];
	size_t n;
	size_t err_at;		/* offset after the erroring byte, or (size_t)-1 */
	char err[512];
};

static void
check_reply(const struct smtpc_rd_reply *r)
{
	size_t len = strnlen(r->r.text, sizeof(r->r.text));

	if (r->r.code < 200 || r->r.code > 559 || r->nlines < 1 ||
	    r->nlines > SMTPC_REPLY_LINES_MAX || len == sizeof(r->r.text))
		abort();
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)r->r.text[i] < 0x20 || r->r.text[i] == 0x7f)
			abort();
	if (r->enh[0] != '\0' && (r->enh[0] != '0' + r->r.code / 100 || r->enh[1] != '.'))
		abort();
	/* the provider table (issue 15) reads the same text: only 4xx/5xx, a valid entry */
	const struct provider_reply *pr = provider_classify(r->r.text);
	if (pr != NULL && (r->r.code < 400 || provider_reply_of(pr->reason) == NULL ||
	                   pr->group < 0 || pr->group >= PROVIDER__COUNT))
		abort();
}

/* Feed data in pieces of at most `chunk` octets (0: all at once). */
static void
run_reader(const char *data, size_t size, size_t chunk, struct seen *s)
{
	struct smtpc_rd *rd = smtpc_rd_new();
	size_t off = 0;

	s->n = 0;
	s->err_at = (size_t)-1;
	while (off < size) {
		size_t piece = chunk && size - off > chunk ? chunk : size - off, used = 0;
		struct smtpc_rd_reply r;
		enum smtpc_rd_status st = smtpc_rd_feed(rd, data + off, piece, &used, &r);

		if (used > piece)
			abort();
		off += used;
		if (st == SMTPC_RD_ERROR) {
			s->err_at = off;
			snprintf(s->err, sizeof(s->err), "%s", r.r.text);
			break;
		}
		if (st == SMTPC_RD_REPLY) {
			if (used == 0 || data[off - 1] != '\n')
				abort();
			check_reply(&r);
			if (s->n < MAX_REPLIES)
				s->r[s->n++] = r;
		} else if (used != piece) {
			abort();	/* MORE consumes everything */
		}
	}
	smtpc_rd_free(rd);
}

static struct seen whole, pieces;

static void
reader_pass(const char *data, size_t size, size_t chunk)
{
	run_reader(data, size, 0, &whole);
	run_reader(data, size, chunk, &pieces);
	if (whole.n != pieces.n || whole.err_at != pieces.err_at ||
	    (whole.err_at != (size_t)-1 && strcmp(whole.err, pieces.err) != 0))
		abort();
	for (size_t i = 0; i < whole.n; i++) {
		const struct smtpc_rd_reply *a = &whole.r[i], *b = &pieces.r[i];
		if (a->r.code != b->r.code || strcmp(a->r.text, b->r.text) != 0 ||
		    strcmp(a->enh, b->enh) != 0 || a->nlines != b->nlines ||
		    a->caps.flags != b->caps.flags || a->caps.size_max != b->caps.size_max)
			abort();
	}
}

/* ---- the conversation ------------------------------------------------------ */

static const char *const rcpts[] = {"a@fuzz.test", "b@fuzz.test"};
static const char body[] = "Subject: fuzz\r\n\r\nhello\r\n.dot\r\n";
static const char sent_body[] = "hello\r\n..dot\r\n.\r\n";

struct conv {
	int fd;			/* the server's end */
	char out[65536];	/* what the client sent */
	size_t outlen;
	int done;
};

static void
collect(struct conv *v)
{
	ssize_t n;
	while (v->outlen < sizeof(v->out) - 1 &&
	       (n = read(v->fd, v->out + v->outlen, sizeof(v->out) - 1 - v->outlen)) > 0)
		v->outlen += (size_t)n;
	v->out[v->outlen] = '\0';
}

static void
on_ready(struct smtpc *c, void *arg)
{
	struct smtpc_msg m = {"s@fuzz.test", rcpts, 2, body, sizeof(body) - 1, false, false, NULL};
	struct smtpc_reply why;
	struct conv *v = arg;

	if (smtpc_check(c, &m, &why) != 0 || smtpc_send(c, &m) != 0) {
		v->done = 1;
		smtpc_free(c);
	}
}

static void
on_result(struct smtpc *c, void *arg, const struct smtpc_reply *r, size_t n)
{
	struct conv *v = arg;

	collect(v);
	if (trace)
		fprintf(trace, "client sent:\n%s\nresult: %d %s / %d %s\n", v->out, r[0].code,
			r[0].text, n > 1 ? r[1].code : 0, n > 1 ? r[1].text : "");
	if (n != 2)
		abort();
	for (size_t i = 0; i < n; i++) {
		if (r[i].code < 200 || r[i].code > 599)
			abort();
		/* delivered only after the body and its final dot went out */
		if (r[i].code / 100 == 2 && memmem(v->out, v->outlen, sent_body,
						   sizeof(sent_body) - 1) == NULL)
			abort();
	}
	v->done = 1;
	smtpc_free(c);
}

static void
on_fail(struct smtpc *c, void *arg, enum smtpc_stage stage, const struct smtpc_reply *why)
{
	struct conv *v = arg;
	if (trace)
		fprintf(trace, "failed at stage %d: %s\n", (int)stage, why->text);
	v->done = 1;
	smtpc_free(c);
}

static const struct smtpc_cbs cbs = {on_ready, on_result, on_fail};

/* Write the next segment of the server's bytes (they end at a 0xff or the input's end). */
static void
next_segment(struct conv *v, const char **p, const char *end)
{
	const char *stop = memchr(*p, 0xff, (size_t)(end - *p));
	size_t n = (size_t)((stop ? stop : end) - *p);

	if (n > 0 && write(v->fd, *p, n) < 0)
		abort();
	*p = stop ? stop + 1 : end;
}

/*
 * The server answers with one segment whenever the client has sent something
 * new (a command, a pipelined group, the body...), the first one at once;
 * when none is left and the client goes quiet, it closes its side.
 */
static void
conversation(const char *data, size_t size, bool use_tls)
{
	struct event_base *base = event_base_new();
	struct smtpc_conf conf;
	struct conv *v = calloc(1, sizeof(*v));
	const char *p = data, *end = data + size;
	size_t answered = 0;
	int idle = 0;
	bool eof = false;
	struct smtpc *c;

	memset(&conf, 0, sizeof(conf));
	conf.helo = "client.fuzz.test";
	conf.tls = use_tls ? tls : NULL;
	conf.t_connect = conf.t_banner = conf.t_cmd = conf.t_data = conf.t_block = conf.t_dot = 5;
	c = smtpc_connect(base, &conf, "mx.fuzz.test", (struct sockaddr *)&laddr, sizeof(laddr),
			  &cbs, v);
	if (c == NULL)
		abort();
	v->fd = accept(lfd, NULL, NULL);	/* loopback: the handshake is already done */
	if (v->fd < 0)
		abort();
	fcntl(v->fd, F_SETFL, O_NONBLOCK);
	next_segment(v, &p, end);
	for (int i = 0; i < 400 && !v->done; i++) {
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		collect(v);
		if (v->outlen > answered && p < end) {
			answered = v->outlen;
			next_segment(v, &p, end);
			idle = 0;
		} else if (++idle > 20 && !eof) {
			shutdown(v->fd, SHUT_WR);	/* nothing left to say */
			eof = true;
		}
	}
	if (!v->done)
		smtpc_free(c);	/* waiting on a timer: not explored here */
	close(v->fd);
	free(v);
	event_base_free(base);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned flags = data[0];
	reader_pass((const char *)data + 1, size - 1, (flags >> 2) + 1);
	if (flags & 1)
		conversation((const char *)data + 1, size - 1, (flags & 2) != 0);
	return 0;
}
