/*
 * res_private.h - what the files of resolver/ share and nobody else sees:
 * the resolver itself (a c-ares channel on an event loop) and the one way
 * the MX logic starts a query on it.
 */
#ifndef RELAYD_RES_PRIVATE_H
#define RELAYD_RES_PRIVATE_H

/* c-ares 1.28 marks ares_query and friends deprecated; 1.18 has nothing newer. */
#define CARES_NO_DEPRECATED
#include <ares.h>

#include "common/event.h"
#include "resolver/resolver.h"

/* One c-ares channel and the loop's view of it: its sockets and its timer. */
struct res_chan {
	struct resolver *r;
	ares_channel ch;
	struct ev_timer timer;       /* ares_timeout(), re-armed after every operation */
	int *fds;                    /* sockets c-ares asked us to watch */
	size_t nfds, fdcap;
	struct res_chan *next;       /* on the draining list */
};

struct resolver {
	struct ev_loop *loop;
	struct res_chan *cur;        /* new queries go here */
	struct res_chan *draining;   /* replaced by a reload, finishing their queries */
	int depth;                   /* > 0 while c-ares is on the stack */
	int dying;                   /* resolver_free was called: no new queries */
	char hostname[256];          /* this host, for loop detection */
	struct sockaddr_storage *self;
	size_t nself;
};

/*
 * Enter and leave c-ares: work done between them may call back into the
 * caller, which may call resolver_free; the resolver is then destroyed only
 * when the outermost res_leave unwinds, never inside a c-ares callback.
 * res_leave re-arms the timers, retires drained channels and returns 1
 * when it destroyed r.
 */
void res_enter(struct resolver *r);
int res_leave(struct resolver *r);
/*
 * One query of class IN on channel c (a resolution keeps the channel it
 * started on across a reload); cb exactly once, ARES_EDESTRUCTION when the
 * resolver is going away.
 */
void res_query(struct res_chan *c, const char *name, int type, ares_callback cb, void *arg);

#endif
