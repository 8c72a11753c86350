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

#endif
