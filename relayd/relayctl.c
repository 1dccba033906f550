/*
 * relayctl.c - the control client: sends one command to the master over
 * STATE_DIR/control.sock and prints the answer. Exit status: 0 success,
 * 1 the command failed or no daemon answers, 2 usage.
 */
#include "common/config.h"
#include "common/ctl.h"
#include "common/ipc.h"
#include "common/ipc_msg.h"
#include "common/ipc_types.h"
#include "common/worker.h"
#include "common/xmalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define RELAYCTL_TIMEOUT_S 30

static int relayctl_connect(const struct config *cfg)
{
	struct sockaddr_un sun;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	worker_state_path(cfg, "control.sock", sun.sun_path, sizeof(sun.sun_path));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "relayctl: cannot reach relayd at %s: %s\n", sun.sun_path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	struct timeval tv = {RELAYCTL_TIMEOUT_S, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* A long answer's PART frames, printed as they come, end with the REP. */
static int relayctl_answer(int fd)
{
	uint32_t type;
	uint8_t *p;
	long n;
	while ((n = ipc_read_frame_blocking(fd, &type, &p)) >= 0) {
		struct ipc_msg_ctl_rep rep = {0, CTL_EXIT_OK, {"", 0}};
		struct ipc_msg_ctl_part part;
		struct ipc_rd rd;
		int bad = 1;
		ipc_rd_init(&rd, p, (size_t)n);
		if (type == MSG_CTL_PART && ipc_msg_ctl_part_decode(&rd, &part) == 0) {
			rep.text = (struct ipc_str){(const char *)part.text.p, part.text.n};
			bad = 0;
		} else if (type == MSG_CTL_REP) {
			bad = ipc_msg_ctl_rep_decode(&rd, &rep) < 0;
		}
		if (bad) {
			fprintf(stderr, "relayctl: malformed answer from relayd\n");
			free(p);
			return CTL_EXIT_FAIL;
		}
		uint32_t status = rep.status;
		/* Parts come only ahead of a successful answer's last text. */
		fwrite(rep.text.p, 1, rep.text.n, status == CTL_EXIT_OK ? stdout : stderr);
		free(p);
		if (type == MSG_CTL_REP)
			return status > CTL_EXIT_USAGE ? CTL_EXIT_FAIL : (int)status;
	}
	fflush(stdout);
	fprintf(stderr, "relayctl: no answer from relayd\n");
	return CTL_EXIT_FAIL;
}

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
	if (ctl_command_check(argc, argv, NULL) < 0 || argc > IPC_CTL_MAX_ARGS) {
		fputs(ctl_usage(), stderr);
		return CTL_EXIT_USAGE;
	}

	/* Only state-dir matters here: errors elsewhere in the file are the
	 * daemon's business (reload reports them), not a reason to fail. */
	FILE *probe = fopen(path, "r");
	if (probe == NULL) {
		fprintf(stderr, "relayctl: %s: %s\n", path, strerror(errno));
		return CTL_EXIT_FAIL;
	}
	fclose(probe);
	struct config cfg;
	FILE *devnull = fopen("/dev/null", "w");
	config_load(path, &cfg, devnull ? devnull : stderr);
	if (devnull)
		fclose(devnull);
	int fd = relayctl_connect(&cfg);
	config_free(&cfg);
	if (fd < 0)
		return CTL_EXIT_FAIL;

	struct ipc_msg_ctl_req req = {.reqid = 1, .argc = (uint32_t)argc};
	for (int i = 0; i < argc; i++)
		req.argv[i] = ipc_str(argv[i]);
	struct ipc_wr wr;
	ipc_wr_init(&wr);
	ipc_msg_ctl_req_encode(&wr, &req);
	int rc = ipc_write_frame_blocking(fd, MSG_CTL_REQ, buf_head(&wr.b), buf_avail(&wr.b));
	ipc_wr_free(&wr);

	int status = CTL_EXIT_FAIL;
	if (rc < 0)
		fprintf(stderr, "relayctl: cannot send to relayd: %s\n", strerror(errno));
	else
		status = relayctl_answer(fd);
	close(fd);
	return status;
}
