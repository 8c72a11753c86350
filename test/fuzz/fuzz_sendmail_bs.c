/*
 * libFuzzer target: the parsers of `mxrelay-sendmail -bs` (tools/sendmail_smtp.c):
 * the command line split and the MAIL FROM / RCPT TO arguments with their
 * parameters, as a local client writes them on the pipe. Built by
 * -DMXRELAY_FUZZ=ON (test/fuzz/README.md).
 * The first input byte picks the parser (0 command, 1 MAIL, 2 RCPT, 3 RCPT
 * after SMTPUTF8); the rest is the line, without its line end.
 *
 * Beyond "no crash": a command line is refused exactly when it holds a NUL
 * and its argument lies inside it; an accepted sender or recipient is
 * qualified (has an '@', or is the null sender for MAIL), fits ADDR_MAX,
 * parses again to itself with the daemon's path parser, and is 7-bit unless
 * SMTPUTF8 was given.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tools/sendmail_smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
reparse(const char *addr, unsigned flags)
{
	char wrapped[ADDR_MAX + 2], again[ADDR_MAX];
	const char *params;

	if (strlen(addr) + 2 >= sizeof(wrapped))
		abort();
	memcpy(wrapped, "<", 1);
	memcpy(wrapped + 1, addr, strlen(addr));
	memcpy(wrapped + 1 + strlen(addr), ">", 2);
	if (addr_parse_path(wrapped, flags, again, sizeof(again), &params) != ADDR_OK ||
	    strcmp(again, addr) != 0 || *params != '\0')
		abort();
}

static bool
seven_bit(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

static void
check_cmd(const char *line, size_t n)
{
	enum smtp_verb v;
	const char *arg;
	int rc = smtp_cmd_parse(line, n, &v, &arg);

	if ((rc != 0) != (memchr(line, '\0', n) != NULL))
		abort();
	if (rc == 0 && (arg < line || arg > line + n))
		abort();
}

static void
check_mail(const char *line)
{
	struct smtp_mail m;
	enum addr_status st;

	if (smtp_mail_arg(line, "local.example", &m, &st) != SA_OK)
		return;
	if (m.addr[0] == '\0')
		return;
	if (!strchr(m.addr, '@') || (!m.utf8 && !seven_bit(m.addr)))
		abort();
	reparse(m.addr, ADDR_F_UTF8);
}

static void
check_rcpt(const char *line, bool utf8)
{
	char addr[ADDR_MAX];
	enum addr_status st;

	if (smtp_rcpt_arg(line, "local.example", utf8, addr, &st) != SA_OK)
		return;
	if (!strchr(addr, '@') || (!utf8 && !seven_bit(addr)))
		abort();
	reparse(addr, ADDR_F_STRICT | (utf8 ? ADDR_F_UTF8 : 0));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line;

	if (size < 1 || size > 4096)
		return 0;
	/* NUL-terminated as the session's reader leaves it; the length is the line's */
	line = malloc(size);
	memcpy(line, data + 1, size - 1);
	line[size - 1] = '\0';
	switch (data[0] & 3) {
	case 0:
		check_cmd(line, size - 1);
		break;
	case 1:
		check_mail(line);
		break;
	default:
		check_rcpt(line, (data[0] & 3) == 3);
	}
	free(line);
	return 0;
}
