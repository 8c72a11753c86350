/*
 * bounce: build RFC 3464 delivery status notifications (see bounce.h).
 *
 * Everything that came from outside (addresses, remote replies, host names,
 * the original header block) is treated as hostile: CR and LF never reach
 * the output except as our own CRLF, non-ASCII text is escaped so our own
 * parts stay 7-bit, and every line is wrapped or cut well below the 998
 * octets of RFC 5322 2.1.1.
 */
#include "mta/delivery/bounce.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "mta/shared/util.h"
#include "spool/spool.h"

#define WRAP 76       /* our own lines: RFC 5322 2.1.1 "SHOULD be 78" */
#define HDR_SPLIT 990 /* original header lines longer than this are folded */
#define HOST_MAX 255  /* RFC 1035 name length, plus room */

/* A growing output buffer; after a failed allocation it only counts. */
struct obuf {
	char *p;
	size_t len, cap;
	int oom;
};

static void
ob_add(struct obuf *b, const void *s, size_t n)
{
	if (b->oom || n == 0)
		return;
	if (n >= b->cap - b->len || b->p == NULL) {
		size_t ncap = b->cap ? b->cap : 4096;
		char *np;

		while (ncap - b->len <= n && ncap < SIZE_MAX / 2)
			ncap *= 2;
		if (ncap - b->len <= n || (np = realloc(b->p, ncap)) == NULL) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
ob_str(struct obuf *b, const char *s)
{
	ob_add(b, s, strlen(s));
}

static void ob_fmt(struct obuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
ob_fmt(struct obuf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	/* Only our own short fields go through here; callers keep them < 512. */
	if (n > 0)
		ob_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/*
 * Decode one UTF-8 character from s (n > 0 bytes). Returns its length, or 0
 * for anything RFC 3629 forbids (overlong forms, surrogates, > U+10FFFF).
 */
static size_t
utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t len, i;
	uint32_t c;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, c = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, c = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, c = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10ffff)) ||
	    (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

enum esc { ESC_TEXT, ESC_XTEXT };

/*
 * Append S made 7-bit, at most MAX octets ("..." marks a cut).
 * ESC_TEXT (human text, diagnostics): any run of controls and spaces (CR,
 *   LF, TAB included) becomes one space, ends are trimmed, non-ASCII becomes
 *   \x{HEX} (U+FFFD for bytes that are not UTF-8).
 * ESC_XTEXT (RFC 6533 3 utf-8-addr-xtext): only %x21-7E but "+", "=" and
 *   "\" stay as they are; everything else becomes \x{HEX}.
 */
static void
clean(struct obuf *b, const char *s, enum esc mode, size_t max)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, start = b->len, k;
	int space = 0;
	uint32_t cp;
	char unit[16];

	while (i < n) {
		if (mode == ESC_TEXT && (u[i] <= 0x20 || u[i] == 0x7f)) {
			space = b->len > start;
			i++;
			continue;
		}
		if ((k = utf8_decode(u + i, n - i, &cp)) == 0)
			k = 1, cp = 0xfffd;
		if (cp > 0x20 && cp < 0x7f &&
		    (mode == ESC_TEXT || (cp != '+' && cp != '=' && cp != '\\')))
			snprintf(unit, sizeof unit, "%s%c", space ? " " : "", (char)cp);
		else
			snprintf(unit, sizeof unit, "%s\\x{%X}", space ? " " : "", (unsigned)cp);
		if (b->len - start + strlen(unit) + 3 > max) {
			ob_str(b, "...");
			return;
		}
		ob_str(b, unit);
		space = 0;
		i += k;
	}
}

/* clean() into a fresh NUL-terminated string; NULL on out of memory. */
static char *
cleaned(const char *s, enum esc mode, size_t max)
{
	struct obuf t = {0};

	clean(&t, s ? s : "", mode, max);
	ob_add(&t, "", 1); /* make sure p exists even for "" */
	if (t.oom) {
		free(t.p);
		return NULL;
	}
	return t.p;
}

static void
newline(struct obuf *b, const char *indent, size_t *col)
{
	ob_str(b, "\r\n");
	ob_str(b, indent);
	*col = strlen(indent);
}

/*
 * Append TEXT (clean: printable ASCII words and single spaces), the output
 * being at column COL, wrapping at WRAP and starting each new line with
 * INDENT. A word longer than a line is cut: in a header that inserts a space
 * when the field is unfolded, a fair price for a diagnostic holding 70+
 * octets without a space.
 */
static void
wrap(struct obuf *b, const char *text, size_t col, const char *indent)
{
	const char *w = text, *e;
	size_t len, room;
	int first = 1;

	while (*w != '\0') {
		while (*w == ' ')
			w++;
		if (*w == '\0')
			break;
		e = strchr(w, ' ');
		len = e ? (size_t)(e - w) : strlen(w);
		if (!first && col + 1 + len > WRAP)
			newline(b, indent, &col);
		else if (!first)
			ob_str(b, " "), col++;
		while (len > (room = col < WRAP ? WRAP - col : 0)) {
			if (room > 0) {
				ob_add(b, w, room);
				w += room, len -= room;
			}
			newline(b, indent, &col);
		}
		ob_add(b, w, len);
		col += len;
		w += len;
		first = 0;
	}
}

/* RFC 3463 2: class "." subject "." detail, class 2, 4 or 5, 1-3 digits each. */
static int
status_ok(const char *s)
{
	size_t part, digits;

	if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return 0;
	s += 2;
	for (part = 0; part < 2; part++) {
		for (digits = 0; *s >= '0' && *s <= '9'; s++)
			digits++;
		if (digits < 1 || digits > 3 || *s != (part == 0 ? '.' : '\0'))
			return 0;
		s += part == 0;
	}
	return 1;
}

/* An SMTP reply starts "ddd" then SP, "-" or the end (RFC 5321 4.2). */
static int
is_smtp_reply(const char *s)
{
	return s[0] >= '2' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' &&
	       s[2] <= '9' && (s[3] == '\0' || s[3] == ' ' || s[3] == '-');
}

/* A host name we can put into From, Message-ID and Reporting-MTA as is. */
static int
hostname_ok(const char *h)
{
	size_t i;

	if (h == NULL || h[0] == '\0' || strlen(h) > 253)
		return 0;
	for (i = 0; h[i] != '\0'; i++)
		if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= 'A' && h[i] <= 'Z') ||
		      (h[i] >= '0' && h[i] <= '9') || h[i] == '.' || h[i] == '-' || h[i] == '_'))
			return 0;
	return 1;
}

/* Printable ASCII without "<", ">" or controls: safe inside <...> as is. */
static int
plain_addr(const char *a)
{
	for (; *a != '\0'; a++)
		if ((unsigned char)*a < 0x20 || (unsigned char)*a > 0x7e || *a == '<' || *a == '>')
			return 0;
	return 1;
}

bool
bounce_wanted(const char *sender)
{
	static const char md[] = "mailer-daemon";
	size_t n = sizeof md - 1;

	if (sender == NULL || sender[0] == '\0')
		return false;
	/* RFC 3834 2: never answer automatic mail; MAILER-DAEMON is where bounces come from. */
	if (util_strncaseeq(sender, md, n) && (sender[n] == '\0' || sender[n] == '@'))
		return false;
	return true;
}

/*
 * S as valid UTF-8 without controls, at most MAX octets: controls become
 * "?", bytes that are not UTF-8 become U+FFFD. NULL on out of memory.
 */
static char *
utf8_sane(const char *s, size_t max)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, k;
	struct obuf t = {0};
	uint32_t cp;

	ob_add(&t, "", 1);
	t.len = 0;
	while (i < n && t.len + 4 <= max) {
		if ((k = utf8_decode(u + i, n - i, &cp)) == 0)
			ob_str(&t, "\xef\xbf\xbd"), k = 1;
		else if (cp < 0x20 || cp == 0x7f)
			ob_str(&t, "?");
		else
			ob_add(&t, u + i, k);
		i += k;
	}
	if (t.oom) {
		free(t.p);
		return NULL;
	}
	return t.p;
}

/*
 * To: <sender>. A sender that is not plain ASCII (SMTPUTF8, or hostile
 * bytes) would make the header 8-bit: it becomes the display name of an
 * empty group instead (RFC 5322 3.4), as RFC 2047 encoded-words of at most
 * 45 octets each, cut at character ends, so the reader still sees who the
 * mail was for. RFC 5321 4.5.3.1.3 caps a path at 256 octets; we keep 900.
 */
static void
put_to(struct obuf *b, const char *sender)
{
	const unsigned char *s;
	unsigned char enc[64];
	size_t n, i = 0, k, len;
	char *sane;
	uint32_t cp;

	if (plain_addr(sender) && strlen(sender) <= 900) {
		ob_str(b, "To: <");
		ob_str(b, sender);
		ob_str(b, ">\r\n");
		return;
	}
	if ((sane = utf8_sane(sender, 900)) == NULL) {
		b->oom = 1;
		return;
	}
	s = (const unsigned char *)sane;
	n = strlen(sane);
	ob_str(b, "To:");
	while (i < n) {
		for (len = 0; i + len < n; len += k)
			if ((k = utf8_decode(s + i + len, n - i - len, &cp)) == 0 || len + k > 45)
				break;
		if (len == 0)
			break; /* cannot happen: sane is valid UTF-8 */
		EVP_EncodeBlock(enc, s + i, (int)len);
		ob_str(b, " =?utf-8?b?");
		ob_str(b, (const char *)enc);
		ob_str(b, "?=\r\n");
		i += len;
	}
	ob_str(b, " :;\r\n");
	free(sane);
}

/* Status for one recipient: the caller's when well-formed, else the generic one. */
static const char *
rcpt_status(const struct bounce_info *bi, const struct bounce_rcpt *r)
{
	if (status_ok(r->status))
		return r->status;
	return bi->delayed ? "4.0.0" : "5.0.0";
}

/* line, folded with indent (wrap), then end onto b; frees line. */
static void
put_wrapped(struct obuf *b, struct obuf *line, const char *indent, const char *end)
{
	if (line->oom)
		b->oom = 1;
	else
		wrap(b, line->p, 0, indent);
	ob_str(b, end);
	free(line->p);
}

/* bounce_owner: why this notice reaches the owner and not the sender. */
static void
part_owner(struct obuf *b, const struct bounce_info *bi)
{
	struct obuf line = {0};

	ob_str(&line, "You receive this notice as the bounce owner of this sender: the message "
	              "was sent as <");
	clean(&line, bi->orig_sender, ESC_TEXT, 512);
	ob_str(&line, ">, and the relay's bounce_owner setting sends its delivery notices to <");
	clean(&line, bi->owner, ESC_TEXT, 512);
	ob_str(&line, "> instead of the envelope sender.");
	put_wrapped(b, &line, "", "\r\n\r\n");
}

/* postmaster_bounce_copy (issue 16): whose notice this copies. */
static void
part_copy(struct obuf *b, const struct bounce_info *bi)
{
	struct obuf line = {0};

	ob_str(&line,
	       "This is the postmaster's copy (postmaster_bounce_copy) of the notice sent to <");
	clean(&line, bi->owner != NULL ? bi->owner : bi->orig_sender, ESC_TEXT, 512);
	ob_str(&line, ">. As in that notice, only the headers of the message are attached, "
	              "never its body.");
	put_wrapped(b, &line, "", "\r\n\r\n");
}

/* Part 1: what a person reads. */
static void
part_text(struct obuf *b, const struct bounce_info *bi, const char *date, const char *copy_to)
{
	size_t i;

	ob_str(b, "Content-Type: text/plain; charset=us-ascii\r\n"
	          "Content-Description: Notification\r\n\r\n");
	ob_fmt(b, "This is the mail delivery system at %s.\r\n\r\n", bi->hostname);
	if (bi->delayed)
		ob_str(b, "Your message has not been delivered yet to the recipients listed\r\n"
		          "below. This is only a warning: the mail system keeps trying, and\r\n"
		          "you do not need to send the message again.\r\n\r\n");
	else
		ob_str(b, "Your message could not be delivered to the recipients listed below.\r\n"
		          "The mail system has given up on them. The headers of your message\r\n"
		          "are attached.\r\n\r\n");
	if (copy_to != NULL)
		part_copy(b, bi);
	else if (bi->owner != NULL)
		part_owner(b, bi);
	ob_str(b, "Queue ID: ");
	clean(b, bi->qid ? bi->qid : "-", ESC_TEXT, 64);
	ob_fmt(b, "\r\nArrived: %s\r\n", date);
	for (i = 0; i < bi->nrcpts; i++) {
		const struct bounce_rcpt *r = &bi->rcpts[i];
		struct obuf line = {0};

		ob_str(b, "\r\n");

		clean(&line, r->address, ESC_TEXT, 512);
		ob_str(&line, ":");
		if (r->remote_mta != NULL && r->diagnostic != NULL) {
			ob_str(&line, " host ");
			clean(&line, r->remote_mta, ESC_TEXT, HOST_MAX);
			ob_str(&line, " said:");
		}
		ob_str(&line, " ");
		if (r->diagnostic != NULL)
			clean(&line, r->diagnostic, ESC_TEXT, BOUNCE_DIAG_MAX);
		ob_fmt(&line, " (status %s)", rcpt_status(bi, r));
		put_wrapped(b, &line, "    ", "\r\n");
	}
}

/* Final-Recipient: rfc822 when the address is plain ASCII, else RFC 6533 utf-8 xtext. */
static void
put_final_rcpt(struct obuf *b, const char *addr)
{
	size_t col = strlen("Final-Recipient: utf-8; ");
	char *x;

	if (plain_addr(addr) && strchr(addr, ' ') == NULL && strlen(addr) <= 900) {
		ob_str(b, "Final-Recipient: rfc822; ");
		ob_str(b, addr);
		ob_str(b, "\r\n");
		return;
	}
	if ((x = cleaned(addr, ESC_XTEXT, 900)) == NULL) {
		b->oom = 1;
		return;
	}
	ob_str(b, "Final-Recipient: utf-8; ");
	wrap(b, x, col, " ");
	ob_str(b, "\r\n");
	free(x);
}

/* Diagnostic-Code (RFC 3464 2.3.6): "smtp" for a reply, "X-mxrelay" for our own text. */
static void
put_diagnostic(struct obuf *b, const char *diag)
{
	const char *type = is_smtp_reply(diag) ? "smtp" : "X-mxrelay";
	char *text = cleaned(diag, ESC_TEXT, BOUNCE_DIAG_MAX);
	struct obuf line = {0};

	if (text == NULL) {
		b->oom = 1;
		return;
	}
	ob_fmt(&line, "Diagnostic-Code: %s;", type);
	if (line.oom) {
		b->oom = 1;
	} else {
		ob_add(b, line.p, line.len);
		ob_str(b, " ");
		wrap(b, text, line.len + 1, " ");
		ob_str(b, "\r\n");
	}
	free(line.p);
	free(text);
}

/* Part 2: the machine-readable report (RFC 3464 2.2 and 2.3). */
static void
part_status(struct obuf *b, const struct bounce_info *bi, const char *arrival, const char *now)
{
	size_t i;

	ob_str(b, "Content-Type: message/delivery-status\r\n"
	          "Content-Description: Delivery report\r\n\r\n");
	ob_fmt(b, "Reporting-MTA: dns; %s\r\n", bi->hostname);
	ob_fmt(b, "Arrival-Date: %s\r\n", arrival);
	for (i = 0; i < bi->nrcpts; i++) {
		const struct bounce_rcpt *r = &bi->rcpts[i];

		ob_str(b, "\r\n");
		put_final_rcpt(b, r->address);
		ob_fmt(b, "Action: %s\r\n", bi->delayed ? "delayed" : "failed");
		ob_fmt(b, "Status: %s\r\n", rcpt_status(bi, r));
		if (r->remote_mta != NULL && r->remote_mta[0] != '\0') {
			ob_str(b, "Remote-MTA: dns; ");
			clean(b, r->remote_mta, ESC_XTEXT, HOST_MAX);
			ob_str(b, "\r\n");
		}
		if (r->diagnostic != NULL && r->diagnostic[0] != '\0')
			put_diagnostic(b, r->diagnostic);
		ob_fmt(b, "Last-Attempt-Date: %s\r\n", now);
	}
}

/*
 * Append one original header line (without its line end). CR and NUL
 * become spaces; a line over HDR_SPLIT octets is folded (CRLF SP), never
 * inside a UTF-8 sequence when one can be avoided.
 */
static void
put_orig_line(struct obuf *b, const unsigned char *p, size_t len, int *eight)
{
	size_t i, cut;

	for (i = 0; i < len; i++)
		*eight |= p[i] >= 0x80;
	while (len > 0) {
		cut = len;
		if (cut > HDR_SPLIT) {
			cut = HDR_SPLIT;
			while (cut > HDR_SPLIT - 4 && (p[cut] & 0xc0) == 0x80)
				cut--;
		}
		for (i = 0; i < cut; i++)
			ob_add(b, (p[i] == '\r' || p[i] == '\0') ? " " : (const char *)&p[i], 1);
		p += cut, len -= cut;
		if (len > 0)
			ob_str(b, "\r\n ");
	}
	ob_str(b, "\r\n");
}

/*
 * The original header block: lines up to the first empty one (RFC 5322
 * 2.1), LF or CRLF ended, only whole lines and at most BOUNCE_HEADERS_MAX
 * octets. Sets *eight when it holds 8-bit bytes.
 */
static void
orig_headers(struct obuf *b, const char *orig, size_t orig_len, int *eight)
{
	const unsigned char *p = (const unsigned char *)orig, *end, *nl;
	size_t len, start = b->len;

	if (orig == NULL)
		return;
	end = p + orig_len;
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (len > 0 && p[len - 1] == '\r')
			len--;
		if (len == 0)
			break; /* the empty line: the body starts */
		if (b->len - start + len + len / HDR_SPLIT * 3 + 2 > BOUNCE_HEADERS_MAX)
			break; /* only whole lines */
		put_orig_line(b, p, len, eight);
		if (nl == NULL)
			break;
		p = nl + 1;
	}
}

/*
 * Part 3: the original message's header block (RFC 6522 3:
 * text/rfc822-headers). Returns 1 when it is 8-bit.
 */
static int
part_headers(struct obuf *b, const struct bounce_info *bi)
{
	struct obuf h = {0};
	int eight = 0;

	orig_headers(&h, bi->orig, bi->orig_len, &eight);
	ob_str(b, "Content-Type: text/rfc822-headers\r\n");
	ob_fmt(b, "Content-Description: %s message headers\r\n",
	       bi->delayed ? "Delayed" : "Undelivered");
	if (eight)
		ob_str(b, "Content-Transfer-Encoding: 8bit\r\n");
	ob_str(b, "\r\n");
	if (h.oom)
		b->oom = 1;
	else if (h.p != NULL)
		ob_add(b, h.p, h.len);
	free(h.p);
	return eight;
}

/* N random hex characters; a pid-and-counter mix when getrandom fails. */
static void
random_hex(char *out, size_t n)
{
	static unsigned counter;

	if (util_random_hex(out, n) == 0)
		return;
	snprintf(out, n + 1, "%0*llx", (int)n,
	         (unsigned long long)getpid() << 32 | (unsigned long long)++counter);
}

static void
put_headers(struct obuf *b, const struct bounce_info *bi, const char *now, const char *boundary,
            int eight, const char *copy_to)
{
	time_t t = time(NULL);
	struct tm tm;
	char rnd[17], stamp[32], *qid;

	ob_fmt(b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", bi->hostname);
	put_to(b, copy_to != NULL ? copy_to : bi->owner != NULL ? bi->owner : bi->orig_sender);
	ob_fmt(b, "Subject: %s%s\r\n", copy_to != NULL ? "Postmaster Copy: " : "",
	       bi->delayed ? "Delayed Mail (still being retried)"
	                   : "Undelivered Mail Returned to Sender");
	ob_fmt(b, "Date: %s\r\n", now);
	gmtime_r(&t, &tm);
	strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", &tm);
	random_hex(rnd, 16);
	/* RFC 5322 3.6.4: unique by time and randomness; the qid helps a grep. */
	qid = cleaned(bi->qid ? bi->qid : "", ESC_XTEXT, 32);
	if (qid != NULL && qid[0] != '\0' && strspn(qid, "0123456789abcdefABCDEF") == strlen(qid))
		ob_fmt(b, "Message-ID: <%s.%s.%s@%s>\r\n", stamp, qid, rnd, bi->hostname);
	else
		ob_fmt(b, "Message-ID: <%s.%s@%s>\r\n", stamp, rnd, bi->hostname);
	free(qid);
	ob_str(b, "Auto-Submitted: auto-replied\r\n" /* RFC 3834 5 */
	          "MIME-Version: 1.0\r\n"
	          "Content-Type: multipart/report; report-type=delivery-status;\r\n");
	ob_fmt(b, " boundary=\"%s\"\r\n", boundary);
	/* RFC 2045 6.4: a multipart is labelled with its widest part's encoding. */
	if (eight)
		ob_str(b, "Content-Transfer-Encoding: 8bit\r\n");
	ob_str(b, "\r\n");
	ob_str(b, "This is a MIME-encapsulated message.\r\n");
}

static int
check_info(const struct bounce_info *bi, char *err, size_t errlen)
{
	const char *why = NULL;
	size_t i;

	if (bi == NULL)
		why = "no input";
	else if (!hostname_ok(bi->hostname))
		why = "bad hostname";
	else if (!bounce_wanted(bi->orig_sender))
		why = "null or MAILER-DAEMON sender: never bounced";
	else if (bi->nrcpts == 0 || bi->rcpts == NULL)
		why = "no recipients";
	for (i = 0; why == NULL && i < bi->nrcpts; i++)
		if (bi->rcpts[i].address == NULL)
			why = "recipient without address";
	if (why == NULL)
		return 0;
	snprintf(err, errlen, "bounce: %s", why);
	return -1;
}

/* The notice of bi, to copy_to instead when not NULL (the postmaster's copy). */
static int
build(const struct bounce_info *bi, const char *copy_to, char **out, size_t *outlen, char *err,
      size_t errlen)
{
	struct obuf parts[3] = {{0}}, msg = {0};
	char now[64], arrival[64], boundary[48], rnd[25];
	int tries, clash, eight, ret = -1;
	size_t i;

	*out = NULL;
	*outlen = 0;
	if (check_info(bi, err, errlen) < 0)
		return -1;
	util_rfc5322_date(now, sizeof now, time(NULL));
	util_rfc5322_date(arrival, sizeof arrival, bi->arrival);
	part_text(&parts[0], bi, arrival, copy_to);
	part_status(&parts[1], bi, arrival, now);
	eight = part_headers(&parts[2], bi);
	/* The boundary must not occur in any part (RFC 2046 5.1.1). */
	for (tries = 0, clash = 1; clash && tries < 8; tries++) {
		random_hex(rnd, 24);
		snprintf(boundary, sizeof boundary, "=_mxrelay_%s", rnd);
		for (i = 0, clash = 0; i < 3; i++)
			clash |= parts[i].p != NULL && strstr(parts[i].p, boundary) != NULL;
	}
	if (clash) {
		snprintf(err, errlen, "bounce: cannot find a MIME boundary");
		goto done;
	}
	put_headers(&msg, bi, now, boundary, eight, copy_to);
	for (i = 0; i < 3; i++) {
		ob_fmt(&msg, "\r\n--%s\r\n", boundary);
		ob_add(&msg, parts[i].p, parts[i].len);
		msg.oom |= parts[i].oom;
	}
	ob_fmt(&msg, "\r\n--%s--\r\n", boundary);
	if (msg.oom) {
		snprintf(err, errlen, "bounce: out of memory");
		goto done;
	}
	*out = msg.p;
	*outlen = msg.len;
	msg.p = NULL;
	ret = 0;
done:
	for (i = 0; i < 3; i++)
		free(parts[i].p);
	free(msg.p);
	return ret;
}

int
bounce_build(const struct bounce_info *bi, char **out, size_t *outlen, char *err, size_t errlen)
{
	return build(bi, NULL, out, outlen, err, errlen);
}

int
bounce_copy_make(struct bounce_copy *bc, const struct bounce_info *bi, const char *to, time_t when,
                 char *err, size_t errlen)
{
	memset(bc, 0, sizeof(*bc));
	if (to == NULL || *to == '\0') {
		snprintf(err, errlen, "bounce: no postmaster address");
		return -1;
	}
	if (build(bi, to, &bc->body, &bc->len, err, errlen) != 0)
		return -1;
	bounce_msg_in(&bc->in, &bc->rcpt, to, bc->body, bc->len, when);
	return 0;
}

void
bounce_copy_clear(struct bounce_copy *bc)
{
	free(bc->body);
	memset(bc, 0, sizeof(*bc));
}

void
bounce_msg_in(struct spool_msg_in *in, const char **rcpt_slot, const char *to, const char *body,
              size_t len, time_t when)
{
	memset(in, 0, sizeof(*in));
	util_make_qid(in->qid);
	in->sender = "";
	*rcpt_slot = to;
	in->rcpts = rcpt_slot;
	in->nrcpts = 1;
	in->body = body;
	in->body_len = len;
	in->received = when;
}
