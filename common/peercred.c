/*
 * peercred.c - SO_PEERCRED and SO_PEERGROUPS of a Unix socket peer.
 */
#include "peercred.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

int peercred_get(int fd, struct peercred *pc)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);
	memset(pc, 0, sizeof(*pc));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
		return -1;
	pc->pid = uc.pid;
	pc->uid = uc.uid;
	pc->gid = uc.gid;
	len = sizeof(pc->groups);
	/* ERANGE: more groups than we keep; the first ones are enough here. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, pc->groups, &len) == 0 || errno == ERANGE)
		pc->ngroups = (int)(len / sizeof(gid_t)) > PEERCRED_MAX_GROUPS
				      ? PEERCRED_MAX_GROUPS
				      : (int)(len / sizeof(gid_t));
	return 0;
}

int peercred_in_group(const struct peercred *pc, gid_t gid)
{
	if (pc->gid == gid)
		return 1;
	for (int i = 0; i < pc->ngroups; i++)
		if (pc->groups[i] == gid)
			return 1;
	return 0;
}
