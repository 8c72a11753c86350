/*
 * mxrelay-sendmail's parts, shared by its files:
 *   sendmail.c         the command line and mail read from standard input
 *   sendmail_daemon.c  the daemon's sockets: INFO, SUBMIT, control requests
 *   sendmail_bp.c      -bp (and the name mailq): the queue listing; -q: flush
 *   sendmail_bs.c      -bs: an SMTP session on standard input and output
 *   sendmail_smtp.c    the pure parsers of -bs (sendmail_smtp.h, fuzzed)
 */
#ifndef MXRELAY_TOOLS_SENDMAIL_H
#define MXRELAY_TOOLS_SENDMAIL_H

#include <stddef.h>

struct json;

/* What the running daemon told (INFO) and where its sockets are. */
struct sm_daemon {
	char hostname[256]; /* its hostname: the -bs greeting */
	char domain[256];   /* the domain of bare names: local_sender, else the hostname */
	unsigned long long max_size;
	unsigned max_rcpts;
	unsigned idle; /* seconds of silence -bs allows: the listener's session_timeout */
	char submit_path[4096];
	char control_path[4096];
};

extern struct sm_daemon sm_daemon;
/* The program's name in messages: "mxrelay-sendmail", or "mailq" when called so. */
extern const char *sm_prog;

/* "PROG: text" on stderr and exit(code). */
void sm_die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

/* INFO on the submit socket into sm_daemon; exits (75, 69) when the daemon cannot tell. */
void sm_get_info(void);

/* "root" -> "root@DOMAIN"; anything with an '@' (or "") stays. malloc'd; exits when out of memory.
 */
char *sm_qualify(const char *addr);

/* The outcome of one SUBMIT. */
struct sm_result {
	char qid[40];   /* queued: the queue id */
	char code[32];  /* refused: "550 5.6.0"; "451 4.3.0" when unasked; "" when queued or
	                   when the daemon's error had no code */
	char text[600]; /* refused: why */
};

/*
 * Hand one message to the daemon (submit.c's framing): data is the message
 * with CRLF line ends, dot-stuffed, without the final ".". 0 queued (r->qid),
 * -1 refused (r->code, r->text); a daemon that cannot be reached or answers
 * nonsense reads as "451 4.3.0" with why.
 */
int sm_submit(const char *sender, char *const *rcpts, size_t nrcpts, const char *data, size_t len,
              struct sm_result *r);

/*
 * One request on the control socket (root and the group mxrelay only): its
 * parsed reply, or an exit: 69 when the daemon is not running, 77 when the
 * caller may not use the socket, 75 on a broken answer. A reply that is
 * {"error": ...} is returned as it is.
 */
struct json *sm_control(const char *request);

/* -bp / mailq: print the queue as Postfix's mailq does. Returns the exit status. */
int sm_mailq(void);

/* -q (arg NULL: everything), -qR DOMAIN or -qI QUEUEID: deliver now. Returns the exit status. */
int sm_flush(const char *arg);

/* -bs: SMTP on standard input and output until QUIT or end of input. Returns the exit status. */
int sm_smtp_session(void);

#endif
