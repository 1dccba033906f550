/*
 * mx_resolve.c - where mail for a domain goes: the MX query, then A and
 * AAAA for every host at once (asked separately, so that a temporary
 * failure of one is never taken for "no address"), then the ranking rules
 * of mx_rank.c. Every answer is also written to the plan's trace.
 */
#include "resolver/res_private.h"
#include "common/buf.h"
#include "common/idn.h"
#include "common/xmalloc.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Addresses kept per host and family; more is a misconfiguration. */
#define MX_MAX_ADDRS 16

/* What an answer means for us, whatever c-ares version produced it. */
enum mx_answer { MX_ANS_DATA, MX_ANS_NODATA, MX_ANS_NXDOMAIN, MX_ANS_TEMP };

struct mx_job;

/* One A or AAAA query of one host. */
struct mx_lookup {
	struct mx_job *job;
	size_t host;
	int type;                 /* ns_t_a or ns_t_aaaa */
	enum mx_answer ans;
	union {
		struct ares_addrttl v4[MX_MAX_ADDRS];
		struct ares_addr6ttl v6[MX_MAX_ADDRS];
	} u;
	int naddrs;
	char canon[256];          /* the CNAME target, when the name was an alias */
	char error[128];
};

struct mx_job {
	struct resolver *r;
	struct res_chan *chan;    /* every query of the job goes to one channel */
	struct mx_plan *plan;
	char domain[256];         /* without a trailing dot */
	uint16_t port;
	mx_cb cb;
	void *arg;
	struct buf trace;
	struct mx_lookup *lookups; /* two per host: A then AAAA */
	size_t pending;
};

static const char *mx_type_name(int type)
{
	return type == ns_t_mx ? "MX" : type == ns_t_a ? "A" : "AAAA";
}

/* c-ares status of a query to what it means: see "Lessons from the anchors". */
static enum mx_answer mx_classify(int status)
{
	switch (status) {
	case ARES_SUCCESS:
		return MX_ANS_DATA;
	case ARES_ENODATA:
		return MX_ANS_NODATA;
	case ARES_ENOTFOUND:
		return MX_ANS_NXDOMAIN;
	default: /* SERVFAIL (ECONNREFUSED in 1.18), timeout, refused, bad reply... */
		return MX_ANS_TEMP;
	}
}

static void mx_trace_fail(struct buf *t, const char *name, int type, enum mx_answer ans,
			  const char *why)
{
	static const char *const what[] = {
		[MX_ANS_NODATA] = "no records",
		[MX_ANS_NXDOMAIN] = "NXDOMAIN",
		[MX_ANS_TEMP] = "temporary failure",
	};
	buf_appendf(t, "%s. %s (%s%s%s)\n", name, mx_type_name(type), what[ans],
		    why ? ": " : "", why ? why : "");
}

/* The end of a job: trace, ranking verdict, the one call of cb. */
static void mx_job_done(struct mx_job *job)
{
	struct mx_plan *plan = job->plan;
	struct mx_self self = { job->r->hostname, job->r->self, job->r->nself };

	for (size_t i = 0; job->lookups != NULL && i < plan->nhosts * 2; i++) {
		struct mx_lookup *lk = &job->lookups[i];
		struct mx_host *h = &plan->hosts[lk->host];
		/* One CNAME line per host, from whichever of its lookups saw it. */
		if (lk->canon[0] != '\0' && (i % 2 == 0 || job->lookups[i - 1].canon[0] == '\0'))
			buf_appendf(&job->trace, "%s. CNAME %s.\n", h->name, lk->canon);
		for (int k = 0; k < lk->naddrs; k++) {
			union {
				struct sockaddr sa;
				struct sockaddr_in sin;
				struct sockaddr_in6 sin6;
			} u;
			memset(&u, 0, sizeof(u));
			if (lk->type == ns_t_a) {
				u.sin.sin_family = AF_INET;
				u.sin.sin_addr = lk->u.v4[k].ipaddr;
			} else {
				u.sin6.sin6_family = AF_INET6;
				memcpy(&u.sin6.sin6_addr, &lk->u.v6[k].ip6addr, 16);
			}
			mx_host_add_addr(h, &u.sa, job->port);
			buf_appendf(&job->trace, "%s. %s %s\n", h->name, mx_type_name(lk->type),
				    h->addrs[h->naddrs - 1].text);
		}
		if (lk->ans != MX_ANS_DATA)
			mx_trace_fail(&job->trace, h->name, lk->type, lk->ans,
				      lk->error[0] ? lk->error : NULL);
		if (lk->ans == MX_ANS_TEMP)
			h->addr_tempfail = 1;
	}
	/* A host with an address is usable, whatever else failed for it. */
	for (size_t i = 0; i < plan->nhosts; i++)
		if (plan->hosts[i].naddrs > 0)
			plan->hosts[i].addr_tempfail = 0;
	mx_plan_finish(plan, job->domain, &self);

	buf_append(&job->trace, "", 1); /* the NUL; also gives a literal's empty trace a buffer */
	plan->trace = xstrdup((const char *)buf_head(&job->trace));
	buf_free(&job->trace);
	free(job->lookups);
	mx_cb cb = job->cb;
	void *arg = job->arg;
	free(job);
	cb(plan, arg);
}

static void mx_addr_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct mx_lookup *lk = arg;
	struct mx_job *job = lk->job;
	const char *name = job->plan->hosts[lk->host].name;
	struct hostent *he = NULL;
	int n = MX_MAX_ADDRS;

	(void)timeouts;
	lk->ans = mx_classify(status);
	if (lk->ans == MX_ANS_DATA) {
		status = lk->type == ns_t_a ?
			ares_parse_a_reply(abuf, alen, &he, lk->u.v4, &n) :
			ares_parse_aaaa_reply(abuf, alen, &he, lk->u.v6, &n);
		lk->ans = mx_classify(status);
		lk->naddrs = status == ARES_SUCCESS ? n : 0;
		if (status == ARES_SUCCESS && n == 0)
			lk->ans = MX_ANS_NODATA; /* e.g. only a CNAME to a name without one */
		if (he != NULL && he->h_name != NULL && strcasecmp(he->h_name, name) != 0)
			snprintf(lk->canon, sizeof(lk->canon), "%s", he->h_name);
		if (he != NULL)
			ares_free_hostent(he);
	}
	if (lk->ans == MX_ANS_TEMP)
		snprintf(lk->error, sizeof(lk->error), "%s", ares_strerror(status));
	if (--job->pending == 0)
		mx_job_done(job);
}

/* A and AAAA of every host in the plan, all in flight together. */
static void mx_lookup_hosts(struct mx_job *job)
{
	size_t n = job->plan->nhosts * 2;
	struct mx_lookup *lks;

	lks = job->lookups = xcalloc(n, sizeof(*lks));
	job->pending = n;
	for (size_t i = 0; i < n; i++) {
		lks[i].job = job;
		lks[i].host = i / 2;
		lks[i].type = i % 2 ? ns_t_aaaa : ns_t_a;
	}
	/* The last answer may end the job (and free it) inside res_query. */
	for (size_t i = 0; i < n; i++)
		res_query(job->chan, job->plan->hosts[lks[i].host].name, lks[i].type, mx_addr_answer,
			  &lks[i]);
}

static void mx_mx_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct mx_job *job = arg;
	struct ares_mx_reply *mx = NULL;
	struct mx_rr *rrs = NULL;
	size_t n = 0;
	enum mx_answer ans;

	(void)timeouts;
	job->pending--;
	ans = mx_classify(status);
	if (ans == MX_ANS_DATA) {
		status = ares_parse_mx_reply(abuf, alen, &mx);
		ans = mx_classify(status);
	}
	for (struct ares_mx_reply *m = mx; m != NULL; m = m->next)
		n++;
	/* 1.18 parses an answer holding only a CNAME as an empty list: no MX. */
	if (ans == MX_ANS_DATA && n == 0)
		ans = MX_ANS_NODATA;

	switch (ans) {
	case MX_ANS_DATA:
		rrs = xcalloc(n, sizeof(*rrs));
		n = 0;
		for (struct ares_mx_reply *m = mx; m != NULL; m = m->next) {
			rrs[n].pref = m->priority;
			rrs[n].host = m->host;
			buf_appendf(&job->trace, "%s. MX %u %s%s\n", job->domain, m->priority,
				    m->host, strcmp(m->host, ".") ? "." : "");
			n++;
		}
		mx_plan_set_mx(job->plan, job->domain, rrs, n, NULL);
		break;
	case MX_ANS_NODATA:
		mx_trace_fail(&job->trace, job->domain, ns_t_mx, ans, "implicit MX");
		mx_plan_set_mx(job->plan, job->domain, NULL, 0, NULL);
		break;
	case MX_ANS_NXDOMAIN:
		mx_trace_fail(&job->trace, job->domain, ns_t_mx, ans, NULL);
		mx_plan_fail(job->plan, MX_PERMFAIL, "5.1.2", "domain %s does not exist",
			     job->domain);
		break;
	case MX_ANS_TEMP:
		mx_trace_fail(&job->trace, job->domain, ns_t_mx, ans, ares_strerror(status));
		mx_plan_fail(job->plan, MX_TEMPFAIL, "4.4.3",
			     "temporary failure looking up the MX of %s: %s", job->domain,
			     ares_strerror(status));
		break;
	}
	free(rrs);
	if (mx != NULL)
		ares_free_data(mx);
	if (job->plan->status == MX_OK)
		mx_lookup_hosts(job);
	else
		mx_job_done(job);
}

/* Answers that need no DNS: a literal, a numeric next hop, a bad name. */
static int mx_resolve_local(struct mx_job *job, const char *domain, int no_mx)
{
	struct mx_plan *plan = job->plan;
	struct mx_addr lit;
	int rc = mx_parse_literal(domain, job->port, &lit);

	if (rc == 0 && no_mx) {
		/* A [host] next hop may be a bare address: "[::1]:2525" arrives as "::1". */
		char br[300];
		snprintf(br, sizeof(br), "[%s]", domain);
		if (mx_parse_literal(br, job->port, &lit) == 1)
			rc = 1;
	}
	if (rc == 1) {
		struct mx_host *h = mx_plan_add_host(plan, domain, 0);
		mx_host_add_addr(h, (struct sockaddr *)&lit.ss, job->port);
		return 1;
	}
	if (rc < 0) {
		mx_plan_fail(plan, MX_PERMFAIL, "5.1.2", "bad address literal %s", domain);
		return 1;
	}
	if (!mx_valid_domain(domain)) {
		mx_plan_fail(plan, MX_PERMFAIL, "5.1.2", "bad destination domain %s", domain);
		return 1;
	}
	if (job->r->dying) {
		mx_plan_fail(plan, MX_TEMPFAIL, "4.4.3", "resolver shutting down");
		return 1;
	}
	return 0;
}

void mx_resolve(struct resolver *r, const char *domain, int no_mx, uint16_t port, mx_cb cb,
		void *arg)
{
	struct mx_job *job = xcalloc(1, sizeof(*job));
	size_t len;

	job->r = r;
	job->plan = mx_plan_new();
	job->port = port;
	job->cb = cb;
	job->arg = arg;
	buf_init(&job->trace);
	snprintf(job->domain, sizeof(job->domain), "%s", domain);
	len = strlen(job->domain);
	if (len > 1 && job->domain[len - 1] == '.')
		job->domain[len - 1] = '\0';

	/* The DNS knows an internationalized name by its A-labels only. */
	if (!idn_is_ascii(job->domain)) {
		char err[128];
		if (idn_domain_to_ascii(domain, job->domain, sizeof(job->domain), err,
					sizeof(err)) < 0) {
			mx_plan_fail(job->plan, MX_PERMFAIL, "5.1.2",
				     "bad destination domain %s (IDNA2008: %s)", domain, err);
			mx_job_done(job);
			return;
		}
		len = strlen(job->domain);
		if (len > 1 && job->domain[len - 1] == '.')
			job->domain[len - 1] = '\0';
	}
	if (mx_resolve_local(job, job->domain, no_mx)) {
		mx_job_done(job);
		return;
	}
	job->chan = r->cur;
	res_enter(r);
	if (no_mx) {
		mx_plan_add_host(job->plan, job->domain, 0);
		mx_lookup_hosts(job);
	} else {
		job->pending = 1;
		res_query(job->chan, job->domain, ns_t_mx, mx_mx_answer, job);
	}
	res_leave(r);
}
