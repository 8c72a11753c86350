/*
 * tools/dmarc: DMARC record text (see tools/dmarc.h).
 *
 * The record is a tag list "tag=value; tag=value" (RFC 7489 6.4) whose
 * first tag must be v=DMARC1 exactly (the value is case-sensitive in the
 * ABNF); receivers discard a record that does not start so (6.6.3).
 */
#include "tools/dmarc.h"
#include "tools/orgdomain.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* "!size" after a report URI (RFC 7489 6.2): digits and an optional k, m, g or t. */
static bool
size_ok(const char *s)
{
	size_t digits = strspn(s, "0123456789");

	if (digits == 0)
		return false;
	s += digits;
	return *s == '\0' || (strchr("kmgtKMGT", *s) != NULL && s[1] == '\0');
}

/* rua=/ruf=: comma-separated URIs (6.2); each needs a scheme, "!size" is optional. */
static int
check_uris(const char *tag, const char *v, char *why, size_t whylen)
{
	const char *p = v;

	for (;;) {
		const char *end = strchr(p, ','), *colon;
		char uri[1024], *bang;

		if (end == NULL)
			end = p + strlen(p);
		if (copy_trimmed(p, end, uri, sizeof uri) != 0)
			return fail(why, whylen, "%s=: an address is too long", tag);
		bang = strchr(uri, '!');
		if (bang != NULL && !size_ok(bang + 1))
			return fail(
			    why, whylen,
			    "%s=%s: '%s' has a bad size limit (RFC 7489 6.2: !NUMBER with an "
			    "optional k, m, g or t)",
			    tag, v, uri);
		if (bang != NULL)
			*bang = '\0';
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

static void __attribute__((format(printf, 3, 4)))
add_note(struct dmarc_record *r, const char *tag, const char *fmt, ...)
{
	va_list ap;

	if (r->nnotes == DMARC_NOTES_MAX)
		return;
	snprintf(r->notes[r->nnotes].tag, sizeof r->notes[0].tag, "%s", tag);
	va_start(ap, fmt);
	vsnprintf(r->notes[r->nnotes].text, sizeof r->notes[0].text, fmt, ap);
	va_end(ap);
	r->nnotes++;
}

/* ri=: a 32-bit unsigned integer (RFC 7489 6.3). */
static int
check_ri(const char *v, char *why, size_t whylen)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(v, &end, 10);
	if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno != 0 || n > 4294967295ULL)
		return fail(why, whylen, "ri=%s: must be a number of seconds from 0 to 4294967295",
		            v);
	return 0;
}

/* rf=: report formats joined by ':' (RFC 7489 6.3); afrf is the only one defined. */
static int
check_rf(struct dmarc_record *r, const char *v, char *why, size_t whylen)
{
	for (const char *p = v; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == ':' || *p == '-'))
			return fail(why, whylen, "rf=%s: must be report formats joined by ':'", v);
	if (!caseeq(v, "afrf"))
		add_note(r, "rf", "rf=%s: afrf is the only failure report format (RFC 7489 6.3)",
		         v);
	return 0;
}

/* p=, sp=, np= (RFC 9091), adkim, aspf, pct. */
static int
parse_policy(struct dmarc_record *r, const struct tag *tags, int n, char *why, size_t whylen)
{
	const char *v = tag_value(tags, n, "p");

	if (v == NULL)
		return fail(why, whylen, "p= is missing (it is required)");
	if (policy("p", v, r->p, sizeof r->p, why, whylen) != 0)
		return -1;
	v = tag_value(tags, n, "sp");
	if (v != NULL && policy("sp", v, r->sp, sizeof r->sp, why, whylen) != 0)
		return -1;
	v = tag_value(tags, n, "np");
	if (v != NULL && policy("np", v, r->np, sizeof r->np, why, whylen) != 0)
		return -1;
	if (alignment("adkim", tag_value(tags, n, "adkim"), &r->adkim, why, whylen) != 0 ||
	    alignment("aspf", tag_value(tags, n, "aspf"), &r->aspf, why, whylen) != 0 ||
	    check_pct(tag_value(tags, n, "pct"), &r->pct, why, whylen) != 0)
		return -1;
	if (r->pct < 100 && (strcmp(r->p, "none") != 0 || (r->sp[0] && strcmp(r->sp, "none") != 0)))
		add_note(r, "pct",
		         "pct=%d: only %d%% of failing mail gets p=%s, the rest one step less "
		         "(RFC 7489 6.3); raise it to 100 when the reports are clean",
		         r->pct, r->pct, r->p);
	return 0;
}

/* v (or "") into dst; -1 with why when it does not fit (never a silently cut value). */
static int
keep(char *dst, size_t dstlen, const char *tag, const char *v, char *why, size_t whylen)
{
	if ((size_t)snprintf(dst, dstlen, "%s", v ? v : "") >= dstlen)
		return fail(why, whylen, "%s= is longer than %zu characters", tag, dstlen - 1);
	return 0;
}

/* rua=, ruf=, fo=, rf=, ri=: the reporting tags. */
static int
parse_reporting(struct dmarc_record *r, const struct tag *tags, int n, char *why, size_t whylen)
{
	const char *fo = tag_value(tags, n, "fo"), *ruf = tag_value(tags, n, "ruf");
	const char *rua = tag_value(tags, n, "rua"), *rf = tag_value(tags, n, "rf");
	const char *ri = tag_value(tags, n, "ri");

	if ((fo != NULL && check_fo(fo, why, whylen) != 0) ||
	    (ruf != NULL && check_uris("ruf", ruf, why, whylen) != 0) ||
	    (rua != NULL && check_uris("rua", rua, why, whylen) != 0) ||
	    (ri != NULL && check_ri(ri, why, whylen) != 0) ||
	    (rf != NULL && check_rf(r, rf, why, whylen) != 0))
		return -1;
	r->rua = rua != NULL;
	if (keep(r->rua_list, sizeof r->rua_list, "rua", rua, why, whylen) != 0 ||
	    keep(r->ruf_list, sizeof r->ruf_list, "ruf", ruf, why, whylen) != 0 ||
	    keep(r->fo, sizeof r->fo, "fo", fo, why, whylen) != 0 ||
	    keep(r->rf, sizeof r->rf, "rf", rf, why, whylen) != 0 ||
	    keep(r->ri, sizeof r->ri, "ri", ri, why, whylen) != 0)
		return -1;
	if (fo != NULL && ruf == NULL)
		add_note(r, "fo",
		         "fo=%s without ruf=: failure options only shape failure reports, and none "
		         "are requested (RFC 7489 6.3)",
		         fo);
	return 0;
}

static const char *const known_tags[] = {"v",   "p",  "sp", "np", "adkim", "aspf",
                                         "pct", "fo", "rf", "ri", "rua",   "ruf"};

/* true when a and b differ by one insertion, deletion, substitution or swap */
static bool
one_edit(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i = 0;

	if (la < lb)
		return one_edit(b, a);
	if (la - lb > 1)
		return false;
	while (i < lb && lower((unsigned char)a[i]) == lower((unsigned char)b[i]))
		i++;
	if (la > lb)
		return caseeq(a + i + 1, b + i);
	if (i == la)
		return false; /* equal */
	if (i + 1 < la && lower((unsigned char)a[i]) == lower((unsigned char)b[i + 1]) &&
	    lower((unsigned char)a[i + 1]) == lower((unsigned char)b[i]) &&
	    caseeq(a + i + 2, b + i + 2))
		return true;
	return caseeq(a + i + 1, b + i + 1);
}

/* Unknown tags are ignored (6.3); one a letter away from a known tag is probably a typo. */
static void
note_typos(struct dmarc_record *r, const struct tag *tags, int n)
{
	size_t nk = sizeof known_tags / sizeof known_tags[0];

	for (int i = 0; i < n; i++) {
		bool known = false;

		for (size_t k = 0; k < nk && !known; k++)
			known = caseeq(tags[i].name, known_tags[k]);
		for (size_t k = 0; k < nk && !known; k++) {
			if (strlen(known_tags[k]) < 2 || !one_edit(tags[i].name, known_tags[k]))
				continue;
			char key[40];

			snprintf(key, sizeof key, "tag %s", tags[i].name);
			add_note(r, key,
			         "unknown tag %s= is ignored by receivers; did you mean %s=? "
			         "(RFC 7489 6.3)",
			         tags[i].name, known_tags[k]);
			break;
		}
	}
}

int
dmarc_parse(const char *txt, struct dmarc_record *out, char *why, size_t whylen)
{
	struct tag *tags;
	int n, rc = -1;

	memset(out, 0, sizeof *out);
	if (!dmarc_is_record(txt))
		return fail(why, whylen, "does not start with v=DMARC1 (receivers ignore it)");
	tags = calloc(MAX_TAGS, sizeof *tags);
	if (tags == NULL)
		return fail(why, whylen, "out of memory");
	if (split_tags(txt, tags, &n, why, whylen) != 0)
		goto done;
	if (parse_policy(out, tags, n, why, whylen) != 0) {
		/* RFC 7489 6.6.3: without a valid p= (or sp=), a valid rua= means p=none */
		const char *rua = tag_value(tags, n, "rua"), *p = tag_value(tags, n, "p");
		const char *sp = tag_value(tags, n, "sp");
		char ignore[80], pol[12];
		bool bad_p =
		    p == NULL || policy("p", p, pol, sizeof pol, ignore, sizeof ignore) != 0 ||
		    (sp != NULL && policy("sp", sp, pol, sizeof pol, ignore, sizeof ignore) != 0);

		out->p_none_by_rua =
		    bad_p && rua != NULL && check_uris("rua", rua, ignore, sizeof ignore) == 0;
		if (out->p_none_by_rua) {
			size_t len = strlen(why);

			snprintf(why + len, whylen - len,
			         "; receivers apply p=none because rua= is valid (RFC 7489 6.6.3)");
		}
		goto done;
	}
	if (parse_reporting(out, tags, n, why, whylen) != 0)
		goto done;
	note_typos(out, tags, n);
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
	return !orgdomain_same(domain, rua_domain);
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

/* Append ";  tag=value" to buf (size cap) at *len. */
static void
put(char *buf, size_t cap, size_t *len, const char *tag, const char *value)
{
	int n;

	if (value == NULL || value[0] == '\0' || *len >= cap)
		return;
	n = snprintf(buf + *len, cap - *len, "; %s=%s", tag, value);
	*len += n > 0 ? (size_t)n : 0;
}

/* true when the rua= list already holds every address of add (case-insensitive). */
static bool
rua_holds(const char *list, const char *add)
{
	while (*add) {
		size_t len = strcspn(add, ",");
		bool found = false;

		for (const char *p = list; *p && !found; p++)
			found = strncasecmp(p, add, len) == 0 && (p == list || p[-1] == ',') &&
			        strchr(",!", p[len]) != NULL;
		if (!found)
			return false;
		add += len;
		if (*add == ',')
			add++;
	}
	return true;
}

int
dmarc_propose(const struct dmarc_record *cur, const char *add_rua, char **out, char **changes,
              char *err, size_t errlen)
{
	struct dmarc_rua check;
	char pct[8], adkim[2] = {cur->adkim ? cur->adkim : 'r', '\0'};
	char aspf[2] = {cur->aspf ? cur->aspf : 'r', '\0'}, *rua;
	size_t cap, len, clen = 0;
	bool add = add_rua != NULL && !rua_holds(cur->rua_list, add_rua);

	*out = *changes = NULL;
	if (add && dmarc_rua_parse(add_rua, &check, err, errlen) != 0)
		return -1;
	cap = 2048 + (add_rua ? 2 * strlen(add_rua) : 0);
	*out = malloc(cap);
	*changes = malloc(cap);
	rua = malloc(cap);
	if (*out == NULL || *changes == NULL || rua == NULL) {
		free(*out);
		free(*changes);
		free(rua);
		*out = *changes = NULL;
		return fail(err, errlen, "out of memory");
	}
	snprintf(rua, cap, "%s%s%s", cur->rua_list, add && cur->rua_list[0] ? "," : "",
	         add ? add_rua : "");
	len = (size_t)snprintf(*out, cap, "v=DMARC1; p=%s", cur->p);
	put(*out, cap, &len, "sp", cur->sp);
	put(*out, cap, &len, "np", cur->np);
	snprintf(pct, sizeof pct, "%d", cur->pct);
	put(*out, cap, &len, "pct", cur->pct != 100 ? pct : NULL);
	put(*out, cap, &len, "rua", rua);
	put(*out, cap, &len, "ruf", cur->ruf_list);
	put(*out, cap, &len, "adkim", adkim);
	put(*out, cap, &len, "aspf", aspf);
	put(*out, cap, &len, "fo", cur->ruf_list[0] ? cur->fo : NULL);
	put(*out, cap, &len, "rf", cur->rf);
	put(*out, cap, &len, "ri", cur->ri);
	(*changes)[0] = '\0';
	if (add)
		clen += (size_t)snprintf(*changes, cap, "adds rua=%s", add_rua);
	for (size_t i = 0; i < cur->nnotes && clen < cap; i++) {
		const char *tag = cur->notes[i].tag;

		if (strcmp(tag, "fo") == 0 || strncmp(tag, "tag ", 4) == 0)
			clen += (size_t)snprintf(*changes + clen, cap - clen,
			                         "%sdrops %s=", clen ? ", " : "",
			                         tag[0] == 'f' ? tag : tag + 4);
	}
	free(rua);
	return 0;
}
