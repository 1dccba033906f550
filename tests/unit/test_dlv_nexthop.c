/*
 * test_dlv_nexthop.c - next-hop selection (relayd/delivery/dlv_nexthop.c):
 * routes over sender-routes over smarthosts over MX, smarthosts in order,
 * TLS policy and credentials taken from the right place, destination keys
 * (one per sender-route, so two AUTH identities never share a connection).
 */
#include "relayd/delivery/dlv_nexthop.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static struct cfg_route routes[2];
static struct cfg_nexthop smarthosts[2];
static struct cfg_sender_route sroutes[2];
static struct config cfg;

static void nh(struct cfg_nexthop *h, const char *host, uint16_t port, int no_mx, int tls_set,
	       enum tls_policy tls, char *user, char *pass)
{
	memset(h, 0, sizeof(*h));
	strcpy(h->host, host);
	h->port = port;
	h->no_mx = no_mx;
	h->tls_set = tls_set;
	h->tls = tls;
	h->auth_user = user;
	h->auth_pass = pass;
}

/* with: bits 1 routes, 2 smarthosts, 4 sender-routes */
static void setup_cfg(int with)
{
	memset(&cfg, 0, sizeof(cfg));
	cfg.delivery_port = 2525;
	cfg.outbound_tls = TLS_POLICY_MAY;
	routes[0].domain = "example.org";
	routes[0].subdomains = 0;
	nh(&routes[0].hop, "smtp.example.net", 587, 1, 1, TLS_POLICY_STARTTLS, "alice", "pw");
	routes[1].domain = "example.com";
	routes[1].subdomains = 1;
	nh(&routes[1].hop, "relay.example.com", 25, 0, 0, TLS_POLICY_NONE, NULL, NULL);
	nh(&smarthosts[0], "sh1.example.net", 2526, 1, 0, TLS_POLICY_NONE, NULL, NULL);
	nh(&smarthosts[1], "sh2.example.net", 25, 0, 1, TLS_POLICY_SMTPS, "bob", "secret");
	static int parsed;
	if (!parsed) {
		ck_assert_int_eq(addr_pattern_parse("@sales.example.org", &sroutes[0].pat), 0);
		ck_assert_int_eq(addr_pattern_parse("root@.lan.test", &sroutes[1].pat), 0);
		parsed = 1;
	}
	sroutes[0].pattern = "@sales.example.org";
	nh(&sroutes[0].hop, "out-sales.example.net", 2600, 1, 1, TLS_POLICY_STARTTLS, "carol",
	   "pw");
	sroutes[1].pattern = "root@.lan.test";
	nh(&sroutes[1].hop, "out-it.example.net", 25, 0, 0, TLS_POLICY_NONE, "dave", "pw");
	if (with & 4) {
		cfg.sender_routes = sroutes;
		cfg.nsender_routes = 2;
	}
	if (with & 1) {
		cfg.routes = routes;
		cfg.nroutes = 2;
	}
	if (with & 2) {
		cfg.smarthosts = smarthosts;
		cfg.nsmarthosts = 2;
	}
}

struct hop_case {
	int with;
	const char *domain;
	size_t index;
	int ret;
	enum dlv_hop_kind kind;
	const char *name;
	uint16_t port;
	int no_mx;
	enum tls_policy tls;
	const char *user;
	const char *key;
	const char *desc;
	const char *sender;
};

static const struct hop_case hop_cases[] = {
	{0, "Example.ORG.", 0, 0, DLV_HOP_MX, "example.org", 2525, 0, TLS_POLICY_MAY, "",
	 "mx:example.org", "MX of example.org, port 2525", NULL},
	{0, "example.org", 1, -1, 0, NULL, 0, 0, 0, NULL, "mx:example.org", NULL, NULL},
	{0, "[192.0.2.1]", 0, 0, DLV_HOP_MX, "[192.0.2.1]", 2525, 0, TLS_POLICY_MAY, "",
	 "mx:[192.0.2.1]", NULL, NULL},
	{1, "example.org", 0, 0, DLV_HOP_ROUTE, "smtp.example.net", 587, 1, TLS_POLICY_STARTTLS,
	 "alice", "route:example.org", "route example.org -> [smtp.example.net]:587", NULL},
	{1, "example.org", 1, -1, 0, NULL, 0, 0, 0, NULL, "route:example.org", NULL, NULL},
	/* An exact route does not cover subdomains. */
	{1, "sub.example.org", 0, 0, DLV_HOP_MX, "sub.example.org", 2525, 0, TLS_POLICY_MAY, "",
	 "mx:sub.example.org", NULL, NULL},
	/* tls= not given on the route: outbound-tls applies. */
	{1, "a.b.example.com", 0, 0, DLV_HOP_ROUTE, "relay.example.com", 25, 0, TLS_POLICY_MAY,
	 "", "route:*.example.com", "route *.example.com -> relay.example.com:25", NULL},
	{1, "example.com", 0, 0, DLV_HOP_MX, "example.com", 2525, 0, TLS_POLICY_MAY, "",
	 "mx:example.com", NULL, NULL},
	{2, "example.org", 0, 0, DLV_HOP_SMARTHOST, "sh1.example.net", 2526, 1, TLS_POLICY_MAY,
	 "", "smarthost", "smarthost 1 of 2 -> [sh1.example.net]:2526", NULL},
	{2, "other.test", 1, 0, DLV_HOP_SMARTHOST, "sh2.example.net", 25, 0, TLS_POLICY_SMTPS,
	 "bob", "smarthost", "smarthost 2 of 2 -> sh2.example.net:25", NULL},
	{2, "other.test", 2, -1, 0, NULL, 0, 0, 0, NULL, "smarthost", NULL, NULL},
	/* A route wins over the smarthosts; other domains go to the smarthosts. */
	{3, "example.org", 0, 0, DLV_HOP_ROUTE, "smtp.example.net", 587, 1, TLS_POLICY_STARTTLS,
	 "alice", "route:example.org", NULL, NULL},
	{3, "example.org", 1, -1, 0, NULL, 0, 0, 0, NULL, "route:example.org", NULL, NULL},
	{3, "example.net", 0, 0, DLV_HOP_SMARTHOST, "sh1.example.net", 2526, 1, TLS_POLICY_MAY,
	 "", "smarthost", NULL, NULL},
	/* route > sender-route > smarthost > MX. */
	{7, "example.org", 0, 0, DLV_HOP_ROUTE, "smtp.example.net", 587, 1, TLS_POLICY_STARTTLS,
	 "alice", "route:example.org", NULL, "x@sales.example.org"},
	{7, "other.test", 0, 0, DLV_HOP_SENDER_ROUTE, "out-sales.example.net", 2600, 1,
	 TLS_POLICY_STARTTLS, "carol", "sender-route:@sales.example.org",
	 "sender-route @sales.example.org -> [out-sales.example.net]:2600", "X@Sales.Example.org"},
	{7, "other.test", 1, -1, 0, NULL, 0, 0, 0, NULL, "sender-route:@sales.example.org", NULL,
	 "x@sales.example.org"},
	{7, "other.test", 0, 0, DLV_HOP_SENDER_ROUTE, "out-it.example.net", 25, 0, TLS_POLICY_MAY,
	 "dave", "sender-route:root@.lan.test", "sender-route root@.lan.test -> out-it.example.net:25",
	 "root@web3.lan.test"},
	/* No sender-route matches: the smarthosts; none given, or the null sender, likewise. */
	{7, "other.test", 0, 0, DLV_HOP_SMARTHOST, "sh1.example.net", 2526, 1, TLS_POLICY_MAY, "",
	 "smarthost", NULL, "x@sub.sales.example.org"},
	{7, "other.test", 0, 0, DLV_HOP_SMARTHOST, "sh1.example.net", 2526, 1, TLS_POLICY_MAY, "",
	 "smarthost", NULL, NULL},
	{7, "other.test", 0, 0, DLV_HOP_SMARTHOST, "sh1.example.net", 2526, 1, TLS_POLICY_MAY, "",
	 "smarthost", NULL, ""},
	{4, "other.test", 0, 0, DLV_HOP_MX, "other.test", 2525, 0, TLS_POLICY_MAY, "",
	 "mx:other.test", NULL, "www@lan.test"},
	{4, "other.test", 0, 0, DLV_HOP_SENDER_ROUTE, "out-sales.example.net", 2600, 1,
	 TLS_POLICY_STARTTLS, "carol", "sender-route:@sales.example.org", NULL,
	 "a@sales.example.org"},
};

START_TEST(test_hop_table)
{
	const struct hop_case *tc = &hop_cases[_i];
	struct dlv_hop hop;
	char key[300];

	setup_cfg(tc->with);
	int ret = dlv_hop_select(&cfg, tc->domain, tc->sender, tc->index, &hop);
	ck_assert_int_eq(ret, tc->ret);
	dlv_dest_key(&cfg, tc->domain, tc->sender, key, sizeof(key));
	ck_assert_str_eq(key, tc->key);
	if (ret < 0)
		return;
	ck_assert_int_eq(hop.kind, tc->kind);
	ck_assert_str_eq(hop.name, tc->name);
	ck_assert_uint_eq(hop.port, tc->port);
	ck_assert_int_eq(hop.no_mx, tc->no_mx);
	ck_assert_int_eq(hop.tls, tc->tls);
	ck_assert_str_eq(hop.auth_user, tc->user);
	if (tc->desc)
		ck_assert_str_eq(hop.desc, tc->desc);
}
END_TEST

/* The hop is a copy: changing the config afterwards does not change it. */
START_TEST(test_hop_is_copy)
{
	struct dlv_hop hop;
	char user[] = "carol", pass[] = "pw";

	setup_cfg(2);
	smarthosts[0].auth_user = user;
	smarthosts[0].auth_pass = pass;
	ck_assert_int_eq(dlv_hop_select(&cfg, "x.test", NULL, 0, &hop), 0);
	user[0] = 'X';
	strcpy(smarthosts[0].host, "changed");
	ck_assert_str_eq(hop.auth_user, "carol");
	ck_assert_str_eq(hop.auth_pass, "pw");
	ck_assert_str_eq(hop.name, "sh1.example.net");
}
END_TEST

/* The rate each kind of hop carries: its own, the smarthosts' shared one, destination-rate. */
static const struct rate_case {
	int with;
	const char *domain;
	const char *sender;
	size_t index;
	unsigned n;
	const char *desc;
} rate_cases[] = {
	{1, "example.org", NULL, 0, 2, "rate=2/s for route example.org"},
	{1, "a.example.com", NULL, 0, 0, "rate=none for route *.example.com"},
	{0, "Example.ORG.", NULL, 0, 30, "destination-rate 30/h for example.org"},
	/* Written on the second smarthost line, it limits the first as well. */
	{2, "x.test", NULL, 0, 10, "rate=10/m for smarthost"},
	{2, "x.test", NULL, 1, 10, "rate=10/m for smarthost"},
	{6, "x.test", "a@sales.example.org", 0, 300, "rate=300/h for sender-route @sales.example.org"},
	{6, "x.test", "root@a.lan.test", 0, 0, "rate=none for sender-route root@.lan.test"},
};

START_TEST(test_hop_rate)
{
	const struct rate_case *t = &rate_cases[_i];
	struct dlv_hop hop;

	setup_cfg(t->with);
	routes[0].hop.rate = (struct cfg_rate){2, 1};
	smarthosts[1].rate = (struct cfg_rate){10, 60};
	sroutes[0].hop.rate = (struct cfg_rate){300, 3600};
	cfg.destination_rate = (struct cfg_rate){30, 3600};
	ck_assert_int_eq(dlv_hop_select(&cfg, t->domain, t->sender, t->index, &hop), 0);
	ck_assert_uint_eq(hop.rate.n, t->n);
	ck_assert_str_eq(hop.rate_desc, t->desc);
}
END_TEST

START_TEST(test_tls_names)
{
	ck_assert_str_eq(dlv_tls_policy_name(TLS_POLICY_NONE), "none");
	ck_assert_str_eq(dlv_tls_policy_name(TLS_POLICY_VERIFY), "verify");
	ck_assert_str_eq(dlv_tls_policy_name(TLS_POLICY_SMTPS), "smtps");
	ck_assert_str_eq(dlv_tls_policy_name((enum tls_policy)99), "?");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dlv_nexthop");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_hop_table, 0, sizeof(hop_cases) / sizeof(hop_cases[0]));
	tcase_add_test(tc, test_hop_is_copy);
	tcase_add_test(tc, test_tls_names);
	tcase_add_loop_test(tc, test_hop_rate, 0, sizeof(rate_cases) / sizeof(rate_cases[0]));
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
