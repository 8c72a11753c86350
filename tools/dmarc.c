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

#include "mta/shared/util.h"

#define MAX_TAGS 64

struct tag {
	char name[16];
	char value[1024];
};

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

static void __attribute__((format(printf, 3, 4)))
add_note(struct dmarc_record *r, const char *tag, const char *fmt, ...);

/*
 * RFC 7489 6.3: "Unknown tags MUST be ignored. Syntax errors in the
 * remainder of the record SHOULD be discarded in favor of default values
 * (if any) or ignored outright", so only a bad v= or p= (or sp=, 6.6.3)
 * makes receivers drop the record. Anything else bad is dropped here with
 * a note and the policy kept: the proposal must never be weaker.
 */
static void __attribute__((format(printf, 3, 4)))
drop_note(struct dmarc_record *r, const char *name, const char *fmt, ...)
{
	va_list ap;
	char key[40];

	if (r->nnotes == DMARC_NOTES_MAX)
		return;
	snprintf(key, sizeof key, "drop %s", name);
	snprintf(r->notes[r->nnotes].tag, sizeof r->notes[0].tag, "%s", key);
	va_start(ap, fmt);
	vsnprintf(r->notes[r->nnotes].text, sizeof r->notes[0].text, fmt, ap);
	va_end(ap);
	r->nnotes++;
}

/* The name of a part "name=value" too long to keep, for the note. */
static void
long_part(struct dmarc_record *r, const char *p, const char *end)
{
	char name[16];
	const char *eq = memchr(p, '=', (size_t)(end - p));

	if (eq == NULL || copy_trimmed(p, eq, name, sizeof name) != 0 || name[0] == '\0')
		snprintf(name, sizeof name, "part");
	drop_note(r, name,
	          "%s=: longer than this tool keeps (1023 characters); receivers may truncate "
	          "or ignore it: it is not kept (RFC 7489 6.3)",
	          name);
}

/* none 0, quarantine 1, reject 2, anything else -1: of a tag twice, the stronger stays */
static int
policy_rank(const char *v)
{
	return caseeq(v, "reject") ? 2 : caseeq(v, "quarantine") ? 1 : caseeq(v, "none") ? 0 : -1;
}

/* Split txt into tags; a part without '=' or a repeated tag is dropped with a note. */
static int
split_tags(const char *txt, struct tag *tags, int *n, struct dmarc_record *r)
{
	const char *p = txt;

	*n = 0;
	while (*p != '\0') {
		const char *end = strchr(p, ';'), *eq;
		char part[1100];
		bool twice = false;

		if (end == NULL)
			end = p + strlen(p);
		if (copy_trimmed(p, end, part, sizeof part) != 0) {
			long_part(r, p, end);
			p = *end ? end + 1 : end;
			continue;
		}
		p = *end ? end + 1 : end;
		if (part[0] == '\0')
			continue; /* "a=b;" and "a=b; ;" are fine */
		eq = strchr(part, '=');
		if (eq == NULL || *n == MAX_TAGS ||
		    copy_trimmed(part, eq, tags[*n].name, sizeof tags[*n].name) != 0 ||
		    tags[*n].name[0] == '\0') {
			add_note(r, "junk",
			         "'%.60s' is not a tag=value pair (or past %d tags): receivers ignore "
			         "it (RFC 7489 6.3)",
			         part, MAX_TAGS);
			continue;
		}
		if (copy_trimmed(eq + 1, part + strlen(part), tags[*n].value,
		                 sizeof tags[*n].value) != 0) {
			long_part(r, part, part + strlen(part));
			continue;
		}
		for (int i = 0; i < *n && !twice; i++) {
			twice = caseeq(tags[i].name, tags[*n].name);
			if (twice && policy_rank(tags[*n].value) > policy_rank(tags[i].value))
				memcpy(tags[i].value, tags[*n].value, sizeof tags[i].value);
		}
		if (twice)
			drop_note(r, tags[*n].name,
			          "%s= appears twice: receivers may take either; one is kept, the "
			          "stronger policy for p/sp/np (RFC 7489 6.3)",
			          tags[*n].name);
		else
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
	return util_failf(why, whylen, "%s=%s: must be none, quarantine or reject", tag, v);
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
	return util_failf(why, whylen, "%s=%s: must be r (relaxed) or s (strict)", tag, v);
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
			return util_failf(why, whylen, "fo=%s: must be 0, 1, d or s joined by ':'", v);
		p++;
		while (is_wsp(*p))
			p++;
		if (*p == '\0')
			return 0;
		if (*p++ != ':')
			return util_failf(why, whylen, "fo=%s: must be 0, 1, d or s joined by ':'", v);
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
			return util_failf(why, whylen, "%s=: an address is too long", tag);
		bang = strchr(uri, '!');
		if (bang != NULL && !size_ok(bang + 1))
			return util_failf(
			    why, whylen,
			    "%s=%s: '%s' has a bad size limit (RFC 7489 6.2: !NUMBER with an "
			    "optional k, m, g or t)",
			    tag, v, uri);
		if (bang != NULL)
			*bang = '\0';
		colon = strchr(uri, ':');
		if (uri[0] == '\0' || colon == NULL || colon == uri || colon[1] == '\0')
			return util_failf(why, whylen,
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
		return util_failf(why, whylen, "pct=%s: must be a number from 0 to 100", v);
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
		return util_failf(why, whylen, "ri=%s: must be a number of seconds from 0 to 4294967295",
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
			return util_failf(why, whylen, "rf=%s: must be report formats joined by ':'", v);
	if (!caseeq(v, "afrf"))
		add_note(r, "rf", "rf=%s: afrf is the only failure report format (RFC 7489 6.3)",
		         v);
	return 0;
}

/* A bad np=, adkim=, aspf= or pct= is dropped: receivers use the default (RFC 7489 6.3). */
static void
lenient_policy(struct dmarc_record *r, const struct tag *tags, int n)
{
	const char *v = tag_value(tags, n, "np");
	char why[200];

	if (v != NULL && policy("np", v, r->np, sizeof r->np, why, sizeof why) != 0) {
		r->np[0] = '\0';
		drop_note(r, "np", "%s; receivers apply sp= or p= instead (RFC 9091)", why);
	}
	if (alignment("adkim", tag_value(tags, n, "adkim"), &r->adkim, why, sizeof why) != 0) {
		r->adkim = 'r';
		drop_note(r, "adkim", "%s; receivers use the default r (RFC 7489 6.3)", why);
	}
	if (alignment("aspf", tag_value(tags, n, "aspf"), &r->aspf, why, sizeof why) != 0) {
		r->aspf = 'r';
		drop_note(r, "aspf", "%s; receivers use the default r (RFC 7489 6.3)", why);
	}
	if (check_pct(tag_value(tags, n, "pct"), &r->pct, why, sizeof why) != 0) {
		r->pct = 100;
		drop_note(r, "pct", "%s; receivers use the default 100 (RFC 7489 6.3)", why);
	}
}

/* p=, sp=, np= (RFC 9091), adkim, aspf, pct. */
static int
parse_policy(struct dmarc_record *r, const struct tag *tags, int n, char *why, size_t whylen)
{
	const char *v = tag_value(tags, n, "p");

	if (v == NULL)
		return util_failf(why, whylen, "p= is missing (it is required)");
	if (policy("p", v, r->p, sizeof r->p, why, whylen) != 0)
		return -1;
	v = tag_value(tags, n, "sp");
	if (v != NULL && policy("sp", v, r->sp, sizeof r->sp, why, whylen) != 0)
		return -1;
	lenient_policy(r, tags, n);
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
		return util_failf(why, whylen, "%s= is longer than %zu characters", tag, dstlen - 1);
	return 0;
}

/* One report URI (6.2) into out, without a bad "!size"; false when it is no URI at all. */
static bool
one_uri(const char *uri, char *out, size_t outlen, bool *size_dropped)
{
	char tmp[1024], why[64], *bang;

	*size_dropped = false;
	if (snprintf(tmp, sizeof tmp, "%s", uri) >= (int)sizeof tmp)
		return false;
	bang = strchr(tmp, '!');
	if (bang != NULL && check_uris("u", tmp, why, sizeof why) != 0) {
		*bang = '\0';
		*size_dropped = true;
	}
	if (check_uris("u", tmp, why, sizeof why) != 0)
		return false;
	for (const char *c = tmp; *c; c++)
		if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f)
			return false; /* not in a URI (RFC 3986 2): never echo such bytes */
	return snprintf(out, outlen, "%s", tmp) < (int)outlen;
}

/*
 * rua=/ruf= into out: the valid URIs kept, a bad "!size" removed from its
 * URI, a URI that is none dropped; a note says what changed.
 */
static void
keep_uris(struct dmarc_record *r, const char *tag, const char *v, char *out, size_t outlen)
{
	char uri[1024], fixed[1024];
	size_t len = 0, dropped = 0, sized = 0;
	const char *p = v;

	out[0] = '\0';
	for (;;) {
		const char *end = strchr(p, ',');
		bool size_dropped;

		if (end == NULL)
			end = p + strlen(p);
		if (copy_trimmed(p, end, uri, sizeof uri) == 0 &&
		    one_uri(uri, fixed, sizeof fixed, &size_dropped) &&
		    len + (len ? 1 : 0) + strlen(fixed) < outlen) {
			len += (size_t)snprintf(out + len, outlen - len, "%s%s", len ? "," : "",
			                        fixed);
			sized += size_dropped;
		} else {
			dropped++;
		}
		if (*end == '\0')
			break;
		p = end + 1;
	}
	if (out[0] == '\0')
		drop_note(r, tag,
		          "%s= holds no valid report URI such as mailto:dmarc@example.com; "
		          "receivers send no reports (RFC 7489 6.2, 6.3)",
		          tag);
	else if (dropped || sized) {
		char key[40];

		snprintf(key, sizeof key, "fix %s", tag);
		add_note(r, key,
		         "%s=%.120s: %zu address(es) that are not a URI dropped, %zu bad size "
		         "limit(s) removed (RFC 7489 6.2: !NUMBER with an optional k, m, g or t); "
		         "receivers skip them",
		         tag, v, dropped, sized);
	}
}

/* rua=, ruf=, fo=, rf=, ri=: the reporting tags; a bad one is dropped with a note. */
static void
parse_reporting(struct dmarc_record *r, const struct tag *tags, int n)
{
	const char *fo = tag_value(tags, n, "fo"), *ruf = tag_value(tags, n, "ruf");
	const char *rua = tag_value(tags, n, "rua"), *rf = tag_value(tags, n, "rf");
	const char *ri = tag_value(tags, n, "ri");
	char why[200];

	if (rua != NULL)
		keep_uris(r, "rua", rua, r->rua_list, sizeof r->rua_list);
	if (ruf != NULL)
		keep_uris(r, "ruf", ruf, r->ruf_list, sizeof r->ruf_list);
	r->rua = r->rua_list[0] != '\0';
	if (fo != NULL && (check_fo(fo, why, sizeof why) != 0 ||
	                   keep(r->fo, sizeof r->fo, "fo", fo, why, sizeof why) != 0))
		drop_note(r, "fo", "%s; receivers use the default 0 (RFC 7489 6.3)", why);
	if (ri != NULL && (check_ri(ri, why, sizeof why) != 0 ||
	                   keep(r->ri, sizeof r->ri, "ri", ri, why, sizeof why) != 0))
		drop_note(r, "ri", "%s; receivers use the default 86400 (RFC 7489 6.3)", why);
	if (rf != NULL && (check_rf(r, rf, why, sizeof why) != 0 ||
	                   keep(r->rf, sizeof r->rf, "rf", rf, why, sizeof why) != 0)) {
		r->rf[0] = '\0';
		drop_note(r, "rf", "%s; receivers use the default afrf (RFC 7489 6.3)", why);
	}
	if (r->fo[0] && !r->ruf_list[0])
		add_note(r, "fo",
		         "fo=%s without ruf=: failure options only shape failure reports, and none "
		         "are requested (RFC 7489 6.3)",
		         r->fo);
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
		return util_failf(why, whylen, "does not start with v=DMARC1 (receivers ignore it)");
	tags = calloc(MAX_TAGS, sizeof *tags);
	if (tags == NULL)
		return util_failf(why, whylen, "out of memory");
	split_tags(txt, tags, &n, out);
	if (n > 1 && tag_value(tags, n, "p") != NULL && !caseeq(tags[1].name, "p"))
		add_note(out, "order",
		         "p= must come right after v=DMARC1 (RFC 7489 6.3 MUST); a strict receiver "
		         "discards the record");
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
	parse_reporting(out, tags, n);
	note_typos(out, tags, n);
	rc = 0;
done:
	free(tags);
	return rc;
}

/* Append "; tag=value" to buf at *len; the caller sized buf for every value (never cut). */
static void
put(char *buf, size_t cap, size_t *len, const char *tag, const char *value)
{
	int n;

	if (value == NULL || value[0] == '\0')
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

/* What dmarc_propose changed, from the notes of dmarc_parse, into changes (cap bytes). */
static void
describe_changes(const struct dmarc_record *cur, const char *added, char *changes, size_t cap)
{
	size_t clen = 0;

	changes[0] = '\0';
	if (added != NULL)
		clen += (size_t)snprintf(changes, cap, "adds rua=%s", added);
	for (size_t i = 0; i < cur->nnotes && clen < cap; i++) {
		const char *tag = cur->notes[i].tag, *sep = clen ? ", " : "";

		if (strcmp(tag, "fo") == 0 || strncmp(tag, "tag ", 4) == 0 ||
		    strncmp(tag, "drop ", 5) == 0)
			clen += (size_t)snprintf(changes + clen, cap - clen, "%sdrops %s=", sep,
			                         tag[0] == 'f' ? tag : strchr(tag, ' ') + 1);
		else if (strncmp(tag, "fix ", 4) == 0)
			clen += (size_t)snprintf(changes + clen, cap - clen,
			                         "%skeeps only the valid addresses of %s=", sep,
			                         tag + 4);
		else if (strcmp(tag, "junk") == 0)
			clen += (size_t)snprintf(changes + clen, cap - clen,
			                         "%sdrops text that is no tag=value", sep);
		else if (strcmp(tag, "order") == 0)
			clen += (size_t)snprintf(changes + clen, cap - clen,
			                         "%sputs p= right after v=", sep);
	}
}

int
dmarc_propose(const struct dmarc_record *cur, const char *add_rua, char **out, char **changes,
              char *err, size_t errlen)
{
	struct dmarc_rua check;
	char pct[8], adkim[2] = {cur->adkim ? cur->adkim : 'r', '\0'};
	char aspf[2] = {cur->aspf ? cur->aspf : 'r', '\0'}, *rua;
	size_t cap, ccap, len;
	bool add = add_rua != NULL && !rua_holds(cur->rua_list, add_rua);

	*out = *changes = NULL;
	if (add && dmarc_rua_parse(add_rua, &check, err, errlen) != 0)
		return -1;
	/* room for every value: the record is never cut (a cut one would weaken it) */
	cap = 256 + strlen(cur->rua_list) + strlen(cur->ruf_list) + strlen(cur->fo) +
	      strlen(cur->rf) + strlen(cur->ri) + (add ? strlen(add_rua) : 0);
	ccap = 64 + (add ? strlen(add_rua) : 0) + cur->nnotes * 64;
	*out = malloc(cap);
	*changes = malloc(ccap);
	rua = malloc(cap);
	if (*out == NULL || *changes == NULL || rua == NULL) {
		free(*out);
		free(*changes);
		free(rua);
		*out = *changes = NULL;
		return util_failf(err, errlen, "out of memory");
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
	free(rua);
	if (len >= cap) { /* cannot happen with cap above; refuse rather than print a cut record */
		free(*out);
		free(*changes);
		*out = *changes = NULL;
		return util_failf(err, errlen, "the proposed record does not fit (internal error)");
	}
	describe_changes(cur, add ? add_rua : NULL, *changes, ccap);
	return 0;
}
