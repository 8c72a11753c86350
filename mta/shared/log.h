/*
 * log: one line per event, key=value, to stderr or syslog.
 * Callers put the session or queue id first ("s=... event=...") so one grep
 * follows a message. Values that come from the network must go through
 * log_sanitize first: no CR, LF or control bytes reach the log.
 */
#ifndef MXRELAY_LOG_H
#define MXRELAY_LOG_H

#include <stddef.h>
#include <string.h>

enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* target: "stderr" or "syslog". ident is kept (not copied). */
void log_init(const char *ident, const char *target);
void log_set_debug(int on);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

/*
 * Copy at most outlen-1 bytes of s (len bytes) into out, replacing control
 * bytes, '"' and '\\' with '?', and truncating with "..." so a hostile
 * value cannot forge log lines. Returns out.
 */
char *log_sanitize(char *out, size_t outlen, const char *s, size_t len);

/* log_sanitize of a whole string, into a 300-byte buffer the caller provides. */
#define LOG_Q(buf, str) log_sanitize((buf), sizeof(buf), (str), strlen(str))

#endif
