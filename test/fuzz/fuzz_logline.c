/*
 * libFuzzer target: the log line reader of `mxrelayctl report`
 * (tools/ctl_report_parse.c: rlog_parse, rlog_get, rlog_domain,
 * rlog_reason). The input is one log line as it sits in a file: clients
 * choose much of what mxrelayd logs (addresses, user names, the replies it
 * quotes), and a shared syslog file holds any program's lines. The first
 * byte picks the year for RFC 3164 stamps; the rest is the line. Built by
 * -DMXRELAY_FUZZ=ON (test/fuzz/README.md).
 *
 * Beyond "no crash": a line taken as ours has its key=value part inside
 * the line, starting with s=, c=, id=, qid= or event=, and an event= value; its day is "" or
 * YYYY-MM-DD; every value read is NUL-terminated within its buffer; reason keys never hold '<'.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tools/ctl_report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_day(const char *d)
{
	if (d[0] == '\0')
		return;
	if (strlen(d) != 10 || d[4] != '-' || d[7] != '-')
		abort();
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && !isdigit((unsigned char)d[i]))
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = {"event", "to",          "from", "status", "reply", "ip",
	                                   "dsn",   "reason_code", "size", "reason", "user"};
	struct rlog_line l;
	char v[64], dom[32], why[48];
	char *line;

	if (size < 1)
		return 0;
	line = malloc(size); /* exactly the line's bytes: a read past them is caught */
	if (line == NULL)
		return 0;
	memcpy(line, data + 1, size - 1);
	if (rlog_parse(line, size - 1, 1900 + data[0], &l) == 0) {
		if (l.kv < line || l.kv + l.kvlen > line + size - 1)
			abort();
		if (l.kvlen < 2 || (memcmp(l.kv, "s=", 2) != 0 && memcmp(l.kv, "c=", 2) != 0 &&
		                    (l.kvlen < 3 || memcmp(l.kv, "id=", 3) != 0) &&
		                    (l.kvlen < 4 || memcmp(l.kv, "qid=", 4) != 0) &&
		                    (l.kvlen < 6 || memcmp(l.kv, "event=", 6) != 0)))
			abort(); /* a line taken as ours starts with one of its first keys */
		check_day(l.day);
		if (!rlog_get(&l, "event", v, sizeof(v)))
			abort();
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			if (rlog_get(&l, keys[i], v, sizeof(v)) && strlen(v) >= sizeof(v))
				abort();
			rlog_domain(v, dom, sizeof(dom));
			rlog_reason(v, why, sizeof(why));
			if (strlen(dom) >= sizeof(dom) || strchr(why, '<') != NULL)
				abort();
		}
	}
	free(line);
	return 0;
}
