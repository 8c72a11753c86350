/* bowner: the bounce_owner rule of a stored message (see bowner.h). */
#include "mta/delivery/bowner.h"

#include <string.h>
#include <sys/socket.h>

#include "mta/shared/cidr.h"

const struct bounce_owner_conf *
bowner_find(const struct config *c, const char *auth_user, const char *listener,
            const char *client_ip)
{
	struct sockaddr_storage ss;

	if (auth_user != NULL && *auth_user == '\0')
		auth_user = NULL;
	return config_bounce_owner(c, auth_user, listener, cidr_addr_parse(client_ip, &ss));
}
