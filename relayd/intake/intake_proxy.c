/*
 * intake_proxy.c - the PROXY protocol header in front of a connection on
 * a `listen ... proxy` listener (HAProxy's send-proxy and send-proxy-v2):
 * the parser of both versions, and the wait for the header before the
 * session and its greeting. The header is read without taking an octet
 * past it, so the session finds the socket as a direct client leaves it.
 */
#include "intake_proxy.h"
#include "intake.h"
#include "common/log.h"
#include "common/xmalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How long a balancer has to send its header: it sends it at connect. */
#define PROXY_TIMEOUT_MS 5000

static const uint8_t proxy_v1_sig[] = "PROXY ";
#define PROXY_V1_SIGLEN 6
static const uint8_t proxy_v2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
					 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
#define PROXY_V2_HDRLEN 16

static enum proxy_status proxy_bad(const char **why, const char *text)
{
	*why = text;
	return PROXY_BAD;
}

/* A port of v1: decimal 0-65535 without leading zero. -1 if not one. */
static int proxy_v1_port(const char *s)
{
	size_t n = strlen(s);
	long v = 0;

	if (n == 0 || n > 5 || (s[0] == '0' && n > 1))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v <= 65535 ? (int)v : -1;
}

/* The families of v1 and what their addresses are. */
static const struct proxy_v1_family {
	const char *name;
	int af;
} proxy_v1_families[] = {
	{"TCP4", AF_INET},
	{"TCP6", AF_INET6},
	{"UNKNOWN", AF_UNSPEC},
};

static void proxy_set_src(struct proxy_hdr *h, int af, const void *addr, uint16_t port_be)
{
	memset(&h->src, 0, sizeof(h->src));
	if (af == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&h->src;
		sin->sin_family = AF_INET;
		sin->sin_port = port_be;
		memcpy(&sin->sin_addr, addr, 4);
		h->srclen = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&h->src;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = port_be;
		memcpy(&sin6->sin6_addr, addr, 16);
		h->srclen = sizeof(*sin6);
	}
}

/* "PROXY FAMILY SRC DST SPORT DPORT\r\n", single spaces. */
static enum proxy_status proxy_parse_v1(const uint8_t *p, size_t n, struct proxy_hdr *h,
					const char **why)
{
	/* The CR is at most the 106th octet: the LF makes 107. */
	size_t lim = PROXY_V1_MAX - 1, scan = n < lim ? n : lim;
	const uint8_t *cr = memchr(p, '\r', scan);
	char line[PROXY_V1_MAX], *f[7], *save = NULL;
	size_t nf = 0;

	if (memchr(p, '\n', cr != NULL ? (size_t)(cr - p) : scan) != NULL)
		return proxy_bad(why, "v1 header: LF without CR");
	if (cr == NULL)
		return n >= lim ? proxy_bad(why, "v1 header longer than 107 octets")
					 : PROXY_MORE;
	size_t len = (size_t)(cr - p);
	if (len + 1 >= n)
		return PROXY_MORE;
	if (cr[1] != '\n')
		return proxy_bad(why, "v1 header: CR without LF");
	memcpy(line, p, len);
	line[len] = '\0';
	if (memchr(line, '\0', len) != NULL || strstr(line, "  ") != NULL ||
	    line[len - 1] == ' ')
		return proxy_bad(why, "v1 header: malformed");
	for (char *t = strtok_r(line, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save)) {
		if (nf == 7)
			return proxy_bad(why, "v1 header: too many fields");
		f[nf++] = t;
	}
	const struct proxy_v1_family *fam = NULL;
	for (size_t i = 0; nf >= 2 && i < sizeof(proxy_v1_families) / sizeof(*fam); i++)
		if (strcmp(f[1], proxy_v1_families[i].name) == 0)
			fam = &proxy_v1_families[i];
	if (fam == NULL)
		return proxy_bad(why, "v1 header: unknown family");
	h->version = 1;
	h->len = len + 2;
	/* UNKNOWN: whatever follows is ignored (the specification says so). */
	if (fam->af == AF_UNSPEC) {
		h->local = 1;
		return PROXY_DONE;
	}
	if (nf != 6)
		return proxy_bad(why, "v1 header: wrong number of fields");
	uint8_t src[16], dst[16];
	if (inet_pton(fam->af, f[2], src) != 1 || inet_pton(fam->af, f[3], dst) != 1)
		return proxy_bad(why, "v1 header: address not of its family");
	int sport = proxy_v1_port(f[4]), dport = proxy_v1_port(f[5]);
	if (sport < 0 || dport < 0)
		return proxy_bad(why, "v1 header: bad port");
	h->local = 0;
	proxy_set_src(h, fam->af, src, htons((uint16_t)sport));
	return PROXY_DONE;
}

/* TLVs are not used, but must fit their header's length exactly. */
static int proxy_v2_tlvs_fit(const uint8_t *p, size_t n)
{
	while (n > 0) {
		if (n < 3)
			return 0;
		size_t len = 3 + ((size_t)p[1] << 8 | p[2]);
		if (len > n)
			return 0;
		p += len;
		n -= len;
	}
	return 1;
}

/* The address blocks of v2 by family octet (STREAM only: SMTP is TCP). */
static const struct proxy_v2_family {
	uint8_t code;
	int af;
	size_t addrlen; /* src, dst, sport, dport */
	size_t alen;    /* one address */
} proxy_v2_families[] = {
	{0x00, AF_UNSPEC, 0, 0},
	{0x11, AF_INET, 12, 4},
	{0x21, AF_INET6, 36, 16},
};

static enum proxy_status proxy_parse_v2(const uint8_t *p, size_t n, struct proxy_hdr *h,
					const char **why)
{
	if (n < PROXY_V2_HDRLEN)
		return PROXY_MORE;
	if ((p[12] >> 4) != 2)
		return proxy_bad(why, "v2 header: unknown version");
	if ((p[12] & 0x0f) > 1)
		return proxy_bad(why, "v2 header: unknown command");
	size_t total = PROXY_V2_HDRLEN + ((size_t)p[14] << 8 | p[15]);
	if (total > PROXY_V2_MAX)
		return proxy_bad(why, "v2 header longer than 1024 octets");
	const struct proxy_v2_family *fam = NULL;
	for (size_t i = 0; i < sizeof(proxy_v2_families) / sizeof(*fam); i++)
		if (p[13] == proxy_v2_families[i].code)
			fam = &proxy_v2_families[i];
	int local = (p[12] & 0x0f) == 0;
	/* LOCAL says nothing of the family: the receiver ignores it. */
	if (fam == NULL && !local)
		return proxy_bad(why, "v2 header: unsupported family");
	size_t addrlen = local || fam == NULL ? 0 : fam->addrlen;
	if (total - PROXY_V2_HDRLEN < addrlen)
		return proxy_bad(why, "v2 header: addresses longer than the header");
	if (n < total)
		return PROXY_MORE;
	if (!local && fam->af != AF_UNSPEC &&
	    !proxy_v2_tlvs_fit(p + PROXY_V2_HDRLEN + addrlen, total - PROXY_V2_HDRLEN - addrlen))
		return proxy_bad(why, "v2 header: malformed TLV");
	h->version = 2;
	h->len = total;
	/* PROXY over UNSPEC: the sender knows no address; as LOCAL. */
	h->local = local || fam->af == AF_UNSPEC;
	if (!h->local) {
		const uint8_t *a = p + PROXY_V2_HDRLEN;
		uint16_t port;
		memcpy(&port, a + 2 * fam->alen, 2);
		proxy_set_src(h, fam->af, a, port);
	}
	return PROXY_DONE;
}

enum proxy_status proxy_parse(const uint8_t *p, size_t n, struct proxy_hdr *h,
			      const char **why)
{
	*why = NULL;
	if (n == 0)
		return PROXY_MORE;
	if (memcmp(p, proxy_v1_sig, n < PROXY_V1_SIGLEN ? n : PROXY_V1_SIGLEN) == 0)
		return n < PROXY_V1_SIGLEN ? PROXY_MORE : proxy_parse_v1(p, n, h, why);
	if (memcmp(p, proxy_v2_sig, n < sizeof(proxy_v2_sig) ? n : sizeof(proxy_v2_sig)) == 0)
		return n < sizeof(proxy_v2_sig) ? PROXY_MORE : proxy_parse_v2(p, n, h, why);
	return proxy_bad(why, "no PROXY signature");
}

/* A connection waiting for its header. */
struct intake_proxy_wait {
	struct intake_proxy_wait *next, *prev;
	struct intake *in;
	int fd;
	int mode;
	struct sockaddr_storage peer; /* the balancer */
	socklen_t peerlen;
	char ip[INET6_ADDRSTRLEN];
	struct ev_timer timer;
	size_t have; /* octets of the header read so far */
	uint8_t buf[PROXY_MAX];
};

static void proxy_wait_free(struct intake_proxy_wait *w, int close_fd)
{
	struct intake *in = w->in;

	ev_timer_stop(in->loop, &w->timer);
	ev_io_del(in->loop, w->fd);
	if (close_fd)
		close(w->fd);
	if (w->prev)
		w->prev->next = w->next;
	else
		in->proxy_waits = w->next;
	if (w->next)
		w->next->prev = w->prev;
	in->nproxy_waits--;
	free(w);
}

static void proxy_drop(struct intake_proxy_wait *w, const char *why)
{
	log_info("connection from [%s] closed: %s", w->ip, why);
	w->in->stats.rejected++;
	proxy_wait_free(w, 1);
}

static void proxy_on_timeout(void *arg)
{
	proxy_drop(arg, "no PROXY header in time");
}

/*
 * Peeks at what came, then takes off the socket only octets of the
 * header: all of them while it is incomplete, exactly its length once
 * whole.
 */
static void proxy_on_read(int fd, uint32_t events, void *arg)
{
	struct intake_proxy_wait *w = arg;
	struct proxy_hdr h;
	const char *why;
	(void)events;

	ssize_t r = recv(fd, w->buf + w->have, sizeof(w->buf) - w->have, MSG_PEEK);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (r <= 0) {
		proxy_drop(w, r == 0 ? "closed before its PROXY header" : strerror(errno));
		return;
	}
	enum proxy_status st = proxy_parse(w->buf, w->have + (size_t)r, &h, &why);
	if (st == PROXY_BAD) {
		char text[128];
		snprintf(text, sizeof(text), "bad PROXY header (%s)", why);
		proxy_drop(w, text);
		return;
	}
	size_t take = st == PROXY_MORE ? (size_t)r : h.len - w->have;
	if (recv(fd, w->buf + w->have, take, 0) != (ssize_t)take) {
		proxy_drop(w, "the header could not be read");
		return;
	}
	w->have += take;
	if (st == PROXY_MORE)
		return;
	struct intake *in = w->in;
	struct sockaddr_storage sa;
	socklen_t salen;
	int mode = w->mode;
	if (h.local) {
		memcpy(&sa, &w->peer, sizeof(sa));
		salen = w->peerlen;
	} else {
		memcpy(&sa, &h.src, sizeof(sa));
		salen = h.srclen;
	}
	log_debug("PROXY v%d header from [%s]%s", h.version, w->ip,
		  h.local ? ": no client address; the connection's own stands" : "");
	proxy_wait_free(w, 0);
	intake_admit(in, fd, (struct sockaddr *)&sa, salen, (enum listen_mode)mode);
}

void intake_proxy_accept(struct intake *in, int fd, const struct sockaddr *sa,
			 socklen_t salen, int mode)
{
	struct intake_proxy_wait *w = xcalloc(1, sizeof(*w));
	uint64_t ms = intake_timeout_ms(in);

	w->in = in;
	w->fd = fd;
	w->mode = mode;
	memcpy(&w->peer, sa, salen < sizeof(w->peer) ? salen : sizeof(w->peer));
	w->peerlen = salen;
	if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, w->ip,
			  sizeof(w->ip));
	else
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, w->ip,
			  sizeof(w->ip));
	if (ev_io_add(in->loop, fd, EPOLLIN, proxy_on_read, w) < 0) {
		log_warnx("cannot watch the connection from [%s]: %s", w->ip, strerror(errno));
		close(fd);
		free(w);
		return;
	}
	w->next = in->proxy_waits;
	if (w->next)
		w->next->prev = w;
	in->proxy_waits = w;
	in->nproxy_waits++;
	ev_timer_init(&w->timer, proxy_on_timeout, w);
	ev_timer_start(in->loop, &w->timer, ms < PROXY_TIMEOUT_MS ? ms : PROXY_TIMEOUT_MS);
}

void intake_proxy_stop(struct intake *in)
{
	while (in->proxy_waits != NULL)
		proxy_wait_free(in->proxy_waits, 1);
}
