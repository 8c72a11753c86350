/* dlvlog: shared delivery log fields and lines (see dlvlog.h). */
#include "mta/delivery/dlvlog.h"

#include <stdio.h>

#include "mta/shared/log.h"

/* One value the way Postfix's delays= reads: 0, 0.27, 9.3, 1393. */
static int
one(char *out, size_t outlen, double v)
{
	if (!(v >= 0.01)) /* also NaN and a clock that stepped back */
		return snprintf(out, outlen, "0");
	if (v < 10)
		return snprintf(out, outlen, "%.2g", v);
	return snprintf(out, outlen, "%.0f", v);
}

char *
dlvlog_delays(char *out, size_t outlen, double a, double b, double c, double d)
{
	const double v[4] = {a, b, c, d};
	size_t o = 0;

	if (outlen == 0)
		return out;
	out[0] = '\0';
	for (int i = 0; i < 4 && o < outlen; i++) {
		int n = i ? snprintf(out + o, outlen - o, "/") : 0;
		if (n < 0)
			break;
		o += (size_t)n;
		if (o >= outlen)
			break;
		n = one(out + o, outlen - o, v[i]);
		if (n < 0)
			break;
		o += (size_t)n;
	}
	return out;
}

void
dlvlog_removed(const char *qid, const char *reason)
{
	log_info("qid=%s event=removed reason=%s", qid, reason);
}
