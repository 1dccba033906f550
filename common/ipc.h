/*
 * ipc.h - framed messages over AF_UNIX stream sockets between relayd's
 * processes. A frame is a header (type, payload length, both uint32 in host
 * order: both ends are the same host) followed by the payload. A frame over
 * IPC_MAX_FRAME, or a malformed payload, closes that channel with a log line.
 *
 * Payloads are a sequence of fields written with ipc_put_* and read back in
 * the same order with ipc_get_*; the reader never reads past the frame and
 * records the first error instead of failing on each call.
 */
#ifndef RELAYD_IPC_H
#define RELAYD_IPC_H

#include "buf.h"

#include <stddef.h>
#include <stdint.h>

#define IPC_HDR_SIZE 8
/* Header and payload fit the input a connection buffers (CONN_MAX_INPUT). */
#define IPC_MAX_FRAME (256 * 1024 - IPC_HDR_SIZE)
/* The size of a content piece carried in one frame. */
#define IPC_CHUNK_SIZE (64 * 1024)
/* A channel is full above IPC_OUT_HIGH queued octets; it drains at IPC_OUT_LOW. */
#define IPC_OUT_HIGH (1024 * 1024)
#define IPC_OUT_LOW (256 * 1024)

struct ev_loop;
struct conn;
struct ipc_chan;

typedef void (*ipc_frame_cb)(struct ipc_chan *ch, uint32_t type, const uint8_t *payload,
			     size_t len, void *arg);
typedef void (*ipc_close_cb)(struct ipc_chan *ch, void *arg);
typedef void (*ipc_drain_cb)(struct ipc_chan *ch, void *arg);

/*
 * Wraps a connected socket. on_frame is called for each whole frame;
 * on_close once, when the peer goes away or sent a bad frame; the channel
 * is freed by the caller in on_close (ipc_chan_free) or later.
 */
struct ipc_chan *ipc_chan_new(struct ev_loop *loop, int fd, const char *peer_name,
			      ipc_frame_cb on_frame, ipc_close_cb on_close, void *arg);
void ipc_chan_free(struct ipc_chan *ch);
/* Queues one frame. Returns 0, or -1 if the channel is closed. */
int ipc_send(struct ipc_chan *ch, uint32_t type, const void *payload, size_t len);
/* Bytes queued for sending and not yet written. */
size_t ipc_pending(const struct ipc_chan *ch);
/*
 * Flow control, the connection's contract (conn_set_watermarks): a sender
 * that finds the channel full waits for on_drain, called once the queued
 * output is down to IPC_OUT_LOW (and after every write that leaves it so).
 * The channel itself keeps reading its peer meanwhile.
 */
int ipc_full(const struct ipc_chan *ch);
void ipc_set_drain(struct ipc_chan *ch, ipc_drain_cb on_drain);
int ipc_is_open(const struct ipc_chan *ch);
/* Closes after a protocol error: logs why, calls on_close. */
void ipc_fail(struct ipc_chan *ch, const char *why);
/* Blocking helpers for simple clients (relayctl) and tests. */
int ipc_write_frame_blocking(int fd, uint32_t type, const void *payload, size_t len);
/* Returns payload length (payload malloc'd into *out), or -1. */
long ipc_read_frame_blocking(int fd, uint32_t *type, uint8_t **out);

/* Frame parser, on its own so that tests and fuzzers can drive it. */
enum ipc_parse_result { IPC_PARSE_NEED_MORE, IPC_PARSE_FRAME, IPC_PARSE_TOO_BIG };
enum ipc_parse_result ipc_parse_frame(const uint8_t *p, size_t n, uint32_t *type,
				      uint32_t *len);

/*
 * A string or byte field as it lies in a frame (not NUL-terminated): the
 * message structs of ipc_msg.h carry these, so that decoding copies
 * nothing and each receiver keeps its own limits (ipc_str_copy).
 */
struct ipc_str {
	const char *p;
	size_t n;
};
struct ipc_bytes {
	const uint8_t *p;
	size_t n;
};
/* A C string as a field; NULL is sent as "". */
struct ipc_str ipc_str(const char *s);
/* Copies into dst, NUL-terminated; -1 when it does not fit. */
int ipc_str_copy(char *dst, size_t dstsz, struct ipc_str s);
char *ipc_str_dup(struct ipc_str s);

/* Payload writer. */
struct ipc_wr {
	struct buf b;
};
void ipc_wr_init(struct ipc_wr *w);
void ipc_wr_free(struct ipc_wr *w);
void ipc_put_u32(struct ipc_wr *w, uint32_t v);
void ipc_put_u64(struct ipc_wr *w, uint64_t v);
void ipc_put_i64(struct ipc_wr *w, int64_t v);
void ipc_put_str(struct ipc_wr *w, const char *s); /* NULL is sent as "" */
void ipc_put_bytes(struct ipc_wr *w, const void *p, size_t n);
void ipc_put_strv(struct ipc_wr *w, struct ipc_str s);
/*
 * A byte field whose bytes the caller appends to w->b itself (read
 * straight into the frame, as the queue reads a chunk from its store):
 * open writes a placeholder length, close sets it to what came after.
 */
size_t ipc_put_bytes_open(struct ipc_wr *w);
void ipc_put_bytes_close(struct ipc_wr *w, size_t open);
int ipc_send_wr(struct ipc_chan *ch, uint32_t type, struct ipc_wr *w);
/*
 * Sends the fields in head followed by one byte field (p, n), as
 * ipc_put_bytes would write it, without first copying p into head: the
 * message content path.
 */
int ipc_send_wr_bytes(struct ipc_chan *ch, uint32_t type, struct ipc_wr *head, const void *p,
		      size_t n);

/* Payload reader. */
struct ipc_rd {
	const uint8_t *p;
	size_t len, off;
	int err;
};
void ipc_rd_init(struct ipc_rd *r, const uint8_t *p, size_t len);
uint32_t ipc_get_u32(struct ipc_rd *r);
uint64_t ipc_get_u64(struct ipc_rd *r);
int64_t ipc_get_i64(struct ipc_rd *r);
/* A pointer into the frame for a byte field. */
const uint8_t *ipc_get_bytes(struct ipc_rd *r, size_t *n);
/* A string field in place; a NUL inside is an error. */
struct ipc_str ipc_get_strv(struct ipc_rd *r);
struct ipc_bytes ipc_get_bytesv(struct ipc_rd *r);
/* Copies for readers outside ipc_msg.h (the tests' peers): into dst,
 * NUL-terminated, too long or NUL inside an error; or malloc'd, NULL on error. */
void ipc_get_str(struct ipc_rd *r, char *dst, size_t dstsz);
char *ipc_get_strdup(struct ipc_rd *r);
/* 0 when every field was read and nothing is left over, else -1. */
int ipc_rd_done(const struct ipc_rd *r);

#endif
