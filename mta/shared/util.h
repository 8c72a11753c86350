/* util: small helpers shared by the daemon and the CLI. */
#ifndef MXRELAY_UTIL_H
#define MXRELAY_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Fill out (len+1 bytes) with len lowercase hex characters from the kernel CSPRNG. 0 / -1. */
int util_random_hex(char *out, size_t len);

/*
 * A queue id: 16 hex chars, time-ordered prefix plus a tail counting from a
 * random start each second (unique in the process). out has 17 bytes.
 */
void util_make_qid(char *out);

/* RFC 5322 date-time for t in local time ("Mon, 23 Nov 2026 02:39:06 +0000"). */
void util_rfc5322_date(char *out, size_t outlen, time_t t);

/* Case-insensitive ASCII compare of n bytes / whole strings (locale-free). */
int util_strncaseeq(const char *a, const char *b, size_t n);

/* Bounded strdup; aborts on out-of-memory (the daemon cannot continue sanely). */
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);

/* The error text of a 0 / -1 function: printf into err when err != NULL and errlen > 0. */
void util_seterrf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* util_seterrf, then -1: the one-line failure of a 0 / -1 function. */
int util_failf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Monotonic clock in milliseconds. */
int64_t util_now_ms(void);
/* Wall clock (CLOCK_REALTIME) in milliseconds since the epoch: times that are stored or compared
 * with stored ones (a message's arrival for delays=). */
int64_t util_wall_ms(void);

/*
 * The bucket of a row id in a hash table of nbuckets (a power of two):
 * Fibonacci hashing, so ids that grow by one spread over every bucket.
 */
static inline size_t
util_id_bucket(int64_t id, size_t nbuckets)
{
	return (size_t)(((uint64_t)id * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (nbuckets - 1);
}

#endif
