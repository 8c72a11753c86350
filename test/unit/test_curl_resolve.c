/*
 * What mta/delivery/https.c relies on in libcurl's multi DNS cache:
 * a CURLOPT_RESOLVE entry without '+' stays in the multi handle's cache
 * after its transfer (so without a withdrawal one entry per host piles up),
 * and "-HOST:PORT" in a later handle's list withdraws it. Real libcurl,
 * plain HTTP to a closed port on 127.0.0.1: a host curl finds in its cache
 * gives "couldn't connect"; a withdrawn one goes to curl's own resolver,
 * which cannot answer for .invalid (RFC 6761 6.4): "couldn't resolve", or
 * a timeout where no resolver answers at all. The test runs in a network
 * namespace of its own (root, as the integration tests), so curl's resolver
 * never sends a query off this machine: it has only loopback.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* A network namespace with only lo, up: nothing the test does leaves the machine. */
static int
own_netns(void)
{
	struct ifreq ifr = {0};
	int fd, rc;

	if (unshare(CLONE_NEWNET) != 0) {
		fprintf(stderr, "test_curl_resolve: unshare(CLONE_NEWNET): %s (run as root)\n",
		        strerror(errno));
		return -1;
	}
	if ((fd = socket(AF_INET, SOCK_DGRAM, 0)) < 0)
		return -1;
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
	rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
	ifr.ifr_flags |= IFF_UP;
	if (rc == 0)
		rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
	close(fd);
	return rc;
}

/* A bound, not listening, TCP port on 127.0.0.1: connecting is refused at once. */
static int
closed_port(int *fd)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;

	*fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(*fd >= 0);
	assert_int_equal(bind(*fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(getsockname(*fd, (struct sockaddr *)&a, &len), 0);
	return ntohs(a.sin_port);
}

/* One transfer for host on m; resolve: CURLOPT_RESOLVE lines, NULL-terminated. */
static CURLcode
transfer(CURLM *m, const char *host, int port, const char *const *resolve)
{
	CURL *e = curl_easy_init();
	struct curl_slist *l = NULL;
	char url[128];
	int running = 1, left;
	CURLMsg *msg;
	CURLcode rc = CURLE_OK;

	for (; resolve && *resolve; resolve++)
		l = curl_slist_append(l, *resolve);
	snprintf(url, sizeof url, "http://%s:%d/", host, port);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_RESOLVE, l);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
	assert_int_equal(curl_multi_add_handle(m, e), CURLM_OK);
	while (running) {
		assert_int_equal(curl_multi_perform(m, &running), CURLM_OK);
		if (running)
			curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	while ((msg = curl_multi_info_read(m, &left)) != NULL)
		if (msg->msg == CURLMSG_DONE)
			rc = msg->data.result;
	curl_multi_remove_handle(m, e);
	curl_easy_cleanup(e);
	curl_slist_free_all(l);
	return rc;
}

static void
test_entry_stays_until_withdrawn(void **state)
{
	int fd, port = closed_port(&fd);
	char x[128], y[128], minus_x[128];
	CURLM *m;

	(void)state;
	snprintf(x, sizeof x, "x.mxrelay.invalid:%d:127.0.0.1", port);
	snprintf(y, sizeof y, "y.mxrelay.invalid:%d:127.0.0.1", port);
	snprintf(minus_x, sizeof minus_x, "-x.mxrelay.invalid:%d", port);
	assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
	m = curl_multi_init();
	/* x with its entry, then x without one: found in the cache */
	assert_int_equal(transfer(m, "x.mxrelay.invalid", port, (const char *[]){x, NULL}),
	                 CURLE_COULDNT_CONNECT);
	assert_int_equal(transfer(m, "x.mxrelay.invalid", port, NULL), CURLE_COULDNT_CONNECT);
	/* y's transfer carries x's withdrawal first, as https.c's lists do */
	assert_int_equal(transfer(m, "y.mxrelay.invalid", port, (const char *[]){minus_x, y, NULL}),
	                 CURLE_COULDNT_CONNECT);
	/* x is gone from the cache; y (not withdrawn) is still there */
	assert_int_not_equal(transfer(m, "x.mxrelay.invalid", port, NULL), CURLE_COULDNT_CONNECT);
	assert_int_equal(transfer(m, "y.mxrelay.invalid", port, NULL), CURLE_COULDNT_CONNECT);
	curl_multi_cleanup(m);
	curl_global_cleanup();
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_entry_stays_until_withdrawn),
	};

	if (own_netns() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
