/*
 * dlv_nexthop.c - choosing the next hop of a message from the routes,
 * sender-routes, smarthosts and MX delivery of the config.
 */
#include "relayd/delivery/dlv_nexthop.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static const char *const dlv_tls_names[] = {
	[TLS_POLICY_NONE] = "none",
	[TLS_POLICY_MAY] = "may",
	[TLS_POLICY_STARTTLS] = "starttls",
	[TLS_POLICY_SMTPS] = "smtps",
	[TLS_POLICY_VERIFY] = "verify",
};

const char *dlv_tls_policy_name(enum tls_policy p)
{
	if ((size_t)p >= sizeof(dlv_tls_names) / sizeof(dlv_tls_names[0]) || !dlv_tls_names[p])
		return "?";
	return dlv_tls_names[p];
}

static void dlv_lower(char *dst, size_t dstsz, const char *src)
{
	size_t i = 0;
	for (; src[i] && i + 1 < dstsz; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[i] = '\0';
	/* "example.org." and "example.org" are one destination. */
	if (i > 1 && dst[i - 1] == '.')
		dst[i - 1] = '\0';
}

static void dlv_hop_from_cfg(const struct config *cfg, const struct cfg_nexthop *nh,
			     struct dlv_hop *hop)
{
	snprintf(hop->name, sizeof(hop->name), "%s", nh->host);
	hop->port = nh->port;
	hop->no_mx = nh->no_mx;
	hop->tls_from_hop = nh->tls_set;
	hop->tls = nh->tls_set ? nh->tls : cfg->outbound_tls;
	hop->rate = nh->rate;
	if (nh->auth_user && nh->auth_pass) {
		snprintf(hop->auth_user, sizeof(hop->auth_user), "%s", nh->auth_user);
		snprintf(hop->auth_pass, sizeof(hop->auth_pass), "%s", nh->auth_pass);
	}
}

/* "[host]:port" or "host:port", as the config writes a next hop. */
static void dlv_hop_text(const struct dlv_hop *hop, char *dst, size_t dstsz)
{
	int v6 = strchr(hop->name, ':') != NULL;
	if (hop->no_mx || v6)
		snprintf(dst, dstsz, "[%s]:%u", hop->name, hop->port);
	else
		snprintf(dst, dstsz, "%s:%u", hop->name, hop->port);
}

const struct cfg_sender_route *dlv_sender_route(const struct config *cfg, const char *sender)
{
	if (sender == NULL || sender[0] == '\0')
		return NULL;
	for (size_t i = 0; i < cfg->nsender_routes; i++)
		if (addr_pattern_match(&cfg->sender_routes[i].pat, sender))
			return &cfg->sender_routes[i];
	return NULL;
}

/*
 * The rate of the hop's destination and what a log line calls it: a route's
 * or a sender-route's own, the one shared by the smarthosts, or
 * destination-rate for each MX domain.
 */
static void dlv_hop_rate(const struct config *cfg, const char *what, struct dlv_hop *hop)
{
	char text[32];

	if (hop->kind == DLV_HOP_SMARTHOST)
		hop->rate = config_smarthost_rate(cfg);
	else if (hop->kind == DLV_HOP_MX)
		hop->rate = cfg->destination_rate;
	config_rate_text(&hop->rate, text, sizeof(text));
	if (hop->kind == DLV_HOP_MX)
		snprintf(hop->rate_desc, sizeof(hop->rate_desc), "destination-rate %s for %s", text,
			 what);
	else
		snprintf(hop->rate_desc, sizeof(hop->rate_desc), "rate=%s for %s", text, what);
}

int dlv_hop_select(const struct config *cfg, const char *domain, const char *sender, size_t i,
		   struct dlv_hop *hop)
{
	char text[300];
	const struct cfg_route *route = config_route_for(cfg, domain);
	const struct cfg_sender_route *sroute = route ? NULL : dlv_sender_route(cfg, sender);

	memset(hop, 0, sizeof(*hop));
	if (route) {
		if (i > 0)
			return -1;
		hop->kind = DLV_HOP_ROUTE;
		hop->count = 1;
		dlv_hop_from_cfg(cfg, &route->hop, hop);
		dlv_hop_text(hop, text, sizeof(text));
		snprintf(hop->desc, sizeof(hop->desc), "route %s%s -> %s",
			 route->subdomains ? "*." : "", route->domain, text);
		snprintf(text, sizeof(text), "route %s%s", route->subdomains ? "*." : "",
			 route->domain);
		dlv_hop_rate(cfg, text, hop);
		return 0;
	}
	if (sroute) {
		if (i > 0)
			return -1;
		hop->kind = DLV_HOP_SENDER_ROUTE;
		hop->count = 1;
		dlv_hop_from_cfg(cfg, &sroute->hop, hop);
		dlv_hop_text(hop, text, sizeof(text));
		snprintf(hop->desc, sizeof(hop->desc), "sender-route %s -> %s", sroute->pattern,
			 text);
		snprintf(text, sizeof(text), "sender-route %s", sroute->pattern);
		dlv_hop_rate(cfg, text, hop);
		return 0;
	}
	if (cfg->nsmarthosts > 0) {
		if (i >= cfg->nsmarthosts)
			return -1;
		hop->kind = DLV_HOP_SMARTHOST;
		hop->index = i;
		hop->count = cfg->nsmarthosts;
		dlv_hop_from_cfg(cfg, &cfg->smarthosts[i], hop);
		dlv_hop_text(hop, text, sizeof(text));
		snprintf(hop->desc, sizeof(hop->desc), "smarthost %zu of %zu -> %s", i + 1,
			 cfg->nsmarthosts, text);
		dlv_hop_rate(cfg, "smarthost", hop);
		return 0;
	}
	if (i > 0)
		return -1;
	hop->kind = DLV_HOP_MX;
	hop->count = 1;
	dlv_lower(hop->name, sizeof(hop->name), domain);
	hop->port = cfg->delivery_port;
	hop->tls = cfg->outbound_tls;
	snprintf(hop->desc, sizeof(hop->desc), "MX of %s, port %u", hop->name, hop->port);
	dlv_hop_rate(cfg, hop->name, hop);
	return 0;
}

void dlv_dest_key(const struct config *cfg, const char *domain, const char *sender, char *dst,
		  size_t dstsz)
{
	char low[256];
	const struct cfg_route *route = config_route_for(cfg, domain);
	const struct cfg_sender_route *sroute = route ? NULL : dlv_sender_route(cfg, sender);

	if (route)
		snprintf(dst, dstsz, "route:%s%s", route->subdomains ? "*." : "", route->domain);
	else if (sroute)
		snprintf(dst, dstsz, "sender-route:%s", sroute->pattern);
	else if (cfg->nsmarthosts > 0)
		snprintf(dst, dstsz, "smarthost");
	else {
		dlv_lower(low, sizeof(low), domain);
		snprintf(dst, dstsz, "mx:%s", low);
	}
}
