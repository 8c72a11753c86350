/* notify: sd_notify messages to the service manager (see notify.h). */
#include "mta/notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "mta/shared/log.h"

static bool warned; /* one log line for a socket that refuses, not one per message */

bool
notify_enabled(void)
{
	const char *s = getenv("NOTIFY_SOCKET");
	return s != NULL && *s != '\0';
}

/* unset_environment 0: later messages (reload, stop) need the variable again */
static void
send_msg(const char *text)
{
	int r;

	if (!notify_enabled())
		return;
	r = sd_notify(0, text);
	if (r < 0 && !warned) {
		warned = true;
		log_warn("event=notify_failed socket=%s error=\"%s\"", getenv("NOTIFY_SOCKET"),
		         strerror(-r));
	}
}

/* STATUS= is one line: a newline would start another assignment */
static void
send_with_status(const char *head, const char *status)
{
	char buf[1024];
	size_t n;

	n = (size_t)snprintf(buf, sizeof(buf), "%s%sSTATUS=%s", head, *head ? "\n" : "",
	                     status ? status : "");
	for (size_t i = strlen(head) + 1; i < n && i < sizeof(buf); i++)
		if (buf[i] == '\n')
			buf[i] = ' ';
	send_msg(buf);
}

void
notify_ready(const char *status)
{
	send_with_status("READY=1", status);
}

void
notify_reloading(void)
{
	struct timespec ts;
	char buf[128];

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(buf, sizeof(buf), "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
	         (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
	send_msg(buf);
}

void
notify_stopping(const char *status)
{
	send_with_status("STOPPING=1", status);
}

void
notify_status(const char *status)
{
	send_with_status("", status);
}
