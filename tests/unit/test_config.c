/*
 * test_config.c - relayd.conf: every directive accepted and refused, the
 * "FILE:LINE: message" of each kind of error, the defaults, the value
 * parsers and the lookups the workers do on a parsed config.
 */
#include "common/config.h"

#include <arpa/inet.h>
#include <check.h>
#include <grp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Fixture files a config can name: @NAME@ in a config text is replaced. */
static char auth_good[64], auth_bad[64], auth_two[64], auth_empty[64], pem[64];
static char cert[64], key[64], key2[64];

static void write_file(char *path, const char *text)
{
	strcpy(path, "/tmp/relayd-test-XXXXXX");
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	size_t n = strlen(text);
	ck_assert_int_eq(write(fd, text, n), (ssize_t)n);
	close(fd);
}

/* A self-signed certificate and its key, and a key that does not match. */
static void make_cert(void)
{
	char cmd[512];
	write_file(cert, "");
	write_file(key, "");
	write_file(key2, "");
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		 "-subj /CN=relayd.test -days 2 -keyout %s -out %s >/dev/null 2>&1 && "
		 "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out %s "
		 ">/dev/null 2>&1",
		 key, cert, key2);
	ck_assert_msg(system(cmd) == 0, "openssl could not make a test certificate");
}

static void fixtures_setup(void)
{
	write_file(auth_good, "  relayuser   s3cret pass \n\n");
	write_file(auth_bad, "onlyuser\n");
	write_file(auth_two, "a b\nc d\n");
	write_file(auth_empty, "\n");
	write_file(pem, "-----BEGIN CERTIFICATE-----\n");
	make_cert();
}

static void fixtures_teardown(void)
{
	unlink(auth_good);
	unlink(auth_bad);
	unlink(auth_two);
	unlink(auth_empty);
	unlink(pem);
	unlink(cert);
	unlink(key);
	unlink(key2);
}

static char *expand(const char *text)
{
	static const struct {
		const char *tag;
		const char *path;
	} tags[] = {
		{"@AUTH@", auth_good}, {"@AUTHBAD@", auth_bad}, {"@AUTHTWO@", auth_two},
		{"@AUTHEMPTY@", auth_empty}, {"@PEM@", pem}, {"@CERT@", cert}, {"@KEY@", key},
		{"@KEY2@", key2},
	};
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	while (*text) {
		size_t i;
		for (i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
			if (strncmp(text, tags[i].tag, strlen(tags[i].tag)) == 0)
				break;
		if (i < sizeof(tags) / sizeof(tags[0])) {
			fputs(tags[i].path, f);
			text += strlen(tags[i].tag);
		} else
			fputc(*text++, f);
	}
	fclose(f);
	return out;
}

/* Loads text as a config file; errors land in *errs (malloc'd). */
static int load(const char *text, struct config *cfg, char *path, char **errs)
{
	char *body = expand(text);
	size_t len = 0;
	write_file(path, body);
	free(body);
	FILE *f = open_memstream(errs, &len);
	int n = config_load(path, cfg, f);
	fclose(f);
	unlink(path);
	return n;
}

static int count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Defaults. */

START_TEST(test_defaults)
{
	struct config cfg;
	char path[64], *errs, host[256] = "";
	ck_assert_int_eq(load("# nothing but a comment\n\n   \t\n", &cfg, path, &errs), 0);
	ck_assert_str_eq(errs, "");
	gethostname(host, sizeof(host) - 1);
	ck_assert_int_eq(strcasecmp(cfg.hostname, host), 0);
	ck_assert_str_eq(cfg.path, path);
	ck_assert_uint_eq(cfg.nlistens, 1);
	ck_assert_str_eq(cfg.listens[0].text, "127.0.0.1:2525");
	ck_assert_int_eq(cfg.listens[0].mode, LISTEN_SMTP);
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&cfg.listens[0].addr;
	ck_assert_int_eq(sin->sin_family, AF_INET);
	ck_assert_int_eq(ntohs(sin->sin_port), 2525);
	ck_assert_uint_eq(ntohl(sin->sin_addr.s_addr), 0x7f000001);
	ck_assert_str_eq(cfg.state_dir, "/var/spool/relayd");
	ck_assert_ptr_null(cfg.user);
	ck_assert_uint_eq(cfg.nmynetworks, 2);
	ck_assert_int_eq(cfg.mynetworks[0].family, AF_INET);
	ck_assert_uint_eq(cfg.mynetworks[0].prefix, 8);
	ck_assert_int_eq(cfg.mynetworks[1].family, AF_INET6);
	ck_assert_uint_eq(cfg.mynetworks[1].prefix, 128);
	ck_assert_uint_eq(cfg.nrelay_domains, 0);
	ck_assert_ptr_null(cfg.tls_cert);
	ck_assert_ptr_null(cfg.tls_key);
	ck_assert_ptr_null(cfg.auth_users);
	ck_assert_uint_eq(cfg.max_message_size, 35u * 1024 * 1024);
	ck_assert_uint_eq(cfg.max_recipients, 1000);
	ck_assert_uint_eq(cfg.max_connections, 1000);
	ck_assert_uint_eq(cfg.max_connections_per_ip, 50);
	ck_assert_uint_eq(cfg.smtp_timeout, 300);
	ck_assert_uint_eq(cfg.auth_fail_limit, 10);
	ck_assert_uint_eq(cfg.auth_fail_window, 600);
	ck_assert_uint_eq(cfg.ndns_servers, 0);
	ck_assert_uint_eq(cfg.delivery_port, 25);
	ck_assert_uint_eq(cfg.nsmarthosts, 0);
	ck_assert_uint_eq(cfg.nroutes, 0);
	ck_assert_int_eq(cfg.outbound_tls, TLS_POLICY_MAY);
	ck_assert_ptr_null(cfg.tls_ca_file);
	ck_assert_uint_eq(cfg.retry_min, 300);
	ck_assert_uint_eq(cfg.retry_max, 3600);
	ck_assert_uint_eq(cfg.queue_lifetime, 5 * 86400);
	ck_assert_uint_eq(cfg.delay_warning, 4 * 3600);
	ck_assert_uint_eq(cfg.concurrency_per_destination, 20);
	ck_assert_uint_eq(cfg.delivery_concurrency, 200);
	free(errs);
	config_free(&cfg);
}
END_TEST

/* The shipped config must load as is (from the top of the tree). */
START_TEST(test_shipped_config)
{
	struct config cfg;
	char *errs = NULL;
	size_t len;
	FILE *f = open_memstream(&errs, &len);
	ck_assert_msg(access("etc/relayd.conf", R_OK) == 0, "run from the top of the tree");
	int n = config_load("etc/relayd.conf", &cfg, f);
	fclose(f);
	ck_assert_msg(n == 0, "etc/relayd.conf: %s", errs);
	ck_assert_uint_eq(cfg.nlistens, 1);
	ck_assert_str_eq(cfg.listens[0].text, "127.0.0.1:2525");
	ck_assert_int_eq(cfg.listens[0].mode, LISTEN_SMTP);
	ck_assert_ptr_nonnull(strstr(cfg.state_dir, "/var"));
	ck_assert_int_eq(cfg.state_dir[0], '/');
	ck_assert_uint_eq(cfg.ndns_servers, 0);
	free(errs);
	config_free(&cfg);
}
END_TEST

/*
 * Every example in the shipped config ("#directive args", no blank after
 * the #) is well-formed: uncommented alone, it may only fail on files or
 * users this machine lacks.
 */
START_TEST(test_shipped_examples)
{
	FILE *f = fopen("etc/relayd.conf", "r");
	char *line = NULL;
	size_t cap = 0;
	int examples = 0;
	ck_assert_msg(f != NULL, "run from the top of the tree");
	while (getline(&line, &cap, f) > 0) {
		if (line[0] != '#' || line[1] < 'a' || line[1] > 'z')
			continue;
		struct config cfg;
		char path[64], *errs;
		load(line + 1, &cfg, path, &errs);
		static const char *const syntax_errors[] = {
			"unknown directive", "expected", "is not", "unknown mode", "unexpected",
		};
		for (size_t i = 0; i < sizeof(syntax_errors) / sizeof(syntax_errors[0]); i++)
			ck_assert_msg(strstr(errs, syntax_errors[i]) == NULL, "example %s: %s", line,
				      errs);
		free(errs);
		config_free(&cfg);
		examples++;
	}
	ck_assert_int_ge(examples, 25);
	free(line);
	fclose(f);
}
END_TEST

/* Scalar directives that are accepted: the field and the value it gets. */

enum field_type { F_UINT, F_U64, F_U16, F_ENUM };

static const struct good_scalar {
	const char *text;
	size_t off;
	enum field_type type;
	uint64_t want;
} good_scalars[] = {
	{"max-message-size 512K\n", offsetof(struct config, max_message_size), F_U64, 512 * 1024},
	{"max-message-size 10M\n", offsetof(struct config, max_message_size), F_U64, 10 << 20},
	{"max-message-size 1G\n", offsetof(struct config, max_message_size), F_U64, 1 << 30},
	{"max-message-size 4096\n", offsetof(struct config, max_message_size), F_U64, 4096},
	{"max-recipients 1\n", offsetof(struct config, max_recipients), F_UINT, 1},
	{"max-recipients 100000\n", offsetof(struct config, max_recipients), F_UINT, 100000},
	{"max-connections 7\n", offsetof(struct config, max_connections), F_UINT, 7},
	{"max-connections-per-ip 3\n", offsetof(struct config, max_connections_per_ip), F_UINT, 3},
	{"smtp-timeout 30s\n", offsetof(struct config, smtp_timeout), F_UINT, 30},
	{"smtp-timeout 2m\n", offsetof(struct config, smtp_timeout), F_UINT, 120},
	{"smtp-timeout 45\n", offsetof(struct config, smtp_timeout), F_UINT, 45},
	{"auth-fail-limit 5\n", offsetof(struct config, auth_fail_limit), F_UINT, 5},
	{"auth-fail-limit 0\n", offsetof(struct config, auth_fail_limit), F_UINT, 0},
	{"auth-fail-limit 100000\n", offsetof(struct config, auth_fail_limit), F_UINT, 100000},
	{"auth-fail-limit 5\n", offsetof(struct config, auth_fail_window), F_UINT, 600},
	{"auth-fail-limit 3 1h\n", offsetof(struct config, auth_fail_limit), F_UINT, 3},
	{"auth-fail-limit 3 1h\n", offsetof(struct config, auth_fail_window), F_UINT, 3600},
	{"auth-fail-limit 3 90\n", offsetof(struct config, auth_fail_window), F_UINT, 90},
	{"auth-fail-limit 3 1d\n", offsetof(struct config, auth_fail_window), F_UINT, 86400},
	/* A later line without a window means the default window again. */
	{"auth-fail-limit 3 1h\nauth-fail-limit 4\n", offsetof(struct config, auth_fail_window),
	 F_UINT, 600},
	{"delivery-port 2526\n", offsetof(struct config, delivery_port), F_U16, 2526},
	{"outbound-tls none\n", offsetof(struct config, outbound_tls), F_ENUM, TLS_POLICY_NONE},
	{"outbound-tls may\n", offsetof(struct config, outbound_tls), F_ENUM, TLS_POLICY_MAY},
	{"outbound-tls verify\n", offsetof(struct config, outbound_tls), F_ENUM, TLS_POLICY_VERIFY},
	{"retry-min 1s\n", offsetof(struct config, retry_min), F_UINT, 1},
	{"retry-max 4h\n", offsetof(struct config, retry_max), F_UINT, 4 * 3600},
	{"retry-min 1h\nretry-max 1h\n", offsetof(struct config, retry_min), F_UINT, 3600},
	{"queue-lifetime 4d\n", offsetof(struct config, queue_lifetime), F_UINT, 4 * 86400},
	{"queue-lifetime 10s\n", offsetof(struct config, queue_lifetime), F_UINT, 10},
	{"delay-warning 0\n", offsetof(struct config, delay_warning), F_UINT, 0},
	{"delay-warning 30m\n", offsetof(struct config, delay_warning), F_UINT, 1800},
	{"concurrency-per-destination 2\n", offsetof(struct config, concurrency_per_destination),
	 F_UINT, 2},
	{"delivery-concurrency 10\n", offsetof(struct config, delivery_concurrency), F_UINT, 10},
	/* The last of a repeated single-valued directive wins, as in Postfix. */
	{"max-recipients 5\nmax-recipients 6\n", offsetof(struct config, max_recipients), F_UINT,
	 6},
	/* Comments anywhere, blanks and CRLF around. */
	{"  max-recipients\t9   # nine\r\n", offsetof(struct config, max_recipients), F_UINT, 9},
};

START_TEST(test_good_scalar)
{
	const struct good_scalar *t = &good_scalars[_i];
	struct config cfg;
	char path[64], *errs;
	ck_assert_msg(load(t->text, &cfg, path, &errs) == 0, "%s: %s", t->text, errs);
	ck_assert_str_eq(errs, "");
	const char *field = (const char *)&cfg + t->off;
	uint64_t got = 0;
	switch (t->type) {
	case F_UINT: got = *(const unsigned *)field; break;
	case F_U64: got = *(const uint64_t *)field; break;
	case F_U16: got = *(const uint16_t *)field; break;
	case F_ENUM: got = (uint64_t)*(const enum tls_policy *)field; break;
	}
	ck_assert_msg(got == t->want, "%s: got %llu", t->text, (unsigned long long)got);
	free(errs);
	config_free(&cfg);
}
END_TEST

START_TEST(test_strings)
{
	struct config cfg;
	char path[64], *errs;
	ck_assert_int_eq(load("hostname MX1.Example.ORG\n"
			      "state-dir /tmp/relayd-state\n"
			      "user nobody\n"
			      "control-group mail\n"
			      "tls-cert @CERT@\n"
			      "tls-key @KEY@\n"
			      "auth-users @PEM@\n"
			      "tls-ca-file @CERT@\n",
			      &cfg, path, &errs),
			 0);
	ck_assert_str_eq(errs, "");
	ck_assert_str_eq(cfg.hostname, "mx1.example.org");
	ck_assert_str_eq(cfg.state_dir, "/tmp/relayd-state");
	ck_assert_str_eq(cfg.user, "nobody");
	ck_assert_str_eq(cfg.control_group, "mail");
	ck_assert_uint_eq(cfg.control_gid, getgrnam("mail")->gr_gid);
	ck_assert_str_eq(cfg.tls_cert, cert);
	/* The files it names are held, as read, to be handed to the workers. */
	ck_assert_ptr_nonnull(config_file(&cfg, cert));
	ck_assert_ptr_nonnull(config_file(&cfg, key));
	ck_assert_ptr_nonnull(strstr(config_file(&cfg, key)->data, "PRIVATE KEY"));
	ck_assert_ptr_nonnull(config_file(&cfg, path));
	ck_assert_str_eq(cfg.tls_key, key);
	ck_assert_str_eq(cfg.auth_users, pem);
	ck_assert_str_eq(cfg.tls_ca_file, cert);
	free(errs);
	config_free(&cfg);
}
END_TEST

START_TEST(test_state_dir_relative)
{
	struct config cfg;
	char path[64], *errs, cwd[4096], want[4200];
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	ck_assert_int_eq(load("state-dir ./var\n", &cfg, path, &errs), 0);
	snprintf(want, sizeof(want), "%s/var", cwd);
	ck_assert_str_eq(cfg.state_dir, want);
	free(errs);
	config_free(&cfg);
}
END_TEST

START_TEST(test_listen)
{
	struct config cfg;
	char path[64], *errs;
	ck_assert_int_eq(load("tls-cert @CERT@\ntls-key @KEY@\n"
			      "listen 127.0.0.1:25\n"
			      "listen [::1]:2525 submission\n"
			      "listen *:465 smtps\n"
			      "listen 127.0.0.2:25 smtp\n"
			      "listen 127.0.0.3:25 submission proxy\n",
			      &cfg, path, &errs),
			 0);
	ck_assert_str_eq(errs, "");
	/* The default listener is gone: only what was written. */
	ck_assert_uint_eq(cfg.nlistens, 5);
	ck_assert_str_eq(cfg.listens[0].text, "127.0.0.1:25");
	ck_assert_int_eq(cfg.listens[0].mode, LISTEN_SMTP);
	ck_assert_uint_eq(cfg.listens[0].addrlen, sizeof(struct sockaddr_in));
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&cfg.listens[1].addr;
	ck_assert_int_eq(s6->sin6_family, AF_INET6);
	ck_assert_int_eq(ntohs(s6->sin6_port), 2525);
	ck_assert(IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr));
	ck_assert_uint_eq(cfg.listens[1].addrlen, sizeof(struct sockaddr_in6));
	ck_assert_int_eq(cfg.listens[1].mode, LISTEN_SUBMISSION);
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&cfg.listens[2].addr;
	ck_assert_uint_eq(s4->sin_addr.s_addr, htonl(INADDR_ANY));
	ck_assert_int_eq(cfg.listens[2].mode, LISTEN_SMTPS);
	ck_assert_int_eq(cfg.listens[3].mode, LISTEN_SMTP);
	ck_assert_int_eq(cfg.listens[3].proxy, 0);
	ck_assert_int_eq(cfg.listens[4].mode, LISTEN_SUBMISSION);
	ck_assert_int_eq(cfg.listens[4].proxy, 1);
	free(errs);
	config_free(&cfg);
}
END_TEST

START_TEST(test_lists)
{
	struct config cfg;
	char path[64], *errs;
	ck_assert_int_eq(load("mynetworks 10.0.0.0/8 [2001:db8::]/32\n"
			      "mynetworks 192.168.1.7\n"
			      "relay-domains Example.ORG *.example.net\n"
			      "relay-domains other.test\n"
			      "dns-server 127.0.0.1 127.0.0.1:5353 [::1]:5300 ::1\n",
			      &cfg, path, &errs),
			 0);
	ck_assert_str_eq(errs, "");
	/* The default networks are replaced, repeated lines add up. */
	ck_assert_uint_eq(cfg.nmynetworks, 3);
	ck_assert_uint_eq(cfg.mynetworks[0].prefix, 8);
	ck_assert_int_eq(cfg.mynetworks[1].family, AF_INET6);
	ck_assert_uint_eq(cfg.mynetworks[1].prefix, 32);
	ck_assert_uint_eq(cfg.mynetworks[2].prefix, 32);
	ck_assert_uint_eq(cfg.nrelay_domains, 3);
	ck_assert_str_eq(cfg.relay_domains[0], "example.org");
	ck_assert_str_eq(cfg.relay_domains[1], "*.example.net");
	ck_assert_str_eq(cfg.relay_domains[2], "other.test");
	ck_assert_uint_eq(cfg.ndns_servers, 4);
	ck_assert_str_eq(cfg.dns_servers[0].addr, "127.0.0.1");
	ck_assert_uint_eq(cfg.dns_servers[0].port, 53);
	ck_assert_uint_eq(cfg.dns_servers[1].port, 5353);
	ck_assert_str_eq(cfg.dns_servers[2].addr, "::1");
	ck_assert_uint_eq(cfg.dns_servers[2].port, 5300);
	ck_assert_str_eq(cfg.dns_servers[3].addr, "::1");
	ck_assert_uint_eq(cfg.dns_servers[3].port, 53);
	free(errs);
	config_free(&cfg);
}
END_TEST

START_TEST(test_smarthost_route)
{
	struct config cfg;
	char path[64], *errs;
	ck_assert_int_eq(load("smarthost [relay.example.net]:587 tls=starttls auth=@AUTH@\n"
			      "smarthost backup.example.net\n"
			      "route Example.COM [10.0.0.5]:2525 tls=may\n"
			      "route *.example.com mx.example.com:26 auth=@AUTH@ tls=smtps\n"
			      "route example.org [::1]:25 tls=none\n",
			      &cfg, path, &errs),
			 0);
	ck_assert_str_eq(errs, "");
	ck_assert_uint_eq(cfg.nsmarthosts, 2);
	const struct cfg_nexthop *h = &cfg.smarthosts[0];
	ck_assert_str_eq(h->host, "relay.example.net");
	ck_assert_uint_eq(h->port, 587);
	ck_assert_int_eq(h->no_mx, 1);
	ck_assert_int_eq(h->tls_set, 1);
	ck_assert_int_eq(h->tls, TLS_POLICY_STARTTLS);
	ck_assert_str_eq(h->auth_file, auth_good);
	ck_assert_str_eq(h->auth_user, "relayuser");
	ck_assert_str_eq(h->auth_pass, "s3cret pass");
	h = &cfg.smarthosts[1];
	ck_assert_str_eq(h->host, "backup.example.net");
	ck_assert_uint_eq(h->port, 25);
	ck_assert_int_eq(h->no_mx, 0);
	ck_assert_int_eq(h->tls_set, 0);
	ck_assert_ptr_null(h->auth_user);
	ck_assert_uint_eq(cfg.nroutes, 3);
	ck_assert_str_eq(cfg.routes[0].domain, "example.com");
	ck_assert_int_eq(cfg.routes[0].subdomains, 0);
	ck_assert_str_eq(cfg.routes[0].hop.host, "10.0.0.5");
	ck_assert_uint_eq(cfg.routes[0].hop.port, 2525);
	ck_assert_int_eq(cfg.routes[0].hop.tls, TLS_POLICY_MAY);
	ck_assert_str_eq(cfg.routes[1].domain, "example.com");
	ck_assert_int_eq(cfg.routes[1].subdomains, 1);
	ck_assert_int_eq(cfg.routes[1].hop.no_mx, 0);
	ck_assert_int_eq(cfg.routes[1].hop.tls, TLS_POLICY_SMTPS);
	ck_assert_str_eq(cfg.routes[1].hop.auth_user, "relayuser");
	ck_assert_str_eq(cfg.routes[2].hop.host, "::1");
	ck_assert_int_eq(cfg.routes[2].hop.no_mx, 1);
	ck_assert_uint_eq(cfg.routes[2].hop.rate.n, 0);
	ck_assert_uint_eq(config_smarthost_rate(&cfg).n, 0);
	ck_assert_uint_eq(cfg.destination_rate.n, 0);
	free(errs);
	config_free(&cfg);
}
END_TEST

/* rate= on every kind of next hop, the smarthosts' shared one, destination-rate. */
START_TEST(test_rates)
{
	struct config cfg;
	char path[64], *errs;
	ck_assert_int_eq(load("smarthost [relay.example.net]:587 tls=starttls\n"
			      "smarthost backup.example.net rate=10/m tls=may\n"
			      "smarthost third.example.net rate=10/m\n"
			      "route example.com [10.0.0.5]:2525 rate=2/s tls=may auth=@AUTH@\n"
			      "sender-route @sales.example.org [10.0.0.6]:25 rate=300/h\n"
			      "destination-rate 1000/s\n",
			      &cfg, path, &errs),
			 0);
	ck_assert_str_eq(errs, "");
	ck_assert_uint_eq(cfg.smarthosts[0].rate.n, 0);
	ck_assert_uint_eq(cfg.smarthosts[1].rate.n, 10);
	ck_assert_uint_eq(cfg.smarthosts[1].rate.period, 60);
	ck_assert_int_eq(cfg.smarthosts[1].tls, TLS_POLICY_MAY);
	struct cfg_rate sh = config_smarthost_rate(&cfg);
	ck_assert_uint_eq(sh.n, 10);
	ck_assert_uint_eq(sh.period, 60);
	ck_assert_uint_eq(cfg.routes[0].hop.rate.n, 2);
	ck_assert_uint_eq(cfg.routes[0].hop.rate.period, 1);
	ck_assert_str_eq(cfg.routes[0].hop.auth_user, "relayuser");
	ck_assert_uint_eq(cfg.sender_routes[0].hop.rate.n, 300);
	ck_assert_uint_eq(cfg.sender_routes[0].hop.rate.period, 3600);
	ck_assert_uint_eq(cfg.destination_rate.n, 1000);
	ck_assert_uint_eq(cfg.destination_rate.period, 1);
	free(errs);
	config_free(&cfg);
}
END_TEST

/* Every kind of error: the line it is reported on and what it says. */

static const struct bad_config {
	const char *text;
	unsigned line;
	const char *msg;
} bad_configs[] = {
	{"# a comment\n\nfoo bar\n", 3, "unknown directive \"foo\""},
	{"Listen 127.0.0.1:25\n", 1, "unknown directive \"Listen\""},
	{"hostname\n", 1, "hostname: expected 1 argument"},
	{"hostname a b\n", 1, "hostname: expected 1 argument"},
	{"hostname -bad-.example\n", 1, "not a valid host name"},
	{"hostname a..b\n", 1, "not a valid host name"},
	{"listen\n", 1, "listen: expected 1 to 3 arguments"},
	{"listen 1.2.3.4:25 smtp extra\n", 1, "listen: unknown flag \"extra\" (proxy)"},
	{"listen 1.2.3.4:25 smtp proxy extra\n", 1, "listen: expected 1 to 3 arguments"},
	{"listen 1.2.3.4:25 proxy\n", 1, "listen: unknown mode \"proxy\""},
	{"\nlisten 127.0.0.1\n", 2, "is not ADDR:PORT"},
	{"listen 127.0.0.1:0\n", 1, "is not ADDR:PORT"},
	{"listen 127.0.0.1:65536\n", 1, "is not ADDR:PORT"},
	{"listen ::1:25\n", 1, "is not ADDR:PORT"},
	{"listen localhost:25\n", 1, "is not ADDR:PORT"},
	{"listen [::1:25\n", 1, "is not ADDR:PORT"},
	{"listen 127.0.0.1:25 lmtp\n", 1, "unknown mode \"lmtp\""},
	{"listen 127.0.0.1:25\nlisten 127.0.0.1:25 submission\n", 2, "already listened on"},
	{"listen [::1]:2525 smtps\n", 1, "smtps needs tls-cert"},
	{"state-dir\n", 1, "state-dir: expected 1 argument"},
	{"state-dir /tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	 1, "too long for a Unix socket path"},
	{"user no-such-user-here\n", 1, "unknown user \"no-such-user-here\""},
	{"control-group no-such-group-here\n", 1, "control-group: unknown group \"no-such-group-here\""},
	{"control-group\n", 1, "control-group: expected 1 argument"},
	{"control-group mail adm\n", 1, "control-group: expected 1 argument"},
	{"mynetworks\n", 1, "mynetworks: expected at least 1 argument"},
	{"mynetworks 10.0.0.0/8 10.0.0.0/33\n", 1, "\"10.0.0.0/33\" is not a network"},
	{"mynetworks ::1/129\n", 1, "is not a network"},
	{"mynetworks 10.0.0/8\n", 1, "is not a network"},
	{"mynetworks 10.0.0.0/\n", 1, "is not a network"},
	{"relay-domains example.org bad_domain..org\n", 1, "\"bad_domain..org\" is not a domain"},
	{"relay-domains *.\n", 1, "is not a domain"},
	{"tls-cert /nonexistent/cert.pem\ntls-key @PEM@\n", 1, "tls-cert: cannot read"},
	{"tls-cert @PEM@\n\n", 1, "tls-cert without tls-key"},
	{"\ntls-key @PEM@\n", 2, "tls-key without tls-cert"},
	{"tls-cert @PEM@\n\ntls-key @KEY@\n", 1, "TLS: "},
	{"tls-cert @CERT@\ntls-key @PEM@\n", 1, "TLS: "},
	{"tls-cert @CERT@\ntls-key @KEY2@\n", 1, "key values mismatch"},
	{"\ntls-ca-file @PEM@\n", 2, "TLS: "},
	{"auth-users /nonexistent/users\n", 1, "auth-users: cannot read"},
	{"tls-ca-file /nonexistent/ca\n", 1, "tls-ca-file: cannot read"},
	{"max-message-size 35X\n", 1, "is not a size"},
	{"max-message-size 35MB\n", 1, "is not a size"},
	{"max-message-size M\n", 1, "is not a size"},
	{"max-message-size 99999999999999999999\n", 1, "is not a size"},
	{"max-message-size 100\n", 1, "out of range"},
	{"max-recipients 0\n", 1, "max-recipients: \"0\" is not a number from 1 to"},
	{"max-recipients -1\n", 1, "is not a number"},
	{"max-recipients 12abc\n", 1, "is not a number"},
	{"max-recipients 100001\n", 1, "is not a number"},
	{"max-connections 0\n", 1, "max-connections: \"0\" is not a number"},
	{"max-connections-per-ip 0\n", 1, "max-connections-per-ip: \"0\" is not a number"},
	{"smtp-timeout 5x\n", 1, "smtp-timeout: \"5x\" is not a duration"},
	{"smtp-timeout 5mm\n", 1, "is not a duration"},
	{"smtp-timeout 0\n", 1, "smtp-timeout: 0 is out of range"},
	{"smtp-timeout 99999999999d\n", 1, "is not a duration"},
	{"auth-fail-limit\n", 1, "auth-fail-limit: expected 1 to 2 arguments"},
	{"auth-fail-limit 10 10m x\n", 1, "auth-fail-limit: expected 1 to 2 arguments"},
	{"auth-fail-limit ten\n", 1, "auth-fail-limit: \"ten\" is not a number from 0 to 100000"},
	{"auth-fail-limit -1\n", 1, "is not a number"},
	{"auth-fail-limit 100001\n", 1, "is not a number"},
	{"auth-fail-limit 10m\n", 1, "is not a number"},
	{"auth-fail-limit 10 0\n", 1, "auth-fail-limit: \"0\" is not a window from 1s to 1d"},
	{"auth-fail-limit 10 2d\n", 1, "\"2d\" is not a window"},
	{"auth-fail-limit 10 soon\n", 1, "\"soon\" is not a window"},
	{"dns-server\n", 1, "dns-server: expected at least 1 argument"},
	{"dns-server 127.0.0.1 ns.example.org\n", 1, "\"ns.example.org\" is not an IP address"},
	{"dns-server 127.0.0.1:0\n", 1, "is not an IP address"},
	{"delivery-port 0\n", 1, "delivery-port: \"0\" is not a number from 1 to 65535"},
	{"delivery-port 70000\n", 1, "is not a number"},
	{"smarthost\n", 1, "smarthost: expected 1 to 4 arguments"},
	{"smarthost [a]:1 tls=may auth=@AUTH@ rate=1/s x\n", 1,
	 "smarthost: expected 1 to 4 arguments"},
	{"smarthost relay rate=6/m rate=6/m\n", 1, "unexpected \"rate=6/m\""},
	{"smarthost relay rate=\n", 1, "smarthost: \"\" is not a rate (N/s, N/m or N/h"},
	{"smarthost relay rate=0/m\n", 1, "smarthost: \"0/m\" is not a rate"},
	{"smarthost relay rate=1001/s\n", 1, "\"1001/s\" is not a rate"},
	{"smarthost relay rate=6/d\n", 1, "\"6/d\" is not a rate"},
	{"smarthost relay rate=6m\n", 1, "\"6m\" is not a rate"},
	{"smarthost a rate=6/m\nsmarthost b\nsmarthost c rate=10/m\n", 3,
	 "smarthost: rate=10/m differs from the rate=6/m of an earlier smarthost line"},
	{"route example.org [a]:25 rate=-1/s\n", 1, "route: \"-1/s\" is not a rate"},
	{"sender-route @x.test [a]:25 tls=may auth=@AUTH@ rate=1/s x\n", 1,
	 "sender-route: expected 2 to 5 arguments"},
	{"destination-rate\n", 1, "destination-rate: expected 1 argument"},
	{"destination-rate 6/m 7/m\n", 1, "destination-rate: expected 1 argument"},
	{"destination-rate 6 /m\n", 1, "destination-rate: expected 1 argument"},
	{"destination-rate 6\n", 1, "destination-rate: \"6\" is not a rate"},
	{"destination-rate 6/M\n", 1, "\"6/M\" is not a rate"},
	{"destination-rate 1234567890/h\n", 1, "is not a rate"},
	{"smarthost [relay:25\n", 1, "is not a next hop"},
	{"smarthost ::1\n", 1, "is not a next hop"},
	{"smarthost relay..example:25\n", 1, "is not a next hop"},
	{"smarthost relay:99999\n", 1, "is not a next hop"},
	{"smarthost relay tls=sometimes\n", 1, "unknown tls=sometimes"},
	{"smarthost relay tls=may tls=none\n", 1, "unexpected \"tls=none\""},
	{"smarthost relay port=25\n", 1, "unexpected \"port=25\""},
	{"smarthost relay auth=\n", 1, "unexpected \"auth=\""},
	{"smarthost relay tls=none auth=@AUTH@\n", 1, "credentials are only sent over TLS"},
	{"smarthost relay auth=/nonexistent/auth\n", 1, "auth=/nonexistent/auth: cannot open"},
	{"smarthost relay auth=@AUTHBAD@\n", 1, "expected one line \"username password\""},
	{"smarthost relay auth=@AUTHTWO@\n", 1, "expected one line \"username password\""},
	{"\n\nsmarthost relay auth=@AUTHEMPTY@\n", 3, "expected one line \"username password\""},
	{"route example.org\n", 1, "route: expected 2 to 5 arguments"},
	{"route ex*ample.org [a]:25\n", 1, "is not a domain or *.domain"},
	{"route example.org [a:25\n", 1, "route: \"[a:25\" is not a next hop"},
	{"route example.org [a]:25 tls=bogus\n", 1, "route: unknown tls=bogus"},
	{"route *.example.org [a]:25\nroute *.Example.org [b]:25\n", 2, "already set"},
	{"route example.org [a]:25 auth=@AUTHBAD@\n", 1, "expected one line"},
	{"outbound-tls starttls\n", 1, "outbound-tls: unknown policy \"starttls\""},
	{"retry-min 2h\n", 1, "retry-min (7200s) is longer than retry-max (3600s)"},
	{"retry-max 1m\n", 1, "retry-min (300s) is longer than retry-max (60s)"},
	{"retry-max 1m\n\nretry-min 2m\n", 3, "is longer than retry-max"},
	{"retry-min 0\n", 1, "retry-min: 0 is out of range"},
	{"queue-lifetime 0\n", 1, "queue-lifetime: 0 is out of range"},
	{"delay-warning forever\n", 1, "delay-warning: \"forever\" is not a duration"},
	{"concurrency-per-destination 0\n", 1, "concurrency-per-destination: \"0\" is not"},
	{"delivery-concurrency 0\n", 1, "delivery-concurrency: \"0\" is not"},
};

START_TEST(test_bad_config)
{
	const struct bad_config *t = &bad_configs[_i];
	struct config cfg;
	char path[64], *errs, prefix[128];
	int n = load(t->text, &cfg, path, &errs);
	snprintf(prefix, sizeof(prefix), "%s:%u: ", path, t->line);
	ck_assert_msg(n == 1, "%s: %d errors: %s", t->text, n, errs);
	ck_assert_msg(count_lines(errs) == 1, "%s: %s", t->text, errs);
	ck_assert_msg(strncmp(errs, prefix, strlen(prefix)) == 0, "%s: want %s got %s", t->text,
		      prefix, errs);
	ck_assert_msg(strstr(errs, t->msg) != NULL, "%s: want \"%s\" got %s", t->text, t->msg, errs);
	config_free(&cfg);
	free(errs);
}
END_TEST

/* A NUL byte in a line (load() cannot write one: it uses strlen). */
START_TEST(test_nul_byte)
{
	struct config cfg;
	char path[64] = "/tmp/relayd-test-XXXXXX", *errs = NULL, prefix[128];
	size_t len;
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "hostname a\nmax-recipients 5\0x\n", 30), 30);
	close(fd);
	FILE *f = open_memstream(&errs, &len);
	ck_assert_int_eq(config_load(path, &cfg, f), 1);
	fclose(f);
	unlink(path);
	snprintf(prefix, sizeof(prefix), "%s:2: NUL byte", path);
	ck_assert_msg(strncmp(errs, prefix, strlen(prefix)) == 0, "%s", errs);
	free(errs);
	config_free(&cfg);
}
END_TEST

/* Parsing goes on after an error, so that all of them are shown. */
START_TEST(test_all_errors_reported)
{
	struct config cfg;
	char path[64], *errs, want[1024];
	int n = load("foo\n"
		     "max-recipients 0\n"
		     "max-recipients 7\n"
		     "listen 127.0.0.1\n"
		     "listen 127.0.0.1:2600\n"
		     "tls-cert @PEM@\n"
		     "smtp-timeout never\n",
		     &cfg, path, &errs);
	ck_assert_int_eq(n, 5);
	snprintf(want, sizeof(want),
		 "%1$s:1: unknown directive \"foo\"\n"
		 "%1$s:2: max-recipients: \"0\" is not a number from 1 to 100000\n"
		 "%1$s:4: listen: \"127.0.0.1\" is not ADDR:PORT (IPv6 as [::1]:2525)\n"
		 "%1$s:7: smtp-timeout: \"never\" is not a duration (like 30s, 5m, 4h, 5d)\n"
		 "%1$s:6: tls-cert without tls-key\n",
		 path);
	ck_assert_str_eq(errs, want);
	/* The good lines still took effect; a bad listen line still drops the default. */
	ck_assert_uint_eq(cfg.max_recipients, 7);
	ck_assert_uint_eq(cfg.nlistens, 1);
	ck_assert_str_eq(cfg.listens[0].text, "127.0.0.1:2600");
	free(errs);
	config_free(&cfg);
}
END_TEST

START_TEST(test_missing_file)
{
	struct config cfg;
	char *errs = NULL;
	size_t len;
	FILE *f = open_memstream(&errs, &len);
	ck_assert_int_eq(config_load("/nonexistent/relayd.conf", &cfg, f), 1);
	fclose(f);
	ck_assert_str_eq(errs, "/nonexistent/relayd.conf: cannot open: No such file or directory\n");
	free(errs);
	config_free(&cfg);
	/* config_free leaves a struct that can be freed again. */
	config_free(&cfg);
}
END_TEST

START_TEST(test_null_errs)
{
	struct config cfg;
	ck_assert_int_eq(config_load("/nonexistent/relayd.conf", &cfg, NULL), 1);
	config_free(&cfg);
}
END_TEST

/* Value parsers. */

static const struct {
	const char *s;
	int ok;
	unsigned secs;
} durations[] = {
	{"0", 1, 0}, {"45", 1, 45}, {"30s", 1, 30}, {"5m", 1, 300}, {"4h", 1, 14400},
	{"5d", 1, 432000}, {"2w", 1, 1209600}, {"5M", 1, 300}, {"4294967295", 1, 4294967295u},
	{"", 0, 0}, {"s", 0, 0}, {"-5s", 0, 0}, {"5 s", 0, 0}, {"5sec", 0, 0}, {"5y", 0, 0},
	{"1.5h", 0, 0}, {"4294967296", 0, 0}, {"49711d", 0, 0}, {"+5", 0, 0},
};

START_TEST(test_parse_duration)
{
	unsigned v = 12345;
	int r = config_parse_duration(durations[_i].s, &v);
	ck_assert_msg(r == (durations[_i].ok ? 0 : -1), "\"%s\"", durations[_i].s);
	if (durations[_i].ok)
		ck_assert_uint_eq(v, durations[_i].secs);
	else
		ck_assert_uint_eq(v, 12345);
}
END_TEST

static const struct {
	const char *s;
	int ok;
	uint64_t bytes;
} sizes[] = {
	{"0", 1, 0}, {"1000", 1, 1000}, {"512K", 1, 524288}, {"512k", 1, 524288},
	{"35M", 1, 36700160}, {"1G", 1, 1073741824}, {"16G", 1, 17179869184ull}, {"7b", 1, 7},
	{"18446744073709551615", 1, UINT64_MAX}, {"", 0, 0}, {"K", 0, 0}, {"35MB", 0, 0},
	{"3.5M", 0, 0}, {"-1", 0, 0}, {"18446744073709551616", 0, 0},
	{"17179869184G", 0, 0}, {"1T", 0, 0},
};

static const struct {
	const char *s;
	int ok;
	unsigned n, period;
	const char *text;
} rates[] = {
	{"1/s", 1, 1, 1, "1/s"}, {"1000/s", 1, 1000, 1, "1000/s"}, {"6/m", 1, 6, 60, "6/m"},
	{"60000/m", 1, 60000, 60, "60000/m"}, {"30/h", 1, 30, 3600, "30/h"},
	{"007/h", 1, 7, 3600, "7/h"},
	{"", 0, 0, 0, NULL}, {"/s", 0, 0, 0, NULL}, {"6", 0, 0, 0, NULL}, {"6/", 0, 0, 0, NULL},
	{"0/s", 0, 0, 0, NULL}, {"1001/s", 0, 0, 0, NULL}, {"60001/m", 0, 0, 0, NULL},
	{"6/d", 0, 0, 0, NULL}, {"6/S", 0, 0, 0, NULL}, {"6/ms", 0, 0, 0, NULL},
	{"6/m/s", 0, 0, 0, NULL}, {"-6/m", 0, 0, 0, NULL}, {"+6/m", 0, 0, 0, NULL},
	{"6.5/m", 0, 0, 0, NULL}, {"6 /m", 0, 0, 0, NULL}, {"1234567890/h", 0, 0, 0, NULL},
};

START_TEST(test_parse_rate)
{
	struct cfg_rate r = {12345, 6789};
	char text[32];
	int rc = config_parse_rate(rates[_i].s, &r);
	ck_assert_msg(rc == (rates[_i].ok ? 0 : -1), "\"%s\"", rates[_i].s);
	if (!rates[_i].ok) {
		ck_assert_uint_eq(r.n, 12345);
		return;
	}
	ck_assert_uint_eq(r.n, rates[_i].n);
	ck_assert_uint_eq(r.period, rates[_i].period);
	config_rate_text(&r, text, sizeof(text));
	ck_assert_str_eq(text, rates[_i].text);
}
END_TEST

START_TEST(test_parse_size)
{
	uint64_t v = 777;
	int r = config_parse_size(sizes[_i].s, &v);
	ck_assert_msg(r == (sizes[_i].ok ? 0 : -1), "\"%s\"", sizes[_i].s);
	ck_assert_uint_eq(v, sizes[_i].ok ? sizes[_i].bytes : 777);
}
END_TEST

static const struct {
	const char *s;
	int family; /* 0: refused */
	unsigned prefix;
	const char *addr; /* the network as inet_ntop prints it */
} cidrs[] = {
	{"127.0.0.0/8", AF_INET, 8, "127.0.0.0"},
	{"192.168.1.77/24", AF_INET, 24, "192.168.1.0"},
	{"10.1.2.3", AF_INET, 32, "10.1.2.3"},
	{"0.0.0.0/0", AF_INET, 0, "0.0.0.0"},
	{"10.255.255.255/9", AF_INET, 9, "10.128.0.0"},
	{"::1/128", AF_INET6, 128, "::1"},
	{"::1", AF_INET6, 128, "::1"},
	{"[2001:db8::1]/32", AF_INET6, 32, "2001:db8::"},
	{"fe80::1/10", AF_INET6, 10, "fe80::"},
	{"::/0", AF_INET6, 0, "::"},
	/* A mapped network is the IPv4 network it maps. */
	{"::ffff:127.0.0.0/104", AF_INET, 8, "127.0.0.0"},
	{"::ffff:10.0.0.1", AF_INET, 32, "10.0.0.1"},
	{"", 0, 0, NULL}, {"/8", 0, 0, NULL}, {"10.0.0.0/", 0, 0, NULL},
	{"10.0.0.0/33", 0, 0, NULL}, {"10.0.0.0/-1", 0, 0, NULL}, {"10.0.0.0/8x", 0, 0, NULL},
	{"10.0.0/8", 0, 0, NULL}, {"::1/129", 0, 0, NULL}, {"[::1/128", 0, 0, NULL},
	{"example.org/8", 0, 0, NULL}, {"10.0.0.0 /8", 0, 0, NULL}, {"10.0.0.0/+8", 0, 0, NULL},
};

START_TEST(test_parse_cidr)
{
	struct cfg_cidr c;
	char text[INET6_ADDRSTRLEN];
	int r = config_parse_cidr(cidrs[_i].s, &c);
	if (cidrs[_i].family == 0) {
		ck_assert_msg(r == -1, "\"%s\" accepted", cidrs[_i].s);
		return;
	}
	ck_assert_msg(r == 0, "\"%s\" refused", cidrs[_i].s);
	ck_assert_int_eq(c.family, cidrs[_i].family);
	ck_assert_uint_eq(c.prefix, cidrs[_i].prefix);
	ck_assert_ptr_nonnull(inet_ntop(c.family, c.addr, text, sizeof(text)));
	ck_assert_str_eq(text, cidrs[_i].addr);
}
END_TEST

static const struct {
	const char *s;
	int ok;
	const char *host;
	unsigned port;
	int no_mx;
} nexthops[] = {
	{"[relay.example.net]:587", 1, "relay.example.net", 587, 1},
	{"[relay.example.net]", 1, "relay.example.net", 25, 1},
	{"Relay.Example.NET:2525", 1, "relay.example.net", 2525, 0},
	{"example.net", 1, "example.net", 25, 0},
	{"127.0.0.1:2526", 1, "127.0.0.1", 2526, 1},
	{"[127.0.0.1]:2526", 1, "127.0.0.1", 2526, 1},
	{"[::1]:2526", 1, "::1", 2526, 1},
	{"[2001:db8::5]", 1, "2001:db8::5", 25, 1},
	{"localhost", 1, "localhost", 25, 0},
	{"", 0, NULL, 0, 0}, {"[]", 0, NULL, 0, 0}, {"[]:25", 0, NULL, 0, 0},
	{"[relay:25", 0, NULL, 0, 0}, {"[relay]x", 0, NULL, 0, 0}, {"[relay]:", 0, NULL, 0, 0},
	{"relay:", 0, NULL, 0, 0}, {"relay:0", 0, NULL, 0, 0}, {"relay:65536", 0, NULL, 0, 0},
	{"relay:25x", 0, NULL, 0, 0}, {":25", 0, NULL, 0, 0}, {"::1", 0, NULL, 0, 0},
	{"re lay", 0, NULL, 0, 0}, {"-relay.example", 0, NULL, 0, 0},
	{"relay..example", 0, NULL, 0, 0}, {"relay.example.", 0, NULL, 0, 0},
};

START_TEST(test_parse_nexthop)
{
	struct cfg_nexthop h;
	int r = config_parse_nexthop(nexthops[_i].s, &h);
	if (!nexthops[_i].ok) {
		ck_assert_msg(r == -1, "\"%s\" accepted", nexthops[_i].s);
		return;
	}
	ck_assert_msg(r == 0, "\"%s\" refused", nexthops[_i].s);
	ck_assert_str_eq(h.host, nexthops[_i].host);
	ck_assert_uint_eq(h.port, nexthops[_i].port);
	ck_assert_int_eq(h.no_mx, nexthops[_i].no_mx);
	ck_assert_int_eq(h.tls_set, 0);
	ck_assert_ptr_null(h.auth_file);
}
END_TEST

/* Lookups. */

static int sockaddr_of(const char *ip, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		return 0;
	}
	return -1;
}

static const struct {
	const char *ip;
	int match;
} cidr_matches[] = {
	/* against 127.0.0.0/8 ::1/128 10.1.0.0/17 2001:db8::/33 192.0.2.7/32 */
	{"127.0.0.1", 1}, {"127.255.255.254", 1}, {"128.0.0.1", 0}, {"126.255.255.255", 0},
	{"::1", 1}, {"::2", 0}, {"::ffff:127.0.0.1", 1}, {"::ffff:128.0.0.1", 0},
	{"10.1.127.255", 1}, {"10.1.128.0", 0}, {"10.0.255.255", 0}, {"::ffff:10.1.0.9", 1},
	{"2001:db8:7fff::1", 1}, {"2001:db8:8000::1", 0}, {"2001:db9::1", 0},
	{"192.0.2.7", 1}, {"192.0.2.8", 0}, {"::ffff:192.0.2.7", 1},
	/* Not mapped: an IPv4-compatible or NAT64 address is not the IPv4 one. */
	{"::127.0.0.1", 0}, {"64:ff9b::127.0.0.1", 0},
};

START_TEST(test_cidr_match)
{
	static const char *const nets[] = {"127.0.0.0/8", "::1/128", "10.1.0.0/17",
					   "2001:db8::/33", "192.0.2.7"};
	struct cfg_cidr c[5];
	struct sockaddr_storage ss;
	for (size_t i = 0; i < 5; i++)
		ck_assert_int_eq(config_parse_cidr(nets[i], &c[i]), 0);
	ck_assert_int_eq(sockaddr_of(cidr_matches[_i].ip, &ss), 0);
	ck_assert_msg(config_cidr_match(c, 5, (struct sockaddr *)&ss) == cidr_matches[_i].match,
		      "%s", cidr_matches[_i].ip);
	ck_assert_int_eq(config_cidr_match(c, 0, (struct sockaddr *)&ss), 0);
}
END_TEST

START_TEST(test_cidr_match_all_and_unix)
{
	struct cfg_cidr any[2];
	struct sockaddr_storage ss;
	ck_assert_int_eq(config_parse_cidr("0.0.0.0/0", &any[0]), 0);
	ck_assert_int_eq(config_parse_cidr("::/0", &any[1]), 0);
	ck_assert_int_eq(sockaddr_of("203.0.113.9", &ss), 0);
	ck_assert_int_eq(config_cidr_match(any, 1, (struct sockaddr *)&ss), 1);
	ck_assert_int_eq(config_cidr_match(any + 1, 1, (struct sockaddr *)&ss), 0);
	ck_assert_int_eq(sockaddr_of("2001:db8::9", &ss), 0);
	ck_assert_int_eq(config_cidr_match(any + 1, 1, (struct sockaddr *)&ss), 1);
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	ck_assert_int_eq(config_cidr_match(any, 2, (struct sockaddr *)&ss), 0);
}
END_TEST

static const struct {
	const char *domain;
	const char *via; /* the route's next hop host, NULL: no route */
} route_matches[] = {
	{"example.org", "exact"},
	{"EXAMPLE.ORG", "exact"},
	{"example.org.", "exact"},
	{"a.example.org", "wild"},
	{"a.b.example.org", "wild"},
	{"deep.sub.example.org", "wild"},
	{"x.deep.sub.example.org", "deeper"},
	{"sub.example.org", "wild"},
	{"notexample.org", NULL},
	{"example.org.evil", NULL},
	{"org", NULL},
	{"other.net", NULL},
	{"x.other.net", "otherwild"},
	{"other.net.", NULL},
	{"", NULL},
	{".example.org", NULL},
};

START_TEST(test_route_for)
{
	struct config cfg;
	char path[64], *errs;
	ck_assert_int_eq(load("route example.org [exact]\n"
			      "route *.example.org [wild]\n"
			      "route *.deep.sub.example.org [deeper]\n"
			      "route *.other.net [otherwild]\n",
			      &cfg, path, &errs),
			 0);
	const struct cfg_route *r = config_route_for(&cfg, route_matches[_i].domain);
	if (route_matches[_i].via == NULL)
		ck_assert_msg(r == NULL, "%s routed via %s", route_matches[_i].domain,
			      r ? r->hop.host : "");
	else {
		ck_assert_msg(r != NULL, "%s: no route", route_matches[_i].domain);
		ck_assert_str_eq(r->hop.host, route_matches[_i].via);
	}
	free(errs);
	config_free(&cfg);
}
END_TEST

static const struct {
	const char *domain;
	int relay;
} relay_matches[] = {
	{"example.org", 1}, {"Example.Org", 1}, {"example.org.", 1}, {"a.example.org", 0},
	{"example.net", 0}, {"a.example.net", 1}, {"a.b.example.net", 1}, {"xexample.net", 0},
	{"example.com", 0}, {"", 0},
};

START_TEST(test_relay_domain)
{
	struct config cfg;
	char path[64], *errs;
	ck_assert_int_eq(load("relay-domains example.org *.example.net\n", &cfg, path, &errs), 0);
	ck_assert_msg(config_is_relay_domain(&cfg, relay_matches[_i].domain) ==
			      relay_matches[_i].relay,
		      "%s", relay_matches[_i].domain);
	free(errs);
	config_free(&cfg);
	/* No relay-domains: nothing is one. */
	config_defaults(&cfg);
	ck_assert_int_eq(config_is_relay_domain(&cfg, relay_matches[_i].domain), 0);
	config_free(&cfg);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("load");
	tcase_add_unchecked_fixture(tc, fixtures_setup, fixtures_teardown);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_shipped_config);
	tcase_add_test(tc, test_shipped_examples);
	tcase_add_loop_test(tc, test_good_scalar, 0, N(good_scalars));
	tcase_add_test(tc, test_strings);
	tcase_add_test(tc, test_state_dir_relative);
	tcase_add_test(tc, test_listen);
	tcase_add_test(tc, test_lists);
	tcase_add_test(tc, test_smarthost_route);
	tcase_add_test(tc, test_rates);
	tcase_add_loop_test(tc, test_bad_config, 0, N(bad_configs));
	tcase_add_test(tc, test_nul_byte);
	tcase_add_test(tc, test_all_errors_reported);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_null_errs);
	suite_add_tcase(s, tc);

	tc = tcase_create("values");
	tcase_add_loop_test(tc, test_parse_duration, 0, N(durations));
	tcase_add_loop_test(tc, test_parse_size, 0, N(sizes));
	tcase_add_loop_test(tc, test_parse_rate, 0, N(rates));
	tcase_add_loop_test(tc, test_parse_cidr, 0, N(cidrs));
	tcase_add_loop_test(tc, test_parse_nexthop, 0, N(nexthops));
	suite_add_tcase(s, tc);

	tc = tcase_create("lookups");
	tcase_add_loop_test(tc, test_cidr_match, 0, N(cidr_matches));
	tcase_add_test(tc, test_cidr_match_all_and_unix);
	tcase_add_loop_test(tc, test_route_for, 0, N(route_matches));
	tcase_add_loop_test(tc, test_relay_domain, 0, N(relay_matches));
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
