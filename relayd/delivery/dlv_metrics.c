/*
 * dlv_metrics.c - the delivery worker's answer to the master's metrics
 * poll: its connection counters and recipient outcomes per next hop.
 * Next hops get a label each in the order they first have an outcome, up
 * to DLV_METRIC_HOPS; later ones count as "other". A label once given is
 * kept, so each series only grows (a ranking that changed would make
 * counters jump between labels) and the cardinality stays bounded.
 */
#include "relayd/delivery/dlv.h"
#include "common/buf.h"

#include <stdio.h>
#include <string.h>

static const char *const dlv_metric_class[] = {
	[DLV_SENT] = "sent", [DLV_DEFERRED] = "deferred", [DLV_BOUNCED] = "bounced",
};

void dlv_metrics_count(struct dlv_ctx *ctx, const char *hop, enum dlv_class cls)
{
	struct dlv_stats *st = &ctx->stats;
	size_t i;
	for (i = 0; i < st->nhops; i++)
		if (strcmp(st->hops[i].hop, hop) == 0)
			break;
	if (i == st->nhops && st->nhops < DLV_METRIC_HOPS &&
	    strlen(hop) < sizeof(st->hops[0].hop))
		snprintf(st->hops[st->nhops++].hop, sizeof(st->hops[0].hop), "%s", hop);
	if (i == st->nhops)
		i = DLV_METRIC_HOPS; /* other */
	st->hops[i].n[cls]++;
}

/* A label value as the exposition format wants it. */
static void dlv_metrics_label(struct buf *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			buf_appendf(out, "\\%c", *v);
		else if (*v == '\n')
			buf_appendf(out, "\\n");
		else
			buf_append(out, v, 1);
	}
}

void dlv_metrics_answer(struct dlv_ctx *ctx, uint32_t reqid)
{
	const struct dlv_stats *st = &ctx->stats;
	struct buf out;
	buf_init(&out);
	buf_appendf(&out, "relayd_connections_out_total %llu\nrelayd_connect_failures_total %llu\n"
		    "relayd_tls_out_total %llu\n",
		    (unsigned long long)st->connections_out,
		    (unsigned long long)st->connect_failures, (unsigned long long)st->tls_out);
	for (size_t i = 0; i <= DLV_METRIC_HOPS; i++) {
		if (i == st->nhops && i < DLV_METRIC_HOPS)
			i = DLV_METRIC_HOPS;
		for (int c = DLV_SENT; c <= DLV_BOUNCED; c++) {
			if (st->hops[i].n[c] == 0)
				continue;
			buf_appendf(&out, "relayd_nexthop_deliveries_total{nexthop=\"");
			dlv_metrics_label(&out, i == DLV_METRIC_HOPS ? "other" : st->hops[i].hop);
			buf_appendf(&out, "\",status=\"%s\"} %llu\n", dlv_metric_class[c],
				    (unsigned long long)st->hops[i].n[c]);
		}
	}
	buf_append(&out, "", 1);
	worker_ctl_reply(ctx->w, reqid, 0, (const char *)buf_head(&out));
	buf_free(&out);
}
