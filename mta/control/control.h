/*
 * ctl: the daemon's two unix sockets for local programs.
 *
 *   control_socket (mode 0660, group mxrelay or the daemon's group):
 *     mxrelayctl queue ... (list, show, summary, flush, hold, release,
 *     delete, bounce), INFO, RELOAD (mxrelayctl reload: main.c's reload
 *     through srv->reload, with its outcome) and LOG-REOPEN.
 *   submit_socket (mode 0666): INFO and SUBMIT only, for mxrelay-sendmail:
 *     any local user may send mail, as with any sendmail; the sender's uid
 *     (SO_PEERCRED) goes into the Received header and the log.
 *
 * Protocol: one request per connection, a text line "VERB [ARG...]\n" (at
 * most CTL_LINE_MAX octets; SUBMIT is followed by its envelope and body,
 * see submit.c), answered by ONE JSON document and a newline, then close.
 * Failures are {"error": "text"} (with "code": "5.x.y reply" for SUBMIT).
 *
 * Never blocks the loop: sockets are non-blocking (bufferevents), spool
 * reads run on a worker with the worker's own handle (reader.h), spool
 * changes go through the writer thread (WRITER_FN / WRITER_APPLY), and the
 * scheduler is told on the loop once the change is durable.
 */
#ifndef MXRELAY_CTL_H
#define MXRELAY_CTL_H

#include <stddef.h>
#include <stdio.h>

struct server;
struct ctl;
struct config;
struct dkimsign;

/*
 * Create both sockets (after privileges are dropped: the files belong to
 * the daemon user), removing stale socket files first; refuses when another
 * daemon answers on one. Needs srv->async, srv->writer and srv->deliver.
 * NULL with err.
 */
struct ctl *ctl_open(struct server *srv, char *err, size_t errlen);

/* Local submissions not yet answered and a TLS-RPT run under way: the drain waits for them. */
unsigned ctl_busy(const struct ctl *c);

/*
 * The domain a bounce digest to owner is sent from (MAILER-DAEMON@it): the
 * hostname when it has a dkim_key, else the owner's own domain when that
 * has one (so the digest is signed and aligned where it is read), else the
 * hostname (unsigned). Points into c or owner.
 */
const char *bdigest_from_domain(const struct config *c, const struct dkimsign *dk,
                                const char *owner);

/*
 * With dkim_unsigned = refuse, the digests that can never be signed are
 * refused by intake: said once per such owner, on fp (-n) or in the log
 * (start-up, reload).
 */
void bdigest_warn_unsigned(const struct config *c, const struct dkimsign *dk, FILE *fp);

/*
 * Close every connection and unlink the socket files. Call after
 * writer_free and async_free (their completions still reach connections).
 */
void ctl_free(struct ctl *c);

#endif
