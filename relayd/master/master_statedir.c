/*
 * master_statedir.c - the state directory: made, handed to `user`, and
 * checked before relayd starts, as Postfix's permission checks do. It
 * holds the queue (every message's content) and the sockets. Like
 * Postfix's /var/spool/postfix it is traversable but not listable by
 * others (0711; 0751 with control-group, whose members may run relayctl),
 * owned by the workers' user, and every name in it is closed by its own
 * mode: queue.db 0600, queue.sock 0700, control.sock 0600 (0660 with
 * control-group). Only submit.sock (0666) and maildrop/ (03733: anyone
 * may drop a file, nobody may list, files take the workers' group) are
 * for every local user, so that sendmail works for all of them. A
 * directory others can write to, or that belongs to someone else, stops
 * relayd with the reason.
 */
#include "master.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void master_owner(const struct config *cfg, uid_t *uid, gid_t *gid)
{
	*uid = geteuid();
	*gid = getegid();
	if (getuid() == 0 && cfg->user) {
		struct passwd *pw = getpwnam(cfg->user);
		if (pw != NULL) {
			*uid = pw->pw_uid;
			*gid = pw->pw_gid;
		}
	}
}

/*
 * A directory of the state: made, no symlink, no one else's, then given
 * to uid:gid with mode. -1 with the reason in err.
 */
static int master_own_dir(const struct config *cfg, const char *what, const char *dir, uid_t uid,
			  gid_t gid, mode_t mode, char *err, size_t errsz)
{
	struct stat sb;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errsz, "%s %s: %s", what, dir, strerror(errno));
		return -1;
	}
	if (lstat(dir, &sb) < 0) {
		snprintf(err, errsz, "%s %s: %s", what, dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(sb.st_mode)) {
		snprintf(err, errsz, "%s %s is not a directory", what, dir);
		return -1;
	}
	if ((sb.st_mode & S_IWOTH) && !(mode & S_IWOTH)) {
		snprintf(err, errsz, "%s %s is writable by others (mode %04o); "
			 "make it %04o", what, dir, (unsigned)(sb.st_mode & 07777), (unsigned)mode);
		return -1;
	}
	/* Made by root (mkdir by hand, or an older relayd): taken over. */
	if (sb.st_uid != uid && sb.st_uid != 0) {
		snprintf(err, errsz, "%s %s belongs to uid %u, not to %s (uid %u)", what, dir,
			 (unsigned)sb.st_uid, cfg->user ? cfg->user : "relayd's user", (unsigned)uid);
		return -1;
	}
	if ((sb.st_uid != uid || sb.st_gid != gid) && chown(dir, uid, gid) < 0) {
		snprintf(err, errsz, "%s %s: cannot hand it to uid %u: %s", what, dir,
			 (unsigned)uid, strerror(errno));
		return -1;
	}
	if ((sb.st_mode & 07777) != mode && chmod(dir, mode) < 0) {
		snprintf(err, errsz, "%s %s: chmod %04o: %s", what, dir, (unsigned)mode,
			 strerror(errno));
		return -1;
	}
	return 0;
}

int master_state_dir(const struct config *cfg, char *err, size_t errsz)
{
	uid_t uid;
	gid_t gid;
	char drop[4096];

	if (getuid() == 0 && cfg->user && getpwnam(cfg->user) == NULL) {
		snprintf(err, errsz, "user %s does not exist", cfg->user);
		return -1;
	}
	master_owner(cfg, &uid, &gid);
	gid_t dgid = cfg->control_group ? (gid_t)cfg->control_gid : gid;
	if (master_own_dir(cfg, "state-dir", cfg->state_dir, uid, dgid,
			   cfg->control_group ? 0751 : 0711, err, errsz) < 0)
		return -1;
	/* Sticky: nobody removes another's file; setgid: files are the workers' group. */
	snprintf(drop, sizeof(drop), "%s/%s", cfg->state_dir, MAILDROP_DIR);
	return master_own_dir(cfg, "maildrop", drop, uid, gid, 03733, err, errsz);
}
