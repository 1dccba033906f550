/*
 * config.c - reads relayd.conf: one directive per line, looked up in one
 * table that gives each directive its argument count and its parser. Every
 * error is reported as "FILE:LINE: message" and parsing goes on, so that
 * `relayd -n` shows all of them at once.
 */
#include "config.h"
#include "tls.h"
#include "xmalloc.h"
#include "log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <unistd.h>

#define CFG_MAX_ARGS 256
#define CFG_MAX_DIRECTIVES 64
/* auth-fail-limit's window when the line gives none. */
#define CFG_AUTH_FAIL_WINDOW (10 * 60)

struct cfg_directive;

/* Where the parser is: for error lines, defaults and the checks at the end. */
struct cfg_state {
	struct config *cfg;
	const char *path;
	FILE *errs;
	const struct cfg_files *given;         /* a worker's files; NULL: read them */
	unsigned line;
	int nerr;
	int first;                             /* first line of this directive */
	unsigned seen[CFG_MAX_DIRECTIVES];     /* last line of each directive */
	unsigned smtps_line;                   /* first listen ... smtps */
};

typedef void (*cfg_parse_fn)(struct cfg_state *st, const struct cfg_directive *d, int argc,
			     char **argv);

struct cfg_directive {
	const char *name;
	int min_args, max_args; /* max_args -1: any number */
	cfg_parse_fn parse;
	size_t off;             /* the field, for the parsers shared by several */
	uint64_t lo, hi;        /* the range of a number, duration or size */
};

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

static void cfg_err(struct cfg_state *st, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void cfg_err(struct cfg_state *st, const char *fmt, ...)
{
	va_list ap;

	st->nerr++;
	if (st->errs == NULL)
		return;
	if (st->line)
		fprintf(st->errs, "%s:%u: ", st->path, st->line);
	else
		fprintf(st->errs, "%s: ", st->path);
	va_start(ap, fmt);
	vfprintf(st->errs, fmt, ap);
	va_end(ap);
	fputc('\n', st->errs);
}

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

static void cfg_lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

/*
 * The content of a file the config names: the master reads it now (as the
 * user relayd starts as); a worker looks it up among the files it was given.
 * NULL: unreadable (errno set), or not given to this worker's role.
 */
static const struct cfg_file *cfg_file(struct cfg_state *st, const char *path)
{
	const struct cfg_file *f = cfg_files_find(&st->cfg->files, path);
	if (f != NULL)
		return f;
	if (st->given == NULL)
		return cfg_files_read(&st->cfg->files, path);
	f = cfg_files_find(st->given, path);
	return f ? cfg_files_add(&st->cfg->files, f->path, f->data, f->len) : NULL;
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

static int cfg_listen_addr(const char *s, struct cfg_listen *l)
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

static void cfg_hop_free(struct cfg_nexthop *hop)
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

/* NEXTHOP [tls=POLICY] [auth=FILE] of smarthost and route. */
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
		} else {
			cfg_err(st, "%s: unexpected \"%s\" (tls=POLICY or auth=FILE, once each)",
				name, argv[i]);
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

#define CFG_OFF(f) offsetof(struct config, f)
#define DAY 86400ull

static const struct cfg_directive cfg_directives[] = {
	{"hostname", 1, 1, cfg_hostname, 0, 0, 0},
	{"listen", 1, 2, cfg_listen, 0, 0, 0},
	{"state-dir", 1, 1, cfg_state_dir, 0, 0, 0},
	{"user", 1, 1, cfg_user, 0, 0, 0},
	{"control-group", 1, 1, cfg_control_group, 0, 0, 0},
	{"mynetworks", 1, -1, cfg_mynetworks, 0, 0, 0},
	{"relay-domains", 1, -1, cfg_relay_domains, 0, 0, 0},
	{"tls-cert", 1, 1, cfg_set_file, CFG_OFF(tls_cert), 0, 0},
	{"tls-key", 1, 1, cfg_set_file, CFG_OFF(tls_key), 0, 0},
	{"auth-users", 1, 1, cfg_set_file, CFG_OFF(auth_users), 0, 0},
	{"max-message-size", 1, 1, cfg_set_size, CFG_OFF(max_message_size), 1024, 4ull << 30},
	{"max-recipients", 1, 1, cfg_set_number, CFG_OFF(max_recipients), 1, 100000},
	{"max-connections", 1, 1, cfg_set_number, CFG_OFF(max_connections), 1, 100000},
	{"max-connections-per-ip", 1, 1, cfg_set_number, CFG_OFF(max_connections_per_ip), 1,
	 100000},
	{"smtp-timeout", 1, 1, cfg_set_duration, CFG_OFF(smtp_timeout), 1, DAY},
	{"auth-fail-limit", 1, 2, cfg_auth_fail_limit, 0, 0, 100000},
	{"dns-server", 1, -1, cfg_dns_server, 0, 0, 0},
	{"delivery-port", 1, 1, cfg_delivery_port, 0, 1, 65535},
	{"smarthost", 1, 3, cfg_smarthost, 0, 0, 0},
	{"route", 2, 4, cfg_route, 0, 0, 0},
	{"outbound-tls", 1, 1, cfg_outbound, 0, 0, 0},
	{"tls-ca-file", 1, 1, cfg_set_file, CFG_OFF(tls_ca_file), 0, 0},
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

static const struct cfg_directive *cfg_directive(const char *name)
{
	for (size_t i = 0; i < CFG_NDIRECTIVES; i++)
		if (strcmp(cfg_directives[i].name, name) == 0)
			return &cfg_directives[i];
	return NULL;
}

/* The last line a directive was given on, 0 if never. */
static unsigned cfg_seen(const struct cfg_state *st, const char *name)
{
	const struct cfg_directive *d = cfg_directive(name);
	if (d == NULL)
		fatal("config: no directive %s", name);
	return st->seen[d - cfg_directives];
}

void config_defaults(struct config *cfg)
{
	static const char *const nets[] = {"127.0.0.0/8", "::1/128"};

	memset(cfg, 0, sizeof(*cfg));
	if (gethostname(cfg->hostname, sizeof(cfg->hostname) - 1) < 0 || !cfg->hostname[0])
		snprintf(cfg->hostname, sizeof(cfg->hostname), "localhost");
	cfg_lower(cfg->hostname);
	cfg->listens = xcalloc(1, sizeof(*cfg->listens));
	cfg->nlistens = 1;
	if (cfg_listen_addr("127.0.0.1:2525", &cfg->listens[0]) < 0)
		fatal("config: bad default listen address");
	cfg->listens[0].mode = LISTEN_SMTP;
	snprintf(cfg->listens[0].text, sizeof(cfg->listens[0].text), "127.0.0.1:2525");
	cfg->state_dir = xstrdup("/var/spool/relayd");
	cfg->mynetworks = xcalloc(2, sizeof(*cfg->mynetworks));
	for (size_t i = 0; i < 2; i++)
		if (config_parse_cidr(nets[i], &cfg->mynetworks[i]) < 0)
			fatal("config: bad default network %s", nets[i]);
	cfg->nmynetworks = 2;
	cfg->max_message_size = 35 * 1024 * 1024;
	cfg->max_recipients = 1000;
	cfg->max_connections = 1000;
	cfg->max_connections_per_ip = 50;
	cfg->smtp_timeout = 5 * 60;
	cfg->auth_fail_limit = 10;
	cfg->auth_fail_window = CFG_AUTH_FAIL_WINDOW;
	cfg->delivery_port = 25;
	cfg->outbound_tls = TLS_POLICY_MAY;
	cfg->retry_min = 5 * 60;
	cfg->retry_max = 60 * 60;
	cfg->queue_lifetime = 5 * 86400;
	cfg->delay_warning = 4 * 3600;
	cfg->concurrency_per_destination = 20;
	cfg->delivery_concurrency = 200;
}

void config_free(struct config *cfg)
{
	free(cfg->path);
	free(cfg->listens);
	free(cfg->state_dir);
	free(cfg->user);
	free(cfg->control_group);
	free(cfg->mynetworks);
	for (size_t i = 0; i < cfg->nrelay_domains; i++)
		free(cfg->relay_domains[i]);
	free(cfg->relay_domains);
	free(cfg->tls_cert);
	free(cfg->tls_key);
	free(cfg->auth_users);
	free(cfg->dns_servers);
	for (size_t i = 0; i < cfg->nsmarthosts; i++)
		cfg_hop_free(&cfg->smarthosts[i]);
	free(cfg->smarthosts);
	for (size_t i = 0; i < cfg->nroutes; i++) {
		free(cfg->routes[i].domain);
		cfg_hop_free(&cfg->routes[i].hop);
	}
	free(cfg->routes);
	free(cfg->tls_ca_file);
	cfg_files_free(&cfg->files);
	memset(cfg, 0, sizeof(*cfg));
}

/* One line: strips the comment, splits on blanks, runs the directive. */
static void cfg_line(struct cfg_state *st, char *line, size_t len)
{
	char *argv[CFG_MAX_ARGS + 1], *save = NULL;
	int argc = 0;

	if (strlen(line) != len) {
		cfg_err(st, "NUL byte in line");
		return;
	}
	line[strcspn(line, "#")] = '\0';
	for (char *t = strtok_r(line, " \t\r\n\f\v", &save); t;
	     t = strtok_r(NULL, " \t\r\n\f\v", &save)) {
		if (argc == CFG_MAX_ARGS + 1) {
			cfg_err(st, "too many arguments");
			return;
		}
		argv[argc++] = t;
	}
	if (argc == 0)
		return;
	const struct cfg_directive *d = cfg_directive(argv[0]);
	if (d == NULL) {
		cfg_err(st, "unknown directive \"%s\"", argv[0]);
		return;
	}
	int nargs = argc - 1;
	if (nargs < d->min_args || (d->max_args >= 0 && nargs > d->max_args)) {
		if (d->max_args < 0)
			cfg_err(st, "%s: expected at least %d argument%s", d->name, d->min_args,
				d->min_args == 1 ? "" : "s");
		else if (d->min_args == d->max_args)
			cfg_err(st, "%s: expected %d argument%s", d->name, d->min_args,
				d->min_args == 1 ? "" : "s");
		else
			cfg_err(st, "%s: expected %d to %d arguments", d->name, d->min_args,
				d->max_args);
		return;
	}
	size_t idx = (size_t)(d - cfg_directives);
	st->first = st->seen[idx] == 0;
	st->seen[idx] = st->line;
	d->parse(st, d, nargs, argv + 1);
}

static void cfg_check_tls(struct cfg_state *st, unsigned line, SSL_CTX *ctx, const char *err)
{
	if (ctx != NULL) {
		SSL_CTX_free(ctx);
		return;
	}
	st->line = line;
	cfg_err(st, "TLS: %s", err);
}

/* Rules between directives, reported at the line that is incomplete. */
static void cfg_finish(struct cfg_state *st)
{
	struct config *cfg = st->cfg;
	unsigned cert = cfg_seen(st, "tls-cert"), key = cfg_seen(st, "tls-key");
	char err[256];

	if (cert && !key) {
		st->line = cert;
		cfg_err(st, "tls-cert without tls-key");
	} else if (key && !cert) {
		st->line = key;
		cfg_err(st, "tls-key without tls-cert");
	}
	/* Loaded now, so that `relayd -n` finds what the workers would. */
	const struct cfg_file *cf = cfg->tls_cert ? config_file(cfg, cfg->tls_cert) : NULL;
	const struct cfg_file *kf = cfg->tls_key ? config_file(cfg, cfg->tls_key) : NULL;
	const struct cfg_file *caf = cfg->tls_ca_file ? config_file(cfg, cfg->tls_ca_file) : NULL;
	if (cf && kf)
		cfg_check_tls(st, cert, tls_server_ctx(cf->data, cf->len, kf->data, kf->len, err,
						    sizeof(err)), err);
	if (caf)
		cfg_check_tls(st, cfg_seen(st, "tls-ca-file"),
			      tls_client_ctx(1, caf->data, caf->len, err, sizeof(err)), err);
	if (st->smtps_line && !cert) {
		st->line = st->smtps_line;
		cfg_err(st, "listen: smtps needs tls-cert and tls-key");
	}
	unsigned rmin = cfg_seen(st, "retry-min"), rmax = cfg_seen(st, "retry-max");
	if (cfg->retry_min > cfg->retry_max) {
		st->line = rmin > rmax ? rmin : rmax;
		cfg_err(st, "retry-min (%us) is longer than retry-max (%us)", cfg->retry_min,
			cfg->retry_max);
	}
}

int config_load_given(const char *path, const struct cfg_files *given, struct config *cfg,
		      FILE *errs)
{
	struct cfg_state st;

	config_defaults(cfg);
	cfg->path = xstrdup(path);
	memset(&st, 0, sizeof(st));
	st.cfg = cfg;
	st.path = path;
	st.errs = errs;
	st.given = given;
	const struct cfg_file *f = cfg_file(&st, path);
	if (f == NULL) {
		cfg_err(&st, "cannot open: %s", given ? "not handed to this process" : strerror(errno));
		return st.nerr;
	}
	/* Lines are parsed in place, so from a copy: f stays as read. */
	char *text = xmalloc(f->len + 1), *p = text, *end = text + f->len;
	memcpy(text, f->data, f->len + 1);
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		char saved = p[n];
		p[n] = '\0';
		st.line++;
		cfg_line(&st, p, n);
		p[n] = saved;
		p += n;
	}
	free(text);
	cfg_finish(&st);
	return st.nerr;
}

int config_load(const char *path, struct config *cfg, FILE *errs)
{
	return config_load_given(path, NULL, cfg, errs);
}

const struct cfg_file *config_file(const struct config *cfg, const char *path)
{
	return cfg_files_find(&cfg->files, path);
}
