/*
 * ctlsock: the client side of mxrelayd's unix sockets (control and
 * submit): connect, send the request, read the one JSON reply until the
 * daemon closes. Shared by mxrelayctl queue and mxrelay-sendmail.
 */
#ifndef MXRELAY_TOOLS_CTLSOCK_H
#define MXRELAY_TOOLS_CTLSOCK_H

#include <stddef.h>

#define CTLSOCK_TIMEOUT 60             /* seconds without progress before giving up */
#define CTLSOCK_REPLY_MAX (256u << 20) /* a reply larger than this is refused */

/* Connected fd, or -1 with errno (ENOENT / ECONNREFUSED: nothing listens). */
int ctlsock_connect(const char *path);

/* Write all n bytes. 0 / -1 with errno. */
int ctlsock_send(int fd, const void *buf, size_t n);

/*
 * Read until the daemon closes (at most CTLSOCK_REPLY_MAX bytes). malloc'd,
 * NUL-terminated, *len without the NUL; NULL with errno on failure.
 */
char *ctlsock_read_all(int fd, size_t *len);

struct json;

/* What ctlsock_ask ran into. */
enum ctlsock_status {
	CTLSOCK_OK = 0,
	CTLSOCK_DOWN,    /* nothing listens (ENOENT / ECONNREFUSED): mxrelayd is not running */
	CTLSOCK_DENIED,  /* EACCES: not root nor in the socket's group */
	CTLSOCK_IO,      /* connect, send or read failed otherwise */
	CTLSOCK_BADJSON, /* the reply is not JSON (or empty) */
};

/*
 * One request on the socket at path, its parsed reply in *doc (and the raw
 * text in *raw, malloc'd, when raw is not NULL). On failure err says why:
 * "PATH: strerror" for DOWN / DENIED / IO (the caller names the socket),
 * "unreadable reply from mxrelayd (...)" for BADJSON; errno is kept.
 */
enum ctlsock_status ctlsock_ask(const char *path, const char *line, size_t n, struct json **doc,
                                char **raw, char *err, size_t errlen);

#endif
