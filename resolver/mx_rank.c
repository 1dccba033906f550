/*
 * mx_rank.c - RFC 5321 section 5.1 and RFC 7505 without I/O: address
 * literals, the MX answer turned into ranked hosts (implicit MX, null MX,
 * ties shuffled), loop removal and the final verdict on a plan. Pure so
 * that the unit tests can drive every rule from tables.
 */
#include "resolver/resolver.h"
#include "common/xmalloc.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* More hosts than this is a misconfigured zone; the best ones suffice. */
#define MX_MAX_HOSTS 32

struct mx_plan *mx_plan_new(void)
{
	return xcalloc(1, sizeof(struct mx_plan));
}

void mx_plan_free(struct mx_plan *plan)
{
	if (plan == NULL)
		return;
	for (size_t i = 0; i < plan->nhosts; i++)
		free(plan->hosts[i].addrs);
	free(plan->hosts);
	free(plan->trace);
	free(plan);
}

void mx_plan_fail(struct mx_plan *plan, enum mx_status status, const char *enh,
		  const char *fmt, ...)
{
	va_list ap;

	if (plan->status != MX_OK)
		return;
	plan->status = status;
	snprintf(plan->enh, sizeof(plan->enh), "%s", enh);
	va_start(ap, fmt);
	vsnprintf(plan->error, sizeof(plan->error), fmt, ap);
	va_end(ap);
}

struct mx_host *mx_plan_add_host(struct mx_plan *plan, const char *name, unsigned pref)
{
	plan->hosts = xreallocarray(plan->hosts, plan->nhosts + 1, sizeof(*plan->hosts));
	struct mx_host *h = &plan->hosts[plan->nhosts++];
	memset(h, 0, sizeof(*h));
	snprintf(h->name, sizeof(h->name), "%s", name);
	h->pref = pref;
	return h;
}

void mx_host_add_addr(struct mx_host *h, const struct sockaddr *sa, uint16_t port)
{
	h->addrs = xreallocarray(h->addrs, h->naddrs + 1, sizeof(*h->addrs));
	struct mx_addr *a = &h->addrs[h->naddrs++];
	memset(a, 0, sizeof(*a));
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
		memcpy(sin, sa, sizeof(*sin));
		sin->sin_port = htons(port);
		a->len = sizeof(*sin);
		inet_ntop(AF_INET, &sin->sin_addr, a->text, sizeof(a->text));
	} else if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;
		memcpy(sin6, sa, sizeof(*sin6));
		sin6->sin6_port = htons(port);
		a->len = sizeof(*sin6);
		inet_ntop(AF_INET6, &sin6->sin6_addr, a->text, sizeof(a->text));
	} else {
		fatal("mx_host_add_addr: address family %d", sa->sa_family);
	}
}

int mx_parse_literal(const char *s, uint16_t port, struct mx_addr *out)
{
	size_t len = strlen(s);
	char inner[INET6_ADDRSTRLEN + 8];
	struct mx_host h;
	union {
		struct sockaddr sa;
		struct sockaddr_in sin;
		struct sockaddr_in6 sin6;
	} u;

	if (len == 0 || s[0] != '[')
		return 0;
	if (s[len - 1] != ']' || len - 2 >= sizeof(inner))
		return -1;
	memcpy(inner, s + 1, len - 2);
	inner[len - 2] = '\0';

	memset(&u, 0, sizeof(u));
	const char *v6 = strncasecmp(inner, "IPv6:", 5) == 0 ? inner + 5 : NULL;
	if (v6 == NULL && strchr(inner, ':') != NULL)
		v6 = inner;
	if (v6 != NULL) {
		u.sin6.sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, v6, &u.sin6.sin6_addr) != 1)
			return -1;
	} else {
		u.sin.sin_family = AF_INET;
		if (inet_pton(AF_INET, inner, &u.sin.sin_addr) != 1)
			return -1;
	}
	memset(&h, 0, sizeof(h));
	mx_host_add_addr(&h, &u.sa, port);
	*out = h.addrs[0];
	free(h.addrs);
	return 1;
}

int mx_valid_domain(const char *s)
{
	size_t len = strlen(s), label = 0;

	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if (isalnum(c) || c == '-' || c == '_') {
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	return label > 0;
}

/* Host names compare without case and without a trailing dot. */
static int mx_name_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 0 && a[la - 1] == '.')
		la--;
	if (lb > 0 && b[lb - 1] == '.')
		lb--;
	return la == lb && strncasecmp(a, b, la) == 0;
}

static int mx_cmp_pref(const void *a, const void *b)
{
	const struct mx_host *x = a, *y = b;
	return (x->pref > y->pref) - (x->pref < y->pref);
}

static uint32_t mx_default_rng(uint32_t n)
{
	return arc4random_uniform(n);
}

void mx_sort_hosts(struct mx_host *hosts, size_t n, mx_rng rng)
{
	if (rng == NULL)
		rng = mx_default_rng;
	qsort(hosts, n, sizeof(*hosts), mx_cmp_pref);
	for (size_t start = 0, end; start < n; start = end) {
		for (end = start + 1; end < n && hosts[end].pref == hosts[start].pref; end++)
			;
		/* Fisher-Yates over the run [start, end). */
		for (size_t i = end - 1; i > start; i--) {
			size_t j = start + rng((uint32_t)(i - start + 1));
			struct mx_host t = hosts[i];
			hosts[i] = hosts[j];
			hosts[j] = t;
		}
	}
}

static int mx_is_null(const char *host)
{
	return host[0] == '\0' || strcmp(host, ".") == 0;
}

int mx_plan_set_mx(struct mx_plan *plan, const char *domain, const struct mx_rr *rrs, size_t n,
		   mx_rng rng)
{
	if (n == 0) {
		plan->implicit = 1;
		mx_plan_add_host(plan, domain, 0);
		return 0;
	}
	/* RFC 7505: a domain with a null MX accepts no mail; other records do not matter. */
	for (size_t i = 0; i < n; i++) {
		if (mx_is_null(rrs[i].host)) {
			mx_plan_fail(plan, MX_PERMFAIL, "5.1.10",
				     "domain %s does not accept mail (null MX)", domain);
			return -1;
		}
	}
	for (size_t i = 0; i < n; i++) {
		size_t j;
		for (j = 0; j < plan->nhosts; j++)
			if (mx_name_eq(plan->hosts[j].name, rrs[i].host))
				break;
		if (j == plan->nhosts)
			mx_plan_add_host(plan, rrs[i].host, rrs[i].pref);
		else if (rrs[i].pref < plan->hosts[j].pref)
			plan->hosts[j].pref = rrs[i].pref;
	}
	mx_sort_hosts(plan->hosts, plan->nhosts, rng);
	while (plan->nhosts > MX_MAX_HOSTS)
		free(plan->hosts[--plan->nhosts].addrs);
	return 0;
}

static int mx_addr_is_self(const struct mx_addr *a, const struct mx_self *self)
{
	for (size_t i = 0; i < self->naddrs; i++) {
		const struct sockaddr_storage *s = &self->addrs[i];
		if (s->ss_family != a->ss.ss_family)
			continue;
		if (s->ss_family == AF_INET) {
			const struct sockaddr_in *x = (const void *)s, *y = (const void *)&a->ss;
			if (x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr)
				return 1;
		} else if (s->ss_family == AF_INET6) {
			const struct sockaddr_in6 *x = (const void *)s, *y = (const void *)&a->ss;
			if (x->sin6_port == y->sin6_port &&
			    memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0)
				return 1;
		}
	}
	return 0;
}

static int mx_host_is_self(const struct mx_host *h, const struct mx_self *self)
{
	if (self->hostname != NULL && self->hostname[0] != '\0' &&
	    mx_name_eq(h->name, self->hostname))
		return 1;
	for (size_t i = 0; i < h->naddrs; i++)
		if (mx_addr_is_self(&h->addrs[i], self))
			return 1;
	return 0;
}

void mx_plan_finish(struct mx_plan *plan, const char *domain, const struct mx_self *self)
{
	size_t keep = 0, with_addrs = 0;
	int tempfail = 0, looped = 0;
	unsigned cut = 0;

	if (plan->status != MX_OK)
		return;
	/* RFC 5321 5.1: this host and every host not better than it must go. */
	for (size_t i = 0; i < plan->nhosts; i++) {
		if (mx_host_is_self(&plan->hosts[i], self) && (!looped || plan->hosts[i].pref < cut)) {
			cut = plan->hosts[i].pref;
			looped = 1;
		}
	}
	for (size_t i = 0; i < plan->nhosts; i++) {
		if (looped && plan->hosts[i].pref >= cut) {
			free(plan->hosts[i].addrs);
			continue;
		}
		plan->hosts[keep++] = plan->hosts[i];
	}
	plan->nhosts = keep;
	if (looped && keep == 0) {
		mx_plan_fail(plan, MX_PERMFAIL, "5.4.6", "mail for %s loops back to myself", domain);
		return;
	}
	for (size_t i = 0; i < plan->nhosts; i++) {
		with_addrs += plan->hosts[i].naddrs > 0;
		tempfail |= plan->hosts[i].addr_tempfail;
	}
	if (with_addrs > 0)
		return;
	if (tempfail)
		mx_plan_fail(plan, MX_TEMPFAIL, "4.4.3",
			     "temporary failure looking up the address of the mail exchangers for %s",
			     domain);
	else if (plan->nhosts == 1 && mx_name_eq(plan->hosts[0].name, domain))
		mx_plan_fail(plan, MX_PERMFAIL, "5.4.4", "no address found for %s", domain);
	else
		mx_plan_fail(plan, MX_PERMFAIL, "5.4.4",
			     "no address found for the mail exchangers of %s", domain);
}
