/*
 * libFuzzer target: SMTP command lines as the server session parses them
 * (mta/smtpd/parse.c, mta/shared/addr.c, mta/shared/config.c): the verb split, the
 * MAIL FROM path and parameters (SIZE, BODY, SMTPUTF8, AUTH=), the RCPT TO
 * path with the relay-trick checks and the address-literal rule, and the
 * EHLO/HELO name as it goes into logs and the Received header. Built by
 * CMake with -DMXRELAY_FUZZ=ON (links mxmta). The first byte is a flag byte
 * (bit 0: the session said EHLO); the rest is one line without its CRLF.
 *
 * Beyond "no crash": the split stays inside the line, a refusal is a full
 * reply with a 5xx code and an enhanced code of the same class (RFC 3463),
 * only known SPOOL_F_* bits are ever set, an accepted path re-parses to
 * itself, and a sanitized EHLO name has no CR, LF or other control byte.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mta/shared/config.h"
#include "mta/shared/addr.h"
#include "mta/shared/log.h"
#include "mta/shared/util.h"
#include "mta/reply.h"
#include "mta/smtpd/parse.h"
#include "spool/spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct config *cfg;

/* A refusal id renders as a full 5xx reply whose enhanced code has the same class. */
static void
check_reply(enum reply_id id)
{
	char r[512];

	reply_format(r, sizeof(r), id);
	if (strlen(r) < 10 || r[0] != '5' || r[3] != ' ' || r[4] != r[0] || r[5] != '.')
		abort();
}

static void
check_path(const char *arg, unsigned flags)
{
	char out[ADDR_MAX], again[ADDR_MAX + 2], out2[ADDR_MAX];
	const char *params = NULL;

	if (addr_parse_path(arg, flags, out, sizeof(out), &params) != ADDR_OK)
		return;
	if (params < arg || params > arg + strlen(arg))
		abort();
	snprintf(again, sizeof(again), "<%s>", out);
	if (addr_parse_path(again, flags | ADDR_F_NULL_OK, out2, sizeof(out2), NULL) != ADDR_OK ||
	    strcmp(out, out2) != 0)
		abort();
	if (flags & ADDR_F_STRICT)
		(void)config_literal_routed(cfg, out);
}

static void
mail(char *arg, int esmtp)
{
	char out[ADDR_MAX], *pbuf;
	const char *params = NULL;
	enum reply_id reply = R_NONE;
	unsigned flags = 0;

	if (!util_strncaseeq(arg, "FROM:", 5))
		return;
	check_path(arg + 5, ADDR_F_NULL_OK | ADDR_F_UTF8);
	if (addr_parse_path(arg + 5, ADDR_F_NULL_OK | ADDR_F_UTF8, out, sizeof(out), &params) !=
	    ADDR_OK)
		return;
	pbuf = strdup(params);
	if (pbuf == NULL)
		return;
	if (smtpd_mail_params(pbuf, esmtp, 1024 * 1024, &flags, &reply) != 0)
		check_reply(reply);
	if (flags & ~(unsigned)(SPOOL_F_8BITMIME | SPOOL_F_SMTPUTF8))
		abort();
	free(pbuf);
}

static void
helo(const char *arg)
{
	char clean[256];
	const char *c = log_sanitize(clean, sizeof(clean), arg, strlen(arg));

	for (; *c; c++)
		if ((unsigned char)*c < 32 || *c == 127)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256], *line, *arg;
	size_t len, vlen;

	if (cfg == NULL) {
		FILE *f = tmpfile();
		char path[64];
		/* one route to an address literal, as an admin would write it */
		if (f == NULL || fprintf(f, "route = [192.0.2.7] 192.0.2.7:25\n") < 0 ||
		    fflush(f) != 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fileno(f));
		if (config_load(&cfg, path, err, sizeof(err)) != 0)
			abort();
		fclose(f);
	}
	if (size == 0 || size > 4096)
		return 0;
	len = size - 1;
	line = malloc(len + 1);
	if (line == NULL)
		return 0;
	memcpy(line, data + 1, len);
	line[len] = '\0';
	if (smtpd_split_command(line, len, &vlen, &arg) == 0) {
		if (vlen > len || arg < line + vlen || arg > line + len)
			abort();
		if (vlen == 4 && util_strncaseeq(line, "MAIL", 4))
			mail(arg, data[0] & 1);
		else if (vlen == 4 && util_strncaseeq(line, "RCPT", 4) &&
		         util_strncaseeq(arg, "TO:", 3))
			check_path(arg + 3, ADDR_F_STRICT | ((data[0] & 2) ? ADDR_F_UTF8 : 0));
		else if (vlen == 4 &&
		         (util_strncaseeq(line, "EHLO", 4) || util_strncaseeq(line, "HELO", 4)))
			helo(arg);
	} else if (strlen(line) == len) {
		abort(); /* refused a line without NUL */
	}
	free(line);
	return 0;
}
