/*
 * sendmail_smtp: the pure parsers of `mxrelay-sendmail -bs` (sendmail_bs.c):
 * the command line, MAIL FROM / RCPT TO and their parameters, and the
 * header-line test mxrelay-sendmail shares. No I/O, no globals; every
 * input is bounded by its length (fuzz_sendmail_bs).
 */
#ifndef MXRELAY_TOOLS_SENDMAIL_SMTP_H
#define MXRELAY_TOOLS_SENDMAIL_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mta/shared/addr.h"

enum smtp_verb {
	SV_HELO,
	SV_EHLO,
	SV_MAIL,
	SV_RCPT,
	SV_DATA,
	SV_RSET,
	SV_NOOP,
	SV_QUIT,
	SV_VRFY,
	SV_HELP,
	SV_EXPN,
	SV_NOT_HERE, /* STARTTLS, AUTH, BDAT, ETRN, TURN...: real SMTP, not on a pipe */
	SV_UNKNOWN,
};

/*
 * The verb of a command line of len octets (no line end; NUL at len) and
 * *arg, what follows the verb and its spaces ("" when nothing). -1 when the
 * line holds a NUL byte.
 */
int smtp_cmd_parse(const char *line, size_t len, enum smtp_verb *verb, const char **arg);

/* What MAIL FROM says; the parameters of RFC 1870 (SIZE), 6152 (BODY), 6531 (SMTPUTF8). */
struct smtp_mail {
	char addr[ADDR_MAX]; /* "" for the null sender */
	uint64_t size;       /* SIZE=, 0 when not given */
	bool utf8;           /* SMTPUTF8 */
};

enum smtp_arg {
	SA_OK,
	SA_SYNTAX,     /* not "FROM:<path>" / "TO:<path>": 501 5.5.4 */
	SA_ADDR,       /* a bad address (*st says why): 501 5.1.7 / 5.1.3, or 553 5.6.7 */
	SA_PARAM,      /* an unknown parameter or BODY value: 555 5.5.4 */
	SA_PARAM_SIZE, /* SIZE= not a number: 501 5.5.4 */
};

/*
 * "FROM:<path> [params]" (RFC 5321 4.1.1.2, 3.3). A bare name ("<root>")
 * gets "@" and domain, as local mail does. SA_ADDR with *st set.
 */
enum smtp_arg smtp_mail_arg(const char *arg, const char *domain, struct smtp_mail *out,
                            enum addr_status *st);

/* "TO:<path>" (RFC 5321 4.1.1.3) into out (ADDR_MAX); no parameters (no DSN here). */
enum smtp_arg smtp_rcpt_arg(const char *arg, const char *domain, bool utf8, char *out,
                            enum addr_status *st);

/*
 * Whether a line of n octets starts a header field: a name of printable
 * US-ASCII other than space, then ':' (RFC 5322 2.2). For the header of
 * mxrelay-sendmail's input, on the command line and under -bs alike.
 */
bool smtp_header_line(const char *l, size_t n);

#endif
