/*
 * spool_space: the spool's disk space (see spool.h): free bytes on the file
 * system, the reserve file DIR/spool.reserve, the bytes the spool holds, a
 * WAL checkpoint after a failed commit, and the start-up check that keeps
 * SQLite's WAL-index mmap from dying with SIGBUS on a full file system.
 *
 * Must never log (spool/ rule): the caller says what happened.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "spool_int.h"

#define WAL_HDR 32      /* WAL file header, then frames of (24 + page size) bytes */
#define SHM_BLOCK 32768 /* one WAL-index block: 4096 frames (4062 in the first) */
/* beside the index itself: SQLite may also create the WAL and touch a few inode blocks */
#define SHM_SLACK 65536

int
spool_fs_free(const char *dir, uint64_t *bytes, char *err, size_t errlen)
{
	struct statvfs vf;

	if (statvfs(dir, &vf) != 0) {
		spool_seterr(err, errlen, "spool: statvfs %s: %s", dir, strerror(errno));
		return -1;
	}
	/* f_bavail: what an unprivileged user (the daemon's account) may still take */
	*bytes = (uint64_t)vf.f_bavail * (uint64_t)vf.f_frsize;
	return 0;
}

static void
path_in(char *out, size_t outlen, const char *dir, const char *name)
{
	snprintf(out, outlen, "%s/%s", dir, name);
}

uint64_t
spool_reserve_size(const char *dir)
{
	char path[4096];
	struct stat sb;

	path_in(path, sizeof(path), dir, "spool.reserve");
	if (stat(path, &sb) != 0)
		return 0;
	/* allocated blocks, not the length: a sparse file reserves nothing */
	uint64_t alloc = (uint64_t)sb.st_blocks * 512;
	return alloc < (uint64_t)sb.st_size ? alloc : (uint64_t)sb.st_size;
}

int
spool_reserve_fill(const char *dir, uint64_t bytes, char *err, size_t errlen)
{
	char path[4096];
	int fd, rc;

	path_in(path, sizeof(path), dir, "spool.reserve");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		spool_seterr(err, errlen, "spool: reserve %s: %s", path, strerror(errno));
		return -1;
	}
	/* a smaller reserve than last time: give the rest back first */
	rc = ftruncate(fd, (off_t)bytes) == 0 ? 0 : errno;
	if (rc == 0 && bytes > 0)
		rc = posix_fallocate(fd, 0, (off_t)bytes); /* real blocks, no holes */
	if (rc != 0) {
		/* a failed fallocate may keep some blocks: the reserve is all or nothing */
		if (ftruncate(fd, 0) != 0) {
			/* nothing more to do: the error below is the one that matters */
		}
		spool_seterr(err, errlen, "spool: reserve %s: %s", path, strerror(rc));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int
spool_reserve_release(const char *dir, char *err, size_t errlen)
{
	char path[4096];

	path_in(path, sizeof(path), dir, "spool.reserve");
	if (truncate(path, 0) != 0 && errno != ENOENT) {
		spool_seterr(err, errlen, "spool: reserve %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static uint64_t
file_size(const char *path, uint64_t *allocated)
{
	struct stat sb;

	if (stat(path, &sb) != 0) {
		if (allocated)
			*allocated = 0;
		return 0;
	}
	if (allocated)
		*allocated = (uint64_t)sb.st_blocks * 512;
	return (uint64_t)sb.st_size;
}

int
spool_bytes(struct spool *sp, uint64_t *bytes, uint64_t *reusable, char *err, size_t errlen)
{
	int64_t pages = 0, freelist = 0, page_size = 0;

	if (spool_pragma_int(sp->db, "PRAGMA page_count", &pages) != SQLITE_OK ||
	    spool_pragma_int(sp->db, "PRAGMA freelist_count", &freelist) != SQLITE_OK ||
	    spool_pragma_int(sp->db, "PRAGMA page_size", &page_size) != SQLITE_OK) {
		spool_seterr(err, errlen, "spool: size: %s", sqlite3_errmsg(sp->db));
		return -1;
	}
	/*
	 * The pages in use as this handle sees the database, committed frames
	 * still in the WAL included; not the WAL file's length, which keeps its
	 * size (up to journal_size_limit) after a checkpoint emptied it.
	 */
	*bytes = (uint64_t)(pages - freelist) * (uint64_t)page_size;
	*reusable = (uint64_t)freelist * (uint64_t)page_size;
	return 0;
}

int
spool_checkpoint(struct spool *sp)
{
	/* PASSIVE: never waits for readers; frames it cannot copy stay for the next one */
	return sqlite3_wal_checkpoint_v2(sp->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) ==
	               SQLITE_OK
	           ? 0
	           : -1;
}

int
spool_take_full(struct spool *sp)
{
	int full = sp->full_seen;
	sp->full_seen = 0;
	return full;
}

/* Page size from the WAL header (big-endian at offset 8); 0 when unreadable. */
static uint32_t
wal_page_size(const char *wal)
{
	unsigned char h[WAL_HDR];
	int fd = open(wal, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = read(fd, h, sizeof(h));
	close(fd);
	if (n != (ssize_t)sizeof(h))
		return 0;
	return (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 | (uint32_t)h[10] << 8 | h[11];
}

/* Bytes of the WAL index (-shm) that opening a WAL of wal_size bytes fills. */
static uint64_t
shm_needed(const char *wal, uint64_t wal_size)
{
	uint64_t frames = 0, blocks = 1;
	uint32_t pgsz = wal_size > WAL_HDR ? wal_page_size(wal) : 0;

	if (pgsz >= 512)
		frames = (wal_size - WAL_HDR) / (pgsz + 24);
	if (frames > 4062)
		blocks += (frames - 4062 + 4095) / 4096;
	return blocks * SHM_BLOCK;
}

/*
 * Why: the first opener truncates -shm and SQLite grows it by writing one
 * byte per 4 KB page, then maps it; on a file system with 1 KB blocks the
 * other blocks of each page stay holes, and the WAL-index rebuild stores
 * into them: with no free block the kernel answers SIGBUS (a crash inside
 * SQLite, not an error). So the space must be free before the open: count
 * it, release the reserve if short, and refuse clearly if still short.
 */
int
spool_open_preflight(const char *dir, int *released, char *err, size_t errlen)
{
	char wal[4096], shm[4096];
	uint64_t shm_alloc, free_b, need;
	uint64_t wal_size;

	*released = 0;
	path_in(wal, sizeof(wal), dir, "spool.db-wal");
	path_in(shm, sizeof(shm), dir, "spool.db-shm");
	wal_size = file_size(wal, NULL);
	file_size(shm, &shm_alloc); /* SQLite's truncate gives these blocks back */
	need = shm_needed(wal, wal_size) + SHM_SLACK;
	if (spool_fs_free(dir, &free_b, err, errlen) != 0)
		return -1;
	if (free_b + shm_alloc >= need)
		return 0;
	if (spool_reserve_size(dir) > 0 && spool_reserve_release(dir, err, errlen) == 0) {
		*released = 1;
		if (spool_fs_free(dir, &free_b, err, errlen) != 0)
			return -1;
		if (free_b + shm_alloc >= need)
			return 0;
	}
	spool_seterr(err, errlen,
	             "spool: open %s: file system full (%llu bytes free, %llu needed for the "
	             "WAL index of a %llu-byte WAL); free some space and start again",
	             dir, (unsigned long long)(free_b + shm_alloc), (unsigned long long)need,
	             (unsigned long long)wal_size);
	return -1;
}
