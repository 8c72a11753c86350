/*
 * dispname: the display-name spoof check of header From (issue 15, the
 * policy `display_name_address`): does the field show, in its display name
 * or a comment, an address of another domain than its own mailbox's?
 * `"ceo@bank.example" <scans@example.com>` does: readers see
 * ceo@bank.example as the author. Pure: reads only the octets it is handed.
 */
#ifndef MXRELAY_DISPNAME_H
#define MXRELAY_DISPNAME_H

#include <stdbool.h>
#include <stddef.h>

/*
 * val: the From field's value (n octets after the colon, folded lines
 * included, as sent); from: the mailbox it parsed to (local@domain). true
 * with the first address of another domain (neither the same domain nor a
 * subdomain of it, or the other way round) as readers would see it in out
 * (cut to outlen); false when the field shows none.
 */
bool dispname_foreign(const char *val, size_t n, const char *from, char *out, size_t outlen);

#endif
