/*
 * test_resolver.c - mx_resolve against real DNS servers on loopback: a
 * dnsmasq holding the test zone, a "flaky" server that answers SERVFAIL to
 * every A query and passes the rest to dnsmasq, a port where nothing
 * listens (refused) and a socket that never answers (timeout). The servers
 * start once per test case in the parent and are killed in its teardown,
 * whatever happened to the tests.
 */
#include "common/config.h"
#include "common/event.h"
#include "resolver/resolver.h"
#include "tests/unit/unit_skip.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DNSMASQ "/usr/sbin/dnsmasq"
/* Longer than a dead server costs (2 s + 4 s), shorter than the Check timeout. */
#define GUARD_MS 15000

/* The test zone: what dnsmasq serves, under --local=/test/ (anything else is NXDOMAIN). */
static const char *const zone[] = {
	"--mx-host=two.test,mx1.two.test,10",
	"--mx-host=two.test,mx2.two.test,20",
	"--host-record=mx1.two.test,127.0.0.2",
	"--host-record=mx2.two.test,127.0.0.3",
	"--host-record=implicit.test,127.0.0.4",
	"--mx-host=null.test,.,0",
	"--dns-rr=nullrr.test,15,000000", /* MX 0 . written as raw rdata */
	"--host-record=target.test,127.0.0.5",
	"--cname=alias.test,target.test",
	"--host-record=v6.test,::1",
	"--host-record=both.test,127.0.0.6,::1",
	"--mx-host=viav6.test,both.test,10",
	"--mx-host=noaddr.test,ghost.test,10",
	"--mx-host=tie.test,a.tie.test,10",
	"--mx-host=tie.test,b.tie.test,10",
	"--mx-host=tie.test,c.tie.test,10",
	"--host-record=a.tie.test,127.0.0.7",
	"--host-record=b.tie.test,127.0.0.8",
	"--host-record=c.tie.test,127.0.0.9",
};

static pid_t dnsmasq_pid = -1, flaky_pid = -1;
static uint16_t dnsmasq_port, flaky_port, refused_port, silent_port;
static int silent_fd = -1;
static int have_v6; /* ::1 usable: dnsmasq listens there too */

/* A UDP socket on 127.0.0.1 with a kernel-chosen port. */
static int udp_socket(uint16_t *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, len) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
		perror("udp socket");
		abort();
	}
	*port = ntohs(sin.sin_port);
	return fd;
}

/* Up when its port can no longer be bound. */
static int udp_port_taken(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int rc = bind(fd, (struct sockaddr *)&sin, sizeof(sin));
	int taken = rc < 0 && errno == EADDRINUSE;

	close(fd);
	return taken;
}

static void kill_child(pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGKILL);
	waitpid(*pid, NULL, 0);
	*pid = -1;
}

static pid_t start_dnsmasq(uint16_t port)
{
	char portarg[32];
	const char *argv[64];
	size_t n = 0;

	snprintf(portarg, sizeof(portarg), "--port=%u", port);
	argv[n++] = DNSMASQ;
	argv[n++] = "--no-daemon";
	argv[n++] = portarg;
	argv[n++] = "--listen-address=127.0.0.1";
	if (have_v6)
		argv[n++] = "--listen-address=::1";
	argv[n++] = "--bind-interfaces";
	argv[n++] = "--no-resolv";
	argv[n++] = "--no-hosts";
	argv[n++] = "--conf-file=/dev/null";
	argv[n++] = "--pid-file=";
	argv[n++] = "--local=/test/";
	for (size_t i = 0; i < sizeof(zone) / sizeof(zone[0]); i++)
		argv[n++] = zone[i];
	argv[n] = NULL;

	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 1);
		dup2(null, 2);
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
		execv(DNSMASQ, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

/* dnsmasq on a free port, retried if the port was taken meanwhile. */
static void dnsmasq_up(void)
{
	for (int attempt = 0; attempt < 5; attempt++) {
		int fd = udp_socket(&dnsmasq_port);
		close(fd);
		dnsmasq_pid = start_dnsmasq(dnsmasq_port);
		ck_assert_int_gt(dnsmasq_pid, 0);
		for (int i = 0; i < 500; i++) {
			if (udp_port_taken(dnsmasq_port))
				return;
			if (waitpid(dnsmasq_pid, NULL, WNOHANG) == dnsmasq_pid) {
				dnsmasq_pid = -1;
				break;
			}
			usleep(10000);
		}
		kill_child(&dnsmasq_pid);
	}
	fprintf(stderr, "dnsmasq did not start\n");
	abort();
}

/*
 * The flaky server: SERVFAIL to every A query, everything else relayed to
 * dnsmasq. A forked child in a blocking loop, killed in teardown.
 */
static void flaky_serve(int fd)
{
	struct sockaddr_in up = { .sin_family = AF_INET, .sin_port = htons(dnsmasq_port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	uint16_t dummy;
	int upfd = udp_socket(&dummy);
	struct timeval tv = { 2, 0 };
	unsigned char q[1500], a[1500];

	setsockopt(upfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (;;) {
		struct sockaddr_storage from;
		socklen_t fromlen = sizeof(from);
		ssize_t n = recvfrom(fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fromlen);
		size_t off = 12;
		if (n < 17)
			continue;
		while (off < (size_t)n && q[off] != 0)
			off += q[off] + 1u;
		if (off + 4 >= (size_t)n)
			continue;
		unsigned qtype = (unsigned)q[off + 1] << 8 | q[off + 2];
		if (qtype == 1) {
			q[2] |= 0x80;                      /* QR */
			q[3] = (unsigned char)((q[3] & 0xf0) | 2); /* RCODE SERVFAIL */
			sendto(fd, q, (size_t)n, 0, (struct sockaddr *)&from, fromlen);
			continue;
		}
		sendto(upfd, q, (size_t)n, 0, (struct sockaddr *)&up, sizeof(up));
		ssize_t m = recv(upfd, a, sizeof(a), 0);
		if (m > 0)
			sendto(fd, a, (size_t)m, 0, (struct sockaddr *)&from, fromlen);
	}
}

static int v6_loopback(void)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int ok = fd >= 0 && bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

static void servers_up(void)
{
	int fd;

	have_v6 = v6_loopback();
	dnsmasq_up();
	fd = udp_socket(&flaky_port);
	flaky_pid = fork();
	if (flaky_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		flaky_serve(fd);
		_exit(0);
	}
	close(fd);
	fd = udp_socket(&refused_port);
	close(fd); /* nothing listens there: ICMP port unreachable */
	silent_fd = udp_socket(&silent_port); /* bound, never read */
}

static void servers_down(void)
{
	kill_child(&flaky_pid);
	kill_child(&dnsmasq_pid);
	if (silent_fd >= 0)
		close(silent_fd);
	silent_fd = -1;
}

/* One resolution, run on its own loop under a guard timer. */

struct result {
	struct mx_plan *plan;
	int calls;
	struct ev_loop *loop;
	struct resolver *free_me; /* resolver_free from inside the callback */
};

static struct cfg_dns_server dns[2];
static struct cfg_listen listen_on;
static struct config cfg;
static int guard_fired;

static void setup_cfg(uint16_t port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&listen_on.addr;

	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.hostname, sizeof(cfg.hostname), "relay.test");
	memset(dns, 0, sizeof(dns));
	snprintf(dns[0].addr, sizeof(dns[0].addr), "127.0.0.1");
	dns[0].port = port;
	cfg.dns_servers = dns;
	cfg.ndns_servers = 1;
	memset(&listen_on, 0, sizeof(listen_on));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(2525);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	listen_on.addrlen = sizeof(*sin);
	cfg.listens = &listen_on;
	cfg.nlistens = 1;
}

static void result_cb(struct mx_plan *plan, void *arg)
{
	struct result *res = arg;

	res->calls++;
	if (res->plan == NULL)
		res->plan = plan;
	else
		mx_plan_free(plan);
	if (res->free_me != NULL)
		resolver_free(res->free_me);
	ev_break(res->loop);
}

static void guard_cb(void *arg)
{
	guard_fired = 1;
	ev_break(arg);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Resolves with cfg; the plan is the caller's. elapsed in ms when asked. */
static struct mx_plan *resolve(const char *domain, int no_mx, uint16_t port, uint64_t *elapsed)
{
	struct ev_loop *loop = ev_loop_new();
	struct ev_timer guard;
	struct result res = { .loop = loop };
	char err[256];
	struct resolver *r = resolver_new(loop, &cfg, err, sizeof(err));
	uint64_t t0 = now_ms();

	ck_assert_msg(r != NULL, "resolver_new: %s", err);
	guard_fired = 0;
	ev_timer_init(&guard, guard_cb, loop);
	ev_timer_start(loop, &guard, GUARD_MS);
	mx_resolve(r, domain, no_mx, port, result_cb, &res);
	if (res.calls == 0)
		ev_run(loop);
	if (elapsed != NULL)
		*elapsed = now_ms() - t0;
	ev_timer_stop(loop, &guard);
	resolver_free(r);
	ev_loop_free(loop);
	ck_assert_msg(!guard_fired, "%s: no answer within %d ms", domain, GUARD_MS);
	ck_assert_int_eq(res.calls, 1);
	return res.plan;
}

static void assert_host(const struct mx_plan *p, size_t i, const char *name, unsigned pref,
			const char *addrs)
{
	char got[256] = "";

	ck_assert_msg(i < p->nhosts, "host %zu missing", i);
	ck_assert_str_eq(p->hosts[i].name, name);
	ck_assert_uint_eq(p->hosts[i].pref, pref);
	for (size_t k = 0; k < p->hosts[i].naddrs; k++) {
		const struct mx_addr *a = &p->hosts[i].addrs[k];
		const struct sockaddr_in *sin = (const void *)&a->ss;
		ck_assert_uint_eq(ntohs(sin->sin_port), 25); /* same offset in sockaddr_in6 */
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", k ? " " : "",
			 a->text);
	}
	ck_assert_str_eq(got, addrs);
}

/* Answers from the zone, table-driven. */
static const struct {
	const char *domain;
	int no_mx;
	enum mx_status status;
	const char *enh;
	int implicit;
	struct {
		const char *name;
		unsigned pref;
		const char *addrs;
	} hosts[3];
	const char *trace;    /* a line the trace must hold */
	const char *notrace;  /* a text it must not hold */
} zone_cases[] = {
	{ "two.test", 0, MX_OK, "", 0,
	  { { "mx1.two.test", 10, "127.0.0.2" }, { "mx2.two.test", 20, "127.0.0.3" } },
	  "two.test. MX 10 mx1.two.test.\n", NULL },
	{ "two.test.", 0, MX_OK, "", 0,
	  { { "mx1.two.test", 10, "127.0.0.2" }, { "mx2.two.test", 20, "127.0.0.3" } },
	  "mx2.two.test. A 127.0.0.3\n", NULL },
	{ "implicit.test", 0, MX_OK, "", 1, { { "implicit.test", 0, "127.0.0.4" } },
	  "implicit.test. A 127.0.0.4\n", NULL },
	{ "alias.test", 0, MX_OK, "", 1, { { "alias.test", 0, "127.0.0.5" } },
	  "alias.test. CNAME target.test.\n", NULL },
	{ "nx.test", 0, MX_PERMFAIL, "5.1.2", 0, { { NULL, 0, NULL } },
	  "nx.test. MX (NXDOMAIN)\n", " A " },
	{ "null.test", 0, MX_PERMFAIL, "5.1.10", 0, { { NULL, 0, NULL } },
	  "null.test. MX 0 .\n", " A" },
	{ "nullrr.test", 0, MX_PERMFAIL, "5.1.10", 0, { { NULL, 0, NULL } },
	  "nullrr.test. MX 0 .\n", " A" },
	{ "v6.test", 0, MX_OK, "", 1, { { "v6.test", 0, "::1" } }, "v6.test. AAAA ::1\n", NULL },
	{ "both.test", 0, MX_OK, "", 1, { { "both.test", 0, "127.0.0.6 ::1" } },
	  "both.test. A 127.0.0.6\n", NULL },
	{ "viav6.test", 0, MX_OK, "", 0, { { "both.test", 10, "127.0.0.6 ::1" } },
	  "viav6.test. MX 10 both.test.\n", NULL },
	{ "noaddr.test", 0, MX_PERMFAIL, "5.4.4", 0, { { "ghost.test", 10, "" } },
	  "ghost.test. A (NXDOMAIN)\n", NULL },
	{ "mx1.two.test", 1, MX_OK, "", 0, { { "mx1.two.test", 0, "127.0.0.2" } },
	  "mx1.two.test. A 127.0.0.2\n", " MX " },
	{ "ghost.test", 1, MX_PERMFAIL, "5.4.4", 0, { { "ghost.test", 0, "" } },
	  "ghost.test. AAAA (NXDOMAIN)\n", " MX " },
	{ "[127.0.0.9]", 0, MX_OK, "", 0, { { "[127.0.0.9]", 0, "127.0.0.9" } }, "", " MX " },
	{ "[IPv6:::1]", 0, MX_OK, "", 0, { { "[IPv6:::1]", 0, "::1" } }, "", " MX " },
	{ "127.0.0.10", 1, MX_OK, "", 0, { { "127.0.0.10", 0, "127.0.0.10" } }, "", " A " },
	{ "[127.0.0.300]", 0, MX_PERMFAIL, "5.1.2", 0, { { NULL, 0, NULL } }, "", NULL },
	{ "bad..name", 0, MX_PERMFAIL, "5.1.2", 0, { { NULL, 0, NULL } }, "", NULL },
};

START_TEST(test_zone_table)
{
	struct mx_plan *p;
	size_t n = 0;

	setup_cfg(dnsmasq_port);
	p = resolve(zone_cases[_i].domain, zone_cases[_i].no_mx, 25, NULL);
	ck_assert_msg(p->status == zone_cases[_i].status, "%s: status %d (%s %s)",
		      zone_cases[_i].domain, p->status, p->enh, p->error);
	ck_assert_str_eq(p->enh, zone_cases[_i].enh);
	ck_assert_int_eq(p->implicit, zone_cases[_i].implicit);
	for (; n < 3 && zone_cases[_i].hosts[n].name != NULL; n++)
		assert_host(p, n, zone_cases[_i].hosts[n].name, zone_cases[_i].hosts[n].pref,
			    zone_cases[_i].hosts[n].addrs);
	ck_assert_uint_eq(p->nhosts, n);
	ck_assert_ptr_nonnull(p->trace);
	ck_assert_msg(strstr(p->trace, zone_cases[_i].trace) != NULL, "%s: trace:\n%s",
		      zone_cases[_i].domain, p->trace);
	if (zone_cases[_i].notrace != NULL)
		ck_assert_msg(strstr(p->trace, zone_cases[_i].notrace) == NULL, "%s: trace:\n%s",
			      zone_cases[_i].domain, p->trace);
	mx_plan_free(p);
}
END_TEST

/* Equal preferences come back in every order over enough runs. */
START_TEST(test_tie_shuffled)
{
	int first[3] = { 0 };

	setup_cfg(dnsmasq_port);
	for (int i = 0; i < 40; i++) {
		struct mx_plan *p = resolve("tie.test", 0, 25, NULL);
		ck_assert_int_eq(p->status, MX_OK);
		ck_assert_uint_eq(p->nhosts, 3);
		first[p->hosts[0].name[0] - 'a']++;
		mx_plan_free(p);
	}
	ck_assert_msg(first[0] > 0 && first[1] > 0 && first[2] > 0, "firsts %d %d %d", first[0],
		      first[1], first[2]);
}
END_TEST

/* RFC 5321 5.1: this host by name or by listen address. */
START_TEST(test_loops)
{
	struct mx_plan *p;
	struct sockaddr_in *sin = (struct sockaddr_in *)&listen_on.addr;

	setup_cfg(dnsmasq_port);
	snprintf(cfg.hostname, sizeof(cfg.hostname), "MX2.two.test");
	p = resolve("two.test", 0, 25, NULL);
	ck_assert_int_eq(p->status, MX_OK);
	ck_assert_uint_eq(p->nhosts, 1);
	ck_assert_str_eq(p->hosts[0].name, "mx1.two.test");
	mx_plan_free(p);

	snprintf(cfg.hostname, sizeof(cfg.hostname), "mx1.two.test");
	p = resolve("two.test", 0, 25, NULL);
	ck_assert_int_eq(p->status, MX_PERMFAIL);
	ck_assert_str_eq(p->enh, "5.4.6");
	ck_assert_str_eq(p->error, "mail for two.test loops back to myself");
	mx_plan_free(p);

	/* Listening on 127.0.0.2:25, the address of mx1. */
	snprintf(cfg.hostname, sizeof(cfg.hostname), "relay.test");
	sin->sin_addr.s_addr = htonl(0x7f000002);
	sin->sin_port = htons(25);
	p = resolve("two.test", 0, 25, NULL);
	ck_assert_int_eq(p->status, MX_PERMFAIL);
	ck_assert_str_eq(p->enh, "5.4.6");
	mx_plan_free(p);

	/* The same address on another port is another server. */
	p = resolve("two.test", 0, 2526, NULL);
	ck_assert_int_eq(p->status, MX_OK);
	ck_assert_uint_eq(p->nhosts, 2);
	mx_plan_free(p);

	/* A literal naming our own listen address. */
	p = resolve("[127.0.0.2]", 0, 25, NULL);
	ck_assert_int_eq(p->status, MX_PERMFAIL);
	ck_assert_str_eq(p->enh, "5.4.6");
	mx_plan_free(p);
}
END_TEST

/* A callback may start the next resolution, and free the resolver after it. */

struct chain {
	struct resolver *r;
	struct ev_loop *loop;
	struct mx_plan *plans[3];
	int calls;
};

static void chain_cb(struct mx_plan *plan, void *arg)
{
	struct chain *c = arg;

	c->plans[c->calls++] = plan;
	if (c->calls == 1) {
		mx_resolve(c->r, "implicit.test", 0, 25, chain_cb, c);
	} else if (c->calls == 2) {
		resolver_free(c->r);
		/* Too late: answered at once, temporarily. */
		mx_resolve(c->r, "two.test", 0, 25, chain_cb, c);
		ev_break(c->loop);
	}
}

START_TEST(test_chained)
{
	struct chain c = { .loop = ev_loop_new() };
	struct ev_timer guard;
	char err[256];

	setup_cfg(dnsmasq_port);
	c.r = resolver_new(c.loop, &cfg, err, sizeof(err));
	ck_assert_ptr_nonnull(c.r);
	guard_fired = 0;
	ev_timer_init(&guard, guard_cb, c.loop);
	ev_timer_start(c.loop, &guard, GUARD_MS);
	mx_resolve(c.r, "two.test", 0, 25, chain_cb, &c);
	ev_run(c.loop);
	ev_timer_stop(c.loop, &guard);
	ev_loop_free(c.loop);
	ck_assert(!guard_fired);
	ck_assert_int_eq(c.calls, 3);
	ck_assert_int_eq(c.plans[0]->status, MX_OK);
	ck_assert_int_eq(c.plans[1]->status, MX_OK);
	ck_assert_int_eq(c.plans[1]->implicit, 1);
	ck_assert_int_eq(c.plans[2]->status, MX_TEMPFAIL);
	for (int i = 0; i < 3; i++)
		mx_plan_free(c.plans[i]);
}
END_TEST

/* A refused A lookup must not read as "no address": temporary, never 5.4.4. */
START_TEST(test_address_tempfail)
{
	struct mx_plan *p;

	setup_cfg(flaky_port);
	p = resolve("two.test", 0, 25, NULL);
	ck_assert_int_eq(p->status, MX_TEMPFAIL);
	ck_assert_str_eq(p->enh, "4.4.3");
	ck_assert_uint_eq(p->nhosts, 2);
	ck_assert_int_eq(p->hosts[0].addr_tempfail, 1);
	ck_assert_int_eq(p->hosts[1].addr_tempfail, 1);
	ck_assert_ptr_nonnull(strstr(p->trace, "mx1.two.test. A (temporary failure"));
	mx_plan_free(p);

	/* AAAA still answers: usable, the A failure only shows in the trace. */
	p = resolve("both.test", 0, 25, NULL);
	ck_assert_int_eq(p->status, MX_OK);
	assert_host(p, 0, "both.test", 0, "::1");
	ck_assert_int_eq(p->hosts[0].addr_tempfail, 0);
	mx_plan_free(p);
}
END_TEST

/* Dead servers: refused fails fast, silence within the c-ares timeouts. */
START_TEST(test_dead_servers)
{
	struct mx_plan *p;
	uint64_t ms;

	setup_cfg(refused_port);
	p = resolve("two.test", 0, 25, &ms);
	ck_assert_int_eq(p->status, MX_TEMPFAIL);
	ck_assert_str_eq(p->enh, "4.4.3");
	ck_assert_uint_lt(ms, 3000);
	fprintf(stderr, "test_resolver: refused server: TEMPFAIL after %llu ms (%s)\n",
		(unsigned long long)ms, p->error);
	mx_plan_free(p);

	setup_cfg(silent_port);
	p = resolve("two.test", 0, 25, &ms);
	ck_assert_int_eq(p->status, MX_TEMPFAIL);
	ck_assert_str_eq(p->enh, "4.4.3");
	ck_assert_uint_ge(ms, 1500);
	ck_assert_uint_lt(ms, 10000);
	fprintf(stderr, "test_resolver: silent server: TEMPFAIL after %llu ms (%s)\n",
		(unsigned long long)ms, p->error);
	mx_plan_free(p);

	/* A literal needs no DNS, even with a dead server. */
	p = resolve("[127.0.0.9]", 0, 25, &ms);
	ck_assert_int_eq(p->status, MX_OK);
	ck_assert_uint_lt(ms, 100);
	mx_plan_free(p);
}
END_TEST

/* A dead first server and a live second one: the answer still comes. */
START_TEST(test_second_server)
{
	const uint16_t first[] = { refused_port, silent_port };

	for (int i = 0; i < 2; i++) {
		struct mx_plan *p;
		uint64_t ms;

		setup_cfg(first[i]);
		snprintf(dns[1].addr, sizeof(dns[1].addr), "127.0.0.1");
		dns[1].port = dnsmasq_port;
		cfg.ndns_servers = 2;
		p = resolve("two.test", 0, 25, &ms);
		ck_assert_int_eq(p->status, MX_OK);
		ck_assert_uint_eq(p->nhosts, 2);
		ck_assert_uint_lt(ms, 5000);
		fprintf(stderr, "test_resolver: %s first server, then dnsmasq: answer after %llu ms\n",
			i ? "silent" : "refused", (unsigned long long)ms);
		mx_plan_free(p);
	}
}
END_TEST

/* dns-server [::1]:port. */
START_TEST(test_ipv6_server)
{
	struct mx_plan *p;

	if (!have_v6)
		UNIT_SKIP("no ::1 on this machine");
	setup_cfg(dnsmasq_port);
	snprintf(dns[0].addr, sizeof(dns[0].addr), "::1");
	p = resolve("two.test", 0, 25, NULL);
	ck_assert_int_eq(p->status, MX_OK);
	assert_host(p, 0, "mx1.two.test", 10, "127.0.0.2");
	mx_plan_free(p);
}
END_TEST

/* Many resolutions in flight on one resolver, each answered once. */

struct many {
	int calls[8];
	int done, want;       /* the loop stops when done reaches want */
	struct ev_loop *loop;
	struct mx_plan *plans[8];
};

struct many_arg {
	struct many *m;
	int i;
};

static void many_cb(struct mx_plan *plan, void *arg)
{
	struct many_arg *a = arg;

	a->m->calls[a->i]++;
	a->m->plans[a->i] = plan;
	if (++a->m->done == a->m->want)
		ev_break(a->m->loop);
}

START_TEST(test_concurrent)
{
	static const char *const domains[8] = { "two.test", "implicit.test", "nx.test",
						"null.test", "v6.test", "tie.test",
						"[127.0.0.9]", "alias.test" };
	static const enum mx_status want[8] = { MX_OK, MX_OK, MX_PERMFAIL, MX_PERMFAIL,
						MX_OK, MX_OK, MX_OK, MX_OK };
	struct many m = { .loop = ev_loop_new(), .want = 8 };
	struct many_arg args[8];
	struct ev_timer guard;
	char err[256];

	setup_cfg(dnsmasq_port);
	struct resolver *r = resolver_new(m.loop, &cfg, err, sizeof(err));
	ck_assert_ptr_nonnull(r);
	guard_fired = 0;
	ev_timer_init(&guard, guard_cb, m.loop);
	ev_timer_start(m.loop, &guard, GUARD_MS);
	for (int i = 0; i < 8; i++) {
		args[i] = (struct many_arg){ &m, i };
		mx_resolve(r, domains[i], 0, 25, many_cb, &args[i]);
	}
	if (m.done < m.want)
		ev_run(m.loop);
	ev_timer_stop(m.loop, &guard);
	resolver_free(r);
	ev_loop_free(m.loop);
	ck_assert(!guard_fired);
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(m.calls[i], 1);
		ck_assert_msg(m.plans[i]->status == want[i], "%s: %d", domains[i],
			      m.plans[i]->status);
		mx_plan_free(m.plans[i]);
	}
}
END_TEST

/* resolver_free from inside the callback is deferred until c-ares unwound. */
START_TEST(test_free_inside_callback)
{
	struct ev_loop *loop = ev_loop_new();
	struct result res = { .loop = loop };
	struct ev_timer guard;
	char err[256];

	setup_cfg(dnsmasq_port);
	res.free_me = resolver_new(loop, &cfg, err, sizeof(err));
	ck_assert_ptr_nonnull(res.free_me);
	guard_fired = 0;
	ev_timer_init(&guard, guard_cb, loop);
	ev_timer_start(loop, &guard, GUARD_MS);
	mx_resolve(res.free_me, "two.test", 0, 25, result_cb, &res);
	ev_run(loop);
	ev_timer_stop(loop, &guard);
	ev_loop_free(loop);
	ck_assert(!guard_fired);
	ck_assert_int_eq(res.calls, 1);
	ck_assert_int_eq(res.plan->status, MX_OK);
	mx_plan_free(res.plan);
}
END_TEST

/* Freeing with resolutions in flight answers each of them once, temporarily. */
START_TEST(test_free_pending)
{
	struct ev_loop *loop = ev_loop_new();
	struct result res = { .loop = loop };
	char err[256];

	setup_cfg(silent_port);
	struct resolver *r = resolver_new(loop, &cfg, err, sizeof(err));
	ck_assert_ptr_nonnull(r);
	mx_resolve(r, "two.test", 0, 25, result_cb, &res);
	ck_assert_int_eq(res.calls, 0);
	resolver_free(r);
	ev_loop_free(loop);
	ck_assert_int_eq(res.calls, 1);
	ck_assert_int_eq(res.plan->status, MX_TEMPFAIL);
	mx_plan_free(res.plan);
}
END_TEST

/* A reload moves new resolutions to the new servers; those in flight finish on the old. */
START_TEST(test_reload)
{
	struct many m = { .loop = ev_loop_new() };
	struct many_arg args[3] = { { &m, 0 }, { &m, 1 }, { &m, 2 } };
	struct ev_timer guard;
	char err[256];

	setup_cfg(dnsmasq_port);
	struct resolver *r = resolver_new(m.loop, &cfg, err, sizeof(err));
	ck_assert_ptr_nonnull(r);
	guard_fired = 0;
	ev_timer_init(&guard, guard_cb, m.loop);
	ev_timer_start(m.loop, &guard, GUARD_MS);
	m.want = 2;
	mx_resolve(r, "two.test", 0, 25, many_cb, &args[0]);
	setup_cfg(refused_port);
	ck_assert_int_eq(resolver_reload(r, &cfg, err, sizeof(err)), 0);
	mx_resolve(r, "two.test", 0, 25, many_cb, &args[1]);
	if (m.done < m.want)
		ev_run(m.loop);
	ck_assert(!guard_fired);
	ck_assert_int_eq(m.plans[0]->status, MX_OK);
	ck_assert_uint_eq(m.plans[0]->nhosts, 2);
	ck_assert_int_eq(m.plans[1]->status, MX_TEMPFAIL);

	/* A bad list is refused and the servers stay as they were. */
	snprintf(dns[0].addr, sizeof(dns[0].addr), "300.0.0.1");
	ck_assert_int_eq(resolver_reload(r, &cfg, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "300.0.0.1"));

	/* Back to dnsmasq, with this host now named like the primary MX. */
	setup_cfg(dnsmasq_port);
	snprintf(cfg.hostname, sizeof(cfg.hostname), "mx1.two.test");
	ck_assert_int_eq(resolver_reload(r, &cfg, err, sizeof(err)), 0);
	m.want = 3;
	mx_resolve(r, "two.test", 0, 25, many_cb, &args[2]);
	if (m.done < m.want)
		ev_run(m.loop);
	ev_timer_stop(m.loop, &guard);
	resolver_free(r);
	ev_loop_free(m.loop);
	ck_assert(!guard_fired);
	ck_assert_int_eq(m.plans[2]->status, MX_PERMFAIL);
	ck_assert_str_eq(m.plans[2]->enh, "5.4.6");
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(m.calls[i], 1);
		mx_plan_free(m.plans[i]);
	}
}
END_TEST

START_TEST(test_bad_dns_server)
{
	struct ev_loop *loop = ev_loop_new();
	char err[256] = "";

	setup_cfg(53);
	snprintf(dns[0].addr, sizeof(dns[0].addr), "not-an-address");
	ck_assert_ptr_null(resolver_new(loop, &cfg, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "not-an-address"));
	ev_loop_free(loop);
}
END_TEST

#define N(a) (int)(sizeof(a) / sizeof((a)[0]))

int main(void)
{
	Suite *s = suite_create("resolver");
	TCase *tc = tcase_create("dns");

	signal(SIGPIPE, SIG_IGN);
	tcase_add_unchecked_fixture(tc, servers_up, servers_down);
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_zone_table, 0, N(zone_cases));
	tcase_add_test(tc, test_tie_shuffled);
	tcase_add_test(tc, test_loops);
	tcase_add_test(tc, test_address_tempfail);
	tcase_add_test(tc, test_dead_servers);
	tcase_add_test(tc, test_second_server);
	tcase_add_test(tc, test_ipv6_server);
	tcase_add_test(tc, test_concurrent);
	tcase_add_test(tc, test_free_inside_callback);
	tcase_add_test(tc, test_chained);
	tcase_add_test(tc, test_free_pending);
	tcase_add_test(tc, test_reload);
	tcase_add_test(tc, test_bad_dns_server);
	suite_add_tcase(s, tc);

	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
