/*
 * master_notify.c - what the master tells the service manager, through
 * sd_notify(3) (a no-op unless NOTIFY_SOCKET is set, as systemd does for a
 * unit of Type=notify): READY=1 once every worker runs its event loop,
 * RELOADING=1 and READY=1 around a reload, STOPPING=1 at stop. A worker
 * is up when it answers the HEALTH probe sent at its start: it answers
 * only from its loop, after its role's setup (the queue has opened
 * queue.db, intake has heard from the queue). A worker restarted later
 * does not make relayd ready a second time.
 */
#include "master.h"
#include "common/ipc.h"
#include "common/ipc_types.h"
#include "common/log.h"

#include <string.h>
#include <systemd/sd-daemon.h>

static void master_notify(const char *state)
{
	int rc = sd_notify(0, state);
	if (rc < 0)
		log_warnx("sd_notify %.*s: %s", (int)strcspn(state, "\n"), state, strerror(-rc));
}

void master_notify_started(struct master_worker *mw)
{
	uint32_t token = 0;
	mw->answered = 0;
	/* Asked now rather than at the next health round, seconds away. */
	ipc_send(mw->chan, MSG_HEALTH, &token, sizeof(token));
}

void master_notify_answered(struct master_worker *mw)
{
	struct master *m = mw->m;
	mw->answered = 1;
	if (m->ready_told || m->stopping)
		return;
	for (int i = 0; i < MASTER_NWORKERS; i++)
		if (m->workers[i].enabled && (m->workers[i].pid == 0 || !m->workers[i].answered))
			return;
	m->ready_told = 1;
	log_info("ready: every worker is up");
	master_notify("READY=1\nSTATUS=every worker is up");
}

void master_notify_reload(struct master *m, int begin)
{
	/* Before the first READY=1 a reload says nothing: still starting. */
	if (m->ready_told && !m->stopping)
		master_notify(begin ? "RELOADING=1" : "READY=1");
}

void master_notify_stopping(void)
{
	master_notify("STOPPING=1");
}
