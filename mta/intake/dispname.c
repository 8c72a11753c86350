/*
 * dispname: an address of another domain shown in a From field's display
 * name or comment (see dispname.h).
 *
 * Readers see the display name (or, in the old `addr (Full Name)` form, the
 * comment) before the address, and many show only that: `"ceo@bank.example"
 * <scans@example.com>` reads as mail from ceo@bank.example. The field is
 * read as a reader shows it: unfolded, encoded words (RFC 2047) decoded,
 * quotes and comment parentheses being only delimiters. Any word with an
 * '@', text before it and a domain after it that has a dot or a non-ASCII
 * octet (look-alike full stops: U+2024, U+FF0E, U+3002) counts as an
 * address; a dot after blanks ("bank .example") is read as part of it,
 * since a reader sees one name.
 */
#include "mta/intake/dispname.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define FIELD_MAX 2048

static bool
is_blank(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* Ends a word: blanks and the specials around words (RFC 5322 3.2.3). */
static bool
is_delim(unsigned char c)
{
	return c < 0x20 || c == 0x7f || c == ' ' || strchr("\"<>(),;:[]", c) != NULL;
}

static int
b64_value(unsigned char c)
{
	static const char abc[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = c ? strchr(abc, c) : NULL;

	return p ? (int)(p - abc) : -1;
}

static int
hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decode the encoded text t[0..n) of encoding enc ('B' or 'Q') to out; octets written. */
static size_t
decode_text(char enc, const char *t, size_t n, char *out)
{
	size_t o = 0, i;
	unsigned acc = 0, bits = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)t[i];
		int v;
		if (enc == 'B') {
			if ((v = b64_value(c)) < 0)
				continue; /* '=' padding */
			acc = (acc << 6) | (unsigned)v;
			bits += 6;
			if (bits >= 8) {
				bits -= 8;
				out[o++] = (char)((acc >> bits) & 0xff);
			}
		} else if (c == '_') {
			out[o++] = ' '; /* RFC 2047 4.2 (2) */
		} else if (c == '=' && i + 2 < n && hex_value(t[i + 1]) >= 0 &&
		           hex_value(t[i + 2]) >= 0) {
			out[o++] = (char)(hex_value(t[i + 1]) * 16 + hex_value(t[i + 2]));
			i += 2;
		} else {
			out[o++] = (char)c;
		}
	}
	return o;
}

/*
 * At p (end e): an encoded word "=?charset?B|Q?text?=" decoded to out;
 * returns the octets consumed (0: no encoded word here), *w the written.
 * The decoded text is never longer than the encoded one.
 */
static size_t
encoded_word(const char *p, const char *e, char *out, size_t *w)
{
	const char *cs, *enc, *txt, *end;

	if (e - p < 8 || p[0] != '=' || p[1] != '?')
		return 0;
	cs = p + 2;
	enc = memchr(cs, '?', (size_t)(e - cs));
	if (enc == NULL || e - enc < 4 || enc[2] != '?')
		return 0;
	txt = enc + 3;
	for (end = txt; end + 1 < e && !(end[0] == '?' && end[1] == '='); end++)
		;
	if (end + 1 >= e)
		return 0;
	if ((enc[1] | 0x20) != 'b' && (enc[1] | 0x20) != 'q')
		return 0;
	*w = decode_text((char)((enc[1] | 0x20) == 'b' ? 'B' : 'Q'), txt, (size_t)(end - txt), out);
	return (size_t)(end + 2 - p);
}

/* val unfolded, encoded words decoded, into out (FIELD_MAX + 1); its length. */
static size_t
as_shown(const char *val, size_t n, char *out)
{
	size_t i = 0, o = 0, used, w;

	while (i < n) {
		if (val[i] == '\r' || val[i] == '\n') {
			i++;
			continue;
		}
		if ((used = encoded_word(val + i, val + n, out + o, &w)) > 0) {
			i += used;
			o += w;
			continue;
		}
		out[o++] = val[i++];
	}
	out[o] = '\0';
	return o;
}

/* The domain after the '@' at s[at], blanks before a '.' skipped, into dom; its length. */
static size_t
domain_after(const char *s, size_t len, size_t at, char *dom, size_t domlen)
{
	size_t i = at + 1, o = 0;

	while (i < len) {
		if (is_blank((unsigned char)s[i])) {
			size_t k = i;
			while (k < len && is_blank((unsigned char)s[k]))
				k++;
			if (k >= len || s[k] != '.')
				break;
			i = k;
			continue;
		}
		if (is_delim((unsigned char)s[i]) || s[i] == '@')
			break;
		if (o + 1 < domlen)
			dom[o++] = s[i];
		i++;
	}
	while (o > 0 && dom[o - 1] == '.')
		o--;
	dom[o] = '\0';
	return o;
}

/* a is b, or one is a subdomain of the other (ASCII case-insensitive). */
static bool
same_domain(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	const char *lng = la >= lb ? a : b, *shrt = la >= lb ? b : a;
	size_t d = la >= lb ? la - lb : lb - la;

	if (strlen(shrt) == 0 || strcasecmp(lng + d, shrt) != 0)
		return false;
	return d == 0 || lng[d - 1] == '.';
}

static bool
address_like(const char *dom)
{
	for (const char *p = dom; *p; p++)
		if (*p == '.' || (unsigned char)*p >= 0x80)
			return true;
	return false;
}

bool
dispname_foreign(const char *val, size_t n, const char *from, char *out, size_t outlen)
{
	char s[FIELD_MAX + 1], dom[256];
	const char *fd = strrchr(from, '@');
	size_t len, i, b;

	if (n > FIELD_MAX || fd == NULL)
		return false; /* hdrfrom refuses a longer field itself */
	len = as_shown(val, n, s);
	for (i = 0; i < len; i++) {
		if (s[i] != '@')
			continue;
		for (b = i; b > 0 && !is_delim((unsigned char)s[b - 1]) && s[b - 1] != '@'; b--)
			;
		if (b == i || domain_after(s, len, i, dom, sizeof dom) == 0 || !address_like(dom) ||
		    same_domain(dom, fd + 1))
			continue;
		snprintf(out, outlen, "%.*s@%s", (int)(i - b), s + b, dom);
		for (char *p = out; *p; p++) /* it goes into a reply line and the log */
			if ((unsigned char)*p >= 0x7f)
				*p = '?';
		return true;
	}
	return false;
}
