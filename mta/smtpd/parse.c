/* smtpd_parse: the session's pure parsers (see smtpd/parse.h). */
#include "mta/smtpd/parse.h"

#include <stdlib.h>
#include <string.h>

#include "mta/shared/util.h"
#include "spool/spool.h"

int
smtpd_split_command(char *line, size_t len, size_t *verb_len, char **arg)
{
	char *a;

	if (strlen(line) != len)
		return -1;
	*verb_len = strcspn(line, " ");
	for (a = line + *verb_len; *a == ' '; a++)
		;
	*arg = a;
	return 0;
}

int
smtpd_mail_params(char *p, bool esmtp, uint64_t max_size, unsigned *flags, enum reply_id *reply)
{
	char *tok, *save = NULL;

	for (tok = strtok_r(p, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		if (!esmtp) {
			*reply = R_PARAM_NEED_EHLO;
			return -1;
		}
		if (util_strncaseeq(tok, "SIZE=", 5)) {
			char *end;
			unsigned long long n = strtoull(tok + 5, &end, 10);
			if (*end || tok[5] < '0' || tok[5] > '9') {
				*reply = R_PARAM_SIZE;
				return -1;
			}
			if (n > max_size) {
				*reply = R_MSG_TOO_BIG;
				return -1;
			}
		} else if (util_strncaseeq(tok, "BODY=", 5)) {
			if (util_strncaseeq(tok + 5, "8BITMIME", 9))
				*flags |= SPOOL_F_8BITMIME;
			else if (!util_strncaseeq(tok + 5, "7BIT", 5)) {
				*reply = R_PARAM_BODY;
				return -1;
			}
		} else if (util_strncaseeq(tok, "SMTPUTF8", 9)) {
			*flags |= SPOOL_F_SMTPUTF8;
		} else if (util_strncaseeq(tok, "AUTH=", 5)) {
			/* RFC 4954 5: accepted, not trusted */
		} else {
			*reply = R_PARAM_UNSUPPORTED;
			return -1;
		}
	}
	return 0;
}

static int
b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
smtpd_b64_decode(const char *in, char **out, size_t *outlen)
{
	size_t n = strlen(in), i, o = 0;
	unsigned acc = 0;
	int bits = 0, pad = 0;
	char *buf;

	/* liberal: some devices drop the '=' padding; a lone leftover sextet is still wrong */
	if (n % 4 == 1)
		return -1;
	buf = xmalloc(n / 4 * 3 + 3);
	for (i = 0; i < n; i++) {
		int v = b64val((unsigned char)in[i]);
		if (in[i] == '=' && i >= n - 2 && n % 4 == 0) {
			pad++;
			continue;
		}
		if (v < 0 || pad) {
			free(buf);
			return -1;
		}
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	buf[o] = '\0';
	*out = buf;
	*outlen = o;
	return 0;
}

int
smtpd_plain_split(const char *buf, size_t n, const char **user, const char **pass)
{
	const char *u = memchr(buf, '\0', n);
	const char *p = u ? memchr(u + 1, '\0', n - (size_t)(u + 1 - buf)) : NULL;

	/* exactly three fields: a NUL inside the password is a different credential */
	if (u == NULL || p == NULL || u[1] == '\0' || strlen(p + 1) != n - (size_t)(p + 1 - buf) ||
	    (*buf && strcmp(buf, u + 1) != 0))
		return -1;
	*user = u + 1;
	*pass = p + 1;
	return 0;
}
