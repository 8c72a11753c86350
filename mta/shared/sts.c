/* sts: MTA-STS record and policy text (see sts.h). */
#include "mta/shared/sts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mta/shared/util.h"

static bool
is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool
is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static void
seterr(char *err, size_t errlen, size_t line, const char *why)
{
	if (err == NULL || errlen == 0)
		return;
	if (line)
		snprintf(err, errlen, "line %zu: %s", line, why);
	else
		snprintf(err, errlen, "%s", why);
}

/* A bounds-checked cursor over one record or line. */
struct cur {
	const unsigned char *p;
	size_t len, off;
};

static void
skip_wsp(struct cur *c)
{
	while (c->off < c->len && is_wsp(c->p[c->off]))
		c->off++;
}

/*
 * RFC 8461 3.1: sts-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-"
 * / "."); the same shape names the policy file's fields (3.2).
 */
static bool
ext_name_ok(const unsigned char *s, size_t n)
{
	if (n == 0 || n > 32 || !is_alnum(s[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!is_alnum(s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
			return false;
	return true;
}

/* One "name=value" field of the record; 0 / -1 with *why. */
static int
txt_field(struct cur *c, char *id, bool *have_id, const char **why)
{
	size_t n0 = c->off, v0, i;

	while (c->off < c->len && c->p[c->off] != '=')
		c->off++;
	if (c->off == c->len || !ext_name_ok(c->p + n0, c->off - n0))
		return (*why = "malformed field name"), -1;
	v0 = ++c->off;
	/* sts-ext-value = 1*(%x21-3A / %x3C / %x3E-7E): no ';', '=', space, controls */
	while (c->off < c->len && c->p[c->off] > 0x20 && c->p[c->off] < 0x7f &&
	       c->p[c->off] != ';' && c->p[c->off] != '=')
		c->off++;
	if (c->off == v0)
		return (*why = "empty field value"), -1;
	if (v0 - 1 - n0 != 2 || memcmp(c->p + n0, "id", 2) != 0)
		return 0; /* extension: ignored */
	if (*have_id)
		return (*why = "id given twice"), -1;
	if (c->off - v0 > STS_ID_MAX)
		return (*why = "id longer than 32 characters"), -1;
	for (i = v0; i < c->off; i++)
		if (!is_alnum(c->p[i]))
			return (*why = "id is not letters and digits"), -1;
	memcpy(id, c->p + v0, c->off - v0);
	id[c->off - v0] = '\0';
	*have_id = true;
	return 0;
}

/* sts-text-record = sts-version 1*(sts-field-delim sts-field) [sts-field-delim] */
static int
txt_record(const struct sts_txt *r, char *id, const char **why)
{
	struct cur c = {(const unsigned char *)r->data, r->len, 7};
	bool have_id = false;
	size_t nfields = 0;

	for (;;) {
		skip_wsp(&c);
		if (c.off == c.len)
			break;
		if (c.p[c.off] != ';')
			return (*why = "fields must be separated by ';'"), -1;
		c.off++;
		skip_wsp(&c);
		if (c.off == c.len)
			break; /* a trailing delimiter is allowed */
		if (txt_field(&c, id, &have_id, why) != 0)
			return -1;
		nfields++;
	}
	if (!have_id)
		return (*why = nfields ? "no id field" : "no fields"), -1;
	return 0;
}

/* RFC 8461 3.1: records that do not begin with v=STSv1 are discarded. */
static bool
is_sts(const struct sts_txt *r)
{
	return r->len >= 7 && memcmp(r->data, "v=STSv1", 7) == 0 &&
	       (r->len == 7 || r->data[7] == ';' || is_wsp((unsigned char)r->data[7]));
}

enum sts_txt_status
sts_txt_parse(const struct sts_txt *recs, size_t n, char *id, char *err, size_t errlen)
{
	const struct sts_txt *one = NULL;
	const char *why = NULL;

	id[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (!is_sts(&recs[i]))
			continue;
		if (one) {
			seterr(err, errlen, 0, "more than one v=STSv1 record");
			return STS_TXT_INVALID;
		}
		one = &recs[i];
	}
	if (one == NULL)
		return STS_TXT_NONE;
	if (txt_record(one, id, &why) != 0) {
		id[0] = '\0';
		if (err && errlen)
			snprintf(err, errlen, "v=STSv1 record: %s", why);
		return STS_TXT_INVALID;
	}
	return STS_TXT_OK;
}

/* "*." (optional) then LDH labels of 1..63, 253 at most; lower-cased copy without a trailing dot.
 */
static char *
mx_pattern(const unsigned char *v, size_t n)
{
	size_t i = 0, lab = 0;
	char *out;

	if (n && v[n - 1] == '.')
		n--;
	if (n >= 2 && v[0] == '*' && v[1] == '.')
		i = 2;
	if (n == i || n > 253)
		return NULL;
	for (size_t k = i; k < n; k++) {
		unsigned char ch = v[k];
		if (ch == '.') {
			if (lab == 0)
				return NULL;
			lab = 0;
		} else if (is_alnum(ch) || ch == '-') {
			if (++lab > 63)
				return NULL;
		} else {
			return NULL;
		}
	}
	if (lab == 0)
		return NULL;
	out = xstrndup((const char *)v, n);
	for (char *s = out; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
	return out;
}

/* What one policy parse has seen so far. */
struct pstate {
	struct sts_policy *p;
	bool version, mode, max_age;
};

/* sts-policy-max-age-value = 1*10(DIGIT), at most 31557600 (RFC 8461 3.2) */
static const char *
set_max_age(struct pstate *st, const unsigned char *v, size_t n)
{
	long a = 0;

	if (n == 0 || n > 10)
		return "max_age is not 1 to 10 digits";
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return "max_age is not 1 to 10 digits";
		a = a * 10 + (v[i] - '0');
	}
	if (a > STS_MAX_AGE_MAX)
		return "max_age above 31557600";
	st->p->max_age = a;
	st->max_age = true;
	return NULL;
}

static bool
val_is(const unsigned char *v, size_t n, const char *lit)
{
	return n == strlen(lit) && memcmp(v, lit, n) == 0;
}

/* One "key: value" line (value without the surrounding WSP); NULL or why not. */
static const char *
policy_field(struct pstate *st, const unsigned char *k, size_t kn, const unsigned char *v,
             size_t vn)
{
	struct sts_policy *p = st->p;

	if (val_is(k, kn, "version") && !st->version) {
		if (!val_is(v, vn, "STSv1")) /* %s"STSv1": case-sensitive */
			return "version is not STSv1";
		st->version = true;
	} else if (val_is(k, kn, "mode") && !st->mode) {
		if (val_is(v, vn, "enforce"))
			p->mode = STS_MODE_ENFORCE;
		else if (val_is(v, vn, "testing"))
			p->mode = STS_MODE_TESTING;
		else if (val_is(v, vn, "none"))
			p->mode = STS_MODE_NONE;
		else
			return "mode is not enforce, testing or none";
		st->mode = true;
	} else if (val_is(k, kn, "max_age") && !st->max_age) {
		return set_max_age(st, v, vn);
	} else if (val_is(k, kn, "mx")) {
		char *pat = mx_pattern(v, vn);
		if (pat == NULL)
			return "mx is not a host name or *.host name";
		if (p->nmx == STS_MX_MAX) {
			free(pat);
			return "more than 128 mx lines";
		}
		p->mx = xrealloc(p->mx, (p->nmx + 1) * sizeof *p->mx);
		p->mx[p->nmx++] = pat;
	} else if (!ext_name_ok(k, kn)) {
		return "malformed field name";
	}
	return NULL; /* unknown keys and repeats of single fields: ignored */
}

/* Split one line (no terminator) into key and value; NULL or why not. */
static const char *
policy_line(struct pstate *st, const unsigned char *s, size_t n)
{
	const unsigned char *colon = memchr(s, ':', n);
	size_t v0, vn;

	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 && !is_wsp(s[i]))
			return "control character";
	if (colon == NULL)
		return "no ':' after the field name";
	v0 = (size_t)(colon - s) + 1;
	while (v0 < n && is_wsp(s[v0]))
		v0++;
	vn = n - v0;
	while (vn && is_wsp(s[v0 + vn - 1]))
		vn--; /* sts-policy-record allows *WSP before each term */
	return policy_field(st, s, (size_t)(colon - s), s + v0, vn);
}

static const char *
policy_check(const struct pstate *st)
{
	if (!st->version)
		return "no version field";
	if (!st->mode)
		return "no mode field";
	if (!st->max_age)
		return "no max_age field";
	if (st->p->mode != STS_MODE_NONE && st->p->nmx == 0)
		return "no mx field (required unless mode is none)";
	return NULL;
}

int
sts_policy_parse(const char *buf, size_t len, struct sts_policy *p, char *err, size_t errlen)
{
	const unsigned char *s = (const unsigned char *)buf;
	struct pstate st = {.p = p};
	const char *why = NULL;
	size_t off = 0, line = 0;

	memset(p, 0, sizeof *p);
	if (len > STS_POLICY_MAX) {
		seterr(err, errlen, 0, "policy larger than 65536 bytes");
		return -1;
	}
	while (off < len && why == NULL) {
		const unsigned char *nl = memchr(s + off, '\n', len - off);
		size_t end = nl ? (size_t)(nl - s) : len, n = end - off;

		line++;
		if (n && s[off + n - 1] == '\r')
			n--; /* sts-policy-term = LF / CRLF */
		if (n)
			why = policy_line(&st, s + off, n);
		off = end + 1;
	}
	if (why == NULL && (why = policy_check(&st)) != NULL)
		line = 0;
	if (why) {
		seterr(err, errlen, line, why);
		sts_policy_free(p);
		return -1;
	}
	return 0;
}

void
sts_policy_free(struct sts_policy *p)
{
	for (size_t i = 0; i < p->nmx; i++)
		free(p->mx[i]);
	free(p->mx);
	memset(p, 0, sizeof *p);
}

/* Length of name without one trailing dot. */
static size_t
name_len(const char *s)
{
	size_t n = strlen(s);

	return n && s[n - 1] == '.' ? n - 1 : n;
}

bool
sts_mx_match(const char *pattern, const char *host)
{
	size_t pn = name_len(pattern), hn = name_len(host);
	const char *dot;

	if (pn == 0 || hn == 0)
		return false;
	if (pn < 2 || pattern[0] != '*' || pattern[1] != '.')
		return pn == hn && util_strncaseeq(pattern, host, pn);
	/* RFC 8461 4.1: the wildcard stands for exactly one leftmost label */
	dot = memchr(host, '.', hn);
	if (dot == NULL || dot == host)
		return false;
	return hn - (size_t)(dot - host) == pn - 1 && util_strncaseeq(dot, pattern + 1, pn - 1);
}

const char *
sts_mode_name(enum sts_mode m)
{
	switch (m) {
	case STS_MODE_ENFORCE:
		return "enforce";
	case STS_MODE_TESTING:
		return "testing";
	default:
		return "none";
	}
}
