/* bdigest: failures waiting for a bounce owner's daily digest (see bdigest.h). */
#include "mta/delivery/bdigest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mta/shared/util.h"

struct owner {
	char *address;
	struct bdigest_entry *v;
	size_t n, cap, dropped;
	struct owner *next;
};

static struct owner *owners;
static size_t total; /* entries held, all owners */

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

static struct owner *
owner_get(const char *address, int create)
{
	struct owner *o;

	for (o = owners; o != NULL; o = o->next)
		if (strcmp(o->address, address) == 0)
			return o;
	if (!create)
		return NULL;
	o = xcalloc(1, sizeof(*o));
	o->address = xstrdup(address);
	o->next = owners;
	owners = o;
	return o;
}

void
bdigest_add(const char *owner, const char *qid, const char *sender, const char *rcpt,
            const char *status, const char *reason)
{
	struct owner *o = owner_get(owner, 1);
	struct bdigest_entry *e;

	if (total >= BDIGEST_MAX) {
		o->dropped++;
		return;
	}
	if (o->n == o->cap) {
		o->cap = o->cap ? o->cap * 2 : 16;
		o->v = xrealloc(o->v, o->cap * sizeof(*o->v));
	}
	e = &o->v[o->n++];
	total++;
	e->when = time(NULL);
	copy_clean(e->qid, sizeof(e->qid), qid);
	copy_clean(e->sender, sizeof(e->sender), sender);
	copy_clean(e->rcpt, sizeof(e->rcpt), rcpt);
	copy_clean(e->status, sizeof(e->status), status);
	copy_clean(e->reason, sizeof(e->reason), reason);
}

const char *
bdigest_next_owner(void)
{
	struct owner *o;

	for (o = owners; o != NULL; o = o->next)
		if (o->n > 0 || o->dropped > 0)
			return o->address;
	return NULL;
}

static void
owner_unlink(struct owner *o)
{
	struct owner **pp;

	for (pp = &owners; *pp != NULL; pp = &(*pp)->next)
		if (*pp == o) {
			*pp = o->next;
			break;
		}
	total -= o->n;
	free(o->address);
	free(o);
}

int
bdigest_take(const char *owner, struct bdigest_entry **out, size_t *n, size_t *dropped)
{
	struct owner *o = owner_get(owner, 0);

	*out = NULL;
	*n = *dropped = 0;
	if (o == NULL || (o->n == 0 && o->dropped == 0))
		return -1;
	*out = o->v;
	*n = o->n;
	*dropped = o->dropped;
	owner_unlink(o);
	return 0;
}

void
bdigest_clear(void)
{
	while (owners != NULL) {
		free(owners->v);
		owner_unlink(owners);
	}
}
