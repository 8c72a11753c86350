/*
 * sts: the text of MTA-STS (RFC 8461): the _mta-sts TXT record, the policy
 * file and the MX pattern match. Pure functions on bytes from the network
 * (fuzzed: test/fuzz/fuzz_sts_policy.c, fuzz_sts_txt.c): no I/O, no daemon
 * state. The daemon's fetching and caching is mta/delivery/sts.c.
 */
#ifndef MXRELAY_SHARED_STS_H
#define MXRELAY_SHARED_STS_H

#include <stdbool.h>
#include <stddef.h>

#define STS_ID_MAX 32             /* RFC 8461 3.1: 1*32(ALPHA / DIGIT) */
#define STS_POLICY_MAX 65536      /* RFC 8461 3.3: senders may limit the body (64 KiB) */
#define STS_MAX_AGE_MAX 31557600L /* RFC 8461 3.2: about one year */
#define STS_MX_MAX 128            /* mx lines kept; more make the policy invalid */

enum sts_mode { STS_MODE_NONE, STS_MODE_TESTING, STS_MODE_ENFORCE };

/* One TXT record: its character-strings concatenated (may hold NUL bytes). */
struct sts_txt {
	const char *data;
	size_t len;
};

enum sts_txt_status {
	STS_TXT_OK,      /* exactly one valid v=STSv1 record: id filled */
	STS_TXT_NONE,    /* no record starts with v=STSv1 */
	STS_TXT_INVALID, /* more than one, or the one is malformed: no policy either (3.1) */
};

/*
 * RFC 8461 3.1: among the TXT records of _mta-sts.DOMAIN, keep those that
 * start with "v=STSv1"; exactly one must remain and be well formed, with an
 * id of 1 to 32 letters and digits (copied into id, STS_ID_MAX + 1 bytes).
 * Unknown fields are ignored. err (may be NULL) says why for INVALID.
 */
enum sts_txt_status sts_txt_parse(const struct sts_txt *recs, size_t n, char *id, char *err,
                                  size_t errlen);

struct sts_policy {
	enum sts_mode mode;
	long max_age; /* seconds, 0..STS_MAX_AGE_MAX */
	char **mx;    /* patterns, lower case, no trailing dot; owned */
	size_t nmx;
};

/*
 * RFC 8461 3.2: the policy file (lines end in LF or CRLF, "key: value",
 * at most STS_POLICY_MAX bytes). version must be STSv1; mode enforce,
 * testing or none; max_age 1 to 10 digits, at most STS_MAX_AGE_MAX; mx
 * repeated, a host name or "*." and a host name, required unless mode is
 * none. Unknown keys are ignored; for a repeated key other than mx the
 * first one counts. 0 with p filled (free with sts_policy_free), or -1 with
 * err "line N: reason" and p empty.
 */
int sts_policy_parse(const char *buf, size_t len, struct sts_policy *p, char *err, size_t errlen);
void sts_policy_free(struct sts_policy *p);

/*
 * RFC 8461 4.1: does MX host name host match pattern? Case-insensitive,
 * trailing dots ignored; "*.example.com" matches exactly one more label
 * on the left (mail.example.com, not example.com nor a.b.example.com).
 */
bool sts_mx_match(const char *pattern, const char *host);

/* "none", "testing", "enforce" */
const char *sts_mode_name(enum sts_mode m);

#endif
