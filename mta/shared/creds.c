/*
 * creds: the local credentials file (format and contract in creds.h).
 *
 * Owns parsing, lookup, crypt_r(3) verification, the allowed-sender rule and
 * the atomic rewrite mxrelayctl uses. Never logs, never touches the network,
 * keeps no global mutable state: every function may run on any thread.
 */
#include "mta/shared/creds_int.h"

#include <crypt.h>
#include <ctype.h>
#include <openssl/sha.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * A valid yescrypt setting with the cost libcrypt picks by default ("$y$",
 * count 0 gives j9T), so a dummy check costs what a real one does. The salt
 * is not secret: nothing is ever compared against the result.
 */
static const char dummy_setting[] = "$y$j9T$QKlmoiRsnmQPAdUs.VaMi.";

/* Bytes that may not appear in a user name, hash or sender entry. */
static int
bad_char(char ch)
{
	unsigned char u = (unsigned char)ch;

	return u <= ' ' || u == 0x7f || u == ':';
}

static char *
trim(char *s)
{
	size_t len;

	while (*s == ' ' || *s == '\t')
		s++;
	len = strlen(s);
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		s[--len] = '\0';
	return s;
}

/*
 * The phrase crypt_r is given for PASSWORD: the password itself, or, when
 * libcrypt would refuse it (CRYPT_MAX_PASSPHRASE_SIZE bytes or more), the
 * lowercase hex SHA-256 of it. -1 when empty or over CREDS_MAX_PASSWORD.
 */
static int
make_phrase(const char *password, char phrase[CRYPT_MAX_PASSPHRASE_SIZE])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[32];
	size_t len = strnlen(password, CREDS_MAX_PASSWORD + 1);
	int i;

	if (len == 0 || len > CREDS_MAX_PASSWORD)
		return -1;
	if (len < CRYPT_MAX_PASSPHRASE_SIZE) {
		memcpy(phrase, password, len + 1);
		return 0;
	}
	SHA256((const unsigned char *)password, len, md);
	for (i = 0; i < 32; i++) {
		phrase[2 * i] = hex[md[i] >> 4];
		phrase[2 * i + 1] = hex[md[i] & 15];
	}
	phrase[64] = '\0';
	explicit_bzero(md, sizeof md);
	return 0;
}

/* crypt_r(PASSWORD, SETTING) into out. 0 / -1 (errno from libcrypt). */
static int
run_crypt(const char *password, const char *setting, char *out, size_t outlen)
{
	char phrase[CRYPT_MAX_PASSPHRASE_SIZE];
	struct crypt_data *data = NULL;
	const char *res;
	size_t len;
	int rc = -1;

	if (make_phrase(password, phrase) < 0) {
		errno = EINVAL;
		goto done;
	}
	/* ~32 KB, too big for a worker's stack habits, and it ends up holding
	 * the phrase: heap, wiped before free. Zeroed = fresh state. */
	data = calloc(1, sizeof *data);
	if (!data)
		goto done;
	res = crypt_r(phrase, setting, data);
	/* libcrypt fails with NULL or a "*0"-style token; we only use '$' hashes */
	if (!res || res[0] != '$')
		goto done;
	len = strlen(res);
	if (len >= outlen) {
		errno = ERANGE;
		goto done;
	}
	memcpy(out, res, len + 1);
	rc = 0;
done:
	explicit_bzero(phrase, sizeof phrase);
	if (data) {
		explicit_bzero(data, sizeof *data);
		free(data);
	}
	return rc;
}

/* Lengths are fixed per hash method, so only the bytes need constant time. */
static int
ct_equal(const char *a, const char *b)
{
	size_t len = strlen(a), i;
	unsigned char diff = 0;

	if (len != strlen(b))
		return -1;
	for (i = 0; i < len; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0 ? 0 : -1;
}

int
creds_check_password(const struct cred *cred, const char *password)
{
	char out[CREDS_HASH_MAX];
	int rc = -1;

	if (!password)
		return -1;
	if (!cred || !cred->hash || cred->hash[0] != '$') {
		/* pay the same price, so a broken entry looks like a wrong password */
		creds_dummy_check(password);
		return -1;
	}
	if (run_crypt(password, cred->hash, out, sizeof out) == 0)
		rc = ct_equal(out, cred->hash);
	explicit_bzero(out, sizeof out);
	return rc;
}

void
creds_dummy_check(const char *password)
{
	char out[CREDS_HASH_MAX];

	/* the hash is thrown away; only the time spent matters */
	(void)run_crypt(password ? password : "", dummy_setting, out, sizeof out);
	explicit_bzero(out, sizeof out);
}

int
creds_hash_password(const char *password, char *out, size_t outlen, char *err, size_t errlen)
{
	static const char *const methods[] = {"$y$", "$6$"};
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	size_t len = strnlen(password, CREDS_MAX_PASSWORD + 1), i;
	int saved = 0;

	if (len == 0) {
		util_seterrf(err, errlen, "empty password");
		return -1;
	}
	if (len > CREDS_MAX_PASSWORD) {
		util_seterrf(err, errlen, "password longer than %d bytes", CREDS_MAX_PASSWORD);
		return -1;
	}
	for (i = 0; i < sizeof methods / sizeof methods[0]; i++) {
		/* count 0: the method's default cost; NULL rbytes: libcrypt reads
		 * the salt from the OS random source itself */
		if (!crypt_gensalt_rn(methods[i], 0, NULL, 0, salt, sizeof salt)) {
			saved = errno;
			continue;
		}
		if (run_crypt(password, salt, out, outlen) == 0)
			return 0;
		saved = errno;
	}
	util_seterrf(err, errlen, "cannot hash the password with yescrypt or sha512-crypt: %s",
	       strerror(saved));
	return -1;
}

int
creds_check_user(const char *user, char *err, size_t errlen)
{
	const char *p;

	if (!user || !*user) {
		util_seterrf(err, errlen, "empty user name");
		return -1;
	}
	/* such a line would read back as a comment */
	if (user[0] == '#') {
		util_seterrf(err, errlen, "user name starts with '#'");
		return -1;
	}
	for (p = user; *p; p++) {
		if (bad_char(*p)) {
			util_seterrf(err, errlen,
			       "user name contains ':', whitespace or a control character");
			return -1;
		}
	}
	return 0;
}

static int
check_sender_entry(const char *s, char *why, size_t whylen)
{
	const char *p, *at;

	if (strcmp(s, "*") == 0)
		return 0;
	if (*s == '\0') {
		util_seterrf(why, whylen, "empty sender entry");
		return -1;
	}
	for (p = s; *p; p++) {
		if (bad_char(*p) || *p == ',') {
			util_seterrf(why, whylen,
			       "sender entry contains ':', whitespace or a control "
			       "character");
			return -1;
		}
	}
	/* a glob-looking "*@dom" would silently match only the local part "*" */
	if (strchr(s, '*')) {
		util_seterrf(why, whylen, "sender '%.64s': '*' is only allowed on its own", s);
		return -1;
	}
	at = strrchr(s, '@');
	if (!at) {
		util_seterrf(why, whylen, "sender '%.64s' is not an address, @domain or *", s);
		return -1;
	}
	if (at[1] == '\0') {
		util_seterrf(why, whylen, "sender '%.64s' has an empty domain", s);
		return -1;
	}
	return 0;
}

/*
 * Split FIELD in place on ',' into trimmed, checked entries. *outv (NULL for
 * an empty field) is the caller's to free; the strings point into FIELD.
 */
int
creds_parse_senders(char *field, char ***outv, size_t *outn, char *why, size_t whylen)
{
	char **v, *item, *next, *p;
	size_t count = 1, n = 0;

	*outv = NULL;
	*outn = 0;
	field = trim(field);
	if (*field == '\0')
		return 0;
	for (p = field; *p; p++)
		count += *p == ',';
	if (count > CREDS_MAX_SENDERS) {
		util_seterrf(why, whylen, "more than %d senders", CREDS_MAX_SENDERS);
		return -1;
	}
	v = calloc(count, sizeof *v);
	if (!v) {
		util_seterrf(why, whylen, "out of memory");
		return -1;
	}
	for (item = field; item; item = next) {
		next = strchr(item, ',');
		if (next)
			*next++ = '\0';
		item = trim(item);
		if (check_sender_entry(item, why, whylen) < 0) {
			free(v);
			return -1;
		}
		v[n++] = item;
	}
	*outv = v;
	*outn = n;
	return 0;
}

int
creds_check_senders(const char *list, char *err, size_t errlen)
{
	char *copy, **v;
	size_t n;
	int rc;

	if (strlen(list) > CREDS_MAX_LINE) {
		util_seterrf(err, errlen, "sender list longer than %d bytes", CREDS_MAX_LINE);
		return -1;
	}
	copy = strdup(list);
	if (!copy) {
		util_seterrf(err, errlen, "out of memory");
		return -1;
	}
	rc = creds_parse_senders(copy, &v, &n, err, errlen);
	if (rc == 0)
		free(v);
	free(copy);
	return rc;
}

int
creds_check_hash(const char *hash, char *why, size_t whylen)
{
	const char *p;

	if (hash[0] != '$') {
		util_seterrf(why, whylen,
		       "hash does not start with '$' (want a crypt(3) hash such as "
		       "$y$...)");
		return -1;
	}
	for (p = hash; *p; p++) {
		if (bad_char(*p)) {
			util_seterrf(why, whylen, "hash contains whitespace or a control character");
			return -1;
		}
	}
	switch (crypt_checksalt(hash)) {
	case CRYPT_SALT_OK:
	case CRYPT_SALT_METHOD_LEGACY:
	case CRYPT_SALT_TOO_CHEAP:
		/* weak but usable: the admin chose it, and it still verifies */
		return 0;
	default:
		util_seterrf(why, whylen, "hash method not supported by libcrypt");
		return -1;
	}
}

int
creds_parse_date(const char *v, time_t *out)
{
	struct tm tm, back;
	const char *end;
	time_t t;

	/* exactly YYYY-MM-DD, 1970 on: what creds_format_date writes back */
	for (int i = 0; i < 10; i++)
		if (v[i] == '\0' || ((i == 4 || i == 7) ? v[i] != '-' : !isdigit((unsigned char)v[i])))
			return -1;
	memset(&tm, 0, sizeof tm);
	end = strptime(v, "%Y-%m-%d", &tm);
	if (end == NULL || *end != '\0' || tm.tm_year < 70)
		return -1;
	back = tm; /* timegm normalizes its argument: keep the date as written */
	t = timegm(&tm);
	gmtime_r(&t, &tm);
	if (back.tm_year != tm.tm_year || back.tm_mon != tm.tm_mon || back.tm_mday != tm.tm_mday)
		return -1; /* 2027-02-30 does not roll over into March */
	/* like legacy_tls_until: the date is the last day that still works */
	*out = t + 86400;
	return 0;
}

void
creds_format_date(time_t sunset, char *out, size_t outlen)
{
	struct tm tm;
	time_t day = sunset - 86400;

	gmtime_r(&day, &tm);
	strftime(out, outlen, "%Y-%m-%d", &tm);
}

/* The optional fifth field: "sunset=YYYY-MM-DD" (issue 15). */
static int
parse_options(const char *field, struct cred *cr, char *why, size_t whylen)
{
	if (strncmp(field, "sunset=", 7) != 0 || creds_parse_date(field + 7, &cr->sunset) < 0) {
		util_seterrf(why, whylen,
		             "fifth field must be sunset=YYYY-MM-DD (a real date), not \"%.40s\"",
		             field);
		return -1;
	}
	return 0;
}

/* Fill CR from LINE (a writable copy it will point into). */
static int
parse_line(char *line, struct cred *cr, char *why, size_t whylen)
{
	char *f[5], *p = line;
	int nf = 0;

	f[nf++] = p;
	while ((p = strchr(p, ':')) != NULL) {
		if (nf == 5) {
			util_seterrf(why, whylen,
			             "too many fields (want user:hash:state:senders[:sunset=DATE])");
			return -1;
		}
		*p++ = '\0';
		f[nf++] = p;
	}
	if (nf < 4) {
		util_seterrf(why, whylen, "missing fields (want user:hash:state:senders)");
		return -1;
	}
	if (creds_check_user(f[0], why, whylen) < 0 || creds_check_hash(f[1], why, whylen) < 0)
		return -1;
	if (strcmp(f[2], "enabled") == 0) {
		cr->disabled = 0;
	} else if (strcmp(f[2], "disabled") == 0) {
		cr->disabled = 1;
	} else {
		util_seterrf(why, whylen, "state must be 'enabled' or 'disabled'");
		return -1;
	}
	if (nf == 5 && parse_options(f[4], cr, why, whylen) < 0)
		return -1;
	if (creds_parse_senders(f[3], &cr->senders, &cr->nsenders, why, whylen) < 0)
		return -1;
	cr->user = f[0];
	cr->hash = f[1];
	return 0;
}

static int
add_entry(struct creds *c, const char *line, size_t lineno, char *why, size_t whylen)
{
	struct entry *e;

	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct entry *v = realloc(c->v, cap * sizeof *v);

		if (!v) {
			util_seterrf(why, whylen, "out of memory");
			return -1;
		}
		c->v = v;
		c->cap = cap;
	}
	e = &c->v[c->n];
	memset(e, 0, sizeof *e);
	e->buf = strdup(line);
	if (!e->buf) {
		util_seterrf(why, whylen, "out of memory");
		return -1;
	}
	if (parse_line(e->buf, &e->cred, why, whylen) < 0) {
		free(e->buf);
		return -1;
	}
	e->line = lineno;
	c->n++;
	return 0;
}

int
creds_lines_push(struct lines *l, const char *s)
{
	char *copy;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		char **v = realloc(l->v, cap * sizeof *v);

		if (!v)
			return -1;
		l->v = v;
		l->cap = cap;
	}
	copy = strdup(s);
	if (!copy)
		return -1;
	l->v[l->n++] = copy;
	return 0;
}

void
creds_lines_free(struct lines *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

/*
 * One line into buf (size >= CREDS_MAX_LINE + 2), without "\n" or "\r\n".
 * Stops reading at once on an over-long line: memory stays bounded.
 */
static int
read_line(FILE *f, char *buf)
{
	size_t len = 0;
	int ch, nul = 0;

	while ((ch = getc(f)) != EOF && ch != '\n') {
		if (len > CREDS_MAX_LINE) /* one spare byte for a '\r' */
			return LINE_LONG;
		nul |= ch == '\0';
		buf[len++] = (char)ch;
	}
	if (ch == EOF && ferror(f))
		return LINE_IOERR;
	if (ch == EOF && len == 0)
		return LINE_EOF;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	if (len > CREDS_MAX_LINE)
		return LINE_LONG;
	if (nul)
		return LINE_NUL;
	buf[len] = '\0';
	return LINE_OK;
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int r = strcmp(x->cred.user, y->cred.user);

	if (r != 0)
		return r;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* Sort for bsearch; report the duplicate that comes first in the file. */
static int
sort_and_check(struct creds *c, const char *path, char *err, size_t errlen)
{
	const struct entry *dup = NULL, *orig = NULL;
	size_t i;

	if (c->n > 1)
		qsort(c->v, c->n, sizeof c->v[0], entry_cmp);
	for (i = 1; i < c->n; i++) {
		const struct entry *prev = &c->v[i - 1], *cur = &c->v[i];

		if (strcmp(prev->cred.user, cur->cred.user) != 0)
			continue;
		/* within a run only the second entry can be the earliest repeat */
		if (i >= 2 && strcmp(c->v[i - 2].cred.user, cur->cred.user) == 0)
			continue;
		if (!dup || cur->line < dup->line) {
			dup = cur;
			orig = prev;
		}
	}
	if (dup) {
		util_seterrf(err, errlen, "%s:%zu: duplicate user '%s' (first on line %zu)", path,
		       dup->line, dup->cred.user, orig->line);
		return -1;
	}
	return 0;
}

/* Parse F into c; with keep, also collect every raw line. */
int
creds_load_stream(struct creds *c, FILE *f, const char *path, struct lines *keep, char *err,
            size_t errlen)
{
	char buf[CREDS_MAX_LINE + 2], why[256];
	size_t lineno = 0;
	int r;

	while ((r = read_line(f, buf)) == LINE_OK) {
		const char *p = buf;

		if (++lineno > CREDS_MAX_LINES) {
			util_seterrf(err, errlen, "%s:%zu: more than %d lines", path, lineno,
			       CREDS_MAX_LINES);
			return -1;
		}
		if (keep && creds_lines_push(keep, buf) < 0) {
			util_seterrf(err, errlen, "%s: out of memory", path);
			return -1;
		}
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0' || *p == '#')
			continue;
		if (add_entry(c, buf, lineno, why, sizeof why) < 0) {
			util_seterrf(err, errlen, "%s:%zu: %s", path, lineno, why);
			return -1;
		}
	}
	switch (r) {
	case LINE_EOF:
		return sort_and_check(c, path, err, errlen);
	case LINE_LONG:
		util_seterrf(err, errlen, "%s:%zu: line longer than %d bytes", path, lineno + 1,
		       CREDS_MAX_LINE);
		return -1;
	case LINE_NUL:
		util_seterrf(err, errlen, "%s:%zu: NUL byte in line", path, lineno + 1);
		return -1;
	default:
		util_seterrf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
}

int
creds_load(struct creds **out, const char *path, char *err, size_t errlen)
{
	struct creds *c = NULL;
	FILE *f = NULL;
	int rc = -1;

	*out = NULL;
	c = calloc(1, sizeof *c);
	if (!c) {
		util_seterrf(err, errlen, "%s: out of memory", path);
		goto done;
	}
	f = fopen(path, "re");
	if (!f) {
		util_seterrf(err, errlen, "%s: %s", path, strerror(errno));
		goto done;
	}
	if (creds_load_stream(c, f, path, NULL, err, errlen) < 0)
		goto done;
	*out = c;
	c = NULL;
	rc = 0;
done:
	if (f)
		fclose(f);
	creds_free(c);
	return rc;
}

void
creds_free(struct creds *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->n; i++) {
		free(c->v[i].cred.senders);
		free(c->v[i].buf);
	}
	free(c->v);
	free(c);
}

static int
find_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct entry *)elem)->cred.user);
}

struct entry *
creds_find_entry(const struct creds *c, const char *user)
{
	if (!c || !user || c->n == 0)
		return NULL;
	return bsearch(user, c->v, c->n, sizeof c->v[0], find_cmp);
}

const struct cred *
creds_find(const struct creds *c, const char *user)
{
	struct entry *e = creds_find_entry(c, user);

	return e ? &e->cred : NULL;
}

size_t
creds_count(const struct creds *c)
{
	return c ? c->n : 0;
}

const struct cred *
creds_at(const struct creds *c, size_t i)
{
	return c && i < c->n ? &c->v[i].cred : NULL;
}
