/* log: key=value lines to stderr or syslog (see log.h). */
#include "mta/shared/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static int use_syslog;
static int debug_on;
static const char *log_ident = "mxrelayd";

static const char *const level_name[] = {"err", "warn", "info", "debug"};
static const int level_prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};

void
log_init(const char *ident, const char *target)
{
	log_ident = ident;
	use_syslog = target != NULL && strcmp(target, "syslog") == 0;
	if (use_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
log_set_debug(int on)
{
	debug_on = on;
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	char line[2048];
	va_list ap;

	if (lvl == LOG_LVL_DEBUG && !debug_on)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (use_syslog) {
		syslog(level_prio[lvl], "level=%s %s", level_name[lvl], line);
		return;
	}
	struct timespec ts;
	struct tm tm;
	char stamp[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	/* one fprintf per line: stdio locks the stream, lines from threads don't interleave */
	fprintf(stderr, "%s.%03ldZ %s[%d]: level=%s %s\n", stamp, ts.tv_nsec / 1000000, log_ident,
		(int)getpid(), level_name[lvl], line);
}

char *
log_sanitize(char *out, size_t outlen, const char *s, size_t len)
{
	size_t i, o = 0;

	if (outlen == 0)
		return out;
	for (i = 0; i < len && o + 1 < outlen; i++) {
		unsigned char c = (unsigned char)s[i];
		out[o++] = (c < 0x20 || c == 0x7f || c == '"' || c == '\\') ? '?' : (char)c;
	}
	if (i < len && outlen > 4) {
		o = o > outlen - 4 ? outlen - 4 : o;
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}
