/*
 * sendmail_daemon: mxrelay-sendmail's side of the daemon's two sockets.
 * The submit socket (mode 0666: any local user) answers INFO and SUBMIT;
 * the control socket (0660, root and the group mxrelay) answers the queue
 * requests of -bp and -q. One request per connection, one JSON reply
 * (mta/control/control.h).
 */
#include "tools/sendmail.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "tools/ctlsock.h"
#include "tools/json.h"

struct sm_daemon sm_daemon;
const char *sm_prog = "mxrelay-sendmail";

void
sm_die(int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", sm_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

/*
 * One request on the socket at path: the parsed reply, or NULL with why in
 * err and *down set when nothing listens there (the daemon is not running).
 */
static struct json *
ask(const char *path, const char *request, size_t reqlen, int *down, char *err, size_t errlen)
{
	struct json *doc;
	enum ctlsock_status st = ctlsock_ask(path, request, reqlen, &doc, NULL, err, errlen);

	*down = st == CTLSOCK_DOWN; /* errno kept: sm_control tells EACCES apart */
	return doc;
}

void
sm_get_info(void)
{
	char err[4200];
	int down;
	struct json *doc = ask(sm_daemon.submit_path, "INFO\n", 5, &down, err, sizeof(err));
	const char *host, *local, *e;

	if (doc == NULL && down)
		sm_die(EX_TEMPFAIL, "mxrelayd is not running (submit socket %s)", err);
	if (doc == NULL)
		sm_die(EX_TEMPFAIL, "submit socket %s", err);
	host = json_gets(doc, "hostname");
	local = json_gets(doc, "local_sender");
	if ((e = json_gets(doc, "error")) != NULL)
		sm_die(EX_UNAVAILABLE, "mxrelayd refused: %s", e);
	if (host == NULL || strlen(host) >= sizeof(sm_daemon.hostname))
		sm_die(EX_UNAVAILABLE, "mxrelayd did not tell its hostname");
	snprintf(sm_daemon.hostname, sizeof(sm_daemon.hostname), "%s", host);
	/* issue 15: local_sender keeps cron's bounces from vanishing at a host without mailboxes */
	if (local != NULL && *local != '\0' && strlen(local) < sizeof(sm_daemon.domain))
		host = local;
	snprintf(sm_daemon.domain, sizeof(sm_daemon.domain), "%s", host);
	sm_daemon.max_size = (unsigned long long)json_geti(doc, "max_message_size", 35 << 20);
	sm_daemon.max_rcpts = (unsigned)json_geti(doc, "max_recipients", 100);
	/* RFC 5321 4.5.3.2.7: 5 minutes, unless the daemon says otherwise */
	sm_daemon.idle = (unsigned)json_geti(doc, "session_timeout", 300);
	if (sm_daemon.idle == 0 || sm_daemon.idle > 3600)
		sm_daemon.idle = 300;
	json_free(doc);
}

char *
sm_qualify(const char *a)
{
	size_t n = strlen(a) + strlen(sm_daemon.domain) + 2;
	char *q = malloc(n);

	if (q == NULL)
		sm_die(EX_OSERR, "out of memory");
	if (strchr(a, '@') || *a == '\0')
		snprintf(q, n, "%s", a);
	else
		snprintf(q, n, "%s@%s", a, sm_daemon.domain);
	return q;
}

/* SUBMIT's framing (mta/control/submit.c) into a malloc'd request; NULL when out of memory. */
static char *
frame(const char *sender, char *const *rcpts, size_t nrcpts, const char *data, size_t len,
      size_t *reqlen)
{
	size_t cap = 64 + strlen(sender) + len, used;
	char *req;

	for (size_t i = 0; i < nrcpts; i++)
		cap += strlen(rcpts[i]) + 4;
	if ((req = malloc(cap)) == NULL)
		return NULL;
	used = (size_t)snprintf(req, cap, "SUBMIT\nFROM %s\n", sender);
	for (size_t i = 0; i < nrcpts; i++)
		used += (size_t)snprintf(req + used, cap - used, "TO %s\n", rcpts[i]);
	used += (size_t)snprintf(req + used, cap - used, "DATA %zu\n", len);
	if (len)
		memcpy(req + used, data, len);
	*reqlen = used + len;
	return req;
}

int
sm_submit(const char *sender, char *const *rcpts, size_t nrcpts, const char *data, size_t len,
          struct sm_result *r)
{
	char err[4200];
	size_t reqlen = 0;
	int down;
	char *req = frame(sender, rcpts, nrcpts, data, len, &reqlen);
	struct json *doc;
	const char *e, *code, *qid;

	memset(r, 0, sizeof(*r));
	if (req == NULL)
		sm_die(EX_OSERR, "out of memory");
	doc = ask(sm_daemon.submit_path, req, reqlen, &down, err, sizeof(err));
	free(req);
	if (doc == NULL) {
		snprintf(r->code, sizeof(r->code), "451 4.3.0");
		snprintf(r->text, sizeof(r->text), "%s%s", down ? "mxrelayd is not running: " : "",
		         err);
		return -1;
	}
	e = json_gets(doc, "error");
	code = json_gets(doc, "code");
	qid = json_gets(doc, "queued");
	if (e != NULL || qid == NULL) {
		/* an error without a code is no SMTP refusal ("" : sendmail exits 69) */
		snprintf(r->code, sizeof(r->code), "%s", code ? code : e ? "" : "451 4.3.0");
		snprintf(r->text, sizeof(r->text), "%s", e ? e : "unexpected answer from mxrelayd");
		json_free(doc);
		return -1;
	}
	snprintf(r->qid, sizeof(r->qid), "%s", qid);
	json_free(doc);
	return 0;
}

struct json *
sm_control(const char *request)
{
	char err[4200];
	int down;
	struct json *doc;

	doc = ask(sm_daemon.control_path, request, strlen(request), &down, err, sizeof(err));
	if (doc != NULL)
		return doc;
	if (down)
		sm_die(EX_UNAVAILABLE, "mxrelayd is not running (control socket %s)", err);
	if (errno == EACCES)
		sm_die(EX_NOPERM,
		       "the queue is for root and the group mxrelay only: control socket %s "
		       "(you are uid %u; ask an admin to add you to the group mxrelay)",
		       err, (unsigned)getuid());
	sm_die(EX_TEMPFAIL, "control socket %s", err);
}
