/*
 * bench_dkim: how fast dkim/ signs (mxdkim_sign), the work mxrelayd does on
 * a worker thread for every accepted message before spooling it.
 *
 * For RSA-2048, Ed25519 and dual (both keys: two signatures) and for 4 KB
 * and 100 KB messages it signs N messages on one thread and prints messages
 * per second, messages per CPU-second (per core) and milliseconds per
 * message; with -t T it repeats every cell with T threads signing at once
 * with the same signer (as the daemon's worker pool does) and prints the
 * aggregate rate and the speed-up over one thread.
 *
 *   bench_dkim [-n N] [-t T] [-a ALG] [-s KB] [-k parsed|pem|der] [-r RSA.pem]
 *              [-e ED25519.pem]
 *
 * -k: how the keys reach libopendkim (mxdkim_signer_keymode): parsed once,
 * the default and what mxrelayd does, or through libopendkim's own API as
 * PEM text or base64 DER (RSA only), decoded again for every signature.
 *
 * -a and -s restrict the run to one algorithm cell and one message size:
 * with -t 1 that is the loop to run under valgrind --tool=callgrind, whose
 * instruction counts stay put on a busy machine where timings do not.
 *
 * Keys: generated in a temporary directory with mxdkim_keygen unless given
 * (-r / -e load existing PKCS#8 PEM files). Not a test: built with the
 * tree, never run by ctest (timings depend on the machine).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dkim/keys.h"
#include "dkim/signer.h"

#define DOMAIN "bench.example"

struct cell {
	const char *name;
	struct mxdkim_signer *signer;
	int nsigs; /* signatures per message */
};

struct run {
	const struct cell *cell;
	const char *msg;
	size_t len;
	int n;
	int failed;
	char err[256];
	pthread_barrier_t *start;
};

static double
now(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *what, const char *err)
{
	fprintf(stderr, "bench_dkim: %s: %s\n", what, err);
	exit(1);
}

/* A message of about size bytes: the usual header fields, then 76-octet body lines. */
static char *
make_message(size_t size, size_t *lenp)
{
	static const char alphabet[] =
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:-";
	char *m = malloc(size + 1024);
	size_t len;
	unsigned seed = 12345;

	if (m == NULL)
		die("malloc", strerror(errno));
	len = (size_t)sprintf(m,
	                      "From: Bench Sender <sender@" DOMAIN ">\r\n"
	                      "To: Someone <rcpt@example.net>\r\n"
	                      "Subject: benchmark message of %zu bytes\r\n"
	                      "Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
	                      "Message-ID: <bench.%zu@" DOMAIN ">\r\n"
	                      "MIME-Version: 1.0\r\n"
	                      "Content-Type: text/plain; charset=us-ascii\r\n"
	                      "\r\n",
	                      size, size);
	while (len + 78 <= size) {
		for (int i = 0; i < 76; i++) {
			seed = seed * 1103515245u + 12345u;
			m[len++] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
		}
		m[len++] = '\r';
		m[len++] = '\n';
	}
	m[len] = '\0';
	*lenp = len;
	return m;
}

static struct mxdkim_key *
load(const char *path)
{
	struct mxdkim_key *k;
	char err[256];

	if (mxdkim_key_load(&k, path, err, sizeof err) != 0)
		die(path, err);
	return k;
}

static enum mxdkim_keymode keymode = MXDKIM_KEYS_PARSED;

/* NULL when the key mode cannot take one of the keys (DER and Ed25519) */
static struct mxdkim_signer *
signer_with(const char *rsa_path, const char *ed_path)
{
	struct mxdkim_signer *s = mxdkim_signer_new();
	char err[256];

	if (s == NULL)
		die("mxdkim_signer_new", "failed");
	mxdkim_signer_keymode(s, keymode);
	if (keymode == MXDKIM_KEYS_DER && ed_path != NULL) {
		mxdkim_signer_free(s);
		return NULL;
	}
	if (rsa_path && mxdkim_signer_add(s, DOMAIN, "rsa", load(rsa_path), err, sizeof err) != 0)
		die("mxdkim_signer_add rsa", err);
	if (ed_path && mxdkim_signer_add(s, DOMAIN, "ed", load(ed_path), err, sizeof err) != 0)
		die("mxdkim_signer_add ed25519", err);
	return s;
}

static void *
sign_loop(void *arg)
{
	struct run *r = arg;
	char *headers;

	if (r->start)
		pthread_barrier_wait(r->start);
	for (int i = 0; i < r->n; i++) {
		if (mxdkim_sign(r->cell->signer, DOMAIN, r->msg, r->len, &headers, r->err,
		                sizeof r->err) != 0) {
			r->failed = 1;
			return NULL;
		}
		free(headers);
	}
	return NULL;
}

/* One signature, checked: the right number of DKIM-Signature fields. */
static void
check_cell(const struct cell *c, const char *msg, size_t len)
{
	char *headers, err[256];
	int n = 0;

	if (mxdkim_sign(c->signer, DOMAIN, msg, len, &headers, err, sizeof err) != 0)
		die(c->name, err);
	for (const char *p = headers; (p = strstr(p, "DKIM-Signature: ")) != NULL; p++)
		n++;
	if (n != c->nsigs) {
		fprintf(stderr, "bench_dkim: %s: %d signatures, expected %d\n", c->name, n,
		        c->nsigs);
		exit(1);
	}
	free(headers);
}

struct result {
	double wall, cpu;
	long msgs;
};

/* threads threads, n messages each, all starting together. */
static struct result
measure(const struct cell *c, const char *msg, size_t len, int n, int threads)
{
	pthread_t *tid = calloc((size_t)threads, sizeof *tid);
	struct run *runs = calloc((size_t)threads, sizeof *runs);
	pthread_barrier_t start;
	struct result res;
	double w0, c0;

	if (tid == NULL || runs == NULL)
		die("calloc", strerror(errno));
	pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
	for (int i = 0; i < threads; i++) {
		runs[i] = (struct run){c, msg, len, n, 0, "", &start};
		if (pthread_create(&tid[i], NULL, sign_loop, &runs[i]) != 0)
			die("pthread_create", strerror(errno));
	}
	pthread_barrier_wait(&start);
	w0 = now(CLOCK_MONOTONIC);
	c0 = now(CLOCK_PROCESS_CPUTIME_ID);
	for (int i = 0; i < threads; i++)
		pthread_join(tid[i], NULL);
	res.wall = now(CLOCK_MONOTONIC) - w0;
	res.cpu = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
	res.msgs = (long)n * threads;
	for (int i = 0; i < threads; i++)
		if (runs[i].failed)
			die(c->name, runs[i].err);
	pthread_barrier_destroy(&start);
	free(tid);
	free(runs);
	return res;
}

static void
usage(void)
{
	fprintf(stderr,
	        "usage: bench_dkim [-n MESSAGES] [-t THREADS] [-a ALG] [-s KB] [-r RSA.pem]\n"
	        "                  [-e ED25519.pem]\n"
	        "  -n  messages signed per thread and cell (default 200)\n"
	        "  -t  also run every cell with this many threads at once (default: the\n"
	        "      number of online CPUs; 1 = single-thread table only)\n"
	        "  -a  only this cell: rsa-2048, ed25519 or dual (default all three)\n"
	        "  -s  only this message size in KB (default 4 and 100)\n"
	        "  -k  keys to libopendkim: parsed (default), pem or der (RSA only): the\n"
	        "      last two are libopendkim's API, decoding the key for every signature\n"
	        "  -r, -e  use these keys instead of generating RSA-2048 / Ed25519 ones\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *rsa_path = NULL, *ed_path = NULL, *only = NULL;
	char dir[] = "/tmp/bench_dkim.XXXXXX", rsa_buf[64], ed_buf[64], err[256];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int n = 200, threads = ncpu > 1 ? (int)ncpu : 1, opt, generated = 0;
	size_t sizes[] = {4 * 1024, 100 * 1024}, nsizes = 2;

	while ((opt = getopt(argc, argv, "n:t:a:s:k:r:e:h")) != -1) {
		switch (opt) {
		case 'n':
			n = atoi(optarg);
			break;
		case 't':
			threads = atoi(optarg);
			break;
		case 'a':
			only = optarg;
			break;
		case 's':
			sizes[0] = (size_t)atoi(optarg) * 1024;
			nsizes = 1;
			if (sizes[0] == 0 || sizes[0] > 64u << 20)
				usage();
			break;
		case 'k':
			if (strcmp(optarg, "parsed") == 0)
				keymode = MXDKIM_KEYS_PARSED;
			else if (strcmp(optarg, "pem") == 0)
				keymode = MXDKIM_KEYS_PEM;
			else if (strcmp(optarg, "der") == 0)
				keymode = MXDKIM_KEYS_DER;
			else
				usage();
			break;
		case 'r':
			rsa_path = optarg;
			break;
		case 'e':
			ed_path = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || n < 1 || threads < 1 || threads > 256)
		usage();
	if (only != NULL && strcmp(only, "rsa-2048") != 0 && strcmp(only, "ed25519") != 0 &&
	    strcmp(only, "dual") != 0)
		usage();

	if (rsa_path == NULL || ed_path == NULL) {
		if (mkdtemp(dir) == NULL)
			die("mkdtemp", strerror(errno));
		generated = 1;
	}
	if (rsa_path == NULL) {
		snprintf(rsa_buf, sizeof rsa_buf, "%s/rsa.pem", dir);
		if (mxdkim_keygen(MXDKIM_RSA, 2048, rsa_buf, 0, err, sizeof err) != 0)
			die("mxdkim_keygen rsa", err);
		rsa_path = rsa_buf;
	}
	if (ed_path == NULL) {
		snprintf(ed_buf, sizeof ed_buf, "%s/ed25519.pem", dir);
		if (mxdkim_keygen(MXDKIM_ED25519, 0, ed_buf, 0, err, sizeof err) != 0)
			die("mxdkim_keygen ed25519", err);
		ed_path = ed_buf;
	}

	struct cell cells[] = {
	    {"rsa-2048", signer_with(rsa_path, NULL), 1},
	    {"ed25519", signer_with(NULL, ed_path), 1},
	    {"dual", signer_with(rsa_path, ed_path), 2},
	};
	if (generated) {
		unlink(rsa_buf);
		unlink(ed_buf);
		rmdir(dir);
	}

	printf("bench_dkim: mxdkim_sign, relaxed/relaxed, %d messages per thread and cell, "
	       "%ld online CPU(s), keys %s\n\n",
	       n, ncpu,
	       keymode == MXDKIM_KEYS_PEM   ? "as PEM text (libopendkim's API)"
	       : keymode == MXDKIM_KEYS_DER ? "as base64 DER (libopendkim's API)"
	                                    : "parsed once (hand-off)");
	printf("%-9s %7s %7s %11s %13s %10s", "alg", "size", "threads", "msgs/s", "msgs/s/core",
	       "ms/msg");
	if (threads > 1)
		printf(" %8s", "speedup");
	printf("\n");
	for (size_t si = 0; si < nsizes; si++) {
		size_t len;
		char *msg = make_message(sizes[si], &len);
		for (size_t ci = 0; ci < sizeof cells / sizeof cells[0]; ci++) {
			const struct cell *c = &cells[ci];
			struct result one, many;
			if (only != NULL && strcmp(only, c->name) != 0)
				continue;
			if (c->signer == NULL) {
				printf("%-9s %6zuK  (libopendkim takes no Ed25519 key as DER)\n",
				       c->name, sizes[si] / 1024);
				continue;
			}
			check_cell(c, msg, len); /* also warms up */
			one = measure(c, msg, len, n, 1);
			printf("%-9s %6zuK %7d %11.1f %13.1f %10.3f", c->name, sizes[si] / 1024, 1,
			       one.msgs / one.wall, one.msgs / one.cpu, one.cpu * 1e3 / one.msgs);
			if (threads > 1)
				printf(" %8s", "1.00");
			printf("\n");
			if (threads > 1) {
				many = measure(c, msg, len, n, threads);
				printf("%-9s %6zuK %7d %11.1f %13.1f %10.3f %8.2f\n", c->name,
				       sizes[si] / 1024, threads, many.msgs / many.wall,
				       many.msgs / many.cpu, many.cpu * 1e3 / many.msgs,
				       (many.msgs / many.wall) / (one.msgs / one.wall));
			}
		}
		free(msg);
	}
	printf(
	    "\nmsgs/s: wall-clock rate; msgs/s/core: messages per CPU-second; ms/msg: CPU time per "
	    "message\n(dual = two signatures per message)\n");
	for (size_t ci = 0; ci < sizeof cells / sizeof cells[0]; ci++)
		mxdkim_signer_free(cells[ci].signer);
	return 0;
}
