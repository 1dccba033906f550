/*
 * relayctl.c - the control client: sends one command to the master over
 * STATE_DIR/control.sock and prints the answer (common/ctl_client.c).
 * Exit status: 0 success, 1 the command failed or no daemon answers, 2
 * usage.
 */
#include "common/config.h"
#include "common/ctl.h"
#include "common/ctl_client.h"

#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	const char *path = CONFIG_DEFAULT_PATH;
	int ch;

	while ((ch = getopt(argc, argv, "+f:")) != -1) {
		if (ch != 'f') {
			fputs(ctl_usage(), stderr);
			return CTL_EXIT_USAGE;
		}
		path = optarg;
	}
	argc -= optind;
	argv += optind;
	if (ctl_command_check(argc, argv, NULL) < 0) {
		fputs(ctl_usage(), stderr);
		return CTL_EXIT_USAGE;
	}
	return ctl_client_run("relayctl", path, argc, argv);
}
