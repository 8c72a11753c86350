/*
 * reload: main.c's reload path in a file of its own (like main.c, it may
 * include every role). SIGHUP and the control socket's RELOAD (through
 * srv->reload, server.h) call reload_run; main.c's start-up shares the
 * credentials and TLS-RPT helpers. Loop thread only.
 */
#ifndef MXRELAY_RELOAD_H
#define MXRELAY_RELOAD_H

#include <stddef.h>

struct config;
struct creds;
struct dkimsign;
struct server;

/*
 * Re-read the configuration, the credentials, every DKIM key, the outbound
 * TLS files (tls_ca_file, tls_client_cert/key) and every listener's cert
 * and key; put them in place only when all of them load (sessions already
 * on TLS keep their context). Then reopen the log file. Tells the service
 * manager RELOADING=1, then READY=1 with the outcome in STATUS=. 0, or -1
 * with err (FILE:LINE: KEY: reason, or the listener and the file) and the
 * running daemon unchanged. notes: what the new configuration changes that
 * needs a restart, one per line ("" when nothing), also logged as
 * event=reload note="...".
 */
int reload_run(struct server *srv, char *err, size_t errlen, char *notes, size_t noteslen);

/* The credentials file of c (NULL when c names none), with the sunset warnings. 0 / -1. */
int reload_load_creds(const struct config *c, struct creds **out, char *err, size_t errlen);

/*
 * RFC 8460 3: reports sent by mail must be DKIM-signed, so the report job
 * skips mailto: without a key for tlsrpt_from's domain. The From address
 * (in buf) when that is so, else NULL.
 */
const char *reload_tlsrpt_unsigned_from(const struct config *c, const struct dkimsign *dk,
                                        char *buf, size_t len);
/* The same as a log line: a warning once signing is set up, else info. */
void reload_tlsrpt_warn_unsigned(const struct config *c, const struct dkimsign *dk);

/* "HEAD; accepting on 2 listeners, 3 queued, 0 held, 1 session" (head may be ""). */
void reload_status_line(struct server *srv, const char *head, char *buf, size_t len);

/* A loop timer's callback (arg: the server): STATUS= with the line above. */
void reload_status_tick(void *arg);

#endif
