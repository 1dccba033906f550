/*
 * resolver.h - non-blocking DNS for the delivery worker and intake: c-ares
 * driven by the worker's event loop, the RFC 5321 section 5.1 / RFC 7505
 * logic that turns a destination domain into a ranked list of hosts to
 * try, and the verified name of a client address.
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
	MX_PERMFAIL,   /* NXDOMAIN or bad name/literal (5.1.2), null MX (5.1.10),
			  no address (5.4.4), loop (5.4.6) */
};

struct mx_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[64];            /* numeric form, for logs: "192.0.2.1" (no port) */
};

struct mx_host {
	char name[256];
	unsigned pref;            /* MX preference; 0 for implicit MX or literals */
	struct mx_addr *addrs;    /* A answers first, then AAAA; all with the port */
	size_t naddrs;            /* may be 0: nothing to try on this host */
	int addr_tempfail;        /* no address because a lookup failed temporarily */
};

struct mx_plan {
	enum mx_status status;
	char enh[16];             /* enhanced status code when not MX_OK */
	char error[256];          /* human-readable reason when not MX_OK */
	int implicit;             /* no MX records: the domain's own A/AAAA */
	struct mx_host *hosts;    /* ranked: try in this order (also when failed, for route) */
	size_t nhosts;
	/*
	 * The DNS answers, one per line, never NULL (relayctl route):
	 * "example.org. MX 10 mx1.example.org.", "mx1.example.org. A 192.0.2.1",
	 * "mx1.example.org. AAAA (no records)", "x.org. MX (NXDOMAIN)",
	 * "x.org. MX (temporary failure: Timeout while contacting DNS servers)".
	 */
	char *trace;
};

typedef void (*mx_cb)(struct mx_plan *plan, void *arg);

/* NULL with a message in err when c-ares cannot start. */
struct resolver *resolver_new(struct ev_loop *loop, const struct config *cfg, char *err,
			      size_t errsz);
/*
 * After a config reload: new dns-server list, hostname and listen
 * addresses. Resolutions in flight finish on the old servers. 0, or -1
 * with a message in err (the old servers stay). Safe inside an mx_cb.
 */
int resolver_reload(struct resolver *r, const struct config *cfg, char *err, size_t errsz);
/*
 * Pending resolutions get their cb with MX_TEMPFAIL. Called from inside an
 * mx_cb, the destruction waits until c-ares has returned.
 */
void resolver_free(struct resolver *r);
/*
 * Resolves where mail for domain goes. no_mx: domain is a host name (a
 * [host] next hop, which may also be a bare IPv4/IPv6 address), look up
 * only its addresses. An address literal ("[192.0.2.1]", "[IPv6:...]")
 * skips DNS. Every address gets port. A host counts as this host when it
 * is named cfg->hostname or one of its addresses with port is a listen
 * address (so a next hop on another port of the same IP is not a loop).
 * cb is called exactly once, possibly before mx_resolve returns; it owns
 * the plan (mx_plan_free). A dead DNS server costs about 6 s (2 s, then
 * 4 s), a refusing one at most 2 s before the next server is asked.
 */
void mx_resolve(struct resolver *r, const char *domain, int no_mx, uint16_t port, mx_cb cb,
		void *arg);
void mx_plan_free(struct mx_plan *plan);

/*
 * The verified name of a client address (rdns.c), as Postfix's smtpd
 * finds it: the PTR record of the address, then the A (or AAAA) records
 * of that name, which must hold the address again; otherwise anybody who
 * controls a reverse zone could claim any name.
 */
enum rdns_result {
	RDNS_VERIFIED,   /* name is the client's */
	RDNS_UNVERIFIED, /* no PTR, a bad name, or its addresses do not match */
	RDNS_TEMPFAIL,   /* a lookup failed or ran out of time: not known */
};
/* name: the verified name ("" unless RDNS_VERIFIED). */
typedef void (*rdns_cb)(enum rdns_result res, const char *name, void *arg);
/*
 * cb exactly once, possibly before rdns_verify returns; with
 * RDNS_TEMPFAIL when the resolver goes away. An IPv4-mapped IPv6
 * address is looked up as the IPv4 address.
 */
void rdns_verify(struct resolver *r, const struct sockaddr *sa, rdns_cb cb, void *arg);

/*
 * The RFC 5321 section 5.1 / RFC 7505 ranking, without I/O (mx_rank.c).
 * mx_resolve builds its plan with these; the unit tests drive them with
 * tables. Hosts left without addresses (naddrs == 0) stay in the plan so
 * that relayctl route can show them; delivery simply has nothing to try there.
 */

/* One MX record as the DNS gave it; host "" or "." is a null MX. */
struct mx_rr {
	unsigned pref;
	const char *host;
};

/* This host, for loop detection: its name and listen addresses (with ports). */
struct mx_self {
	const char *hostname;
	const struct sockaddr_storage *addrs;
	size_t naddrs;
};

/* Uniform random number in [0, n); NULL means arc4random_uniform. */
typedef uint32_t (*mx_rng)(uint32_t n);

struct mx_plan *mx_plan_new(void);
/* Sets status, enhanced code and reason (the first failure wins). */
void mx_plan_fail(struct mx_plan *plan, enum mx_status status, const char *enh,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
struct mx_host *mx_plan_add_host(struct mx_plan *plan, const char *name, unsigned pref);
void mx_host_add_addr(struct mx_host *h, const struct sockaddr *sa, uint16_t port);
/*
 * "[192.0.2.1]", "[IPv6:2001:db8::1]" (also "[2001:db8::1]", as next hops
 * are written): 1 and out filled with port; 0 when s is not bracketed;
 * -1 when it is a malformed literal.
 */
int mx_parse_literal(const char *s, uint16_t port, struct mx_addr *out);
/* 1 if s is a syntactically valid domain name (LDH labels, trailing dot allowed). */
int mx_valid_domain(const char *s);
/*
 * The MX answer for domain: n == 0 (no MX records) makes the implicit MX,
 * a null MX fails the plan with 5.1.10. Duplicate targets are merged, the
 * hosts sorted by preference with ties shuffled. Returns 0, or -1 when the
 * plan failed.
 */
int mx_plan_set_mx(struct mx_plan *plan, const char *domain, const struct mx_rr *rrs, size_t n,
		   mx_rng rng);
/* Sorts by preference and shuffles each run of equal preference. */
void mx_sort_hosts(struct mx_host *hosts, size_t n, mx_rng rng);
/*
 * After the address lookups: drops this host and every host with an equal
 * or higher preference value (5.4.6 when none is left), then fails the plan
 * when no host has an address (4.4.3 if a lookup failed temporarily, else
 * 5.4.4). Does nothing to a plan that already failed.
 */
void mx_plan_finish(struct mx_plan *plan, const char *domain, const struct mx_self *self);

#endif
