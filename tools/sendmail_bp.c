/*
 * sendmail_bp: `mxrelay-sendmail -bp` (and the same program called mailq)
 * and `-q`, through the daemon's control socket (MAILQ and FLUSH,
 * mta/control/ops.c and queue.c).
 *
 * The listing has Postfix's mailq shape, so habits and scripts carry over:
 *
 *   -Queue ID-        --Size-- ----Arrival Time---- -Sender/Recipient-------
 *   5f0c2a9e81d4b3a7*     1234 Sun Dec  6 21:07:36  sender@example.com
 *   (host mx.example.net[192.0.2.1] said: 451 4.7.1 try later)
 *                                                  rcpt@example.net
 *
 *   -- 2 Kbytes in 1 Request.
 *
 * '*' after the id: being delivered now; '!': held. Each pending recipient
 * comes under its last reply (none yet: no reply line), "MAILER-DAEMON"
 * stands for the null sender, an empty queue reads "Mail queue is empty".
 * Queue ids are ours (16 hex digits), as in the log and mxrelayctl queue.
 */
#include "tools/sendmail.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "tools/json.h"

#define RCPT_INDENT 48 /* the recipient column: under the sender */

/* The arrival time as mailq shows it: "Sun Dec  6 21:07:36", local time. */
static void
arrival(int64_t t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (localtime_r(&tt, &tm) == NULL || strftime(out, len, "%a %b %e %H:%M:%S", &tm) == 0)
		snprintf(out, len, "%lld", (long long)t);
}

static const char *
str_or(const struct json *j, const char *key, const char *dflt)
{
	const char *s = json_gets(j, key);
	return s ? s : dflt;
}

/* The recipients of m, each under its last reply when that differs from the one before. */
static void
print_rcpts(const struct json *m)
{
	const struct json *rc = json_get(m, "recipients");
	const char *prev = NULL;
	int64_t pending = json_geti(m, "pending", 0);
	size_t i, n = rc ? rc->n : 0;

	for (i = 0; i < n; i++) {
		const char *reply = json_gets(rc->v[i], "last_reply");
		if (reply && (prev == NULL || strcmp(prev, reply) != 0))
			printf("(%s)\n", reply);
		prev = reply;
		printf("%*s%s\n", RCPT_INDENT, "", str_or(rc->v[i], "address", "?"));
	}
	if (pending > (int64_t)n)
		printf("%*s(and %lld more recipients)\n", RCPT_INDENT, "",
		       (long long)(pending - (int64_t)n));
}

/* One entry; returns its size. */
static int64_t
print_msg(const struct json *m)
{
	const char *status = str_or(m, "status", "");
	const char *sender = str_or(m, "sender", "");
	int64_t size = json_geti(m, "size", 0);
	char when[64];

	arrival(json_geti(m, "received", 0), when, sizeof(when));
	printf("%s%c %8lld %-19s  %s\n", str_or(m, "qid", "?"),
	       strcmp(status, "held") == 0     ? '!'
	       : strcmp(status, "active") == 0 ? '*'
	                                       : ' ',
	       (long long)size, when, *sender ? sender : "MAILER-DAEMON");
	print_rcpts(m);
	putchar('\n');
	return size;
}

int
sm_mailq(void)
{
	struct json *doc = sm_control("MAILQ\n");
	const struct json *msgs = json_get(doc, "messages");
	const char *err = json_gets(doc, "error");
	int64_t bytes = 0;
	size_t i, n;

	if (err != NULL) {
		fprintf(stderr, "%s: mxrelayd: %s\n", sm_prog, err);
		json_free(doc);
		return EX_UNAVAILABLE;
	}
	n = msgs ? msgs->n : 0;
	if (n == 0) {
		puts("Mail queue is empty");
		json_free(doc);
		return EX_OK;
	}
	printf("%-17s %8s %-20s %s\n", "-Queue ID-", "--Size--", "----Arrival Time----",
	       "-Sender/Recipient-------");
	for (i = 0; i < n; i++)
		bytes += print_msg(msgs->v[i]);
	if (json_getb(doc, "truncated"))
		printf("-- the listing stops at %zu messages: mxrelayctl queue summary counts them "
		       "all\n",
		       n);
	printf("-- %lld Kbytes in %zu Request%s.\n", (long long)(bytes / 1024), n,
	       n == 1 ? "" : "s");
	json_free(doc);
	return EX_OK;
}

int
sm_flush(const char *arg)
{
	char req[320];
	struct json *doc;
	const char *err;

	if (arg && (*arg == '\0' || strlen(arg) > 255 || strpbrk(arg, " \t\r\n")))
		sm_die(EX_USAGE, "bad -qR/-qI value '%s': a domain or a queue id", arg);
	snprintf(req, sizeof(req), "FLUSH%s%s\n", arg ? " " : "", arg ? arg : "");
	doc = sm_control(req);
	if ((err = json_gets(doc, "error")) != NULL) {
		fprintf(stderr, "%s: mxrelayd: %s\n", sm_prog, err);
		json_free(doc);
		return EX_DATAERR;
	}
	/* like postqueue -f and sendmail -q: nothing to say when it worked */
	json_free(doc);
	return EX_OK;
}
