/*
 * bowner: bounce_owner rules (issue 15 item 5) at delivery time. Devices
 * and scripts often send as an address without a mailbox (scanner@...):
 * their DSNs go to the owner address a rule names instead of the envelope
 * sender. Pure: reads the config, keeps no state.
 */
#ifndef MXRELAY_BOWNER_H
#define MXRELAY_BOWNER_H

#include "mta/shared/config.h"

/*
 * The bounce_owner rule for a message stored with auth_user (NULL or "":
 * none), listener (the accepting listener's name, schema 8; NULL for local
 * submission and for mail queued before schema 8: listener: rules do not
 * match it) and client_ip (the spool's text; not an address, as "local (uid
 * N)" of a local submission: matches only "*"), or NULL. The most specific
 * matching rule wins (config_who_rank), the first in the file among equals.
 */
const struct bounce_owner_conf *bowner_find(const struct config *c, const char *auth_user,
                                            const char *listener, const char *client_ip);

#endif
