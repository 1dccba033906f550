/*
 * dlv_nexthop.h - where the mail for a destination domain goes, before any
 * DNS: a `route` for the domain, else the first `sender-route` whose
 * pattern matches the (rewritten) sender, else the `smarthost` lines (tried
 * in order), else the domain's own MX. The delivering sessions and
 * `relayctl route` both walk this same chain.
 */
#ifndef RELAYD_DLV_NEXTHOP_H
#define RELAYD_DLV_NEXTHOP_H

#include "common/config.h"

#include <stddef.h>
#include <stdint.h>

enum dlv_hop_kind { DLV_HOP_MX, DLV_HOP_ROUTE, DLV_HOP_SENDER_ROUTE, DLV_HOP_SMARTHOST };

/* One next hop, copied out of the config so that a reload cannot pull it away. */
struct dlv_hop {
	enum dlv_hop_kind kind;
	char name[256];         /* what to resolve: the domain, or the hop's host */
	uint16_t port;
	int no_mx;              /* [host]: addresses only */
	enum tls_policy tls;    /* the hop's tls=, else outbound-tls */
	int tls_from_hop;       /* tls= was written on the hop */
	char auth_user[256];    /* "" : no AUTH */
	char auth_pass[256];
	size_t index, count;    /* smarthost index of count */
	char desc[400];         /* for logs and relayctl: how this hop was chosen */
	struct cfg_rate rate;   /* the destination's rate limit (n 0: none) */
	char rate_desc[320];    /* "rate=6/m for smarthost", "destination-rate 2/s for ex.test" */
};

/*
 * Fills hop number i of the chain of mail from sender (NULL: none given)
 * to domain; 0, or -1 when the chain has fewer hops (only smarthosts have
 * more than one).
 */
int dlv_hop_select(const struct config *cfg, const char *domain, const char *sender, size_t i,
		   struct dlv_hop *hop);
/* The sender-route mail from sender takes when no route wins, or NULL. */
const struct cfg_sender_route *dlv_sender_route(const struct config *cfg, const char *sender);
/*
 * The name of the destination the jobs share: one concurrency limit, one
 * reused connection (so one AUTH identity), one failure memory. Mail for
 * every domain that goes to the smarthosts, through one route or through
 * one sender-route shares it; two sender-routes never do.
 */
void dlv_dest_key(const struct config *cfg, const char *domain, const char *sender, char *dst,
		  size_t dstsz);
/* "none", "may", ... */
const char *dlv_tls_policy_name(enum tls_policy p);

#endif
