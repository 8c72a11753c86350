/*
 * content: the content rules of intake (see content.h).
 *
 * Smuggling (CVE-2023-51764 class): a bare LF or bare CR anywhere marks
 * the whole message as refused, and a refused message stops growing; the
 * caller's framing decides where a message ends (CRLF "." CRLF for SMTP).
 *
 * bare_lf = normalize (SMTP only, content_options): a line ending in LF
 * alone is stored with CRLF, as Postfix's smtpd_forbid_bare_newline =
 * normalize does; a bare CR is still refused, and so is a "." line next to
 * a bare LF ("." LF, or LF "." CRLF): that is the shape that ends DATA for
 * a lenient server downstream, so it refuses the whole message.
 */
#include "mta/intake/content.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mta/intake/hdrfrom.h"
#include "mta/intake/repair.h"
#include "mta/server.h"
#include "mta/shared/config.h"
#include "mta/shared/util.h"

struct content {
	struct server *srv; /* limits and hostname at the moment of use (SIGHUP) */
	const char *qid;    /* the owner's queue id (session or local submission) */
	char *buf;
	size_t len, cap;
	uint64_t raw; /* octets stored (bare LF as CRLF), for the size limit */
	size_t hdr_bytes;
	bool in_header, seen_msgid, seen_date;
	bool bad_bare, bad_long, too_big, hdr_too_big, bad_nul;
	/* bare_lf = normalize (content_options): LF alone is a line end */
	bool normalize_lf, prev_bare_lf, bad_cr, bad_dot, seen_to;
	size_t bare_lf;              /* lines normalised */
	unsigned repairs, repaired;  /* HREPAIR_* asked for, and done */
	/* from_at: the From field held back until its last folded line */
	char pend[HDRFROM_FIELD_MAX];
	size_t pend_len, pend_colon; /* 0: nothing held */
	const char *sender; /* the envelope sender (borrowed), for missing_from */
	struct hdrfrom hf;  /* From, Sender, Resent-*: read as the header goes by */
	/* the first Message-ID field's value, unfolded (content_msgid) */
	char msgid[CONTENT_MSGID_MAX + 1];
	size_t msgid_len;
	bool in_msgid; /* the field being read is that Message-ID: folds go on it */
};

static void
append(struct content *d, const char *p, size_t n)
{
	if (d->len + n > d->cap) {
		size_t cap = d->cap ? d->cap : 65536;
		while (cap < d->len + n)
			cap *= 2;
		d->buf = xrealloc(d->buf, cap);
		d->cap = cap;
	}
	memcpy(d->buf + d->len, p, n);
	d->len += n;
}

static void appendf(struct content *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
appendf(struct content *d, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int n;
	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		append(d, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/*
 * The header ends: copiers often omit Date and Message-ID, add them here.
 * Devices omit From too: with missing_from = envelope it is the envelope
 * sender, which the AUTH policy already checked at MAIL.
 */
/* The held From field is complete: repair it if it needs it, then store it. */
static void
flush_from(struct content *d)
{
	char out[HDRFROM_FIELD_MAX];
	const char *val = d->pend + d->pend_colon + 1;
	size_t vlen = d->pend_len - d->pend_colon - 1, namelen = 4; /* "From" */
	int n;

	if (d->pend_len == 0)
		return;
	n = repair_from_at(val, vlen, out, sizeof(out));
	if (n >= 0) {
		append(d, "From:", 5);
		append(d, out, (size_t)n);
		hdrfrom_field(&d->hf, "From", namelen, out, (size_t)n);
		d->repaired |= HREPAIR_FROM_AT;
	} else {
		append(d, d->pend, d->pend_len);
		hdrfrom_field(&d->hf, "From", namelen, val, vlen);
	}
	d->pend_len = 0;
}

/* Part of the Message-ID's value: CR and LF of a fold dropped (RFC 5322 2.2.3), bounded. */
static void
msgid_add(struct content *d, const char *p, size_t n)
{
	for (size_t i = 0; i < n && d->msgid_len < CONTENT_MSGID_MAX; i++)
		if (p[i] != '\r' && p[i] != '\n' &&
		    !(d->msgid_len == 0 && (p[i] == ' ' || p[i] == '\t'))) /* leading blanks */
			d->msgid[d->msgid_len++] = p[i] == '\t' ? ' ' : p[i];
	d->msgid[d->msgid_len] = '\0';
}

static void
add_missing(struct content *d)
{
	char date[64];

	flush_from(d);
	hdrfrom_end(&d->hf);
	if (d->srv->cfg->missing_from == MISSING_FROM_ENVELOPE &&
	    hdrfrom_fill(&d->hf, d->sender) == 0)
		appendf(d, "From: <%s>\r\n", d->sender);
	if (!d->seen_date) {
		util_rfc5322_date(date, sizeof(date), time(NULL));
		appendf(d, "Date: %s\r\n", date);
	}
	if (!d->seen_msgid) {
		appendf(d, "Message-ID: <%s@%s>\r\n", d->qid, d->srv->cfg->hostname);
		d->msgid_len = (size_t)snprintf(d->msgid, sizeof(d->msgid), "<%s@%s>", d->qid,
		                                d->srv->cfg->hostname);
		if (d->msgid_len > CONTENT_MSGID_MAX)
			d->msgid_len = CONTENT_MSGID_MAX;
	}
	/* RFC 5322 3.6.3: an empty group says the recipients were not disclosed */
	if ((d->repairs & HREPAIR_ADD_TO) && !d->seen_to) {
		appendf(d, "To: undisclosed-recipients:;\r\n");
		d->repaired |= HREPAIR_ADD_TO;
	}
	d->seen_date = d->seen_msgid = d->seen_to = true;
}

static bool
header_is(const char *line, size_t namelen, const char *name)
{
	return strlen(name) == namelen && util_strncaseeq(line, name, namelen);
}

/*
 * A From field for the from_at repair: held back (true) until the next
 * field or the header's end, as folded lines may follow. One too long to
 * hold goes through unrepaired.
 */
static bool
hold_from(struct content *d, const char *p, size_t n, size_t colon)
{
	if (d->pend_len + n > sizeof(d->pend)) {
		flush_from(d);
		return false;
	}
	if (d->pend_len == 0)
		d->pend_colon = colon;
	memcpy(d->pend + d->pend_len, p, n);
	d->pend_len += n;
	return true;
}

/*
 * One content line (dot-unstuffed, with its line end) while in the header.
 * true: the line is held (hold_from), the caller must not store it.
 */
static bool
header_line(struct content *d, const char *p, size_t n)
{
	const char *colon;
	size_t i, namelen;

	d->hdr_bytes += n;
	if (d->hdr_bytes > d->srv->cfg->max_header_size)
		d->hdr_too_big = true;
	if (n <= 2 && (p[0] == '\r' || p[0] == '\n')) {
		add_missing(d);
		d->in_header = false;
		return false;
	}
	if (p[0] == ' ' || p[0] == '\t') {
		if (d->pend_len > 0 && hold_from(d, p, n, 0))
			return true;
		if (d->in_msgid)
			msgid_add(d, p, n);
		hdrfrom_fold(&d->hf, p, n);
		return false;
	}
	d->in_msgid = false;
	colon = memchr(p, ':', n);
	for (i = 0; colon && p + i < colon && p[i] > 32 && p[i] < 127; i++)
		;
	namelen = i;
	/* RFC 5322 4.5: obsolete syntax allows WSP before the colon ("From :") */
	for (; colon && p + i < colon; i++)
		if (p[i] != ' ' && p[i] != '\t')
			colon = NULL;
	if (colon == NULL || namelen == 0) {
		/*
		 * Not a header field: the body began without a blank line. Add
		 * one, or a lenient reader could take later lines ("From: ...")
		 * for header fields that were never checked.
		 */
		add_missing(d);
		append(d, "\r\n", 2);
		d->in_header = false;
		return false;
	}
	i = (size_t)(colon - p);
	flush_from(d);
	if (header_is(p, namelen, "To") || header_is(p, namelen, "Cc"))
		d->seen_to = true;
	if ((d->repairs & HREPAIR_FROM_AT) && header_is(p, namelen, "From") &&
	    hold_from(d, p, n, i))
		return true;
	hdrfrom_field(&d->hf, p, namelen, colon + 1, n - i - 1);
	if (header_is(p, namelen, "Message-ID") && !d->seen_msgid) {
		d->seen_msgid = d->in_msgid = true;
		msgid_add(d, colon + 1, n - i - 1);
	}
	if (header_is(p, namelen, "Date"))
		d->seen_date = true;
	return false;
}

/*
 * bare_lf = normalize: the line's bare CR (refused), its lone LF (made
 * CRLF into buf, which holds CONTENT_LINE_MAX + 1), and a "." line next
 * to a bare LF (refused: RFC 5321 4.1.1.4 ends DATA only at CRLF "."
 * CRLF, and a lenient server downstream would end it there). Returns the
 * line's new length.
 */
static size_t
normalize(struct content *d, const char *line, size_t n, char *buf)
{
	bool bare;
	size_t body;

	if (line[n - 1] != '\n') { /* no line end at all: refused, stored as is */
		d->bad_cr = true;
		memcpy(buf, line, n);
		return n;
	}
	bare = n < 2 || line[n - 2] != '\r';
	body = n - (bare ? 1 : 2);
	if (memchr(line, '\r', body))
		d->bad_cr = true;
	if (body == 1 && line[0] == '.' && (bare || d->prev_bare_lf))
		d->bad_dot = true;
	d->prev_bare_lf = bare;
	memcpy(buf, line, body);
	memcpy(buf + body, "\r\n", 2);
	if (bare)
		d->bare_lf++;
	return body + 2;
}

/* Account for one line's octets; store it unless the message is already refused. */
static void
take_line(struct content *d, const char *line, size_t n)
{
	/* the last octets of a local submission may come without LF: "x\r*" is no line end */
	bool crlf = n >= 2 && line[n - 2] == '\r' && line[n - 1] == '\n';
	const char *p = line;
	char buf[CONTENT_LINE_MAX + 1];

	if (d->normalize_lf) {
		n = normalize(d, line, n, buf);
		p = line = buf;
	} else if (!crlf || memchr(line, '\r', crlf ? n - 2 : n - 1)) {
		d->bad_bare = true;
	}
	if (d->raw > d->srv->cfg->max_message_size)
		d->too_big = true;
	if (memchr(line, '\0', n))
		d->bad_nul = true;
	if (d->bad_bare || d->bad_long || d->too_big || d->hdr_too_big || d->bad_nul ||
	    d->bad_cr || d->bad_dot)
		return; /* refused anyway: don't grow memory */
	if (p[0] == '.') {
		p++; /* RFC 5321 4.5.2 transparency */
		n--;
	}
	if (d->in_header && header_line(d, p, n))
		return;
	append(d, p, n);
}

struct content *
content_new(struct server *srv, const char *qid, const char *sender, const char *received)
{
	struct content *d = xcalloc(1, sizeof(*d));

	d->srv = srv;
	d->qid = qid;
	d->sender = sender;
	d->in_header = true;
	append(d, received, strlen(received));
	return d;
}

void
content_options(struct content *d, bool normalize_lf, unsigned repairs)
{
	d->normalize_lf = normalize_lf;
	d->repairs = repairs;
}

void
content_line(struct content *d, const char *line, size_t n)
{
	/* a normalised LF becomes CRLF: the line limit counts the stored octets */
	bool grows = d->normalize_lf && line && n > 0 && line[n - 1] == '\n' &&
	             (n < 2 || line[n - 2] != '\r');

	/* the size limit counts what is stored and relayed, so a bare LF counts as CRLF */
	d->raw += n + (grows ? 1u : 0u);
	if (n + (grows ? 1u : 0u) > CONTENT_LINE_MAX || line == NULL)
		d->bad_long = true;
	else if (n > 0)
		take_line(d, line, n);
}

void
content_line_unstuffed(struct content *d, const char *line, size_t n)
{
	char buf[CONTENT_LINE_MAX + 1];

	if (n == 0 || line[0] != '.') {
		content_line(d, line, n);
		return;
	}
	/* RFC 5321 4.5.2: one more "." in front, in the same line (content_line strips it) */
	if (n + 1 > CONTENT_LINE_MAX) {
		content_line(d, NULL, n + 1);
		return;
	}
	buf[0] = '.';
	memcpy(buf + 1, line, n);
	content_line(d, buf, n + 1);
}

enum reply_id
content_end(struct content *d)
{
	if (d->in_header)
		add_missing(d);
	d->in_header = false;
	if (d->bad_dot)
		return R_BARE_DOT;
	if (d->bad_cr)
		return R_BARE_CR;
	if (d->bad_bare)
		return R_BARE_LINE_END;
	/* a next hop that drops NUL could see a "." line we never saw */
	if (d->bad_nul)
		return R_NUL_BYTE;
	if (d->too_big)
		return R_MSG_TOO_BIG;
	if (d->hdr_too_big)
		return R_HEADER_TOO_BIG;
	if (d->bad_long)
		return R_LINE_TOO_LONG;
	return R_NONE;
}

size_t
content_bare_lf(const struct content *d)
{
	return d->bare_lf;
}

unsigned
content_repaired(const struct content *d)
{
	return d->repaired;
}

const char *
content_msgid(struct content *d)
{
	char *p = d->msgid;
	size_t n = d->msgid_len;

	while (n > 0 && *p == ' ') {
		p++;
		n--;
	}
	while (n > 0 && p[n - 1] == ' ')
		n--;
	p[n] = '\0'; /* trimmed in place */
	return p;
}

const struct hdrfrom *
content_hdrfrom(const struct content *d)
{
	return &d->hf;
}

char *
content_take(struct content *d, size_t *len)
{
	char *buf = d->buf;

	*len = d->len;
	d->buf = NULL;
	d->len = d->cap = 0;
	return buf;
}

void
content_free(struct content *d)
{
	if (d == NULL)
		return;
	free(d->buf);
	free(d);
}
