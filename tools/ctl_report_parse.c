/*
 * ctl_report_parse: one line of mxrelayd's log into its day and its
 * key=value part (see ctl_report.h). Pure: no allocation, no global state,
 * every read checked against the line's length (fuzz_logline).
 */
#include "tools/ctl_report.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define IDENT "mxrelayd"

struct cur {
	const char *p;
	size_t n; /* bytes left at p */
};

static bool
digits(const struct cur *c, size_t at, size_t k)
{
	if (at + k > c->n)
		return false;
	for (size_t i = 0; i < k; i++)
		if (!isdigit((unsigned char)c->p[at + i]))
			return false;
	return true;
}

static void
skip(struct cur *c, size_t k)
{
	k = k < c->n ? k : c->n;
	c->p += k;
	c->n -= k;
}

/* The token up to the next space (its length), then the spaces after it skipped. */
static size_t
token(struct cur *c, const char **tok)
{
	size_t k = 0;

	*tok = c->p;
	while (k < c->n && c->p[k] != ' ')
		k++;
	skip(c, k);
	while (c->n > 0 && c->p[0] == ' ')
		skip(c, 1);
	return k;
}

/* "2026-12-06T..." or "2026-12-06 ...": an RFC 3339 / ISO 8601 stamp; its day. */
static bool
iso_stamp(struct cur *c, char *day)
{
	const char *tok;

	if (!digits(c, 0, 4) || c->n < 11 || c->p[4] != '-' || !digits(c, 5, 2) || c->p[7] != '-' ||
	    !digits(c, 8, 2) || (c->p[10] != 'T' && c->p[10] != ' '))
		return false;
	memcpy(day, c->p, 10);
	day[10] = '\0';
	if (c->p[10] == ' ')
		skip(c, 11); /* "2026-12-06 21:07:36 ...": the time is the next token */
	token(c, &tok);
	return true;
}

/* "Dec  6 21:07:36 ": RFC 3164's stamp, which has no year. */
static bool
bsd_stamp(struct cur *c, int year, char *day)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	const char *m;
	int dd;

	if (c->n < 16 || c->p[3] != ' ')
		return false;
	for (m = months; *m; m += 3)
		if (memcmp(m, c->p, 3) == 0)
			break;
	if (*m == '\0' || (c->p[4] != ' ' && !isdigit((unsigned char)c->p[4])) ||
	    !isdigit((unsigned char)c->p[5]) || c->p[6] != ' ' || !digits(c, 7, 2) ||
	    c->p[9] != ':')
		return false;
	dd = (c->p[4] == ' ' ? 0 : c->p[4] - '0') * 10 + (c->p[5] - '0');
	if (dd < 1 || dd > 31 || year < 1 || year > 9999)
		return false;
	snprintf(day, 11, "%04d-%02d-%02d", year, (int)((m - months) / 3) + 1, dd);
	skip(c, 7);
	const char *tok;
	token(c, &tok); /* the time */
	return true;
}

/* "mxrelayd[42]:" or "mxrelayd:" */
static bool
our_tag(const char *tok, size_t k)
{
	size_t n = strlen(IDENT);

	return k > n && tok[k - 1] == ':' && memcmp(tok, IDENT, n) == 0 &&
	       (tok[n] == '[' || tok[n] == ':');
}

/* After a time stamp: an optional host name, then our tag. */
static bool
host_and_tag(struct cur *c)
{
	const char *tok;
	size_t k = token(c, &tok);

	if (k > 0 && tok[k - 1] != ':')
		k = token(c, &tok); /* that was the host */
	return our_tag(tok, k);
}

/* The daemon's lines start with the session, control, queue or row id, or the event. */
static bool
our_first_key(const struct cur *c)
{
	static const char *const first[] = {"s=", "c=", "qid=", "id=", "event="};

	for (size_t i = 0; i < sizeof(first) / sizeof(first[0]); i++) {
		size_t n = strlen(first[i]);
		if (c->n >= n && memcmp(c->p, first[i], n) == 0)
			return true;
	}
	return false;
}

int
rlog_parse(const char *line, size_t len, int year, struct rlog_line *out)
{
	struct cur c = {line, len}, peek;
	const char *tok;
	size_t k;

	memset(out, 0, sizeof(*out));
	if (len > RLOG_LINE_MAX)
		c.n = RLOG_LINE_MAX;
	if (iso_stamp(&c, out->day) || bsd_stamp(&c, year, out->day)) {
		if (!host_and_tag(&c))
			return -1; /* another program's line in a shared log */
	} else {
		/* no stamp: the daemon's stderr under journald may still start "<6>mxrelayd[42]: "
		 */
		if (c.n >= 3 && c.p[0] == '<' && isdigit((unsigned char)c.p[1]) && c.p[2] == '>')
			skip(&c, 3);
		peek = c;
		k = token(&peek, &tok);
		if (our_tag(tok, k))
			c = peek;
	}
	/* journald's priority prefix, then the level the daemon writes first */
	if (c.n >= 3 && c.p[0] == '<' && isdigit((unsigned char)c.p[1]) && c.p[2] == '>')
		skip(&c, 3);
	if (c.n >= 6 && memcmp(c.p, "level=", 6) == 0)
		token(&c, &tok);
	/* a bare line that is not the daemon's (journalctl -o cat of several units) */
	if (!our_first_key(&c))
		return -1;
	out->kv = c.p;
	out->kvlen = c.n;
	char ev[64];
	return rlog_get(out, "event", ev, sizeof(ev)) ? 0 : -1;
}

/* A value from p (quoted or up to a space) into out; returns its length in the line. */
static size_t
value(const char *p, size_t n, char *out, size_t outlen)
{
	size_t i = 0, o = 0;
	bool quoted = n > 0 && p[0] == '"';

	if (quoted)
		i = 1;
	for (; i < n; i++) {
		if (quoted ? p[i] == '"' : p[i] == ' ')
			break;
		if (o + 1 < outlen)
			out[o++] = p[i];
	}
	if (outlen > 0)
		out[o] = '\0';
	return quoted && i < n ? i + 1 : i;
}

bool
rlog_get(const struct rlog_line *l, const char *key, char *out, size_t outlen)
{
	size_t klen = strlen(key), i = 0, n = l->kvlen;
	const char *p = l->kv;
	char skipbuf[1];

	while (i < n) {
		size_t k = i;
		while (k < n && p[k] != '=' && p[k] != ' ')
			k++;
		if (k < n && p[k] == '=') {
			if (k - i == klen && memcmp(p + i, key, klen) == 0) {
				value(p + k + 1, n - k - 1, out, outlen);
				return true;
			}
			k += 1 + value(p + k + 1, n - k - 1, skipbuf, 0);
		}
		while (k < n && p[k] != ' ')
			k++; /* a word without '=' (or the rest of a broken value) */
		while (k < n && p[k] == ' ')
			k++;
		i = k;
	}
	if (outlen > 0)
		out[0] = '\0';
	return false;
}

void
rlog_domain(const char *addr, char *out, size_t outlen)
{
	const char *at = strrchr(addr, '@');
	size_t o = 0;

	if (outlen == 0)
		return;
	for (const char *p = at ? at + 1 : ""; *p && *p != '>' && o + 1 < outlen; p++)
		out[o++] = (char)tolower((unsigned char)*p);
	out[o] = '\0';
}

void
rlog_reason(const char *text, char *out, size_t outlen)
{
	size_t o = 0;
	int depth = 0;

	if (outlen == 0)
		return;
	for (const char *p = text; *p && o + 1 < outlen; p++) {
		if (*p == '<')
			depth++;
		else if (*p == '>' && depth > 0)
			depth--;
		else if (depth == 0 && !(*p == ' ' && (o == 0 || out[o - 1] == ' ')))
			out[o++] = *p;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}
