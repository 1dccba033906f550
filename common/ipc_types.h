/*
 * ipc_types.h - every message that crosses a process boundary, with its
 * payload (fields in order). One list, so a reader sees the whole protocol
 * in one place; ipc_msg.h has each payload's struct and its one
 * encode/decode pair, which every sender and receiver uses.
 *
 * Channels:
 *   master <-> worker   socketpair made by the master at fork; the worker's
 *                       end is descriptor 3 of the program it execs
 *   relayctl <-> master STATE_DIR/control.sock
 *   intake  <-> queue   STATE_DIR/queue.sock (listening socket made by the
 *   delivery <-> queue  master, so it survives a queue restart)
 */
#ifndef RELAYD_IPC_TYPES_H
#define RELAYD_IPC_TYPES_H

enum ipc_type {
	/* master <-> worker */
	MSG_HEALTH = 1,      /* m->w: u32 token */
	MSG_HEALTH_OK,       /* w->m: u32 token */
	/* The configuration, from the master that read it: the config text
	 * and the files this role may hold, in FILE pieces, then START (at
	 * the worker's start) or PREPARE (reload). A reload is two-phase:
	 * every worker answers PREPARE with READY or REFUSED, then the master
	 * sends COMMIT to all or ABORT to all. */
	MSG_CFG_FILE,        /* m->w: str path, u32 first (0/1), bytes piece */
	MSG_CFG_START,       /* m->w: str config path, u32 nfds passed */
	MSG_CFG_PREPARE,     /* m->w: str config path */
	MSG_CFG_READY,       /* w->m: (empty) new config parsed and usable */
	MSG_CFG_REFUSED,     /* w->m: str reason */
	MSG_CFG_COMMIT,      /* m->w: (empty) take the prepared config */
	MSG_CFG_ABORT,       /* m->w: (empty) drop the prepared config */

	/* relayctl <-> master, and master <-> the worker that answers */
	MSG_CTL_REQ = 20,    /* u32 reqid, u32 argc, argc x str */
	MSG_CTL_REP,         /* u32 reqid, u32 exit status, str output */
	/* Output longer than a frame: any number of PARTs (in order), then
	 * the REP with the status and the last of the text. */
	MSG_CTL_PART,        /* u32 reqid, bytes (<= IPC_CHUNK_SIZE) output */

	/* peer -> queue, first frame on queue.sock */
	MSG_Q_HELLO = 40,    /* u32 role (enum ipc_role) */
	/* queue -> peer, the answer to a valid HELLO: a queue worker serves
	 * this channel (a connect alone only proves the master's socket) */
	MSG_Q_HELLO_OK,      /* u32 role (echoed), u32 queue worker pid */

	/* intake -> queue: one SMTP transaction, tied by a session id */
	MSG_Q_BEGIN = 50,    /* u64 sid, str qid, str sender, str client ip,
			        str helo, str auth user, u32 body flags,
			        i64 arrival (unix seconds), u32 its microseconds,
			        u32 dsn ret, str envid (xtext-decoded) */
	MSG_Q_RCPT,          /* u64 sid, str recipient, u32 notify (DSN_NOTIFY_*),
			        str orcpt ("type;address" decoded, or "") */
	MSG_Q_CONTENT,       /* u64 sid, bytes (<= IPC_CHUNK_SIZE) */
	MSG_Q_END,           /* u64 sid, u64 total size */
	MSG_Q_ABORT,         /* u64 sid */
	/* queue -> intake */
	MSG_Q_COMMITTED,     /* u64 sid, str qid: on disk */
	MSG_Q_FAILED,        /* u64 sid, u32 code, str enhanced, str text */

	/* delivery <-> queue */
	MSG_D_READY = 70,    /* d->q: u32 n: delivery can take n more jobs */
	MSG_D_JOB,           /* q->d: u64 jobid, str qid, str sender,
			        str domain, u64 size, u32 body flags,
			        i64 arrival, u32 its microseconds, u32 dsn ret,
			        str envid, u32 nrcpt, nrcpt x (u64 rcptid,
			        str address, u32 notify, str orcpt) */
	MSG_D_CHUNK_REQ,     /* d->q: u64 jobid, u32 seq */
	MSG_D_CHUNK,         /* q->d: u64 jobid, u32 seq, u32 last (0/1),
			        bytes */
	MSG_D_RESULT,        /* d->q: u64 jobid, u64 rcptid, u32 class
			        (enum dlv_class), u32 code, str enhanced,
			        str text, str relay, str reply (the remote
			        reply itself, "" when relayd decided), u32 flags
			        (RESULT_*) */
	MSG_D_DONE,          /* d->q: u64 jobid */
	MSG_D_JOB_FAIL,      /* q->d: u64 jobid: content unavailable */
	/* The job's undecided recipients were deferred without a connection
	 * (the next hop failed recently): no attempt is counted, they are due
	 * again at until. DONE follows. */
	MSG_D_SUSPENDED,     /* d->q: u64 jobid, i64 until (unix seconds),
			        str enhanced, str text */
	/* relayctl flush: forget the failure of the domain's next hop, or of
	 * every next hop when domain is "". Sent before the recipients are due. */
	MSG_D_FLUSH,         /* q->d: str domain */
	/* The transcript of the job's attempts (relayctl trace), sent before
	 * the job's last RESULT, so a bounce can quote it. */
	MSG_D_TRACE,         /* d->q: u64 jobid, str text */
};

enum ipc_role { ROLE_INTAKE = 1, ROLE_DELIVERY = 2 };

/* Body flags of a message (MSG_Q_BEGIN, MSG_D_JOB). */
#define BODY_8BITMIME 0x1u
#define BODY_SMTPUTF8 0x2u

/* DSN (RFC 3461) of a message: RET= (MSG_Q_BEGIN, MSG_D_JOB); 0: not given. */
#define DSN_RET_FULL 1u
#define DSN_RET_HDRS 2u
/* And of a recipient: NOTIFY= (MSG_Q_RCPT, MSG_D_JOB); 0: not given, which
 * means FAILURE,DELAY for reports and nothing to pass on. */
#define DSN_NOTIFY_NEVER 0x1u
#define DSN_NOTIFY_SUCCESS 0x2u
#define DSN_NOTIFY_FAILURE 0x4u
#define DSN_NOTIFY_DELAY 0x8u

/* Flags of a MSG_D_RESULT. */
#define RESULT_DSN_RELAYED 0x1u /* sent to a next hop without DSN: NOTIFY ends here */

/* Outcome classes of one recipient's delivery attempt. */
enum dlv_class { DLV_SENT = 1, DLV_DEFERRED = 2, DLV_BOUNCED = 3 };

#endif
