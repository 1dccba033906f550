/*
 * config.c - reads relayd.conf: line by line, each directive run through
 * the table of config_grammar.c; then the rules between directives. Every
 * error is reported as "FILE:LINE: message" and parsing goes on, so that
 * `relayd -n` shows all of them at once. Also the struct's defaults and
 * its release, and the helpers the workers use on a parsed config.
 */
#include "config_parse.h"
#include "log.h"
#include "tls.h"
#include "xmalloc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cfg_err(struct cfg_state *st, const char *fmt, ...)
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

const struct cfg_file *cfg_file(struct cfg_state *st, const char *path)
{
	const struct cfg_file *f = cfg_files_find(&st->cfg->files, path);
	if (f != NULL)
		return f;
	if (st->given == NULL)
		return cfg_files_read(&st->cfg->files, path);
	f = cfg_files_find(st->given, path);
	return f ? cfg_files_add(&st->cfg->files, f->path, f->data, f->len) : NULL;
}

/* The last line a directive was given on, 0 if never. */
static unsigned cfg_seen(const struct cfg_state *st, const char *name)
{
	const struct cfg_directive *d = cfg_directive(name);
	if (d == NULL)
		fatal("config: no directive %s", name);
	return st->seen[cfg_directive_index(d)];
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
	cfg->bounce_size_limit = 50 * 1024;
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
	for (size_t i = 0; i < cfg->ndkim; i++) {
		free(cfg->dkim[i].domain);
		free(cfg->dkim[i].selector);
		free(cfg->dkim[i].keyfile);
	}
	free(cfg->dkim);
	free(cfg->rewrite_sender_file);
	addr_map_free(&cfg->rewrite_sender);
	free(cfg->rewrite_recipient_file);
	addr_map_free(&cfg->rewrite_recipient);
	free(cfg->auth_senders_file);
	addr_owners_free(&cfg->auth_senders);
	for (size_t i = 0; i < cfg->nsender_routes; i++) {
		free(cfg->sender_routes[i].pattern);
		addr_pattern_free(&cfg->sender_routes[i].pat);
		cfg_hop_free(&cfg->sender_routes[i].hop);
	}
	free(cfg->sender_routes);
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
	size_t idx = cfg_directive_index(d);
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
