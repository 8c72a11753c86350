/*
 * content: the message content rules of intake, for SMTP DATA
 * (smtpd/data.c) and local submission (control/submit.c) alike: dot
 * transparency (RFC 5321 4.5.2), bare CR/LF and NUL refusal, line, header
 * and size limits, Date, Message-ID and (missing_from = envelope) From
 * added when missing, and the author fields read for hdrfrom.h as the
 * header goes by. One set of rules, so mail from cron and mail from a
 * copier are judged alike. Never reads the network: callers hand it lines.
 */
#ifndef MXRELAY_CONTENT_H
#define MXRELAY_CONTENT_H

#include <stdbool.h>
#include <stddef.h>

#include "mta/reply.h"

#define CONTENT_LINE_MAX 1000 /* RFC 5321 4.5.3.1.6, incl. CRLF */
#define CONTENT_MSGID_MAX 998 /* the Message-ID value kept: RFC 5322 2.1.1's line limit */

struct server;
struct content;
struct hdrfrom;

/*
 * Start a message whose queue id is qid and envelope sender is sender
 * ("" for the null sender; both borrowed: they must outlive the builder)
 * with received (copied) as its first header. Limits are read from
 * srv->cfg as each line arrives (SIGHUP may swap it).
 */
struct content *content_new(struct server *srv, const char *qid, const char *sender,
                            const char *received);

/*
 * SMTP DATA's per-session choices, before the first line: normalize_lf
 * (bare_lf = normalize) takes a line ending in LF alone as ending in CRLF
 * (a bare CR and a "." line next to a bare LF are still refused:
 * R_BARE_CR, R_BARE_DOT); repairs are repair.h's HREPAIR_* bits. Local
 * submission keeps the defaults (strict, no repairs).
 */
void content_options(struct content *c, bool normalize_lf, unsigned repairs);

/*
 * One line as it came in: dot-stuffed, with its CRLF, n octets. line may be
 * NULL when the caller dropped the octets (over CONTENT_LINE_MAX): counted
 * for the size limit and refused as an over-long line.
 */
void content_line(struct content *c, const char *line, size_t n);

/*
 * One line of a message the relay wrote itself (a digest, a report): not
 * dot-stuffed, with its CRLF. Stuffed here (RFC 5321 4.5.2) and handed to
 * content_line, so a line starting with "." is kept as it is.
 */
void content_line_unstuffed(struct content *c, const char *line, size_t n);

/*
 * The input is complete: finish the header (adding what is missing).
 * Returns R_NONE when the content is acceptable, else its refusal
 * (R_BARE_LINE_END, R_NUL_BYTE, R_MSG_TOO_BIG, R_HEADER_TOO_BIG,
 * R_LINE_TOO_LONG). The header From policy is hdrfrom.h's, on
 * content_hdrfrom. Call once.
 */
enum reply_id content_end(struct content *c);

/* Lines whose bare LF was normalised (content_options), and the HREPAIR_* bits applied. */
size_t content_bare_lf(const struct content *c);
unsigned content_repaired(const struct content *c);

/*
 * The first Message-ID field's value, unfolded and trimmed, at most
 * CONTENT_MSGID_MAX octets (the one added when the message had none); ""
 * when the field is empty. After content_end; valid until content_free.
 */
const char *content_msgid(struct content *c);

/* The author fields read from the header (valid until content_free). */
const struct hdrfrom *content_hdrfrom(const struct content *c);

/* Hand the message over: the caller frees the result; the builder is left empty. */
char *content_take(struct content *c, size_t *len);

/* NULL is fine. */
void content_free(struct content *c);

#endif
