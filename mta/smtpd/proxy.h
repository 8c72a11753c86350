/*
 * proxy: parser for the PROXY protocol header (HAProxy's proxy-protocol.txt,
 * versions 1 and 2) that a load balancer sends before any client byte, so a
 * relay behind it learns the real client's address.
 *
 * Owns: turning the first bytes of a connection into a command and the
 * client's address. Pure and bounded: no sockets, no allocation, no logging;
 * every read goes through a bounds-checked cursor, and the header it accepts
 * is never longer than PROXY_HDR_MAX. Never decides whom to trust: the
 * listener accepts a header only from its proxy_from networks.
 */
#ifndef MXRELAY_PROXY_H
#define MXRELAY_PROXY_H

#include <stddef.h>
#include <sys/socket.h>

/* versions a listener takes (bit mask; listener_conf.proxy_protocol) */
#define PROXY_V1 1u
#define PROXY_V2 2u

#define PROXY_V1_MAX 107	/* spec 2.1: the longest v1 line, CRLF included */
#define PROXY_V2_FIXED 16	/* signature, version/command, family, length */
#define PROXY_V2_TLV_MAX 1024	/* ours: TLV bytes beyond the addresses (spec allows 64K) */
#define PROXY_V2_PAYLOAD_MAX (36 + PROXY_V2_TLV_MAX)	/* IPv6 address block + TLVs */
#define PROXY_HDR_MAX (PROXY_V2_FIXED + PROXY_V2_PAYLOAD_MAX)	/* longest header accepted */

enum proxy_status {
	PROXY_NEED_MORE,	/* the bytes so far are a proper prefix of a valid header */
	PROXY_OK,		/* a whole header: see struct proxy_hdr */
	PROXY_ERROR,		/* not a header we accept (reason in error) */
};

enum proxy_cmd {
	PROXY_CMD_PROXY,	/* relayed connection: src and dst are set */
	PROXY_CMD_LOCAL,	/* v2 LOCAL (the balancer's own health check) */
	PROXY_CMD_UNKNOWN,	/* v1 UNKNOWN or v2 AF_UNSPEC: relayed, address not told */
};

struct proxy_hdr {
	unsigned version;	/* 1 or 2 */
	enum proxy_cmd cmd;
	size_t len;		/* bytes of the header; the client's data starts after them */
	struct sockaddr_storage src, dst;	/* PROXY_CMD_PROXY only (AF_INET / AF_INET6) */
	socklen_t srclen, dstlen;
	const char *error;	/* PROXY_ERROR: static text for the log */
};

/*
 * Parse the first len bytes of a connection. versions: PROXY_V1 and/or
 * PROXY_V2. NEED_MORE promises every byte so far belongs to the header (a
 * caller may consume them); OK fills *out, whose len may be less than the
 * bytes given (the rest is client data). Nothing is kept after the call.
 */
enum proxy_status proxy_parse(const unsigned char *buf, size_t len, unsigned versions,
			      struct proxy_hdr *out);

const char *proxy_strstatus(enum proxy_status st);

#endif
