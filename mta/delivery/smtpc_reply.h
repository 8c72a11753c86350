/*
 * smtpc_reply: the SMTP client's reply reader (RFC 5321 4.2), a pure module:
 * bytes in, complete replies out. No sockets, no event loop, no logging, so
 * the fuzz target (test/fuzz/fuzz_smtp_reply.c) runs exactly what smtpc runs.
 *
 * Owns: line framing (CRLF, a bare LF is taken too), the reply-code grammar,
 * multi-line replies (every line the same code, "NNN-" continues, "NNN " or
 * a bare "NNN" ends), the enhanced status code of the first line (RFC 3463),
 * and the EHLO keywords of the lines after the first (RFC 5321 4.1.1.1).
 * Bounded: a line longer than SMTPC_REPLY_LINE_MAX or a reply of more than
 * SMTPC_REPLY_LINES_MAX lines is an error; the reader keeps one line at a
 * time, so a peer can never grow its memory.
 * Never: decides what a reply means for the conversation (smtpc.c does).
 */
#ifndef MXRELAY_SMTPC_REPLY_H
#define MXRELAY_SMTPC_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#define SMTPC_REPLY_LINE_MAX 2048	/* octets before CRLF; RFC 5321 4.5.3.1.5 says 512 */
#define SMTPC_REPLY_LINES_MAX 256	/* lines of one reply */

struct smtpc_reply {
	int code;		/* 250, 451, 550...; 0 when local (no reply received) */
	char text[512];		/* "550 5.1.1 <x@y>: no such user" (first and last line joined) */
};

/* EHLO keywords (RFC 5321 4.1.1.1) found in the lines after the first. */
enum {
	SMTPC_CAP_PIPELINING = 1 << 0,	/* RFC 2920 */
	SMTPC_CAP_8BITMIME = 1 << 1,	/* RFC 6152 */
	SMTPC_CAP_SMTPUTF8 = 1 << 2,	/* RFC 6531 */
	SMTPC_CAP_STARTTLS = 1 << 3,	/* RFC 3207 */
	SMTPC_CAP_SIZE = 1 << 4,	/* RFC 1870 */
};

struct smtpc_caps {
	unsigned flags;			/* SMTPC_CAP_* */
	unsigned long long size_max;	/* SIZE parameter; 0: none or unreadable */
};

/* A complete reply with what the reader found in it. */
struct smtpc_rd_reply {
	struct smtpc_reply r;
	char enh[12];		/* "5.1.1" from the first line, "" when it has none */
	unsigned nlines;
	struct smtpc_caps caps;	/* meaningful only for a reply to EHLO */
};

enum smtpc_rd_status {
	SMTPC_RD_MORE,		/* every byte consumed, no complete reply yet */
	SMTPC_RD_REPLY,		/* one complete reply in *out */
	SMTPC_RD_ERROR,		/* malformed input; out->r.text says why; feed no more */
};

struct smtpc_rd;

/* A new reader (never NULL: aborts on out of memory). Free with smtpc_rd_free. */
struct smtpc_rd *smtpc_rd_new(void);
void smtpc_rd_free(struct smtpc_rd *rd);

/*
 * Consume data[0..len) up to the end of the first complete reply and no
 * further: *used says how much was taken, so the caller knows whether the
 * peer sent more than this reply (RFC 3207 5, RFC 2920 3.1). REPLY fills
 * *out; ERROR fills out->r.text with the reason (code 0) and the reader
 * stays in error. The reader keeps a partial line between calls.
 */
enum smtpc_rd_status smtpc_rd_feed(struct smtpc_rd *rd, const char *data, size_t len,
				   size_t *used, struct smtpc_rd_reply *out);

/* True when a reply has begun (part of a line, or lines of a multi-line reply). */
bool smtpc_rd_partial(const struct smtpc_rd *rd);

#endif
