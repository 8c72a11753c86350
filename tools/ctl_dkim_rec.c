/*
 * ctl_dkim_rec: the pieces of `dkim keygen` that `dkim rotate` uses too:
 * the selector argument and the printed key record. A file of its own so
 * the command files call down into it, never each other in a circle.
 */
#include "tools/ctl.h"
#include "tools/ctl_dkim.h"
#include "dkim/txt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A selector: dot-separated labels of letters, digits, '-', '_' (RFC 6376 3.1), lowercased. */
int
ctl_dkim_selector_arg(const char *in, char *out, size_t outlen)
{
	size_t len = strlen(in), label = 0;

	if (len == 0 || len >= outlen || in[0] == '.' || in[len - 1] == '.')
		return -1;
	for (size_t i = 0; i <= len; i++) {
		char c = in[i];

		if (c == '\0' || c == '.') {
			if (label == 0)
				return -1;
			label = 0;
			out[i] = c;
			continue;
		}
		if (c >= 'A' && c <= 'Z')
			c = (char)(c + ('a' - 'A'));
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') ||
		    ++label > 63)
			return -1;
		out[i] = c;
	}
	return 0;
}

/*
 * Print the record of key for selector._domainkey.domain. 0, or -1 after
 * a one-line error on stderr.
 */
int
ctl_dkim_print_record(const char *prog, const char *domain, const char *selector,
                      const struct mxdkim_key *key)
{
	char err[512], name[600], *value = NULL, *zone = NULL;
	int rc = -1;

	if (mxdkim_key_txt(key, &value, err, sizeof err) != 0) {
		fprintf(stderr, "%s: %s\n", prog, err);
		goto done;
	}
	if (mxdkim_txt_zone_line(selector, domain, value, &zone) != 0) {
		fprintf(stderr, "%s: cannot write the record for %s._domainkey.%s: %s\n", prog,
		        selector, domain, strerror(errno));
		goto done;
	}
	snprintf(name, sizeof name, "%s._domainkey.%s", selector, domain);
	printf("DKIM record for %s, selector %s (%s):\n"
	       "\n",
	       domain, selector, mxdkim_alg_name(mxdkim_key_alg(key)));
	ctl_print_txt(stdout, name, zone, value);
	rc = 0;
done:
	free(value);
	free(zone);
	return rc;
}
