/*
 * mxrelayctl passwd --list and --delete: the credentials file read for
 * people (or --json), and one user taken out of it. Never prints a
 * password hash. The daemon reads the file at start and on reload (SIGHUP):
 * a deleted user keeps working until then, and --delete says so.
 */
#include "tools/ctl.h"
#include "mta/shared/creds.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tools/json.h"

#define PROG "mxrelayctl passwd"

/* The senders joined with ", " into out ("(none: may send nothing)" when empty). */
static void
senders_text(const struct cred *cr, char *out, size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	if (cr->nsenders == 0) {
		snprintf(out, len, "(none: may send nothing)");
		return;
	}
	for (size_t i = 0; i < cr->nsenders && used < len; i++)
		used +=
		    (size_t)snprintf(out + used, len - used, "%s%s", i ? "," : "", cr->senders[i]);
}

/* "2027-03-31", "2027-03-31 (passed)" or "-". */
static void
sunset_text(const struct cred *cr, time_t now, char *out, size_t len)
{
	char day[16];

	if (cr->sunset == 0) {
		snprintf(out, len, "-");
		return;
	}
	creds_format_date(cr->sunset, day, sizeof(day));
	snprintf(out, len, "%s%s", day, now >= cr->sunset ? " (passed)" : "");
}

static void
list_json(const struct creds *c, const char *file, time_t now)
{
	size_t n = creds_count(c);
	char day[16];

	fputs("{\"file\": ", stdout);
	json_write_str(stdout, file);
	fputs(", \"users\": [", stdout);
	for (size_t i = 0; i < n; i++) {
		const struct cred *cr = creds_at(c, i);
		fputs(i ? ",\n  {\"user\": " : "\n  {\"user\": ", stdout);
		json_write_str(stdout, cr->user);
		printf(", \"state\": \"%s\", \"sunset\": ", cr->disabled ? "disabled" : "enabled");
		if (cr->sunset > 0) {
			creds_format_date(cr->sunset, day, sizeof(day));
			json_write_str(stdout, day);
		} else {
			fputs("null", stdout);
		}
		printf(", \"sunset_passed\": %s, \"senders\": [",
		       cr->sunset > 0 && now >= cr->sunset ? "true" : "false");
		for (size_t k = 0; k < cr->nsenders; k++) {
			if (k)
				fputs(", ", stdout);
			json_write_str(stdout, cr->senders[k]);
		}
		fputs("]}", stdout);
	}
	printf("%s], \"count\": %zu}\n", n ? "\n" : "", n);
}

static void
list_table(const struct creds *c)
{
	size_t n = creds_count(c), w = 4;
	char sunset[32], senders[CREDS_MAX_LINE + 1];
	time_t now = time(NULL);

	if (n == 0) {
		puts("no users");
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (strlen(creds_at(c, i)->user) > w)
			w = strlen(creds_at(c, i)->user);
	printf("%-*s  %-8s  %-21s  %s\n", (int)w, "USER", "STATE", "SUNSET", "SENDERS");
	for (size_t i = 0; i < n; i++) {
		const struct cred *cr = creds_at(c, i);
		sunset_text(cr, now, sunset, sizeof(sunset));
		senders_text(cr, senders, sizeof(senders));
		printf("%-*s  %-8s  %-21s  %s\n", (int)w, cr->user,
		       cr->disabled ? "disabled" : "enabled", sunset, senders);
	}
}

int
ctl_passwd_list(const char *file, bool json)
{
	struct creds *c = NULL;
	char err[1024];

	if (creds_load(&c, file, err, sizeof(err)) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		return 1;
	}
	if (json)
		list_json(c, file, time(NULL));
	else
		list_table(c);
	creds_free(c);
	return 0;
}

int
ctl_passwd_delete(const char *file, const char *user)
{
	char err[1024];

	if (creds_delete_user(file, user, err, sizeof(err)) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		return 1;
	}
	printf(PROG ": deleted user %s from %s\n", user, file);
	printf(PROG ": the running mxrelayd accepts %s until it reloads: "
	            "systemctl reload mxrelayd (or kill -HUP its pid)\n",
	       user);
	return 0;
}
