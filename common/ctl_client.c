/*
 * ctl_client.c - one request on STATE_DIR/control.sock and its answer.
 */
#include "ctl_client.h"
#include "config.h"
#include "ctl.h"
#include "ipc.h"
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
	struct sockaddr_un sun;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	worker_state_path(cfg, "control.sock", sun.sun_path, sizeof(sun.sun_path));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "%s: cannot reach relayd at %s: %s\n", prog, sun.sun_path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
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
		struct ipc_rd rd;
		size_t tn;
		ipc_rd_init(&rd, p, (size_t)n);
		ipc_get_u32(&rd);
		uint32_t status = type == MSG_CTL_REP ? ipc_get_u32(&rd) : CTL_EXIT_OK;
		const uint8_t *text = ipc_get_bytes(&rd, &tn);
		if ((type != MSG_CTL_PART && type != MSG_CTL_REP) || ipc_rd_done(&rd) < 0) {
			fprintf(stderr, "%s: malformed answer from relayd\n", prog);
			free(p);
			return CTL_EXIT_FAIL;
		}
		/* Parts come only ahead of a successful answer's last text. */
		fwrite(text, 1, tn, status == CTL_EXIT_OK ? stdout : stderr);
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

	struct ipc_wr wr;
	ipc_wr_init(&wr);
	ipc_put_u32(&wr, 1);
	ipc_put_u32(&wr, (uint32_t)argc);
	for (int i = 0; i < argc; i++)
		ipc_put_str(&wr, argv[i]);
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
