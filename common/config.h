/*
 * config.h - relayd's configuration: every directive of the interface
 * contract, parsed from one file into one struct. The master loads it with
 * the files it names; each worker gets the config text and its role's files
 * from the master (config_load_given), at start and on reload.
 */
#ifndef RELAYD_CONFIG_H
#define RELAYD_CONFIG_H

#include "addr_map.h"
#include "config_files.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define CONFIG_DEFAULT_PATH "/etc/relayd/relayd.conf"

/* LISTEN_LOCAL is no `listen` mode: intake's submit.sock and maildrop pickup. */
enum listen_mode { LISTEN_SMTP, LISTEN_SUBMISSION, LISTEN_SMTPS, LISTEN_LOCAL };

/* TLS toward a next hop (smarthost/route tls=) and outbound-tls. */
enum tls_policy {
	TLS_POLICY_NONE,     /* never */
	TLS_POLICY_MAY,      /* STARTTLS when offered, else plaintext */
	TLS_POLICY_STARTTLS, /* STARTTLS required (chain not verified) */
	TLS_POLICY_SMTPS,    /* TLS from the first byte */
	TLS_POLICY_VERIFY,   /* TLS required with a valid chain and name */
};

struct cfg_listen {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	enum listen_mode mode;
	int proxy;     /* a PROXY header (v1 or v2) comes before SMTP */
	char text[80]; /* as written: "127.0.0.1:2525" */
};

struct cfg_cidr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	unsigned prefix;
};

/* rate=N/PERIOD and destination-rate: at most n messages per period seconds. */
struct cfg_rate {
	unsigned n;         /* 0: no limit */
	unsigned period;    /* 1, 60 or 3600 */
};

struct cfg_nexthop {
	char host[256];     /* name or address, without brackets */
	uint16_t port;      /* 25 unless given */
	int no_mx;          /* written as [host]: no MX lookup */
	int tls_set;        /* tls= given; otherwise outbound-tls applies */
	enum tls_policy tls;
	char *auth_file;    /* NULL: no AUTH */
	char *auth_user;    /* read from auth_file at load time */
	char *auth_pass;
	struct cfg_rate rate; /* rate= (n 0: none) */
};

struct cfg_route {
	char *domain;       /* lower case, without a leading "*." */
	int subdomains;     /* written as *.domain */
	struct cfg_nexthop hop;
};

/* dkim-sign DOMAIN SELECTOR KEYFILE (relayd/delivery/dlv_dkim.c signs). */
struct cfg_dkim {
	char *domain;       /* lower case, without a leading "*." */
	int subdomains;     /* written as *.domain */
	char *selector;
	char *keyfile;      /* its content: config_file(cfg, keyfile) where held */
};

/* sender-route PATTERN NEXTHOP [tls=] [auth=] [rate=]: the next hop by sender. */
struct cfg_sender_route {
	char *pattern;      /* as written, lower case */
	struct addr_pattern pat;
	struct cfg_nexthop hop;
};

struct cfg_dns_server {
	char addr[64];      /* numeric IPv4 or IPv6 */
	uint16_t port;      /* 53 unless given */
};

struct config {
	char *path;
	char hostname[256];
	struct cfg_listen *listens;
	size_t nlistens;
	struct cfg_listen metrics_listen; /* addrlen 0: no metrics endpoint */
	char *state_dir;
	char *user;
	char *control_group;         /* may run relayctl's mutating commands */
	unsigned control_gid;
	struct cfg_cidr *mynetworks;
	size_t nmynetworks;
	char **relay_domains; /* lower case */
	size_t nrelay_domains;
	char *tls_cert;
	char *tls_key;
	char *auth_users;
	uint64_t max_message_size;
	unsigned max_recipients;
	unsigned max_connections;
	unsigned max_connections_per_ip;
	unsigned smtp_timeout;       /* seconds */
	unsigned auth_fail_limit;    /* failed AUTH per client address per window; 0: off */
	unsigned auth_fail_window;   /* seconds */
	struct cfg_dns_server *dns_servers;
	size_t ndns_servers;         /* 0: /etc/resolv.conf */
	uint16_t delivery_port;
	struct cfg_nexthop *smarthosts;
	size_t nsmarthosts;
	struct cfg_route *routes;
	size_t nroutes;
	enum tls_policy outbound_tls; /* NONE, MAY or VERIFY */
	char *tls_ca_file;
	unsigned retry_min;          /* seconds */
	unsigned retry_max;
	unsigned queue_lifetime;
	unsigned delay_warning;      /* 0: off */
	unsigned concurrency_per_destination;
	unsigned delivery_concurrency;
	struct cfg_rate destination_rate; /* per MX destination domain (n 0: none) */
	struct cfg_dkim *dkim;       /* in the order written */
	size_t ndkim;
	char *rewrite_sender_file;   /* its map, parsed where the file is held */
	struct addr_map rewrite_sender;
	char *rewrite_recipient_file;
	struct addr_map rewrite_recipient;
	char *auth_senders_file;
	struct addr_owners auth_senders;
	struct cfg_sender_route *sender_routes; /* in the order written: first match */
	size_t nsender_routes;
	struct cfg_files files;      /* the contents of the files named above */
};

/* Fills cfg with the defaults of the interface contract. */
void config_defaults(struct config *cfg);
/*
 * Reads path into cfg (defaults first; whatever cfg held is overwritten).
 * Every error is printed to errs (may be NULL) as "FILE:LINE: message", or
 * "FILE: cannot open: ..."; returns the number of errors (0: cfg is usable).
 * Either way cfg must be released with config_free. A relative state-dir is
 * made absolute against the current directory; auth= files are read now.
 */
int config_load(const char *path, struct config *cfg, FILE *errs);
/*
 * The same from files already read (a worker's part, from the master):
 * nothing is read from disk; a file not in given is one this process does
 * not hold, and the directive naming it is taken without its content.
 */
int config_load_given(const char *path, const struct cfg_files *given, struct config *cfg,
		      FILE *errs);
/* The content of a file the config names, if this process holds it. */
const struct cfg_file *config_file(const struct config *cfg, const char *path);
void config_free(struct config *cfg);

/* Shared value parsers (also used by tests): 0 on success, -1 on error. */
int config_parse_duration(const char *s, unsigned *secs);
int config_parse_size(const char *s, uint64_t *bytes);
int config_parse_cidr(const char *s, struct cfg_cidr *out);
int config_parse_nexthop(const char *s, struct cfg_nexthop *out);
/* "N/s", "N/m" or "N/h", N >= 1 and at most 1000 a second. */
int config_parse_rate(const char *s, struct cfg_rate *out);
/* "6/m" (what config_parse_rate reads back); "none" when n is 0. */
void config_rate_text(const struct cfg_rate *r, char *dst, size_t dstsz);
/* The rate= written on a smarthost line (they share one), n 0 if none. */
struct cfg_rate config_smarthost_rate(const struct config *cfg);
/*
 * "host", "host:port", "[host]", "[host]:port" (IPv6 needs the brackets
 * when a port follows): host lower-cased into host, port left alone when
 * not given, bracketed set when written in brackets.
 */
int config_parse_hostport(const char *s, char *host, size_t hostsz, int *bracketed,
			  uint16_t *port);
/* 1 if s is a syntactically valid host or domain name. */
int config_valid_hostname(const char *s);

/* Helpers the workers use on the parsed config. */
int config_cidr_match(const struct cfg_cidr *nets, size_t n, const struct sockaddr *sa);
/* The route for a destination domain, or NULL (smarthost or MX). */
const struct cfg_route *config_route_for(const struct config *cfg, const char *domain);
int config_is_relay_domain(const struct config *cfg, const char *domain);

#endif
