/*
 * ctl.c - the relayctl command table.
 */
#include "ctl.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

static const struct ctl_command ctl_commands[] = {
	{"status", 0, 0, CTL_MASTER, 0, "status"},
	{"reload", 0, 0, CTL_MASTER, 1, "reload"},
	{"queue", 0, 2, CTL_QUEUE, 0, "queue [--summary] [--json]"},
	{"show", 1, 1, CTL_QUEUE, 0, "show QID"},
	{"trace", 1, 1, CTL_QUEUE, 0, "trace QID"},
	{"flush", 0, 1, CTL_QUEUE, 1, "flush [QID]"},
	{"hold", 1, 1, CTL_QUEUE, 1, "hold QID"},
	{"release", 1, 1, CTL_QUEUE, 1, "release QID"},
	{"delete", 1, 1, CTL_QUEUE, 1, "delete QID|all"},
	{"stats", 0, 1, CTL_INTAKE | CTL_QUEUE | CTL_DELIVERY, 0, "stats [--json]"},
	{"route", 1, 3, CTL_DELIVERY, 0, "route ADDRESS [--from SENDER]"},
	{"dkim", 1, 1, CTL_DELIVERY, 0, "dkim DOMAIN"},
};

const struct ctl_command *ctl_command_find(const char *name)
{
	for (size_t i = 0; i < sizeof(ctl_commands) / sizeof(ctl_commands[0]); i++)
		if (strcmp(ctl_commands[i].name, name) == 0)
			return &ctl_commands[i];
	return NULL;
}

/* queue: --summary and --json, each at most once, in any order. */
static int ctl_queue_options(int argc, char **argv)
{
	int json = 0, summary = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0 && !json)
			json = 1;
		else if (strcmp(argv[i], "--summary") == 0 && !summary)
			summary = 1;
		else
			return -1;
	}
	return 0;
}

int ctl_command_check(int argc, char **argv, const struct ctl_command **cmd)
{
	if (argc < 1)
		return -1;
	const struct ctl_command *c = ctl_command_find(argv[0]);
	if (c == NULL || argc - 1 < c->min_args || argc - 1 > c->max_args)
		return -1;
	/* The options commands take: --json, queue's --summary, and route's
	 * --from SENDER. */
	if (strcmp(c->name, "stats") == 0 && argc == 2 && strcmp(argv[1], "--json") != 0)
		return -1;
	if (strcmp(c->name, "queue") == 0 && ctl_queue_options(argc, argv) < 0)
		return -1;
	if (strcmp(c->name, "route") == 0 && argc != 2 &&
	    (argc != 4 || strcmp(argv[2], "--from") != 0))
		return -1;
	if (cmd)
		*cmd = c;
	return 0;
}

const char *ctl_usage(void)
{
	static char usage[1024];
	if (usage[0] != '\0')
		return usage;
	size_t off = (size_t)snprintf(usage, sizeof(usage), "usage: relayctl [-f FILE] COMMAND\n");
	for (size_t i = 0; i < sizeof(ctl_commands) / sizeof(ctl_commands[0]) && off < sizeof(usage); i++)
		off += (size_t)snprintf(usage + off, sizeof(usage) - off, "  %s\n", ctl_commands[i].usage);
	return usage;
}
