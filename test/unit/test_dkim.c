/*
 * Unit tests for dkim/: key generation and loading, TXT records (RFC 8463
 * values, zone lines, matching a published record) and signing. Every
 * signature is checked by a real verifier, python3-dkim under Debian's
 * /usr/bin/python3 (dkimpy), with the key records served from a file: no
 * DNS. Tampered copies must fail. Keys and messages live in a fresh mkdtemp
 * directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include "dkim/keys.h"
#include "dkim/signer.h"
#include "dkim/txt.h"

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#define DOMAIN "football.example.com"
#define PYTHON "/usr/bin/python3"

static char tmpdir[128];
static char testdata[512];

/* the keys of the whole run: made by mxdkim_keygen in setup */
static struct mxdkim_key *rsa_key, *ed_key, *rsa_other;
static char *rsa_txt, *ed_txt, *rsa_other_txt;
static char rsa_path[256], ed_path[256];
static char records[256]; /* key records file for the verifier */
static int nfile;         /* message files written */

/*
 * The verifier. argv: records file, then FILE:pass|fail... A file passes
 * when it has at least one DKIM-Signature and every one verifies.
 */
static const char verify_py[] =
    "import sys, dkim\n"
    "recs = {}\n"
    "for line in open(sys.argv[1], 'rb'):\n"
    "    line = line.rstrip(b'\\r\\n')\n"
    "    if not line or line.startswith(b';'):\n"
    "        continue\n"
    "    name, _, value = line.partition(b' ')\n"
    "    if value.startswith(b'TXT '):\n"
    "        value = value[4:]\n"
    "    recs[name.rstrip(b'.').lower()] = value\n"
    "def dnsfunc(name, timeout=5):\n"
    "    return recs.get(name.rstrip(b'.').lower())\n"
    "bad = 0\n"
    "for arg in sys.argv[2:]:\n"
    "    path, _, want = arg.rpartition(':')\n"
    "    msg = open(path, 'rb').read()\n"
    "    sigs = [h for h in dkim.rfc822_parse(msg)[0] if h[0].lower() == b'dkim-signature']\n"
    "    res = []\n"
    "    for i in range(len(sigs)):\n"
    "        try:\n"
    "            res.append(bool(dkim.DKIM(msg).verify(idx=i, dnsfunc=dnsfunc)))\n"
    "        except Exception as e:\n"
    "            res.append(repr(e))\n"
    "    got = 'pass' if sigs and all(r is True for r in res) else 'fail'\n"
    "    if got != want:\n"
    "        bad += 1\n"
    "        print('%s: want %s, got %s %r' % (path, want, got, res))\n"
    "sys.exit(1 if bad else 0)\n";

/*
 * Sanitizer builds: libopendkim leaks the parsed key of every Ed25519
 * signature inside dkim_privkey_load (see dkim/signer.c). The suppression
 * only matches with full stacks: ASan's fast unwinder stops inside
 * libcrypto (no frame pointers), above the libopendkim frame. Both hooks
 * are plain functions in other builds.
 */
const char *__lsan_default_options(void);
const char *__lsan_default_suppressions(void);

const char *
__lsan_default_options(void)
{
	return "fast_unwind_on_malloc=0";
}

const char *
__lsan_default_suppressions(void)
{
	return "leak:dkim_privkey_load\n";
}

/* ---- helpers ---- */

static char *
slurp(const char *path, size_t *lenp)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	if (buf != NULL) {
		buf[n] = '\0';
		if (lenp != NULL)
			*lenp = (size_t)n;
	}
	return buf;
}

static void
spit(const char *path, const char *a, size_t alen, const char *b, size_t blen)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(a, 1, alen, f), alen);
	if (blen > 0)
		assert_int_equal(fwrite(b, 1, blen, f), blen);
	assert_int_equal(fclose(f), 0);
}

/* Write headers + msg to a new file; its name is copied to path. */
static void
write_signed(char *path, size_t pathlen, const char *headers, const char *msg, size_t len)
{
	snprintf(path, pathlen, "%s/m%03d.eml", tmpdir, ++nfile);
	spit(path, headers, strlen(headers), msg, len);
}

/* Run the verifier on args ("FILE:pass", "FILE:fail", ...); true when all as wanted. */
static bool
verify_files(const char **args, int n)
{
	char script[256];
	const char *argv[64];
	int i, status;
	pid_t pid;

	assert_true(n + 4 < (int)(sizeof argv / sizeof argv[0]));
	snprintf(script, sizeof script, "%s/verify.py", tmpdir);
	argv[0] = PYTHON;
	argv[1] = script;
	argv[2] = records;
	for (i = 0; i < n; i++)
		argv[3 + i] = args[i];
	argv[3 + n] = NULL;
	fflush(stdout);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execv(PYTHON, (char *const *)argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Sign msg for DOMAIN with s, verify "signature + message", return the headers. */
static char *
sign_and_verify(const struct mxdkim_signer *s, const char *msg, size_t len)
{
	char err[256] = "", path[256], arg[300];
	const char *args[1] = {arg};
	char *h = NULL;

	if (mxdkim_sign(s, DOMAIN, msg, len, &h, err, sizeof err) != 0)
		fail_msg("mxdkim_sign: %s", err);
	write_signed(path, sizeof path, h, msg, len);
	snprintf(arg, sizeof arg, "%s:pass", path);
	if (!verify_files(args, 1))
		fail_msg("%s does not verify", path);
	return h;
}

/* A signer for DOMAIN with fresh copies of the run's keys: "rsa1", "ed1" as asked. */
static struct mxdkim_signer *
signer_with(bool rsa, bool ed)
{
	struct mxdkim_signer *s = mxdkim_signer_new();
	struct mxdkim_key *k;
	char err[256];

	assert_non_null(s);
	if (rsa) {
		assert_int_equal(mxdkim_key_load(&k, rsa_path, err, sizeof err), 0);
		assert_int_equal(mxdkim_signer_add(s, DOMAIN, "rsa1", k, err, sizeof err), 0);
	}
	if (ed) {
		assert_int_equal(mxdkim_key_load(&k, ed_path, err, sizeof err), 0);
		assert_int_equal(mxdkim_signer_add(s, DOMAIN, "ed1", k, err, sizeof err), 0);
	}
	/* the signatures verified below are made with the key handed over parsed (handoff.c) */
	assert_true(mxdkim_signer_parsed_once(s));
	return s;
}

/* Unfolded value of the n-th (0-based) DKIM-Signature field in headers, malloc'ed. */
static char *
sig_value(const char *headers, int n)
{
	const char *p = headers, *end;
	char *out, *o;

	for (;;) {
		p = strstr(p, "DKIM-Signature: ");
		if (p == NULL)
			return NULL;
		if (n-- == 0)
			break;
		p++;
	}
	p += strlen("DKIM-Signature: ");
	/* the field ends at a CRLF not followed by WSP */
	for (end = p; *end != '\0'; end++)
		if (end[0] == '\r' && end[1] == '\n' && end[2] != ' ' && end[2] != '\t')
			break;
	out = malloc((size_t)(end - p) + 1);
	assert_non_null(out);
	for (o = out; p < end; p++)
		if (*p != '\r' && *p != '\n')
			*o++ = *p;
	*o = '\0';
	return out;
}

/* the value of tag t in an unfolded signature (whitespace removed), or NULL */
static char *
sig_tag(const char *sig, const char *t)
{
	char *copy = strdup(sig), *save = NULL, *spec, *res = NULL;

	assert_non_null(copy);
	for (spec = strtok_r(copy, ";", &save); spec != NULL; spec = strtok_r(NULL, ";", &save)) {
		char *eq = strchr(spec, '='), *name = spec, *q, *o;

		if (eq == NULL)
			continue;
		*eq = '\0';
		while (*name == ' ' || *name == '\t')
			name++;
		for (q = name + strlen(name); q > name && (q[-1] == ' ' || q[-1] == '\t');)
			*--q = '\0';
		if (strcmp(name, t) != 0)
			continue;
		res = strdup(eq + 1);
		assert_non_null(res);
		for (q = res, o = res; *q; q++)
			if (*q != ' ' && *q != '\t')
				*o++ = *q;
		*o = '\0';
		break;
	}
	free(copy);
	return res;
}

/* how often name (lower case) is in the colon-separated h= list */
static int
h_count(const char *h, const char *name)
{
	char *copy = strdup(h), *save = NULL, *item;
	int n = 0;

	assert_non_null(copy);
	for (item = strtok_r(copy, ":", &save); item != NULL; item = strtok_r(NULL, ":", &save))
		if (strcasecmp(item, name) == 0)
			n++;
	free(copy);
	return n;
}

/* how many header fields named name msg has (before the first empty line) */
static int
field_count(const char *msg, size_t len, const char *name)
{
	size_t nl = strlen(name), i = 0;
	int n = 0;

	while (i < len) {
		if (msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n')
			break; /* empty line: end of header */
		if (i + nl < len && strncasecmp(msg + i, name, nl) == 0 && msg[i + nl] == ':')
			n++;
		while (i < len && msg[i] != '\n')
			i++;
		i++;
	}
	return n;
}

static int
count_sigs(const char *headers)
{
	const char *p = headers;
	int n = 0;

	while ((p = strstr(p, "DKIM-Signature: ")) != NULL) {
		if (p == headers || p[-1] == '\n')
			n++;
		p++;
	}
	return n;
}

/* The policy every signature must follow, for message msg. */
static void
check_policy(const char *headers, const char *msg, size_t len, int nsig)
{
	static const char *over[] = {"from",       "subject",      "date",        "to",
	                             "message-id", "mime-version", "content-type"};
	static const char *signed_once[] = {
	    "cc",      "reply-to",        "in-reply-to", "references", "content-transfer-encoding",
	    "list-id", "list-unsubscribe"};
	const char *line;
	int i, j;

	assert_int_equal(count_sigs(headers), nsig);
	assert_memory_equal(headers, "DKIM-Signature: ", 16);
	/* every line ends in CRLF; folded lines start with WSP; lines stay short */
	for (line = headers; *line != '\0';) {
		const char *eol = strstr(line, "\r\n");

		assert_non_null(eol);
		assert_true(eol - line <= 998);
		assert_null(memchr(line, '\n', (size_t)(eol - line)));
		line = eol + 2;
		if (*line != '\0' && strncmp(line, "DKIM-Signature: ", 16) != 0)
			assert_true(*line == ' ' || *line == '\t');
	}
	for (i = 0; i < nsig; i++) {
		char *sig = sig_value(headers, i), *a = sig_tag(sig, "a"), *c = sig_tag(sig, "c");
		char *h = sig_tag(sig, "h"), *t = sig_tag(sig, "t"), *d = sig_tag(sig, "d");

		assert_non_null(a);
		assert_true(strcmp(a, "rsa-sha256") == 0 || strcmp(a, "ed25519-sha256") == 0);
		assert_string_equal(c, "relaxed/relaxed");
		assert_string_equal(d, DOMAIN);
		assert_non_null(t);
		assert_true(atoll(t) > 1500000000);
		assert_null(sig_tag(sig, "x"));
		assert_null(sig_tag(sig, "l"));
		assert_non_null(h);
		assert_int_equal(h_count(h, "received"), 0);
		assert_int_equal(h_count(h, "return-path"), 0);
		assert_int_equal(h_count(h, "x-trace"), 0);
		for (j = 0; j < (int)(sizeof over / sizeof over[0]); j++)
			if (h_count(h, over[j]) != field_count(msg, len, over[j]) + 1)
				fail_msg("h=%s: %s %d times for %d fields", h, over[j],
				         h_count(h, over[j]), field_count(msg, len, over[j]));
		for (j = 0; j < (int)(sizeof signed_once / sizeof signed_once[0]); j++)
			assert_int_equal(h_count(h, signed_once[j]),
			                 field_count(msg, len, signed_once[j]));
		free(sig), free(a), free(c), free(h), free(t), free(d);
	}
}

/* ---- setup ---- */

static int
setup(void **state)
{
	static const char *const fixtures[] = {
	    "rfc8463-A1-ed25519-private.pem", "rfc8463-A1-rsa-private.pem", "rfc8463-A2-dns.zone",
	    "rfc8463-A3-signed.eml", "rfc6376-A1-unsigned.eml"};
	const char *base = getenv("TMPDIR");
	char err[256], path[600];
	FILE *f;

	/* the RFC vectors live in the checkout (test/data): missing is a failure, never a skip */
	snprintf(testdata, sizeof testdata, "%s/dkim", MXRELAY_TESTDATA_DIR);
	for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", testdata, fixtures[i]);
		if (access(path, R_OK) != 0) {
			fprintf(stderr, "test fixture %s: %s (see test/data/README.md)\n", path,
			        strerror(errno));
			return -1;
		}
	}
	snprintf(tmpdir, sizeof tmpdir, "%s/test_dkim.XXXXXX", base ? base : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(rsa_path, sizeof rsa_path, "%s/rsa.pem", tmpdir);
	snprintf(ed_path, sizeof ed_path, "%s/ed.pem", tmpdir);
	snprintf(path, sizeof path, "%s/other.pem", tmpdir);
	if (mxdkim_keygen(MXDKIM_RSA, 2048, rsa_path, 0, err, sizeof err) != 0 ||
	    mxdkim_keygen(MXDKIM_ED25519, 0, ed_path, 0, err, sizeof err) != 0 ||
	    mxdkim_keygen(MXDKIM_RSA, 0, path, 0, err, sizeof err) != 0 ||
	    mxdkim_key_load(&rsa_key, rsa_path, err, sizeof err) != 0 ||
	    mxdkim_key_load(&ed_key, ed_path, err, sizeof err) != 0 ||
	    mxdkim_key_load(&rsa_other, path, err, sizeof err) != 0 ||
	    mxdkim_key_txt(rsa_key, &rsa_txt, err, sizeof err) != 0 ||
	    mxdkim_key_txt(ed_key, &ed_txt, err, sizeof err) != 0 ||
	    mxdkim_key_txt(rsa_other, &rsa_other_txt, err, sizeof err) != 0) {
		fprintf(stderr, "setup: %s\n", err);
		return -1;
	}
	/* the records: ours, plus the RFC 8463 ones (same file format) */
	snprintf(records, sizeof records, "%s/records", tmpdir);
	snprintf(path, sizeof path, "%s/rfc8463-A2-dns.zone", testdata);
	f = fopen(records, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "rsa1._domainkey." DOMAIN " TXT %s\n", rsa_txt);
	fprintf(f, "ed1._domainkey." DOMAIN " TXT %s\n", ed_txt);
	fclose(f);
	{
		char *zone = slurp(path, NULL), *all = NULL;
		size_t n;

		if (zone == NULL)
			return -1;
		all = slurp(records, &n);
		f = fopen(records, "w");
		fprintf(f, "%s%s", all, zone);
		fclose(f);
		free(zone);
		free(all);
	}
	snprintf(path, sizeof path, "%s/verify.py", tmpdir);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fputs(verify_py, f);
	fclose(f);
	return 0;
}

static int
teardown(void **state)
{
	mxdkim_key_free(rsa_key);
	mxdkim_key_free(ed_key);
	mxdkim_key_free(rsa_other);
	free(rsa_txt);
	free(ed_txt);
	free(rsa_other_txt);
	return tu_rmtree(tmpdir);
}

/* ---- keys ---- */

static void
test_keygen_file(void **state)
{
	char path[256], err[256];
	struct stat st;
	struct mxdkim_key *k;
	char *before, *after;

	snprintf(path, sizeof path, "%s/gen.pem", tmpdir);
	assert_int_equal(mxdkim_keygen(MXDKIM_ED25519, 0, path, 0, err, sizeof err), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	before = slurp(path, NULL);
	assert_non_null(strstr(before, "-----BEGIN PRIVATE KEY-----"));

	/* exclusive create: the file stays as it was */
	assert_int_equal(mxdkim_keygen(MXDKIM_ED25519, 0, path, 0, err, sizeof err), -1);
	assert_non_null(strstr(err, "exists"));
	after = slurp(path, NULL);
	assert_string_equal(before, after);
	free(after);

	/* overwrite: a new key, still 0600, no temporary file left behind */
	assert_int_equal(
	    mxdkim_keygen(MXDKIM_RSA, 2048, path, MXDKIM_KEYGEN_OVERWRITE, err, sizeof err), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	after = slurp(path, NULL);
	assert_string_not_equal(before, after);
	free(before);
	free(after);
	assert_int_equal(mxdkim_key_load(&k, path, err, sizeof err), 0);
	assert_int_equal(mxdkim_key_alg(k), MXDKIM_RSA);
	assert_int_equal(mxdkim_key_bits(k), 2048);
	assert_true(mxdkim_key_can_sign(k));
	assert_false(mxdkim_key_world_readable(k));
	mxdkim_key_free(k);

	/* group/other readable: loads, with the flag for a warning */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(mxdkim_key_load(&k, path, err, sizeof err), 0);
	assert_true(mxdkim_key_world_readable(k));
	mxdkim_key_free(k);
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(mxdkim_key_load(&k, path, err, sizeof err), 0);
	assert_true(mxdkim_key_world_readable(k));
	mxdkim_key_free(k);

	/* a umask cannot loosen or tighten the mode */
	{
		mode_t old = umask(0);

		snprintf(path, sizeof path, "%s/gen2.pem", tmpdir);
		assert_int_equal(mxdkim_keygen(MXDKIM_ED25519, 0, path, 0, err, sizeof err), 0);
		umask(old);
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0600);
	}
	/* bad sizes and places */
	assert_int_equal(
	    mxdkim_keygen(MXDKIM_RSA, 1024, path, MXDKIM_KEYGEN_OVERWRITE, err, sizeof err), -1);
	assert_non_null(strstr(err, "2048"));
	assert_int_equal(
	    mxdkim_keygen(MXDKIM_RSA, 8192, path, MXDKIM_KEYGEN_OVERWRITE, err, sizeof err), -1);
	snprintf(path, sizeof path, "%s/no/such/dir/k.pem", tmpdir);
	assert_int_equal(mxdkim_keygen(MXDKIM_ED25519, 0, path, 0, err, sizeof err), -1);
	assert_non_null(strstr(err, "No such file"));
	assert_int_equal(mxdkim_keygen((enum mxdkim_alg)7, 0, path, 0, err, sizeof err), -1);
}

/* keys that must not load, as files */
static const char encrypted_pem[] =
    "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
    "MIGbMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAjHx9AqeNWgLAICCAAw\n"
    "DAYIKoZIhvcNAgkFADAdBglghkgBZQMEAQIEEAbOv1/ECa6NqN0m9H5ApEMEQHLp\n"
    "odEr63FZjp6jfapXrJyBCeH0FuWvEXquNszLEqeNFaIp4ufAUHC0jBcaYHQG1/fy\n"
    "GESaEi4a4HNI1vE5xTM=\n"
    "-----END ENCRYPTED PRIVATE KEY-----\n";
static const char ec_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                             "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgVE6vaAesgewq5e5E\n"
                             "n9M68d6TyojM0KpHqEp0t/58YjmhRANCAATvhI76FOezVaB5q7GkVooSMi0LCoa1\n"
                             "NjcHrzsWC38K6WuS4iE8ueKOFBuhIDpL86D7yZhfzVGWquBBks5kgmww\n"
                             "-----END PRIVATE KEY-----\n";
static const char rsa512_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIBVgIBADANBgkqhkiG9w0BAQEFAASCAUAwggE8AgEAAkEAoEcabljRw66LNG64\n"
    "uOjHRZtX/EwqNXIOzudN+Sk0IQInreZuX9myvyglQNman1ZkUgMUUnSAUo5LNFI7\n"
    "aYquVwIDAQABAkEAg1B+CTZf9hDFIFouoeClkxPpDF5inpMqKr47lg36FafgXhlO\n"
    "CCHKOit8PFiuPcsodar4m6g66qIbIuLRQjMrAQIhAM4nH2T51R7nfL1SProSkxid\n"
    "HPK6IaM2Cj60b9dN2GQXAiEAxwhPO1uWPYbz6YBeu91NfiVEp83tqRm+4lG5HuKR\n"
    "L8ECIQCsqJWhs6DsnkKaKc0BeNccEVKSdJQBpxwTgnn9YGRxBwIhALr5BWWfrk3y\n"
    "fyR2IYieZvQAErUI8SCQPQ/i8eMfuICBAiAmlbnFH+8MtXS170zm5b10bn/bAgIT\n"
    "3ZozTJkAnQKZZw==\n"
    "-----END PRIVATE KEY-----\n";

static void
test_key_load_refused(void **state)
{
	static const struct {
		const char *label, *content, *why;
	} rows[] = {
	    {"missing", NULL, "No such file"},
	    {"directory", "", "not a regular file"},
	    {"garbage", "hello\n", "no PEM private key"},
	    {"empty", "", "no PEM private key"},
	    {"encrypted", encrypted_pem, "encrypted keys are not supported"},
	    {"ec", ec_pem, "unsupported key type"},
	    {"rsa512", rsa512_pem, "at least 1024"},
	    {"truncated", ec_pem + 40, "no PEM private key"},
	};
	char path[256], err[256];
	struct mxdkim_key *k;
	size_t i;
	int bad = 0;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		snprintf(path, sizeof path, "%s/bad-%s", tmpdir, rows[i].label);
		if (strcmp(rows[i].label, "directory") == 0)
			assert_int_equal(mkdir(path, 0700), 0);
		else if (rows[i].content != NULL)
			spit(path, rows[i].content, strlen(rows[i].content), NULL, 0);
		k = (struct mxdkim_key *)1;
		err[0] = '\0';
		if (mxdkim_key_load(&k, path, err, sizeof err) != -1 || k != NULL ||
		    strstr(err, rows[i].why) == NULL || strstr(err, path) == NULL) {
			print_error("%s: got \"%s\", want \"%s\"\n", rows[i].label, err,
			            rows[i].why);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

/* RFC 8463 A.1 keys give exactly the A.2 records; the verifier takes A.3 */
static void
test_rfc8463_records(void **state)
{
	char path[600], err[256], *zone, *line, *save = NULL, *txt;
	struct mxdkim_key *ed, *rsa;
	const char *args[1];
	int found = 0;

	snprintf(path, sizeof path, "%s/rfc8463-A1-ed25519-private.pem", testdata);
	assert_int_equal(mxdkim_key_load(&ed, path, err, sizeof err), 0);
	assert_int_equal(mxdkim_key_alg(ed), MXDKIM_ED25519);
	snprintf(path, sizeof path, "%s/rfc8463-A1-rsa-private.pem", testdata);
	assert_int_equal(mxdkim_key_load(&rsa, path, err, sizeof err), 0); /* PKCS#1 PEM */
	assert_int_equal(mxdkim_key_alg(rsa), MXDKIM_RSA);
	assert_int_equal(mxdkim_key_bits(rsa), 1024);
	assert_false(mxdkim_key_can_sign(rsa));

	snprintf(path, sizeof path, "%s/rfc8463-A2-dns.zone", testdata);
	zone = slurp(path, NULL);
	assert_non_null(zone);
	for (line = strtok_r(zone, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *value = strstr(line, " TXT ");
		struct mxdkim_key *k;

		if (line[0] == ';' || value == NULL)
			continue;
		value += 5;
		k = strncmp(line, "brisbane.", 9) == 0 ? ed : rsa;
		assert_int_equal(mxdkim_key_txt(k, &txt, err, sizeof err), 0);
		assert_string_equal(txt, value);
		free(txt);
		assert_int_equal(mxdkim_txt_matches(k, value, err, sizeof err), 0);
		found++;
	}
	assert_int_equal(found, 2);
	free(zone);

	/* sanity of the verifier set-up: the RFC's own signed message passes... */
	snprintf(path, sizeof path, "%s/rfc8463-A3-signed.eml:pass", testdata);
	args[0] = path;
	assert_true(verify_files(args, 1));
	/* ...and fails once its Subject changes */
	{
		size_t len;
		char *msg, copy[256], arg[300];

		snprintf(path, sizeof path, "%s/rfc8463-A3-signed.eml", testdata);
		msg = slurp(path, &len);
		assert_non_null(msg);
		line = strstr(msg, "Subject: Is dinner ready?");
		assert_non_null(line);
		line[9] = 'i';
		snprintf(copy, sizeof copy, "%s/rfc8463-tampered.eml", tmpdir);
		spit(copy, msg, len, NULL, 0);
		snprintf(arg, sizeof arg, "%s:fail", copy);
		args[0] = arg;
		assert_true(verify_files(args, 1));
		free(msg);
	}

	/* 1024 bits: checkable, never used to sign */
	{
		struct mxdkim_signer *s = mxdkim_signer_new();

		assert_int_equal(mxdkim_signer_add(s, DOMAIN, "test", rsa, err, sizeof err), -1);
		assert_non_null(strstr(err, "1024 bits"));
		assert_non_null(strstr(err, "2048"));
		assert_false(mxdkim_signer_has(s, DOMAIN));
		mxdkim_signer_free(s);
	}
	mxdkim_key_free(ed);
}

/* ---- signing ---- */

/* A message as the spool holds it: our Received on top. */
static char *
msg_with_received(const char *rest, size_t *lenp)
{
	static const char recv[] = "Received: from client.example (client.example [192.0.2.7])\r\n"
	                           "\tby relay.example (mxrelay) with ESMTPSA id 4kT9;\r\n"
	                           "\tSat, 12 Jul 2003 04:00:40 +0000\r\n"
	                           "Return-Path: <joe@football.example.com>\r\n";
	char *m;

	if (asprintf(&m, "%s%s", recv, rest) < 0)
		return NULL;
	*lenp = strlen(m);
	return m;
}

static char *
rfc6376_a1(size_t *lenp)
{
	char path[600], *body, *m;

	snprintf(path, sizeof path, "%s/rfc6376-A1-unsigned.eml", testdata);
	body = slurp(path, NULL);
	assert_non_null(body);
	m = msg_with_received(body, lenp);
	free(body);
	return m;
}

#define HDRS                                                                                       \
	"From: Joe SixPack <joe@football.example.com>\r\n"                                         \
	"To: Suzie Q <suzie@shopping.example.net>\r\n"                                             \
	"Subject: Is dinner ready?\r\n"                                                            \
	"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"                                          \
	"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"

/* The message cases, each signed with RSA and with Ed25519. */
static char *
make_case(int which, size_t *lenp, const char **label)
{
	char *body = NULL, *m = NULL;
	size_t cap = 300000, n = 0;
	int i;

	switch (which) {
	case 0:
		*label = "RFC 6376 A.1";
		return rfc6376_a1(lenp);
	case 1:
		*label = "8-bit UTF-8";
		return msg_with_received(
		    "From: =?utf-8?q?J=C3=B6rg?= <joerg@football.example.com>\r\n"
		    "To: Zoë <zoe@shopping.example.net>\r\n"
		    "Subject: Grüße — ünïcödé ✓\r\n"
		    "Date: Fri, 11 Jul 2003 21:00:37 -0700\r\n"
		    "MIME-Version: 1.0\r\n"
		    "Content-Type: text/plain; charset=utf-8\r\n"
		    "Content-Transfer-Encoding: 8bit\r\n"
		    "\r\n"
		    "Größe: 10 €, naïve café, 日本語のテキスト, emoji 🎉.\r\n"
		    "Zeile mit Tab\tund  Leerzeichen  \r\n",
		    lenp);
	case 2:
		*label = "998-byte line";
		body = malloc(cap);
		assert_non_null(body);
		if (body == NULL) /* gcc 12 -O2 -fsanitize: -Warray-bounds otherwise */
			abort();
		n = (size_t)sprintf(body, HDRS "\r\n");
		memset(body + n, 'x', 998);
		n += 998;
		n += (size_t)sprintf(body + n, "\r\nshort line\r\n");
		break;
	case 3:
		*label = "dot lines";
		return msg_with_received(HDRS "\r\n.\r\n..\r\n. leading dot\r\n.hidden\r\n"
		                              "end\r\n.\r\n",
		                         lenp);
	case 4:
		*label = "200 headers";
		body = malloc(cap);
		assert_non_null(body);
		for (i = 0; i < 150; i++)
			n += (size_t)sprintf(body + n, "X-Trace-%d: hop %d\r\n", i, i);
		for (i = 0; i < 20; i++)
			n += (size_t)sprintf(body + n,
			                     "Received: from h%d.example by h%d.example; Sat, 12 "
			                     "Jul 2003 04:00:%02d +0000\r\n",
			                     i, i + 1, i);
		for (i = 0; i < 20; i++)
			n += (size_t)sprintf(body + n, "Cc: c%d@example.net\r\n", i);
		n += (size_t)sprintf(body + n, "List-Id: <x.lists.example>\r\n"
		                               "List-Unsubscribe: <mailto:u@lists.example>\r\n"
		                               "Reply-To: r@example.net\r\n" HDRS "\r\nBody.\r\n");
		break;
	case 5:
		*label = "folded headers";
		return msg_with_received(
		    "From: Joe SixPack\r\n <joe@football.example.com>\r\n"
		    "To: Suzie Q <suzie@shopping.example.net>,\r\n"
		    "\tAnother One <another@shopping.example.net>,\r\n"
		    "   third@shopping.example.net\r\n"
		    "Subject: a subject\r\n  folded\r\n\tover three lines   \r\n"
		    "Date:   Fri, 11 Jul 2003\r\n 21:00:37 -0700\r\n"
		    "References: <a@example>\r\n <b@example>\r\n\t<c@example>\r\n"
		    "In-Reply-To: <c@example>\r\n"
		    "Message-ID: <x@football.example.com>\r\n"
		    "\r\n"
		    "Body with  double  spaces \t\r\n\r\n\r\n",
		    lenp);
	case 6:
		*label = "empty body";
		return msg_with_received(HDRS "\r\n", lenp);
	case 7:
		*label = "no trailing CRLF";
		return msg_with_received(HDRS "\r\nfirst line\r\nlast line without CRLF", lenp);
	case 8:
		*label = "no body separator";
		return msg_with_received(HDRS, lenp);
	default:
		return NULL;
	}
	m = msg_with_received(body, lenp);
	free(body);
	return m;
}

static void
sign_cases(bool rsa)
{
	struct mxdkim_signer *s = signer_with(rsa, !rsa);
	char err[256], path[256], args_buf[16][300];
	const char *args[16];
	int which, n = 0;
	char *msg, *h;
	size_t len;
	const char *label;

	for (which = 0; (msg = make_case(which, &len, &label)) != NULL; which++) {
		if (mxdkim_sign(s, DOMAIN, msg, len, &h, err, sizeof err) != 0)
			fail_msg("%s: mxdkim_sign: %s", label, err);
		check_policy(h, msg, len, 1);
		write_signed(path, sizeof path, h, msg, len);
		print_message("%s: %s -> %s\n", rsa ? "rsa" : "ed25519", label, path);
		snprintf(args_buf[n], sizeof args_buf[n], "%s:pass", path);
		args[n] = args_buf[n];
		n++;
		free(h);
		free(msg);
	}
	assert_int_equal(n, 9);
	assert_true(verify_files(args, n));
	mxdkim_signer_free(s);
}

static void
test_sign_rsa(void **state)
{
	sign_cases(true);
}

static void
test_sign_ed25519(void **state)
{
	sign_cases(false);
}

/* Copy of msg with the bytes [at, at+cut) replaced by ins. */
static char *
edit(const char *msg, size_t len, size_t at, size_t cut, const char *ins, size_t *outlen)
{
	size_t il = strlen(ins);
	char *o = malloc(len - cut + il + 1);

	assert_non_null(o);
	memcpy(o, msg, at);
	memcpy(o + at, ins, il);
	memcpy(o + at + il, msg + at + cut, len - at - cut);
	*outlen = len - cut + il;
	o[*outlen] = '\0';
	return o;
}

static void
tamper(bool rsa, bool ed)
{
	struct mxdkim_signer *s = signer_with(rsa, ed);
	size_t len, n, at;
	char *msg = rfc6376_a1(&len), *h, *copy;
	char path[256], args_buf[16][300];
	const char *args[16];
	int k = 0;

	h = sign_and_verify(s, msg, len);
	check_policy(h, msg, len, (rsa ? 1 : 0) + (ed ? 1 : 0));

#define ADD(text, start, cut, expect)                                                              \
	do {                                                                                       \
		copy = edit(msg, len, (start), (cut), (text), &n);                                 \
		write_signed(path, sizeof path, h, copy, n);                                       \
		snprintf(args_buf[k], sizeof args_buf[k], "%s:%s", path, (expect));                \
		args[k] = args_buf[k];                                                             \
		k++;                                                                               \
		free(copy);                                                                        \
	} while (0)

	/* one body byte changed */
	at = (size_t)(strstr(msg, "We lost") - msg);
	ADD("w", at, 1, "fail");
	/* Subject changed */
	at = (size_t)(strstr(msg, "dinner") - msg);
	ADD("lunch", at, 6, "fail");
	/*
	 * Extra fields. dkimpy itself always counts one more From than h= names
	 * (its fix for Debian bug 644046), so the From cases would fail even
	 * without our oversigning; the extra Subject: on top is the case that
	 * proves it (it verifies if Subject is not oversigned).
	 */
	ADD("From: Mallory <mallory@football.example.com>\r\n", 0, 0, "fail");
	at = (size_t)(strstr(msg, "\r\n\r\n") - msg) + 2;
	ADD("From: Mallory <mallory@football.example.com>\r\n", at, 0, "fail");
	ADD("Subject: Re: Is dinner ready?\r\n", 0, 0, "fail");
	ADD("Message-ID: <other@example>\r\n", at, 0, "fail");
	ADD("Date: Sat, 12 Jul 2003 09:00:00 +0000\r\n", 0, 0, "fail");
	ADD("MIME-Version: 1.0\r\n", 0, 0, "fail");
	ADD("Content-Type: text/html\r\n", at, 0, "fail");
	ADD("To: eve@example.net\r\n", 0, 0, "fail");
	/* harmless: another hop's Received on top, relaxed whitespace in the body */
	ADD("Received: from relay.example by mx.example; Sat, 12 Jul 2003 04:01:00 +0000\r\n", 0, 0,
	    "pass");
	at = (size_t)(strstr(msg, "Joe.") - msg);
	ADD("Joe.   \t", at, 4, "pass");
#undef ADD
	assert_true(verify_files(args, k));
	free(h);
	free(msg);
	mxdkim_signer_free(s);
}

static void
test_tamper_rsa(void **state)
{
	tamper(true, false);
}

static void
test_tamper_ed25519(void **state)
{
	tamper(false, true);
}

/* both keys: two signatures, in the order added, both verified, both broken by tampering */
static void
test_dual_sign(void **state)
{
	struct mxdkim_signer *s = signer_with(true, true);
	size_t len;
	char *msg = rfc6376_a1(&len), *h, *sig, *a;

	assert_int_equal(mxdkim_signer_count(s, DOMAIN), 2);
	h = sign_and_verify(s, msg, len);
	check_policy(h, msg, len, 2);
	sig = sig_value(h, 0);
	a = sig_tag(sig, "a");
	assert_string_equal(a, "rsa-sha256");
	free(a);
	free(sig);
	sig = sig_value(h, 1);
	a = sig_tag(sig, "a");
	assert_string_equal(a, "ed25519-sha256");
	free(a);
	free(sig);
	free(h);
	free(msg);
	mxdkim_signer_free(s);
	tamper(true, true);
}

static void
test_signer_api(void **state)
{
	struct mxdkim_signer *s = mxdkim_signer_new();
	struct mxdkim_key *k;
	char err[256], *h = (char *)1;
	size_t len;
	char *msg = rfc6376_a1(&len);

	assert_non_null(s);
	assert_false(mxdkim_signer_has(s, DOMAIN));
	assert_int_equal(mxdkim_sign(s, DOMAIN, msg, len, &h, err, sizeof err), -1);
	assert_null(h);
	assert_non_null(strstr(err, "no DKIM key"));

	/* refused adds free the key (ASan would see a leak otherwise) */
	assert_int_equal(mxdkim_key_load(&k, ed_path, err, sizeof err), 0);
	assert_int_equal(mxdkim_signer_add(s, DOMAIN, "bad selector", k, err, sizeof err), -1);
	assert_non_null(strstr(err, "selector"));
	assert_int_equal(mxdkim_key_load(&k, ed_path, err, sizeof err), 0);
	assert_int_equal(mxdkim_signer_add(s, DOMAIN, "", k, err, sizeof err), -1);
	assert_int_equal(mxdkim_key_load(&k, ed_path, err, sizeof err), 0);
	assert_int_equal(mxdkim_signer_add(s, "exa mple.com", "s1", k, err, sizeof err), -1);
	assert_non_null(strstr(err, "domain"));
	assert_int_equal(mxdkim_key_load(&k, ed_path, err, sizeof err), 0);
	assert_int_equal(mxdkim_signer_add(s, "b\xc3\xa4r.example", "s1", k, err, sizeof err), -1);
	assert_int_equal(mxdkim_signer_add(s, DOMAIN, "s1", NULL, err, sizeof err), -1);

	/* case and trailing dot do not matter */
	assert_int_equal(mxdkim_key_load(&k, ed_path, err, sizeof err), 0);
	assert_int_equal(mxdkim_signer_add(s, "Football.Example.COM.", "ed1", k, err, sizeof err),
	                 0);
	assert_true(mxdkim_signer_has(s, DOMAIN));
	assert_true(mxdkim_signer_has(s, "FOOTBALL.example.com."));
	assert_false(mxdkim_signer_has(s, "example.com"));
	assert_false(mxdkim_signer_has(s, "sub." DOMAIN));
	assert_false(mxdkim_signer_has(s, ""));
	assert_false(mxdkim_signer_has(s, NULL));
	assert_int_equal(mxdkim_key_load(&k, ed_path, err, sizeof err), 0);
	assert_int_equal(mxdkim_signer_add(s, DOMAIN, "ED1", k, err, sizeof err), -1);
	assert_non_null(strstr(err, "twice"));
	assert_int_equal(mxdkim_signer_count(s, DOMAIN), 1);

	/* many domains stay sorted and findable (inserted out of order) */
	for (int i = 0; i < 20; i++) {
		char d[64];

		snprintf(d, sizeof d, "d%03d.example", (i * 7) % 20);
		assert_int_equal(mxdkim_key_load(&k, ed_path, err, sizeof err), 0);
		assert_int_equal(mxdkim_signer_add(s, d, "s", k, err, sizeof err), 0);
	}
	for (int i = 0; i < 20; i++) {
		char d[64];

		snprintf(d, sizeof d, "D%03d.example.", i);
		assert_true(mxdkim_signer_has(s, d));
	}
	assert_false(mxdkim_signer_has(s, "d020.example"));

	/* the message needs a From: */
	{
		static const char nofrom[] = "Subject: x\r\n\r\nbody\r\n";

		assert_int_equal(
		    mxdkim_sign(s, DOMAIN, nofrom, strlen(nofrom), &h, err, sizeof err), -1);
		assert_null(h);
		assert_non_null(strstr(err, "from"));
		assert_int_equal(mxdkim_sign(s, DOMAIN, "", 0, &h, err, sizeof err), -1);
	}
	h = sign_and_verify(s, msg, len);
	free(h);
	free(msg);
	mxdkim_signer_free(s);
	mxdkim_signer_free(NULL);
}

/* ---- TXT records ---- */

static void
test_zone_line(void **state)
{
	char path[256], err[256], *big, *line, *joined, *p, *q;
	struct mxdkim_key *k;
	size_t nchunks = 0, j = 0;

	/* a 4096-bit key's record needs three strings */
	snprintf(path, sizeof path, "%s/rsa4096.pem", tmpdir);
	assert_int_equal(mxdkim_keygen(MXDKIM_RSA, 4096, path, 0, err, sizeof err), 0);
	assert_int_equal(mxdkim_key_load(&k, path, err, sizeof err), 0);
	assert_int_equal(mxdkim_key_bits(k), 4096);
	assert_int_equal(mxdkim_key_txt(k, &big, err, sizeof err), 0);
	assert_true(strlen(big) > 510);
	assert_int_equal(mxdkim_txt_zone_line("s2048", "example.com.", big, &line), 0);
	print_message("%s\n", line);
	assert_memory_equal(line, "s2048._domainkey.example.com. IN TXT ( \"", 40);
	assert_string_equal(line + strlen(line) - 3, "\" )");
	/* strings of 255, the last shorter, joined give the value back */
	joined = malloc(strlen(big) + 1);
	assert_non_null(joined);
	for (p = strchr(line, '"'); p != NULL; p = strchr(q + 1, '"')) {
		q = strchr(p + 1, '"');
		assert_non_null(q);
		if (q[1] != ' ' || q[2] != ')')
			assert_int_equal(q - p - 1, 255);
		else
			assert_true(q - p - 1 <= 255 && q - p - 1 > 0);
		memcpy(joined + j, p + 1, (size_t)(q - p - 1));
		j += (size_t)(q - p - 1);
		nchunks++;
	}
	joined[j] = '\0';
	assert_int_equal(nchunks, (strlen(big) + 254) / 255);
	assert_int_equal(nchunks, 3);
	assert_string_equal(joined, big);
	/* the zone line itself is accepted as a published record */
	assert_int_equal(mxdkim_txt_matches(k, line, err, sizeof err), 0);
	free(joined);
	free(line);
	free(big);
	mxdkim_key_free(k);

	/* short value: one string; quotes and backslashes escaped */
	assert_int_equal(mxdkim_txt_zone_line("sel", "example.com", ed_txt, &line), 0);
	assert_non_null(
	    strstr(line, "sel._domainkey.example.com. IN TXT ( \"v=DKIM1; k=ed25519; "));
	assert_string_equal(line + strlen(line) - 3, "\" )");
	free(line);
	assert_int_equal(mxdkim_txt_zone_line("a.b", "example.com", "x\"y\\z", &line), 0);
	assert_string_equal(line, "a.b._domainkey.example.com. IN TXT ( \"x\\\"y\\\\z\" )");
	free(line);
	/* exactly 255 bytes: one string, 256: two */
	big = malloc(300);
	memset(big, 'a', 256);
	big[255] = '\0';
	assert_int_equal(mxdkim_txt_zone_line("s", "e.x", big, &line), 0);
	assert_null(strstr(line, "\" \""));
	free(line);
	big[255] = 'b';
	big[256] = '\0';
	assert_int_equal(mxdkim_txt_zone_line("s", "e.x", big, &line), 0);
	assert_non_null(strstr(line, "a\" \"b\" )"));
	free(line);
	free(big);

	/* names that would break the zone line */
	static const char *bad[][2] = {
	    {"", "example.com"},
	    {"a b", "example.com"},
	    {"s", ""},
	    {"s", "."},
	    {"s", "ex\"ample.com"},
	    {"s;", "example.com"},
	    {"s", "example..com"},
	    {".s", "example.com"},
	    {"s.", "example.com"},
	    {"s", "exa(mple).com"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		line = (char *)1;
		errno = 0;
		if (mxdkim_txt_zone_line(bad[i][0], bad[i][1], "v=DKIM1", &line) != -1 ||
		    errno != EINVAL || line != NULL)
			fail_msg("accepted selector \"%s\" domain \"%s\"", bad[i][0], bad[i][1]);
	}
}

/* fmt with its one "%s" replaced by arg, malloc'ed (not printf: fmt is data) */
static char *
subst(const char *fmt, const char *arg)
{
	const char *at = strstr(fmt, "%s");
	size_t fl = strlen(fmt), al = strlen(arg);
	char *out = malloc(fl + al + 1);

	assert_non_null(at);
	assert_non_null(out);
	memcpy(out, fmt, (size_t)(at - fmt));
	memcpy(out + (at - fmt), arg, al);
	memcpy(out + (at - fmt) + al, at + 2, fl - (size_t)(at - fmt) - 2 + 1);
	return out;
}

/* p= of a TXT value ("v=DKIM1; k=..; p=VALUE") */
static const char *
p_of(const char *txt)
{
	return strstr(txt, "p=") + 2;
}

static void
test_txt_matches(void **state)
{
	char rsa_p[1024], ed_p[128], other_p[1024], spaced[2048], split[2048], nopad[1024];
	char pkcs1[1024], ed_spki[128], *t;
	size_t i, j, n;
	int bad = 0;

	snprintf(rsa_p, sizeof rsa_p, "%s", p_of(rsa_txt));
	snprintf(ed_p, sizeof ed_p, "%s", p_of(ed_txt));
	snprintf(other_p, sizeof other_p, "%s", p_of(rsa_other_txt));
	/* p= with FWS inside, as long records are often written */
	for (i = 0, j = 0; rsa_p[i]; i++) {
		spaced[j++] = rsa_p[i];
		if (i % 64 == 63) {
			memcpy(spaced + j, "\r\n\t ", 4);
			j += 4;
		}
	}
	spaced[j] = '\0';
	/* zone-file strings: "v=DKIM1; k=rsa; " "p=<100>" "<rest>" */
	snprintf(split, sizeof split, "\"v=DKIM1; k=rsa; \" \"p=%.100s\" \"%s\"", rsa_p,
	         rsa_p + 100);
	snprintf(nopad, sizeof nopad, "%s", ed_p);
	while ((n = strlen(nopad)) > 0 && nopad[n - 1] == '=')
		nopad[n - 1] = '\0';
	/*
	 * The same keys in forms verifiers reject: RSA as a PKCS#1
	 * RSAPublicKey (the SPKI of a 2048-bit key is 24 bytes of header, then
	 * the RSAPublicKey), Ed25519 as an SPKI instead of the raw 32 bytes.
	 */
	assert_memory_equal(rsa_p, "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A", 32);
	{
		unsigned char der[600], spki[44];
		int dl = EVP_DecodeBlock(der, (const unsigned char *)rsa_p, (int)strlen(rsa_p));

		assert_int_equal(dl, 294); /* no padding for a 2048-bit SPKI */
		EVP_EncodeBlock((unsigned char *)pkcs1, der + 24, dl - 24);
		/* Ed25519 SPKI: 12 bytes of header, then the raw key */
		memcpy(spki, "\x30\x2a\x30\x05\x06\x03\x2b\x65\x70\x03\x21\x00", 12);
		assert_int_equal(EVP_DecodeBlock(der, (const unsigned char *)ed_p, 44), 33);
		memcpy(spki + 12, der, 32);
		EVP_EncodeBlock((unsigned char *)ed_spki, spki, 44);
	}

	const struct {
		const char *label;
		const struct mxdkim_key *key;
		const char *fmt, *arg; /* the record: fmt with %s = arg */
		const char *why;       /* NULL: must match */
	} rows[] = {
	    {"exact rsa", rsa_key, "%s", rsa_txt, NULL},
	    {"exact ed25519", ed_key, "%s", ed_txt, NULL},
	    {"no v=", rsa_key, "k=rsa; p=%s", rsa_p, NULL},
	    {"no k= is rsa", rsa_key, "v=DKIM1; p=%s", rsa_p, NULL},
	    {"tag order", rsa_key, "p=%s; k=rsa; v=DKIM1", rsa_p, NULL},
	    {"whitespace", ed_key, "  v = DKIM1 ;\tk=ed25519 ;  p = %s ;  ", ed_p, NULL},
	    {"FWS in p=", rsa_key, "v=DKIM1; k=rsa; p=%s", spaced, NULL},
	    {"zone strings", rsa_key, "%s", split, NULL},
	    {"t= flags", ed_key, "v=DKIM1; k=ed25519; t=y:s; p=%s", ed_p, NULL},
	    {"unknown tags", ed_key, "v=DKIM1; n=rotated 2024; k=ed25519; x-foo=1; p=%s", ed_p,
	     NULL},
	    {"h=sha256", rsa_key, "v=DKIM1; h=sha1:sha256; k=rsa; p=%s", rsa_p, NULL},
	    {"s=email", rsa_key, "v=DKIM1; s=email; k=rsa; p=%s", rsa_p, NULL},
	    {"s=*", rsa_key, "v=DKIM1; s=*; k=rsa; p=%s", rsa_p, NULL},
	    {"no padding", ed_key, "v=DKIM1; k=ed25519; p=%s", nopad, NULL},
	    {"k= case", ed_key, "v=DKIM1; k=Ed25519; p=%s", ed_p, NULL},
	    {"no p=", rsa_key, "v=DKIM1; k=rsa%s", "", "no p="},
	    {"revoked", rsa_key, "v=DKIM1; k=rsa; p=%s", "", "revoked"},
	    {"revoked FWS", rsa_key, "v=DKIM1; k=rsa; p= %s ;", "", "revoked"},
	    {"other key", rsa_key, "v=DKIM1; k=rsa; p=%s", other_p, "different key"},
	    {"ed25519 other key", ed_key, "v=DKIM1; k=ed25519; p=%s",
	     "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", "different key"},
	    {"rsa record, ed key", ed_key, "v=DKIM1; k=rsa; p=%s", ed_p, "wrong k="},
	    {"no k=, ed key", ed_key, "v=DKIM1; p=%s", ed_p, "no k= means rsa"},
	    {"ed record, rsa key", rsa_key, "v=DKIM1; k=ed25519; p=%s", rsa_p, "wrong k="},
	    {"v=DKIM2", rsa_key, "v=DKIM2; k=rsa; p=%s", rsa_p, "v=DKIM2"},
	    {"h=sha1", rsa_key, "v=DKIM1; h=sha1; k=rsa; p=%s", rsa_p, "sha256"},
	    {"s=tlsrpt", rsa_key, "v=DKIM1; s=tlsrpt; k=rsa; p=%s", rsa_p, "excludes email"},
	    {"bad base64", rsa_key, "v=DKIM1; k=rsa; p=%s", "MIIB@IjAN", "base64"},
	    {"data after =", ed_key, "v=DKIM1; k=ed25519; p=%s", "AAAA=AAA", "base64"},
	    {"duplicate p", rsa_key, "v=DKIM1; p=%s; p=x", rsa_p, "duplicate tag p="},
	    {"not a tag-list", rsa_key, "hello %s", "world", "tag-list"},
	    {"empty", rsa_key, "%s", "", "empty record"},
	    {"only ;", rsa_key, " ; ;%s", "", "empty record"},
	    {"no tag name", rsa_key, "=x; p=%s", rsa_p, "no name"},
	    {"pkcs1", rsa_key, "v=DKIM1; k=rsa; p=%s", pkcs1, "PKCS#1"},
	    {"ed spki", ed_key, "v=DKIM1; k=ed25519; p=%s", ed_spki, "SubjectPublicKeyInfo"},
	    {"ed short", ed_key, "v=DKIM1; k=ed25519; p=%s", "AAAA", "not a 32-byte"},
	};

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		char why[256] = "";
		int rc;

		t = subst(rows[i].fmt, rows[i].arg);
		rc = mxdkim_txt_matches(rows[i].key, t, why, sizeof why);
		if (rows[i].why == NULL ? rc != 0 : rc != -1 || strstr(why, rows[i].why) == NULL) {
			print_error("%s: rc %d why \"%s\", want %s\n", rows[i].label, rc, why,
			            rows[i].why ? rows[i].why : "a match");
			bad++;
		}
		free(t);
	}
	assert_int_equal(bad, 0);
}

/* ---- threads ---- */

struct worker {
	const struct mxdkim_signer *s;
	const char *msg;
	size_t len;
	char *last;
	int failures;
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	char err[256];
	int i;

	for (i = 0; i < 10; i++) {
		char *h;

		if (mxdkim_sign(w->s, DOMAIN, w->msg, w->len, &h, err, sizeof err) != 0) {
			w->failures++;
			continue;
		}
		free(w->last);
		w->last = h;
	}
	return NULL;
}

/* One signer, four threads signing at once; the results verify. */
static void
test_threads(void **state)
{
	struct mxdkim_signer *s = signer_with(true, true);
	struct worker w[4];
	pthread_t t[4];
	char path[4][256], args_buf[4][300];
	const char *args[4];
	const char *label;
	char *msgs[4];
	int i;

	for (i = 0; i < 4; i++) {
		size_t len;

		msgs[i] = make_case(i, &len, &label);
		w[i] = (struct worker){.s = s, .msg = msgs[i], .len = len};
		assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(w[i].failures, 0);
		assert_int_equal(count_sigs(w[i].last), 2);
		write_signed(path[i], sizeof path[i], w[i].last, w[i].msg, w[i].len);
		snprintf(args_buf[i], sizeof args_buf[i], "%s:pass", path[i]);
		args[i] = args_buf[i];
		free(w[i].last);
		free(msgs[i]);
	}
	assert_true(verify_files(args, 4));
	mxdkim_signer_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keygen_file),     cmocka_unit_test(test_key_load_refused),
	    cmocka_unit_test(test_rfc8463_records), cmocka_unit_test(test_sign_rsa),
	    cmocka_unit_test(test_sign_ed25519),    cmocka_unit_test(test_tamper_rsa),
	    cmocka_unit_test(test_tamper_ed25519),  cmocka_unit_test(test_dual_sign),
	    cmocka_unit_test(test_signer_api),      cmocka_unit_test(test_zone_line),
	    cmocka_unit_test(test_txt_matches),     cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
