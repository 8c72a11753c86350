/*
 * sendmail_smtp: the parsers of mxrelay-sendmail -bs (sendmail_smtp.h).
 * Addresses go through mta/shared/addr.c, the daemon's own path syntax,
 * so a pipe accepts exactly what the SMTP listener accepts.
 */
#include "tools/sendmail_smtp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PARAMS_MAX 1024 /* the parameters of one MAIL, copied to be cut into tokens */

static const struct {
	const char *name;
	enum smtp_verb verb;
} verbs[] = {
    {"HELO", SV_HELO},     {"EHLO", SV_EHLO},     {"MAIL", SV_MAIL},     {"RCPT", SV_RCPT},
    {"DATA", SV_DATA},     {"RSET", SV_RSET},     {"NOOP", SV_NOOP},     {"QUIT", SV_QUIT},
    {"VRFY", SV_VRFY},     {"HELP", SV_HELP},     {"EXPN", SV_EXPN},     {"STARTTLS", SV_NOT_HERE},
    {"AUTH", SV_NOT_HERE}, {"BDAT", SV_NOT_HERE}, {"ETRN", SV_NOT_HERE}, {"TURN", SV_NOT_HERE},
    {"ATRN", SV_NOT_HERE},
};

int
smtp_cmd_parse(const char *line, size_t len, enum smtp_verb *verb, const char **arg)
{
	size_t n, i;

	*verb = SV_UNKNOWN;
	*arg = "";
	if (memchr(line, '\0', len) != NULL)
		return -1;
	for (n = 0; n < len && line[n] != ' '; n++)
		;
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strlen(verbs[i].name) == n && strncasecmp(line, verbs[i].name, n) == 0)
			*verb = verbs[i].verb;
	while (n < len && line[n] == ' ')
		n++;
	*arg = line + n;
	return 0;
}

/*
 * The path at arg into out (ADDR_MAX) and *params after it. A bare local
 * name ("<root>", "root") is qualified with domain first, as mail from
 * mxrelay-sendmail's command line is (RFC 5321 4.1.1.3 asks servers to take
 * "<postmaster>" without a domain: it becomes postmaster@domain).
 */
static enum addr_status
path(const char *arg, unsigned flags, const char *domain, char *out, const char **params)
{
	enum addr_status st = addr_parse_path(arg, flags, out, ADDR_MAX, params);
	char q[ADDR_MAX + 2];
	const char *p = arg, *rest;
	size_t n;
	int br;

	if (st != ADDR_NO_DOMAIN || domain == NULL || *domain == '\0')
		return st;
	while (*p == ' ')
		p++;
	br = *p == '<';
	p += br;
	n = strcspn(p, br ? ">" : " ");
	rest = p + n + (br && p[n] == '>');
	if (n == 0 || memchr(p, '"', n) || (*rest != '\0' && *rest != ' '))
		return st;
	if (n + strlen(domain) + 4 > sizeof(q))
		return ADDR_TOO_LONG;
	snprintf(q, sizeof(q), "<%.*s@%s>", (int)n, p, domain);
	if ((st = addr_parse_path(q, flags, out, ADDR_MAX, NULL)) != ADDR_OK)
		return st;
	while (*rest == ' ')
		rest++;
	*params = rest;
	return ADDR_OK;
}

static bool
has_8bit(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

/* One MAIL parameter "KEY[=VALUE]" (RFC 5321 4.1.2 esmtp-param) into out. */
static enum smtp_arg
mail_param(char *tok, struct smtp_mail *out)
{
	char *eq = strchr(tok, '='), *end;
	const char *val = eq ? eq + 1 : NULL;

	if (eq)
		*eq = '\0';
	if (strcasecmp(tok, "SIZE") == 0) {
		/* RFC 1870 5: size-value ::= 1*20DIGIT */
		if (val == NULL || *val == '\0' || strlen(val) > 20 ||
		    strspn(val, "0123456789") != strlen(val))
			return SA_PARAM_SIZE;
		out->size = strtoull(val, &end, 10);
		return SA_OK;
	}
	if (strcasecmp(tok, "BODY") == 0)
		return val && (strcasecmp(val, "7BIT") == 0 || strcasecmp(val, "8BITMIME") == 0)
		           ? SA_OK
		           : SA_PARAM;
	if (strcasecmp(tok, "SMTPUTF8") == 0 && val == NULL) {
		out->utf8 = true;
		return SA_OK;
	}
	return SA_PARAM;
}

enum smtp_arg
smtp_mail_arg(const char *arg, const char *domain, struct smtp_mail *out, enum addr_status *st)
{
	char buf[PARAMS_MAX], *save = NULL, *tok;
	const char *params = "";
	enum smtp_arg r;

	memset(out, 0, sizeof(*out));
	*st = ADDR_OK;
	if (strncasecmp(arg, "FROM:", 5) != 0)
		return SA_SYNTAX;
	/* UTF-8 is checked against SMTPUTF8 once the parameters are read */
	*st = path(arg + 5, ADDR_F_NULL_OK | ADDR_F_UTF8, domain, out->addr, &params);
	if (*st != ADDR_OK)
		return SA_ADDR;
	if (strlen(params) >= sizeof(buf))
		return SA_PARAM;
	memcpy(buf, params, strlen(params) + 1);
	for (tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
		if ((r = mail_param(tok, out)) != SA_OK)
			return r;
	if (!out->utf8 && has_8bit(out->addr)) {
		*st = ADDR_NEED_UTF8;
		return SA_ADDR;
	}
	return SA_OK;
}

enum smtp_arg
smtp_rcpt_arg(const char *arg, const char *domain, bool utf8, char *out, enum addr_status *st)
{
	const char *params = "";

	*st = ADDR_OK;
	out[0] = '\0';
	if (strncasecmp(arg, "TO:", 3) != 0)
		return SA_SYNTAX;
	*st = path(arg + 3, ADDR_F_STRICT | (utf8 ? ADDR_F_UTF8 : 0), domain, out, &params);
	if (*st != ADDR_OK)
		return SA_ADDR;
	/* no DSN is offered: NOTIFY= and ORCPT= are as unknown as any other */
	return *params ? SA_PARAM : SA_OK;
}

bool
smtp_header_line(const char *l, size_t n)
{
	size_t i;

	for (i = 0; i < n && l[i] != ':'; i++)
		if ((unsigned char)l[i] <= 32 || (unsigned char)l[i] >= 127)
			return false;
	return i > 0 && i < n;
}
