/*
 * libFuzzer target: the credentials file (mta/shared/creds.c) and its rewrite
 * for mxrelayctl passwd (creds_file.c). The first byte picks what runs; the
 * rest is the file:
 *   - always: creds_load (through a memfd named by path), then every user is
 *     looked up and checked against its own allowed senders, and the text
 *     after the last newline is tried as a sender address;
 *   - bit 0: creds_update_file on a copy in a private temp directory (in
 *     /dev/shm), for an existing user (bit 1) or a new one; a file that loads
 *     must still load after the update with the change in it and every other
 *     line kept; one that does not load must be refused and left alone.
 * Password checks (crypt, slow on purpose) are not run.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mta/shared/creds_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* openssl passwd -6 -salt fuzzsalt fuzz */
#define NEW_HASH                                                                             \
	"$6$fuzzsalt$TMAdpzXePxLUFyzhbszyG7PEYcOkSrx8gK/JwqZ/qtZjsDmpAWbYDF41z.P3owQTu0fV.h8j3SLR" \
	"5H1R0lr9n/"

static int memfd = -1;
static char mempath[64], dir[64], file[96];

static void
cleanup(void)
{
	unlink(file);
	rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

	memfd = memfd_create("fuzz_creds", MFD_CLOEXEC);
	snprintf(dir, sizeof(dir), "%s/fuzz_creds.XXXXXX", base);
	if (memfd < 0 || mkdtemp(dir) == NULL) {
		perror("fuzz_creds: setup");
		abort();
	}
	snprintf(mempath, sizeof(mempath), "/proc/self/fd/%d", memfd);
	snprintf(file, sizeof(file), "%s/passwd", dir);
	atexit(cleanup);
	return 0;
}

/* Every user is found again and may send as each of its own sender entries. */
static void
check_creds(const struct creds *c, const char *probe)
{
	char local[CREDS_MAX_LINE + 8];

	for (size_t i = 0; i < c->n; i++) {
		const struct cred *cr = &c->v[i].cred;
		if (creds_find(c, cr->user) != cr || creds_check_user(cr->user, NULL, 0) != 0)
			abort();
		for (size_t k = 0; k < cr->nsenders; k++) {
			const char *s = cr->senders[k];
			if (strrchr(s, '@') == s) /* "@dom": any local part */
				snprintf(local, sizeof(local), "x%s", s);
			else
				snprintf(local, sizeof(local), "%s", s);
			if (strcmp(s, "*") != 0 && strchr(s, '@') && creds_sender_allowed(cr, local) != 0)
				abort();
		}
		(void)creds_sender_allowed(cr, probe);
	}
}

static struct creds *
load(const char *path)
{
	struct creds *c = NULL;
	char err[512] = "";

	if (creds_load(&c, path, err, sizeof(err)) != 0) {
		/* errors name the file first */
		if (c != NULL || strncmp(err, path, strlen(path)) != 0)
			abort();
		return NULL;
	}
	return c;
}

/* creds_update_file on a copy of the input: see the header comment. */
static void
update(const uint8_t *data, size_t size, const struct creds *before, int existing)
{
	const char *user = existing && before && before->n ? before->v[0].cred.user : "fuzz-new";
	const char *hash = existing && before && before->n ? NULL : NEW_HASH;
	char err[512] = "", *user_copy = strdup(user);
	struct creds *after;
	FILE *f = fopen(file, "w");
	int rc;

	if (f == NULL || user_copy == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
	rc = creds_update_file(file, user_copy, hash, "@example.com, a@b.example", 1, err,
			       sizeof(err));
	after = load(file);
	if (before == NULL) {
		if (rc == 0)
			abort(); /* a file that does not load is never rewritten */
	} else if (rc != 0) {
		fprintf(stderr, "fuzz_creds: update of a valid file refused: %s\n", err);
		abort();
	} else {
		const struct cred *cr = after ? creds_find(after, user_copy) : NULL;
		size_t added = creds_find(before, user_copy) == NULL;
		if (cr == NULL || !cr->disabled || cr->nsenders != 2 ||
		    creds_count(after) != creds_count(before) + added ||
		    (hash && strcmp(cr->hash, hash) != 0))
			abort();
		for (size_t i = 0; i < before->n; i++) {
			const struct cred *old = &before->v[i].cred, *now;
			if (strcmp(old->user, user_copy) == 0)
				continue;
			now = creds_find(after, old->user);
			if (now == NULL || strcmp(now->hash, old->hash) != 0 ||
			    now->disabled != old->disabled || now->nsenders != old->nsenders)
				abort();
		}
	}
	creds_free(after);
	free(user_copy);
	unlink(file);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct creds *c;
	const uint8_t *nl;
	char *probe;
	unsigned mode;

	if (size == 0)
		return 0;
	mode = data[0];
	data++, size--;
	if (ftruncate(memfd, 0) != 0 || pwrite(memfd, data, size, 0) != (ssize_t)size)
		abort();
	c = load(mempath);
	nl = memrchr(data, '\n', size);
	nl = nl ? nl + 1 : data;
	probe = strndup((const char *)nl, size - (size_t)(nl - data));
	if (probe == NULL)
		abort();
	if (c != NULL)
		check_creds(c, probe);
	if (mode & 1)
		update(data, size, c, mode & 2);
	free(probe);
	creds_free(c);
	return 0;
}
