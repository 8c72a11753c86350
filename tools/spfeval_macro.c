/*
 * tools/spfeval_macro: SPF macros (RFC 7208 section 7): their syntax
 * (7.1) and their expansion (7.3) for tools/spfeval.
 *
 * Must never: look anything up itself (%{p} comes from the caller's
 * pname), print, or keep state.
 */
#include "tools/spfeval_int.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#define DOMAIN_MAX 253   /* RFC 7208 7.3: the longest domain name in text form */
#define PARTS_MAX 128    /* more parts than any name of 253 characters has */
#define DELIMS ".-+,/_=" /* 7.1 delimiter */

struct sbuf {
	char *s;
	size_t len, cap;
	int err;
};

static void
sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->err)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		char *ns;

		while (b->len + n + 1 > cap)
			cap *= 2;
		if ((ns = realloc(b->s, cap)) == NULL) {
			b->err = -1;
			return;
		}
		b->s = ns;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static bool
is_letter(char c, bool exp)
{
	if (strchr("slodiphv", c | 0x20) != NULL)
		return c != '\0';
	/* c, r and t only in the explanation (7.2) */
	return exp && c != '\0' && strchr("crt", c | 0x20) != NULL;
}

/* The length of the macro-expand at s (at most len bytes), or 0 when it is not one (7.1). */
static size_t
expand_len(const char *s, size_t len, bool exp)
{
	size_t i = 3;

	if (len >= 2 && s[0] == '%' && (s[1] == '%' || s[1] == '_' || s[1] == '-'))
		return 2;
	if (len < 4 || s[0] != '%' || s[1] != '{' || !is_letter(s[2], exp))
		return 0;
	if (i < len && s[i] >= '1' && s[i] <= '9') /* a DIGIT transformer is nonzero (7.3) */
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
	if (i < len && (s[i] == 'r' || s[i] == 'R'))
		i++;
	while (i < len && s[i] != '\0' && strchr(DELIMS, s[i]) != NULL)
		i++;
	return i < len && s[i] == '}' ? i + 1 : 0;
}

int
spfe_macro_check(const char *s, size_t len, bool exp, char *why, size_t whylen)
{
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];
		size_t n;

		if (c == '%') {
			if ((n = expand_len(s + i, len - i, exp)) == 0) {
				snprintf(why, whylen, "bad macro at \"%.*s\" (RFC 7208 7.1%s)",
				         (int)(len - i < 16 ? len - i : 16), s + i,
				         exp ? "" : "; c, r and t only in exp text, 7.2");
				return -1;
			}
			i += n;
			continue;
		}
		/* macro-literal is %x21-24 / %x26-7E; the explanation also has SP (6.2) */
		if (c < 0x21 || c > 0x7e) {
			if (!(exp && c == ' ')) {
				snprintf(why, whylen, "character 0x%02x not allowed (RFC 7208 7.1)",
				         c);
				return -1;
			}
		}
		i++;
	}
	return 0;
}

static bool
is_alnum(char c)
{
	return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}

/* toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
static bool
toplabel_ok(const char *s, size_t n)
{
	bool alpha = false, dash = false;

	if (n == 0 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '-')
			dash = true;
		else if (!is_alnum(s[i]))
			return false;
		else if (!(s[i] >= '0' && s[i] <= '9'))
			alpha = true;
	}
	return alpha || dash;
}

bool
spfe_domain_end_ok(const char *spec, size_t len)
{
	size_t tail = 0, dot;

	/* the literal text after the last macro-expand */
	for (size_t i = 0; i < len;) {
		size_t n = spec[i] == '%' ? expand_len(spec + i, len - i, true) : 0;

		i += n ? n : 1;
		if (n)
			tail = i;
	}
	if (tail == len && len > 0)
		return true; /* ends with a macro-expand */
	if (len > tail && spec[len - 1] == '.')
		len--;
	for (dot = len; dot > tail && spec[dot - 1] != '.'; dot--)
		;
	if (dot == tail)
		return false;
	return toplabel_ok(spec + dot, len - dot);
}

void
spfe_ip_dotted(const struct spf_ip *ip, bool upper, char *buf, size_t len)
{
	const char *hex = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	size_t pos = 0;

	if (ip->family == AF_INET) {
		snprintf(buf, len, "%u.%u.%u.%u", ip->addr[0], ip->addr[1], ip->addr[2],
		         ip->addr[3]);
		return;
	}
	/* 7.3: "i" of an IPv6 client is its 32 nibbles, dot-separated */
	for (size_t i = 0; i < 16 && pos + 4 <= len; i++) {
		buf[pos++] = hex[ip->addr[i] >> 4];
		buf[pos++] = '.';
		buf[pos++] = hex[ip->addr[i] & 15];
		buf[pos++] = i < 15 ? '.' : '\0';
	}
	if (pos == 0 && len > 0)
		buf[0] = '\0';
}

/*
 * The value of macro letter l (lowercase) into v, or NULL when %{p} was
 * stopped. exp: in the explanation text IPv6 nibbles are uppercase, as the
 * RFC 7208 test suite's v-macro-ip6 case and pyspf write them; in a
 * domain-spec lowercase as in the examples of 7.4 (DNS ignores the case).
 */
static const char *
letter_value(const struct spfe_macro_env *env, char l, bool exp, char *v, size_t vlen)
{
	switch (l) {
	case 's':
		return env->sender;
	case 'l':
		return env->local;
	case 'o':
		return env->odom;
	case 'd':
		return env->domain;
	case 'h':
		return env->helo;
	case 'r':
		return env->receiver ? env->receiver : "unknown";
	case 'v':
		return env->ip->family == AF_INET ? "in-addr" : "ip6";
	case 'p':
		return env->pname(env->ctx);
	case 'i':
		spfe_ip_dotted(env->ip, exp, v, vlen);
		return v;
	case 'c': /* 7.3: the client address in its usual text form */
		inet_ntop(env->ip->family, env->ip->addr, v, (socklen_t)vlen);
		return v;
	case 't':
		snprintf(v, vlen, "%lld", env->now ? env->now : (long long)time(NULL));
		return v;
	default:
		return "";
	}
}

/* URL-escape val for an uppercase macro letter (7.3: RFC 3986 unreserved kept). */
static void
add_escaped(struct sbuf *b, const char *val, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)val[i];
		char hex[4];

		if (is_alnum((char)c) || c == '-' || c == '.' || c == '_' || c == '~') {
			sb_add(b, (const char *)&val[i], 1);
			continue;
		}
		snprintf(hex, sizeof hex, "%%%02X", c);
		sb_add(b, hex, 3);
	}
}

/* One %{...} macro m (mlen bytes, checked) appended to b (7.3's transformers). */
static int
add_macro(struct sbuf *b, const struct spfe_macro_env *env, const char *m, size_t mlen, bool exp)
{
	char v[80], copy[1024];
	const char *val = letter_value(env, (char)(m[2] | 0x20), exp, v, sizeof v);
	const char *parts[PARTS_MAX], *delims = ".";
	size_t i = 3, keep = 0, np = 0, first;
	bool rev = false;
	struct sbuf out = {0};

	if (val == NULL)
		return -1;
	/* any count over PARTS_MAX keeps every part: stop growing there */
	for (; m[i] >= '0' && m[i] <= '9'; i++)
		keep = keep <= PARTS_MAX ? keep * 10 + (size_t)(m[i] - '0') : keep;
	if (m[i] == 'r' || m[i] == 'R') {
		rev = true;
		i++;
	}
	if (m[i] != '}') {
		snprintf(copy, sizeof copy, "%.*s", (int)(mlen - 1 - i), m + i);
		delims = copy;
	}
	char *work = strdup(val), *p = work;
	if (work == NULL)
		return -1;
	/* split on the delimiters, reverse, keep the right-hand parts, join with "." */
	while (np < PARTS_MAX) {
		parts[np++] = p;
		p += strcspn(p, delims);
		if (*p == '\0')
			break;
		*p++ = '\0';
	}
	for (size_t k = 0; rev && k < np / 2; k++) {
		const char *t = parts[k];

		parts[k] = parts[np - 1 - k];
		parts[np - 1 - k] = t;
	}
	first = keep > 0 && keep < np ? np - keep : 0;
	for (size_t k = first; k < np; k++) {
		if (k > first)
			sb_add(&out, ".", 1);
		sb_add(&out, parts[k], strlen(parts[k]));
	}
	free(work);
	if (out.err == 0 && out.s != NULL) {
		if (m[2] >= 'A' && m[2] <= 'Z')
			add_escaped(b, out.s, out.len);
		else
			sb_add(b, out.s, out.len);
	}
	free(out.s);
	return out.err;
}

/* 7.3: cut a name longer than 253 characters from the left, whole labels at a time. */
static void
trim_domain(char *s)
{
	size_t len = strlen(s);

	if (len > 0 && s[len - 1] == '.')
		s[--len] = '\0';
	while (len > DOMAIN_MAX) {
		char *dot = strchr(s, '.');

		if (dot == NULL)
			break;
		len -= (size_t)(dot + 1 - s);
		memmove(s, dot + 1, len + 1);
	}
}

int
spfe_macro_expand(const struct spfe_macro_env *env, const char *s, size_t len, bool exp, char **out)
{
	struct sbuf b = {0};

	*out = NULL;
	sb_add(&b, "", 0);
	for (size_t i = 0; i < len && b.err == 0;) {
		size_t n = s[i] == '%' ? expand_len(s + i, len - i, true) : 0;

		if (n == 0) {
			sb_add(&b, s + i++, 1);
			continue;
		}
		if (s[i + 1] == '%')
			sb_add(&b, "%", 1);
		else if (s[i + 1] == '_')
			sb_add(&b, " ", 1);
		else if (s[i + 1] == '-')
			sb_add(&b, "%20", 3);
		else if (add_macro(&b, env, s + i, n, exp) != 0)
			b.err = -1;
		i += n;
	}
	if (b.err != 0) {
		free(b.s);
		return -1;
	}
	if (!exp)
		trim_domain(b.s);
	*out = b.s;
	return 0;
}
