/* addr: mailbox syntax per RFC 5321 4.1.2 (see addr.h). */
#include "mta/shared/addr.h"

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

/*
 * Find the '@' that separates local part and domain: the first one outside a
 * quoted local part. Neither a dot-atom nor a quoted-string local part holds
 * an unquoted '@', while a domain literal may hold '@' and '"' (RFC 5322
 * 3.4.1 dtext), so neither "the last '@'" nor quote counting over the whole
 * address finds it.
 */
static const char *
split_at(const char *s, size_t n)
{
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
			return s + i;
	}
	return NULL;
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
	case ADDR_END:
		return "no more addresses";
	case ADDR_NUL:
		return "NUL byte";
	case ADDR_GROUP:
		return "group syntax where only mailboxes are allowed";
	case ADDR_MANY:
		return "more than one mailbox";
	case ADDR_EMPTY:
		return "no address";
	}
	return "bad address";
}

const char *
addr_domain(const char *mailbox)
{
	const char *at = split_at(mailbox, strlen(mailbox));
	return at ? at + 1 : NULL;
}


/*
 * Header address lists (RFC 5322 3.4, 3.6.2), read strictly: the relay must
 * find the mailboxes every receiver finds, so whatever a lenient reader could
 * take two ways is an error, never a guess. Every read is bounded by len (the
 * value needs no terminator), a NUL is an error, and nothing is skipped: one
 * bad element fails the whole list.
 */
struct rd {
	const unsigned char *p;
	size_t len, i;
};

static int
rd_peek(const struct rd *r, size_t ahead)
{
	return r->i + ahead < r->len ? r->p[r->i + ahead] : -1;
}

static bool
is_wsp(int c)
{
	return c == ' ' || c == '\t';
}

/* quoted-pair (3.2.1): '\' then VCHAR or WSP, or a non-ASCII octet (RFC 6532 3.2) */
static bool
qp_ok(int c)
{
	return is_wsp(c) || (c > 32 && c != 127);
}

/* FWS (3.2.2): octets of WSP or CRLF WSP here; a CRLF that ends the value is its line end. */
static size_t
fws_len(const struct rd *r)
{
	int c = rd_peek(r, 0);

	if (is_wsp(c))
		return 1;
	if (c == '\r' && rd_peek(r, 1) == '\n') {
		if (is_wsp(rd_peek(r, 2)))
			return 3;
		if (r->i + 2 == r->len)
			return 2;
	}
	return 0;
}

/* comment (3.2.2), nested, at r->p[r->i] == '('. Unterminated: an error. */
static enum addr_status
comment(struct rd *r)
{
	unsigned depth = 0;

	for (;;) {
		int c = rd_peek(r, 0);
		size_t f;

		if (c == '\\') {
			if (!qp_ok(rd_peek(r, 1)))
				return ADDR_SYNTAX;
			r->i += 2;
		} else if (c == '(') {
			depth++;
			r->i++;
		} else if (c == ')') {
			r->i++;
			if (--depth == 0)
				return ADDR_OK;
		} else if ((f = fws_len(r)) > 0) {
			r->i += f;
		} else if (c > 32 && c != 127) {
			r->i++;	/* ctext, and non-ASCII (RFC 6532) */
		} else {
			return ADDR_SYNTAX;	/* end of value, CR, LF or a control */
		}
	}
}

static enum addr_status
cfws(struct rd *r)
{
	for (;;) {
		size_t f = fws_len(r);
		enum addr_status st;

		if (f > 0) {
			r->i += f;
		} else if (rd_peek(r, 0) == '(') {
			if ((st = comment(r)) != ADDR_OK)
				return st;
		} else {
			return ADDR_OK;
		}
	}
}

/* quoted-string (3.2.4) at '"'; in a local part no folding (it would land in the address). */
static enum addr_status
quoted(struct rd *r, bool in_addr)
{
	r->i++;
	for (;;) {
		int c = rd_peek(r, 0);

		if (c == '"') {
			r->i++;
			return ADDR_OK;
		}
		if (c == '\\') {
			if (!qp_ok(rd_peek(r, 1)))
				return ADDR_SYNTAX;
			r->i += 2;
		} else if (is_wsp(c) || (c > 32 && c != 127)) {
			r->i++;
		} else if (!in_addr && fws_len(r) == 3) {
			r->i += 3;
		} else {
			return ADDR_SYNTAX;
		}
	}
}

static size_t
atom_len(const struct rd *r)
{
	size_t n = 0;

	while (r->i + n < r->len && is_atext(r->p[r->i + n], ADDR_F_UTF8))
		n++;
	return n;
}

/* dot-atom-text (3.2.3): atoms joined by single dots, nothing between them. */
static enum addr_status
dot_atom(struct rd *r)
{
	for (;;) {
		size_t n = atom_len(r);

		if (n == 0)
			return ADDR_SYNTAX;
		r->i += n;
		if (rd_peek(r, 0) != '.')
			return ADDR_OK;
		r->i++;
	}
}

/* domain-literal (3.4.1) at '[': dtext only, no folding. */
static enum addr_status
domain_literal(struct rd *r)
{
	r->i++;
	for (;;) {
		int c = rd_peek(r, 0);

		if (c == ']') {
			r->i++;
			return ADDR_OK;
		}
		if (c < 33 || c > 126 || c == '[' || c == '\\')
			return ADDR_SYNTAX;
		r->i++;
	}
}

/* addr-spec (3.4.1) with the CFWS its parts may carry; out gets it without that CFWS. */
static enum addr_status
addr_spec(struct rd *r, char *out, size_t outlen)
{
	size_t la, lb, da, db, n;
	enum addr_status st;

	if ((st = cfws(r)) != ADDR_OK)
		return st;
	la = r->i;
	st = rd_peek(r, 0) == '"' ? quoted(r, true) : dot_atom(r);
	lb = r->i;
	if (st != ADDR_OK || (st = cfws(r)) != ADDR_OK)
		return st;
	if (rd_peek(r, 0) != '@')
		return ADDR_NO_DOMAIN;
	r->i++;
	if ((st = cfws(r)) != ADDR_OK)
		return st;
	da = r->i;
	st = rd_peek(r, 0) == '[' ? domain_literal(r) : dot_atom(r);
	db = r->i;
	if (st != ADDR_OK)
		return st;
	n = (lb - la) + 1 + (db - da);
	if (n + 2 > ADDR_MAX || n + 1 > outlen)
		return ADDR_TOO_LONG;
	memcpy(out, r->p + la, lb - la);
	out[lb - la] = '@';
	memcpy(out + (lb - la) + 1, r->p + da, db - da);
	out[n] = '\0';
	if (!utf8_valid((const unsigned char *)out, n))
		return ADDR_SYNTAX;
	return cfws(r);
}

/* angle-addr (3.4) at '<'. A source route (obs-route, 4.4) is refused. */
static enum addr_status
angle_addr(struct rd *r, char *out, size_t outlen)
{
	enum addr_status st;

	r->i++;
	if ((st = cfws(r)) != ADDR_OK)
		return st;
	if (rd_peek(r, 0) == '@')
		return ADDR_ROUTE;
	if ((st = addr_spec(r, out, outlen)) != ADDR_OK)
		return st;
	if (rd_peek(r, 0) != '>')
		return ADDR_SYNTAX;
	r->i++;
	return cfws(r);
}

/* display-name = phrase (3.2.5): words; obs-phrase (4.1) also allows '.' after the first. */
static enum addr_status
phrase(struct rd *r)
{
	unsigned words = 0;
	enum addr_status st;

	for (;;) {
		size_t n;
		int c;

		if ((st = cfws(r)) != ADDR_OK)
			return st;
		c = rd_peek(r, 0);
		if (c == '"') {
			if ((st = quoted(r, false)) != ADDR_OK)
				return st;
			words++;
		} else if ((n = atom_len(r)) > 0) {
			r->i += n;
			words++;
		} else if (c == '.' && words > 0) {
			r->i++;
		} else {
			return words ? ADDR_OK : ADDR_SYNTAX;
		}
	}
}

/*
 * One address (3.4): a mailbox into out, or the start of a group
 * ("name:", *group set). An addr-spec must end where the element ends; any
 * other text around it ("a@b <c@d>") is an error, not a choice.
 */
static bool
at_element_end(const struct rd *r)
{
	int c = rd_peek(r, 0);
	return c < 0 || c == ',' || c == ';';
}

static enum addr_status
address(struct rd *r, char *out, size_t outlen, bool *group)
{
	enum addr_status st;
	size_t start;

	*group = false;
	if ((st = cfws(r)) != ADDR_OK)
		return st;
	start = r->i;
	if (rd_peek(r, 0) == '<') {
		st = angle_addr(r, out, outlen);
	} else {
		st = addr_spec(r, out, outlen);
		if (st == ADDR_TOO_LONG || (st == ADDR_OK && at_element_end(r)))
			return st;
		r->i = start;
		if ((st = phrase(r)) != ADDR_OK)
			return st;
		if (rd_peek(r, 0) == ':') {
			r->i++;
			*group = true;
			return ADDR_OK;
		}
		st = rd_peek(r, 0) == '<' ? angle_addr(r, out, outlen) : ADDR_SYNTAX;
	}
	if (st == ADDR_OK && !at_element_end(r))
		st = ADDR_SYNTAX;
	return st;
}

void
addr_list_init(struct addr_list *l, const char *v, size_t len, unsigned flags)
{
	memset(l, 0, sizeof(*l));
	l->v = v;
	l->len = len;
	l->flags = flags;
	l->st = len > 0 && memchr(v, '\0', len) ? ADDR_NUL : ADDR_OK;
}

enum addr_status
addr_list_next(struct addr_list *l, char *out, size_t outlen)
{
	struct rd r = {(const unsigned char *)l->v, l->len, l->pos};
	enum addr_status st = l->st;
	bool group;
	int c;

	while (st == ADDR_OK) {
		if ((st = cfws(&r)) != ADDR_OK)
			break;
		c = rd_peek(&r, 0);
		if (c < 0) {
			st = l->in_group || l->after_comma ? ADDR_SYNTAX : ADDR_END;
		} else if (c == ',' && l->need_sep) {
			r.i++;
			l->need_sep = false;
			l->after_comma = true;
		} else if (c == ';' && l->in_group && !l->after_comma) {
			r.i++;	/* the group ends; "name:;" is an empty group */
			l->in_group = false;
			l->need_sep = true;
		} else if (l->need_sep) {
			st = ADDR_SYNTAX;
		} else if ((st = address(&r, out, outlen, &group)) != ADDR_OK) {
			break;
		} else if (group) {
			if (!(l->flags & ADDR_L_GROUPS))
				st = ADDR_GROUP;
			else if (l->in_group)
				st = ADDR_SYNTAX;	/* groups do not nest */
			l->in_group = true;
			l->after_comma = false;
		} else {
			l->need_sep = true;
			l->after_comma = false;
			l->pos = r.i;
			return ADDR_OK;
		}
	}
	l->pos = r.i;
	l->st = st;
	return st;
}

enum addr_status
addr_header_mailbox(const char *v, size_t len, char *out, size_t outlen)
{
	struct addr_list l;
	char more[ADDR_MAX];
	enum addr_status st;

	addr_list_init(&l, v, len, 0);
	st = addr_list_next(&l, out, outlen);
	if (st != ADDR_OK)
		return st == ADDR_END ? ADDR_EMPTY : st;
	st = addr_list_next(&l, more, sizeof(more));
	if (st == ADDR_OK)
		return ADDR_MANY;
	return st == ADDR_END ? ADDR_OK : st;
}
