/*
 * tools/spfeval_parse: the syntax of one SPF record (RFC 7208 section 12's
 * ABNF, 4.6): the whole record is checked before any term is evaluated,
 * so a syntax error anywhere is a permerror whatever would have matched.
 *
 * Must never: look anything up, print, or keep state.
 */
#include "tools/spfeval_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

static const struct {
	const char *name;
	enum spfe_kind kind;
} mechanisms[] = {
    {"all", SPFE_ALL}, {"include", SPFE_INCLUDE}, {"a", SPFE_A},     {"mx", SPFE_MX},
    {"ptr", SPFE_PTR}, {"ip4", SPFE_IP4},         {"ip6", SPFE_IP6}, {"exists", SPFE_EXISTS},
};

void
spfe_record_free(struct spfe_record *rec)
{
	free(rec->buf);
	free(rec->terms);
	memset(rec, 0, sizeof *rec);
}

static bool
is_name_char(char c, bool first)
{
	bool alpha = (c | 0x20) >= 'a' && (c | 0x20) <= 'z';

	/* name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ) (12) */
	return alpha || (!first && ((c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'));
}

/*
 * A cidr length "/N" at the end of s[0..*len): 0 with *len shortened and
 * *out set, 1 when there is none, -1 when malformed or over max
 * (ip4-cidr-length 0-32, ip6-cidr-length 0-128, no leading zero, 12).
 */
static int
take_cidr(const char *s, size_t *len, int max, int *out)
{
	size_t i = *len;
	int v = 0;

	while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9')
		i--;
	if (i == 0 || s[i - 1] != '/')
		return 1;
	if (i == *len || (s[i] == '0' && *len - i > 1) || *len - i > 3)
		return -1;
	for (size_t k = i; k < *len; k++)
		v = v * 10 + (s[k] - '0');
	if (v > max)
		return -1;
	*out = v;
	*len = i - 1;
	return 0;
}

/* The domain-spec of a term: macro-string syntax and domain-end (7.1). */
static int
check_spec(const char *spec, size_t len, const char *term, char *why, size_t whylen)
{
	char mwhy[160];

	if (len == 0) {
		snprintf(why, whylen, "empty domain-spec in \"%s\" (RFC 7208 12)", term);
		return -1;
	}
	if (spfe_macro_check(spec, len, false, mwhy, sizeof mwhy) != 0) {
		snprintf(why, whylen, "\"%s\": %s", term, mwhy);
		return -1;
	}
	if (!spfe_domain_end_ok(spec, len)) {
		snprintf(
		    why, whylen,
		    "\"%s\": the domain must end in a valid top label or a macro (RFC 7208 7.1)",
		    term);
		return -1;
	}
	return 0;
}

/* ip4:/ip6: network and cidr (5.6). */
static int
parse_ip(struct spfe_term *t, const char *arg, size_t len, const char *term, char *why,
         size_t whylen)
{
	char addr[64];
	bool v4 = t->kind == SPFE_IP4;
	int *cidr = v4 ? &t->cidr4 : &t->cidr6;

	if (take_cidr(arg, &len, v4 ? 32 : 128, cidr) < 0) {
		snprintf(why, whylen, "bad prefix length in \"%s\" (RFC 7208 5.6)", term);
		return -1;
	}
	if (len == 0 || len >= sizeof addr) {
		snprintf(why, whylen, "bad address in \"%s\" (RFC 7208 5.6)", term);
		return -1;
	}
	memcpy(addr, arg, len);
	addr[len] = '\0';
	if (spf_ip_parse(addr, v4 ? AF_INET : AF_INET6, &t->net) != 0) {
		snprintf(why, whylen, "bad address in \"%s\" (RFC 7208 5.6)", term);
		return -1;
	}
	return 0;
}

/* The argument of mechanism t: ":domain-spec" and/or cidr lengths, per its kind (5). */
static int
parse_arg(struct spfe_term *t, const char *arg, size_t len, const char *term, char *why,
          size_t whylen)
{
	bool dual = t->kind == SPFE_A || t->kind == SPFE_MX;

	t->cidr4 = 32;
	t->cidr6 = 128;
	if (dual) {
		/* dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ] */
		size_t l6 = len;
		int v6;

		if (take_cidr(arg, &l6, 128, &v6) == 0 && l6 > 0 && arg[l6 - 1] == '/') {
			t->cidr6 = v6;
			len = l6 - 1;
		}
		if (take_cidr(arg, &len, 32, &t->cidr4) < 0)
			goto bad_cidr;
	}
	if (t->kind == SPFE_IP4 || t->kind == SPFE_IP6) {
		if (len == 0 || arg[0] != ':') {
			snprintf(why, whylen, "\"%s\" needs an address (RFC 7208 5.6)", term);
			return -1;
		}
		return parse_ip(t, arg + 1, len - 1, term, why, whylen);
	}
	if (len == 0) {
		if (t->kind == SPFE_INCLUDE || t->kind == SPFE_EXISTS) {
			snprintf(why, whylen, "\"%s\" needs a domain (RFC 7208 5.2, 5.7)", term);
			return -1;
		}
		return 0;
	}
	if (arg[0] != ':' || t->kind == SPFE_ALL) {
		snprintf(why, whylen, "unexpected \"%.*s\" in \"%s\" (RFC 7208 12)", (int)len, arg,
		         term);
		return -1;
	}
	t->spec = arg + 1;
	t->speclen = len - 1;
	return check_spec(t->spec, t->speclen, term, why, whylen);
bad_cidr:
	snprintf(why, whylen, "bad prefix length in \"%s\" (RFC 7208 5.3, 12)", term);
	return -1;
}

/* A mechanism term (qualifier and name already known to be there). */
static int
add_mechanism(struct spfe_record *rec, const char *term, size_t namelen, char *why, size_t whylen)
{
	struct spfe_term *t = &rec->terms[rec->n];
	const char *name = term;
	size_t i;

	memset(t, 0, sizeof *t);
	t->qual = '+';
	t->text = term;
	t->textlen = strlen(term);
	if (strchr("+-~?", term[0]) != NULL) {
		t->qual = term[0];
		name++;
		namelen--;
	}
	for (i = 0; i < sizeof mechanisms / sizeof mechanisms[0]; i++)
		if (strlen(mechanisms[i].name) == namelen &&
		    strncasecmp(name, mechanisms[i].name, namelen) == 0)
			break;
	if (i == sizeof mechanisms / sizeof mechanisms[0]) {
		snprintf(why, whylen, "unknown mechanism \"%s\" (RFC 7208 5)", term);
		return -1;
	}
	t->kind = mechanisms[i].kind;
	if (parse_arg(t, name + namelen, strlen(name + namelen), term, why, whylen) != 0)
		return -1;
	rec->n++;
	return 0;
}

/* A modifier "name=value" (6): redirect and exp at most once, others ignored after a syntax check.
 */
static int
add_modifier(struct spfe_record *rec, const char *term, size_t namelen, char *why, size_t whylen)
{
	const char *val = term + namelen + 1;
	size_t len = strlen(val);
	bool redirect = namelen == 8 && strncasecmp(term, "redirect", 8) == 0;
	bool exp = namelen == 3 && strncasecmp(term, "exp", 3) == 0;
	char mwhy[160];

	if (redirect || exp) {
		if (redirect ? rec->redirect != NULL : rec->exp != NULL) {
			snprintf(why, whylen, "%s= appears twice (RFC 7208 6)",
			         redirect ? "redirect" : "exp");
			return -1;
		}
		if (check_spec(val, len, term, why, whylen) != 0)
			return -1;
		*(redirect ? &rec->redirect : &rec->exp) = val;
		*(redirect ? &rec->redirectlen : &rec->explen) = len;
		return 0;
	}
	/* unknown-modifier = name "=" macro-string: ignored, but it must parse (6) */
	if (spfe_macro_check(val, len, false, mwhy, sizeof mwhy) != 0) {
		snprintf(why, whylen, "\"%s\": %s", term, mwhy);
		return -1;
	}
	return 0;
}

/* One term (NUL-terminated within rec->buf). */
static int
parse_term(struct spfe_record *rec, const char *term, char *why, size_t whylen)
{
	size_t q = strchr("+-~?", term[0]) != NULL && term[0] != '\0', n = q;

	while (is_name_char(term[n], n == q))
		n++;
	if (term[n] == '=' && n > 0) {
		if (q) {
			snprintf(why, whylen, "a modifier takes no qualifier: \"%s\" (RFC 7208 12)",
			         term);
			return -1;
		}
		return add_modifier(rec, term, n, why, whylen);
	}
	/* a mechanism's name ends at ":" "/" or the term's end; cut a modifier-like name there */
	n = q;
	while (term[n] != '\0' && term[n] != ':' && term[n] != '/')
		n++;
	if (n == q) {
		snprintf(why, whylen, "bad term \"%s\" (RFC 7208 12)", term);
		return -1;
	}
	return add_mechanism(rec, term, n, why, whylen);
}

int
spfe_parse(const char *txt, struct spfe_record *rec, char *why, size_t whylen)
{
	size_t cap;
	char *p;

	memset(rec, 0, sizeof *rec);
	if (strncasecmp(txt, "v=spf1", 6) != 0 || (txt[6] != ' ' && txt[6] != '\0')) {
		snprintf(why, whylen, "not an SPF record (RFC 7208 4.5)");
		return -1;
	}
	rec->buf = strdup(txt + 6);
	cap = strlen(txt) / 2 + 1; /* a term and its space take 2 bytes at least */
	rec->terms = calloc(cap, sizeof *rec->terms);
	if (rec->buf == NULL || rec->terms == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	/* terms = *( 1*SP ( directive / modifier ) ): only SP separates; a
	 * tab or CR stays inside a term and fails its syntax (12) */
	for (p = rec->buf; *p != '\0';) {
		char *term;

		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		term = p;
		p += strcspn(p, " ");
		if (*p != '\0')
			*p++ = '\0';
		if (parse_term(rec, term, why, whylen) != 0)
			return -1;
	}
	return 0;
}
