/*
 * jsonw: a small JSON writer into a libevent buffer, for the control
 * socket's replies. Keeps the commas and the nesting; strings are escaped
 * (controls as \u00XX) and any byte sequence that is not UTF-8 becomes
 * U+FFFD, so a hostile remote reply or address can never break the
 * document.
 */
#ifndef MXRELAY_JSONW_H
#define MXRELAY_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;

#define JW_DEPTH 16

struct jw {
	struct evbuffer *b; /* borrowed */
	int depth;
	bool first[JW_DEPTH];
	char closer[JW_DEPTH];
};

/* key is NULL for an array element or the top-level value. */
void jw_init(struct jw *w, struct evbuffer *b);
void jw_obj(struct jw *w, const char *key);
void jw_arr(struct jw *w, const char *key);
void jw_end(struct jw *w); /* closes the innermost object or array */
void jw_str(struct jw *w, const char *key, const char *v); /* NULL: null */
void jw_int(struct jw *w, const char *key, int64_t v);
void jw_bool(struct jw *w, const char *key, bool v);
void jw_null(struct jw *w, const char *key);

#endif
