/*
 * A poll() loop driving a dns handle through its public API only (sock_cb,
 * dns_process, dns_timeouts, dns_next_timeout), result captures for the
 * TLSA, TXT and address lookups, and what starting a peer on 127.0.0.1
 * needs (a free port, its files). Shared by the dns/ unit tests
 * (header-only: each test is one program). Include after <cmocka.h>,
 * "dns/dns.h" and "dns/dns_int.h".
 */
#ifndef MXRELAY_DNSLOOP_H
#define MXRELAY_DNSLOOP_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct tu_loop {
	struct pollfd fds[32];
	int n;
	int extra_fd; /* polled too, handed to extra() when readable; -1: none */
	void (*extra)(int fd);
};

static inline void
tu_loop_sock(void *arg, int fd, bool readable, bool writable)
{
	struct tu_loop *L = arg;
	int i;

	for (i = 0; i < L->n && L->fds[i].fd != fd; i++)
		;
	if (!readable && !writable) {
		if (i < L->n)
			L->fds[i] = L->fds[--L->n];
		return;
	}
	if (i == L->n) {
		assert_true(L->n < 31);
		L->n++;
	}
	L->fds[i].fd = fd;
	L->fds[i].events = (short)((readable ? POLLIN : 0) | (writable ? POLLOUT : 0));
}

static inline int64_t
tu_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Drive d until *count reaches want or max_ms passes. */
static inline void
tu_run(struct dns *d, struct tu_loop *L, const int *count, int want, int max_ms)
{
	int64_t end = tu_now_ms() + max_ms;

	while (*count < want && tu_now_ms() < end) {
		struct pollfd fds[32];
		int n = L->n, t = dns_next_timeout(d), left = (int)(end - tu_now_ms()), r;
		memcpy(fds, L->fds, sizeof fds);
		if (L->extra_fd >= 0)
			fds[n++] = (struct pollfd){.fd = L->extra_fd, .events = POLLIN};
		r = poll(fds, (nfds_t)n, t < 0 || t > left ? left : t);
		if (r <= 0) {
			dns_timeouts(d);
			continue;
		}
		for (int i = 0; i < n; i++) {
			if (!fds[i].revents)
				continue;
			if (fds[i].fd == L->extra_fd)
				L->extra(fds[i].fd);
			else
				dns_process(d, fds[i].fd,
				            fds[i].revents & (POLLIN | POLLERR | POLLHUP),
				            fds[i].revents & POLLOUT);
		}
	}
}

static inline struct dns *
tu_dns_new(struct tu_loop *L, const struct dns_opts *o)
{
	char err[256] = "";
	struct dns *d;

	memset(L, 0, sizeof *L);
	L->extra_fd = -1;
	d = dns_new(o, tu_loop_sock, NULL, L, err, sizeof err);
	if (d == NULL)
		fail_msg("dns_new: %s", err);
	return d;
}

/* A port free for both UDP and TCP on 127.0.0.1 right now; -1: none found. */
static inline int
tu_free_port(void)
{
	for (int tries = 0; tries < 50; tries++) {
		struct sockaddr_in sa = {.sin_family = AF_INET};
		socklen_t len = sizeof sa;
		int u = socket(AF_INET, SOCK_DGRAM, 0), t = socket(AF_INET, SOCK_STREAM, 0),
		    port = 0;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (bind(u, (struct sockaddr *)&sa, sizeof sa) == 0 &&
		    getsockname(u, (struct sockaddr *)&sa, &len) == 0 &&
		    bind(t, (struct sockaddr *)&sa, sizeof sa) == 0)
			port = ntohs(sa.sin_port);
		close(u);
		close(t);
		if (port)
			return port;
	}
	return -1;
}

/* Write text to dir/name (a peer's zone or configuration), failing the test on error. */
static inline void
tu_write_file(const char *dir, const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/*
 * One SOA query for name over UDP to 127.0.0.1:port, with RD and AD set
 * when ad (RFC 6840 5.7: ask a validator for the AD bit): byte 3 of the
 * answer's header (RA, AD, CD, RCODE), or -1 when none came in wait_ms.
 * Tells when a peer started by a test is up.
 */
static inline int
tu_soa_probe(int port, const char *name, bool ad, int wait_ms)
{
	unsigned char *q = NULL, buf[1024];
	int qlen = 0, r = -1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct pollfd p;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (ares_create_query(name, 1, DNS_T_SOA, 4242, ad, &q, &qlen, 0) != ARES_SUCCESS)
		return -1;
	if (ad)
		q[3] |= DNS_HDR_AD;
	p.fd = socket(AF_INET, SOCK_DGRAM, 0);
	p.events = POLLIN;
	if (sendto(p.fd, q, (size_t)qlen, 0, (struct sockaddr *)&sa, sizeof sa) == qlen &&
	    poll(&p, 1, wait_ms) == 1 && recv(p.fd, buf, sizeof buf, 0) >= 12)
		r = buf[3];
	close(p.fd);
	ares_free_string(q);
	return r;
}

/* What a TLSA, TXT or address callback saw, copied out. */
struct tu_cap {
	int fired;
	enum dns_status status;
	bool secure;
	char reason[256];
	size_t n;
	struct {
		unsigned usage, selector, mtype;
		unsigned char data[64];
		size_t len;
	} tlsa[8];
	char txt[8][512];
	struct dns_target t[16];
	bool mx_secure, implicit;
};

/* Count a callback and copy what every result has; returns the cap. */
static inline struct tu_cap *
tu_cap_fired(void *arg, enum dns_status status, bool secure, const char *reason, size_t n)
{
	struct tu_cap *c = arg;

	c->fired++;
	c->status = status;
	c->secure = secure;
	snprintf(c->reason, sizeof c->reason, "%s", reason);
	c->n = n;
	return c;
}

static inline void
tu_on_tlsa(void *arg, const struct dns_tlsa_result *res)
{
	struct tu_cap *c = tu_cap_fired(arg, res->status, res->secure, res->reason, res->n);

	for (size_t i = 0; i < res->n && i < 8; i++) {
		c->tlsa[i].usage = res->recs[i].usage;
		c->tlsa[i].selector = res->recs[i].selector;
		c->tlsa[i].mtype = res->recs[i].mtype;
		c->tlsa[i].len = res->recs[i].len;
		memcpy(c->tlsa[i].data, res->recs[i].data,
		       res->recs[i].len < 64 ? res->recs[i].len : 64);
	}
}

static inline void
tu_on_txt(void *arg, const struct dns_txt_result *res)
{
	struct tu_cap *c = tu_cap_fired(arg, res->status, res->secure, res->reason, res->n);

	for (size_t i = 0; i < res->n && i < 8; i++) {
		assert_int_equal(res->txt[i].data[res->txt[i].len], '\0');
		snprintf(c->txt[i], sizeof c->txt[i], "%s", res->txt[i].data);
	}
}

static inline void
tu_on_mx(void *arg, const struct dns_mx_result *res)
{
	struct tu_cap *c = arg;

	c->fired++;
	c->status = res->status;
	snprintf(c->reason, sizeof c->reason, "%s", res->reason);
	c->n = res->ntargets;
	c->mx_secure = res->mx_secure;
	c->implicit = res->implicit;
	for (size_t i = 0; i < res->ntargets && i < 16; i++)
		c->t[i] = res->targets[i];
}

/* Start a lookup with a fresh cap, check it did not call back yet, run it to the end. */
#define TU_RESOLVE(d, L, c, call)                                                                  \
	do {                                                                                       \
		memset((c), 0, sizeof *(c));                                                       \
		assert_non_null(call);                                                             \
		assert_int_equal((c)->fired, 0);                                                   \
		tu_run((d), (L), &(c)->fired, 1, 5000);                                            \
		assert_int_equal((c)->fired, 1);                                                   \
	} while (0)

#endif
