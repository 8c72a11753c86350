/*
 * json: a small JSON reader for the replies of mxrelayd's control and
 * submit sockets (mxrelayctl queue, mxrelay-sendmail). Whole document in,
 * tree out; bounded nesting; numbers kept as int64 when integral.
 *
 * Also the one JSON string writer of tools/ (every --json printer uses it)
 * and its twin for terminal text: both take bytes from DNS or the spool,
 * which need not be UTF-8.
 */
#ifndef MXRELAY_TOOLS_JSON_H
#define MXRELAY_TOOLS_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUM, JSON_STR, JSON_ARR, JSON_OBJ };

struct json {
	enum json_type type;
	bool b;
	int64_t i;       /* JSON_NUM (fraction dropped) */
	char *s;         /* JSON_STR: NUL-terminated UTF-8 */
	struct json **v; /* JSON_ARR / JSON_OBJ members */
	char **k;        /* JSON_OBJ keys */
	size_t n;
};

/* Parse text (len bytes, one value and optional white space). NULL with err. */
struct json *json_parse(const char *text, size_t len, char *err, size_t errlen);
void json_free(struct json *j);

/* Member of an object (NULL if j is not an object or has no such key). */
const struct json *json_get(const struct json *j, const char *key);
/* String member, or NULL when missing or not a string. */
const char *json_gets(const struct json *j, const char *key);
/* Integer member, or dflt when missing or not a number. */
int64_t json_geti(const struct json *j, const char *key, int64_t dflt);
/* Boolean member (false when missing). */
bool json_getb(const struct json *j, const char *key);

/*
 * s as a JSON string (RFC 8259 7) on f, quotes included: '"', '\\' and
 * control characters escaped, every byte that does not start a valid UTF-8
 * sequence (RFC 3629 4: stray, overlong, surrogate, cut short) as \ufffd,
 * so the document stays strict UTF-8 (RFC 8259 8.1). NULL prints null.
 */
void json_write_str(FILE *f, const char *s);

/*
 * s for a terminal, as is except control characters (C0, DEL, C1) and bytes
 * that are not valid UTF-8, which print as \xNN: a Latin-1 TXT record or an
 * escape sequence in DNS data can't garble the screen. NULL prints nothing.
 */
void json_write_text(FILE *f, const char *s);

#endif
