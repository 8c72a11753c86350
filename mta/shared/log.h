/*
 * log: one line per event, key=value, to stderr, syslog or a file.
 * Callers put the session or queue id first ("s=... event=...") so one grep
 * follows a message. Values that come from the network must go through
 * log_sanitize first: no CR, LF or control bytes reach the log.
 */
#ifndef MXRELAY_LOG_H
#define MXRELAY_LOG_H

#include <stddef.h>
#include <string.h>
#include <sys/types.h>

enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/*
 * target: "stderr", "syslog" (facility mail) or an absolute path (appended
 * to; created 0640, access for others removed). ident is kept (not copied).
 * When stderr is journald's stream (JOURNAL_STREAM, systemd.exec(5)) each
 * line starts with its priority, "<3>" .. "<7>" (sd-daemon(3)), and no
 * time stamp. 0, or -1 with errno when the file cannot be opened (the log
 * then goes to stderr).
 */
int log_init(const char *ident, const char *target);
/* 1 when stderr is journald's stream (see log_init), else 0. */
int log_stderr_is_journal(void);
/* 1 when log lines go to stderr (neither syslog nor a file), else 0. */
int log_to_stderr(void);
/* The log file's path, NULL unless log = FILE. */
const char *log_file(void);
/* Hand the log file to the account a root start drops to. 0 / -1 with errno. */
int log_file_chown(uid_t uid, gid_t gid);
/*
 * Reopen the log file by its path (after logrotate renamed it; SIGUSR1,
 * a reload, mxrelayctl log-reopen): any thread may be logging meanwhile.
 * 0 (also without a file), or -1 with errno and the old file kept.
 */
int log_reopen(void);
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
