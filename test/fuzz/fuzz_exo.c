/*
 * libFuzzer target: the SMTP AUTH Clients report parser of `mxrelayctl
 * audit import-exo` (tools/exo_csv.c exo_parse_buf). The input is the CSV
 * file as the admin hands it over. Built by -DMXRELAY_FUZZ=ON
 * (test/fuzz/README.md).
 *
 * Beyond "no crash": a success gives rows that hold a mail address, shares
 * from 0 to 100 and a count of messages of at least 0; a failure gives an
 * error that starts with the file's name and a line number.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/ctl_exo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct exo_row *rows = NULL;
	char err[1024];
	size_t n = 0;

	if (exo_parse_buf("f.csv", (const char *)data, size, &rows, &n, err, sizeof err) != 0) {
		if (strncmp(err, "f.csv:", 6) != 0)
			abort();
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		const struct exo_row *r = &rows[i];
		if (!strchr(r->sender, '@') || r->messages < 0 || r->line < 2)
			abort();
		if (!(r->tls10 >= 0 && r->tls10 <= 100 && r->tls11 >= 0 && r->tls11 <= 100 &&
		      r->tls12 >= 0 && r->tls12 <= 100))
			abort();
	}
	free(rows);
	return 0;
}
