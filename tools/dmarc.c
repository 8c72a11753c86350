/*
 * tools/dmarc: DMARC record text (see tools/dmarc.h).
 *
 * The record is a tag list "tag=value; tag=value" (RFC 7489 6.4) whose
 * first tag must be v=DMARC1 exactly (the value is case-sensitive in the
 * ABNF); receivers discard a record that does not start so (6.6.3).
 */
#include "tools/dmarc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TAGS 32

struct tag {
	char name[16];
	char value[1024];
};

static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static bool
caseeq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (lower((unsigned char)*a) != lower((unsigned char)*b))
			return false;
	return *a == *b;
}

/* [s, e) without surrounding whitespace, copied into out (outlen bytes); -1 if too long. */
static int
copy_trimmed(const char *s, const char *e, char *out, size_t outlen)
{
	while (s < e && is_wsp(*s))
		s++;
	while (e > s && is_wsp(e[-1]))
		e--;
	if ((size_t)(e - s) >= outlen)
		return -1;
	memcpy(out, s, (size_t)(e - s));
	out[e - s] = '\0';
	return 0;
}

bool
dmarc_is_record(const char *txt)
{
	while (is_wsp(*txt))
		txt++;
	if (lower((unsigned char)*txt) != 'v')
		return false;
	txt++;
	while (is_wsp(*txt))
		txt++;
	if (*txt++ != '=')
		return false;
	while (is_wsp(*txt))
		txt++;
	return strncmp(txt, "DMARC1", 6) == 0 &&
	       (txt[6] == '\0' || txt[6] == ';' || is_wsp(txt[6]));
}

/* Split txt into tags; -1 with why for a part without '=' or a tag twice. */
static int
split_tags(const char *txt, struct tag *tags, int *n, char *why, size_t whylen)
{
	const char *p = txt;

	*n = 0;
	while (*p != '\0') {
		const char *end = strchr(p, ';'), *eq;
		char part[1100];

		if (end == NULL)
			end = p + strlen(p);
		if (copy_trimmed(p, end, part, sizeof part) != 0)
			return fail(why, whylen, "a tag is too long");
		p = *end ? end + 1 : end;
		if (part[0] == '\0')
			continue; /* "a=b;" and "a=b; ;" are fine */
		eq = strchr(part, '=');
		if (eq == NULL)
			return fail(why, whylen, "'%s' is not a tag=value pair", part);
		if (*n == MAX_TAGS)
			return fail(why, whylen, "too many tags");
		if (copy_trimmed(part, eq, tags[*n].name, sizeof tags[*n].name) != 0 ||
		    tags[*n].name[0] == '\0')
			return fail(why, whylen, "bad tag name in '%s'", part);
		copy_trimmed(eq + 1, part + strlen(part), tags[*n].value, sizeof tags[*n].value);
		for (int i = 0; i < *n; i++)
			if (caseeq(tags[i].name, tags[*n].name))
				return fail(why, whylen, "tag %s= appears twice", tags[*n].name);
		(*n)++;
	}
	return 0;
}

static const char *
tag_value(const struct tag *tags, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (caseeq(tags[i].name, name))
			return tags[i].value;
	return NULL;
}

static int
policy(const char *tag, const char *v, char *out, size_t outlen, char *why, size_t whylen)
{
	static const char *const ok[] = {"none", "quarantine", "reject"};

	for (size_t i = 0; i < 3; i++) {
		if (caseeq(v, ok[i])) {
			snprintf(out, outlen, "%s", ok[i]);
			return 0;
		}
	}
	return fail(why, whylen, "%s=%s: must be none, quarantine or reject", tag, v);
}

static int
alignment(const char *tag, const char *v, char *out, char *why, size_t whylen)
{
	if (v == NULL) {
		*out = 'r';
		return 0;
	}
	if (caseeq(v, "r") || caseeq(v, "s")) {
		*out = (char)lower((unsigned char)v[0]);
		return 0;
	}
	return fail(why, whylen, "%s=%s: must be r (relaxed) or s (strict)", tag, v);
}

static int
check_fo(const char *v, char *why, size_t whylen)
{
	const char *p = v;

	for (;;) {
		while (is_wsp(*p))
			p++;
		if (*p != '0' && *p != '1' && lower((unsigned char)*p) != 'd' &&
		    lower((unsigned char)*p) != 's')
			return fail(why, whylen, "fo=%s: must be 0, 1, d or s joined by ':'", v);
		p++;
		while (is_wsp(*p))
			p++;
		if (*p == '\0')
			return 0;
		if (*p++ != ':')
			return fail(why, whylen, "fo=%s: must be 0, 1, d or s joined by ':'", v);
	}
}

/* rua=/ruf=: comma-separated URIs (6.2); each needs a scheme. */
static int
check_uris(const char *tag, const char *v, char *why, size_t whylen)
{
	const char *p = v;

	for (;;) {
		const char *end = strchr(p, ','), *colon;
		char uri[1024];

		if (end == NULL)
			end = p + strlen(p);
		if (copy_trimmed(p, end, uri, sizeof uri) != 0)
			return fail(why, whylen, "%s=: an address is too long", tag);
		colon = strchr(uri, ':');
		if (uri[0] == '\0' || colon == NULL || colon == uri || colon[1] == '\0')
			return fail(why, whylen,
			            "%s=%s: '%s' is not a URI such as mailto:dmarc@example.com",
			            tag, v, uri);
		if (*end == '\0')
			return 0;
		p = end + 1;
	}
}

static int
check_pct(const char *v, int *pct, char *why, size_t whylen)
{
	char *end;
	long n;

	*pct = 100;
	if (v == NULL)
		return 0;
	n = strtol(v, &end, 10);
	if (end == v || *end != '\0' || n < 0 || n > 100)
		return fail(why, whylen, "pct=%s: must be a number from 0 to 100", v);
	*pct = (int)n;
	return 0;
}

int
dmarc_parse(const char *txt, struct dmarc_record *out, char *why, size_t whylen)
{
	struct tag *tags;
	const char *v;
	int n, rc = -1;

	memset(out, 0, sizeof *out);
	if (!dmarc_is_record(txt))
		return fail(why, whylen, "does not start with v=DMARC1 (receivers ignore it)");
	tags = calloc(MAX_TAGS, sizeof *tags);
	if (tags == NULL)
		return fail(why, whylen, "out of memory");
	if (split_tags(txt, tags, &n, why, whylen) != 0)
		goto done;
	v = tag_value(tags, n, "p");
	if (v == NULL) {
		fail(why, whylen, "p= is missing (it is required)");
		goto done;
	}
	if (policy("p", v, out->p, sizeof out->p, why, whylen) != 0)
		goto done;
	v = tag_value(tags, n, "sp");
	if (v != NULL && policy("sp", v, out->sp, sizeof out->sp, why, whylen) != 0)
		goto done;
	if (alignment("adkim", tag_value(tags, n, "adkim"), &out->adkim, why, whylen) != 0 ||
	    alignment("aspf", tag_value(tags, n, "aspf"), &out->aspf, why, whylen) != 0 ||
	    check_pct(tag_value(tags, n, "pct"), &out->pct, why, whylen) != 0)
		goto done;
	v = tag_value(tags, n, "fo");
	if (v != NULL && check_fo(v, why, whylen) != 0)
		goto done;
	v = tag_value(tags, n, "ruf");
	if (v != NULL && check_uris("ruf", v, why, whylen) != 0)
		goto done;
	v = tag_value(tags, n, "rua");
	if (v != NULL && check_uris("rua", v, why, whylen) != 0)
		goto done;
	out->rua = v != NULL;
	rc = 0;
done:
	free(tags);
	return rc;
}

/* A host name: dot-separated labels of letters, digits, '-' (and '_'), 1..63 each. */
static bool
domain_ok(const char *d)
{
	size_t len = strlen(d), label = 0;

	if (len == 0 || len > 253 || d[0] == '.' || d[len - 1] == '.' || strchr(d, '.') == NULL)
		return false;
	for (; *d; d++) {
		if (*d == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!((*d >= 'a' && *d <= 'z') || (*d >= 'A' && *d <= 'Z') ||
		      (*d >= '0' && *d <= '9') || *d == '-' || *d == '_') ||
		    ++label > 63)
			return false;
	}
	return true;
}

int
dmarc_rua_parse(const char *rua, struct dmarc_rua *out, char *err, size_t errlen)
{
	const char *p = rua;

	memset(out, 0, sizeof *out);
	if (rua == NULL || *rua == '\0')
		return fail(err, errlen, "empty report address");
	if (strpbrk(rua, "; \t\r\n\"\\") != NULL)
		return fail(err, errlen, "report address '%s' contains ';', a space or a quote",
		            rua);
	for (;;) {
		const char *end = strchr(p, ','), *at;
		char uri[512], *bang;

		if (end == NULL)
			end = p + strlen(p);
		if ((size_t)(end - p) >= sizeof uri || out->n == DMARC_RUA_MAX)
			return fail(err, errlen, "report address list '%s' is too long", rua);
		memcpy(uri, p, (size_t)(end - p));
		uri[end - p] = '\0';
		bang = strchr(uri, '!'); /* size limit, e.g. "!10m" */
		if (bang != NULL)
			*bang = '\0';
		if (strncmp(uri, "mailto:", 7) != 0)
			return fail(err, errlen,
			            "report address '%s' must start with mailto:", uri);
		at = strrchr(uri + 7, '@');
		if (at == NULL || at == uri + 7 || !domain_ok(at + 1))
			return fail(err, errlen, "report address '%s' is not mailto:local@domain",
			            uri);
		snprintf(out->domain[out->n], sizeof out->domain[0], "%s", at + 1);
		for (char *c = out->domain[out->n]; *c; c++)
			*c = (char)lower((unsigned char)*c);
		out->n++;
		if (*end == '\0')
			return 0;
		p = end + 1;
	}
}

bool
dmarc_same_or_sub(const char *sub, const char *domain)
{
	size_t sl = strlen(sub), dl = strlen(domain);

	if (sl > 0 && sub[sl - 1] == '.')
		sl--;
	if (dl > 0 && domain[dl - 1] == '.')
		dl--;
	if (dl == 0 || sl < dl)
		return false;
	for (size_t i = 0; i < dl; i++)
		if (lower((unsigned char)sub[sl - dl + i]) != lower((unsigned char)domain[i]))
			return false;
	return sl == dl || sub[sl - dl - 1] == '.';
}

bool
dmarc_rua_external(const char *domain, const char *rua_domain)
{
	return !dmarc_same_or_sub(rua_domain, domain);
}

int
dmarc_starter(const char *rua, char **out, char *err, size_t errlen)
{
	struct dmarc_rua r;
	size_t len;

	*out = NULL;
	if (dmarc_rua_parse(rua, &r, err, errlen) != 0)
		return -1;
	len = strlen(rua) + 64;
	*out = malloc(len);
	if (*out == NULL)
		return fail(err, errlen, "out of memory");
	snprintf(*out, len, "v=DMARC1; p=none; rua=%s; adkim=r; aspf=r; fo=1", rua);
	return 0;
}
