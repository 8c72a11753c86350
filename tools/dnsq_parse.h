/*
 * tools/dnsq_parse: a DNS answer (RFC 1035 4.1) as dnsq's list of text.
 * Internal to tools/dnsq.c (and its fuzz target, test/fuzz/fuzz_dnsq.c).
 *
 * Owns: reading one response message through bounds checks only, the
 * response code, the CNAME chain from the question's name (RFC 1034
 * 3.6.2), and each answer record of the asked type as dnsq's text. Must
 * never trust a length, a count or a compression pointer in the message.
 */
#ifndef MXRELAY_TOOLS_DNSQ_PARSE_H
#define MXRELAY_TOOLS_DNSQ_PARSE_H

#include <stddef.h>

#include "tools/dnsq.h"

/* The record types dnsq asks for (RFC 1035 3.2.2, RFC 3596 2.1). */
enum dnsq_type {
	DNSQ_T_A = 1,
	DNSQ_T_CNAME = 5,
	DNSQ_T_SOA = 6,
	DNSQ_T_PTR = 12,
	DNSQ_T_MX = 15,
	DNSQ_T_TXT = 16,
	DNSQ_T_AAAA = 28,
};

/* A presentation-format name: 255 wire bytes, each at most "\DDD". */
#define DNSQ_NAME_MAX 1024

/*
 * The records of type owned by qname (or by the end of its CNAME chain) in
 * the answer msg[0..len), appended to out as text (dnsq.h's forms).
 *
 * Returns DNSQ_OK when any was found; DNSQ_NXDOMAIN (RCODE 3); DNSQ_NODATA;
 * DNSQ_FAIL for another RCODE or a malformed message (out keeps what it had
 * before the call). When the chain ends at a name the message has no answer
 * for (an authoritative server answers only the CNAME of a name outside its
 * zones), NODATA comes with that name in next (DNSQ_NAME_MAX bytes) for
 * the caller to ask again; next is "" otherwise.
 */
enum dnsq_status dnsq_parse(const unsigned char *msg, size_t len, const char *qname,
                            enum dnsq_type type, struct dnsq_list *out, char *next);

#endif
