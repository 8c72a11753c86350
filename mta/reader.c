/* reader: per-thread spool handles for worker threads (see reader.h). */
#include "mta/reader.h"

#include <pthread.h>

#include "spool/spool.h"

static pthread_key_t reader_key;
static pthread_once_t reader_once = PTHREAD_ONCE_INIT;

static void
reader_close(void *sp)
{
	spool_close(sp);
}

static void
reader_init(void)
{
	pthread_key_create(&reader_key, reader_close);
}

struct spool *
reader_spool(const char *data_dir, char *err, size_t errlen)
{
	struct spool *sp;

	pthread_once(&reader_once, reader_init);
	sp = pthread_getspecific(reader_key);
	if (sp == NULL) {
		if (spool_open(&sp, data_dir, err, errlen) != 0)
			return NULL;
		pthread_setspecific(reader_key, sp);
	}
	return sp;
}
