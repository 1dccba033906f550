/*
 * ipc_msg.c - the encoders and decoders of every message (ipc_msg.h). Each
 * pair lists the same fields in the same order: the payload's layout.
 */
#include "ipc_msg.h"

int ipc_msg_empty_decode(struct ipc_rd *r)
{
	return ipc_rd_done(r);
}

void ipc_msg_health_encode(struct ipc_wr *w, const struct ipc_msg_health *m)
{
	ipc_put_u32(w, m->token);
}

int ipc_msg_health_decode(struct ipc_rd *r, struct ipc_msg_health *m)
{
	m->token = ipc_get_u32(r);
	return ipc_rd_done(r);
}

void ipc_msg_cfg_file_encode(struct ipc_wr *w, const struct ipc_msg_cfg_file *m)
{
	ipc_put_strv(w, m->path);
	ipc_put_u32(w, m->first);
	ipc_put_bytes(w, m->piece.p, m->piece.n);
}

int ipc_msg_cfg_file_decode(struct ipc_rd *r, struct ipc_msg_cfg_file *m)
{
	m->path = ipc_get_strv(r);
	m->first = ipc_get_u32(r);
	m->piece = ipc_get_bytesv(r);
	return ipc_rd_done(r);
}

void ipc_msg_cfg_start_encode(struct ipc_wr *w, const struct ipc_msg_cfg_start *m)
{
	ipc_put_strv(w, m->path);
	ipc_put_u32(w, m->nfds);
}

int ipc_msg_cfg_start_decode(struct ipc_rd *r, struct ipc_msg_cfg_start *m)
{
	m->path = ipc_get_strv(r);
	m->nfds = ipc_get_u32(r);
	return ipc_rd_done(r);
}

void ipc_msg_text_encode(struct ipc_wr *w, const struct ipc_msg_text *m)
{
	ipc_put_strv(w, m->text);
}

int ipc_msg_text_decode(struct ipc_rd *r, struct ipc_msg_text *m)
{
	m->text = ipc_get_strv(r);
	return ipc_rd_done(r);
}

void ipc_msg_ctl_req_encode(struct ipc_wr *w, const struct ipc_msg_ctl_req *m)
{
	ipc_put_u32(w, m->reqid);
	ipc_put_u32(w, m->argc);
	for (uint32_t i = 0; i < m->argc; i++)
		ipc_put_strv(w, m->argv[i]);
}

int ipc_msg_ctl_req_decode(struct ipc_rd *r, struct ipc_msg_ctl_req *m)
{
	m->reqid = ipc_get_u32(r);
	m->argc = ipc_get_u32(r);
	if (m->argc == 0 || m->argc > IPC_CTL_MAX_ARGS)
		return -1;
	for (uint32_t i = 0; i < m->argc; i++)
		m->argv[i] = ipc_get_strv(r);
	return ipc_rd_done(r);
}

void ipc_msg_ctl_rep_encode(struct ipc_wr *w, const struct ipc_msg_ctl_rep *m)
{
	ipc_put_u32(w, m->reqid);
	ipc_put_u32(w, m->status);
	ipc_put_strv(w, m->text);
}

int ipc_msg_ctl_rep_decode(struct ipc_rd *r, struct ipc_msg_ctl_rep *m)
{
	m->reqid = ipc_get_u32(r);
	m->status = ipc_get_u32(r);
	m->text = ipc_get_strv(r);
	return ipc_rd_done(r);
}

void ipc_msg_ctl_part_encode(struct ipc_wr *w, const struct ipc_msg_ctl_part *m)
{
	ipc_put_u32(w, m->reqid);
	ipc_put_bytes(w, m->text.p, m->text.n);
}

int ipc_msg_ctl_part_decode(struct ipc_rd *r, struct ipc_msg_ctl_part *m)
{
	m->reqid = ipc_get_u32(r);
	m->text = ipc_get_bytesv(r);
	return ipc_rd_done(r);
}

void ipc_msg_q_hello_encode(struct ipc_wr *w, const struct ipc_msg_q_hello *m)
{
	ipc_put_u32(w, m->role);
}

int ipc_msg_q_hello_decode(struct ipc_rd *r, struct ipc_msg_q_hello *m)
{
	m->role = ipc_get_u32(r);
	return ipc_rd_done(r);
}

void ipc_msg_q_hello_ok_encode(struct ipc_wr *w, const struct ipc_msg_q_hello_ok *m)
{
	ipc_put_u32(w, m->role);
	ipc_put_u32(w, m->pid);
}

int ipc_msg_q_hello_ok_decode(struct ipc_rd *r, struct ipc_msg_q_hello_ok *m)
{
	m->role = ipc_get_u32(r);
	m->pid = ipc_get_u32(r);
	return ipc_rd_done(r);
}

void ipc_msg_q_begin_encode(struct ipc_wr *w, const struct ipc_msg_q_begin *m)
{
	ipc_put_u64(w, m->sid);
	ipc_put_strv(w, m->qid);
	ipc_put_strv(w, m->sender);
	ipc_put_strv(w, m->client);
	ipc_put_strv(w, m->helo);
	ipc_put_strv(w, m->auth_user);
	ipc_put_u32(w, m->body_flags);
	ipc_put_i64(w, m->arrival);
	ipc_put_u32(w, m->arrival_usec);
	ipc_put_u32(w, m->dsn_ret);
	ipc_put_strv(w, m->envid);
}

int ipc_msg_q_begin_decode(struct ipc_rd *r, struct ipc_msg_q_begin *m)
{
	m->sid = ipc_get_u64(r);
	m->qid = ipc_get_strv(r);
	m->sender = ipc_get_strv(r);
	m->client = ipc_get_strv(r);
	m->helo = ipc_get_strv(r);
	m->auth_user = ipc_get_strv(r);
	m->body_flags = ipc_get_u32(r);
	m->arrival = ipc_get_i64(r);
	m->arrival_usec = ipc_get_u32(r);
	m->dsn_ret = ipc_get_u32(r);
	m->envid = ipc_get_strv(r);
	return ipc_rd_done(r);
}

void ipc_msg_q_rcpt_encode(struct ipc_wr *w, const struct ipc_msg_q_rcpt *m)
{
	ipc_put_u64(w, m->sid);
	ipc_put_strv(w, m->rcpt);
	ipc_put_u32(w, m->notify);
	ipc_put_strv(w, m->orcpt);
}

int ipc_msg_q_rcpt_decode(struct ipc_rd *r, struct ipc_msg_q_rcpt *m)
{
	m->sid = ipc_get_u64(r);
	m->rcpt = ipc_get_strv(r);
	m->notify = ipc_get_u32(r);
	m->orcpt = ipc_get_strv(r);
	return ipc_rd_done(r);
}

void ipc_msg_q_content_head(struct ipc_wr *w, const struct ipc_msg_q_content *m)
{
	ipc_put_u64(w, m->sid);
}

void ipc_msg_q_content_encode(struct ipc_wr *w, const struct ipc_msg_q_content *m)
{
	ipc_msg_q_content_head(w, m);
	ipc_put_bytes(w, m->data.p, m->data.n);
}

int ipc_msg_q_content_decode(struct ipc_rd *r, struct ipc_msg_q_content *m)
{
	m->sid = ipc_get_u64(r);
	m->data = ipc_get_bytesv(r);
	return ipc_rd_done(r);
}

void ipc_msg_q_end_encode(struct ipc_wr *w, const struct ipc_msg_q_end *m)
{
	ipc_put_u64(w, m->sid);
	ipc_put_u64(w, m->size);
}

int ipc_msg_q_end_decode(struct ipc_rd *r, struct ipc_msg_q_end *m)
{
	m->sid = ipc_get_u64(r);
	m->size = ipc_get_u64(r);
	return ipc_rd_done(r);
}

void ipc_msg_id_encode(struct ipc_wr *w, const struct ipc_msg_id *m)
{
	ipc_put_u64(w, m->id);
}

int ipc_msg_id_decode(struct ipc_rd *r, struct ipc_msg_id *m)
{
	m->id = ipc_get_u64(r);
	return ipc_rd_done(r);
}

void ipc_msg_q_committed_encode(struct ipc_wr *w, const struct ipc_msg_q_committed *m)
{
	ipc_put_u64(w, m->sid);
	ipc_put_strv(w, m->qid);
}

int ipc_msg_q_committed_decode(struct ipc_rd *r, struct ipc_msg_q_committed *m)
{
	m->sid = ipc_get_u64(r);
	m->qid = ipc_get_strv(r);
	return ipc_rd_done(r);
}

void ipc_msg_q_failed_encode(struct ipc_wr *w, const struct ipc_msg_q_failed *m)
{
	ipc_put_u64(w, m->sid);
	ipc_put_u32(w, m->code);
	ipc_put_strv(w, m->enh);
	ipc_put_strv(w, m->text);
}

int ipc_msg_q_failed_decode(struct ipc_rd *r, struct ipc_msg_q_failed *m)
{
	m->sid = ipc_get_u64(r);
	m->code = ipc_get_u32(r);
	m->enh = ipc_get_strv(r);
	m->text = ipc_get_strv(r);
	return ipc_rd_done(r);
}

void ipc_msg_d_ready_encode(struct ipc_wr *w, const struct ipc_msg_d_ready *m)
{
	ipc_put_u32(w, m->n);
}

int ipc_msg_d_ready_decode(struct ipc_rd *r, struct ipc_msg_d_ready *m)
{
	m->n = ipc_get_u32(r);
	return ipc_rd_done(r);
}

void ipc_msg_d_job_encode(struct ipc_wr *w, const struct ipc_msg_d_job *m)
{
	ipc_put_u64(w, m->jobid);
	ipc_put_strv(w, m->qid);
	ipc_put_strv(w, m->sender);
	ipc_put_strv(w, m->domain);
	ipc_put_u64(w, m->size);
	ipc_put_u32(w, m->body_flags);
	ipc_put_i64(w, m->arrival);
	ipc_put_u32(w, m->arrival_usec);
	ipc_put_u32(w, m->dsn_ret);
	ipc_put_strv(w, m->envid);
	ipc_put_u32(w, m->nrcpt);
	for (uint32_t i = 0; i < m->nrcpt; i++) {
		ipc_put_u64(w, m->rcpts[i].rcptid);
		ipc_put_strv(w, m->rcpts[i].address);
		ipc_put_u32(w, m->rcpts[i].notify);
		ipc_put_strv(w, m->rcpts[i].orcpt);
	}
}

int ipc_msg_d_job_decode(struct ipc_rd *r, struct ipc_msg_d_job *m)
{
	m->jobid = ipc_get_u64(r);
	m->qid = ipc_get_strv(r);
	m->sender = ipc_get_strv(r);
	m->domain = ipc_get_strv(r);
	m->size = ipc_get_u64(r);
	m->body_flags = ipc_get_u32(r);
	m->arrival = ipc_get_i64(r);
	m->arrival_usec = ipc_get_u32(r);
	m->dsn_ret = ipc_get_u32(r);
	m->envid = ipc_get_strv(r);
	m->nrcpt = ipc_get_u32(r);
	if (m->nrcpt > IPC_JOB_MAX_RCPTS)
		return -1;
	for (uint32_t i = 0; i < m->nrcpt; i++) {
		m->rcpts[i].rcptid = ipc_get_u64(r);
		m->rcpts[i].address = ipc_get_strv(r);
		m->rcpts[i].notify = ipc_get_u32(r);
		m->rcpts[i].orcpt = ipc_get_strv(r);
	}
	return ipc_rd_done(r);
}

void ipc_msg_d_chunk_req_encode(struct ipc_wr *w, const struct ipc_msg_d_chunk_req *m)
{
	ipc_put_u64(w, m->jobid);
	ipc_put_u32(w, m->seq);
}

int ipc_msg_d_chunk_req_decode(struct ipc_rd *r, struct ipc_msg_d_chunk_req *m)
{
	m->jobid = ipc_get_u64(r);
	m->seq = ipc_get_u32(r);
	return ipc_rd_done(r);
}

void ipc_msg_d_chunk_head(struct ipc_wr *w, const struct ipc_msg_d_chunk *m)
{
	ipc_put_u64(w, m->jobid);
	ipc_put_u32(w, m->seq);
	ipc_put_u32(w, m->last);
}

void ipc_msg_d_chunk_encode(struct ipc_wr *w, const struct ipc_msg_d_chunk *m)
{
	ipc_msg_d_chunk_head(w, m);
	ipc_put_bytes(w, m->data.p, m->data.n);
}

int ipc_msg_d_chunk_decode(struct ipc_rd *r, struct ipc_msg_d_chunk *m)
{
	m->jobid = ipc_get_u64(r);
	m->seq = ipc_get_u32(r);
	m->last = ipc_get_u32(r);
	m->data = ipc_get_bytesv(r);
	return ipc_rd_done(r);
}

void ipc_msg_d_result_encode(struct ipc_wr *w, const struct ipc_msg_d_result *m)
{
	ipc_put_u64(w, m->jobid);
	ipc_put_u64(w, m->rcptid);
	ipc_put_u32(w, m->dclass);
	ipc_put_u32(w, m->code);
	ipc_put_strv(w, m->enh);
	ipc_put_strv(w, m->text);
	ipc_put_strv(w, m->relay);
	ipc_put_strv(w, m->reply);
	ipc_put_u32(w, m->flags);
}

int ipc_msg_d_result_decode(struct ipc_rd *r, struct ipc_msg_d_result *m)
{
	m->jobid = ipc_get_u64(r);
	m->rcptid = ipc_get_u64(r);
	m->dclass = ipc_get_u32(r);
	m->code = ipc_get_u32(r);
	m->enh = ipc_get_strv(r);
	m->text = ipc_get_strv(r);
	m->relay = ipc_get_strv(r);
	m->reply = ipc_get_strv(r);
	m->flags = ipc_get_u32(r);
	return ipc_rd_done(r);
}

void ipc_msg_d_suspended_encode(struct ipc_wr *w, const struct ipc_msg_d_suspended *m)
{
	ipc_put_u64(w, m->jobid);
	ipc_put_i64(w, m->until);
	ipc_put_strv(w, m->enh);
	ipc_put_strv(w, m->text);
}

int ipc_msg_d_suspended_decode(struct ipc_rd *r, struct ipc_msg_d_suspended *m)
{
	m->jobid = ipc_get_u64(r);
	m->until = ipc_get_i64(r);
	m->enh = ipc_get_strv(r);
	m->text = ipc_get_strv(r);
	return ipc_rd_done(r);
}

void ipc_msg_d_trace_encode(struct ipc_wr *w, const struct ipc_msg_d_trace *m)
{
	ipc_put_u64(w, m->jobid);
	ipc_put_strv(w, m->text);
}

int ipc_msg_d_trace_decode(struct ipc_rd *r, struct ipc_msg_d_trace *m)
{
	m->jobid = ipc_get_u64(r);
	m->text = ipc_get_strv(r);
	return ipc_rd_done(r);
}
