/*
 * intake_local.c - local submission (the sendmail command): sessions on
 * submit.sock, whose user the kernel names (SO_PEERCRED), and the pickup
 * of STATE_DIR/maildrop, where sendmail leaves messages while relayd is
 * down. A dropped file goes through the same SMTP code as any client: the
 * pickup opens a session on one end of a socketpair, as the file's owner,
 * and speaks the submission dialogue (submit_dlg.c) on the other end, so
 * the DATA checks, the Received: line, the headers added and the logs are
 * the same as for sendmail through the socket. One file at a time, the
 * oldest first; inotify says when files arrive, a timer retries files
 * that met a temporary failure.
 */
#include "intake.h"
#include "smtp_session.h"
#include "common/conn.h"
#include "common/log.h"
#include "common/peercred.h"
#include "common/xmalloc.h"
#include "relayd/delivery/smtpc_reply.h"
#include "relayd/delivery/smtpc_stuff.h"
#include "relayd/sendmail/maildrop.h"
#include "relayd/sendmail/submit_dlg.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* The queue is not up yet: look again soon. */
#define LOCAL_RETRY_MS 1000
/* After a temporary failure, and as a safety net for missed events. */
#define LOCAL_RESCAN_MS 60000
/* A "t." file this old was left by a sendmail that died while writing. */
#define LOCAL_STALE_TMP_S (24 * 3600)
/* Room for the envelope lines of a file beside max-message-size. */
#define LOCAL_ENVELOPE_MAX (1024 * 1024)

struct intake_local {
	struct intake *in;
	int dirfd;
	int ino_fd;
	struct ev_timer timer;
	int backoff;               /* a temporary failure: wait for the timer */
	/* The file being handed in, while c is set. */
	struct conn *c;
	char name[NAME_MAX + 1];
	uid_t uid;
	char *data;
	struct maildrop_msg msg;
	struct submit_dlg dlg;
	struct smtpc_reply reply;
};

void intake_local_accept(struct intake *in, int fd)
{
	struct peercred pc;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t mine = 0;

	if (peercred_get(fd, &pc) < 0) {
		log_warnx("submit.sock: no peer credentials: %s", strerror(errno));
		close(fd);
		return;
	}
	for (const struct smtp_session *s = in->sessions; s != NULL; s = s->next)
		mine += s->mode == LISTEN_LOCAL && s->uid == pc.uid;
	if (in->nsessions >= in->w->cfg->max_connections) {
		intake_refuse(in, fd, "max-connections reached");
		return;
	}
	/* One user's programs are one client: the per-address limit applies. */
	if (mine >= in->w->cfg->max_connections_per_ip) {
		intake_refuse(in, fd, "max-connections-per-ip reached by a local user");
		return;
	}
	struct smtp_session *s =
		smtp_session_new(in, fd, (struct sockaddr *)&sa, sizeof(sa), LISTEN_LOCAL);
	if (s != NULL)
		s->uid = pc.uid;
}

static void local_soon(struct intake_local *lp, uint64_t ms)
{
	ev_timer_start(lp->in->loop, &lp->timer, ms);
}

/*
 * The file is refused for good: kept as "bad." for the admin, never
 * retried. One that cannot be renamed (a name too long for the prefix)
 * is removed, so that no file is taken again and again.
 */
static void local_bad(struct intake_local *lp, const char *name, uid_t uid, const char *why)
{
	char bad[NAME_MAX + 16];

	snprintf(bad, sizeof(bad), MAILDROP_BAD_PREFIX "%s", name + strlen(MAILDROP_MSG_PREFIX));
	if (renameat(lp->dirfd, name, lp->dirfd, bad) == 0) {
		log_warnx("maildrop: %s from uid %u refused: %s; kept as %s", name, (unsigned)uid,
			  why, bad);
		return;
	}
	int e = errno;
	if (unlinkat(lp->dirfd, name, 0) == 0 || unlinkat(lp->dirfd, name, AT_REMOVEDIR) == 0) {
		log_warnx("maildrop: %s from uid %u refused: %s; removed (cannot rename it: %s)",
			  name, (unsigned)uid, why, strerror(e));
		return;
	}
	log_warnx("maildrop: %s from uid %u refused: %s; cannot rename or remove it: %s", name,
		  (unsigned)uid, why, strerror(e));
	lp->backoff = 1;
}

static void local_job_free(struct intake_local *lp)
{
	if (lp->c != NULL)
		conn_free(lp->c);
	lp->c = NULL;
	maildrop_msg_free(&lp->msg);
	free(lp->data);
	lp->data = NULL;
}

/* The dialogue is over, one way or the other. */
static void local_done(struct intake_local *lp, enum submit_result res)
{
	struct submit_dlg *d = &lp->dlg;

	if (res == SUBMIT_OK) {
		if (unlinkat(lp->dirfd, lp->name, 0) < 0)
			log_warnx("maildrop: %s queued as %s but not removed: %s", lp->name, d->qid,
				  strerror(errno));
		log_debug("maildrop: %s from uid %u queued as %s", lp->name, (unsigned)lp->uid,
			  d->qid);
	} else if (d->code >= 500) {
		local_bad(lp, lp->name, lp->uid, d->text);
	} else {
		log_info("maildrop: %s from uid %u not taken now (%s); retrying in %d s", lp->name,
			 (unsigned)lp->uid, d->text, LOCAL_RESCAN_MS / 1000);
		lp->backoff = 1;
	}
	local_job_free(lp);
	local_soon(lp, lp->backoff ? LOCAL_RESCAN_MS : 0);
}

static void local_on_read(struct conn *c, void *arg)
{
	struct intake_local *lp = arg;
	struct buf out;

	for (;;) {
		enum smtpc_parse pr = smtpc_reply_read(&lp->reply, &c->in);
		if (pr == SMTPC_MORE)
			return;
		if (pr == SMTPC_BAD) {
			submit_dlg_lost(&lp->dlg, "malformed reply");
			local_done(lp, SUBMIT_FAILED);
			return;
		}
		buf_init(&out);
		enum submit_result res = submit_dlg_reply(&lp->dlg, &lp->reply, &out);
		smtpc_reply_init(&lp->reply);
		if (res == SUBMIT_CONTENT) {
			struct smtpc_stuff st;
			smtpc_stuff_init(&st);
			smtpc_stuff(&st, (const uint8_t *)lp->msg.content, lp->msg.len, &out);
			smtpc_stuff_end(&st, &out);
		}
		if (buf_avail(&out) > 0)
			conn_write(c, buf_head(&out), buf_avail(&out));
		buf_free(&out);
		if (res == SUBMIT_OK || res == SUBMIT_FAILED) {
			local_done(lp, res);
			return;
		}
	}
}

static void local_on_close(struct conn *c, void *arg, const char *why)
{
	struct intake_local *lp = arg;
	(void)c;
	submit_dlg_lost(&lp->dlg, why);
	local_done(lp, SUBMIT_FAILED);
}

/* Reads the file whole; -1 (and the file dealt with) when it cannot go in. */
static int local_read(struct intake_local *lp, const char *name)
{
	struct stat sb;
	uint64_t max = lp->in->w->cfg->max_message_size + LOCAL_ENVELOPE_MAX;
	int fd = openat(lp->dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &sb) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		if (e != ENOENT)
			local_bad(lp, name, (uid_t)-1, strerror(e));
		return -1;
	}
	/* A link to someone else's file, or a device, is nobody's message. */
	const char *why = !S_ISREG(sb.st_mode) ? "not a regular file"
			  : sb.st_nlink != 1	 ? "a hard link"
			  : (uint64_t)sb.st_size > max ? "too big"
						      : NULL;
	if (why != NULL) {
		close(fd);
		local_bad(lp, name, sb.st_uid, why);
		return -1;
	}
	lp->data = xmalloc((size_t)sb.st_size + 1);
	size_t got = 0;
	while (got < (size_t)sb.st_size) {
		ssize_t n = read(fd, lp->data + got, (size_t)sb.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	lp->data[got] = '\0';
	lp->uid = sb.st_uid;
	if (maildrop_parse(lp->data, got, &lp->msg) < 0) {
		local_bad(lp, name, sb.st_uid, "malformed file");
		free(lp->data);
		lp->data = NULL;
		return -1;
	}
	return 0;
}

static void local_start(struct intake_local *lp, const char *name)
{
	struct intake *in = lp->in;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int sv[2];

	if (local_read(lp, name) < 0) {
		local_soon(lp, lp->backoff ? LOCAL_RESCAN_MS : 0);
		return;
	}
	/* Intake would answer 452 past the limit, forever: a drop over it never goes in. */
	if (lp->msg.nrcpts > in->w->cfg->max_recipients) {
		char why[96];
		snprintf(why, sizeof(why), "%zu recipients, max-recipients is %u", lp->msg.nrcpts,
			 in->w->cfg->max_recipients);
		local_bad(lp, name, lp->uid, why);
		local_job_free(lp);
		local_soon(lp, lp->backoff ? LOCAL_RESCAN_MS : 0);
		return;
	}
	snprintf(lp->name, sizeof(lp->name), "%s", name);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
		log_warnx("maildrop: socketpair: %s", strerror(errno));
		goto later;
	}
	struct smtp_session *s =
		smtp_session_new(in, sv[0], (struct sockaddr *)&sa, sizeof(sa), LISTEN_LOCAL);
	if (s == NULL) {
		close(sv[1]);
		goto later;
	}
	s->uid = lp->uid;
	submit_dlg_init(&lp->dlg, lp->msg.sender, lp->msg.rcpts, lp->msg.nrcpts, lp->msg.content,
			lp->msg.len);
	smtpc_reply_init(&lp->reply);
	lp->c = conn_new(in->loop, sv[1], local_on_read, local_on_close, lp);
	if (lp->c == NULL) {
		close(sv[1]);
		goto later;
	}
	return;
later:
	local_job_free(lp);
	lp->backoff = 1;
	local_soon(lp, LOCAL_RESCAN_MS);
}

static int local_has_prefix(const char *name, const char *prefix)
{
	return strncmp(name, prefix, strlen(prefix)) == 0;
}

/* Removes stale "t." files; hands in the oldest "m." file. */
static void local_scan(void *arg)
{
	struct intake_local *lp = arg;
	char best[NAME_MAX + 1] = "";
	struct stat sb;

	if (lp->c != NULL)
		return; /* its end schedules the next scan */
	lp->backoff = 0;
	if (!intake_queue_up(lp->in)) {
		local_soon(lp, LOCAL_RETRY_MS);
		return;
	}
	int dfd = openat(lp->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (d == NULL) {
		log_warnx("maildrop: cannot read it: %s", strerror(errno));
		if (dfd >= 0)
			close(dfd);
		local_soon(lp, LOCAL_RESCAN_MS);
		return;
	}
	int64_t now = ev_wallclock();
	for (struct dirent *de; (de = readdir(d)) != NULL;) {
		if (local_has_prefix(de->d_name, MAILDROP_MSG_PREFIX)) {
			if (best[0] == '\0' || strcmp(de->d_name, best) < 0)
				snprintf(best, sizeof(best), "%s", de->d_name);
		} else if (local_has_prefix(de->d_name, MAILDROP_TMP_PREFIX) &&
			   fstatat(lp->dirfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
			   sb.st_mtime < now - LOCAL_STALE_TMP_S) {
			log_info("maildrop: removing %s, left unfinished by uid %u", de->d_name,
				 (unsigned)sb.st_uid);
			unlinkat(lp->dirfd, de->d_name, 0);
		}
	}
	closedir(d);
	if (best[0] != '\0')
		local_start(lp, best);
	else
		local_soon(lp, LOCAL_RESCAN_MS);
}

static void local_on_inotify(int fd, uint32_t events, void *arg)
{
	struct intake_local *lp = arg;
	char evbuf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	(void)events;

	while (read(fd, evbuf, sizeof(evbuf)) > 0)
		;
	if (lp->c == NULL && !lp->backoff)
		local_soon(lp, 0);
}

void intake_local_init(struct intake *in)
{
	struct intake_local *lp = xcalloc(1, sizeof(*lp));
	char path[4096];

	lp->in = in;
	lp->ino_fd = -1;
	in->local = lp;
	ev_timer_init(&lp->timer, local_scan, lp);
	worker_state_path(in->w->cfg, MAILDROP_DIR, path, sizeof(path));
	lp->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lp->dirfd < 0) {
		log_warnx("maildrop %s: %s; dropped mail is not picked up", path, strerror(errno));
		return;
	}
	lp->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (lp->ino_fd < 0 || inotify_add_watch(lp->ino_fd, path, IN_MOVED_TO | IN_CLOSE_WRITE) < 0 ||
	    ev_io_add(in->loop, lp->ino_fd, EPOLLIN, local_on_inotify, lp) < 0) {
		log_warnx("maildrop %s: no inotify (%s); looking every %d s", path, strerror(errno),
			  LOCAL_RESCAN_MS / 1000);
		if (lp->ino_fd >= 0)
			close(lp->ino_fd);
		lp->ino_fd = -1;
	}
	local_soon(lp, 0);
}

void intake_local_stop(struct intake *in)
{
	struct intake_local *lp = in->local;

	if (lp == NULL)
		return;
	local_job_free(lp);
	ev_timer_stop(in->loop, &lp->timer);
	if (lp->ino_fd >= 0) {
		ev_io_del(in->loop, lp->ino_fd);
		close(lp->ino_fd);
	}
	if (lp->dirfd >= 0)
		close(lp->dirfd);
	free(lp);
	in->local = NULL;
}
