/*
 * repair: header_repair for devices that cannot be fixed (issue 15 item 6).
 * Chooses which repairs apply to a client (the header_repair rules of the
 * config) and rewrites a From field whose display name holds an unquoted
 * '@'. content.c applies them as the header goes by, so the DKIM signature
 * (intake.c, after content) covers the repaired header.
 *
 * Must never: repair what it does not fully understand (a field it cannot
 * read is left as it came, for hdrfrom.h to judge), or read outside the
 * octets it was handed.
 */
#ifndef MXRELAY_REPAIR_H
#define MXRELAY_REPAIR_H

#include <stddef.h>
#include <sys/socket.h>

struct config;

/*
 * The HREPAIR_* bits for a client authenticated as user (NULL: none) on
 * the listener named listener from address client: the header_repair rule
 * of the highest config_who_rank that matches (the first in file order on
 * a tie); 0 when none matches or the winner says "none".
 */
unsigned repair_choose(const struct config *cfg, const char *user, const char *listener,
                       const struct sockaddr *client);

/*
 * from_at: val is a From field's value (the n octets after the colon,
 * folded lines and line end included). When it is exactly
 * `DISPLAY <ADDR>` and DISPLAY holds '@' unquoted, writes the value with
 * DISPLAY as a quoted-string (RFC 5322 3.2.4), ` "DISPLAY" <ADDR>` CRLF,
 * to out and returns its length. -1: nothing to repair, or a form it
 * leaves alone (comments, quotes, groups, lists, a line over 998 octets,
 * a display name naming another address: `ceo@bank.example <x@y.example>`).
 */
int repair_from_at(const char *val, size_t n, char *out, size_t outlen);

#endif
