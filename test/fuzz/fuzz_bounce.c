/*
 * libFuzzer target: DSN building (mta/delivery/bounce.c) from hostile text. The
 * relay parses no incoming DSN, but every bounce it writes quotes what others
 * sent: the remote MX's reply (multi-line, any bytes), recipient and sender
 * addresses, the original header block. Input layout:
 *   byte 0: bit 0 delayed notice, bits 1-2 recipients - 1, bit 3 no qid,
 *           bit 4 no original message, bits 5-6 no remote_mta / diagnostic;
 *   then NUL-separated fields: sender, qid, and per recipient address,
 *   status, remote_mta, diagnostic; what is left is the original message.
 *
 * Beyond "no crash", the output contract of bounce.h: CRLF line ends only,
 * no NUL, every line at most 998 octets, 8-bit bytes only in part 3 and
 * then labelled 8bit, and the MIME boundary found only where it belongs.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mta/delivery/bounce.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RCPTS 4

/* The next NUL-terminated field of [*p, end), or "" when none is left. */
static char *
field(char **p, char *end)
{
	char *f = *p, *nul;

	if (f >= end)
		return end; /* end points at the NUL after the copy */
	nul = memchr(f, '\0', (size_t)(end - f));
	*p = nul ? nul + 1 : end;
	return f;
}

static size_t
count(const char *hay, size_t len, const char *needle)
{
	size_t n = 0, k = strlen(needle);

	for (const char *p = hay; (p = memmem(p, len - (size_t)(p - hay), needle, k)); p += k)
		n++;
	return n;
}

static void
check_output(const char *out, size_t len, size_t nrcpts)
{
	const char *part3 = memmem(out, len, "Content-Type: text/rfc822-headers\r\n", 35);
	const char *b = memmem(out, len, " boundary=\"", 11), *line = out;
	char boundary[64];
	int eight = 0;

	if (part3 == NULL || b == NULL || len > BOUNCE_HEADERS_MAX + nrcpts * 8192 + 8192)
		abort();
	if (sscanf(b + 11, "%63[^\"]", boundary) != 1 || count(out, len, boundary) != 5)
		abort();
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)out[i];
		if (c == '\0' || (c == '\r' && (i + 1 == len || out[i + 1] != '\n')))
			abort(); /* NUL, or a CR that does not start CRLF */
		if (c == '\n' && (i == 0 || out[i - 1] != '\r'))
			abort(); /* a bare LF */
		if (c == '\n') {
			if (out + i - 1 - line > 998)
				abort();
			line = out + i + 1;
		}
		if (c >= 0x80) {
			if (out + i < part3)
				abort(); /* our own parts stay 7-bit */
			eight = 1;
		}
	}
	if (line != out + len)
		abort(); /* the last line ends with CRLF */
	if (eight && !memmem(out, (size_t)(part3 - out), "Content-Transfer-Encoding: 8bit\r\n", 33))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bounce_rcpt rcpts[MAX_RCPTS];
	struct bounce_info bi;
	char *copy, *p, *end, *out = NULL, err[256] = "";
	size_t outlen = 0;
	unsigned flags;
	int rc;

	if (size == 0)
		return 0;
	flags = data[0];
	/* a copy with a NUL after it, so the last field is a string too */
	copy = malloc(size);
	if (copy == NULL)
		return 0;
	memcpy(copy, data + 1, size - 1);
	copy[size - 1] = '\0';
	p = copy;
	end = copy + size - 1;

	memset(&bi, 0, sizeof(bi));
	bi.hostname = "relay.example";
	bi.arrival = 1700000000;
	bi.delayed = flags & 1;
	bi.nrcpts = ((flags >> 1) & 3) + 1;
	bi.rcpts = rcpts;
	bi.orig_sender = field(&p, end);
	bi.qid = field(&p, end);
	if (flags & 8)
		bi.qid = NULL;
	for (size_t i = 0; i < bi.nrcpts; i++) {
		rcpts[i].address = field(&p, end);
		rcpts[i].status = field(&p, end);
		rcpts[i].remote_mta = field(&p, end);
		rcpts[i].diagnostic = field(&p, end);
		if (flags & 32)
			rcpts[i].remote_mta = NULL;
		if (flags & 64)
			rcpts[i].diagnostic = NULL;
	}
	if (!(flags & 16)) {
		bi.orig = p;
		bi.orig_len = (size_t)(end - p);
	}

	rc = bounce_build(&bi, &out, &outlen, err, sizeof(err));
	if (rc == 0) {
		if (out == NULL || out[outlen] != '\0' || !bounce_wanted(bi.orig_sender))
			abort();
		check_output(out, outlen, bi.nrcpts);
	} else if (out != NULL || err[0] == '\0' || bounce_wanted(bi.orig_sender)) {
		abort(); /* with a good host name and addresses, only the sender is refused */
	}
	free(out);
	free(copy);
	return 0;
}
