/* smtpc_reply: the SMTP client's reply reader (see smtpc_reply.h). */
#include "mta/delivery/smtpc_reply.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mta/shared/log.h"
#include "mta/shared/util.h"

struct smtpc_rd {
	char line[SMTPC_REPLY_LINE_MAX + 1];	/* one line, its CR included */
	size_t len;
	bool error;
	struct smtpc_rd_reply cur;		/* the reply being read */
};

struct smtpc_rd *
smtpc_rd_new(void)
{
	return xcalloc(1, sizeof(struct smtpc_rd));
}

void
smtpc_rd_free(struct smtpc_rd *rd)
{
	free(rd);
}

bool
smtpc_rd_partial(const struct smtpc_rd *rd)
{
	return rd->len > 0 || rd->cur.nlines > 0;
}

static enum smtpc_rd_status
rd_error(struct smtpc_rd *rd, struct smtpc_rd_reply *out, const char *why)
{
	rd->error = true;
	memset(out, 0, sizeof(*out));
	snprintf(out->r.text, sizeof(out->r.text), "%s", why);
	return SMTPC_RD_ERROR;
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* 1*3DIGIT at p (within n octets); returns the count taken, 0 if none. */
static size_t
digits13(const char *p, size_t n)
{
	size_t i = 0;
	while (i < n && i < 4 && is_digit(p[i]))
		i++;
	return i >= 1 && i <= 3 ? i : 0;
}

/* RFC 3463 2: class "." subject "." detail, class matching the reply's first digit. */
static void
parse_enh(const char *p, size_t n, char cls, char *out, size_t outlen)
{
	size_t i = 0, a, b;

	out[0] = '\0';
	if (n < 5 || p[0] != cls || p[1] != '.')
		return;
	i = 2;
	if ((a = digits13(p + i, n - i)) == 0 || i + a >= n || p[i + a] != '.')
		return;
	i += a + 1;
	if ((b = digits13(p + i, n - i)) == 0)
		return;
	i += b;
	if (i < n && p[i] != ' ')
		return;
	snprintf(out, outlen, "%.*s", (int)i, p);
}

/* SIZE's parameter (RFC 1870): digits only; anything else counts as none. */
static unsigned long long
parse_size(const char *p, size_t n)
{
	unsigned long long v = 0;
	size_t i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		if (!is_digit(p[i]))
			return 0;
		unsigned d = (unsigned)(p[i] - '0');
		if (v > (ULLONG_MAX - d) / 10)
			return ULLONG_MAX;
		v = v * 10 + d;
	}
	return v;
}

/* One EHLO line after the first: keyword, then optional SP parameters. */
static void
parse_keyword(const char *p, size_t n, struct smtpc_caps *caps)
{
	static const struct {
		const char *kw;
		unsigned flag;
	} known[] = {
	    {"PIPELINING", SMTPC_CAP_PIPELINING}, {"8BITMIME", SMTPC_CAP_8BITMIME},
	    {"SMTPUTF8", SMTPC_CAP_SMTPUTF8},	  {"STARTTLS", SMTPC_CAP_STARTTLS},
	    {"SIZE", SMTPC_CAP_SIZE},
	};
	const char *sp = memchr(p, ' ', n);
	size_t kwlen = sp ? (size_t)(sp - p) : n;

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (kwlen != strlen(known[i].kw) || strncasecmp(p, known[i].kw, kwlen) != 0)
			continue;
		caps->flags |= known[i].flag;
		if (known[i].flag == SMTPC_CAP_SIZE)
			caps->size_max = sp ? parse_size(sp + 1, n - kwlen - 1) : 0;
	}
}

/* Append " / last line" to the reply text (the first line is already there). */
static void
append_last(struct smtpc_reply *r, const char *line, size_t n)
{
	size_t have = strlen(r->text);
	char clean[sizeof(r->text)];

	if (have + 3 >= sizeof(r->text))
		return;
	log_sanitize(clean, sizeof(clean), line, n);
	snprintf(r->text + have, sizeof(r->text) - have, " / %s", clean);
}

/* One line without its CRLF. 1: the reply is complete, 0: more lines, -1: error. */
static int
take_line(struct smtpc_rd *rd, const char *line, size_t n, struct smtpc_rd_reply *out)
{
	struct smtpc_rd_reply *c = &rd->cur;
	int code;

	/* RFC 5321 4.2: reply-code = %x32-35 %x30-35 %x30-39, then SP, "-" or nothing */
	if (n < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' ||
	    !is_digit(line[2]) || (n > 3 && line[3] != ' ' && line[3] != '-')) {
		rd_error(rd, out, "malformed reply line");
		return -1;
	}
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (c->nlines > 0 && code != c->r.code) {
		rd_error(rd, out, "lines of one reply with different codes");
		return -1;
	}
	if (++c->nlines > SMTPC_REPLY_LINES_MAX) {
		char why[64];
		snprintf(why, sizeof(why), "reply of more than %d lines", SMTPC_REPLY_LINES_MAX);
		rd_error(rd, out, why);
		return -1;
	}
	if (c->nlines == 1) {
		c->r.code = code;
		log_sanitize(c->r.text, sizeof(c->r.text), line, n);
		if (n > 4)
			parse_enh(line + 4, n - 4, line[0], c->enh, sizeof(c->enh));
	} else if (n > 4) {
		parse_keyword(line + 4, n - 4, &c->caps);
	}
	if (n > 3 && line[3] == '-')
		return 0;
	if (c->nlines > 1)
		append_last(&c->r, line, n);
	*out = *c;
	memset(c, 0, sizeof(*c));
	return 1;
}

enum smtpc_rd_status
smtpc_rd_feed(struct smtpc_rd *rd, const char *data, size_t len, size_t *used,
	      struct smtpc_rd_reply *out)
{
	size_t off = 0;

	*used = 0;
	if (rd->error)
		return rd_error(rd, out, "reply reader already failed");
	while (off < len) {
		const char *nl = memchr(data + off, '\n', len - off);
		size_t take = nl ? (size_t)(nl - (data + off)) : len - off;

		/* the line so far plus this piece, its CR included, must fit;
		 * the error is reported at the first octet past the limit */
		if (take > sizeof(rd->line) - rd->len) {
			*used = off + (sizeof(rd->line) - rd->len) + 1;
			return rd_error(rd, out, "reply line too long");
		}
		memcpy(rd->line + rd->len, data + off, take);
		rd->len += take;
		off += take;
		if (nl == NULL)
			break;
		off++;	/* the LF */
		size_t n = rd->len;
		if (n > 0 && rd->line[n - 1] == '\r')
			n--;
		else if (n == sizeof(rd->line)) {
			*used = off;
			return rd_error(rd, out, "reply line too long");
		}
		rd->len = 0;
		int rc = take_line(rd, rd->line, n, out);
		if (rc != 0) {
			*used = off;
			return rc > 0 ? SMTPC_RD_REPLY : SMTPC_RD_ERROR;
		}
	}
	*used = off;
	return SMTPC_RD_MORE;
}
