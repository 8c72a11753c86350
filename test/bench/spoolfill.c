/*
 * spoolfill: put N queued messages straight into a spool through the spool
 * API (spool_insert_batch, the writer's own call), for the queue tests and
 * bench-queue.sh: 1,000,000 messages in a minute or two instead of hours of
 * SMTP. Run it while mxrelayd is stopped; the daemon loads them at start.
 *
 *   spoolfill DATA_DIR COUNT [--domains N] [--rcpts K] [--size BYTES]
 *             [--spread SECONDS] [--zone Z] [--batch B]
 *
 * Message i goes to K recipients u<i>-<k>@d<(i + k) % N>.<Z> (default N 10,
 * K 1, Z fill.test), with a body of about BYTES (default 1300), received
 * time spread evenly over the last SECONDS (default 0: now), oldest first
 * (ids grow with received time, as in a live spool). Prints one line:
 * `inserted=N seconds=S`. Exit 0, or 1 with the spool's error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "spool/spool.h"

struct opts {
	const char *dir, *zone;
	long count, domains, rcpts, size, spread, batch;
};

static int
parse(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){NULL, "fill.test", 0, 10, 1, 1300, 0, 1000};
	if (argc < 3)
		return -1;
	o->dir = argv[1];
	o->count = atol(argv[2]);
	for (int i = 3; i + 1 < argc; i += 2) {
		long v = atol(argv[i + 1]);
		if (strcmp(argv[i], "--zone") == 0)
			o->zone = argv[i + 1];
		else if (strcmp(argv[i], "--domains") == 0)
			o->domains = v;
		else if (strcmp(argv[i], "--rcpts") == 0)
			o->rcpts = v;
		else if (strcmp(argv[i], "--size") == 0)
			o->size = v;
		else if (strcmp(argv[i], "--spread") == 0)
			o->spread = v;
		else if (strcmp(argv[i], "--batch") == 0)
			o->batch = v;
		else
			return -1;
	}
	if ((argc - 3) % 2 != 0 || o->count < 0 || o->domains < 1 || o->rcpts < 1 ||
	    o->rcpts > 100 || o->size < 64 || o->batch < 1 || o->spread < 0)
		return -1;
	return 0;
}

static char *
make_body(long size)
{
	static const char head[] = "From: fill@fill.test\r\nTo: fill@fill.test\r\n"
	                           "Subject: spoolfill\r\n\r\n";
	char *b = malloc((size_t)size + 1);
	long i;

	if (b == NULL)
		return NULL;
	memcpy(b, head, sizeof(head) - 1);
	for (i = (long)sizeof(head) - 1; i < size; i++)
		b[i] = (i % 72 == 70) ? '\r' : (i % 72 == 71) ? '\n' : (char)('a' + i % 26);
	b[size - 2] = '\r';
	b[size - 1] = '\n';
	b[size] = '\0';
	return b;
}

/* One batch: messages [first, first + n). 0 / -1 (err filled). */
static int
fill_batch(struct spool *sp, const struct opts *o, long first, long n, const char *body,
           uint32_t tag, time_t now, char *err, size_t errlen)
{
	struct spool_msg_in *m = calloc((size_t)n, sizeof(*m));
	struct spool_msg_in **v = calloc((size_t)n, sizeof(*v));
	char(*addr)[128] = calloc((size_t)(n * o->rcpts), sizeof(*addr));
	const char **rc = calloc((size_t)(n * o->rcpts), sizeof(*rc));
	int ret = -1;

	if (m == NULL || v == NULL || addr == NULL || rc == NULL) {
		snprintf(err, errlen, "out of memory");
		goto done;
	}
	for (long j = 0; j < n; j++) {
		long i = first + j;
		for (long k = 0; k < o->rcpts; k++) {
			long a = j * o->rcpts + k;
			snprintf(addr[a], sizeof(addr[a]), "u%ld-%ld@d%ld.%s", i, k,
			         (i + k) % o->domains, o->zone);
			rc[a] = addr[a];
		}
		snprintf(m[j].qid, sizeof(m[j].qid), "%08x%08lx", (unsigned)tag, (unsigned long)i);
		m[j].sender = "fill@fill.test";
		m[j].rcpts = &rc[j * o->rcpts];
		m[j].nrcpts = (size_t)o->rcpts;
		m[j].body = body;
		m[j].body_len = (size_t)o->size;
		m[j].received = now - (o->count ? o->spread * (o->count - i) / o->count : 0);
		m[j].client_ip = "127.0.0.1";
		m[j].helo = "spoolfill";
		v[j] = &m[j];
	}
	ret = spool_insert_batch(sp, v, (size_t)n, NULL, err, errlen);
done:
	free(m);
	free(v);
	free(addr);
	free(rc);
	return ret;
}

int
main(int argc, char **argv)
{
	struct opts o;
	struct spool *sp;
	struct timespec t0, t1;
	char err[512];
	char *body;
	uint32_t tag;
	time_t now = time(NULL);

	if (parse(argc, argv, &o) != 0) {
		fprintf(stderr, "usage: spoolfill DATA_DIR COUNT [--domains N] [--rcpts K] "
		                "[--size BYTES] [--spread SECONDS] [--zone Z] [--batch B]\n");
		return 2;
	}
	if (getrandom(&tag, sizeof(tag), 0) != sizeof(tag) || (body = make_body(o.size)) == NULL)
		return 1;
	if (spool_open(&sp, o.dir, err, sizeof(err)) != 0) {
		fprintf(stderr, "spoolfill: %s\n", err);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < o.count; i += o.batch) {
		long n = o.count - i < o.batch ? o.count - i : o.batch;
		if (fill_batch(sp, &o, i, n, body, tag, now, err, sizeof(err)) != 0) {
			fprintf(stderr, "spoolfill: %s\n", err);
			spool_close(sp);
			return 1;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	spool_close(sp);
	free(body);
	printf("inserted=%ld seconds=%.2f\n", o.count,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}
