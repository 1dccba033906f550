/*
 * resolver.h - non-blocking DNS for the delivery worker: c-ares driven by
 * the worker's event loop, and the RFC 5321 section 5.1 / RFC 7505 logic
 * that turns a destination domain into a ranked list of hosts to try.
 */
#ifndef RELAYD_RESOLVER_H
#define RELAYD_RESOLVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct ev_loop;
struct config;
struct resolver;

enum mx_status {
	MX_OK = 0,
	MX_TEMPFAIL,   /* SERVFAIL, timeout, refused: 4.4.3, retry later */
	MX_PERMFAIL,   /* NXDOMAIN (5.1.2), null MX (5.1.10), no address, loop (5.4.6) */
};

struct mx_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[64];            /* numeric form, for logs: "192.0.2.1" */
};

struct mx_host {
	char name[256];
	unsigned pref;            /* MX preference; 0 for implicit MX or literals */
	struct mx_addr *addrs;
	size_t naddrs;
	int addr_tempfail;        /* its A/AAAA lookup failed temporarily */
};

struct mx_plan {
	enum mx_status status;
	char enh[16];             /* enhanced status code when not MX_OK */
	char error[256];          /* human-readable reason when not MX_OK */
	int implicit;             /* no MX records: the domain's own A/AAAA */
	struct mx_host *hosts;    /* ranked: try in this order */
	size_t nhosts;
	char *trace;              /* the DNS answers, one per line (relayctl route) */
};

typedef void (*mx_cb)(struct mx_plan *plan, void *arg);

/* NULL with a message in err when c-ares cannot start. */
struct resolver *resolver_new(struct ev_loop *loop, const struct config *cfg, char *err,
			      size_t errsz);
void resolver_free(struct resolver *r);
/*
 * Resolves where mail for domain goes. no_mx: domain is a host name (a
 * [host] next hop), look up only its addresses. An address literal
 * ("[192.0.2.1]", "[IPv6:...]") skips DNS. Every address gets port.
 * cb is called exactly once, possibly before mx_resolve returns; it owns
 * the plan (mx_plan_free).
 */
void mx_resolve(struct resolver *r, const char *domain, int no_mx, uint16_t port, mx_cb cb,
		void *arg);
void mx_plan_free(struct mx_plan *plan);

#endif
