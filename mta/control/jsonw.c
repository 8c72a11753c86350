/* jsonw: JSON writer for control socket replies (see jsonw.h). */
#include "mta/control/jsonw.h"

#include <event2/buffer.h>
#include <inttypes.h>
#include <string.h>

void
jw_init(struct jw *w, struct evbuffer *b)
{
	memset(w, 0, sizeof(*w));
	w->b = b;
	w->first[0] = true;
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid. */
static size_t
utf8_len(const unsigned char *p, size_t n)
{
	size_t len, i;
	uint32_t cp;

	if (p[0] < 0xc2 || p[0] > 0xf4)
		return 0;
	len = p[0] < 0xe0 ? 2 : p[0] < 0xf0 ? 3 : 4;
	if (len > n)
		return 0;
	cp = p[0] & (0x7f >> len);
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	/* overlong forms, surrogates and values past U+10FFFF are not UTF-8 */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static void
put_string(struct evbuffer *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, run;

	evbuffer_add(b, "\"", 1);
	while (i < n) {
		unsigned char c = p[i];
		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			for (run = i; run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' &&
			              p[run] != '\\';
			     run++)
				;
			evbuffer_add(b, p + i, run - i);
			i = run;
		} else if (c == '"' || c == '\\') {
			evbuffer_add_printf(b, "\\%c", c);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			evbuffer_add_printf(b, "\\u%04x", c);
			i++;
		} else if ((run = utf8_len(p + i, n - i)) > 0) {
			evbuffer_add(b, p + i, run);
			i += run;
		} else {
			evbuffer_add(b, "\\ufffd", 6);
			i++;
		}
	}
	evbuffer_add(b, "\"", 1);
}

/* Comma and key before a value at the current level. */
static void
member(struct jw *w, const char *key)
{
	if (!w->first[w->depth])
		evbuffer_add(w->b, ",", 1);
	w->first[w->depth] = false;
	if (key != NULL) {
		put_string(w->b, key);
		evbuffer_add(w->b, ":", 1);
	}
}

static void
open_level(struct jw *w, const char *key, char open, char close)
{
	member(w, key);
	evbuffer_add(w->b, &open, 1);
	if (w->depth + 1 < JW_DEPTH) {
		w->depth++;
		w->first[w->depth] = true;
		w->closer[w->depth] = close;
	}
}

void
jw_obj(struct jw *w, const char *key)
{
	open_level(w, key, '{', '}');
}

void
jw_arr(struct jw *w, const char *key)
{
	open_level(w, key, '[', ']');
}

void
jw_end(struct jw *w)
{
	if (w->depth == 0)
		return;
	evbuffer_add(w->b, &w->closer[w->depth], 1);
	w->depth--;
}

void
jw_str(struct jw *w, const char *key, const char *v)
{
	member(w, key);
	if (v == NULL)
		evbuffer_add(w->b, "null", 4);
	else
		put_string(w->b, v);
}

void
jw_int(struct jw *w, const char *key, int64_t v)
{
	member(w, key);
	evbuffer_add_printf(w->b, "%" PRId64, v);
}

void
jw_bool(struct jw *w, const char *key, bool v)
{
	member(w, key);
	evbuffer_add(w->b, v ? "true" : "false", v ? 4 : 5);
}

void
jw_null(struct jw *w, const char *key)
{
	member(w, key);
	evbuffer_add(w->b, "null", 4);
}
