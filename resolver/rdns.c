/*
 * rdns.c - the verified name of a client address: the PTR query of the
 * address, then the A (IPv4) or AAAA (IPv6) query of the first name it
 * gives; the name counts only when the address is among the answers
 * (Postfix's "forward-confirmed reverse DNS"). Two queries in a row on
 * the resolver's channel, nothing blocks.
 */
#include "resolver/res_private.h"
#include "common/xmalloc.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Forward answers looked at; a name with more addresses is unusual. */
#define RDNS_MAX_ADDRS 32

struct rdns_job {
	struct res_chan *chan;
	int family;                 /* AF_INET or AF_INET6 */
	unsigned char addr[16];     /* 4 or 16 octets */
	char name[256];             /* the PTR answer, no trailing dot */
	rdns_cb cb;
	void *arg;
};

static void rdns_done(struct rdns_job *job, enum rdns_result res)
{
	rdns_cb cb = job->cb;
	void *arg = job->arg;
	char name[256];

	snprintf(name, sizeof(name), "%s", res == RDNS_VERIFIED ? job->name : "");
	free(job);
	cb(res, name, arg);
}

/* No answer and no such name are facts; everything else is not knowing. */
static enum rdns_result rdns_failure(int status)
{
	return status == ARES_ENOTFOUND || status == ARES_ENODATA ? RDNS_UNVERIFIED
								  : RDNS_TEMPFAIL;
}

static void rdns_forward_answer(void *arg, int status, int timeouts, unsigned char *abuf,
				int alen)
{
	struct rdns_job *job = arg;
	int n = RDNS_MAX_ADDRS;

	(void)timeouts;
	if (status != ARES_SUCCESS) {
		rdns_done(job, rdns_failure(status));
		return;
	}
	if (job->family == AF_INET) {
		struct ares_addrttl v4[RDNS_MAX_ADDRS];
		status = ares_parse_a_reply(abuf, alen, NULL, v4, &n);
		for (int i = 0; status == ARES_SUCCESS && i < n; i++)
			if (memcmp(&v4[i].ipaddr, job->addr, 4) == 0) {
				rdns_done(job, RDNS_VERIFIED);
				return;
			}
	} else {
		struct ares_addr6ttl v6[RDNS_MAX_ADDRS];
		status = ares_parse_aaaa_reply(abuf, alen, NULL, v6, &n);
		for (int i = 0; status == ARES_SUCCESS && i < n; i++)
			if (memcmp(&v6[i].ip6addr, job->addr, 16) == 0) {
				rdns_done(job, RDNS_VERIFIED);
				return;
			}
	}
	rdns_done(job, status == ARES_SUCCESS ? RDNS_UNVERIFIED : rdns_failure(status));
}

static void rdns_ptr_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct rdns_job *job = arg;
	struct hostent *he = NULL;

	(void)timeouts;
	if (status == ARES_SUCCESS)
		status = ares_parse_ptr_reply(abuf, alen, job->addr, job->family == AF_INET ? 4 : 16,
					      job->family, &he);
	if (status != ARES_SUCCESS) {
		rdns_done(job, rdns_failure(status));
		return;
	}
	snprintf(job->name, sizeof(job->name), "%s", he->h_name ? he->h_name : "");
	ares_free_hostent(he);
	size_t len = strlen(job->name);
	if (len > 1 && job->name[len - 1] == '.')
		job->name[len - 1] = '\0';
	/* The name goes into Received: and the log: a host name or nothing. */
	if (!mx_valid_domain(job->name)) {
		rdns_done(job, RDNS_UNVERIFIED);
		return;
	}
	res_query(job->chan, job->name, job->family == AF_INET ? ns_t_a : ns_t_aaaa,
		  rdns_forward_answer, job);
}

/* "4.3.2.1.in-addr.arpa" or the 32 nibbles of "ip6.arpa". */
static void rdns_ptr_name(const struct rdns_job *job, char *out, size_t outsz)
{
	size_t n = 0;

	if (job->family == AF_INET) {
		snprintf(out, outsz, "%u.%u.%u.%u.in-addr.arpa", job->addr[3], job->addr[2],
			 job->addr[1], job->addr[0]);
		return;
	}
	for (int i = 15; i >= 0; i--)
		n += (size_t)snprintf(out + n, outsz - n, "%x.%x.", job->addr[i] & 0xf,
				      job->addr[i] >> 4);
	snprintf(out + n, outsz - n, "ip6.arpa");
}

void rdns_verify(struct resolver *r, const struct sockaddr *sa, rdns_cb cb, void *arg)
{
	struct rdns_job *job = xcalloc(1, sizeof(*job));
	char ptr[80];

	job->cb = cb;
	job->arg = arg;
	if (sa->sa_family == AF_INET) {
		job->family = AF_INET;
		memcpy(job->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			job->family = AF_INET;
			memcpy(job->addr, &a6->s6_addr[12], 4);
		} else {
			job->family = AF_INET6;
			memcpy(job->addr, a6, 16);
		}
	} else {
		rdns_done(job, RDNS_UNVERIFIED);
		return;
	}
	if (r->dying) {
		rdns_done(job, RDNS_TEMPFAIL);
		return;
	}
	rdns_ptr_name(job, ptr, sizeof(ptr));
	job->chan = r->cur;
	res_query(job->chan, ptr, ns_t_ptr, rdns_ptr_answer, job);
}
