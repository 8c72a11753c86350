/*
 * config_diff: what a reload cannot apply. The running daemon keeps its
 * sockets, its account, its spool writer and its resolver, so the keys
 * read once at start only take effect at the next start; a reload says so
 * instead of pretending. Listener sections keep everything but cert and
 * key (re-read by every reload). Pure: compares two loaded configurations.
 */
#ifndef MXRELAY_CONFIG_DIFF_H
#define MXRELAY_CONFIG_DIFF_H

#include <stddef.h>

struct config;
struct listener_conf;

/*
 * The changes from running to next that need a restart, one line each
 * ("data_dir changes need a restart", "listener lb: address and other
 * listener keys but cert and key need a restart", ...), in out (always
 * NUL-terminated; cut at outlen). Returns how many.
 */
int config_restart_notes(const struct config *running, const struct config *next, char *out,
                         size_t outlen);

/* The section [listener NAME] of list, or NULL. */
struct listener_conf *config_listener_find(struct listener_conf *list, const char *name);

#endif
