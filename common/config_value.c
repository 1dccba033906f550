/*
 * config_value.c - the value syntaxes of relayd.conf (durations, sizes,
 * CIDR networks, next hops, domain names) and the lookups the workers do on
 * a parsed config (client networks, routes, relay domains).
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A value with a one-letter unit suffix: "30s", "35M", or a bare number. */
struct cfg_unit {
	char suffix;
	uint64_t mult;
};

static const struct cfg_unit cfg_duration_units[] = {
	{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 7 * 86400}, {0, 0},
};

static const struct cfg_unit cfg_size_units[] = {
	{'b', 1}, {'k', 1024}, {'m', 1024 * 1024}, {'g', 1024 * 1024 * 1024}, {0, 0},
};

static int cfg_parse_scaled(const char *s, const struct cfg_unit *units, uint64_t max,
			    uint64_t *out)
{
	uint64_t v = 0, mult = 1;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		uint64_t digit = (uint64_t)(*p - '0');
		if (v > (UINT64_MAX - digit) / 10)
			return -1;
		v = v * 10 + digit;
	}
	if (*p != '\0') {
		const struct cfg_unit *u;
		for (u = units; u->suffix; u++)
			if (tolower((unsigned char)*p) == u->suffix)
				break;
		if (u->suffix == 0 || p[1] != '\0')
			return -1;
		mult = u->mult;
	}
	if (v > max / mult)
		return -1;
	*out = v * mult;
	return 0;
}

int config_parse_duration(const char *s, unsigned *secs)
{
	uint64_t v;
	if (cfg_parse_scaled(s, cfg_duration_units, UINT_MAX, &v) < 0)
		return -1;
	*secs = (unsigned)v;
	return 0;
}

int config_parse_size(const char *s, uint64_t *bytes)
{
	return cfg_parse_scaled(s, cfg_size_units, UINT64_MAX, bytes);
}

/* Letters, digits and inner hyphens in dot-separated labels of 1..63. */
int config_valid_hostname(const char *s)
{
	size_t len = strlen(s), label = 0;

	if (len == 0 || len > 253)
		return 0;
	for (const char *p = s; ; p++) {
		if (*p == '.' || *p == '\0') {
			if (label == 0 || label > 63 || p[-1] == '-')
				return 0;
			if (*p == '\0')
				return 1;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)*p) && !(*p == '-' && label > 0) && *p != '_')
			return 0;
		label++;
	}
}

/* A mapped IPv4 address (::ffff:a.b.c.d) as plain IPv4: one rule for both. */
static void cfg_unmap(struct cfg_cidr *c)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (c->family != AF_INET6 || c->prefix < 96 || memcmp(c->addr, mapped, 12) != 0)
		return;
	c->family = AF_INET;
	memmove(c->addr, c->addr + 12, 4);
	memset(c->addr + 4, 0, 12);
	c->prefix -= 96;
}

int config_parse_cidr(const char *s, struct cfg_cidr *out)
{
	char a[INET6_ADDRSTRLEN + 2];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	const char *ap = a;

	if (alen == 0 || alen >= sizeof(a))
		return -1;
	memcpy(a, s, alen);
	a[alen] = '\0';
	/* Postfix writes IPv6 networks as [::1]/128. */
	if (a[0] == '[' && a[alen - 1] == ']') {
		a[alen - 1] = '\0';
		ap = a + 1;
	}
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, ap, out->addr) == 1)
		out->family = AF_INET;
	else if (inet_pton(AF_INET6, ap, out->addr) == 1)
		out->family = AF_INET6;
	else
		return -1;
	unsigned max = out->family == AF_INET ? 32 : 128;
	out->prefix = max;
	if (slash) {
		char *end;
		if (!isdigit((unsigned char)slash[1]))
			return -1;
		errno = 0;
		unsigned long p = strtoul(slash + 1, &end, 10);
		if (errno || *end != '\0' || p > max)
			return -1;
		out->prefix = (unsigned)p;
	}
	/* Host bits are ignored, as the network they name is meant. */
	for (unsigned bit = out->prefix; bit < max; bit++)
		out->addr[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
	cfg_unmap(out);
	return 0;
}

static int cfg_parse_port(const char *s, uint16_t *port)
{
	char *end;
	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	unsigned long p = strtoul(s, &end, 10);
	if (errno || *end != '\0' || p == 0 || p > 65535)
		return -1;
	*port = (uint16_t)p;
	return 0;
}

int config_parse_hostport(const char *s, char *host, size_t hostsz, int *bracketed,
			  uint16_t *port)
{
	const char *h = s, *colon;
	size_t hlen;

	*bracketed = 0;
	if (*s == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL)
			return -1;
		h = s + 1;
		hlen = (size_t)(close - h);
		colon = close[1] == ':' ? close + 1 : NULL;
		if (close[1] != '\0' && colon == NULL)
			return -1;
		*bracketed = 1;
	} else {
		colon = strchr(s, ':');
		/* More than one colon: a bare IPv6 address without a port. */
		if (colon && strchr(colon + 1, ':'))
			colon = NULL;
		hlen = colon ? (size_t)(colon - s) : strlen(s);
	}
	if (hlen == 0 || hlen >= hostsz)
		return -1;
	if (colon && cfg_parse_port(colon + 1, port) < 0)
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	for (char *p = host; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return 0;
}

static int cfg_is_ip(const char *s)
{
	uint8_t a[16];
	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

int config_parse_nexthop(const char *s, struct cfg_nexthop *out)
{
	int bracketed;

	memset(out, 0, sizeof(*out));
	out->port = 25;
	if (config_parse_hostport(s, out->host, sizeof(out->host), &bracketed, &out->port) < 0)
		return -1;
	if (!cfg_is_ip(out->host) && !config_valid_hostname(out->host))
		return -1;
	/* A bare IPv6 literal cannot be told from host:port: it needs brackets. */
	if (!bracketed && strchr(out->host, ':') != NULL)
		return -1;
	/* An address has no MX records to look up. */
	out->no_mx = bracketed || cfg_is_ip(out->host);
	return 0;
}

/* The periods of rate=N/PERIOD; the limiter spaces messages period/N apart. */
static const struct cfg_unit cfg_rate_periods[] = {
	{'s', 1}, {'m', 60}, {'h', 3600}, {0, 0},
};

int config_parse_rate(const char *s, struct cfg_rate *out)
{
	uint64_t n = 0;
	const char *slash = strchr(s, '/');
	const struct cfg_unit *u;

	if (slash == NULL || slash == s || slash - s > 9)
		return -1;
	for (const char *p = s; p < slash; p++) {
		if (!isdigit((unsigned char)*p))
			return -1;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	for (u = cfg_rate_periods; u->suffix; u++)
		if (slash[1] == u->suffix && slash[2] == '\0')
			break;
	/* Below a millisecond apart the spacing could not be kept. */
	if (u->suffix == 0 || n == 0 || n > u->mult * 1000)
		return -1;
	out->n = (unsigned)n;
	out->period = (unsigned)u->mult;
	return 0;
}

void config_rate_text(const struct cfg_rate *r, char *dst, size_t dstsz)
{
	char unit = 's';

	for (const struct cfg_unit *u = cfg_rate_periods; u->suffix; u++)
		if (u->mult == r->period)
			unit = u->suffix;
	if (r->n == 0)
		snprintf(dst, dstsz, "none");
	else
		snprintf(dst, dstsz, "%u/%c", r->n, unit);
}

struct cfg_rate config_smarthost_rate(const struct config *cfg)
{
	struct cfg_rate none = {0, 0};

	for (size_t i = 0; i < cfg->nsmarthosts; i++)
		if (cfg->smarthosts[i].rate.n > 0)
			return cfg->smarthosts[i].rate;
	return none;
}

int config_cidr_match(const struct cfg_cidr *nets, size_t n, const struct sockaddr *sa)
{
	struct cfg_cidr c;

	memset(&c, 0, sizeof(c));
	if (sa->sa_family == AF_INET) {
		c.family = AF_INET;
		memcpy(c.addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		c.prefix = 32;
	} else if (sa->sa_family == AF_INET6) {
		c.family = AF_INET6;
		memcpy(c.addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		c.prefix = 128;
		cfg_unmap(&c);
	} else
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (nets[i].family != c.family)
			continue;
		unsigned full = nets[i].prefix / 8, rest = nets[i].prefix % 8;
		if (memcmp(nets[i].addr, c.addr, full) != 0)
			continue;
		if (rest && ((nets[i].addr[full] ^ c.addr[full]) & (uint8_t)(0xff00u >> rest)))
			continue;
		return 1;
	}
	return 0;
}

/*
 * How well domain matches a pattern: 0 not at all, else the pattern's
 * length, plus one for an exact match so that it beats a wildcard of the
 * same name. A trailing dot on the domain is ignored.
 */
static size_t cfg_domain_score(const char *pattern, int subdomains, const char *domain)
{
	size_t plen = strlen(pattern), dlen = strlen(domain);

	if (dlen > 0 && domain[dlen - 1] == '.')
		dlen--;
	if (!subdomains)
		return (dlen == plen && strncasecmp(pattern, domain, plen) == 0) ? plen + 1 : 0;
	if (dlen <= plen + 1 || domain[dlen - plen - 1] != '.')
		return 0;
	return strncasecmp(pattern, domain + dlen - plen, plen) == 0 ? plen : 0;
}

const struct cfg_route *config_route_for(const struct config *cfg, const char *domain)
{
	const struct cfg_route *best = NULL;
	size_t best_score = 0;

	for (size_t i = 0; i < cfg->nroutes; i++) {
		const struct cfg_route *r = &cfg->routes[i];
		size_t score = cfg_domain_score(r->domain, r->subdomains, domain);
		if (score > best_score) {
			best = r;
			best_score = score;
		}
	}
	return best;
}

int config_is_relay_domain(const struct config *cfg, const char *domain)
{
	for (size_t i = 0; i < cfg->nrelay_domains; i++) {
		const char *d = cfg->relay_domains[i];
		int sub = strncmp(d, "*.", 2) == 0;
		if (cfg_domain_score(sub ? d + 2 : d, sub, domain) > 0)
			return 1;
	}
	return 0;
}
