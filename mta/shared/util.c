/* util: randomness, dates, allocation helpers (see util.h). */
#include "mta/shared/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <pthread.h>

int
util_random_hex(char *out, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char buf[64];
	size_t i;

	if (len > sizeof(buf) * 2)
		return -1;
	if (getrandom(buf, (len + 1) / 2, 0) != (ssize_t)((len + 1) / 2))
		return -1;
	for (i = 0; i < len; i++)
		out[i] = hex[(buf[i / 2] >> ((i & 1) ? 0 : 4)) & 0xf];
	out[len] = '\0';
	return 0;
}

void
util_make_qid(char *out)
{
	/*
	 * 9 hex of seconds (sorts by arrival for ~2^36 s) + 7 hex counting up
	 * from a random start each second: unique in this process up to 2^28
	 * ids a second. (Seven random hex collided: at 2000 messages a second
	 * two of them share a tail about once a minute, and the spool's
	 * UNIQUE constraint turned that into a 451.)
	 */
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	static uint64_t last_sec, base, seq;
	uint64_t now = (uint64_t)time(NULL), tail;
	char rnd[8];

	pthread_mutex_lock(&mu);
	if (now != last_sec) {
		last_sec = now;
		seq = 0;
		base = util_random_hex(rnd, 7) == 0 ? strtoull(rnd, NULL, 16) : 0;
	}
	tail = (base + seq++) & 0xfffffffULL;
	pthread_mutex_unlock(&mu);
	snprintf(out, 17, "%09llx%07llx", (unsigned long long)(now & 0xfffffffffULL),
		 (unsigned long long)tail);
}

void
util_rfc5322_date(char *out, size_t outlen, time_t t)
{
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(out, outlen, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

int
util_strncaseeq(const char *a, const char *b, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (x >= 'A' && x <= 'Z')
			x += 32;
		if (y >= 'A' && y <= 'Z')
			y += 32;
		if (x != y)
			return 0;
		if (x == '\0')
			return 1;
	}
	return 1;
}

static void *
oom(void)
{
	fputs("mxrelay: out of memory\n", stderr);
	abort();
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	return p ? p : oom();
}

void *
xcalloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);
	return p ? p : oom();
}

void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	return q ? q : oom();
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static void vseterr(char *err, size_t errlen, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void
vseterr(char *err, size_t errlen, const char *fmt, va_list ap)
{
	if (err != NULL && errlen > 0)
		vsnprintf(err, errlen, fmt, ap);
}

void
util_seterrf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vseterr(err, errlen, fmt, ap);
	va_end(ap);
}

int
util_failf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vseterr(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

int64_t
util_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
util_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
