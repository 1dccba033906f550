/*
 * dlv_ctl.c - the delivery worker's relayctl commands: `route ADDRESS
 * [--from SENDER]` (the plan delivery would follow, computed by the same next-hop and MX
 * code that delivers, with the rate limit that applies) and `stats` (its counters as "key value" lines).
 */
#include "relayd/delivery/dlv.h"
#include "common/buf.h"
#include "common/xmalloc.h"
#include "resolver/resolver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dlv_route_req {
	struct dlv_ctx *ctx;
	uint32_t reqid;
	char domain[256];
	char sender[512];       /* "" : none given */
	size_t hop_idx;
	struct dlv_hop hop;
	struct buf out;
	int usable;             /* some hop resolved to hosts */
};

static void dlv_route_step(struct dlv_route_req *rq);

static void dlv_route_finish(struct dlv_route_req *rq)
{
	if (!rq->usable)
		buf_appendf(&rq->out, "result: no host to deliver to; mail for %s would wait "
			    "or bounce as above\n", rq->domain);
	buf_append(&rq->out, "", 1);
	worker_ctl_reply(rq->ctx->w, rq->reqid, rq->usable ? 0 : 1,
			 (const char *)buf_head(&rq->out));
	buf_free(&rq->out);
	free(rq);
}

/* The trace, one answer per line, indented under "dns:". */
static void dlv_route_trace(struct buf *out, const char *trace)
{
	const char *p = trace;

	buf_appendf(out, "dns:\n");
	if (p == NULL || *p == '\0') {
		buf_appendf(out, "  (no queries)\n");
		return;
	}
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		if (n > 0)
			buf_appendf(out, "  %.*s\n", (int)n, p);
		p += n + (nl != NULL);
	}
}

static void dlv_route_plan(struct mx_plan *plan, void *arg)
{
	struct dlv_route_req *rq = arg;
	struct buf *out = &rq->out;

	dlv_route_trace(out, plan->trace);
	if (plan->status != MX_OK) {
		buf_appendf(out, "error: %s %s (%s)\n", plan->enh, plan->error,
			    plan->status == MX_PERMFAIL ? "permanent: the mail bounces"
							: "temporary: the mail waits");
	} else {
		buf_appendf(out, "hosts, in the order tried%s:\n",
			    plan->implicit ? " (no MX records: the domain's own address)" : "");
		for (size_t i = 0; i < plan->nhosts; i++) {
			const struct mx_host *h = &plan->hosts[i];
			buf_appendf(out, "  %zu. %s", i + 1, h->name);
			if (!rq->hop.no_mx && !plan->implicit)
				buf_appendf(out, " (MX %u)", h->pref);
			buf_appendf(out, ":");
			for (size_t j = 0; j < h->naddrs; j++)
				buf_appendf(out, " %s%s%s:%u", strchr(h->addrs[j].text, ':') ? "[" : "",
					    h->addrs[j].text,
					    strchr(h->addrs[j].text, ':') ? "]" : "", rq->hop.port);
			if (h->naddrs == 0)
				buf_appendf(out, " no address%s",
					    h->addr_tempfail ? " (lookup failed temporarily)" : "");
			buf_appendf(out, "\n");
			if (h->naddrs > 0)
				rq->usable = 1;
		}
	}
	mx_plan_free(plan);
	rq->hop_idx++;
	dlv_route_step(rq);
}

/* The rate that applies, and what it does to mail above it. */
static void dlv_route_rate(struct buf *out, const struct dlv_hop *hop)
{
	uint64_t ms = dlv_rate_interval(&hop->rate);

	if (ms == 0) {
		buf_appendf(out, "rate: none\n");
		return;
	}
	buf_appendf(out, "rate: %s: one message every %llu.%03llu s%s; mail above it waits in the "
		    "queue (not an attempt)\n", hop->rate_desc, (unsigned long long)(ms / 1000),
		    (unsigned long long)(ms % 1000),
		    hop->kind == DLV_HOP_SMARTHOST ? ", shared by all the smarthosts" :
		    hop->kind == DLV_HOP_MX ? ", per destination domain" : "");
}

static void dlv_route_step(struct dlv_route_req *rq)
{
	const struct config *cfg = rq->ctx->w->cfg;
	struct dlv_hop *hop = &rq->hop;

	if (dlv_hop_select(cfg, rq->domain, rq->sender, rq->hop_idx, hop) < 0) {
		dlv_route_finish(rq);
		return;
	}
	buf_appendf(&rq->out, "%snext hop: %s%s\n", rq->hop_idx ? "\n" : "", hop->desc,
		    hop->kind == DLV_HOP_MX ? " (no route, sender-route or smarthost applies)" : "");
	/* The precedence made visible: a route for the domain beats the sender's. */
	const struct cfg_sender_route *sr = dlv_sender_route(cfg, rq->sender);
	if (rq->hop_idx == 0 && hop->kind == DLV_HOP_ROUTE && sr != NULL)
		buf_appendf(&rq->out, "not taken: sender-route %s (a route for the domain comes "
			    "first)\n", sr->pattern);
	buf_appendf(&rq->out, "lookup: %s %s\n", hop->no_mx ? "addresses of" : "MX of", hop->name);
	buf_appendf(&rq->out, "tls: %s (%s)\n", dlv_tls_policy_name(hop->tls),
		    hop->tls_from_hop ? "tls= of the next hop" : "outbound-tls");
	if (hop->auth_user[0])
		buf_appendf(&rq->out, "auth: as %s, sent only over TLS\n", hop->auth_user);
	else
		buf_appendf(&rq->out, "auth: none\n");
	dlv_route_rate(&rq->out, hop);
	mx_resolve(rq->ctx->res, hop->name, hop->no_mx, hop->port, dlv_route_plan, rq);
}

static void dlv_ctl_route(struct dlv_ctx *ctx, uint32_t reqid, const char *address,
			  const char *sender)
{
	struct dlv_route_req *rq = xcalloc(1, sizeof(*rq));
	const char *at = strrchr(address, '@');
	const char *dom = at ? at + 1 : address;
	size_t n = strlen(dom);

	if (n > 0 && dom[n - 1] == '>')
		n--;
	rq->ctx = ctx;
	rq->reqid = reqid;
	buf_init(&rq->out);
	if (n == 0 || n >= sizeof(rq->domain)) {
		worker_ctl_reply(ctx->w, reqid, 1, "route: no destination domain in the address\n");
		free(rq);
		return;
	}
	memcpy(rq->domain, dom, n);
	rq->domain[n] = '\0';
	buf_appendf(&rq->out, "address: %s\ndomain: %s\n", address, rq->domain);
	if (sender != NULL) {
		snprintf(rq->sender, sizeof(rq->sender), "%s", sender);
		buf_appendf(&rq->out, "sender: %s\n", rq->sender);
	}
	dlv_route_step(rq);
}

static void dlv_ctl_stats(struct dlv_ctx *ctx, uint32_t reqid)
{
	const struct dlv_stats *st = &ctx->stats;
	struct dlv_dest *d;
	unsigned long long waiting = 0;
	char text[1024];

	LIST_FOREACH(d, &ctx->dests, entry)
		waiting += d->nwaiting;
	snprintf(text, sizeof(text),
		 "connections_out %llu\nconnect_failures %llu\ntls_out %llu\nconn_reuse %llu\n"
		 "rcpt_sent %llu\nrcpt_deferred %llu\nrcpt_bounced %llu\n"
		 "sessions_active %u\njobs_waiting %llu\n",
		 (unsigned long long)st->connections_out, (unsigned long long)st->connect_failures,
		 (unsigned long long)st->tls_out, (unsigned long long)st->conn_reuse,
		 (unsigned long long)st->rcpt_sent, (unsigned long long)st->rcpt_deferred,
		 (unsigned long long)st->rcpt_bounced, ctx->nsessions, waiting);
	worker_ctl_reply(ctx->w, reqid, 0, text);
}

/* dkim DOMAIN: the TXT records to publish for its keys. */
static void dlv_ctl_dkim(struct dlv_ctx *ctx, uint32_t reqid, const char *domain)
{
	struct buf out;
	buf_init(&out);
	int found = dlv_dkim_records(ctx->dkim, domain, &out);
	if (found == 0)
		buf_appendf(&out, "dkim: no dkim-sign key for %s\n", domain);
	buf_append(&out, "", 1);
	worker_ctl_reply(ctx->w, reqid, found ? 0 : 1, (const char *)buf_head(&out));
	buf_free(&out);
}

void dlv_ctl(struct worker *w, uint32_t reqid, int argc, char **argv)
{
	struct dlv_ctx *ctx = w->ctx;

	/* relayctl checked the form: route ADDRESS [--from SENDER]. */
	if ((argc == 2 || argc == 4) && strcmp(argv[0], "route") == 0)
		dlv_ctl_route(ctx, reqid, argv[1], argc == 4 ? argv[3] : NULL);
	else if (argc == 2 && strcmp(argv[0], "dkim") == 0)
		dlv_ctl_dkim(ctx, reqid, argv[1]);
	else if (strcmp(argv[0], "stats") == 0)
		dlv_ctl_stats(ctx, reqid);
	else if (strcmp(argv[0], "metrics") == 0)
		dlv_metrics_answer(ctx, reqid);
	else
		worker_ctl_reply(w, reqid, 1, "delivery: unknown command\n");
}
