/*
 * relayd.c - the relayd command: option parsing, config check (-n), and
 * the start of the master, which forks the workers.
 */
#include "common/config.h"
#include "common/log.h"
#include "relayd/master/master.h"
#include "relayd/master/proctitle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(void)
{
	fprintf(stderr, "usage: relayd [-f FILE] [-d | -F] [-n] [-v]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *path = CONFIG_DEFAULT_PATH;
	const char *roles = NULL, *worker = NULL;
	int foreground = 0, stay = 0, check_only = 0, verbose = 0, ch;

	proctitle_init(argc, argv);
	/* -X ROLES runs only some workers: for tests of one worker. */
	/* -W ROLE: a worker, exec'd by the master (master_exec_role). */
	/* -F: no fork, but syslog as a daemon (under systemd, Type=notify). */
	while ((ch = getopt(argc, argv, "f:dFnvX:W:")) != -1) {
		switch (ch) {
		case 'f':
			path = optarg;
			break;
		case 'd':
			foreground = 1;
			break;
		case 'F':
			stay = 1;
			break;
		case 'n':
			check_only = 1;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'X':
			roles = optarg;
			break;
		case 'W':
			worker = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (worker != NULL) {
		log_init(worker, foreground, verbose);
		master_worker_main(worker);
	}

	struct config cfg;
	int errors = config_load(path, &cfg, stderr);
	if (check_only) {
		if (errors == 0)
			printf("%s: configuration OK\n", path);
		config_free(&cfg);
		return errors ? 1 : 0;
	}
	if (errors) {
		fprintf(stderr, "relayd: %d error%s in %s; not starting\n", errors,
			errors == 1 ? "" : "s", path);
		config_free(&cfg);
		return 1;
	}
	/* Checked before daemon(): the reason reaches the terminal. */
	char err[512];
	if (master_state_dir(&cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "relayd: %s; not starting\n", err);
		config_free(&cfg);
		return 1;
	}
	if (!foreground && !stay && daemon(1, 0) < 0) {
		perror("relayd: daemon");
		return 1;
	}
	log_init("master", foreground, verbose);
	int rc = master_run(&cfg, foreground, verbose, roles);
	config_free(&cfg);
	return rc;
}
