/*
 * test_mx.c - the MX ranking rules of resolver/mx_rank.c, from tables:
 * sorting and tie shuffling, implicit and null MX, loop removal, the
 * final verdict, address literals and domain syntax. No DNS here.
 */
#include "resolver/resolver.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXH 8

/* Deterministic "random" choices: always the first candidate. */
static uint32_t rng_zero(uint32_t n)
{
	(void)n;
	return 0;
}

static int pref_cmp(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
	return (x > y) - (x < y);
}

/* Sorting: order by preference, the set kept, only equal-preference runs permuted. */
static const struct {
	unsigned prefs[MAXH];
	size_t n;
} sort_cases[] = {
	{ { 10 }, 1 },
	{ { 20, 10 }, 2 },
	{ { 30, 10, 20 }, 3 },
	{ { 10, 10, 10 }, 3 },
	{ { 20, 10, 20, 10, 5, 20 }, 6 },
	{ { 65535, 0, 65535, 1 }, 4 },
};

START_TEST(test_sort_table)
{
	struct mx_host h[MAXH];
	unsigned want[MAXH];
	size_t n = sort_cases[_i].n;

	for (int round = 0; round < 50; round++) {
		memset(h, 0, sizeof(h));
		for (size_t i = 0; i < n; i++) {
			h[i].pref = sort_cases[_i].prefs[i];
			/* name carries the original index and preference */
			snprintf(h[i].name, sizeof(h[i].name), "h%zu-%u", i, h[i].pref);
			want[i] = h[i].pref;
		}
		qsort(want, n, sizeof(want[0]), pref_cmp);
		mx_sort_hosts(h, n, round == 0 ? rng_zero : NULL);
		int seen[MAXH] = { 0 };
		for (size_t i = 0; i < n; i++) {
			size_t idx;
			unsigned pref;
			ck_assert_int_eq(sscanf(h[i].name, "h%zu-%u", &idx, &pref), 2);
			ck_assert_uint_eq(h[i].pref, want[i]);
			ck_assert_uint_eq(pref, h[i].pref); /* the record moved whole */
			ck_assert_int_eq(seen[idx]++, 0);   /* nothing lost or doubled */
		}
	}
}
END_TEST

/* Ties really are shuffled: every order of three equal hosts shows up. */
START_TEST(test_shuffle_covers_permutations)
{
	int seen[3][3][3] = { { { 0 } } };
	int distinct = 0;

	for (int round = 0; round < 600; round++) {
		struct mx_host h[4];
		memset(h, 0, sizeof(h));
		for (int i = 0; i < 3; i++) {
			h[i].pref = 10;
			h[i].name[0] = (char)('a' + i);
		}
		h[3].pref = 5;
		h[3].name[0] = 'z';
		mx_sort_hosts(h, 4, NULL);
		ck_assert_str_eq(h[0].name, "z");
		int *s = &seen[h[1].name[0] - 'a'][h[2].name[0] - 'a'][h[3].name[0] - 'a'];
		distinct += *s == 0;
		(*s)++;
	}
	ck_assert_int_eq(distinct, 6);
}
END_TEST

/* The MX answer turned into hosts. */
static const struct {
	const char *name;
	struct mx_rr rrs[MAXH];
	size_t n;
	enum mx_status status;
	const char *enh;
	int implicit;
	const char *hosts[MAXH]; /* expected order; NULL-terminated */
} mx_cases[] = {
	{ "primary first", { { 20, "mx2.example.org" }, { 10, "mx1.example.org" } }, 2, MX_OK, "",
	  0, { "mx1.example.org", "mx2.example.org" } },
	{ "no MX: implicit", { { 0, NULL } }, 0, MX_OK, "", 1, { "example.org" } },
	{ "null MX as c-ares 1.18 parses it", { { 0, "" } }, 1, MX_PERMFAIL, "5.1.10", 0, { NULL } },
	{ "null MX as root", { { 0, "." } }, 1, MX_PERMFAIL, "5.1.10", 0, { NULL } },
	{ "null MX beside another", { { 10, "mx1.example.org" }, { 0, "" } }, 2, MX_PERMFAIL,
	  "5.1.10", 0, { NULL } },
	{ "duplicate target keeps the best preference",
	  { { 30, "mx1.example.org" }, { 20, "mx2.example.org" }, { 10, "MX1.example.org." } }, 3,
	  MX_OK, "", 0, { "mx1.example.org", "mx2.example.org" } },
	{ "preference 0 is an ordinary MX", { { 5, "b.example.org" }, { 0, "a.example.org" } }, 2,
	  MX_OK, "", 0, { "a.example.org", "b.example.org" } },
};

START_TEST(test_set_mx_table)
{
	struct mx_plan *p = mx_plan_new();
	int rc = mx_plan_set_mx(p, "example.org", mx_cases[_i].rrs, mx_cases[_i].n, rng_zero);
	size_t n = 0;

	ck_assert_msg(p->status == mx_cases[_i].status, "%s: status %d", mx_cases[_i].name,
		      p->status);
	ck_assert_int_eq(rc, mx_cases[_i].status == MX_OK ? 0 : -1);
	ck_assert_str_eq(p->enh, mx_cases[_i].enh);
	ck_assert_int_eq(p->implicit, mx_cases[_i].implicit);
	while (n < MAXH && mx_cases[_i].hosts[n] != NULL) {
		ck_assert_msg(n < p->nhosts, "%s: too few hosts", mx_cases[_i].name);
		ck_assert_msg(strcmp(p->hosts[n].name, mx_cases[_i].hosts[n]) == 0,
			      "%s: host %zu is %s", mx_cases[_i].name, n, p->hosts[n].name);
		n++;
	}
	ck_assert_uint_eq(p->nhosts, n);
	if (p->status == MX_PERMFAIL)
		ck_assert_ptr_nonnull(strstr(p->error, "null MX"));
	mx_plan_free(p);
}
END_TEST

START_TEST(test_set_mx_caps_hosts)
{
	struct mx_rr rrs[40];
	char names[40][32];
	struct mx_plan *p = mx_plan_new();

	for (int i = 0; i < 40; i++) {
		snprintf(names[i], sizeof(names[i]), "mx%02d.example.org", 39 - i);
		rrs[i].pref = (unsigned)(39 - i);
		rrs[i].host = names[i];
	}
	ck_assert_int_eq(mx_plan_set_mx(p, "example.org", rrs, 40, NULL), 0);
	ck_assert_uint_eq(p->nhosts, 32);
	ck_assert_str_eq(p->hosts[0].name, "mx00.example.org");
	ck_assert_str_eq(p->hosts[31].name, "mx31.example.org");
	mx_plan_free(p);
}
END_TEST

/* The verdict after the address lookups, loops included. */
struct fin_host {
	const char *name;
	unsigned pref;
	const char *addr; /* "ip port" or NULL */
	int tempfail;
};

static const struct {
	const char *name;
	struct fin_host hosts[MAXH];
	const char *self_name;
	const char *self_addr; /* "ip port" or NULL */
	enum mx_status status;
	const char *enh;
	const char *left[MAXH];
} fin_cases[] = {
	{ "all usable", { { "a.test", 10, "192.0.2.1 25", 0 }, { "b.test", 20, "192.0.2.2 25", 0 } },
	  "me.test", NULL, MX_OK, "", { "a.test", "b.test" } },
	{ "self by name drops equal and worse",
	  { { "a.test", 10, "192.0.2.1 25", 0 }, { "b.test", 20, "192.0.2.2 25", 0 },
	    { "ME.test.", 20, "192.0.2.3 25", 0 }, { "d.test", 30, "192.0.2.4 25", 0 } },
	  "me.test", NULL, MX_OK, "", { "a.test" } },
	{ "self is the best MX", { { "me.test", 10, "192.0.2.1 25", 0 }, { "b.test", 20, "192.0.2.2 25", 0 } },
	  "me.test", NULL, MX_PERMFAIL, "5.4.6", { NULL } },
	{ "self by listen address and port",
	  { { "a.test", 10, "192.0.2.1 25", 0 }, { "b.test", 20, "127.0.0.1 2525", 0 } },
	  "me.test", "127.0.0.1 2525", MX_OK, "", { "a.test" } },
	{ "same address, other port is not self",
	  { { "a.test", 10, "127.0.0.1 25", 0 } }, "me.test", "127.0.0.1 2525", MX_OK, "",
	  { "a.test" } },
	{ "self by IPv6 listen address", { { "a.test", 10, "::1 2525", 0 } }, "me.test",
	  "::1 2525", MX_PERMFAIL, "5.4.6", { NULL } },
	{ "implicit MX pointing at us", { { "example.test", 0, "127.0.0.1 2525", 0 } }, "",
	  "127.0.0.1 2525", MX_PERMFAIL, "5.4.6", { NULL } },
	{ "no address, one temporary failure",
	  { { "a.test", 10, NULL, 1 }, { "b.test", 20, NULL, 0 } }, "me.test", NULL, MX_TEMPFAIL,
	  "4.4.3", { "a.test", "b.test" } },
	{ "no address at all", { { "a.test", 10, NULL, 0 }, { "b.test", 20, NULL, 0 } }, "me.test",
	  NULL, MX_PERMFAIL, "5.4.4", { "a.test", "b.test" } },
	{ "one host without address is fine", { { "a.test", 10, NULL, 1 }, { "b.test", 20, "192.0.2.2 25", 0 } },
	  "me.test", NULL, MX_OK, "", { "a.test", "b.test" } },
	{ "loop check comes before the address verdict",
	  { { "a.test", 10, NULL, 1 }, { "me.test", 20, NULL, 0 } }, "me.test", NULL,
	  MX_TEMPFAIL, "4.4.3", { "a.test" } },
};

static void fill_sockaddr(const char *spec, struct sockaddr_storage *ss, socklen_t *len,
			  uint16_t *port)
{
	char ip[64];
	unsigned p;

	ck_assert_int_eq(sscanf(spec, "%63s %u", ip, &p), 2);
	memset(ss, 0, sizeof(*ss));
	*port = (uint16_t)p;
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(*port);
		ck_assert_int_eq(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
		*len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(*port);
		ck_assert_int_eq(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
		*len = sizeof(*s4);
	}
}

START_TEST(test_finish_table)
{
	struct mx_plan *p = mx_plan_new();
	struct sockaddr_storage self_ss;
	struct mx_self self = { fin_cases[_i].self_name, NULL, 0 };
	socklen_t len;
	uint16_t port;
	size_t n = 0;

	for (const struct fin_host *fh = fin_cases[_i].hosts; fh->name != NULL; fh++) {
		struct mx_host *h = mx_plan_add_host(p, fh->name, fh->pref);
		h->addr_tempfail = fh->tempfail;
		if (fh->addr != NULL) {
			struct sockaddr_storage ss;
			fill_sockaddr(fh->addr, &ss, &len, &port);
			mx_host_add_addr(h, (struct sockaddr *)&ss, port);
		}
	}
	if (fin_cases[_i].self_addr != NULL) {
		fill_sockaddr(fin_cases[_i].self_addr, &self_ss, &len, &port);
		self.addrs = &self_ss;
		self.naddrs = 1;
	}
	mx_plan_finish(p, "example.test", &self);
	ck_assert_msg(p->status == fin_cases[_i].status, "%s: status %d (%s)", fin_cases[_i].name,
		      p->status, p->error);
	ck_assert_str_eq(p->enh, fin_cases[_i].enh);
	if (strcmp(fin_cases[_i].enh, "5.4.6") == 0)
		ck_assert_str_eq(p->error, "mail for example.test loops back to myself");
	while (n < MAXH && fin_cases[_i].left[n] != NULL) {
		ck_assert_msg(n < p->nhosts, "%s: too few hosts left", fin_cases[_i].name);
		ck_assert_str_eq(p->hosts[n].name, fin_cases[_i].left[n]);
		n++;
	}
	ck_assert_msg(p->nhosts == n, "%s: %zu hosts left", fin_cases[_i].name, p->nhosts);
	mx_plan_free(p);
}
END_TEST

START_TEST(test_finish_keeps_first_failure)
{
	struct mx_plan *p = mx_plan_new();

	mx_plan_fail(p, MX_PERMFAIL, "5.1.2", "domain %s does not exist", "x.test");
	mx_plan_finish(p, "x.test", &(struct mx_self){ "me.test", NULL, 0 });
	mx_plan_fail(p, MX_TEMPFAIL, "4.4.3", "later");
	ck_assert_int_eq(p->status, MX_PERMFAIL);
	ck_assert_str_eq(p->enh, "5.1.2");
	ck_assert_str_eq(p->error, "domain x.test does not exist");
	mx_plan_free(p);
}
END_TEST

/* Address literals. */
static const struct {
	const char *in;
	int rc;
	int family;
	const char *text;
} lit_cases[] = {
	{ "[192.0.2.1]", 1, AF_INET, "192.0.2.1" },
	{ "[127.0.0.1]", 1, AF_INET, "127.0.0.1" },
	{ "[IPv6:2001:db8::1]", 1, AF_INET6, "2001:db8::1" },
	{ "[ipv6:::1]", 1, AF_INET6, "::1" },
	{ "[2001:DB8::a]", 1, AF_INET6, "2001:db8::a" },
	{ "example.org", 0, 0, NULL },
	{ "", 0, 0, NULL },
	{ "192.0.2.1", 0, 0, NULL },
	{ "[", -1, 0, NULL },
	{ "[]", -1, 0, NULL },
	{ "[192.0.2.256]", -1, 0, NULL },
	{ "[192.0.2.1", -1, 0, NULL },
	{ "[192.0.2.1]x", -1, 0, NULL },
	{ "[1.2.3]", -1, 0, NULL },
	{ "[IPv6:192.0.2.1]", -1, 0, NULL },
	{ "[IPv6:zz::1]", -1, 0, NULL },
	{ "[IPv6:]", -1, 0, NULL },
	{ "[mail.example.org]", -1, 0, NULL },
	{ "[IPv6:1:2:3:4:5:6:7:8:9:a:b:c:d:e:f:0:1:2:3:4:5:6:7:8]", -1, 0, NULL },
};

START_TEST(test_literal_table)
{
	struct mx_addr a;

	memset(&a, 0xaa, sizeof(a));
	int rc = mx_parse_literal(lit_cases[_i].in, 2525, &a);
	ck_assert_msg(rc == lit_cases[_i].rc, "%s: rc %d", lit_cases[_i].in, rc);
	if (rc != 1)
		return;
	ck_assert_int_eq(a.ss.ss_family, lit_cases[_i].family);
	ck_assert_str_eq(a.text, lit_cases[_i].text);
	if (a.ss.ss_family == AF_INET) {
		ck_assert_uint_eq(a.len, sizeof(struct sockaddr_in));
		ck_assert_uint_eq(ntohs(((struct sockaddr_in *)&a.ss)->sin_port), 2525);
	} else {
		ck_assert_uint_eq(a.len, sizeof(struct sockaddr_in6));
		ck_assert_uint_eq(ntohs(((struct sockaddr_in6 *)&a.ss)->sin6_port), 2525);
	}
}
END_TEST

static const struct {
	const char *in;
	int ok;
} dom_cases[] = {
	{ "example.org", 1 },
	{ "example.org.", 1 },
	{ "a-b_c.example", 1 },
	{ "localhost", 1 },
	{ "", 0 },
	{ ".", 0 },
	{ "example..org", 0 },
	{ ".example.org", 0 },
	{ "exa mple.org", 0 },
	{ "example.org;rm", 0 },
	{ "[192.0.2.1]", 0 },
	{ "a.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0 },
};

START_TEST(test_domain_table)
{
	ck_assert_msg(mx_valid_domain(dom_cases[_i].in) == dom_cases[_i].ok, "%s",
		      dom_cases[_i].in);
}
END_TEST

/* 253 characters is the longest name; labels of 50 keep each one legal. */
START_TEST(test_domain_length_limit)
{
	char name[300];

	for (size_t len = 252; len <= 254; len++) {
		for (size_t i = 0; i < len; i++)
			name[i] = i % 51 == 50 ? '.' : 'a';
		name[len] = '\0';
		ck_assert_int_eq(mx_valid_domain(name), len <= 253);
	}
}
END_TEST

#define N(a) (int)(sizeof(a) / sizeof((a)[0]))

int main(void)
{
	Suite *s = suite_create("mx");
	TCase *tc = tcase_create("ranking");
	tcase_add_loop_test(tc, test_sort_table, 0, N(sort_cases));
	tcase_add_test(tc, test_shuffle_covers_permutations);
	tcase_add_loop_test(tc, test_set_mx_table, 0, N(mx_cases));
	tcase_add_test(tc, test_set_mx_caps_hosts);
	tcase_add_loop_test(tc, test_finish_table, 0, N(fin_cases));
	tcase_add_test(tc, test_finish_keeps_first_failure);
	suite_add_tcase(s, tc);
	tc = tcase_create("syntax");
	tcase_add_loop_test(tc, test_literal_table, 0, N(lit_cases));
	tcase_add_loop_test(tc, test_domain_table, 0, N(dom_cases));
	tcase_add_test(tc, test_domain_length_limit);
	suite_add_tcase(s, tc);

	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
