/*
 * master_statedir.c - the state directory: made, handed to `user`, and
 * checked before relayd starts, as Postfix's permission checks do. It
 * holds the queue (every message's content) and the sockets, so it is
 * 0700 (0750 with control-group, whose members may run relayctl), owned
 * by the workers' user; a directory others can write to, or that belongs
 * to someone else, stops relayd with the reason.
 */
#include "master.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int master_state_dir(const struct config *cfg, char *err, size_t errsz)
{
	const char *dir = cfg->state_dir;
	uid_t uid = geteuid();
	gid_t gid = getegid();
	mode_t mode = cfg->control_group ? 0750 : 0700;
	struct stat sb;

	if (getuid() == 0 && cfg->user) {
		struct passwd *pw = getpwnam(cfg->user);
		if (pw == NULL) {
			snprintf(err, errsz, "user %s does not exist", cfg->user);
			return -1;
		}
		uid = pw->pw_uid;
		gid = pw->pw_gid;
	}
	if (cfg->control_group)
		gid = (gid_t)cfg->control_gid;
	if (mkdir(dir, mode) < 0 && errno != EEXIST) {
		snprintf(err, errsz, "state-dir %s: %s", dir, strerror(errno));
		return -1;
	}
	if (lstat(dir, &sb) < 0) {
		snprintf(err, errsz, "state-dir %s: %s", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(sb.st_mode)) {
		snprintf(err, errsz, "state-dir %s is not a directory", dir);
		return -1;
	}
	if (sb.st_mode & S_IWOTH) {
		snprintf(err, errsz, "state-dir %s is writable by others (mode %04o); "
			 "make it %04o", dir, (unsigned)(sb.st_mode & 07777), (unsigned)mode);
		return -1;
	}
	/* Made by root (mkdir by hand, or an older relayd): taken over. */
	if (sb.st_uid != uid && sb.st_uid != 0) {
		snprintf(err, errsz, "state-dir %s belongs to uid %u, not to %s (uid %u)", dir,
			 (unsigned)sb.st_uid, cfg->user ? cfg->user : "relayd's user", (unsigned)uid);
		return -1;
	}
	if ((sb.st_uid != uid || sb.st_gid != gid) && chown(dir, uid, gid) < 0) {
		snprintf(err, errsz, "state-dir %s: cannot hand it to uid %u: %s", dir,
			 (unsigned)uid, strerror(errno));
		return -1;
	}
	if ((sb.st_mode & 07777) != mode && chmod(dir, mode) < 0) {
		snprintf(err, errsz, "state-dir %s: chmod %04o: %s", dir, (unsigned)mode,
			 strerror(errno));
		return -1;
	}
	return 0;
}
