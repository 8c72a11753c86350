/*
 * addr: RFC 5321 4.1.2 path and mailbox syntax for MAIL FROM / RCPT TO, and
 * the relay-trick checks (percent hack, bang path, source route, quoted
 * local part hiding an '@'). Pure functions over bounded strings.
 */
#ifndef MXRELAY_ADDR_H
#define MXRELAY_ADDR_H

#include <stddef.h>

#define ADDR_MAX 256		/* RFC 5321 4.5.3.1.3: path incl. brackets */
#define ADDR_LOCAL_MAX 64	/* 4.5.3.1.1 */
#define ADDR_DOMAIN_MAX 255	/* 4.5.3.1.2 */

enum addr_status {
	ADDR_OK = 0,
	ADDR_SYNTAX,		/* not a mailbox */
	ADDR_TOO_LONG,
	ADDR_NEED_UTF8,		/* non-ASCII without SMTPUTF8 */
	ADDR_ROUTE,		/* <@a,@b:user@c> */
	ADDR_PERCENT,		/* user%host@relay */
	ADDR_BANG,		/* host!user@relay */
	ADDR_QUOTED_AT,		/* "user@host"@relay */
	ADDR_NO_DOMAIN,		/* <postmaster> or <user> */
};

#define ADDR_F_NULL_OK 0x01	/* "<>" allowed (MAIL FROM) */
#define ADDR_F_UTF8 0x02	/* SMTPUTF8 given: UTF-8 in local part and domain */
#define ADDR_F_STRICT 0x04	/* refuse relay tricks (RCPT TO) */

/*
 * Parse the argument after "MAIL FROM:" / "RCPT TO:" (leading spaces
 * allowed; brackets optional for old clients). On ADDR_OK the mailbox
 * without brackets is in out (NUL-terminated; "" for the null path) and
 * *params points to the rest of arg (parameters, leading spaces skipped).
 * utf8 is read from flags only for the mailbox; the caller knows whether
 * SMTPUTF8 appears among the params and passes ADDR_F_UTF8 accordingly.
 */
enum addr_status addr_parse_path(const char *arg, unsigned flags, char *out, size_t outlen,
				 const char **params);

/* A short human text for a status ("bad address syntax", ...). */
const char *addr_strerror(enum addr_status st);

/* Pointer to the domain part of a parsed mailbox (after the last '@'), or NULL. */
const char *addr_domain(const char *mailbox);

/*
 * Extract the first mailbox from a header From value (RFC 5322 3.4:
 * "Name <a@b>", "a@b (comment)", "a@b"). 0 / -1. Group syntax and several
 * addresses: the first address is returned.
 */
int addr_from_header(const char *value, size_t len, char *out, size_t outlen);

/*
 * Iterate over every mailbox of a From (or any address-list) value: start
 * with *pos = 0; each call copies the next mailbox into out and returns 0,
 * or returns -1 when none is left. Groups ("Team: a@b, c@d;"), comments,
 * quoted display names and folded lines are understood.
 */
int addr_from_header_next(const char *value, size_t len, size_t *pos, char *out, size_t outlen);

#endif
