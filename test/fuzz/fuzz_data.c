/*
 * libFuzzer target: the DATA stream rules that SMTP DATA and local
 * submission share (mta/intake/content.c and mta/intake/hdrfrom.c, as intake.c applies them):
 * dot-unstuffing, bare CR/LF and NUL refusal, line, header and size limits,
 * the header block, Date/Message-ID/From added when missing, and the reading
 * of From, Sender and Resent-* fields. Built by CMake with -DMXRELAY_FUZZ=ON
 * (links mxmta). The first byte is a flag byte (bit 0: missing_from =
 * refuse; bit 1: small size limits; bit 2: null envelope sender; bit 3:
 * bare_lf = normalize; bit 4: header_repair from_at; bit 5: add_to); the rest
 * is the content as a client sends it after DATA, dot-stuffed, without the
 * final ".", cut into lines as the submit socket does.
 *
 * Beyond "no crash": an accepted message has CRLF line ends only, no NUL,
 * exactly one From field in its header, and that field reads (strictly) as
 * one mailbox whose domain is the one DKIM would sign for (with the
 * repairs and bare LF normalisation too: what they produce is held to the
 * same rules).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mta/shared/config.h"
#include "mta/intake/repair.h"
#include "mta/intake/content.h"
#include "mta/intake/hdrfrom.h"
#include "mta/reply.h"
#include "mta/shared/addr.h"
#include "mta/shared/util.h"
#include "mta/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct config *cfg;
static struct server srv;

/* The header block of an accepted message: its From fields, unfolded. */
static void
check_from(const char *m, size_t len, const char *dom)
{
	char val[8192], box[ADDR_MAX];
	size_t i = 0, vlen = 0, nfrom = 0;
	int in_from = 0;

	while (i < len) {
		const char *eol = memchr(m + i, '\n', len - i);
		size_t n = (size_t)(eol - (m + i)) - 1; /* without CRLF */
		const char *l = m + i;

		i += n + 2;
		if (n == 0)
			break; /* the end of the header */
		if (l[0] == ' ' || l[0] == '\t') {
			if (in_from && vlen + n + 2 < sizeof(val)) {
				memcpy(val + vlen, "\r\n", 2);
				memcpy(val + vlen + 2, l, n);
				vlen += n + 2;
			}
			continue;
		}
		size_t k = 0;
		while (k < n && l[k] != ':' && l[k] != ' ' && l[k] != '\t')
			k++;
		size_t c = k;
		while (c < n && (l[c] == ' ' || l[c] == '\t'))
			c++;
		in_from = c < n && l[c] == ':' && k == 4 && util_strncaseeq(l, "From", 4);
		if (in_from) {
			nfrom++;
			vlen = n - c - 1 < sizeof(val) ? n - c - 1 : sizeof(val);
			memcpy(val, l + c + 1, vlen);
		}
	}
	if (nfrom != 1 || addr_header_mailbox(val, vlen, box, sizeof(box)) != ADDR_OK)
		abort();
	const char *d = addr_domain(box);
	if (d == NULL || strcmp(d, dom) != 0)
		abort();
}

static void
check_accepted(const char *m, size_t len, const char *dom)
{
	if (memchr(m, '\0', len) || len < 2 || m[len - 2] != '\r' || m[len - 1] != '\n')
		abort();
	for (size_t i = 0; i < len; i++)
		if ((m[i] == '\n' && (i == 0 || m[i - 1] != '\r')) ||
		    (m[i] == '\r' && (i + 1 == len || m[i + 1] != '\n')))
			abort();
	check_from(m, len, dom);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256], dom[256], qid[] = "0123456789abcdef";
	const char *p, *end, *dp;
	struct hdrfrom_refusal r;
	enum reply_id refusal;
	struct content *d;

	if (cfg == NULL) {
		if (config_load(&cfg, NULL, err, sizeof(err)) != 0)
			abort();
		srv.cfg = cfg;
	}
	if (size == 0)
		return 0;
	cfg->missing_from = (data[0] & 1) ? MISSING_FROM_REFUSE : MISSING_FROM_ENVELOPE;
	cfg->max_header_size = (data[0] & 2) ? 1024 : 256 * 1024;
	cfg->max_message_size = (data[0] & 2) ? 4096 : 1024 * 1024;
	d = content_new(&srv, qid, (data[0] & 4) ? "" : "fuzz@example.com",
	                "Received: from fuzz\r\n");
	content_options(d, (data[0] & 8) != 0,
	                ((data[0] & 16) ? HREPAIR_FROM_AT : 0) | ((data[0] & 32) ? HREPAIR_ADD_TO : 0));
	for (p = (const char *)data + 1, end = (const char *)data + size; p < end;) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		size_t n = lf ? (size_t)(lf - p) + 1 : (size_t)(end - p);
		content_line(d, n > CONTENT_LINE_MAX ? NULL : p, n);
		p += n;
	}
	/* intake's order: the content rules, then the header From rules for everyone */
	refusal = content_end(d);
	if (refusal == R_NONE)
		refusal = hdrfrom_refusal(content_hdrfrom(d), &r);
	/* display_name_address: what is shown goes into a reply line: printable ASCII only */
	for (const char *sh = hdrfrom_shown(content_hdrfrom(d)); *sh; sh++)
		if ((unsigned char)*sh < 0x20 || (unsigned char)*sh >= 0x7f)
			abort();
	dp = addr_domain(hdrfrom_mailbox(content_hdrfrom(d)));
	snprintf(dom, sizeof(dom), "%s", dp ? dp : "");
	if (refusal == R_NONE) {
		size_t len;
		char *m = content_take(d, &len);
		check_accepted(m, len, dom);
		free(m);
	} else if (reply_code(refusal) / 10 != 55 || reply_status(refusal)[0] != '5') {
		abort();
	}
	content_free(d);
	return 0;
}
