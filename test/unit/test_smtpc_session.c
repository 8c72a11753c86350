/*
 * Unit tests for the SMTP client session (mta/delivery/smtpc.c) around TLS,
 * with real sockets and real handshakes: a one-session SMTP server in a
 * child process (blocking OpenSSL, a self-signed certificate for another
 * name) and smtpc on a libevent loop. Checks that report_only (MTA-STS
 * testing) never lets a VERIFY or DANE session send EHLO again over an
 * unverified TLS session, and that smtpc_connect failing before a
 * connection exists frees what it copied (the TLSA records).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <event2/event.h>
#include <malloc.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mta/delivery/smtpc.h"
#include "mta/delivery/smtpc_tls.h"
#include "mta/shared/config.h"
#include "tlsfx.h"

/* A self-signed leaf for other.example.test: never verified for mx.example.test. */
static void
server_make(struct tu_server *s)
{
	s->key = EVP_EC_gen("P-256");
	s->cert = tu_make_cert(s->key, "other.example.test", NULL, false, -1, 1, NULL, NULL);
}

/* The session's configuration: our name, ctx and r, 5 s for every timeout. */
static struct smtpc_conf
sconf_make(SSL_CTX *ctx, const struct tls_req *r)
{
	return (struct smtpc_conf){.helo = "relay.example.test",
	                           .tls = ctx,
	                           .req = r,
	                           .t_connect = 5,
	                           .t_banner = 5,
	                           .t_cmd = 5,
	                           .t_data = 5,
	                           .t_block = 5,
	                           .t_dot = 5};
}

/* 3 1 1 of a key nobody has: a DANE-EE record that matches nothing. */
static unsigned char other_digest[32] = {0x42};
static struct tls_tlsa other_key = {
    .usage = 3, .selector = 1, .mtype = 1, .len = 32, .data = other_digest};

/*
 * A blocking SMTP server for one session in a child process: 220, STARTTLS
 * offered and accepted, the handshake with s, then 250 to an EHLO over TLS.
 * Exits 2 when that second EHLO came, 0 when the client hung up without it.
 */
static void
serve_one(int lfd, struct tu_server *s)
{
	SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
	char buf[512];
	int fd;
	SSL *ssl;

	alarm(10);
	signal(SIGPIPE, SIG_IGN); /* the client may hang up while a TLS 1.3 ticket goes out */
	fd = accept(lfd, NULL, NULL);
	SSL_CTX_use_certificate(sctx, s->cert);
	SSL_CTX_use_PrivateKey(sctx, s->key);
	static const char *const say[] = {"220 sink ESMTP\r\n", "250-sink\r\n250 STARTTLS\r\n",
	                                  "220 go ahead\r\n"};
	for (size_t i = 0; i < 3; i++) { /* the greeting, then one reply per command line */
		if (i > 0 && recv(fd, buf, sizeof(buf), 0) <= 0)
			_exit(1);
		if (write(fd, say[i], strlen(say[i])) < 0)
			_exit(1);
	}
	ssl = SSL_new(sctx);
	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) != 1)
		_exit(1);
	int n = SSL_read(ssl, buf, sizeof(buf) - 1);
	if (n <= 0 || strncmp(buf, "EHLO ", 5) != 0)
		_exit(0);
	SSL_write(ssl, "250 sink\r\n", 10);
	while (SSL_read(ssl, buf, sizeof(buf)) > 0)
		;
	_exit(2);
}

struct sess {
	bool ready;
	enum smtpc_stage stage;
};

static void
s_ready(struct smtpc *c, void *arg)
{
	struct sess *x = arg;

	x->ready = true;
	smtpc_free(c); /* the loop ends when its last event is gone */
}

static void
s_fail(struct smtpc *c, void *arg, enum smtpc_stage stage, const struct smtpc_reply *why)
{
	struct sess *x = arg;

	printf("    fail stage=%d why=\"%s\"\n", (int)stage, why->text);
	x->stage = stage;
	smtpc_free(c); /* the loop ends when its last event is gone */
}

/*
 * A whole smtpc session: report_only (MTA-STS testing) never lets a VERIFY
 * or DANE session go on with an unverified certificate; at MAY it only
 * reports. (level, report_only, leaf, TLSA) -> ready, or the failed stage,
 * and whether EHLO was sent again over TLS.
 */
static void
test_session_report_only(void **state)
{
	static const struct {
		const char *label;
		enum tls_req_level level;
		bool report_only;
		bool dane_mismatch;
		bool ready, ehlo2;
	} cases[] = {
	    {"may, report_only, unverified: goes on", TLSR_MAY, true, false, true, true},
	    {"verify, unverified: refused", TLSR_VERIFY, false, false, false, false},
	    {"verify, report_only, unverified: refused", TLSR_VERIFY, true, false, false, false},
	    {"dane, report_only, no match: refused", TLSR_DANE, true, true, false, false},
	};
	struct config cfg = {.path = "mxrelay.conf"}; /* the system's trust store */
	char err[512];
	SSL_CTX *ctx;
	int bad = 0;

	(void)state;
	ctx = smtpc_tls_ctx_new(&cfg, err, sizeof(err));
	assert_non_null(ctx);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sockaddr_in sa = {.sin_family = AF_INET,
		                         .sin_addr.s_addr = htonl(0x7f000001)};
		socklen_t salen = sizeof(sa);
		struct event_base *base = event_base_new();
		struct sess x = {.stage = -1};
		struct smtpc_cbs cbs = {.ready = s_ready, .fail = s_fail};
		struct tu_server s;
		struct tls_req r;
		int lfd = socket(AF_INET, SOCK_STREAM, 0), status;
		server_make(&s);
		tu_req_make(&r, cases[i].level, cases[i].report_only);
		if (cases[i].dane_mismatch) {
			r.tlsa = &other_key; /* the test's own: never tls_req_clear'd */
			r.ntlsa = 1;
		}
		struct smtpc_conf sc = sconf_make(ctx, &r);
		assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		assert_int_equal(listen(lfd, 1), 0);
		getsockname(lfd, (struct sockaddr *)&sa, &salen);
		fflush(NULL);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			serve_one(lfd, &s);
		close(lfd);
		assert_non_null(smtpc_connect(base, &sc, "mx.example.test", (struct sockaddr *)&sa,
		                              salen, &cbs, &x));
		event_base_dispatch(base); /* ends when the session is freed */
		assert_int_equal(waitpid(pid, &status, 0), pid);
		bool ehlo2 = WIFEXITED(status) && WEXITSTATUS(status) == 2;
		bool ok = x.ready == cases[i].ready && ehlo2 == cases[i].ehlo2 &&
		          (cases[i].ready || x.stage == SMTPC_TLS_VERIFY);
		printf("  %-45s ready=%d stage=%d ehlo2=%d%s\n", cases[i].label, x.ready,
		       (int)x.stage, ehlo2, ok ? "" : "  <-- WRONG");
		bad += !ok;
		event_base_free(base);
		tu_server_free(&s);
	}
	assert_int_equal(bad, 0);
	SSL_CTX_free(ctx);
}

/*
 * smtpc_connect failing before a connection exists (the source address is
 * not ours) frees all it copied, the TLSA records included. mallinfo2 sees
 * the leak in a normal build; LeakSanitizer in a sanitized one.
 */
static void
test_connect_failure_frees_request(void **state)
{
	struct sockaddr_in src = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0xc0000201)};
	struct sockaddr_in dst = {
	    .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001), .sin_port = htons(9)};
	struct event_base *base = event_base_new();
	struct smtpc_cbs cbs = {.ready = s_ready, .fail = s_fail};
	static unsigned char d[4096];
	struct tls_tlsa recs[4];
	struct tls_req r;
	size_t before, after;

	(void)state;
	tu_req_make(&r, TLSR_DANE, false);
	for (size_t i = 0; i < 4; i++)
		recs[i] = (struct tls_tlsa){
		    .usage = 3, .selector = 1, .mtype = 0, .len = sizeof(d), .data = d};
	r.tlsa = recs;
	r.ntlsa = 4;
	struct smtpc_conf sc = sconf_make(NULL, &r);
	sc.src = (struct sockaddr *)&src;
	sc.srclen = sizeof(src);
	assert_null(smtpc_connect(base, &sc, "mx.example.test", (struct sockaddr *)&dst,
	                          sizeof(dst), &cbs, NULL));
	before = mallinfo2().uordblks;
	for (int i = 0; i < 50; i++)
		assert_null(smtpc_connect(base, &sc, "mx.example.test", (struct sockaddr *)&dst,
		                          sizeof(dst), &cbs, NULL));
	after = mallinfo2().uordblks;
	printf("  50 failed connects: %zd bytes still allocated\n", (ssize_t)(after - before));
	assert_true(after < before + 50 * 1024); /* a leak: 50 x 4 x 4 KiB */
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_session_report_only),
	    cmocka_unit_test(test_connect_failure_frees_request),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
