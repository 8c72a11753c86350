/* config_diff: the keys a reload cannot apply (see config_diff.h). */
#include "mta/shared/config_diff.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "mta/shared/config.h"

enum kind { K_STR, K_UINT, K_U64, K_INT, K_FAM };

/*
 * Read once at start (main.c, writer, scheduler, resolver, control and
 * metrics sockets): the key as the admin writes it, where it lives.
 */
static const struct restart_key {
	const char *key;
	size_t off;
	enum kind kind;
} restart_keys[] = {
    {"data_dir", offsetof(struct config, data_dir), K_STR},
    {"user", offsetof(struct config, user), K_STR},
    {"log", offsetof(struct config, log), K_STR},
    {"control_socket", offsetof(struct config, control_socket), K_STR},
    {"submit_socket", offsetof(struct config, submit_socket), K_STR},
    {"metrics_listen", offsetof(struct config, metrics_listen), K_STR},
    {"metrics_allow_remote", offsetof(struct config, metrics_allow_remote), K_INT},
    {"queue_minfree", offsetof(struct config, queue_minfree), K_U64},
    {"spool_reserve", offsetof(struct config, spool_reserve), K_U64},
    {"spool_max_size", offsetof(struct config, spool_max_size), K_U64},
    {"max_inflight", offsetof(struct config, max_inflight), K_UINT},
    {"dns_servers", offsetof(struct config, dns_servers), K_STR},
    {"dns_timeout", offsetof(struct config, dns_timeout_ms), K_UINT},
    {"dns_tries", offsetof(struct config, dns_tries), K_UINT},
    {"address_family", offsetof(struct config, address_family), K_FAM},
    {"allow_private_mx", offsetof(struct config, allow_private_mx), K_INT},
    {"mta_sts", offsetof(struct config, mta_sts), K_INT},
};

/* Two optional strings (NULL: not set) alike? */
static bool
same_str(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

static bool
same_key(const struct restart_key *k, const struct config *a, const struct config *b)
{
	const char *pa = (const char *)a + k->off, *pb = (const char *)b + k->off;

	switch (k->kind) {
	case K_STR:
		return same_str(*(char *const *)(const void *)pa, *(char *const *)(const void *)pb);
	case K_UINT:
		return *(const unsigned *)(const void *)pa == *(const unsigned *)(const void *)pb;
	case K_U64:
		return *(const uint64_t *)(const void *)pa == *(const uint64_t *)(const void *)pb;
	case K_INT:
		return *(const int *)(const void *)pa == *(const int *)(const void *)pb;
	case K_FAM:
		return *(const enum addr_family *)(const void *)pa ==
		       *(const enum addr_family *)(const void *)pb;
	}
	return true;
}

static bool
same_cidrs(const struct cidr_list *a, const struct cidr_list *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (a->v[i].family != b->v[i].family || a->v[i].prefix != b->v[i].prefix ||
		    memcmp(a->v[i].addr, b->v[i].addr, sizeof(a->v[i].addr)) != 0)
			return false;
	return true;
}

/* Everything of a listener section but cert and key, which a reload re-reads. */
static bool
same_listener(const struct listener_conf *a, const struct listener_conf *b)
{
	return strcmp(a->address_text, b->address_text) == 0 && a->tls == b->tls &&
	       a->tls_min_version == b->tls_min_version &&
	       a->auth_without_tls == b->auth_without_tls && a->legacy_tls == b->legacy_tls &&
	       same_cidrs(&a->legacy_from, &b->legacy_from) && a->legacy_until == b->legacy_until &&
	       a->auth_without_tls_until == b->auth_without_tls_until && a->bare_lf == b->bare_lf &&
	       a->proxy_protocol == b->proxy_protocol && same_cidrs(&a->proxy_from, &b->proxy_from);
}

struct listener_conf *
config_listener_find(struct listener_conf *list, const char *name)
{
	for (; list; list = list->next)
		if (strcmp(list->name, name) == 0)
			return list;
	return NULL;
}

/* Append one line to out (cut when full). */
static void __attribute__((format(printf, 4, 5)))
add(char *out, size_t outlen, int *n, const char *fmt, ...)
{
	size_t used = strlen(out);
	va_list ap;

	va_start(ap, fmt);
	if (used < outlen)
		vsnprintf(out + used, outlen - used, fmt, ap);
	va_end(ap);
	(*n)++;
}

static void
listener_notes(const struct config *r, const struct config *nx, char *out, size_t outlen,
               int *n)
{
	for (struct listener_conf *l = r->listeners; l; l = l->next) {
		const struct listener_conf *m = config_listener_find(nx->listeners, l->name);
		if (m == NULL)
			add(out, outlen, n, "listener %s removed: needs a restart\n", l->name);
		else if (!same_listener(l, m))
			add(out, outlen, n,
			    "listener %s: address and other listener keys but cert and key need a "
			    "restart\n",
			    l->name);
	}
	for (struct listener_conf *l = nx->listeners; l; l = l->next)
		if (config_listener_find(r->listeners, l->name) == NULL)
			add(out, outlen, n, "listener %s added: needs a restart\n", l->name);
}

int
config_restart_notes(const struct config *running, const struct config *next, char *out,
                     size_t outlen)
{
	int n = 0;

	if (outlen == 0)
		return 0;
	out[0] = '\0';
	for (size_t i = 0; i < sizeof(restart_keys) / sizeof(restart_keys[0]); i++)
		if (!same_key(&restart_keys[i], running, next))
			add(out, outlen, &n, "%s changes need a restart\n", restart_keys[i].key);
	listener_notes(running, next, out, outlen, &n);
	size_t len = strlen(out);
	if (len > 0 && out[len - 1] == '\n')
		out[len - 1] = '\0';
	return n;
}
