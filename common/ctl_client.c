/*
 * ctl_client.c - one request on STATE_DIR/control.sock and its answer.
 */
#include "ctl_client.h"
#include "config.h"
#include "ctl.h"
#include "ipc.h"
#include "ipc_msg.h"
#include "ipc_types.h"
#include "worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define CTL_CLIENT_TIMEOUT_S 30

static int ctl_client_connect(const char *prog, const struct config *cfg)
{
	int fd = worker_state_connect(cfg, "control.sock", 0);
	if (fd < 0) {
		char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
		worker_state_path(cfg, "control.sock", path, sizeof(path));
		fprintf(stderr, "%s: cannot reach relayd at %s: %s\n", prog, path, strerror(errno));
		return -1;
	}
	struct timeval tv = {CTL_CLIENT_TIMEOUT_S, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* A long answer's PART frames, printed as they come, end with the REP. */
static int ctl_client_answer(const char *prog, int fd)
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
			fprintf(stderr, "%s: malformed answer from relayd\n", prog);
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
	fprintf(stderr, "%s: no answer from relayd\n", prog);
	return CTL_EXIT_FAIL;
}

int ctl_client_run(const char *prog, const char *path, int argc, char **argv)
{
	/* Only state-dir matters here: errors elsewhere in the file are the
	 * daemon's business (reload reports them), not a reason to fail. */
	FILE *probe = fopen(path, "r");
	if (probe == NULL) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
		return CTL_EXIT_FAIL;
	}
	fclose(probe);
	struct config cfg;
	FILE *devnull = fopen("/dev/null", "w");
	config_load(path, &cfg, devnull ? devnull : stderr);
	if (devnull)
		fclose(devnull);
	int fd = ctl_client_connect(prog, &cfg);
	config_free(&cfg);
	if (fd < 0)
		return CTL_EXIT_FAIL;

	if (argc > IPC_CTL_MAX_ARGS) {
		fprintf(stderr, "%s: too many arguments\n", prog);
		close(fd);
		return CTL_EXIT_USAGE;
	}
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
		fprintf(stderr, "%s: cannot send to relayd: %s\n", prog, strerror(errno));
	else
		status = ctl_client_answer(prog, fd);
	close(fd);
	return status;
}
