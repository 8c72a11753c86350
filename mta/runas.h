/*
 * runas: the account mxrelayd runs as, and whether that account can reach the
 * paths it needs (runas.c: the choice, the switch, the DKIM key rule;
 * runas_probe.c: the access checks).
 *
 * Started as root, mxrelayd reads its configuration, credentials, TLS and
 * DKIM keys, binds its ports, then switches to `user` (default: mxrelay if
 * that account exists, else nobody). After the switch it uses data_dir and
 * the socket folders, and re-reads the configuration and the credentials on
 * SIGHUP, as that user. Started as any other account (the systemd unit
 * starts it as mxrelay) it does everything as that account.
 *
 * Owns: choosing the account, checking its access before anything is
 * created (in a child process with that account's credentials, so the
 * kernel decides, ACLs included), the switch, and which key file modes
 * expose a DKIM key. Never: changes the mode of a file it did not create.
 */
#ifndef MXRELAY_RUNAS_H
#define MXRELAY_RUNAS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct config;

struct runas {
	uid_t uid;		/* the account the daemon runs as after start-up */
	gid_t gid;
	char user[64];		/* its name, or "uid N" */
	char group[64];
	uid_t drop_uid;		/* `user` (or the automatic choice): where a root start goes */
	gid_t drop_gid;
	char drop_user[64], drop_group[64];
	bool root_start;	/* started with euid 0 */
	bool drop;		/* switch from root to uid/gid after binding */
	bool strict;		/* `user` is set, or not started as root (the key rule's reader) */
	bool fallback;		/* root start of the embedded default: access problems keep it root */
};

/* What runas_check looks at. */
#define RUNAS_AFTER 1u	/* used after the switch: data_dir, sockets, config and credentials */
#define RUNAS_START 2u	/* read once at start: TLS certificates and keys, DKIM keys */

/*
 * Choose the account from c->user and the process's own, and remember it for
 * runas_key_exposed. 0, or -1 with "FILE:LINE: user: ..." in err (a `user`
 * that does not exist is an error even when not started as root).
 */
int runas_plan(const struct config *c, struct runas *a, char *err, size_t errlen);

/*
 * Check that account a can reach what `which` names. 0 when it can (or a is
 * root); -1 with one line in err naming the path, the user, why and the fix.
 */
int runas_check(const struct config *c, const struct runas *a, unsigned which, char *err,
		size_t errlen);

/* Keep running as the starting account (root): the drop was not possible. */
void runas_stay(struct runas *a);

/*
 * Give up root for a (nothing when !a->drop): chown data_dir and the files
 * mxrelayd made in it to a, then initgroups, setgid, setuid. 0 / -1 with err.
 */
int runas_switch(const struct runas *a, const char *data_dir, char *err, size_t errlen);

/*
 * The DKIM key rule: a key file may be readable by its owner and by the
 * daemon's group (the one it runs with, or the one `user` has), nobody
 * else, and writable by its owner only. 1 when path breaks it, with why
 * ("readable by every user") and the fix for this deployment (chmod when
 * the daemon account owns it, or root reads it: a root start without a
 * `user` line, or running as root; else chgrp to the daemon's group and
 * 0640, which also works under the systemd unit); 0 when it keeps the rule
 * or cannot be looked at.
 */
int runas_key_exposed(const char *path, char *why, size_t whylen, char *fix, size_t fixlen);

#endif
