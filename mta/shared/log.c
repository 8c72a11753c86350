/* log: key=value lines to stderr, syslog or a file (see log.h). */
#include "mta/shared/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static int use_syslog;
static int debug_on;
static int journal;      /* stderr is journald's stream: "<N>" prefixes, no stamp */
static int file_fd = -1; /* log = FILE: one write(2) per line, O_APPEND */
static char file_path[4096];
static const char *log_ident = "mxrelayd";

static const char *const level_name[] = {"err", "warn", "info", "debug"};
/* syslog's priorities are sd-daemon(3)'s SD_ERR, SD_WARNING, SD_INFO, SD_DEBUG */
static const int level_prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};

/*
 * systemd.exec(5): JOURNAL_STREAM is "DEV:INODE" of the stream journald
 * reads. It is inherited by children whose stderr went elsewhere, so it
 * only counts when it names our stderr.
 */
int
log_stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2 ||
	    fstat(STDERR_FILENO, &st) != 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

/*
 * The log file, appended to. Created 0640 whatever the umask (group adm
 * habits: readers in the file's group); an existing one loses any access
 * for others, as lines name senders and recipients. -1 with errno.
 */
static int
open_file(const char *path)
{
	struct stat st;
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0640);

	if (fd >= 0) {
		fchmod(fd, 0640); /* the umask may have taken more */
		return fd;
	}
	if (errno != EEXIST)
		return -1;
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -1;
	int e = 0;
	if (fstat(fd, &st) != 0)
		e = errno;
	else if (!S_ISREG(st.st_mode))
		e = EINVAL;
	else if ((st.st_mode & 07) != 0 && fchmod(fd, st.st_mode & 0770) != 0)
		e = errno;
	if (e == 0)
		return fd;
	close(fd);
	errno = e;
	return -1;
}

int
log_init(const char *ident, const char *target)
{
	log_ident = ident;
	use_syslog = target != NULL && strcmp(target, "syslog") == 0;
	if (use_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	journal = log_stderr_is_journal();
	if (target == NULL || target[0] != '/')
		return 0;
	if (strlen(target) >= sizeof(file_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	file_fd = open_file(target);
	if (file_fd < 0)
		return -1;
	memcpy(file_path, target, strlen(target) + 1); /* length checked above */
	return 0;
}

int
log_to_stderr(void)
{
	return !use_syslog && file_fd < 0;
}

const char *
log_file(void)
{
	return file_fd >= 0 ? file_path : NULL;
}

int
log_file_chown(uid_t uid, gid_t gid)
{
	return file_fd >= 0 ? fchown(file_fd, uid, gid) : 0;
}

/*
 * dup2 puts the new file under the same descriptor in one step: a thread
 * writing a line at that moment writes it whole to the old file or the new.
 */
int
log_reopen(void)
{
	int fd;

	if (file_fd < 0)
		return 0;
	fd = open_file(file_path);
	if (fd < 0)
		return -1;
	if (dup2(fd, file_fd) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	close(fd);
	return 0;
}

void
log_set_debug(int on)
{
	debug_on = on;
}

/* One line to the file: a single write, so lines from threads never interleave. */
static void
file_line(const char *stamp, long ms, enum log_level lvl, const char *line)
{
	char buf[2300];
	int n = snprintf(buf, sizeof(buf), "%s.%03ldZ %s[%d]: level=%s %s\n", stamp, ms, log_ident,
	                 (int)getpid(), level_name[lvl], line);

	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf)) {
		n = (int)sizeof(buf) - 1;
		buf[n - 1] = '\n';
	}
	if (write(file_fd, buf, (size_t)n) < 0) {
		/* nowhere better to say it: the log itself failed */
	}
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
	if (journal && file_fd < 0) {
		/* journald reads the priority from "<N>" and stamps the line itself */
		fprintf(stderr, "<%d>level=%s %s\n", level_prio[lvl], level_name[lvl], line);
		return;
	}
	struct timespec ts;
	struct tm tm;
	char stamp[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	if (file_fd >= 0) {
		file_line(stamp, ts.tv_nsec / 1000000, lvl, line);
		return;
	}
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
