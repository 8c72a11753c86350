/*
 * Unit tests for mta/shared/creds: parsing (good and bad files), lookup,
 * password checks (yescrypt, sha512-crypt, long passwords), the sender rule
 * and the file rewrite. Every file lives in a fresh mkdtemp directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include "mta/shared/creds.h"

#include <crypt.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* sha512-crypt of "Hello world!" from the algorithm's reference test vectors */
#define HELLO_PW "Hello world!"
#define H                                                                                          \
	"$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdF"  \
	"CoEOfaS35inz1"

static char tmpdir[128];

/* ---- helpers ---- */

static int
setup_dir(void **state)
{
	const char *base = getenv("TMPDIR");

	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "%s/test_creds.XXXXXX", base ? base : "/tmp");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int
teardown_dir(void **state)
{
	(void)state;
	return tu_rmtree(tmpdir);
}

static void
path_of(char *out, size_t size, const char *name)
{
	snprintf(out, size, "%s/%s", tmpdir, name);
}

static void
write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* The whole file as a string; the caller frees it. */
static char *
read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long len;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	len = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)len + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	return buf;
}

/* LEN bytes cycling through 1..255: every byte value but NUL. */
static char *
make_password(size_t len)
{
	char *pw = malloc(len + 1);
	size_t i;

	assert_non_null(pw);
	for (i = 0; i < len; i++)
		pw[i] = (char)(1 + i % 255);
	pw[len] = '\0';
	return pw;
}

static size_t
count_dir_entries(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* ---- parsing: good files ---- */

struct good_case {
	const char *label;
	const char *text;
	size_t nusers;
	const char *user; /* looked at below */
	int disabled;
	size_t nsenders;
	const char *last_sender; /* after trimming; NULL when none */
};

static const struct good_case good_cases[] = {
    {"one user", "alice:" H ":enabled:a@example.com\n", 1, "alice", 0, 1, "a@example.com"},
    {"comments and blanks", "# users\n\n   \n\t# indented comment\nalice:" H ":enabled:*\n", 1,
     "alice", 0, 1, "*"},
    {"no final newline", "alice:" H ":disabled:@example.com", 1, "alice", 1, 1, "@example.com"},
    {"CRLF lines", "alice:" H ":enabled:@a.org\r\nbob:" H ":enabled:\r\n", 2, "alice", 0, 1,
     "@a.org"},
    {"empty senders", "bob:" H ":disabled:\n", 1, "bob", 1, 0, NULL},
    {"blank senders", "bob:" H ":enabled:  \t\n", 1, "bob", 0, 0, NULL},
    {"senders trimmed", "carol:" H ":enabled: a@x.org ,\t@Y.org , * \n", 1, "carol", 0, 3, "*"},
    {"yescrypt hash",
     "dave:$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd"
     ".RhAtQ7:enabled:d@x.org\n",
     1, "dave", 0, 1, "d@x.org"},
    {"utf-8 user", "j\xc3\xb6rg:" H ":enabled:j@x.org\n", 1, "j\xc3\xb6rg", 0, 1, "j@x.org"},
    {"empty file", "", 0, NULL, 0, 0, NULL},
    {"only comments", "# nothing\n#here\n", 0, NULL, 0, 0, NULL},
};

static void
check_good(const char *label, const char *path, const struct good_case *gc)
{
	struct creds *c = NULL;
	const struct cred *cr;
	char err[512] = "";

	if (creds_load(&c, path, err, sizeof err) != 0)
		fail_msg("%s: unexpected error: %s", label, err);
	assert_int_equal(creds_count(c), gc->nusers);
	if (gc->user) {
		cr = creds_find(c, gc->user);
		assert_non_null(cr);
		assert_string_equal(cr->user, gc->user);
		assert_int_equal(cr->hash[0], '$');
		assert_int_equal(cr->disabled, gc->disabled);
		assert_int_equal(cr->nsenders, gc->nsenders);
		if (gc->last_sender)
			assert_string_equal(cr->senders[cr->nsenders - 1], gc->last_sender);
	}
	creds_free(c);
}

static void
test_parse_good(void **state)
{
	char path[256];
	size_t i;

	(void)state;
	path_of(path, sizeof path, "good");
	for (i = 0; i < sizeof good_cases / sizeof good_cases[0]; i++) {
		write_file(path, good_cases[i].text, strlen(good_cases[i].text));
		check_good(good_cases[i].label, path, &good_cases[i]);
	}
}

/* Exactly at the bounds: a 4096-byte line, 256 senders. */
static void
test_parse_bounds_ok(void **state)
{
	struct good_case gc = {"bounds", NULL, 1, "u", 0, 0, NULL};
	char path[256], *text = calloc(1, 16384);
	size_t len, i;

	(void)state;
	assert_non_null(text);
	path_of(path, sizeof path, "bounds");
	len = (size_t)sprintf(text, "u:" H ":enabled:");
	for (i = 0; i < CREDS_MAX_SENDERS; i++)
		len += (size_t)sprintf(text + len, "%s@%zu.org", i ? ",s" : "s", i);
	write_file(path, text, len);
	gc.nsenders = CREDS_MAX_SENDERS;
	gc.last_sender = "s@255.org";
	check_good("256 senders", path, &gc);

	len = (size_t)sprintf(text, "u:" H ":enabled:a@");
	memset(text + len, 'd', CREDS_MAX_LINE - len);
	text[CREDS_MAX_LINE] = '\n';
	write_file(path, text, CREDS_MAX_LINE + 1);
	gc.nsenders = 1;
	gc.last_sender = NULL;
	check_good("4096-byte line", path, &gc);
	free(text);
}

/* ---- parsing: bad files ---- */

struct bad_case {
	const char *label;
	const char *text;
	size_t len; /* 0: strlen(text) */
	int line;
	const char *reason;
};

static const struct bad_case bad_cases[] = {
    {"missing fields", "alice:" H ":enabled\n", 0, 1, "missing fields"},
    {"user only", "alice\n", 0, 1, "missing fields"},
    {"too many fields", "alice:" H ":enabled:a@x.org:sunset=2027-01-01:more\n", 0, 1, "too many fields"},
    {"bad fifth field", "alice:" H ":enabled:a@x.org:more\n", 0, 1, "fifth field must be sunset="},
    {"empty user", ":" H ":enabled:\n", 0, 1, "empty user name"},
    {"user with space", "al ice:" H ":enabled:\n", 0, 1, "user name contains"},
    {"user after tab", "\talice:" H ":enabled:\n", 0, 1, "user name contains"},
    {"user with control", "al\x01ice:" H ":enabled:\n", 0, 1, "user name contains"},
    {"plain password", "alice:secret:enabled:\n", 0, 1, "does not start with '$'"},
    {"empty hash", "alice::enabled:\n", 0, 1, "does not start with '$'"},
    {"hash with space", "alice:$6$ab cd:enabled:\n", 0, 1, "hash contains whitespace"},
    {"unknown method", "alice:$nope$abc$def:enabled:\n", 0, 1, "not supported"},
    {"bad state", "alice:" H ":yes:\n", 0, 1, "state must be"},
    {"state case", "alice:" H ":Enabled:\n", 0, 1, "state must be"},
    {"empty state", "alice:" H "::\n", 0, 1, "state must be"},
    {"duplicate", "# c\nalice:" H ":enabled:\nalice:" H ":disabled:\n", 0, 3,
     "duplicate user 'alice' (first on line 2)"},
    {"earliest duplicate",
     "bob:" H ":enabled:\nalice:" H ":enabled:\nbob:" H ":enabled:\nalice:" H ":enabled:\n", 0, 3,
     "duplicate user 'bob' (first on line 1)"},
    {"sender without @", "alice:" H ":enabled:bob\n", 0, 1, "not an address"},
    {"empty sender entry", "alice:" H ":enabled:a@x.org,,b@y.org\n", 0, 1, "empty sender"},
    {"trailing comma", "alice:" H ":enabled:a@x.org,\n", 0, 1, "empty sender"},
    {"bare @", "alice:" H ":enabled:@\n", 0, 1, "empty domain"},
    {"empty domain", "alice:" H ":enabled:a@\n", 0, 1, "empty domain"},
    {"glob sender", "alice:" H ":enabled:*@x.org\n", 0, 1, "only allowed on its own"},
    {"space in sender", "alice:" H ":enabled:a b@x.org\n", 0, 1, "sender entry contains"},
    {"error on line 4", "# ok\nalice:" H ":enabled:\n\nbob:" H ":maybe:\n", 0, 4, "state must be"},
    {"NUL byte", "# c\nalice:" H ":enabled:\0x\n", sizeof("# c\nalice:" H ":enabled:\0x\n") - 1, 2,
     "NUL byte"},
};

static void
check_bad(const char *label, const char *path, int line, const char *reason)
{
	struct creds *c = (struct creds *)&c; /* must come back NULL */
	char err[512] = "", prefix[300];

	if (creds_load(&c, path, err, sizeof err) != -1)
		fail_msg("%s: loaded, expected an error", label);
	assert_null(c);
	snprintf(prefix, sizeof prefix, "%s:%d: ", path, line);
	if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err + strlen(prefix), reason))
		fail_msg("%s: got \"%s\", want \"%s%s\"", label, err, prefix, reason);
}

static void
test_parse_bad(void **state)
{
	char path[256];
	size_t i;

	(void)state;
	path_of(path, sizeof path, "bad");
	for (i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		const struct bad_case *bc = &bad_cases[i];

		write_file(path, bc->text, bc->len ? bc->len : strlen(bc->text));
		check_bad(bc->label, path, bc->line, bc->reason);
	}
}

/* One past the bounds: a 4097-byte line, 257 senders. */
static void
test_parse_bounds_bad(void **state)
{
	char path[256], *text = calloc(1, 16384);
	size_t len, hdr, i;

	(void)state;
	assert_non_null(text);
	if (text == NULL) /* gcc 12 -O2 -fsanitize: -Warray-bounds on the NULL path otherwise */
		abort();
	path_of(path, sizeof path, "bounds_bad");
	len = (size_t)sprintf(text, "# first\nu:" H ":enabled:");
	for (i = 0; i <= CREDS_MAX_SENDERS; i++)
		len += (size_t)sprintf(text + len, "%s@%zu.org", i ? ",s" : "s", i);
	write_file(path, text, len);
	check_bad("257 senders", path, 2, "more than 256 senders");

	hdr = (size_t)sprintf(text, "# first\n# second\n");
	len = hdr + (size_t)sprintf(text + hdr, "u:" H ":enabled:a@");
	/* pad the third line to one byte over the limit */
	memset(text + len, 'd', hdr + CREDS_MAX_LINE + 1 - len);
	len = hdr + CREDS_MAX_LINE + 1;
	text[len++] = '\n';
	write_file(path, text, len);
	check_bad("4097-byte line", path, 3, "line longer than 4096 bytes");
	free(text);
}

static void
test_load_missing_file(void **state)
{
	struct creds *c = NULL;
	char path[256], err[512] = "", want[300];

	(void)state;
	path_of(path, sizeof path, "does-not-exist");
	assert_int_equal(creds_load(&c, path, err, sizeof err), -1);
	assert_null(c);
	snprintf(want, sizeof want, "%s: %s", path, strerror(ENOENT));
	assert_string_equal(err, want);
}

/* ---- lookup ---- */

static void
test_find(void **state)
{
	static const struct {
		const char *user;
		int found;
	} cases[] = {
	    {"alice", 1}, {"bob", 1},    {"Carol", 1}, {"carol", 0}, {"Alice", 0},
	    {"ali", 0},   {"alicex", 0}, {"", 0},      {"zed", 0},
	};
	struct creds *c = NULL;
	char path[256], err[512] = "";
	const char *text;
	size_t i;

	(void)state;
	path_of(path, sizeof path, "find");
	text = "bob:" H ":enabled:\nalice:" H ":enabled:\nCarol:" H ":enabled:\n";
	write_file(path, text, strlen(text));
	assert_int_equal(creds_load(&c, path, err, sizeof err), 0);
	assert_int_equal(creds_count(c), 3);
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct cred *cr = creds_find(c, cases[i].user);

		if (!cases[i].found != !cr)
			fail_msg("find '%s': want %s", cases[i].user,
			         cases[i].found ? "hit" : "miss");
		if (cr)
			assert_string_equal(cr->user, cases[i].user);
	}
	assert_null(creds_find(NULL, "alice"));
	creds_free(c);
}

/* ---- passwords ---- */

enum maker { MK_API, MK_CRYPT_Y, MK_CRYPT_6 };

struct pw_case {
	const char *label;
	enum maker how;
	const char *text; /* NULL: make_password(len) */
	size_t len;
};

static const struct pw_case pw_cases[] = {
    {"api short", MK_API, "correct horse battery staple", 0},
    {"api one byte", MK_API, "x", 0},
    {"api colon, spaces, tab", MK_API, " a:b c\t", 0},
    {"api 511 bytes (libcrypt's limit)", MK_API, NULL, 511},
    {"api 512 bytes (pre-hashed)", MK_API, NULL, 512},
    {"api 1000 bytes", MK_API, NULL, 1000},
    {"api 1024 bytes", MK_API, NULL, CREDS_MAX_PASSWORD},
    {"crypt_r yescrypt", MK_CRYPT_Y, "s3cret", 0},
    {"crypt_r yescrypt, all byte values", MK_CRYPT_Y, NULL, 300},
    {"crypt_r sha512-crypt", MK_CRYPT_6, "s3cret", 0},
    {"crypt_r sha512-crypt 511 bytes", MK_CRYPT_6, NULL, 511},
};

static void
make_hash(enum maker how, const char *pw, char *out, size_t outlen)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE], err[256] = "";
	struct crypt_data *data;
	const char *res;

	if (how == MK_API) {
		if (creds_hash_password(pw, out, outlen, err, sizeof err) != 0)
			fail_msg("creds_hash_password: %s", err);
		assert_memory_equal(out, "$y$", 3);
		return;
	}
	assert_non_null(
	    crypt_gensalt_rn(how == MK_CRYPT_Y ? "$y$" : "$6$", 0, NULL, 0, salt, sizeof salt));
	data = calloc(1, sizeof *data);
	assert_non_null(data);
	res = crypt_r(pw, salt, data);
	assert_non_null(res);
	assert_int_equal(res[0], '$');
	assert_true(strlen(res) < outlen);
	strcpy(out, res);
	free(data);
}

static void
check_pw(const char *label, const char *variant, const char *hash, const char *pw, int want)
{
	struct cred cr = {.user = "u", .hash = (char *)hash};

	if (creds_check_password(&cr, pw) != want)
		fail_msg("%s: %s: want %d", label, variant, want);
}

static void
test_password(void **state)
{
	char hash[CREDS_HASH_MAX];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof pw_cases / sizeof pw_cases[0]; i++) {
		const struct pw_case *pc = &pw_cases[i];
		char *pw = pc->text ? strdup(pc->text) : make_password(pc->len);
		size_t len = strlen(pw);
		char *wrong = malloc(len + 2);

		assert_non_null(pw);
		assert_non_null(wrong);
		make_hash(pc->how, pw, hash, sizeof hash);
		check_pw(pc->label, "right password", hash, pw, 0);

		memcpy(wrong, pw, len + 1);
		wrong[len - 1] = wrong[len - 1] == 'z' ? 'y' : 'z';
		check_pw(pc->label, "last byte changed", hash, wrong, -1);
		memcpy(wrong, pw, len + 1);
		wrong[0] = wrong[0] == 'z' ? 'y' : 'z';
		check_pw(pc->label, "first byte changed", hash, wrong, -1);
		if (len > 1) {
			memcpy(wrong, pw, len + 1);
			wrong[len - 1] = '\0';
			check_pw(pc->label, "one byte shorter", hash, wrong, -1);
		}
		if (len < CREDS_MAX_PASSWORD) {
			memcpy(wrong, pw, len);
			strcpy(wrong + len, "z");
			check_pw(pc->label, "one byte longer", hash, wrong, -1);
		}
		free(wrong);
		free(pw);
	}
}

/* A hash made elsewhere (the sha512-crypt reference vector) verifies. */
static void
test_password_foreign_hash(void **state)
{
	(void)state;
	check_pw("reference", "right", H, HELLO_PW, 0);
	check_pw("reference", "wrong", H, "Hello world", -1);
	check_pw("reference", "case", H, "hello world!", -1);
}

static void
test_password_limits(void **state)
{
	static const char *const broken[] = {
	    "*", "!" H, "$6$saltstring", "$6$saltstring$", "", "$", "$nope$x$y",
	};
	char hash[CREDS_HASH_MAX], err[256] = "";
	char *pw = make_password(CREDS_MAX_PASSWORD + 1);
	struct cred cr = {.user = "u", .hash = (char *)H};
	size_t i;

	(void)state;
	assert_int_equal(creds_hash_password(pw, hash, sizeof hash, err, sizeof err), -1);
	assert_non_null(strstr(err, "longer than 1024 bytes"));
	assert_int_equal(creds_check_password(&cr, pw), -1);
	assert_int_equal(creds_hash_password("", hash, sizeof hash, err, sizeof err), -1);
	assert_string_equal(err, "empty password");
	assert_int_equal(creds_check_password(&cr, ""), -1);
	assert_int_equal(creds_check_password(&cr, NULL), -1);
	assert_int_equal(creds_check_password(NULL, HELLO_PW), -1);
	/* too small an output buffer is an error, not a truncated hash */
	assert_int_equal(creds_hash_password("pw", hash, 20, err, sizeof err), -1);
	for (i = 0; i < sizeof broken / sizeof broken[0]; i++)
		check_pw("broken hash", broken[i], broken[i], HELLO_PW, -1);
	free(pw);
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Unknown users must cost about what known ones do (generous bounds: CI noise). */
static void
test_dummy_check_cost(void **state)
{
	char hash[CREDS_HASH_MAX], err[256] = "";
	struct cred cr = {.user = "u", .hash = hash};
	double real = 1e9, dummy = 1e9, t;
	char *longpw = make_password(1000);
	int i;

	(void)state;
	assert_int_equal(creds_hash_password("right", hash, sizeof hash, err, sizeof err), 0);
	for (i = 0; i < 3; i++) {
		t = now_ms();
		assert_int_equal(creds_check_password(&cr, "wrong"), -1);
		t = now_ms() - t;
		real = t < real ? t : real;
		t = now_ms();
		creds_dummy_check("wrong");
		t = now_ms() - t;
		dummy = t < dummy ? t : dummy;
	}
	if (dummy < real / 4 || dummy > real * 4)
		fail_msg("dummy check %.2f ms vs real check %.2f ms", dummy, real);
	creds_dummy_check(longpw);
	creds_dummy_check("");
	creds_dummy_check(NULL);
	free(longpw);
}

struct thread_arg {
	struct cred cred;
	char hash[CREDS_HASH_MAX];
	char pw[32];
	int right, wrong;
};

static void *
check_thread(void *p)
{
	struct thread_arg *a = p;
	int i;

	for (i = 0; i < 3; i++) {
		a->right += creds_check_password(&a->cred, a->pw) == 0;
		a->wrong += creds_check_password(&a->cred, "not it") == -1;
	}
	return NULL;
}

/* crypt_r with per-call state: concurrent checks do not disturb each other. */
static void
test_password_threads(void **state)
{
	struct thread_arg args[4];
	pthread_t tid[4];
	int i;

	(void)state;
	for (i = 0; i < 4; i++) {
		memset(&args[i], 0, sizeof args[i]);
		snprintf(args[i].pw, sizeof args[i].pw, "password-%d", i);
		make_hash(i % 2 ? MK_CRYPT_6 : MK_API, args[i].pw, args[i].hash,
		          sizeof args[i].hash);
		args[i].cred.user = "u";
		args[i].cred.hash = args[i].hash;
	}
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&tid[i], NULL, check_thread, &args[i]), 0);
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(tid[i], NULL), 0);
		assert_int_equal(args[i].right, 3);
		assert_int_equal(args[i].wrong, 3);
	}
}

/* ---- allowed senders ---- */

struct sender_case {
	const char *label;
	const char *list;
	const char *addr;
	int want;
	int sensitive; /* config sender_case = sensitive */
};

static const struct sender_case sender_cases[] = {
    {"exact", "scans@example.com", "scans@example.com", 0, 0},
    {"exact, domain case", "scans@example.com", "scans@EXAMPLE.Com", 0, 0},
    {"exact, entry domain case", "scans@Example.COM", "scans@example.com", 0, 0},
    {"exact, local part case", "scans@example.com", "Scans@example.com", 0, 0},
    {"exact, local part and domain case", "scans@example.com", "SCANS@Example.COM", 0, 0},
    {"exact, entry local part case", "Scans@example.com", "scans@example.com", 0, 0},
    {"exact, local part case, sensitive", "scans@example.com", "Scans@example.com", -1, 1},
    {"exact, sensitive, same bytes", "Scans@example.com", "Scans@example.com", 0, 1},
    {"exact, non-ASCII local part is not folded", "j\xc3\xb6rg@example.com",
     "J\xc3\x96RG@example.com", -1, 0},
    {"IDN entry, A-label address", "scans@b\xc3\xbc""cher.example", "scans@xn--bcher-kva.example", 0, 0},
    {"A-label entry, U-label address", "@xn--bcher-kva.example", "a@b\xc3\xbc""cher.example", 0, 0},
    {"A-label entry, A-label address case", "@XN--bcher-kva.example", "a@xn--BCHER-kva.example", 0, 0},
    {"IDN entry, other IDN", "@b\xc3\xbc""cher.example", "a@bucher.example", -1, 0},
    {"IDN entry, U-label address", "@b\xc3\xbc""cher.example", "a@b\xc3\xbc""cher.example", 0, 0},
    {"exact, other local part", "scans@example.com", "scan@example.com", -1, 0},
    {"exact, longer local part", "scans@example.com", "xscans@example.com", -1, 0},
    {"exact, subdomain", "scans@example.com", "scans@sub.example.com", -1, 0},
    {"domain", "@example.com", "anyone@example.com", 0, 0},
    {"domain, case", "@example.com", "anyone@ExAmPlE.CoM", 0, 0},
    {"domain, entry case", "@EXAMPLE.com", "anyone@example.com", 0, 0},
    {"domain, look-alike", "@example.com", "a@evil-example.com", -1, 0},
    {"domain, glued look-alike", "@example.com", "a@evilexample.com", -1, 0},
    {"domain, subdomain", "@example.com", "a@sub.example.com", -1, 0},
    {"domain, as a prefix", "@example.com", "a@example.com.evil.org", -1, 0},
    {"domain, second @", "@example.com", "a@example.com@evil.org", -1, 0},
    {"domain, last @ decides", "@example.com", "a@evil.org@example.com", 0, 0},
    {"domain, null sender", "@example.com", "", -1, 0},
    {"exact, null sender", "a@example.com", "", -1, 0},
    {"domain, no @", "@example.com", "example.com", -1, 0},
    {"exact, no @", "a@example.com", "a", -1, 0},
    {"domain, empty local part", "@example.com", "@example.com", -1, 0},
    {"domain, empty domain", "@example.com", "a@", -1, 0},
    {"star", "*", "anyone@anywhere.org", 0, 0},
    {"star, null sender", "*", "", 0, 0},
    {"star, no @", "*", "postmaster", 0, 0},
    {"star in a list", "a@x.org,*", "b@y.org", 0, 0},
    {"second entry", "a@x.org, @y.org", "b@Y.org", 0, 0},
    {"no entry matches", "a@x.org, @y.org", "b@z.org", -1, 0},
    {"empty list", "", "a@x.org", -1, 0},
    {"empty list, null sender", "", "", -1, 0},
};

static void
test_sender_allowed(void **state)
{
	char path[256], line[512], err[512] = "";
	struct creds *c;
	size_t i;

	(void)state;
	path_of(path, sizeof path, "senders");
	for (i = 0; i < sizeof sender_cases / sizeof sender_cases[0]; i++) {
		const struct sender_case *sc = &sender_cases[i];
		int n = snprintf(line, sizeof line, "u:" H ":enabled:%s\n", sc->list);

		/* through the file, so the parser's view of the list is tested too */
		write_file(path, line, (size_t)n);
		c = NULL;
		if (creds_load(&c, path, err, sizeof err) != 0)
			fail_msg("%s: %s", sc->label, err);
		creds_set_sender_case(c, sc->sensitive);
		if (creds_sender_allowed(creds_find(c, "u"), sc->addr) != sc->want)
			fail_msg("%s: list \"%s\", address \"%s\": want %d", sc->label, sc->list,
			         sc->addr, sc->want);
		creds_free(c);
	}
	assert_int_equal(creds_sender_allowed(NULL, "a@x.org"), -1);
}

static void
test_check_user_and_senders(void **state)
{
	static const struct {
		const char *s;
		int ok;
	} users[] =
	    {
	        {"alice", 1}, {"j\xc3\xb6rg", 1}, {"a#", 1},    {"a.b-c_d@x", 1},
	        {"", 0},      {"a:b", 0},         {"a b", 0},   {"a\tb", 0},
	        {"a\nb", 0},  {"#a", 0},          {"a\x7f", 0},
	    },
	  lists[] = {
	      {"", 1},           {"  ", 1},    {"a@b", 1}, {"@b", 1},   {"*", 1},
	      {"a@b, @c ,*", 1}, {"a", 0},     {",", 0},   {"a@b,", 0}, {"@", 0},
	      {"a b@c", 0},      {"x:y@z", 0}, {"*@z", 0}, {"a@*", 0},
	  };
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof users / sizeof users[0]; i++)
		if ((creds_check_user(users[i].s, err, sizeof err) == 0) != users[i].ok)
			fail_msg("user \"%s\": want %s", users[i].s, users[i].ok ? "ok" : "error");
	for (i = 0; i < sizeof lists / sizeof lists[0]; i++)
		if ((creds_check_senders(lists[i].s, err, sizeof err) == 0) != lists[i].ok)
			fail_msg("senders \"%s\": want %s", lists[i].s,
			         lists[i].ok ? "ok" : "error");
}

/* ---- rewriting the file ---- */

static mode_t
mode_of(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	return st.st_mode & 07777;
}

static void
expect_file(const char *label, const char *path, const char *want)
{
	char *got = read_file(path);

	if (strcmp(got, want) != 0)
		fail_msg("%s: file is\n%s\nwant\n%s", label, got, want);
	free(got);
}

static void
update_ok(const char *path, const char *user, const char *hash, const char *senders, int disabled)
{
	char err[512] = "";

	if (creds_update_file(path, user, hash, senders, disabled, err, sizeof err) != 0)
		fail_msg("update %s: %s", user, err);
}

static void
test_update_new_file(void **state)
{
	char path[256], hash[CREDS_HASH_MAX], want[600], err[512] = "";
	size_t before = count_dir_entries();
	const struct cred *cr;
	struct creds *c = NULL;

	(void)state;
	path_of(path, sizeof path, "new_passwd");
	assert_int_equal(creds_hash_password("pw one", hash, sizeof hash, err, sizeof err), 0);
	update_ok(path, "alice", hash, "@example.com", -1);
	assert_int_equal(mode_of(path), 0640);
	snprintf(want, sizeof want, "alice:%s:enabled:@example.com\n", hash);
	expect_file("new file", path, want);
	/* no temp file left beside it */
	assert_int_equal(count_dir_entries(), before + 1);

	assert_int_equal(creds_load(&c, path, err, sizeof err), 0);
	cr = creds_find(c, "alice");
	assert_non_null(cr);
	assert_int_equal(cr->disabled, 0);
	assert_int_equal(creds_check_password(cr, "pw one"), 0);
	assert_int_equal(creds_check_password(cr, "pw two"), -1);
	assert_int_equal(creds_sender_allowed(cr, "x@example.com"), 0);
	creds_free(c);
}

static void
test_update_keeps_comments(void **state)
{
	static const char initial[] = "# mxrelay users\n"
	                              "\n"
	                              "# bob is the scanner\n"
	                              "bob:" H ":enabled:b@x.org\n"
	                              "# end\n";
	char path[256], h2[CREDS_HASH_MAX], want[2048], err[512] = "";

	(void)state;
	path_of(path, sizeof path, "comments_passwd");
	assert_int_equal(creds_hash_password("two", h2, sizeof h2, err, sizeof err), 0);
	write_file(path, initial, strlen(initial));

	update_ok(path, "alice", h2, NULL, -1);
	snprintf(want, sizeof want, "%salice:%s:enabled:\n", initial, h2);
	expect_file("add alice", path, want);

	update_ok(path, "bob", h2, NULL, -1);
	snprintf(want, sizeof want,
	         "# mxrelay users\n\n# bob is the scanner\nbob:%s:enabled:b@x.org\n# end\n"
	         "alice:%s:enabled:\n",
	         h2, h2);
	expect_file("new hash for bob", path, want);

	update_ok(path, "alice", NULL, " a@x.org , @Y.org", -1);
	snprintf(want, sizeof want,
	         "# mxrelay users\n\n# bob is the scanner\nbob:%s:enabled:b@x.org\n# end\n"
	         "alice:%s:enabled:a@x.org,@Y.org\n",
	         h2, h2);
	expect_file("senders for alice", path, want);

	update_ok(path, "alice", NULL, "", -1);
	snprintf(want, sizeof want,
	         "# mxrelay users\n\n# bob is the scanner\nbob:%s:enabled:b@x.org\n# end\n"
	         "alice:%s:enabled:\n",
	         h2, h2);
	expect_file("empty senders for alice", path, want);
}

static void
test_update_disabled_roundtrip(void **state)
{
	static const struct {
		int arg, want;
	} steps[] = {{1, 1}, {-1, 1}, {0, 0}, {-1, 0}, {1, 1}, {0, 0}};
	char path[256], err[512] = "";
	const struct cred *cr;
	struct creds *c;
	size_t i;

	(void)state;
	path_of(path, sizeof path, "state_passwd");
	update_ok(path, "alice", H, "a@x.org,@y.org", -1);
	update_ok(path, "bob", H, NULL, 1);
	for (i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		update_ok(path, "alice", NULL, NULL, steps[i].arg);
		c = NULL;
		assert_int_equal(creds_load(&c, path, err, sizeof err), 0);
		cr = creds_find(c, "alice");
		assert_non_null(cr);
		if (cr->disabled != steps[i].want)
			fail_msg("step %zu: disabled=%d want %d", i, cr->disabled, steps[i].want);
		assert_string_equal(cr->hash, H);
		assert_int_equal(cr->nsenders, 2);
		assert_string_equal(cr->senders[1], "@y.org");
		/* bob, created disabled, stays so */
		assert_int_equal(creds_find(c, "bob")->disabled, 1);
		creds_free(c);
	}
}

static void
test_update_keeps_mode(void **state)
{
	static const mode_t modes[] = {0600, 0644, 0640, 0400};
	char path[256];
	size_t i;

	(void)state;
	path_of(path, sizeof path, "mode_passwd");
	update_ok(path, "alice", H, NULL, -1);
	for (i = 0; i < sizeof modes / sizeof modes[0]; i++) {
		assert_int_equal(chmod(path, modes[i]), 0);
		update_ok(path, "alice", NULL, "a@x.org", (int)(i % 2));
		assert_int_equal(mode_of(path), modes[i]);
	}
}

struct update_bad {
	const char *label;
	const char *user;
	const char *hash;
	const char *senders;
	int disabled;
	const char *reason;
};

static const struct update_bad update_bad_cases[] = {
    {"new user needs a password", "zed", NULL, "a@x.org", -1, "does not exist"},
    {"user with colon", "a:b", H, NULL, -1, "user name contains"},
    {"user with space", "a b", H, NULL, -1, "user name contains"},
    {"user with newline", "a\nb", H, NULL, -1, "user name contains"},
    {"empty user", "", H, NULL, -1, "empty user name"},
    {"comment-looking user", "#a", H, NULL, -1, "starts with '#'"},
    {"plain hash", "alice", "plain", NULL, -1, "does not start with '$'"},
    {"hash with newline", "alice", "$6$a\nb:enabled:*", NULL, -1, "hash contains"},
    {"bad sender", "alice", H, "nope", -1, "not an address"},
    {"sender with colon", "alice", H, "a:b@x.org", -1, "sender entry contains"},
    {"bad disabled", "alice", H, NULL, 2, "disabled must be"},
};

static void
test_update_errors(void **state)
{
	static const char initial[] = "# keep me\nalice:" H ":enabled:a@x.org\n";
	char path[256], err[512], *longlist;
	size_t i, len = 0;

	(void)state;
	path_of(path, sizeof path, "errors_passwd");
	write_file(path, initial, strlen(initial));
	for (i = 0; i < sizeof update_bad_cases / sizeof update_bad_cases[0]; i++) {
		const struct update_bad *ub = &update_bad_cases[i];

		err[0] = '\0';
		if (creds_update_file(path, ub->user, ub->hash, ub->senders, ub->disabled, err,
		                      sizeof err) != -1)
			fail_msg("%s: update succeeded", ub->label);
		if (!strstr(err, ub->reason))
			fail_msg("%s: got \"%s\", want \"%s\"", ub->label, err, ub->reason);
		expect_file(ub->label, path, initial);
	}

	/* a list that is valid on its own but makes the line too long */
	longlist = malloc(CREDS_MAX_LINE + 1);
	assert_non_null(longlist);
	while (len + 20 < CREDS_MAX_LINE - 40)
		len += (size_t)sprintf(longlist + len, "%ssender%zu@x.org", len ? "," : "", len);
	assert_int_equal(creds_check_senders(longlist, err, sizeof err), 0);
	assert_int_equal(creds_update_file(path, "alice", H, longlist, -1, err, sizeof err), -1);
	assert_non_null(strstr(err, "would be longer than 4096 bytes"));
	expect_file("line too long", path, initial);
	free(longlist);
}

/* A file that does not parse is not rewritten; the error is creds_load's. */
static void
test_update_broken_file(void **state)
{
	static const char initial[] = "alice:" H ":enabled:\nbob:nohash:enabled:\n";
	char path[256], err[512] = "", prefix[300];

	(void)state;
	path_of(path, sizeof path, "broken_passwd");
	write_file(path, initial, strlen(initial));
	assert_int_equal(creds_update_file(path, "carol", H, NULL, -1, err, sizeof err), -1);
	snprintf(prefix, sizeof prefix, "%s:2: ", path);
	if (strncmp(err, prefix, strlen(prefix)) != 0)
		fail_msg("got \"%s\", want prefix \"%s\"", err, prefix);
	expect_file("broken", path, initial);
}

/* A failed update of a file that did not exist leaves no file behind. */
static void
test_update_no_leftovers(void **state)
{
	char path[256], err[512] = "";
	size_t before = count_dir_entries();

	(void)state;
	path_of(path, sizeof path, "never_passwd");
	assert_int_equal(creds_update_file(path, "zed", NULL, NULL, -1, err, sizeof err), -1);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(count_dir_entries(), before);

	path_of(path, sizeof path, "no/such/dir/passwd");
	assert_int_equal(creds_update_file(path, "zed", H, NULL, -1, err, sizeof err), -1);
	assert_non_null(strstr(err, "no such directory"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_good),
	    cmocka_unit_test(test_parse_bounds_ok),
	    cmocka_unit_test(test_parse_bad),
	    cmocka_unit_test(test_parse_bounds_bad),
	    cmocka_unit_test(test_load_missing_file),
	    cmocka_unit_test(test_find),
	    cmocka_unit_test(test_password),
	    cmocka_unit_test(test_password_foreign_hash),
	    cmocka_unit_test(test_password_limits),
	    cmocka_unit_test(test_dummy_check_cost),
	    cmocka_unit_test(test_password_threads),
	    cmocka_unit_test(test_sender_allowed),
	    cmocka_unit_test(test_check_user_and_senders),
	    cmocka_unit_test(test_update_new_file),
	    cmocka_unit_test(test_update_keeps_comments),
	    cmocka_unit_test(test_update_disabled_roundtrip),
	    cmocka_unit_test(test_update_keeps_mode),
	    cmocka_unit_test(test_update_errors),
	    cmocka_unit_test(test_update_broken_file),
	    cmocka_unit_test(test_update_no_leftovers),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
