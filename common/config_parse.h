/*
 * config_parse.h - what the two halves of the config parser share: the
 * parser's state, the directive table's row, and the helpers both call.
 * config_grammar.c holds the directives (one table row and one parser
 * each); config.c reads the file line by line, checks the rules between
 * directives and owns the struct's life (defaults, free). Private to them.
 */
#ifndef RELAYD_CONFIG_PARSE_H
#define RELAYD_CONFIG_PARSE_H

#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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

/* config.c */
void cfg_err(struct cfg_state *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * The content of a file the config names: the master reads it now (as the
 * user relayd starts as); a worker looks it up among the files it was given.
 * NULL: unreadable (errno set), or not given to this worker's role.
 */
const struct cfg_file *cfg_file(struct cfg_state *st, const char *path);

/* config_grammar.c */
const struct cfg_directive *cfg_directive(const char *name);
/* The row's index, for cfg_state.seen. */
size_t cfg_directive_index(const struct cfg_directive *d);
void cfg_lower(char *s);
/* "ADDR:PORT" into l->addr (IPv6 in brackets). */
int cfg_listen_addr(const char *s, struct cfg_listen *l);
void cfg_hop_free(struct cfg_nexthop *hop);

#endif
