/*
 * master_sockets.c - the listening sockets the master makes before any
 * fork, so that a restarted worker inherits the same ones: the SMTP
 * listeners and submit.sock (local submission: sendmail) for intake, and
 * queue.sock for the queue worker.
 */
#include "master.h"
#include "common/log.h"
#include "common/xmalloc.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int master_tcp_listen(const struct cfg_listen *l)
{
	int fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (l->addr.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&l->addr, l->addrlen) < 0 || listen(fd, 1024) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/*
 * submit.sock is for every local user (sendmail): intake learns who
 * connected from SO_PEERCRED, so no directory or group has to vouch.
 */
static int master_submit_listen(struct master *m)
{
	char path[512];

	worker_state_path(m->cfg, SUBMIT_SOCK, path, sizeof(path));
	int fd = master_unix_listen(path, 0666);
	if (fd < 0) {
		log_errx("%s: %s", path, strerror(errno));
		return -1;
	}
	master_unix_hand_over(m->cfg, path, (gid_t)-1, 0666);
	return fd;
}

int master_listen_open(struct master *m)
{
	m->nlisten_fds = m->cfg->nlistens + 1;
	m->listen_fds = xcalloc(m->nlisten_fds, sizeof(int));
	for (size_t i = 0; i < m->nlisten_fds; i++)
		m->listen_fds[i] = -1;
	m->listen_fds[m->cfg->nlistens] = master_submit_listen(m);
	if (m->listen_fds[m->cfg->nlistens] < 0)
		return -1;
	for (size_t i = 0; i < m->cfg->nlistens; i++) {
		m->listen_fds[i] = master_tcp_listen(&m->cfg->listens[i]);
		if (m->listen_fds[i] < 0) {
			log_errx("listen %s: %s", m->cfg->listens[i].text, strerror(errno));
			return -1;
		}
		log_info("listening on %s", m->cfg->listens[i].text);
	}
	return 0;
}

int master_unix_listen(const char *path, mode_t mode)
{
	struct sockaddr_un sun;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sun.sun_path, path);
	/* A socket left by a crashed instance is replaced; a live one is not. */
	int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe < 0)
		return -1;
	int live = connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	close(probe);
	if (live) {
		errno = EADDRINUSE;
		return -1;
	}
	unlink(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	mode_t old = umask(0777 & ~mode);
	int r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r < 0 || listen(fd, 128) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

void master_listen_close(struct master *m)
{
	char path[512];

	if (m->nlisten_fds == 0 || m->listen_fds[m->nlisten_fds - 1] < 0)
		return;
	worker_state_path(m->cfg, SUBMIT_SOCK, path, sizeof(path));
	unlink(path);
}

void master_unix_hand_over(const struct config *cfg, const char *path, gid_t gid, mode_t mode)
{
	uid_t uid;
	gid_t ugid;

	master_owner(cfg, &uid, &ugid);
	if (chown(path, uid, gid == (gid_t)-1 ? ugid : gid) < 0 || chmod(path, mode) < 0)
		log_warnx("%s: cannot hand it to uid %u: %s", path, (unsigned)uid, strerror(errno));
}
