/*
 * notify: the service manager's readiness protocol (sd_notify(3) through
 * libsystemd; systemd.service(5) Type=notify). READY=1 once the listeners
 * are bound, the spool is open and privileges are dropped; RELOADING=1
 * (with MONOTONIC_USEC, which systemd 253 and later want with it and 252
 * ignores) then READY=1 around a reload; STOPPING=1 when the drain starts;
 * STATUS= a line `systemctl status` shows.
 *
 * Without NOTIFY_SOCKET in the environment every call does nothing (not
 * under systemd, or Type=simple). Loop thread only. Never fails the
 * caller: a message that cannot be sent is logged once.
 */
#ifndef MXRELAY_NOTIFY_H
#define MXRELAY_NOTIFY_H

#include <stdbool.h>

/* NOTIFY_SOCKET is set: the service manager listens. */
bool notify_enabled(void);

/* READY=1 with STATUS=status (status may be NULL). */
void notify_ready(const char *status);

/* RELOADING=1, MONOTONIC_USEC=now, STATUS=reloading. READY=1 ends it. */
void notify_reloading(void);

/* STOPPING=1 with STATUS=status. */
void notify_stopping(const char *status);

/* STATUS=status alone. */
void notify_status(const char *status);

#endif
