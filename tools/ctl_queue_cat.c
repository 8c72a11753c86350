/*
 * mxrelayctl queue cat [-e] [-h] [-b] ID: one stored message as Postfix's
 * `postcat -q` shows it (issue 16): the envelope (-e: sender, recipients
 * with their states, arrival, client, AUTH user, listener, Message-ID),
 * the header block (-h) and the body (-b); all three by default, each
 * under a "*** ... ***" line; one part alone comes bare, so
 * `queue cat -b ID > file` is the body. Lines end in LF as on a terminal.
 *
 * It reads DIR/spool.db itself, read-only in one snapshot (spool_queue_cat),
 * so it needs what reading the spool needs (root or the daemon's user) and
 * works whether mxrelayd runs or not; it never changes the spool.
 */
#include "tools/ctl.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mta/shared/config.h"
#include "spool/spool.h"

#define PROG "mxrelayctl queue cat"

enum { PART_ENV = 1, PART_HDR = 2, PART_BODY = 4 };

static const char *const rcpt_state[] = {"pending", "delivered", "failed"};

/* The options before the command word (as ctl_queue.c's), skipped: is that word "cat"? */
bool
ctl_queue_is_cat(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0 ||
		    strcmp(a, "--socket") == 0) {
			i++;
			continue;
		}
		if (a[0] == '-')
			continue;
		return strcmp(a, "cat") == 0;
	}
	return false;
}

/* s with CRLF as LF (a view for people; the stored bytes keep CRLF). */
static void
put_lf(const char *s, size_t n)
{
	size_t i, start = 0;

	for (i = 0; i < n; i++) {
		if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') {
			fwrite(s + start, 1, i - start, stdout);
			start = i + 1;
		}
	}
	fwrite(s + start, 1, n - start, stdout);
}

static void
put_field(const char *name, const char *val)
{
	printf("%-13s %s\n", name, val && *val ? val : "-");
}

static void
print_envelope(const struct spool_qmsg *m)
{
	char t[64];
	time_t rt = m->received;
	struct tm tm;
	size_t i;

	localtime_r(&rt, &tm);
	strftime(t, sizeof(t), "%a, %d %b %Y %H:%M:%S %z", &tm);
	put_field("queue_id:", m->qid);
	put_field("state:", m->state == SPOOL_MSG_HELD ? "held" : "queued");
	put_field("arrival_time:", t);
	printf("%-13s %zu\n", "message_size:", m->size);
	put_field("sender:", *m->sender ? m->sender : "<>");
	put_field("client:", m->client_ip);
	put_field("helo:", m->helo);
	put_field("auth_user:", m->auth_user);
	put_field("listener:", m->listener);
	put_field("message_id:", m->message_id);
	printf("%-13s %d\n", "attempts:", m->attempts);
	for (i = 0; i < m->nrcpts; i++) {
		const struct spool_qrcpt *r = &m->rcpts[i];
		printf("%-13s %s (%s, %d attempt%s)\n", "recipient:", r->address,
		       r->state >= 0 && r->state <= 2 ? rcpt_state[r->state] : "?", r->attempts,
		       r->attempts == 1 ? "" : "s");
		if (r->last_reply)
			printf("%-13s   last: %s\n", "", r->last_reply);
	}
}

/* Where the header block ends (its empty line included) in body[0..len). */
static size_t
header_end(const char *body, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (body[i] != '\n')
			continue;
		if (i + 1 < len && body[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && body[i + 1] == '\r' && body[i + 2] == '\n')
			return i + 3;
	}
	return len; /* headers only */
}

static void
print_parts(unsigned parts, const struct spool_qmsg *m, const char *body, size_t len)
{
	bool marks = parts != PART_ENV && parts != PART_HDR && parts != PART_BODY;
	size_t h = header_end(body, len);

	if (parts & PART_ENV) {
		if (marks)
			printf("*** ENVELOPE RECORDS %s ***\n", m->qid);
		print_envelope(m);
	}
	if (parts & PART_HDR) {
		if (marks)
			printf("*** MESSAGE HEADERS %s ***\n", m->qid);
		put_lf(body, h);
	}
	if (parts & PART_BODY) {
		if (marks)
			printf("*** MESSAGE BODY %s ***\n", m->qid);
		put_lf(body + h, len - h);
	}
	if (marks)
		printf("*** END OF MESSAGE %s ***\n", m->qid);
}

static void
cat_usage(FILE *f)
{
	fputs("  queue [-c FILE] cat [-e] [-h] [-b] ID\n"
	      "      the stored message from spool.db (read-only): -e envelope, -h headers,\n"
	      "      -b body; all three by default\n",
	      f);
}

/* The options of cat into *parts and *conf; -1 to go on at optind, else the exit status. */
static int
cat_opts(int argc, char **argv, unsigned *parts, const char **conf)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'H'},
	    {NULL, 0, NULL, 0},
	};
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:ehb", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			*conf = optarg;
			break;
		case 'e':
			*parts |= PART_ENV;
			break;
		case 'h':
			*parts |= PART_HDR;
			break;
		case 'b':
			*parts |= PART_BODY;
			break;
		case 'H':
			return ctl_help(cat_usage);
		default:
			return ctl_usage_error(PROG, cat_usage, "unknown option", NULL);
		}
	}
	if (*parts == 0)
		*parts = PART_ENV | PART_HDR | PART_BODY;
	return -1;
}

int
ctl_queue_cat(int argc, char **argv)
{
	unsigned parts = 0;
	const char *conf = NULL, *id = NULL;
	char qid[SPOOL_QID_LEN + 1], path[4200], err[512], *body = NULL;
	struct config *c = NULL;
	struct spool_qmsg *m = NULL;
	size_t len = 0, i;
	int rc;

	if ((rc = cat_opts(argc, argv, &parts, &conf)) >= 0)
		return rc;
	/* getopt moved the words to the end, in order: "cat" and the id */
	if (argc - optind != 2)
		return ctl_usage_error(PROG, cat_usage, "one queue id is needed", NULL);
	id = argv[optind + 1];
	for (i = 0; i < SPOOL_QID_LEN && isxdigit((unsigned char)id[i]); i++)
		qid[i] = (char)tolower((unsigned char)id[i]);
	qid[i] = '\0';
	if (i != SPOOL_QID_LEN || id[i] != '\0') {
		fprintf(stderr, PROG ": \"%s\" is not a queue id (16 hex digits)\n", id);
		return 1;
	}
	if (ctl_load_config(PROG, conf, &c) != 0)
		return 1;
	snprintf(path, sizeof(path), "%s/spool.db", c->data_dir);
	if (access(path, R_OK) != 0) {
		fprintf(stderr, PROG ": cannot read %s: %s (root or the daemon's user may)\n", path,
		        strerror(errno));
		rc = 1;
	} else if (spool_queue_cat(c->data_dir, qid, &m, &body, &len, err, sizeof(err)) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		rc = 1;
	} else {
		print_parts(parts, m, body, len);
		rc = fflush(stdout) == 0 ? 0 : 1;
	}
	spool_qmsgs_free(m, m ? 1 : 0);
	free(body);
	config_free(c);
	return rc;
}
