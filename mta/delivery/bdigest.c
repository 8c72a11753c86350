/* bdigest: the digest entries of a DSN (see bdigest.h). */
#include "mta/delivery/bdigest.h"

#include <stddef.h>
#include <stdio.h>

/* s as printable ASCII (anything else: '?', runs of blanks: one space), cut to len - 1. */
static void
copy_clean(char *dst, size_t len, const char *s)
{
	size_t i = 0;

	for (; s != NULL && *s != '\0' && i + 1 < len; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '\r' || ch == '\n' || ch == '\t' || ch == ' ') {
			if (i > 0 && dst[i - 1] != ' ')
				dst[i++] = ' ';
			continue;
		}
		dst[i++] = ch > 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	while (i > 0 && dst[i - 1] == ' ')
		i--;
	dst[i] = '\0';
}

void
bdigest_fill(struct spool_bdigest *e, const char *owner, const char *qid, const char *sender,
             const char *rcpt, const char *status, const char *reason, time_t when)
{
	e->when = when;
	/* the config's mailbox (mailbox_ok), the digest's recipient: as it is */
	snprintf(e->owner, sizeof(e->owner), "%s", owner);
	copy_clean(e->qid, sizeof(e->qid), qid);
	copy_clean(e->sender, sizeof(e->sender), sender);
	copy_clean(e->rcpt, sizeof(e->rcpt), rcpt);
	copy_clean(e->status, sizeof(e->status), status);
	copy_clean(e->reason, sizeof(e->reason), reason);
}
