/*
 * ipc_msg.h - one struct and one encode/decode pair per message of
 * ipc_types.h, so that a payload's field order is written once, here, for
 * its sender and its receiver alike. Messages of the same layout share a
 * pair (named in each struct's comment).
 *
 * Decoding copies nothing: string and byte fields point into the frame
 * (struct ipc_str, struct ipc_bytes) and live as long as it. A decoder
 * reads the whole payload and returns 0, or -1 when it is malformed
 * (short, too long, a NUL inside a string, a count out of bounds).
 *
 * The content messages (MSG_Q_CONTENT, MSG_D_CHUNK) end with their bytes:
 * their _head encoder writes every field before them, so the hot path can
 * send the bytes without copying them (ipc_send_wr_bytes,
 * ipc_put_bytes_open); their _encode writes the whole payload.
 */
#ifndef RELAYD_IPC_MSG_H
#define RELAYD_IPC_MSG_H

#include "ipc.h"

#include <stdint.h>

/* Arguments of one relayctl command. */
#define IPC_CTL_MAX_ARGS 16
/* Recipients of one delivery job. */
#define IPC_JOB_MAX_RCPTS 100

/* Messages without a payload (MSG_CFG_READY, _COMMIT, _ABORT). */
int ipc_msg_empty_decode(struct ipc_rd *r);

/* MSG_HEALTH, MSG_HEALTH_OK */
struct ipc_msg_health {
	uint32_t token;
};
void ipc_msg_health_encode(struct ipc_wr *w, const struct ipc_msg_health *m);
int ipc_msg_health_decode(struct ipc_rd *r, struct ipc_msg_health *m);

/* MSG_CFG_FILE */
struct ipc_msg_cfg_file {
	struct ipc_str path;
	uint32_t first;           /* 0/1: the first piece of the file */
	struct ipc_bytes piece;
};
void ipc_msg_cfg_file_encode(struct ipc_wr *w, const struct ipc_msg_cfg_file *m);
int ipc_msg_cfg_file_decode(struct ipc_rd *r, struct ipc_msg_cfg_file *m);

/* MSG_CFG_START */
struct ipc_msg_cfg_start {
	struct ipc_str path;
	uint32_t nfds;
};
void ipc_msg_cfg_start_encode(struct ipc_wr *w, const struct ipc_msg_cfg_start *m);
int ipc_msg_cfg_start_decode(struct ipc_rd *r, struct ipc_msg_cfg_start *m);

/* MSG_CFG_PREPARE (the config path), MSG_CFG_REFUSED (the reason), MSG_D_FLUSH (the domain) */
struct ipc_msg_text {
	struct ipc_str text;
};
void ipc_msg_text_encode(struct ipc_wr *w, const struct ipc_msg_text *m);
int ipc_msg_text_decode(struct ipc_rd *r, struct ipc_msg_text *m);

/* MSG_CTL_REQ */
struct ipc_msg_ctl_req {
	uint32_t reqid;
	uint32_t argc;            /* 1..IPC_CTL_MAX_ARGS */
	struct ipc_str argv[IPC_CTL_MAX_ARGS];
};
void ipc_msg_ctl_req_encode(struct ipc_wr *w, const struct ipc_msg_ctl_req *m);
int ipc_msg_ctl_req_decode(struct ipc_rd *r, struct ipc_msg_ctl_req *m);

/* MSG_CTL_REP */
struct ipc_msg_ctl_rep {
	uint32_t reqid;
	uint32_t status;
	struct ipc_str text;
};
void ipc_msg_ctl_rep_encode(struct ipc_wr *w, const struct ipc_msg_ctl_rep *m);
int ipc_msg_ctl_rep_decode(struct ipc_rd *r, struct ipc_msg_ctl_rep *m);

/* MSG_CTL_PART */
struct ipc_msg_ctl_part {
	uint32_t reqid;
	struct ipc_bytes text;
};
void ipc_msg_ctl_part_encode(struct ipc_wr *w, const struct ipc_msg_ctl_part *m);
int ipc_msg_ctl_part_decode(struct ipc_rd *r, struct ipc_msg_ctl_part *m);

/* MSG_Q_HELLO */
struct ipc_msg_q_hello {
	uint32_t role;            /* enum ipc_role */
};
void ipc_msg_q_hello_encode(struct ipc_wr *w, const struct ipc_msg_q_hello *m);
int ipc_msg_q_hello_decode(struct ipc_rd *r, struct ipc_msg_q_hello *m);

/* MSG_Q_HELLO_OK */
struct ipc_msg_q_hello_ok {
	uint32_t role;            /* echoed */
	uint32_t pid;             /* the queue worker's */
};
void ipc_msg_q_hello_ok_encode(struct ipc_wr *w, const struct ipc_msg_q_hello_ok *m);
int ipc_msg_q_hello_ok_decode(struct ipc_rd *r, struct ipc_msg_q_hello_ok *m);

/* MSG_Q_BEGIN */
struct ipc_msg_q_begin {
	uint64_t sid;
	struct ipc_str qid, sender, client, helo, auth_user;
	uint32_t body_flags;      /* BODY_* */
	int64_t arrival;          /* unix seconds */
	uint32_t arrival_usec;    /* and microseconds, for delay= */
	uint32_t dsn_ret;         /* DSN_RET_*, 0 */
	struct ipc_str envid;
};
void ipc_msg_q_begin_encode(struct ipc_wr *w, const struct ipc_msg_q_begin *m);
int ipc_msg_q_begin_decode(struct ipc_rd *r, struct ipc_msg_q_begin *m);

/* MSG_Q_RCPT */
struct ipc_msg_q_rcpt {
	uint64_t sid;
	struct ipc_str rcpt;
	uint32_t notify;          /* DSN_NOTIFY_*, 0 */
	struct ipc_str orcpt;
};
void ipc_msg_q_rcpt_encode(struct ipc_wr *w, const struct ipc_msg_q_rcpt *m);
int ipc_msg_q_rcpt_decode(struct ipc_rd *r, struct ipc_msg_q_rcpt *m);

/* MSG_Q_CONTENT */
struct ipc_msg_q_content {
	uint64_t sid;
	struct ipc_bytes data;    /* <= IPC_CHUNK_SIZE */
};
void ipc_msg_q_content_head(struct ipc_wr *w, const struct ipc_msg_q_content *m);
void ipc_msg_q_content_encode(struct ipc_wr *w, const struct ipc_msg_q_content *m);
int ipc_msg_q_content_decode(struct ipc_rd *r, struct ipc_msg_q_content *m);

/* MSG_Q_END */
struct ipc_msg_q_end {
	uint64_t sid;
	uint64_t size;            /* content octets sent */
};
void ipc_msg_q_end_encode(struct ipc_wr *w, const struct ipc_msg_q_end *m);
int ipc_msg_q_end_decode(struct ipc_rd *r, struct ipc_msg_q_end *m);

/* MSG_Q_ABORT (a session id), MSG_D_DONE, MSG_D_JOB_FAIL (a job id) */
struct ipc_msg_id {
	uint64_t id;
};
void ipc_msg_id_encode(struct ipc_wr *w, const struct ipc_msg_id *m);
int ipc_msg_id_decode(struct ipc_rd *r, struct ipc_msg_id *m);

/* MSG_Q_COMMITTED */
struct ipc_msg_q_committed {
	uint64_t sid;
	struct ipc_str qid;
};
void ipc_msg_q_committed_encode(struct ipc_wr *w, const struct ipc_msg_q_committed *m);
int ipc_msg_q_committed_decode(struct ipc_rd *r, struct ipc_msg_q_committed *m);

/* MSG_Q_FAILED */
struct ipc_msg_q_failed {
	uint64_t sid;
	uint32_t code;
	struct ipc_str enh, text;
};
void ipc_msg_q_failed_encode(struct ipc_wr *w, const struct ipc_msg_q_failed *m);
int ipc_msg_q_failed_decode(struct ipc_rd *r, struct ipc_msg_q_failed *m);

/* MSG_D_READY */
struct ipc_msg_d_ready {
	uint32_t n;               /* more jobs delivery can take */
};
void ipc_msg_d_ready_encode(struct ipc_wr *w, const struct ipc_msg_d_ready *m);
int ipc_msg_d_ready_decode(struct ipc_rd *r, struct ipc_msg_d_ready *m);

/* MSG_D_JOB */
struct ipc_msg_d_job {
	uint64_t jobid;
	struct ipc_str qid, sender, domain;
	uint64_t size;
	uint32_t body_flags;      /* BODY_* */
	int64_t arrival;          /* unix seconds */
	uint32_t arrival_usec;    /* and microseconds, for delay= */
	uint32_t dsn_ret;         /* DSN_RET_*, 0 */
	struct ipc_str envid;
	uint32_t nrcpt;           /* <= IPC_JOB_MAX_RCPTS */
	struct ipc_msg_d_job_rcpt {
		uint64_t rcptid;
		struct ipc_str address;
		uint32_t notify;  /* DSN_NOTIFY_*, 0 */
		struct ipc_str orcpt;
	} rcpts[IPC_JOB_MAX_RCPTS];
};
void ipc_msg_d_job_encode(struct ipc_wr *w, const struct ipc_msg_d_job *m);
int ipc_msg_d_job_decode(struct ipc_rd *r, struct ipc_msg_d_job *m);

/* MSG_D_CHUNK_REQ */
struct ipc_msg_d_chunk_req {
	uint64_t jobid;
	uint32_t seq;
};
void ipc_msg_d_chunk_req_encode(struct ipc_wr *w, const struct ipc_msg_d_chunk_req *m);
int ipc_msg_d_chunk_req_decode(struct ipc_rd *r, struct ipc_msg_d_chunk_req *m);

/* MSG_D_CHUNK */
struct ipc_msg_d_chunk {
	uint64_t jobid;
	uint32_t seq;
	uint32_t last;            /* 0/1 */
	struct ipc_bytes data;
};
void ipc_msg_d_chunk_head(struct ipc_wr *w, const struct ipc_msg_d_chunk *m);
void ipc_msg_d_chunk_encode(struct ipc_wr *w, const struct ipc_msg_d_chunk *m);
int ipc_msg_d_chunk_decode(struct ipc_rd *r, struct ipc_msg_d_chunk *m);

/* MSG_D_RESULT */
struct ipc_msg_d_result {
	uint64_t jobid;
	uint64_t rcptid;
	uint32_t dclass;          /* enum dlv_class */
	uint32_t code;
	struct ipc_str enh, text, relay;
	struct ipc_str reply;     /* the remote reply, "" when relayd decided */
	uint32_t flags;           /* RESULT_* */
};
void ipc_msg_d_result_encode(struct ipc_wr *w, const struct ipc_msg_d_result *m);
int ipc_msg_d_result_decode(struct ipc_rd *r, struct ipc_msg_d_result *m);

/* MSG_D_SUSPENDED (MSG_D_FLUSH is an ipc_msg_text: the domain) */
struct ipc_msg_d_suspended {
	uint64_t jobid;
	int64_t until;            /* unix seconds */
	struct ipc_str enh, text;
};
void ipc_msg_d_suspended_encode(struct ipc_wr *w, const struct ipc_msg_d_suspended *m);
int ipc_msg_d_suspended_decode(struct ipc_rd *r, struct ipc_msg_d_suspended *m);

/* MSG_D_TRACE */
struct ipc_msg_d_trace {
	uint64_t jobid;
	struct ipc_str text;
};
void ipc_msg_d_trace_encode(struct ipc_wr *w, const struct ipc_msg_d_trace *m);
int ipc_msg_d_trace_decode(struct ipc_rd *r, struct ipc_msg_d_trace *m);

#endif
