/*
 * res_channel.c - one c-ares channel driven by the delivery worker's epoll
 * loop: c-ares tells us which sockets to watch (ARES_OPT_SOCK_STATE_CB),
 * readiness and a timer re-armed from ares_timeout() after every operation
 * lead to ares_process_fd(). Nothing here blocks, selects or polls.
 */
#include "resolver/res_private.h"
#include "common/config.h"
#include "common/log.h"
#include "common/xmalloc.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * A dead server costs timeout + 2 * timeout (c-ares doubles the timeout on
 * each round over the servers): 6 s with one server, not the minute the
 * defaults (5 s, 4 tries) add up to.
 */
#define RES_TIMEOUT_MS 2000
#define RES_TRIES 2

static void res_destroy(struct resolver *r);

static ssize_t res_fd_find(struct res_chan *c, int fd)
{
	for (size_t i = 0; i < c->nfds; i++)
		if (c->fds[i] == fd)
			return (ssize_t)i;
	return -1;
}

static void res_io_cb(int fd, uint32_t events, void *arg)
{
	struct res_chan *c = arg;
	int rfd = events & (EPOLLIN | EPOLLERR | EPOLLHUP) ? fd : ARES_SOCKET_BAD;
	int wfd = events & EPOLLOUT ? fd : ARES_SOCKET_BAD;

	res_enter(c->r);
	ares_process_fd(c->ch, rfd, wfd);
	res_leave(c->r);
}

static void res_timer_cb(void *arg)
{
	struct res_chan *c = arg;

	res_enter(c->r);
	ares_process_fd(c->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	res_leave(c->r);
}

/* c-ares opens, changes interest in, or is about to close a socket. */
static void res_sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	struct res_chan *c = data;
	struct ev_loop *loop = c->r->loop;
	uint32_t events = (readable ? EPOLLIN : 0) | (writable ? EPOLLOUT : 0);
	ssize_t i = res_fd_find(c, fd);

	if (events == 0) {
		if (i < 0)
			return;
		ev_io_del(loop, fd);
		c->fds[i] = c->fds[--c->nfds];
		return;
	}
	if (i >= 0) {
		if (ev_io_mod(loop, fd, events) < 0)
			log_warnx("resolver: epoll mod fd %d: %s", fd, strerror(errno));
		return;
	}
	/* On failure the query times out through the timer; nothing is lost. */
	if (ev_io_add(loop, fd, events, res_io_cb, c) < 0) {
		log_warnx("resolver: epoll add fd %d: %s", fd, strerror(errno));
		return;
	}
	if (c->nfds == c->fdcap) {
		c->fdcap = c->fdcap ? c->fdcap * 2 : 8;
		c->fds = xreallocarray(c->fds, c->fdcap, sizeof(*c->fds));
	}
	c->fds[c->nfds++] = fd;
}

/* Outside every c-ares callback only: pending queries end with ARES_EDESTRUCTION. */
static void res_chan_free(struct res_chan *c)
{
	if (c == NULL)
		return;
	ares_destroy(c->ch);
	while (c->nfds > 0)
		ev_io_del(c->r->loop, c->fds[--c->nfds]);
	ev_timer_stop(c->r->loop, &c->timer);
	free(c->fds);
	free(c);
}

/* Re-arms c's timer; 0 when c has no query left. */
static int res_chan_arm(struct res_chan *c)
{
	struct timeval tv;

	if (ares_timeout(c->ch, NULL, &tv) == NULL) {
		ev_timer_stop(c->r->loop, &c->timer);
		return 0;
	}
	uint64_t ms = (uint64_t)tv.tv_sec * 1000u + ((uint64_t)tv.tv_usec + 999u) / 1000u;
	ev_timer_start(c->r->loop, &c->timer, ms);
	return 1;
}

void res_enter(struct resolver *r)
{
	r->depth++;
}

int res_leave(struct resolver *r)
{
	if (--r->depth > 0)
		return 0;
	if (r->dying) {
		res_destroy(r);
		return 1;
	}
	res_chan_arm(r->cur);
	for (struct res_chan **cp = &r->draining; *cp != NULL;) {
		struct res_chan *c = *cp;
		if (res_chan_arm(c)) {
			cp = &c->next;
			continue;
		}
		*cp = c->next;
		res_chan_free(c);
	}
	return 0;
}

void res_query(struct res_chan *c, const char *name, int type, ares_callback cb, void *arg)
{
	struct resolver *r = c->r;

	if (r->dying) {
		cb(arg, ARES_EDESTRUCTION, 0, NULL, 0);
		return;
	}
	res_enter(r);
	ares_query(c->ch, name, ns_c_in, type, cb, arg);
	res_leave(r);
}

/* cfg->dns_servers in the given order (ARES_OPT_NOROTATE keeps it). */
static int res_set_servers(ares_channel ch, const struct config *cfg, char *err, size_t errsz)
{
	struct ares_addr_port_node *nodes;
	int rc;

	if (cfg->ndns_servers == 0)
		return 0;
	nodes = xcalloc(cfg->ndns_servers, sizeof(*nodes));
	for (size_t i = 0; i < cfg->ndns_servers; i++) {
		const struct cfg_dns_server *s = &cfg->dns_servers[i];
		struct ares_addr_port_node *n = &nodes[i];
		n->next = i + 1 < cfg->ndns_servers ? &nodes[i + 1] : NULL;
		n->udp_port = n->tcp_port = s->port;
		if (inet_pton(AF_INET, s->addr, &n->addr.addr4) == 1) {
			n->family = AF_INET;
		} else if (inet_pton(AF_INET6, s->addr, &n->addr.addr6) == 1) {
			n->family = AF_INET6;
		} else {
			snprintf(err, errsz, "dns-server %s: not a numeric address", s->addr);
			goto fail;
		}
	}
	rc = ares_set_servers_ports(ch, nodes);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errsz, "c-ares: setting the DNS servers: %s", ares_strerror(rc));
		goto fail;
	}
	free(nodes);
	return 0;
fail:
	free(nodes);
	return -1;
}

static void res_self_add(struct resolver *r, const struct sockaddr *sa, socklen_t len,
			 uint16_t port_net)
{
	r->self = xreallocarray(r->self, r->nself + 1, sizeof(*r->self));
	struct sockaddr_storage *ss = &r->self[r->nself++];
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, sa, len);
	if (sa->sa_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = port_net;
	else
		((struct sockaddr_in6 *)ss)->sin6_port = port_net;
}

static int res_is_wildcard(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
	return 0;
}

/*
 * The addresses this host receives mail on: the listen addresses, a
 * wildcard one standing for every interface address of its family.
 */
static void res_self_init(struct resolver *r, const struct config *cfg)
{
	struct ifaddrs *ifs = NULL;

	for (size_t i = 0; i < cfg->nlistens; i++) {
		const struct sockaddr_storage *ss = &cfg->listens[i].addr;
		uint16_t port = ss->ss_family == AF_INET ?
			((const struct sockaddr_in *)ss)->sin_port :
			((const struct sockaddr_in6 *)ss)->sin6_port;
		if (ss->ss_family != AF_INET && ss->ss_family != AF_INET6)
			continue;
		if (!res_is_wildcard(ss)) {
			res_self_add(r, (const struct sockaddr *)ss, cfg->listens[i].addrlen, port);
			continue;
		}
		if (ifs == NULL && getifaddrs(&ifs) < 0) {
			log_warnx("resolver: getifaddrs: %s", strerror(errno));
			continue;
		}
		for (struct ifaddrs *ifa = ifs; ifa != NULL; ifa = ifa->ifa_next) {
			if (ifa->ifa_addr == NULL || ifa->ifa_addr->sa_family != ss->ss_family)
				continue;
			res_self_add(r, ifa->ifa_addr, ss->ss_family == AF_INET ?
				     sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6), port);
		}
	}
	if (ifs != NULL)
		freeifaddrs(ifs);
}

/* A channel configured from cfg: NULL with a message in err. */
static struct res_chan *res_chan_new(struct resolver *r, const struct config *cfg, char *err,
				     size_t errsz)
{
	struct ares_options opts;
	struct res_chan *c = xcalloc(1, sizeof(*c));
	int optmask, rc;

	c->r = r;
	ev_timer_init(&c->timer, res_timer_cb, c);
	memset(&opts, 0, sizeof(opts));
	opts.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_EDNS;
	opts.timeout = RES_TIMEOUT_MS;
	opts.tries = RES_TRIES;
	opts.sock_state_cb = res_sock_state_cb;
	opts.sock_state_cb_data = c;
	optmask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB |
		  ARES_OPT_NOROTATE;
#if ARES_VERSION >= 0x011700
	/*
	 * 1.23 has a cache on by default (relayctl route must show fresh
	 * answers) and adapts timeouts to measured latency: cap them at what
	 * 1.18's doubling reaches, so a dead server still costs seconds.
	 */
	opts.qcache_max_ttl = 0;
	opts.maxtimeout = 2 * RES_TIMEOUT_MS;
	optmask |= ARES_OPT_QUERY_CACHE | ARES_OPT_MAXTIMEOUTMS;
#endif
	rc = ares_init_options(&c->ch, &opts, optmask);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errsz, "c-ares: init: %s", ares_strerror(rc));
		free(c);
		return NULL;
	}
	if (res_set_servers(c->ch, cfg, err, errsz) < 0) {
		res_chan_free(c);
		return NULL;
	}
	return c;
}

static void res_self_set(struct resolver *r, const struct config *cfg)
{
	snprintf(r->hostname, sizeof(r->hostname), "%s", cfg->hostname);
	free(r->self);
	r->self = NULL;
	r->nself = 0;
	res_self_init(r, cfg);
}

struct resolver *resolver_new(struct ev_loop *loop, const struct config *cfg, char *err,
			      size_t errsz)
{
	struct resolver *r;
	int rc;

	rc = ares_library_init(ARES_LIB_INIT_ALL);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errsz, "c-ares: library init: %s", ares_strerror(rc));
		return NULL;
	}
	r = xcalloc(1, sizeof(*r));
	r->loop = loop;
	r->cur = res_chan_new(r, cfg, err, errsz);
	if (r->cur == NULL) {
		free(r);
		ares_library_cleanup();
		return NULL;
	}
	res_self_set(r, cfg);
	return r;
}

/*
 * A new channel for the new servers; the old one finishes its queries and
 * goes once idle (res_leave), so a reload neither loses nor re-enters one.
 */
int resolver_reload(struct resolver *r, const struct config *cfg, char *err, size_t errsz)
{
	struct res_chan *c = res_chan_new(r, cfg, err, errsz);

	if (c == NULL)
		return -1;
	r->cur->next = r->draining;
	r->draining = r->cur;
	r->cur = c;
	res_self_set(r, cfg);
	res_enter(r);
	res_leave(r); /* retires the old channel now if it is idle */
	return 0;
}

/* Outside every c-ares callback: pending queries end with ARES_EDESTRUCTION. */
static void res_destroy(struct resolver *r)
{
	r->dying = 1;
	r->depth++; /* a resolver_free from those callbacks must not recurse */
	while (r->draining != NULL) {
		struct res_chan *c = r->draining;
		r->draining = c->next;
		res_chan_free(c);
	}
	res_chan_free(r->cur);
	free(r->self);
	free(r);
	ares_library_cleanup();
}

void resolver_free(struct resolver *r)
{
	if (r == NULL || r->dying)
		return;
	r->dying = 1;
	if (r->depth == 0)
		res_destroy(r);
}
