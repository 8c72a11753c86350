/*
 * audit_event: events counted in the legacy-client audit without a message
 * (see mta/intake/audit.h). Groundwork stub: the counts are not stored yet.
 */
#include "mta/intake/audit.h"

void
audit_event(struct server *srv, const char *client_ip, const char *auth_user, enum audit_event ev)
{
	(void)srv;
	(void)client_ip;
	(void)auth_user;
	(void)ev;
}
