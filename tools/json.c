/* json: a small JSON reader (see json.h). RFC 8259. */
#include "tools/json.h"
#include "mta/shared/tlsrpt.h" /* tlsrpt_utf8_len: the one UTF-8 validator */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_DEPTH 32

struct rd {
	const char *p, *end;
	char *err;
	size_t errlen;
	int depth;
};

static struct json *value(struct rd *r);

static void *
zalloc(size_t n)
{
	void *p = calloc(1, n);
	if (p == NULL) {
		fputs("out of memory\n", stderr);
		exit(71);
	}
	return p;
}

static struct json *
fail(struct rd *r, const char *what)
{
	if (r->err && r->err[0] == '\0')
		snprintf(r->err, r->errlen, "bad JSON: %s", what);
	return NULL;
}

static void
ws(struct rd *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
		r->p++;
}

static int
hex4(const char *p, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static size_t
put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* "\uXXXX" (r->p after the u), a UTF-16 surrogate pair joined, as UTF-8 into o; its length or -1.
 */
static int
unicode_escape(struct rd *r, char *o)
{
	unsigned cp, lo;

	if (r->end - r->p < 4 || hex4(r->p, &cp) != 0)
		return -1;
	r->p += 4;
	if (cp >= 0xd800 && cp < 0xdc00 && r->end - r->p >= 6 && r->p[0] == '\\' &&
	    r->p[1] == 'u' && hex4(r->p + 2, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		r->p += 6;
	} else if (cp >= 0xd800 && cp < 0xe000) {
		cp = 0xfffd; /* a lone surrogate */
	}
	return (int)put_utf8(o, cp);
}

/* The escape at r->p (after the backslash, RFC 8259 7) into o; its length or -1. */
static int
escape(struct rd *r, char *o)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *hit;
	char c;

	if (r->p >= r->end)
		return -1;
	c = *r->p++;
	if (c == 'u')
		return unicode_escape(r, o);
	hit = c != '\0' ? strchr(from, c) : NULL;
	if (hit == NULL)
		return -1;
	*o = to[hit - from];
	return 1;
}

/* A string at r->p (after the opening quote); malloc'd result. */
static char *
string(struct rd *r)
{
	const char *q = r->p;
	char *out, *o;
	int n;

	/* the decoded text is never longer than its source: room for that string
	 * only (the rest of the document per string made a 100,000-message
	 * listing take gigabytes) */
	while (q < r->end && *q != '"')
		q += *q == '\\' && q + 1 < r->end ? 2 : 1;
	out = o = zalloc((size_t)(q - r->p) + 1);

	while (r->p < r->end && *r->p != '"') {
		unsigned char c = (unsigned char)*r->p++;
		if (c < 0x20)
			goto bad;
		if (c != '\\') {
			*o++ = (char)c;
			continue;
		}
		if ((n = escape(r, o)) < 0)
			goto bad;
		o += n;
	}
	if (r->p >= r->end)
		goto bad;
	r->p++;
	*o = '\0';
	return out;
bad:
	free(out);
	fail(r, "bad string");
	return NULL;
}

static struct json *
number(struct rd *r)
{
	char buf[64], *end;
	size_t n = 0;
	struct json *j;

	while (r->p + n < r->end && n < sizeof(buf) - 1 && strchr("+-0123456789.eE", r->p[n]))
		n++;
	memcpy(buf, r->p, n);
	buf[n] = '\0';
	double d = strtod(buf, &end);
	if (n == 0 || end != buf + n)
		return fail(r, "bad number");
	r->p += n;
	j = zalloc(sizeof(*j));
	j->type = JSON_NUM;
	j->i = (int64_t)d;
	return j;
}

static void
push(struct json *j, char *key, struct json *v)
{
	j->v = realloc(j->v, (j->n + 1) * sizeof(*j->v));
	if (j->type == JSON_OBJ)
		j->k = realloc(j->k, (j->n + 1) * sizeof(*j->k));
	if (j->v == NULL || (j->type == JSON_OBJ && j->k == NULL)) {
		fputs("out of memory\n", stderr);
		exit(71);
	}
	if (j->type == JSON_OBJ)
		j->k[j->n] = key;
	j->v[j->n++] = v;
}

static struct json *
container(struct rd *r, bool obj)
{
	struct json *j = zalloc(sizeof(*j)), *v;
	char close = obj ? '}' : ']';

	j->type = obj ? JSON_OBJ : JSON_ARR;
	if (++r->depth > JSON_DEPTH)
		goto bad;
	ws(r);
	if (r->p < r->end && *r->p == close) {
		r->p++;
		r->depth--;
		return j;
	}
	for (;;) {
		char *key = NULL;
		ws(r);
		if (obj) {
			if (r->p >= r->end || *r->p++ != '"' || (key = string(r)) == NULL)
				goto bad;
			ws(r);
			if (r->p >= r->end || *r->p++ != ':') {
				free(key);
				goto bad;
			}
		}
		if ((v = value(r)) == NULL) {
			free(key);
			goto bad;
		}
		push(j, key, v);
		ws(r);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		if (r->p < r->end && *r->p == close) {
			r->p++;
			r->depth--;
			return j;
		}
		goto bad;
	}
bad:
	json_free(j);
	return fail(r, obj ? "bad object" : "bad array");
}

static struct json *
value(struct rd *r)
{
	struct json *j;

	ws(r);
	if (r->p >= r->end)
		return fail(r, "unexpected end");
	switch (*r->p) {
	case '{':
		r->p++;
		return container(r, true);
	case '[':
		r->p++;
		return container(r, false);
	case '"': {
		char *s;
		r->p++;
		if ((s = string(r)) == NULL)
			return NULL;
		j = zalloc(sizeof(*j));
		j->type = JSON_STR;
		j->s = s;
		return j;
	}
	}
	static const struct {
		const char *w;
		enum json_type t;
		bool b;
	} words[] = {
	    {"true", JSON_BOOL, true}, {"false", JSON_BOOL, false}, {"null", JSON_NULL, false}};
	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(words[i].w);
		if ((size_t)(r->end - r->p) >= n && memcmp(r->p, words[i].w, n) == 0) {
			r->p += n;
			j = zalloc(sizeof(*j));
			j->type = words[i].t;
			j->b = words[i].b;
			return j;
		}
	}
	return number(r);
}

struct json *
json_parse(const char *text, size_t len, char *err, size_t errlen)
{
	struct rd r = {text, text + len, err, errlen, 0};
	struct json *j;

	if (err && errlen)
		err[0] = '\0';
	j = value(&r);
	if (j == NULL)
		return NULL;
	ws(&r);
	if (r.p != r.end) {
		json_free(j);
		fail(&r, "text after the value");
		return NULL;
	}
	return j;
}

void
json_free(struct json *j)
{
	if (j == NULL)
		return;
	for (size_t i = 0; i < j->n; i++) {
		json_free(j->v[i]);
		if (j->k)
			free(j->k[i]);
	}
	free(j->v);
	free(j->k);
	free(j->s);
	free(j);
}

const struct json *
json_get(const struct json *j, const char *key)
{
	if (j == NULL || j->type != JSON_OBJ)
		return NULL;
	for (size_t i = 0; i < j->n; i++)
		if (strcmp(j->k[i], key) == 0)
			return j->v[i];
	return NULL;
}

const char *
json_gets(const struct json *j, const char *key)
{
	const struct json *v = json_get(j, key);
	return v && v->type == JSON_STR ? v->s : NULL;
}

int64_t
json_geti(const struct json *j, const char *key, int64_t dflt)
{
	const struct json *v = json_get(j, key);
	return v && v->type == JSON_NUM ? v->i : dflt;
}

bool
json_getb(const struct json *j, const char *key)
{
	const struct json *v = json_get(j, key);
	return v && v->type == JSON_BOOL && v->b;
}

/* ---- writers ---- */

void
json_write_str(FILE *f, const char *s)
{
	size_t n, k;

	if (s == NULL) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	for (n = strlen(s); n > 0; s += k, n -= k) {
		unsigned char c = (unsigned char)*s;

		k = tlsrpt_utf8_len(s, n);
		if (k == 0) {
			fputs("\\ufffd", f); /* one replacement per stray byte */
			k = 1;
		} else if (c == '"' || c == '\\') {
			fprintf(f, "\\%c", c);
		} else if (c == '\n') {
			fputs("\\n", f);
		} else if (c < 0x20 || c == 0x7f) {
			fprintf(f, "\\u%04x", c);
		} else {
			fwrite(s, 1, k, f);
		}
	}
	fputc('"', f);
}

void
json_write_text(FILE *f, const char *s)
{
	size_t n, k;

	if (s == NULL)
		return;
	for (n = strlen(s); n > 0; s += k, n -= k) {
		const unsigned char *u = (const unsigned char *)s;

		k = tlsrpt_utf8_len(s, n);
		/* C1 controls (U+0080..U+009F, 0xc2 0x80..0x9f) start terminal escapes too */
		if (k == 0 || u[0] < 0x20 || u[0] == 0x7f ||
		    (k == 2 && u[0] == 0xc2 && u[1] < 0xa0)) {
			if (k == 0)
				k = 1;
			for (size_t i = 0; i < k; i++)
				fprintf(f, "\\x%02x", u[i]);
		} else {
			fwrite(s, 1, k, f);
		}
	}
}
