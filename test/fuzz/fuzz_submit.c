/*
 * libFuzzer target: the submit socket (mode 0666: any local user), i.e. the
 * request line and dispatch of mta/control/control.c, the SUBMIT envelope and DATA
 * framing of mta/control/submit.c and the content rules they feed (content.h). The
 * real sockets from ctl_open in a private directory (in /dev/shm); the input
 * is written by a client as one local user would, then the loop runs until
 * the daemon has answered and closed.
 *   byte 0: 0 writes everything at once, N writes N octets per loop turn
 *           (requests that arrive in pieces);
 *   the rest: the bytes sent, e.g. "SUBMIT\nFROM <a@b>\nTO <c@d>\nDATA 12\n...".
 * dkim_unsigned = refuse and no DKIM key: a message that passes every rule
 * is refused at the last step instead of reaching the spool (a writer thread
 * and a database are not input parsing).
 *
 * Beyond "no crash": the daemon always closes (no hang), and what it says
 * is at most one JSON document on one line, ended by a newline.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mta/shared/config.h"
#include "mta/control/control.h"
#include "mta/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define REPLY_MAX 16384

static struct server srv;
static char dir[64];
static FILE *out; /* our messages: stderr is pointed at /dev/null (see Initialize) */

static void
cleanup(void)
{
	ctl_free(srv.ctl); /* unlinks both sockets */
	rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	char err[512];

	/* every refusal logs a line: keep them out of libFuzzer's output (which
	 * holds its own copy of stderr; sanitizer reports write to fd 2) */
	out = fdopen(dup(2), "w");
	stderr = fopen("/dev/null", "w");
	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof(dir), "%s/fuzz_submit.XXXXXX", base);
	if (out == NULL || stderr == NULL || mkdtemp(dir) == NULL ||
	    config_load(&srv.cfg, NULL, err, sizeof(err)) != 0)
		goto fail;
	free(srv.cfg->control_socket);
	free(srv.cfg->submit_socket);
	srv.cfg->control_socket = malloc(strlen(dir) + 16);
	srv.cfg->submit_socket = malloc(strlen(dir) + 16);
	sprintf(srv.cfg->control_socket, "%s/control.sock", dir);
	sprintf(srv.cfg->submit_socket, "%s/submit.sock", dir);
	srv.cfg->dkim_refuse_unsigned = 1;
	srv.base = event_base_new();
	if (srv.base == NULL || (srv.ctl = ctl_open(&srv, err, sizeof(err))) == NULL)
		goto fail;
	atexit(cleanup);
	return 0;
fail:
	fprintf(out ? out : stdout, "fuzz_submit: setup failed: %s\n", err);
	abort();
}

static int
client(void)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", srv.cfg->submit_socket);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		fprintf(out, "fuzz_submit: connect: %s\n", strerror(errno));
		abort();
	}
	return fd;
}

/* At most one line, a JSON object, ended by a newline. */
static void
check_reply(const char *r, size_t n)
{
	if (n == 0)
		return; /* closed without a request: EOF inside the line or the envelope */
	if (n < 3 || r[0] != '{' || r[n - 2] != '}' || r[n - 1] != '\n' ||
	    memchr(r, '\n', n - 1) != NULL || memchr(r, '\0', n) != NULL) {
		fprintf(out, "fuzz_submit: bad reply: %.*s\n", (int)n, r);
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char reply[REPLY_MAX];
	size_t chunk, off = 0, rlen = 0, turns;
	int fd, shut = 0, eof = 0;
	ssize_t n;

	if (size == 0)
		return 0;
	chunk = data[0] ? data[0] : size;
	data++, size--;
	fd = client();
	for (turns = 0; !eof; turns++) {
		if (turns > size + 1000) {
			fprintf(out, "fuzz_submit: the daemon neither answers nor closes\n");
			abort();
		}
		if (off < size) {
			n = send(fd, data + off, size - off < chunk ? size - off : chunk, MSG_NOSIGNAL);
			if (n > 0)
				off += (size_t)n;
			else if (n < 0 && errno != EAGAIN)
				off = size; /* the daemon has closed: the rest is not read */
		}
		if (off == size && !shut) {
			shutdown(fd, SHUT_WR); /* the daemon sees EOF after the input */
			shut = 1;
		}
		event_base_loop(srv.base, EVLOOP_NONBLOCK);
		while ((n = read(fd, reply + rlen, sizeof(reply) - rlen)) > 0)
			if ((rlen += (size_t)n) == sizeof(reply))
				abort(); /* one short JSON document at most */
		eof = n == 0 || (n < 0 && errno != EAGAIN);
	}
	close(fd);
	check_reply(reply, rlen);
	return 0;
}
