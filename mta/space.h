/*
 * space: disk space as a managed resource, for the spool writer thread.
 * Intake (new mail) is allowed only while data_dir's file system has at
 * least queue_minfree bytes free, the spool is under spool_max_size, and the
 * spool reserve is not in use; results, claims and deletes are never refused
 * here: when one of them fails for lack of space, the writer releases the
 * reserve (DATA_DIR/spool.reserve) and tries it again. The reserve is
 * refilled, and intake comes back, by itself once space returns.
 * Owns: the statvfs cache (at most one call per 250 ms unless forced), the
 * reserve's state, the log lines and gauges about them. Writer thread only.
 */
#ifndef MXRELAY_SPACE_H
#define MXRELAY_SPACE_H

#include <stddef.h>
#include <stdint.h>

struct spool;
struct space;

struct space_conf {
	uint64_t minfree;  /* queue_minfree; 0: no free-space floor */
	uint64_t reserve;  /* spool_reserve; 0: no reserve file */
	uint64_t max_size; /* spool_max_size; 0: unlimited */
};

/*
 * The rule, alone so tests can run it on numbers: 0 when a new message may
 * be stored with free_b bytes free for the spool; -1 when intake must wait.
 * minfree 0 turns the floor off. While the reserve is in use (released for
 * results, not refilled) intake needs minfree + reserve bytes free.
 */
int space_judge(uint64_t free_b, uint64_t minfree, uint64_t reserve, int reserve_used);

/*
 * A policy for DIR, whose spool the writer holds open as sp (borrowed: it
 * must outlive the policy; free space counts its free pages too, which
 * SQLite reuses before it grows the file). reserve_released: the spool's open already had to
 * release the reserve (spool_open_preflight), so it counts as used.
 * Fills the reserve now when the file system has room for it above minfree.
 */
struct space *space_new(const char *dir, struct spool *sp, const struct space_conf *c,
                        int reserve_released);
void space_free(struct space *s);

/*
 * Before an insert batch of `incoming` body bytes: 0 to go on, -1 with err
 * (the 452 4.3.1 cause) to refuse the whole batch without touching SQLite.
 */
int space_intake(struct space *s, uint64_t incoming, char *err, size_t errlen);

/*
 * A result/claim/delete batch failed for lack of space: release the reserve
 * and checkpoint the WAL. 0: space was freed, try the batch again; -1: no
 * reserve left to give (the failure stands).
 */
int space_use_reserve(struct space *s);

/* Refresh the cache (refilling the reserve when it can): the idle writer's tick. */
void space_tick(struct space *s);

#endif
