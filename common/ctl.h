/*
 * ctl.h - the relayctl commands in one table: their arguments and which
 * process answers them. relayctl checks usage with it; the master routes
 * requests with it.
 */
#ifndef RELAYD_CTL_H
#define RELAYD_CTL_H

enum ctl_target {
	CTL_MASTER = 0x1,
	CTL_INTAKE = 0x2,
	CTL_QUEUE = 0x4,
	CTL_DELIVERY = 0x8,
};

struct ctl_command {
	const char *name;
	int min_args, max_args; /* after the command name */
	unsigned targets;       /* more than one: answers are merged (stats) */
	int mutates;            /* only root and control-group may run it */
	const char *usage;
};

/* NULL when name is no command. */
const struct ctl_command *ctl_command_find(const char *name);
/* 0 when argc/argv (argv[0] the command) fit the table, else -1. */
int ctl_command_check(int argc, char **argv, const struct ctl_command **cmd);
/* Every command's usage, one per line. */
const char *ctl_usage(void);

#define CTL_EXIT_OK 0
#define CTL_EXIT_FAIL 1
#define CTL_EXIT_USAGE 2

#endif
