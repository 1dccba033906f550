/*
 * peercred.h - who is at the other end of a local (AF_UNIX) socket, as
 * the kernel vouches for it: uid, gid and supplementary groups. queue.sock
 * takes only relayd's workers; control.sock lets root and control-group
 * change things and everyone who reaches it look.
 */
#ifndef RELAYD_PEERCRED_H
#define RELAYD_PEERCRED_H

#include <sys/types.h>

#define PEERCRED_MAX_GROUPS 64

struct peercred {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	gid_t groups[PEERCRED_MAX_GROUPS];
	int ngroups; /* beyond PEERCRED_MAX_GROUPS: cut, so a match may be missed */
};

/* 0, or -1 with errno. */
int peercred_get(int fd, struct peercred *pc);
/* 1 when gid is the peer's group or one of its supplementary groups. */
int peercred_in_group(const struct peercred *pc, gid_t gid);

#endif
