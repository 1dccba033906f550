/*
 * addr_map.h - address patterns and the maps built from them: the files
 * of rewrite-sender and rewrite-recipient (PATTERN REPLACEMENT lines), the
 * patterns of sender-route and auth-senders, and the rewriter of the
 * address fields of a header section (From:, Sender:, Reply-To:).
 *
 * A pattern is "user@domain" (that address), "@domain" (any address at
 * domain), "@.domain" (any address at a subdomain of domain, not domain
 * itself) or "user@.domain" (that local part at any subdomain). Local
 * parts and domains compare without regard to case.
 */
#ifndef RELAYD_ADDR_MAP_H
#define RELAYD_ADDR_MAP_H

#include "buf.h"

#include <stddef.h>

struct addr_pattern {
	char *local;    /* NULL: any local part */
	char *domain;   /* lower case */
	int subdomains; /* "@.domain" */
};

struct addr_map_entry {
	struct addr_pattern pat;
	char *local;    /* the replacement's local part; NULL: keep the address's */
	char *domain;   /* the replacement's domain */
};

struct addr_map {
	struct addr_map_entry *v;
	size_t n;
};

/* auth-senders: the senders each authenticated user may use. */
struct addr_owner {
	char *user;
	struct addr_pattern *pats;
	size_t npats;
};

struct addr_owners {
	struct addr_owner *v;
	size_t n;
};

/* Called for each bad line of a map: its number and what is wrong. */
typedef void (*addr_map_err_fn)(void *arg, unsigned line, const char *msg);

/* 0 and *p filled, or -1 when s is no pattern. */
int addr_pattern_parse(const char *s, struct addr_pattern *p);
void addr_pattern_free(struct addr_pattern *p);
/* 1 when addr ("local@domain") matches. */
int addr_pattern_match(const struct addr_pattern *p, const char *addr);

/*
 * Parses a map file's text into m (appended to what m holds): blank lines
 * and "#" comments skipped; each bad line is reported through err and left
 * out. Returns the number of bad lines.
 */
int addr_map_parse(struct addr_map *m, const char *text, size_t len, addr_map_err_fn err,
		   void *arg);
void addr_map_free(struct addr_map *m);
/*
 * The first entry matching addr rewrites it into out (outsz octets):
 * returns 1 when addr was rewritten, 0 when no entry matches (or the
 * result would not fit: the address is kept).
 */
int addr_map_apply(const struct addr_map *m, const char *addr, char *out, size_t outsz);

/*
 * Parses "USER PATTERN..." lines (an auth-senders file) into o, like
 * addr_map_parse; a user on several lines has the patterns of all.
 */
int addr_owners_parse(struct addr_owners *o, const char *text, size_t len, addr_map_err_fn err,
		      void *arg);
void addr_owners_free(struct addr_owners *o);
/* 1 when user may use sender: one of its patterns matches. */
int addr_owners_allow(const struct addr_owners *o, const char *user, const char *sender);

/*
 * Rewrites the addresses of one header field value (the octets after the
 * colon, folding included) into out: mailboxes, name-addrs and groups;
 * display names, comments and anything that does not parse as an address
 * are copied byte for byte. Returns how many addresses were rewritten.
 */
unsigned addr_header_rewrite(const struct addr_map *m, const char *v, size_t n,
			     struct buf *out);
/*
 * The same over a header section (or its start): every complete field
 * whose name is From, Sender or Reply-To gets its value rewritten; the
 * rest, and a last field not yet complete, are copied. final: the section
 * is all there (its last field is complete). Returns the addresses
 * rewritten.
 */
unsigned addr_header_section_rewrite(const struct addr_map *m, const char *p, size_t n,
				     int final, struct buf *out);

#endif
