/*
 * config_grammar.c - the directives of relayd.conf: one table that gives
 * each its argument count and its parser, and the parsers. Adding a
 * directive is a row here, a field in struct config and, when it has one, a
 * default in config_defaults.
 */
#include "config_parse.h"
#include "log.h"
#include "pkey.h"
#include "xmalloc.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <unistd.h>

/* Names of enum values as written in the file. */
struct cfg_name {
	const char *name;
	int value;
};

static const struct cfg_name cfg_listen_modes[] = {
	{"smtp", LISTEN_SMTP}, {"submission", LISTEN_SUBMISSION}, {"smtps", LISTEN_SMTPS},
	{NULL, 0},
};

static const struct cfg_name cfg_hop_tls[] = {
	{"none", TLS_POLICY_NONE}, {"may", TLS_POLICY_MAY}, {"starttls", TLS_POLICY_STARTTLS},
	{"smtps", TLS_POLICY_SMTPS}, {"verify", TLS_POLICY_VERIFY}, {NULL, 0},
};

static const struct cfg_name cfg_outbound_tls[] = {
	{"none", TLS_POLICY_NONE}, {"may", TLS_POLICY_MAY}, {"verify", TLS_POLICY_VERIFY},
	{NULL, 0},
};

static int cfg_lookup(const struct cfg_name *names, const char *s, int *value)
{
	for (; names->name; names++)
		if (strcmp(names->name, s) == 0) {
			*value = names->value;
			return 0;
		}
	return -1;
}

static void *cfg_field(struct cfg_state *st, const struct cfg_directive *d)
{
	return (char *)st->cfg + d->off;
}

void cfg_lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

/* Parsers shared by several directives (the field is d->off). */

/* A decimal number in d's range; reports the error itself. */
static int cfg_number(struct cfg_state *st, const struct cfg_directive *d, const char *s,
		      unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (!isdigit((unsigned char)s[0]) || *end != '\0' || errno || v < d->lo || v > d->hi) {
		cfg_err(st, "%s: \"%s\" is not a number from %llu to %llu", d->name, s,
			(unsigned long long)d->lo, (unsigned long long)d->hi);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

static void cfg_set_number(struct cfg_state *st, const struct cfg_directive *d, int argc,
			   char **argv)
{
	unsigned v;
	(void)argc;
	if (cfg_number(st, d, argv[0], &v) == 0)
		*(unsigned *)cfg_field(st, d) = v;
}

static void cfg_set_duration(struct cfg_state *st, const struct cfg_directive *d, int argc,
			     char **argv)
{
	unsigned v;
	(void)argc;
	if (config_parse_duration(argv[0], &v) < 0) {
		cfg_err(st, "%s: \"%s\" is not a duration (like 30s, 5m, 4h, 5d)", d->name,
			argv[0]);
		return;
	}
	if (v < d->lo || v > d->hi) {
		cfg_err(st, "%s: %s is out of range (%llus to %llus)", d->name, argv[0],
			(unsigned long long)d->lo, (unsigned long long)d->hi);
		return;
	}
	*(unsigned *)cfg_field(st, d) = v;
}

static void cfg_set_size(struct cfg_state *st, const struct cfg_directive *d, int argc,
			 char **argv)
{
	uint64_t v;
	(void)argc;
	if (config_parse_size(argv[0], &v) < 0) {
		cfg_err(st, "%s: \"%s\" is not a size (like 512K, 35M, 1G)", d->name, argv[0]);
		return;
	}
	if (v < d->lo || v > d->hi) {
		cfg_err(st, "%s: %s is out of range (%llu to %llu bytes)", d->name, argv[0],
			(unsigned long long)d->lo, (unsigned long long)d->hi);
		return;
	}
	*(uint64_t *)cfg_field(st, d) = v;
}

/* A file relayd reads later (certificates, keys, password lists). */
static void cfg_set_file(struct cfg_state *st, const struct cfg_directive *d, int argc,
			 char **argv)
{
	char **field = cfg_field(st, d);
	(void)argc;
	if (cfg_file(st, argv[0]) == NULL && st->given == NULL) {
		cfg_err(st, "%s: cannot read %s: %s", d->name, argv[0], strerror(errno));
		return;
	}
	free(*field);
	*field = xstrdup(argv[0]);
}

/* The directives with parsers of their own. */

static void cfg_hostname(struct cfg_state *st, const struct cfg_directive *d, int argc,
			 char **argv)
{
	(void)argc;
	if (!config_valid_hostname(argv[0])) {
		cfg_err(st, "%s: \"%s\" is not a valid host name", d->name, argv[0]);
		return;
	}
	snprintf(st->cfg->hostname, sizeof(st->cfg->hostname), "%s", argv[0]);
	cfg_lower(st->cfg->hostname);
}

int cfg_listen_addr(const char *s, struct cfg_listen *l)
{
	char host[INET6_ADDRSTRLEN];
	int bracketed;
	uint16_t port = 0;

	if (config_parse_hostport(s, host, sizeof(host), &bracketed, &port) < 0 || port == 0)
		return -1;
	memset(&l->addr, 0, sizeof(l->addr));
	if (!bracketed) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&l->addr;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		if (strcmp(host, "*") == 0)
			sin->sin_addr.s_addr = htonl(INADDR_ANY);
		else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return -1;
		l->addrlen = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&l->addr;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -1;
		l->addrlen = sizeof(*sin6);
	}
	return 0;
}

static void cfg_listen(struct cfg_state *st, const struct cfg_directive *d, int argc,
		       char **argv)
{
	struct config *cfg = st->cfg;
	struct cfg_listen l;
	int mode = LISTEN_SMTP;

	/* The default listener gives way to the first line written. */
	if (st->first)
		cfg->nlistens = 0;
	memset(&l, 0, sizeof(l));
	if (strlen(argv[0]) >= sizeof(l.text) || cfg_listen_addr(argv[0], &l) < 0) {
		cfg_err(st, "%s: \"%s\" is not ADDR:PORT (IPv6 as [::1]:2525)", d->name, argv[0]);
		return;
	}
	if (argc > 1 && cfg_lookup(cfg_listen_modes, argv[1], &mode) < 0) {
		cfg_err(st, "%s: unknown mode \"%s\" (smtp, submission or smtps)", d->name,
			argv[1]);
		return;
	}
	if (argc > 2 && strcmp(argv[2], "proxy") != 0) {
		cfg_err(st, "%s: unknown flag \"%s\" (proxy)", d->name, argv[2]);
		return;
	}
	l.proxy = argc > 2;
	for (size_t i = 0; i < cfg->nlistens; i++)
		if (cfg->listens[i].addrlen == l.addrlen &&
		    memcmp(&cfg->listens[i].addr, &l.addr, l.addrlen) == 0) {
			cfg_err(st, "%s: %s is already listened on", d->name, argv[0]);
			return;
		}
	l.mode = (enum listen_mode)mode;
	snprintf(l.text, sizeof(l.text), "%s", argv[0]);
	if (l.mode == LISTEN_SMTPS && st->smtps_line == 0)
		st->smtps_line = st->line;
	cfg->listens = xreallocarray(cfg->listens, cfg->nlistens + 1, sizeof(*cfg->listens));
	cfg->listens[cfg->nlistens++] = l;
}

/* metrics-listen ADDR:PORT: the master's Prometheus endpoint. */
static void cfg_metrics_listen(struct cfg_state *st, const struct cfg_directive *d, int argc,
			       char **argv)
{
	struct cfg_listen *l = &st->cfg->metrics_listen;
	(void)argc;
	memset(l, 0, sizeof(*l));
	if (strlen(argv[0]) >= sizeof(l->text) || cfg_listen_addr(argv[0], l) < 0) {
		cfg_err(st, "%s: \"%s\" is not ADDR:PORT (IPv6 as [::1]:9425)", d->name, argv[0]);
		l->addrlen = 0;
		return;
	}
	snprintf(l->text, sizeof(l->text), "%s", argv[0]);
}

static void cfg_state_dir(struct cfg_state *st, const struct cfg_directive *d, int argc,
			  char **argv)
{
	struct sockaddr_un sun;
	char cwd[4096];
	const char *rel = argv[0];
	char *dir;
	(void)argc;

	while (strncmp(rel, "./", 2) == 0)
		rel += 2 + strspn(rel + 2, "/");

	/* Made absolute now: "relative to where relayd was started". */
	if (argv[0][0] == '/')
		dir = xstrdup(argv[0]);
	else if (getcwd(cwd, sizeof(cwd)) == NULL) {
		cfg_err(st, "%s: cannot resolve %s: %s", d->name, argv[0], strerror(errno));
		return;
	} else if (asprintf(&dir, "%s/%s", cwd, rel) < 0)
		fatal("asprintf: out of memory");
	/* Its sockets must fit a Unix socket address. */
	if (strlen(dir) + sizeof("/control.sock") > sizeof(sun.sun_path)) {
		cfg_err(st, "%s: %s is too long for a Unix socket path", d->name, dir);
		free(dir);
		return;
	}
	free(st->cfg->state_dir);
	st->cfg->state_dir = dir;
}

static void cfg_user(struct cfg_state *st, const struct cfg_directive *d, int argc,
		     char **argv)
{
	(void)argc;
	if (getpwnam(argv[0]) == NULL) {
		cfg_err(st, "%s: unknown user \"%s\"", d->name, argv[0]);
		return;
	}
	free(st->cfg->user);
	st->cfg->user = xstrdup(argv[0]);
}

static void cfg_control_group(struct cfg_state *st, const struct cfg_directive *d, int argc,
			      char **argv)
{
	(void)argc;
	struct group *gr = getgrnam(argv[0]);
	if (gr == NULL) {
		cfg_err(st, "%s: unknown group \"%s\"", d->name, argv[0]);
		return;
	}
	st->cfg->control_gid = gr->gr_gid;
	free(st->cfg->control_group);
	st->cfg->control_group = xstrdup(argv[0]);
}

static void cfg_mynetworks(struct cfg_state *st, const struct cfg_directive *d, int argc,
			   char **argv)
{
	struct config *cfg = st->cfg;

	/* The default networks give way to the first line written. */
	if (st->first)
		cfg->nmynetworks = 0;
	for (int i = 0; i < argc; i++) {
		struct cfg_cidr c;
		if (config_parse_cidr(argv[i], &c) < 0) {
			cfg_err(st, "%s: \"%s\" is not a network (like 10.0.0.0/8 or ::1/128)",
				d->name, argv[i]);
			continue;
		}
		cfg->mynetworks = xreallocarray(cfg->mynetworks, cfg->nmynetworks + 1,
						sizeof(*cfg->mynetworks));
		cfg->mynetworks[cfg->nmynetworks++] = c;
	}
}

/* "example.org" or "*.example.org": returns the name after "*.", or NULL. */
static const char *cfg_domain_pattern(const char *s, int *subdomains)
{
	*subdomains = strncmp(s, "*.", 2) == 0;
	const char *name = *subdomains ? s + 2 : s;
	return config_valid_hostname(name) ? name : NULL;
}

static void cfg_relay_domains(struct cfg_state *st, const struct cfg_directive *d, int argc,
			      char **argv)
{
	struct config *cfg = st->cfg;
	int sub;

	for (int i = 0; i < argc; i++) {
		if (cfg_domain_pattern(argv[i], &sub) == NULL) {
			cfg_err(st, "%s: \"%s\" is not a domain", d->name, argv[i]);
			continue;
		}
		cfg->relay_domains = xreallocarray(cfg->relay_domains, cfg->nrelay_domains + 1,
						   sizeof(*cfg->relay_domains));
		cfg->relay_domains[cfg->nrelay_domains] = xstrdup(argv[i]);
		cfg_lower(cfg->relay_domains[cfg->nrelay_domains++]);
	}
}

static void cfg_delivery_port(struct cfg_state *st, const struct cfg_directive *d, int argc,
			      char **argv)
{
	unsigned port;
	(void)argc;
	if (cfg_number(st, d, argv[0], &port) == 0)
		st->cfg->delivery_port = (uint16_t)port;
}

static void cfg_dns_server(struct cfg_state *st, const struct cfg_directive *d, int argc,
			   char **argv)
{
	struct config *cfg = st->cfg;

	for (int i = 0; i < argc; i++) {
		struct cfg_dns_server s = {.port = 53};
		uint8_t a[16];
		int bracketed;
		int bad = config_parse_hostport(argv[i], s.addr, sizeof(s.addr), &bracketed,
						&s.port) < 0;
		if (bad || (inet_pton(AF_INET, s.addr, a) != 1 &&
			    inet_pton(AF_INET6, s.addr, a) != 1)) {
			cfg_err(st, "%s: \"%s\" is not an IP address with an optional port", d->name,
				argv[i]);
			continue;
		}
		cfg->dns_servers = xreallocarray(cfg->dns_servers, cfg->ndns_servers + 1,
						 sizeof(*cfg->dns_servers));
		cfg->dns_servers[cfg->ndns_servers++] = s;
	}
}

void cfg_hop_free(struct cfg_nexthop *hop)
{
	free(hop->auth_file);
	free(hop->auth_user);
	if (hop->auth_pass)
		explicit_bzero(hop->auth_pass, strlen(hop->auth_pass));
	free(hop->auth_pass);
	hop->auth_file = hop->auth_user = hop->auth_pass = NULL;
}

/* auth=FILE: one line "username password", read now so that errors show. */
static int cfg_read_auth(struct cfg_state *st, const char *name, struct cfg_nexthop *hop,
			 const char *file)
{
	char *user = NULL, *pass = NULL, *save = NULL;
	const struct cfg_file *f = cfg_file(st, file);

	if (f == NULL && st->given != NULL) {
		/* A worker without the credentials: its role does not send them. */
		hop->auth_file = xstrdup(file);
		return 0;
	}
	if (f == NULL) {
		cfg_err(st, "%s: auth=%s: cannot open: %s", name, file, strerror(errno));
		return -1;
	}
	char *text = xstrdup(f->data);
	for (char *p = strtok_r(text, "\n", &save); p; p = strtok_r(NULL, "\n", &save)) {
		p += strspn(p, " \t");
		size_t n = strlen(p);
		while (n > 0 && isspace((unsigned char)p[n - 1]))
			p[--n] = '\0';
		if (n == 0)
			continue;
		if (user != NULL || strlen(p) != n)
			goto malformed;
		size_t ulen = strcspn(p, " \t");
		char *rest = p + ulen + strspn(p + ulen, " \t");
		if (p[ulen] == '\0' || *rest == '\0')
			goto malformed;
		user = xstrndup(p, ulen);
		pass = xstrdup(rest);
	}
	if (user == NULL || strlen(f->data) != f->len)
		goto malformed;
	hop->auth_file = xstrdup(file);
	hop->auth_user = user;
	hop->auth_pass = pass;
	explicit_bzero(text, f->len);
	free(text);
	return 0;
malformed:
	cfg_err(st, "%s: auth=%s: expected one line \"username password\"", name, file);
	if (pass)
		explicit_bzero(pass, strlen(pass));
	free(user);
	free(pass);
	explicit_bzero(text, f->len);
	free(text);
	return -1;
}

/* rate=N/PERIOD of a next hop, or destination-rate's N/PERIOD. */
static int cfg_rate(struct cfg_state *st, const char *name, const char *s, struct cfg_rate *rate)
{
	if (config_parse_rate(s, rate) == 0)
		return 0;
	cfg_err(st, "%s: \"%s\" is not a rate (N/s, N/m or N/h; at most 1000/s)", name, s);
	return -1;
}

/* NEXTHOP [tls=POLICY] [auth=FILE] [rate=N/PERIOD] of smarthost, route and sender-route. */
static int cfg_parse_hop(struct cfg_state *st, const char *name, int argc, char **argv,
			 struct cfg_nexthop *hop)
{
	const char *auth = NULL;

	if (config_parse_nexthop(argv[0], hop) < 0) {
		cfg_err(st, "%s: \"%s\" is not a next hop ([host]:port or host:port)", name,
			argv[0]);
		return -1;
	}
	for (int i = 1; i < argc; i++) {
		int policy;
		if (strncmp(argv[i], "tls=", 4) == 0 && !hop->tls_set) {
			if (cfg_lookup(cfg_hop_tls, argv[i] + 4, &policy) < 0) {
				cfg_err(st, "%s: unknown %s (none, may, starttls, smtps or verify)",
					name, argv[i]);
				return -1;
			}
			hop->tls = (enum tls_policy)policy;
			hop->tls_set = 1;
		} else if (strncmp(argv[i], "auth=", 5) == 0 && auth == NULL && argv[i][5]) {
			auth = argv[i] + 5;
		} else if (strncmp(argv[i], "rate=", 5) == 0 && hop->rate.n == 0) {
			if (cfg_rate(st, name, argv[i] + 5, &hop->rate) < 0)
				return -1;
		} else {
			cfg_err(st, "%s: unexpected \"%s\" (tls=POLICY, auth=FILE or rate=N/PERIOD, "
				"once each)", name, argv[i]);
			return -1;
		}
	}
	if (auth == NULL)
		return 0;
	if (hop->tls_set && hop->tls == TLS_POLICY_NONE) {
		cfg_err(st, "%s: auth= with tls=none: credentials are only sent over TLS", name);
		return -1;
	}
	return cfg_read_auth(st, name, hop, auth);
}

static void cfg_smarthost(struct cfg_state *st, const struct cfg_directive *d, int argc,
			  char **argv)
{
	struct config *cfg = st->cfg;
	struct cfg_nexthop hop;

	if (cfg_parse_hop(st, d->name, argc, argv, &hop) < 0) {
		cfg_hop_free(&hop);
		return;
	}
	/* The smarthosts are one destination (tried in order): one rate for all. */
	struct cfg_rate r = config_smarthost_rate(cfg);
	if (hop.rate.n > 0 && r.n > 0 && (r.n != hop.rate.n || r.period != hop.rate.period)) {
		char a[32], b[32];
		config_rate_text(&hop.rate, a, sizeof(a));
		config_rate_text(&r, b, sizeof(b));
		cfg_err(st, "%s: rate=%s differs from the rate=%s of an earlier smarthost line: the "
			"smarthosts share one rate", d->name, a, b);
		cfg_hop_free(&hop);
		return;
	}
	cfg->smarthosts = xreallocarray(cfg->smarthosts, cfg->nsmarthosts + 1,
					sizeof(*cfg->smarthosts));
	cfg->smarthosts[cfg->nsmarthosts++] = hop;
}

static void cfg_route(struct cfg_state *st, const struct cfg_directive *d, int argc,
		      char **argv)
{
	struct config *cfg = st->cfg;
	struct cfg_route r;
	const char *domain = cfg_domain_pattern(argv[0], &r.subdomains);

	if (domain == NULL) {
		cfg_err(st, "%s: \"%s\" is not a domain or *.domain", d->name, argv[0]);
		return;
	}
	for (size_t i = 0; i < cfg->nroutes; i++)
		if (cfg->routes[i].subdomains == r.subdomains &&
		    strcasecmp(cfg->routes[i].domain, domain) == 0) {
			cfg_err(st, "%s: a route for %s is already set", d->name, argv[0]);
			return;
		}
	if (cfg_parse_hop(st, d->name, argc - 1, argv + 1, &r.hop) < 0) {
		cfg_hop_free(&r.hop);
		return;
	}
	r.domain = xstrdup(domain);
	cfg_lower(r.domain);
	cfg->routes = xreallocarray(cfg->routes, cfg->nroutes + 1, sizeof(*cfg->routes));
	cfg->routes[cfg->nroutes++] = r;
}

/* sender-route PATTERN NEXTHOP [tls=] [auth=] [rate=]: first match in the order written. */
static void cfg_sender_route(struct cfg_state *st, const struct cfg_directive *d, int argc,
			     char **argv)
{
	struct config *cfg = st->cfg;
	struct cfg_sender_route r;

	memset(&r, 0, sizeof(r));
	if (addr_pattern_parse(argv[0], &r.pat) < 0) {
		cfg_err(st, "%s: bad pattern \"%s\" (user@domain, @domain or @.domain)", d->name,
			argv[0]);
		return;
	}
	r.pattern = xstrdup(argv[0]);
	cfg_lower(r.pattern);
	for (size_t i = 0; i < cfg->nsender_routes; i++)
		if (strcmp(cfg->sender_routes[i].pattern, r.pattern) == 0) {
			cfg_err(st, "%s: a sender-route for %s is already set", d->name, argv[0]);
			goto fail;
		}
	if (cfg_parse_hop(st, d->name, argc - 1, argv + 1, &r.hop) < 0)
		goto fail;
	cfg->sender_routes = xreallocarray(cfg->sender_routes, cfg->nsender_routes + 1,
					   sizeof(*cfg->sender_routes));
	cfg->sender_routes[cfg->nsender_routes++] = r;
	return;
fail:
	cfg_hop_free(&r.hop);
	addr_pattern_free(&r.pat);
	free(r.pattern);
}

static void cfg_dkim_sign(struct cfg_state *st, const struct cfg_directive *d, int argc,
			  char **argv)
{
	struct config *cfg = st->cfg;
	struct cfg_dkim k;
	const char *domain = cfg_domain_pattern(argv[0], &k.subdomains);
	(void)argc;

	if (domain == NULL) {
		cfg_err(st, "%s: \"%s\" is not a domain or *.domain", d->name, argv[0]);
		return;
	}
	if (!config_valid_hostname(argv[1])) {
		cfg_err(st, "%s: \"%s\" is not a selector", d->name, argv[1]);
		return;
	}
	/* Checked where it is read (the master), so `relayd -n` and reload see it. */
	const struct cfg_file *f = cfg_file(st, argv[2]);
	if (f == NULL && st->given == NULL) {
		cfg_err(st, "%s: cannot read %s: %s", d->name, argv[2], strerror(errno));
		return;
	}
	if (f != NULL) {
		EVP_PKEY *key = pkey_from_pem(f->data, f->len);
		const char *why = pkey_dkim_problem(key);
		EVP_PKEY_free(key);
		if (why != NULL) {
			cfg_err(st, "%s: %s: %s", d->name, argv[2], why);
			return;
		}
	}
	k.domain = xstrdup(domain);
	cfg_lower(k.domain);
	k.selector = xstrdup(argv[1]);
	k.keyfile = xstrdup(argv[2]);
	cfg->dkim = xreallocarray(cfg->dkim, cfg->ndkim + 1, sizeof(*cfg->dkim));
	cfg->dkim[cfg->ndkim++] = k;
}

static void cfg_outbound(struct cfg_state *st, const struct cfg_directive *d, int argc,
			 char **argv)
{
	int policy;
	(void)argc;
	if (cfg_lookup(cfg_outbound_tls, argv[0], &policy) < 0) {
		cfg_err(st, "%s: unknown policy \"%s\" (none, may or verify)", d->name, argv[0]);
		return;
	}
	st->cfg->outbound_tls = (enum tls_policy)policy;
}

static void cfg_destination_rate(struct cfg_state *st, const struct cfg_directive *d, int argc,
				 char **argv)
{
	(void)argc;
	cfg_rate(st, d->name, argv[0], &st->cfg->destination_rate);
}

/* N [WINDOW]: the number in d's range, the window a duration of 1s..1d. */
static void cfg_auth_fail_limit(struct cfg_state *st, const struct cfg_directive *d, int argc,
				char **argv)
{
	unsigned n, window = CFG_AUTH_FAIL_WINDOW;

	if (cfg_number(st, d, argv[0], &n) < 0)
		return;
	if (argc > 1 && (config_parse_duration(argv[1], &window) < 0 || window < 1 ||
			 window > 86400)) {
		cfg_err(st, "%s: \"%s\" is not a window from 1s to 1d (like 10m)", d->name,
			argv[1]);
		return;
	}
	st->cfg->auth_fail_limit = n;
	st->cfg->auth_fail_window = window;
}

/* A bad line of a file the config names, reported as "FILE:LINE: message". */
struct cfg_map_err {
	struct cfg_state *st;
	const char *file;
};

static void cfg_map_err(void *arg, unsigned line, const char *msg)
{
	struct cfg_map_err *e = arg;
	const char *path = e->st->path;
	unsigned cline = e->st->line;
	e->st->path = e->file;
	e->st->line = line;
	cfg_err(e->st, "%s", msg);
	e->st->path = path;
	e->st->line = cline;
}

/*
 * The content of a map file: read by the master, so `relayd -n` and a
 * reload check it; NULL in a worker that is not given it (no error).
 */
static const struct cfg_file *cfg_map_file(struct cfg_state *st, const struct cfg_directive *d,
					   const char *path, char **field)
{
	const struct cfg_file *f = cfg_file(st, path);
	if (f == NULL && st->given == NULL) {
		cfg_err(st, "%s: cannot read %s: %s", d->name, path, strerror(errno));
		return NULL;
	}
	if (*field != NULL) {
		cfg_err(st, "%s: already set", d->name);
		return NULL;
	}
	*field = xstrdup(path);
	return f;
}

/* rewrite-sender FILE and rewrite-recipient FILE: PATTERN REPLACEMENT lines. */
static void cfg_rewrite_map(struct cfg_state *st, const struct cfg_directive *d,
			    char **field, struct addr_map *m, const char *path)
{
	const struct cfg_file *f = cfg_map_file(st, d, path, field);
	struct cfg_map_err e = {st, path};
	if (f != NULL)
		addr_map_parse(m, f->data, f->len, cfg_map_err, &e);
}

static void cfg_rewrite_sender(struct cfg_state *st, const struct cfg_directive *d, int argc,
			       char **argv)
{
	(void)argc;
	cfg_rewrite_map(st, d, &st->cfg->rewrite_sender_file, &st->cfg->rewrite_sender, argv[0]);
}

static void cfg_rewrite_recipient(struct cfg_state *st, const struct cfg_directive *d,
				  int argc, char **argv)
{
	(void)argc;
	cfg_rewrite_map(st, d, &st->cfg->rewrite_recipient_file, &st->cfg->rewrite_recipient,
			argv[0]);
}

/* auth-senders FILE: USER ADDRESS-OR-@DOMAIN... lines. */
static void cfg_auth_senders(struct cfg_state *st, const struct cfg_directive *d, int argc,
			     char **argv)
{
	const struct cfg_file *f = cfg_map_file(st, d, argv[0], &st->cfg->auth_senders_file);
	struct cfg_map_err e = {st, argv[0]};
	(void)argc;
	if (f != NULL)
		addr_owners_parse(&st->cfg->auth_senders, f->data, f->len, cfg_map_err, &e);
}

#define CFG_OFF(f) offsetof(struct config, f)
#define DAY 86400ull

static const struct cfg_directive cfg_directives[] = {
	{"hostname", 1, 1, cfg_hostname, 0, 0, 0},
	{"listen", 1, 3, cfg_listen, 0, 0, 0},
	{"metrics-listen", 1, 1, cfg_metrics_listen, 0, 0, 0},
	{"state-dir", 1, 1, cfg_state_dir, 0, 0, 0},
	{"user", 1, 1, cfg_user, 0, 0, 0},
	{"control-group", 1, 1, cfg_control_group, 0, 0, 0},
	{"mynetworks", 1, -1, cfg_mynetworks, 0, 0, 0},
	{"relay-domains", 1, -1, cfg_relay_domains, 0, 0, 0},
	{"tls-cert", 1, 1, cfg_set_file, CFG_OFF(tls_cert), 0, 0},
	{"tls-key", 1, 1, cfg_set_file, CFG_OFF(tls_key), 0, 0},
	{"auth-users", 1, 1, cfg_set_file, CFG_OFF(auth_users), 0, 0},
	{"auth-senders", 1, 1, cfg_auth_senders, 0, 0, 0},
	{"max-message-size", 1, 1, cfg_set_size, CFG_OFF(max_message_size), 1024, 4ull << 30},
	{"max-recipients", 1, 1, cfg_set_number, CFG_OFF(max_recipients), 1, 100000},
	{"max-connections", 1, 1, cfg_set_number, CFG_OFF(max_connections), 1, 100000},
	{"max-connections-per-ip", 1, 1, cfg_set_number, CFG_OFF(max_connections_per_ip), 1,
	 100000},
	{"smtp-timeout", 1, 1, cfg_set_duration, CFG_OFF(smtp_timeout), 1, DAY},
	{"auth-fail-limit", 1, 2, cfg_auth_fail_limit, 0, 0, 100000},
	{"dns-server", 1, -1, cfg_dns_server, 0, 0, 0},
	{"delivery-port", 1, 1, cfg_delivery_port, 0, 1, 65535},
	{"smarthost", 1, 4, cfg_smarthost, 0, 0, 0},
	{"route", 2, 5, cfg_route, 0, 0, 0},
	{"sender-route", 2, 5, cfg_sender_route, 0, 0, 0},
	{"destination-rate", 1, 1, cfg_destination_rate, 0, 0, 0},
	{"outbound-tls", 1, 1, cfg_outbound, 0, 0, 0},
	{"tls-ca-file", 1, 1, cfg_set_file, CFG_OFF(tls_ca_file), 0, 0},
	{"dkim-sign", 3, 3, cfg_dkim_sign, 0, 0, 0},
	{"rewrite-sender", 1, 1, cfg_rewrite_sender, 0, 0, 0},
	{"rewrite-recipient", 1, 1, cfg_rewrite_recipient, 0, 0, 0},
	{"retry-min", 1, 1, cfg_set_duration, CFG_OFF(retry_min), 1, 30 * DAY},
	{"retry-max", 1, 1, cfg_set_duration, CFG_OFF(retry_max), 1, 30 * DAY},
	{"queue-lifetime", 1, 1, cfg_set_duration, CFG_OFF(queue_lifetime), 1, 365 * DAY},
	{"delay-warning", 1, 1, cfg_set_duration, CFG_OFF(delay_warning), 0, 365 * DAY},
	{"concurrency-per-destination", 1, 1, cfg_set_number,
	 CFG_OFF(concurrency_per_destination), 1, 10000},
	{"delivery-concurrency", 1, 1, cfg_set_number, CFG_OFF(delivery_concurrency), 1, 100000},
};

#define CFG_NDIRECTIVES (sizeof(cfg_directives) / sizeof(cfg_directives[0]))
_Static_assert(CFG_NDIRECTIVES <= CFG_MAX_DIRECTIVES, "raise CFG_MAX_DIRECTIVES");

const struct cfg_directive *cfg_directive(const char *name)
{
	for (size_t i = 0; i < CFG_NDIRECTIVES; i++)
		if (strcmp(cfg_directives[i].name, name) == 0)
			return &cfg_directives[i];
	return NULL;
}

size_t cfg_directive_index(const struct cfg_directive *d)
{
	return (size_t)(d - cfg_directives);
}
