/*
 * dlvlog: delivery log fields and lines that more than one module writes
 * (README "Log lines"): the Postfix-style `delays=a/b/c/d` of a delivery
 * line and the `event=removed` line of a message that left the queue for
 * good. Pure formatting and one log call: it decides nothing.
 */
#ifndef MXRELAY_DLVLOG_H
#define MXRELAY_DLVLOG_H

#include <stddef.h>

/*
 * "a/b/c/d" into out as Postfix writes it: seconds, "0" below 0.01, two
 * significant digits below 10, whole seconds from 10 on; a negative value
 * (clock steps) reads 0. Returns out.
 */
char *dlvlog_delays(char *out, size_t outlen, double a, double b, double c, double d);

/*
 * qid=QID event=removed reason=REASON: the message is gone from the spool
 * ("done": every recipient has its final outcome, delivered, bounced or
 * expired; "bounced": an operator bounced it; "deleted": an operator
 * deleted it). Call it exactly once per message, after the change is
 * durable. Loop thread or any other: it only logs.
 */
void dlvlog_removed(const char *qid, const char *reason);

#endif
