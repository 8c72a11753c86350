/*
 * tlsrpt: RFC 8460 text (see tlsrpt.h). Owns the TXT grammar, the JSON
 * shape, gzip framing and the MIME form; never does I/O.
 */
#include "mta/shared/tlsrpt.h"
#include "mta/shared/util.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <zlib.h>

/* ---- TXT record (RFC 8460 3) --------------------------------------------- */

static int
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 3986 2.1 percent-decoding of s[0..n) into out (size outlen). 0 / -1. */
static int
pct_decode(const char *s, size_t n, char *out, size_t outlen)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		unsigned v;
		char hex[3];
		if (o + 1 >= outlen)
			return -1;
		if (s[i] != '%') {
			out[o++] = s[i];
			continue;
		}
		if (i + 2 >= n)
			return -1;
		if (!isxdigit((unsigned char)s[i + 1]) || !isxdigit((unsigned char)s[i + 2]))
			return -1;
		hex[0] = s[i + 1];
		hex[1] = s[i + 2];
		hex[2] = '\0';
		v = (unsigned)strtoul(hex, NULL, 16);
		if (v == 0)
			return -1;
		out[o++] = (char)v;
		i += 2;
	}
	out[o] = '\0';
	return 0;
}

/* One mailto: address: local@domain, no spaces, commas or control bytes. */
static int
mailto_ok(const char *a)
{
	const char *at = strrchr(a, '@');
	const unsigned char *p;

	if (at == NULL || at == a || at[1] == '\0' || strchr(at + 1, '.') == NULL)
		return 0;
	for (p = (const unsigned char *)a; *p; p++)
		if (*p <= 0x20 || *p == 0x7f || *p == ',' || *p == '<' || *p == '>')
			return 0;
	return 1;
}

/* Add uri s[0..n) to out if usable; 0 (added or skipped), -1 (malformed). */
static int
add_uri(const char *s, size_t n, struct tlsrpt_rua *out, char *err, size_t errlen)
{
	struct tlsrpt_uri *u;
	size_t i;

	if (n == 0 || n >= TLSRPT_URI_MAX) {
		util_seterrf(err, errlen, "rua URI empty or longer than %d octets",
		             TLSRPT_URI_MAX - 1);
		return -1;
	}
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f) {
			util_seterrf(err, errlen, "rua URI with a space or a non-ASCII byte");
			return -1;
		}
	if (out->n >= TLSRPT_RUA_MAX)
		return 0;
	u = &out->u[out->n];
	memset(u, 0, sizeof *u);
	memcpy(u->uri, s, n);
	if (n > 7 && strncasecmp(s, "mailto:", 7) == 0) {
		size_t an = strcspn(u->uri + 7, "?");
		u->kind = TLSRPT_MAILTO;
		if (pct_decode(u->uri + 7, an, u->addr, sizeof u->addr) != 0 ||
		    !mailto_ok(u->addr)) {
			util_seterrf(err, errlen, "rua %s: not one mail address", u->uri);
			return -1;
		}
	} else if (n > 8 && strncasecmp(s, "https://", 8) == 0) {
		if (strchr("/?#:", s[8]) != NULL) {
			util_seterrf(err, errlen, "rua %s: no host", u->uri);
			return -1;
		}
		u->kind = TLSRPT_HTTPS;
	} else {
		return 0; /* another scheme: not one we can send to, skipped */
	}
	out->n++;
	return 0;
}

/* tlsrpt-rua = "rua=" uri *(*WSP "," *WSP uri) */
static int
parse_rua(const char *v, size_t n, struct tlsrpt_rua *out, char *err, size_t errlen)
{
	size_t i = 0;

	while (i <= n) {
		size_t b, e;
		while (i < n && is_wsp(v[i]))
			i++;
		b = i;
		while (i < n && v[i] != ',')
			i++;
		e = i;
		while (e > b && is_wsp(v[e - 1]))
			e--;
		if (add_uri(v + b, e - b, out, err, errlen) != 0)
			return -1;
		i++; /* past the comma (or the end) */
	}
	return 0;
}

/* The fields after "v=TLSRPTv1" of the one record. */
static int
parse_fields(const char *p, struct tlsrpt_rua *out, char *err, size_t errlen)
{
	int have_rua = 0;

	while (*p) {
		size_t n, nl;
		while (is_wsp(*p))
			p++;
		if (*p != ';') {
			util_seterrf(err, errlen, "expected ';' at \"%.20s\"", p);
			return -1;
		}
		p++;
		while (is_wsp(*p))
			p++;
		n = strcspn(p, ";");
		while (n > 0 && is_wsp(p[n - 1]))
			n--;
		if (n == 0) {
			p += strcspn(p, ";"); /* a trailing or empty field */
			continue;
		}
		nl = strcspn(p, "=");
		if (nl == 0 || nl >= n) {
			util_seterrf(err, errlen, "field without a name=value form: \"%.*s\"",
			             (int)n, p);
			return -1;
		}
		if (nl == 3 && strncmp(p, "rua", 3) == 0) {
			if (have_rua++) {
				util_seterrf(err, errlen, "rua given twice");
				return -1;
			}
			if (parse_rua(p + 4, n - 4, out, err, errlen) != 0)
				return -1;
		}
		p += strcspn(p, ";");
	}
	if (!have_rua) {
		util_seterrf(err, errlen, "no rua= field");
		return -1;
	}
	if (out->n == 0) {
		util_seterrf(err, errlen, "no mailto: or https: URI in rua=");
		return -1;
	}
	return 0;
}

int
tlsrpt_txt_parse(const char *const *txts, size_t n, struct tlsrpt_rua *out, char *err,
                 size_t errlen)
{
	const char *rec = NULL;
	size_t i, found = 0;

	memset(out, 0, sizeof *out);
	for (i = 0; i < n; i++) {
		const char *t = txts[i];
		/* RFC 8460 3: records not starting with the version are discarded */
		if (t == NULL || strncmp(t, "v=TLSRPTv1", 10) != 0 ||
		    !(t[10] == '\0' || t[10] == ';' || is_wsp(t[10])))
			continue;
		found++;
		rec = t;
	}
	if (found != 1) {
		util_seterrf(err, errlen,
		             found == 0 ? "no v=TLSRPTv1 record"
		                        : "more than one v=TLSRPTv1 record");
		return -1;
	}
	if (strlen(rec) > TLSRPT_TXT_MAX) {
		util_seterrf(err, errlen, "record longer than %d octets", TLSRPT_TXT_MAX);
		return -1;
	}
	if (parse_fields(rec + 10, out, err, errlen) != 0) {
		memset(out, 0, sizeof *out);
		return -1;
	}
	return 0;
}

/* ---- JSON (RFC 8460 4.4) -------------------------------------------------- */

struct sb {
	char *p;
	size_t len, cap;
	int oom;
};

static void
sb_add(struct sb *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		char *np;
		while (b->len + n + 1 > cap)
			cap *= 2;
		np = realloc(b->p, cap);
		if (np == NULL) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
sb_puts(struct sb *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void
sb_printf(struct sb *b, const char *fmt, ...)
{
	char buf[512], *big;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof buf) {
		sb_add(b, buf, (size_t)n);
		return;
	}
	big = malloc((size_t)n + 1); /* long names: once more, in full */
	if (big == NULL) {
		b->oom = 1;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb_add(b, big, (size_t)n);
	free(big);
}

size_t
tlsrpt_utf8_len(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (n == 0)
		return 0;
	if (u[0] < 0x80)
		return 1;
	/* RFC 3629 4: no overlong forms, no surrogates, nothing above U+10FFFF */
	if (u[0] >= 0xc2 && u[0] <= 0xdf)
		len = 2;
	else if (u[0] >= 0xe0 && u[0] <= 0xef)
		len = 3;
	else if (u[0] >= 0xf0 && u[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (u[0] == 0xe0)
		lo = 0xa0;
	else if (u[0] == 0xed)
		hi = 0x9f;
	else if (u[0] == 0xf0)
		lo = 0x90;
	else if (u[0] == 0xf4)
		hi = 0x8f;
	if (n < len || u[1] < lo || u[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (u[i] < 0x80 || u[i] > 0xbf)
			return 0;
	return len;
}

/*
 * A JSON string (RFC 8259 7) of s[0..n). RFC 8259 8.1: JSON text is UTF-8;
 * a policy text or an MX reply may hold any bytes, so each byte that does
 * not start a valid sequence becomes U+FFFD.
 */
static void
sb_jstrn(struct sb *b, const char *s, size_t n)
{
	size_t i, k;

	sb_add(b, "\"", 1);
	for (i = 0; i < n; i += k ? k : 1) {
		unsigned char c = (unsigned char)s[i];
		k = tlsrpt_utf8_len(s + i, n - i);
		if (k == 0) {
			sb_add(b, "\xef\xbf\xbd", 3); /* U+FFFD */
		} else if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			sb_add(b, e, 2);
		} else if (c < 0x20 || c == 0x7f) {
			sb_printf(b, "\\u%04x", c);
		} else {
			sb_add(b, s + i, k);
		}
	}
	sb_add(b, "\"", 1);
}

static void
sb_jstr(struct sb *b, const char *s)
{
	sb_jstrn(b, s ? s : "", s ? strlen(s) : 0);
}

const char *
tlsrpt_policy_type(const char *kind_name)
{
	if (kind_name && strcmp(kind_name, "dane") == 0)
		return "tlsa";
	if (kind_name && strcmp(kind_name, "mta-sts") == 0)
		return "sts";
	return "no-policy-found";
}

/* One policies[] entry: a policy type, and for tlsa the MX host it is about. */
struct group {
	const char *ptype;
	const char *mx;   /* tlsa: the MX host; else NULL */
	const char *pstr; /* the policy text, '\n'-separated; may be "" */
	int64_t ok, failed, failsum;
};

static int
nz_eq(const char *a, const char *b)
{
	return strcasecmp(a ? a : "", b ? b : "") == 0;
}

static struct group *
group_of(struct group *g, size_t *ng, const char *policy, const char *mx)
{
	const char *pt = tlsrpt_policy_type(policy);
	const char *key = strcmp(pt, "tlsa") == 0 ? (mx ? mx : "") : NULL;
	size_t i;

	for (i = 0; i < *ng; i++)
		if (strcmp(g[i].ptype, pt) == 0 && (key == NULL || nz_eq(g[i].mx, key)))
			return &g[i];
	memset(&g[*ng], 0, sizeof g[*ng]);
	g[*ng].ptype = pt;
	g[*ng].mx = key;
	g[*ng].pstr = "";
	return &g[(*ng)++];
}

static int
mine(const struct tlsrpt_report *r, int64_t day, const char *domain)
{
	return day == r->day && nz_eq(domain, r->domain);
}

/* The lines of a '\n'-separated text as a JSON array; prefix selects "mx:" values. */
static void
json_lines(struct sb *b, const char *text, const char *prefix)
{
	const char *p = text ? text : "";
	int first = 1;

	sb_puts(b, "[");
	while (*p) {
		size_t n = strcspn(p, "\n"), pl = prefix ? strlen(prefix) : 0;
		const char *s = p;
		size_t sn = n;
		if (sn > 0 && s[sn - 1] == '\r')
			sn--;
		if (prefix && sn > pl && strncasecmp(s, prefix, pl) == 0) {
			s += pl;
			sn -= pl;
			while (sn > 0 && is_wsp(*s))
				s++, sn--;
		} else if (prefix) {
			sn = 0;
		}
		if (sn > 0) {
			sb_puts(b, first ? "" : ", ");
			sb_jstrn(b, s, sn);
			first = 0;
		}
		p += n;
		if (*p == '\n')
			p++;
	}
	sb_puts(b, "]");
}

static void
json_failure(struct sb *b, const struct tlsrpt_failure *f, int first)
{
	sb_puts(b, first ? "\n    {" : ",\n    {");
	sb_puts(b, "\"result-type\": ");
	sb_jstr(b, f->result_type);
	if (f->sending_ip && *f->sending_ip) {
		sb_puts(b, ", \"sending-mta-ip\": ");
		sb_jstr(b, f->sending_ip);
	}
	if (f->mx && *f->mx) {
		sb_puts(b, ", \"receiving-mx-hostname\": ");
		sb_jstr(b, f->mx);
	}
	if (f->mx_ip && *f->mx_ip) {
		sb_puts(b, ", \"receiving-ip\": ");
		sb_jstr(b, f->mx_ip);
	}
	sb_printf(b, ", \"failed-session-count\": %lld", (long long)f->count);
	if (f->detail && *f->detail) {
		sb_puts(b, ", \"failure-reason-code\": ");
		sb_jstr(b, f->detail);
	}
	sb_puts(b, "}");
}

static void
json_group(struct sb *b, const struct tlsrpt_report *r, const struct group *g)
{
	size_t i;
	int first = 1;

	sb_puts(b, "{\"policy\": {\"policy-type\": ");
	sb_jstr(b, g->ptype);
	sb_puts(b, ", \"policy-string\": ");
	json_lines(b, strcmp(g->ptype, "no-policy-found") == 0 ? "" : g->pstr, NULL);
	sb_puts(b, ", \"policy-domain\": ");
	sb_jstr(b, r->domain);
	if (g->mx) {
		sb_puts(b, ", \"mx-host\": [");
		sb_jstr(b, g->mx);
		sb_puts(b, "]");
	} else if (strcmp(g->ptype, "sts") == 0) {
		sb_puts(b, ", \"mx-host\": ");
		json_lines(b, g->pstr, "mx:");
	}
	/* the session rows count failures; a policy seen only in failure rows counts those */
	sb_printf(b,
	          "},\n   \"summary\": {\"total-successful-session-count\": %lld, "
	          "\"total-failure-session-count\": %lld},\n   \"failure-details\": [",
	          (long long)g->ok, (long long)(g->failed ? g->failed : g->failsum));
	for (i = 0; i < r->nfails; i++) {
		const struct tlsrpt_failure *f = &r->fails[i];
		const char *pt = tlsrpt_policy_type(f->policy);
		if (!mine(r, f->day, f->domain) || strcmp(pt, g->ptype) != 0 ||
		    (g->mx && !nz_eq(g->mx, f->mx)))
			continue;
		json_failure(b, f, first);
		first = 0;
	}
	sb_puts(b, "]}");
}

int
tlsrpt_day_parse(const char *s, int64_t *day)
{
	struct tm tm = {0};
	const char *end = strptime(s, "%Y-%m-%d", &tm);

	if (end == NULL || *end != '\0' || strlen(s) != 10)
		return -1;
	*day = (int64_t)(timegm(&tm) / 86400);
	return 0;
}

void
tlsrpt_day_name(int64_t day, char *out, size_t len)
{
	time_t t = (time_t)(day * 86400);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%d", &tm);
}

/* "YYYY-MM-DDT" clock "Z": a date-range end (UTC). */
static void
day_str(char *out, size_t len, int64_t day, const char *clock)
{
	char d[16];

	tlsrpt_day_name(day, d, sizeof d);
	snprintf(out, len, "%sT%sZ", d, clock);
}

/* Rows and failures of this report folded into groups (g holds nrows + nfails + 1). */
static size_t
fold(const struct tlsrpt_report *r, struct group *g)
{
	size_t i, ng = 0;

	for (i = 0; i < r->nrows; i++) {
		const struct tlsrpt_row *w = &r->rows[i];
		struct group *x;
		if (!mine(r, w->day, w->domain))
			continue;
		x = group_of(g, &ng, w->policy, w->mx);
		x->ok += w->sessions_ok;
		x->failed += w->sessions_failed;
		if (w->policy_string && *w->policy_string)
			x->pstr = w->policy_string;
	}
	for (i = 0; i < r->nfails; i++) {
		const struct tlsrpt_failure *f = &r->fails[i];
		if (mine(r, f->day, f->domain))
			group_of(g, &ng, f->policy, f->mx)->failsum += f->count;
	}
	return ng;
}

int
tlsrpt_json(const struct tlsrpt_report *r, char **out, size_t *len)
{
	struct group *g = calloc(r->nrows + r->nfails + 1, sizeof *g);
	struct sb b = {0};
	char start[32], end[32];
	size_t i, ng;

	*out = NULL;
	*len = 0;
	if (g == NULL)
		return -1;
	ng = fold(r, g);
	day_str(start, sizeof start, r->day, "00:00:00");
	day_str(end, sizeof end, r->day, "23:59:59");
	sb_puts(&b, "{\"organization-name\": ");
	sb_jstr(&b, r->org);
	sb_printf(&b, ",\n \"date-range\": {\"start-datetime\": \"%s\", \"end-datetime\": \"%s\"}",
	          start, end);
	sb_puts(&b, ",\n \"contact-info\": ");
	sb_jstr(&b, r->contact);
	sb_puts(&b, ",\n \"report-id\": ");
	sb_jstr(&b, r->report_id);
	sb_puts(&b, ",\n \"policies\": [");
	for (i = 0; i < ng; i++) {
		sb_puts(&b, i ? ",\n  " : "\n  ");
		json_group(&b, r, &g[i]);
	}
	sb_puts(&b, "]}\n");
	free(g);
	if (b.oom) {
		free(b.p);
		return -1;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}

/* ---- gzip ------------------------------------------------------------------ */

int
tlsrpt_gzip(const unsigned char *in, size_t len, unsigned char **out, size_t *outlen)
{
	z_stream z;
	unsigned char *buf;
	uLong cap;
	int rc;

	*out = NULL;
	*outlen = 0;
	memset(&z, 0, sizeof z);
	/* windowBits 15 + 16: a gzip wrapper (RFC 1952) instead of zlib's */
	if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	cap = deflateBound(&z, (uLong)len) + 32;
	buf = malloc(cap);
	if (buf == NULL) {
		deflateEnd(&z);
		return -1;
	}
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)len;
	z.next_out = buf;
	z.avail_out = (uInt)cap;
	rc = deflate(&z, Z_FINISH);
	*outlen = z.total_out;
	deflateEnd(&z);
	if (rc != Z_STREAM_END) {
		free(buf);
		*outlen = 0;
		return -1;
	}
	*out = buf;
	return 0;
}

/* ---- the message (RFC 8460 5.3) -------------------------------------------- */

/* base64 (RFC 2045 6.8) in 76-column CRLF lines. */
static void
sb_base64(struct sb *b, const unsigned char *p, size_t n)
{
	unsigned char line[80];

	while (n > 0) {
		size_t take = n < 57 ? n : 57;
		int w = EVP_EncodeBlock(line, p, (int)take);
		sb_add(b, (const char *)line, (size_t)w);
		sb_puts(b, "\r\n");
		p += take;
		n -= take;
	}
}

/*
 * RFC 8460 5.3: unique-id = 1*(ALPHA / DIGIT). YYYYMMDD and 8 hex digits of
 * a hash (FNV-1a) of the lower-cased domain: the same for the same (day,
 * domain), so a report sent again after a crash has the same file name.
 */
static void
unique_id(const struct tlsrpt_report *r, char *out, size_t len)
{
	time_t t = (time_t)(r->day * 86400);
	uint32_t h = 2166136261u;
	const char *p;
	struct tm tm;
	char day[16];

	for (p = r->domain ? r->domain : ""; *p; p++) {
		h ^= (unsigned char)tolower((unsigned char)*p);
		h *= 16777619u;
	}
	gmtime_r(&t, &tm);
	strftime(day, sizeof day, "%Y%m%d", &tm);
	snprintf(out, len, "%s%08x", day, (unsigned)h);
}

static void
mime_headers(struct sb *b, const struct tlsrpt_report *r, const char *from, const char *to,
             const char *date, const char *boundary)
{
	sb_printf(b, "From: <%s>\r\nTo: <%s>\r\nDate: %s\r\n", from, to, date);
	sb_printf(b, "Subject: Report Domain: %s Submitter: %s Report-ID: <%s>\r\n", r->domain,
	          r->submitter, r->report_id);
	sb_printf(b, "Message-ID: <%s>\r\nMIME-Version: 1.0\r\n", r->report_id);
	sb_printf(b, "TLS-Report-Domain: %s\r\nTLS-Report-Submitter: %s\r\n", r->domain,
	          r->submitter);
	sb_printf(b,
	          "Content-Type: multipart/report; report-type=\"tlsrpt\";\r\n"
	          "\tboundary=\"%s\"\r\n\r\n",
	          boundary);
}

int
tlsrpt_mime(const struct tlsrpt_report *r, const char *from, const char *to, const char *date,
            const char *boundary, const unsigned char *gz, size_t gzlen, char **out, size_t *len)
{
	struct sb b = {0};
	char start[32], uid[64];
	long long begin = (long long)r->day * 86400;

	*out = NULL;
	*len = 0;
	day_str(start, sizeof start, r->day, "00:00:00");
	unique_id(r, uid, sizeof uid);
	mime_headers(&b, r, from, to, date, boundary);
	sb_printf(&b, "This is a multi-part message in MIME format.\r\n\r\n--%s\r\n", boundary);
	sb_puts(&b, "Content-Type: text/plain; charset=us-ascii\r\n\r\n");
	sb_printf(&b,
	          "This is an aggregate TLS report (RFC 8460) from %s for %s,\r\n"
	          "covering the UTC day starting %s.\r\n\r\n",
	          r->submitter, r->domain, start);
	sb_printf(&b, "--%s\r\nContent-Type: application/tlsrpt+gzip\r\n", boundary);
	sb_puts(&b, "Content-Transfer-Encoding: base64\r\n");
	/* RFC 8460 5.3: sender "!" policy-domain "!" begin "!" end ["!" unique-id] ".json.gz" */
	sb_printf(&b,
	          "Content-Disposition: "
	          "attachment;\r\n\tfilename=\"%s!%s!%lld!%lld%s%s.json.gz\"\r\n\r\n",
	          r->submitter, r->domain, begin, begin + 86399, *uid ? "!" : "", uid);
	sb_base64(&b, gz, gzlen);
	sb_printf(&b, "\r\n--%s--\r\n", boundary);
	if (b.oom) {
		free(b.p);
		return -1;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}
