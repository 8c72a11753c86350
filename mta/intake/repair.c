/*
 * repair: header_repair rules and the From display-name repair (repair.h).
 */
#include "mta/intake/repair.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mta/shared/config.h"

#define LINE_OCTETS_MAX 998 /* RFC 5322 2.1.1, without CRLF */

unsigned
repair_choose(const struct config *cfg, const char *user, const char *listener,
              const struct sockaddr *client)
{
	return config_header_repairs(cfg, user, listener, client);
}

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * A display name the repair may quote: printable (UTF-8 too, RFC 6532) and
 * none of the specials that would change what the field means once quoted
 * (a comma could be a list, a colon a group, parentheses a comment).
 */
static bool
plain_phrase(const char *p, size_t n, bool *has_at)
{
	size_t i;

	*has_at = false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '@')
			*has_at = true;
		else if ((c < 32 && c != '\t') || c == 127 || strchr("\"(),:;<>[]\\", c))
			return false;
	}
	return n > 0;
}

/* ADDR between the angle brackets: no specials beyond what an addr-spec needs. */
static bool
plain_addr(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c <= 32 || c == 127 || strchr("\"(),:;<>\\", c))
			return false;
	}
	return memchr(p, '@', n) != NULL;
}

/*
 * Whether an '@' of the display name could read as another address: quoting
 * it would make receivers show that address as the author's name, a spoof
 * (`ceo@bank.example <scans@example.com>`). Words that are the mailbox itself
 * (case-insensitive) are fine. Any other '@' followed, anywhere later in the
 * name, by a '.' or by a non-ASCII octet (U+2024, U+FF0E, U+3002 and other
 * look-alike full stops) is left unrepaired, and so is judged by hdrfrom as
 * sent: the repair never turns a refusal into an acceptance. The later text is
 * searched, not only the word, since "ceo@bank\t.example" shows as one.
 */
static bool
names_other_address(const char *p, size_t n, const char *addr, size_t alen)
{
	size_t i = 0, w, k;

	while (i < n) {
		for (; i < n && is_wsp(p[i]); i++)
			;
		for (w = i; i < n && !is_wsp(p[i]); i++)
			;
		if (!memchr(p + w, '@', i - w) ||
		    (i - w == alen && strncasecmp(p + w, addr, alen) == 0))
			continue;
		for (k = (size_t)((const char *)memchr(p + w, '@', i - w) - p); k < n; k++)
			if (p[k] == '.' || (unsigned char)p[k] >= 0x80)
				return true;
	}
	return false;
}

int
repair_from_at(const char *val, size_t n, char *out, size_t outlen)
{
	char flat[LINE_OCTETS_MAX + 1];
	size_t i, len = 0, b, e, lt;
	bool has_at;
	int w;

	/* unfold (RFC 5322 2.2.3): drop the CR and LF, keep the WSP after them */
	for (i = 0; i < n; i++) {
		if (val[i] == '\r' || val[i] == '\n')
			continue;
		if (len == sizeof(flat))
			return -1;
		flat[len++] = val[i];
	}
	for (b = 0; b < len && is_wsp(flat[b]); b++)
		;
	for (e = len; e > b && is_wsp(flat[e - 1]); e--)
		;
	if (e - b < 3 || flat[e - 1] != '>')
		return -1;
	for (lt = e - 1; lt > b && flat[lt] != '<'; lt--)
		;
	if (flat[lt] != '<' || !plain_addr(flat + lt + 1, e - lt - 2))
		return -1;
	for (i = lt; i > b && is_wsp(flat[i - 1]); i--)
		;
	if (!plain_phrase(flat + b, i - b, &has_at) || !has_at ||
	    names_other_address(flat + b, i - b, flat + lt + 1, e - lt - 2))
		return -1;
	w = snprintf(out, outlen, " \"%.*s\" %.*s\r\n", (int)(i - b), flat + b, (int)(e - lt),
	             flat + lt);
	/* "From:" and the value must still fit one line */
	if (w < 0 || (size_t)w >= outlen || (size_t)w - 2 + 5 > LINE_OCTETS_MAX)
		return -1;
	return w;
}
