/*
 * reader: one read-only-by-use spool handle per worker thread, opened on
 * first use and closed when the thread exits. Worker jobs that read the
 * spool (delivery loads, mxrelayctl queue listings) share it, so a read
 * never waits for the writer thread's handle and never opens the database
 * per job.
 */
#ifndef MXRELAY_READER_H
#define MXRELAY_READER_H

#include <stddef.h>

struct spool;

/*
 * The calling thread's handle on DATA_DIR's spool (opened now if needed).
 * NULL with err when it cannot be opened. The handle belongs to the thread:
 * never close it, never pass it to another thread.
 */
struct spool *reader_spool(const char *data_dir, char *err, size_t errlen);

#endif
