/* ctlsock: client side of mxrelayd's unix sockets (see ctlsock.h). */
#include "tools/ctlsock.h"
#include "tools/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

int
ctlsock_connect(const char *path)
{
	struct sockaddr_un sun;
	struct timeval tv = {CTLSOCK_TIMEOUT, 0};
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int
ctlsock_send(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

char *
ctlsock_read_all(int fd, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);

	if (buf == NULL)
		return NULL;
	for (;;) {
		ssize_t r;
		if (n + 1 >= cap) {
			char *nb;
			if (cap >= CTLSOCK_REPLY_MAX) {
				free(buf);
				errno = EMSGSIZE;
				return NULL;
			}
			if ((nb = realloc(buf, cap * 2)) == NULL) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
		r = recv(fd, buf + n, cap - n - 1, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			errno = e == EAGAIN ? ETIMEDOUT : e;
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* fd's connect error as a status, with "PATH: strerror" in err. */
static enum ctlsock_status
io_failed(const char *path, char *err, size_t errlen)
{
	int e = errno;

	snprintf(err, errlen, "%s: %s", path, strerror(e));
	errno = e;
	if (e == ENOENT || e == ECONNREFUSED)
		return CTLSOCK_DOWN;
	return e == EACCES ? CTLSOCK_DENIED : CTLSOCK_IO;
}

enum ctlsock_status
ctlsock_ask(const char *path, const char *line, size_t n, struct json **doc, char **raw,
            char *err, size_t errlen)
{
	char perr[128], *text;
	size_t len;
	int fd = ctlsock_connect(path);

	*doc = NULL;
	if (fd < 0)
		return io_failed(path, err, errlen);
	if (ctlsock_send(fd, line, n) != 0 || (text = ctlsock_read_all(fd, &len)) == NULL) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		close(fd);
		errno = e;
		return CTLSOCK_IO;
	}
	close(fd);
	*doc = json_parse(text, len, perr, sizeof(perr));
	if (*doc == NULL)
		snprintf(err, errlen, "unreadable reply from mxrelayd (%s)",
		         len ? perr : "it closed without an answer");
	if (raw != NULL && *doc != NULL)
		*raw = text;
	else
		free(text);
	return *doc != NULL ? CTLSOCK_OK : CTLSOCK_BADJSON;
}
