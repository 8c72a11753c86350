/*
 * libFuzzer target: the configuration file parser (mta/shared/config.c), fed the
 * input as a whole file through config_load, the daemon's own entry point.
 * The bytes go into a memfd opened by path (/proc/self/fd/N), so nothing is
 * written to disk and nothing is left behind when a run stops.
 *
 * Beyond "no crash": a refused file names "FILE:LINE: " first (the error
 * contract of config.h), and a loaded one holds no NUL byte and has
 * listeners with addresses and routes that config_route finds again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mta/shared/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static int memfd = -1;
static char path[64];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	memfd = memfd_create("fuzz_config", MFD_CLOEXEC);
	if (memfd < 0) {
		perror("fuzz_config: memfd_create");
		abort();
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	return 0;
}

/* "PATH:LINE: ..." with LINE a number: what every refusal starts with. */
static void
check_error(const char *err)
{
	size_t n = strlen(path), digits;

	if (strncmp(err, path, n) != 0 || err[n] != ':')
		abort();
	digits = strspn(err + n + 1, "0123456789");
	if (digits == 0 || err[n + 1 + digits] != ':' || err[n + 2 + digits] != ' ')
		abort();
}

static void
check_config(const struct config *c)
{
	if (c->listeners == NULL || c->hostname == NULL || c->data_dir == NULL ||
	    c->control_socket == NULL || c->submit_socket == NULL)
		abort();
	for (const struct listener_conf *l = c->listeners; l; l = l->next)
		if (l->addrlen == 0 || l->name == NULL || (l->cert == NULL) != (l->key == NULL))
			abort();
	for (const struct route *r = c->routes; r; r = r->next)
		if (config_route(c, r->domain) != r || r->host[0] == '\0' || r->port > 65535)
			abort();
	if (c->retry_min < 1 || c->retry_max < c->retry_min)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *c = NULL;
	char err[1024] = "";

	if (ftruncate(memfd, 0) != 0 || pwrite(memfd, data, size, 0) != (ssize_t)size)
		abort();
	if (config_load(&c, path, err, sizeof(err)) == 0) {
		if (memchr(data, '\0', size) != NULL)
			abort(); /* a NUL byte used to cut its line short, unnoticed */
		check_config(c);
		config_free(c);
	} else {
		check_error(err);
	}
	return 0;
}
