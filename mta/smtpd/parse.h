/*
 * smtpd_parse: the pure parsers of an SMTP server session (the command line
 * split, MAIL parameters, AUTH base64 and the PLAIN response), kept apart
 * from the session so that it and the fuzz targets (test/fuzz) run the same
 * code. No I/O, no globals; every input is bounded by its length.
 */
#ifndef MXRELAY_SMTPD_PARSE_H
#define MXRELAY_SMTPD_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mta/reply.h"

/*
 * Split a command line of len octets (no CRLF, NUL-terminated at len) into
 * the verb (its first *verb_len octets) and *arg (after the spaces that
 * follow it; "" when none). -1: a NUL byte inside the line.
 */
int smtpd_split_command(char *line, size_t len, size_t *verb_len, char **arg);

/*
 * MAIL FROM parameters after the path (RFC 5321 4.1.2; SIZE RFC 1870, BODY
 * RFC 6152, SMTPUTF8 RFC 6531, AUTH= RFC 4954 5). p is cut into tokens.
 * 0 with SPOOL_F_* bits added to *flags, or -1 with *reply the refusal
 * (an id of mta/reply.h).
 */
int smtpd_mail_params(char *p, bool esmtp, uint64_t max_size, unsigned *flags,
                      enum reply_id *reply);

/*
 * Strict base64 (RFC 4648 4; the '=' padding may be missing, as some
 * devices send it) of the NUL-terminated in: 0 with a malloc'd, NUL-
 * terminated *out of *outlen octets (the caller frees it), or -1.
 */
int smtpd_b64_decode(const char *in, char **out, size_t *outlen);

/*
 * An AUTH PLAIN response (RFC 4616 2: authzid NUL authcid NUL passwd) of n
 * octets with a NUL at buf[n]: 0 with *user and *pass pointing into buf, or
 * -1 when malformed (not three fields, empty user, an authzid other than
 * the user: we never act for another user).
 */
int smtpd_plain_split(const char *buf, size_t n, const char **user, const char **pass);

#endif
