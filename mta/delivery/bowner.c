/* bowner: the bounce_owner rule of a stored message (see bowner.h). */
#include "mta/delivery/bowner.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

/* client_ip as a socket address in ss; NULL when it is no address. */
static const struct sockaddr *
client_addr(const char *ip, struct sockaddr_storage *ss)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (ip == NULL)
		return NULL;
	if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		return (const struct sockaddr *)ss;
	}
	if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		return (const struct sockaddr *)ss;
	}
	return NULL;
}

const struct bounce_owner_conf *
bowner_find(const struct config *c, const char *auth_user, const char *client_ip)
{
	const struct bounce_owner_conf *r, *best = NULL;
	struct sockaddr_storage ss;
	const struct sockaddr *sa = client_addr(client_ip, &ss);

	if (auth_user != NULL && *auth_user == '\0')
		auth_user = NULL;
	for (r = c->bounce_owners; r != NULL; r = r->next)
		if (r->who.kind != WHO_LISTENER &&
		    config_who_matches(&r->who, auth_user, NULL, sa) &&
		    (best == NULL || config_who_rank(&r->who) > config_who_rank(&best->who)))
			best = r;
	return best;
}
