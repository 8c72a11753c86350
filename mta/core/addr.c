/* addr: mailbox syntax per RFC 5321 4.1.2 (see addr.h). */
#include "mta/core/addr.h"

#include <stdbool.h>
#include <string.h>

static bool
is_atext(unsigned char c, unsigned flags)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	if (c >= 0x80)
		return (flags & ADDR_F_UTF8) != 0;	/* RFC 6531 3.3 UTF8-non-ascii */
	return strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL && c != '\0';
}

/* Dot-string local part: atoms separated by single dots. Sets *trick. */
static enum addr_status
check_dot_string(const char *s, size_t n, unsigned flags)
{
	size_t i;
	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return ADDR_SYNTAX;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (s[i + 1] == '.')
				return ADDR_SYNTAX;
			continue;
		}
		if (c >= 0x80 && !(flags & ADDR_F_UTF8))
			return ADDR_NEED_UTF8;
		if (!is_atext(c, flags))
			return ADDR_SYNTAX;
		if ((flags & ADDR_F_STRICT) && c == '%')
			return ADDR_PERCENT;
		if ((flags & ADDR_F_STRICT) && c == '!')
			return ADDR_BANG;
	}
	return ADDR_OK;
}

/* Quoted-string local part "..." (RFC 5321 qtextSMTP / quoted-pairSMTP). */
static enum addr_status
check_quoted(const char *s, size_t n, unsigned flags)
{
	size_t i;
	if (n < 2 || s[0] != '"' || s[n - 1] != '"')
		return ADDR_SYNTAX;
	for (i = 1; i < n - 1; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\\') {
			if (++i >= n - 1 || s[i] < 32 || s[i] > 126)
				return ADDR_SYNTAX;
			c = (unsigned char)s[i];
		} else if (c == '"' || c < 32 || c == 127) {
			return ADDR_SYNTAX;
		} else if (c >= 0x80 && !(flags & ADDR_F_UTF8)) {
			return ADDR_NEED_UTF8;
		}
		/* a quoted '@', '%' or '!' hides a second address: never relay it */
		if ((flags & ADDR_F_STRICT) && (c == '@' || c == '%' || c == '!'))
			return ADDR_QUOTED_AT;
	}
	return ADDR_OK;
}

static enum addr_status
check_domain(const char *d, size_t n, unsigned flags)
{
	size_t i, label = 0;

	if (n == 0)
		return ADDR_SYNTAX;
	if (n > ADDR_DOMAIN_MAX)
		return ADDR_TOO_LONG;
	if (d[0] == '[') {
		/* address literal: [1.2.3.4] or [IPv6:...]; syntax only, delivery decides */
		if (d[n - 1] != ']' || n < 3)
			return ADDR_SYNTAX;
		for (i = 1; i < n - 1; i++)
			if (!strchr("0123456789abcdefABCDEFIPv6:.", d[i]))
				return ADDR_SYNTAX;
		return ADDR_OK;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)d[i];
		if (c == '.') {
			if (label == 0 || d[i - 1] == '-')
				return ADDR_SYNTAX;
			label = 0;
			continue;
		}
		if (c >= 0x80) {
			if (!(flags & ADDR_F_UTF8))
				return ADDR_NEED_UTF8;
		} else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9') || (c == '-' && label > 0))) {
			return ADDR_SYNTAX;
		}
		if (++label > 63)
			return ADDR_SYNTAX;
	}
	if (label == 0 || d[n - 1] == '-')
		return ADDR_SYNTAX;
	return ADDR_OK;
}

/* Find the '@' that separates local part and domain, honouring quotes. */
static const char *
split_at(const char *s, size_t n)
{
	const char *at = NULL;
	bool q = false;
	size_t i;
	for (i = 0; i < n; i++) {
		if (q && s[i] == '\\' && i + 1 < n) {
			i++;
			continue;
		}
		if (s[i] == '"')
			q = !q;
		else if (!q && s[i] == '@')
			at = s + i;
	}
	return q ? NULL : at;
}

/* Well-formed UTF-8 (RFC 3629): no overlongs, surrogates, or truncated sequences. */
static bool
utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i], need, min, cp;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
			min = 0x80;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			min = 0x800;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			min = 0x10000;
			cp = c & 0x07;
		} else {
			return false;
		}
		for (unsigned k = 1; k <= need; k++) {
			if (i + k >= n || (s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += need + 1;
	}
	return true;
}

static enum addr_status
check_mailbox(const char *m, size_t n, unsigned flags)
{
	if ((flags & ADDR_F_UTF8) && !utf8_valid((const unsigned char *)m, n))
		return ADDR_SYNTAX;
	const char *at;
	size_t ln;
	enum addr_status st;

	if (m[0] == '@')
		return ADDR_ROUTE;	/* RFC 5321 4.1.2 A-d-l: we never honour source routes */
	at = split_at(m, n);
	if (at == NULL) {
		/* "user" alone; "a@b" inside an unbalanced quote is just broken */
		return memchr(m, '"', n) ? ADDR_SYNTAX : ADDR_NO_DOMAIN;
	}
	ln = (size_t)(at - m);
	if (ln > ADDR_LOCAL_MAX)
		return ADDR_TOO_LONG;
	st = m[0] == '"' ? check_quoted(m, ln, flags) : check_dot_string(m, ln, flags);
	if (st != ADDR_OK)
		return st;
	return check_domain(at + 1, n - ln - 1, flags);
}

enum addr_status
addr_parse_path(const char *arg, unsigned flags, char *out, size_t outlen, const char **params)
{
	const char *p = arg, *start, *end;
	enum addr_status st;
	size_t n;

	while (*p == ' ')
		p++;
	if (*p == '<') {
		start = ++p;
		/* the closing bracket, outside quotes */
		bool q = false;
		for (end = p; *end && (q || *end != '>'); end++) {
			if (q && *end == '\\' && end[1]) {
				end++;
				continue;
			}
			if (*end == '"')
				q = !q;
		}
		if (*end != '>')
			return ADDR_SYNTAX;
		p = end + 1;
		if (*p != '\0' && *p != ' ')
			return ADDR_SYNTAX;
	} else {
		/* liberal: old devices send MAIL FROM:user@example.com */
		start = p;
		for (end = p; *end && *end != ' '; end++)
			;
		if (end == start)
			return ADDR_SYNTAX;	/* only "<>" is the null path */
		p = end;
	}
	n = (size_t)(end - start);
	if (n + 2 > ADDR_MAX || n + 1 > outlen)
		return ADDR_TOO_LONG;
	if (n == 0) {
		if (!(flags & ADDR_F_NULL_OK))
			return ADDR_SYNTAX;
		st = ADDR_OK;
	} else {
		st = check_mailbox(start, n, flags);
	}
	if (st != ADDR_OK)
		return st;
	memcpy(out, start, n);
	out[n] = '\0';
	while (*p == ' ')
		p++;
	if (params)
		*params = p;
	return ADDR_OK;
}

const char *
addr_strerror(enum addr_status st)
{
	switch (st) {
	case ADDR_OK:
		return "ok";
	case ADDR_SYNTAX:
		return "bad address syntax";
	case ADDR_TOO_LONG:
		return "address too long";
	case ADDR_NEED_UTF8:
		return "non-ASCII address without SMTPUTF8";
	case ADDR_ROUTE:
		return "source routes are not accepted";
	case ADDR_PERCENT:
		return "'%' in the local part is not accepted";
	case ADDR_BANG:
		return "'!' bang paths are not accepted";
	case ADDR_QUOTED_AT:
		return "quoted local part with '@', '%' or '!' is not accepted";
	case ADDR_NO_DOMAIN:
		return "address without a domain";
	}
	return "bad address";
}

const char *
addr_domain(const char *mailbox)
{
	const char *at = split_at(mailbox, strlen(mailbox));
	return at ? at + 1 : NULL;
}

/* Skip a comment starting at v[i] == '(' (nested, with quoted-pairs). Returns the index after it. */
static size_t
skip_comment(const char *v, size_t len, size_t i)
{
	size_t depth = 0;
	for (; i < len; i++) {
		if (v[i] == '\\')
			i++;
		else if (v[i] == '(')
			depth++;
		else if (v[i] == ')' && --depth == 0)
			return i + 1;
	}
	return len;
}

/* The mailbox in one address element (no top-level ',' or ';'). 0 / -1. */
static int
element_mailbox(const char *v, size_t len, char *out, size_t outlen)
{
	size_t i, start = 0, end = 0;
	bool q = false;

	/* name-addr: the first <...> outside quotes and comments */
	for (i = 0; i < len; i++) {
		if (q) {
			if (v[i] == '\\')
				i++;
			else if (v[i] == '"')
				q = false;
		} else if (v[i] == '"') {
			q = true;
		} else if (v[i] == '(') {
			i = skip_comment(v, len, i) - 1;
		} else if (v[i] == '<') {
			start = i + 1;
			for (end = start; end < len && v[end] != '>'; end++)
				;
			if (end == len)
				return -1;
			break;
		}
	}
	if (end == 0) {
		/* addr-spec: the first token holding an '@', after a group "name:" if any */
		for (i = 0; i < len;) {
			if (v[i] == '(') {
				i = skip_comment(v, len, i);
				continue;
			}
			if (strchr(" \t\r\n:", v[i])) {
				i++;
				continue;
			}
			for (start = i; i < len && !strchr(" \t\r\n(:", v[i]); i++)
				;
			end = i;
			if (memchr(v + start, '@', end - start))
				break;
			end = 0;
		}
	}
	if (end <= start || end - start + 1 > outlen || !memchr(v + start, '@', end - start))
		return -1;
	memcpy(out, v + start, end - start);
	out[end - start] = '\0';
	return 0;
}

int
addr_from_header_next(const char *v, size_t len, size_t *pos, char *out, size_t outlen)
{
	while (*pos < len) {
		size_t i = *pos, depth = 0;
		bool q = false, angle = false;
		/* find the element's end: ',' or ';' outside quotes, comments and <> */
		for (; i < len; i++) {
			char c = v[i];
			if (q) {
				if (c == '\\')
					i++;
				else if (c == '"')
					q = false;
			} else if (depth) {
				if (c == '\\')
					i++;
				else if (c == '(')
					depth++;
				else if (c == ')')
					depth--;
			} else if (c == '"') {
				q = true;
			} else if (c == '(') {
				depth++;
			} else if (c == '<') {
				angle = true;
			} else if (c == '>') {
				angle = false;
			} else if (!angle && (c == ',' || c == ';')) {
				break;
			}
		}
		size_t start = *pos;
		*pos = i + 1;
		if (element_mailbox(v + start, i - start, out, outlen) == 0)
			return 0;
	}
	return -1;
}

int
addr_from_header(const char *v, size_t len, char *out, size_t outlen)
{
	size_t pos = 0;
	return addr_from_header_next(v, len, &pos, out, outlen);
}
