/*
 * intake_proxy.h - the PROXY protocol header (HAProxy's proxy-protocol.txt,
 * versions 1 and 2) that a load balancer sends before anything else on a
 * `listen ... proxy` connection: its parser, and the wait for it before
 * a session starts.
 */
#ifndef RELAYD_INTAKE_PROXY_H
#define RELAYD_INTAKE_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct intake;

/* v1: "PROXY UNKNOWN" + 93 octets of addresses and ports + CRLF at most. */
#define PROXY_V1_MAX 107
/* v2: 16 octets and the addresses; TLVs beyond this bound are refused. */
#define PROXY_V2_MAX 1024
#define PROXY_MAX PROXY_V2_MAX

enum proxy_status {
	PROXY_MORE, /* a valid beginning: more octets are needed */
	PROXY_DONE, /* a whole header of h->len octets */
	PROXY_BAD,  /* not a valid header; *why says what is wrong */
};

struct proxy_hdr {
	int version; /* 1 or 2 */
	/*
	 * v2 LOCAL (the balancer's own health check) or v1 UNKNOWN: no client
	 * address is given, the connection's own addresses stand.
	 */
	int local;
	struct sockaddr_storage src; /* the client, when !local */
	socklen_t srclen;
	size_t len; /* octets the header takes */
};

/*
 * Parses the first n octets a connection sent. PROXY_MORE when they are
 * a valid beginning of a header shorter than its bound.
 */
enum proxy_status proxy_parse(const uint8_t *p, size_t n, struct proxy_hdr *h,
			      const char **why);

/*
 * An accepted connection on a proxy listener: the header is read (no
 * octet past it) within the header timeout, then the session starts with
 * the client's address. Otherwise the connection is closed with a log line.
 */
void intake_proxy_accept(struct intake *in, int fd, const struct sockaddr *sa,
			 socklen_t salen, int mode);
/* Shutdown: connections still waiting are closed. */
void intake_proxy_stop(struct intake *in);

#endif
