/*
 * content: the DATA content rules of smtpd/data.c (dot transparency, bare
 * CR/LF refusal, line, header and size limits, Date and Message-ID added
 * when missing) for a message that arrives without an SMTP session: local
 * submission through the submit socket (submit.c). One set of rules, so
 * mail from cron and mail from a copier are judged alike.
 */
#ifndef MXRELAY_CONTENT_H
#define MXRELAY_CONTENT_H

#include <stddef.h>

struct server;
struct smtpd_data;

/*
 * Start a message whose queue id is qid and envelope sender is sender
 * ("" for the null sender; both borrowed: they must outlive the builder)
 * with received (copied) as its first header. Limits are read from
 * srv->cfg as each line arrives.
 */
struct smtpd_data *smtpd_content_new(struct server *srv, const char *qid, const char *sender,
				     const char *received);

/*
 * One line as it came in: dot-stuffed, with its CRLF, n octets. line may be
 * NULL when n is over the line limit (the caller dropped the octets).
 */
void smtpd_content_line(struct smtpd_data *d, const char *line, size_t n);

/*
 * The input is complete. Returns NULL when acceptable, else the refusal
 * ("550 5.6.0 ..."; the header From rules of hdrfrom.h included). from_dom
 * gets the domain of the header From's mailbox ("" without one), for DKIM.
 */
const char *smtpd_content_end(struct smtpd_data *d, char *from_dom, size_t from_domlen);

/* From header fields seen. */
unsigned smtpd_content_from_headers(const struct smtpd_data *d);

/* Hand the message over: the caller frees the result; the builder is left empty. */
char *smtpd_content_take(struct smtpd_data *d, size_t *len);

void smtpd_content_free(struct smtpd_data *d);

#endif
