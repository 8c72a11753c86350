/*
 * creds: the local credentials file (one user per line,
 * "user:crypt-hash:enabled|disabled:sender,sender,...[:sunset=YYYY-MM-DD]";
 * the optional fifth field is the last day the credential may authenticate).
 *
 * Owns: parsing, lookup, password verification with crypt_r(3), the
 * allowed-sender check, and rewriting the file (mxrelayctl passwd).
 * Never: logs or touches the network. creds_check_password is slow on
 * purpose (yescrypt): the daemon calls it on a worker thread.
 */
#ifndef MXRELAY_CREDS_H
#define MXRELAY_CREDS_H

#include <stddef.h>
#include <time.h>

/* Bounds on everything read from the file or handed in by a caller. */
#define CREDS_MAX_LINE 4096     /* bytes per line, without the newline */
#define CREDS_MAX_LINES 100000  /* lines per file, comments included */
#define CREDS_MAX_SENDERS 256   /* allowed-sender entries per user */
#define CREDS_MAX_PASSWORD 1024 /* bytes; any byte but NUL */
#define CREDS_HASH_MAX 384      /* room for a crypt(3) string + NUL (CRYPT_OUTPUT_SIZE) */

struct cred {
	char *user;
	char *hash;		/* crypt(3) string: $y$..., $6$... */
	int disabled;		/* 1: may not authenticate */
	char **senders;		/* "addr@dom", "@dom" or "*" */
	size_t nsenders;
	int sender_case_sensitive; /* 1: local parts compare byte for byte (creds_set_sender_case) */
	time_t sunset;		/* 0 none, else the first second (UTC) it may no longer authenticate */
};

struct creds;

/*
 * Load PATH. On a syntax error returns -1 with "PATH:LINE: reason" in err.
 * Rejects: missing fields, empty user, user with ':' or whitespace, a hash
 * that does not start with '$', state other than enabled/disabled, duplicate
 * users; also a hash method libcrypt does not support, a malformed sender
 * entry, more than CREDS_MAX_SENDERS senders, a line longer than
 * CREDS_MAX_LINE, a NUL byte, more than CREDS_MAX_LINES lines. I/O errors
 * read "PATH: reason". Blank lines and lines whose first non-blank character
 * is '#' are skipped; a trailing "\r" is ignored.
 * *out is owned by the caller: free with creds_free.
 */
int creds_load(struct creds **out, const char *path, char *err, size_t errlen);
void creds_free(struct creds *c);

/* Exact (case-sensitive) lookup; the result lives as long as c. NULL if absent. */
const struct cred *creds_find(const struct creds *c, const char *user);

/* Number of users in c. */
size_t creds_count(const struct creds *c);

/* The i-th user (0 <= i < creds_count, sorted by name); lives as long as c. NULL past the end. */
const struct cred *creds_at(const struct creds *c, size_t i);

/*
 * 0 when USER is usable as a user name (non-empty, no ':', whitespace or
 * control character, does not start with '#'), -1 with the reason in err.
 */
int creds_check_user(const char *user, char *err, size_t errlen);

/*
 * 0 when LIST is a valid allowed-senders field ("a@dom, @dom2,*"; entries
 * are trimmed; "" is the empty list), -1 with the reason in err.
 */
int creds_check_senders(const char *list, char *err, size_t errlen);

/*
 * 0 when password matches cred->hash (crypt_r, constant-time compare of the
 * result), -1 otherwise. Thread-safe. Does NOT look at cred->disabled.
 * libcrypt refuses passphrases of 512 bytes or more, so a password that long
 * (up to CREDS_MAX_PASSWORD) is first replaced by the hex SHA-256 of itself,
 * here and in creds_hash_password alike; shorter ones go to crypt_r as they
 * are, so hashes made by other tools (mkpasswd, openssl passwd) verify.
 */
int creds_check_password(const struct cred *cred, const char *password);

/*
 * A password check that costs about as much as a real one, for unknown users,
 * so response time does not tell which user names exist.
 */
void creds_dummy_check(const char *password);

/*
 * 0 when ADDR (an envelope or header address, "local@domain") is allowed by
 * cred->senders, -1 otherwise. Domains compare case-insensitively by A-label
 * (a U-label entry or address matches its xn-- form); local parts compare
 * ASCII case-insensitively unless cred->sender_case_sensitive; "*" allows everything; "" (null sender) is never
 * allowed unless "*" is present. The last '@' splits the address; one with
 * no '@', an empty local part or an empty domain matches only "*". "@dom"
 * matches exactly dom, never a subdomain.
 */
int creds_sender_allowed(const struct cred *cred, const char *addr);

/* Config sender_case: 1 = sensitive for every user in c (default 0, insensitive). */
void creds_set_sender_case(struct creds *c, int sensitive);

/*
 * Hash PASSWORD (1..CREDS_MAX_PASSWORD bytes) with yescrypt (fallback
 * sha512-crypt) and a fresh random salt into out (CREDS_HASH_MAX bytes is
 * always enough). 0 / -1.
 */
int creds_hash_password(const char *password, char *out, size_t outlen, char *err, size_t errlen);

/*
 * Add or update USER in the file at PATH (created with mode 0640 if absent),
 * preserving every other line and comment; written atomically (temp file,
 * fsync, rename). hash == NULL keeps the existing hash (for enable/disable or
 * senders changes on an existing user); senders == NULL keeps existing senders
 * (new user: "*" is NOT implied; a new user without senders gets an empty
 * list, which allows nothing, and the tool warns). disabled: -1 keep, 0/1 set
 * (a new user: -1 means enabled). A file that does not parse is left alone
 * (the error is creds_load's). An existing file keeps its mode, owner and
 * group. Concurrent updates are serialized with flock(2) on the file.
 */
int creds_update_file(const char *path, const char *user, const char *hash, const char *senders,
		      int disabled, char *err, size_t errlen);

/*
 * creds_update_file that also sets the sunset: -1 keeps the existing one
 * (none for a new user), 0 removes it, else a value from creds_parse_date.
 */
int creds_update_file_sunset(const char *path, const char *user, const char *hash,
			     const char *senders, int disabled, time_t sunset, char *err,
			     size_t errlen);

/*
 * Remove USER's line from the file at PATH (mxrelayctl passwd --delete),
 * keeping every other line, comment, the mode, owner and group; the same
 * lock, temp file, fsync and rename as creds_update_file. -1 with err when
 * the file is absent, does not load, or has no such user.
 */
int creds_delete_user(const char *path, const char *user, char *err, size_t errlen);

/*
 * "YYYY-MM-DD" (a real calendar date) into the first second after that day
 * UTC: the date names the last day that still works. 0 / -1.
 */
int creds_parse_date(const char *v, time_t *out);

/* The inverse of creds_parse_date: "YYYY-MM-DD" into out (11 bytes are enough). */
void creds_format_date(time_t sunset, char *out, size_t outlen);

#endif
