/*
 * libFuzzer target: the RFC 8460 3 _smtp._tls TXT parser (tlsrpt_txt_parse),
 * which reads DNS data anyone can publish, and the JSON writer fed with the
 * same bytes. Built by -DMXRELAY_FUZZ=ON (test/fuzz/README.md).
 * Input: up to 4 TXT records separated by NUL bytes.
 *
 * Beyond "no crash": an accepted record gives 1..TLSRPT_RUA_MAX URIs, each a
 * NUL-terminated mailto: with a one-address addr or an https: URI; a refused
 * one has an error text and an empty result; the JSON built from the text is
 * as long as it says and holds no raw control byte.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mta/shared/tlsrpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_rua(const struct tlsrpt_rua *rua)
{
	size_t i;

	if (rua->n == 0 || rua->n > TLSRPT_RUA_MAX)
		abort();
	for (i = 0; i < rua->n; i++) {
		const struct tlsrpt_uri *u = &rua->u[i];
		if (memchr(u->uri, '\0', sizeof u->uri) == NULL ||
		    memchr(u->addr, '\0', sizeof u->addr) == NULL)
			abort();
		if (u->kind == TLSRPT_MAILTO &&
		    (strchr(u->addr, '@') == NULL || strchr(u->addr, ',')))
			abort();
		if (u->kind == TLSRPT_HTTPS && strncasecmp(u->uri, "https://", 8) != 0)
			abort();
	}
}

static void
check_json(const char *text)
{
	struct tlsrpt_row w = {1, "d.example", "mta-sts", text, text, 1, 2};
	struct tlsrpt_failure f = {1, "d.example", "dane", text, text, text, text, text, 4};
	struct tlsrpt_report r = {.org = text,
	                          .contact = text,
	                          .submitter = "s",
	                          .domain = "d.example",
	                          .day = 1,
	                          .report_id = text,
	                          .rows = &w,
	                          .nrows = 1,
	                          .fails = &f,
	                          .nfails = 1};
	char *js;
	size_t len, i;

	if (tlsrpt_json(&r, &js, &len) != 0)
		return;
	if (strlen(js) != len)
		abort();
	for (i = 0; i < len; i++)
		if ((unsigned char)js[i] < 0x20 && js[i] != '\n')
			abort();
	free(js);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1), err[256];
	const char *recs[4];
	struct tlsrpt_rua rua;
	size_t n = 0, off = 0;

	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	while (n < 4 && off <= size) {
		recs[n++] = copy + off;
		off += strlen(copy + off) + 1;
	}
	err[0] = '\0';
	if (tlsrpt_txt_parse(recs, n, &rua, err, sizeof err) == 0) {
		check_rua(&rua);
	} else if (err[0] == '\0' || rua.n != 0) {
		abort();
	}
	check_json(copy);
	free(copy);
	return 0;
}
