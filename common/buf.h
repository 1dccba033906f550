/*
 * buf.h - a growable byte buffer with a read offset, used for connection
 * input and output and for building IPC frames.
 */
#ifndef RELAYD_BUF_H
#define RELAYD_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *data;
	size_t off; /* start of unconsumed bytes */
	size_t len; /* end of valid bytes */
	size_t cap;
};

void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
/* Bytes not yet consumed. */
static inline size_t buf_avail(const struct buf *b) { return b->len - b->off; }
/* An empty buffer may have no storage yet: NULL + 0 is UB, so no arithmetic then. */
static inline uint8_t *buf_head(const struct buf *b)
{
	return b->data != NULL ? b->data + b->off : NULL;
}
/* Makes room for n more bytes at the tail; returns the tail. */
uint8_t *buf_reserve(struct buf *b, size_t n);
void buf_commit(struct buf *b, size_t n);
void buf_append(struct buf *b, const void *p, size_t n);
void buf_appendf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_consume(struct buf *b, size_t n);

#endif
