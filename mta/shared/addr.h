/*
 * addr: RFC 5321 4.1.2 path and mailbox syntax for MAIL FROM / RCPT TO, and
 * the relay-trick checks (percent hack, bang path, source route, quoted
 * local part hiding an '@'). Pure functions over bounded strings.
 */
#ifndef MXRELAY_ADDR_H
#define MXRELAY_ADDR_H

#include <stdbool.h>
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
	ADDR_END,		/* addr_list_next: no mailbox left (not an error) */
	ADDR_NUL,		/* a NUL byte in a header value */
	ADDR_GROUP,		/* "name: a@b;" where only mailboxes may stand */
	ADDR_MANY,		/* more than the one mailbox allowed */
	ADDR_EMPTY,		/* no mailbox at all */
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
 * Header address lists: From, Sender, Resent-From, To... (RFC 5322 3.4,
 * 3.6.2 and 3.6.6), read strictly so that the relay finds exactly the
 * mailboxes a receiver finds. Reads never go past len (the value needs no
 * terminator; CRLF WSP folds and a final CRLF are allowed); a NUL, an
 * unterminated quote, comment or angle bracket, text around an addr-spec
 * ("a@b <c@d>"), a source route or an empty element is an error, and one
 * bad element fails the whole list: nothing is skipped. Obsolete forms
 * other than obs-phrase (a '.' in a display name, 4.1) are errors.
 * Mailboxes come out without comments or folding ("a@b.example",
 * "\"x y\"@b.example"), at most ADDR_MAX - 2 octets, valid UTF-8.
 */
#define ADDR_L_GROUPS 0x01	/* address-list: "name: a@b, c@d;" allowed */

struct addr_list {		/* fields private to addr.c */
	const char *v;
	size_t len, pos;
	unsigned flags;
	bool in_group, need_sep, after_comma;
	enum addr_status st;	/* sticky: once an error or the end, always */
};

/* Start reading v[0..len) (borrowed until the last call) with ADDR_L_* flags. */
void addr_list_init(struct addr_list *l, const char *v, size_t len, unsigned flags);

/*
 * The next mailbox: ADDR_OK with it in out (NUL-terminated), ADDR_END when
 * the list ended cleanly, or the error (ADDR_SYNTAX, ADDR_NUL, ADDR_GROUP,
 * ADDR_TOO_LONG, ADDR_ROUTE, ADDR_NO_DOMAIN) that fails the whole list.
 */
enum addr_status addr_list_next(struct addr_list *l, char *out, size_t outlen);

/*
 * A value that must be exactly one mailbox and no group (From, Sender:
 * RFC 5322 3.6.2). ADDR_OK with it in out, ADDR_EMPTY, ADDR_MANY or an
 * error of addr_list_next.
 */
enum addr_status addr_header_mailbox(const char *v, size_t len, char *out, size_t outlen);

#endif
