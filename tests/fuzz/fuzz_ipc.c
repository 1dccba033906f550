/*
 * fuzz_ipc.c - libFuzzer target for IPC framing and the message decoders:
 * frames are cut from the input as a channel would, and each payload goes
 * through every decoder of ipc_msg.h; a string or byte field a decoder
 * accepts must lie inside the frame.
 */
#include "common/ipc.h"
#include "common/ipc_msg.h"

#include <stdint.h>
#include <stdlib.h>

static const uint8_t *frame_p;
static size_t frame_len;

static void in_frame(const void *p, size_t n)
{
	const uint8_t *b = p;
	if (n > 0 && (b < frame_p || b + n > frame_p + frame_len))
		abort();
}
#define IN_STR(s) in_frame((s).p, (s).n)

static void fuzz_decode_all(const uint8_t *p, size_t len)
{
	union {
		struct ipc_msg_health health;
		struct ipc_msg_cfg_file cfg_file;
		struct ipc_msg_cfg_start cfg_start;
		struct ipc_msg_text text;
		struct ipc_msg_ctl_req ctl_req;
		struct ipc_msg_ctl_rep ctl_rep;
		struct ipc_msg_ctl_part ctl_part;
		struct ipc_msg_q_begin q_begin;
		struct ipc_msg_q_rcpt q_rcpt;
		struct ipc_msg_q_content q_content;
		struct ipc_msg_q_failed q_failed;
		struct ipc_msg_d_job d_job;
		struct ipc_msg_d_chunk d_chunk;
		struct ipc_msg_d_result d_result;
	} m;
	struct ipc_rd rd;
	frame_p = p;
	frame_len = len;
#define DECODE(name) (ipc_rd_init(&rd, p, len), ipc_msg_##name##_decode(&rd, &m.name) == 0)
	(void)DECODE(health);
	if (DECODE(cfg_file)) {
		IN_STR(m.cfg_file.path);
		IN_STR(m.cfg_file.piece);
	}
	if (DECODE(cfg_start))
		IN_STR(m.cfg_start.path);
	if (DECODE(text))
		IN_STR(m.text.text);
	if (DECODE(ctl_req))
		for (uint32_t i = 0; i < m.ctl_req.argc; i++)
			IN_STR(m.ctl_req.argv[i]);
	if (DECODE(ctl_rep))
		IN_STR(m.ctl_rep.text);
	if (DECODE(ctl_part))
		IN_STR(m.ctl_part.text);
	if (DECODE(q_begin)) {
		IN_STR(m.q_begin.qid);
		IN_STR(m.q_begin.auth_user);
	}
	if (DECODE(q_rcpt))
		IN_STR(m.q_rcpt.rcpt);
	if (DECODE(q_content))
		IN_STR(m.q_content.data);
	if (DECODE(q_failed))
		IN_STR(m.q_failed.text);
	if (DECODE(d_job))
		for (uint32_t i = 0; i < m.d_job.nrcpt; i++)
			IN_STR(m.d_job.rcpts[i].address);
	if (DECODE(d_chunk))
		IN_STR(m.d_chunk.data);
	if (DECODE(d_result))
		IN_STR(m.d_result.relay);
#undef DECODE
	if (rd.off > rd.len)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;
	for (;;) {
		uint32_t type, len;
		enum ipc_parse_result r = ipc_parse_frame(data + off, size - off, &type, &len);
		if (r != IPC_PARSE_FRAME)
			break;
		if (len > IPC_MAX_FRAME || IPC_HDR_SIZE + (size_t)len > size - off)
			abort();
		fuzz_decode_all(data + off + IPC_HDR_SIZE, len);
		off += IPC_HDR_SIZE + len;
	}
	return 0;
}
