/*
 * smtp_data.h - the DATA reader: an incremental state machine fed the
 * client's bytes in chunks of any size. It removes dot-stuffing, ends the
 * message only at <CRLF>.<CRLF>, and refuses a bare CR, a bare LF or a NUL
 * anywhere (SMTP smuggling), content lines over 64 KiB, messages over the
 * size limit and mail loops (more than 100 Received: headers).
 *
 * After the first violation the reader keeps going without output until a
 * proper <CRLF>.<CRLF>, so a bad message ends in one reply and nothing the
 * client put after a fake end of data is ever read as a second message.
 */
#ifndef RELAYD_SMTP_DATA_H
#define RELAYD_SMTP_DATA_H

#include "smtp_reply.h"
#include "common/buf.h"

#include <stddef.h>
#include <stdint.h>

/*
 * RFC 5321 4.5.3.1.6 says 1000 octets with the CRLF, but clients send
 * longer lines and Postfix takes them (line_length_limit breaks them
 * into pieces); delivery breaks them at 998 when it sends them on
 * (dlv_lines.c). The bound stays, so that a line cannot grow forever.
 */
#define SMTP_DATA_LINE_MAX (64 * 1024)
/* More Received: headers than this is a loop (RFC 5321 6.3). */
#define SMTP_MAX_HOPS 100

struct smtp_data {
	uint64_t max_size;
	uint64_t size;          /* content octets, unstuffed, CRLF line ends */
	enum smtp_reply_id err; /* the first violation, SR_NONE while fine */
	unsigned received;      /* Received: headers seen */
	unsigned in_headers : 1;
	unsigned has_msgid : 1;
	unsigned has_date : 1;
	/* Internal state. */
	int state;
	size_t linelen;
	int hstate;
	unsigned hlines;
	size_t hnlen;
	char hname[16];
};

void smtp_data_init(struct smtp_data *d, uint64_t max_size);
/*
 * Reads p[0..n). Content is appended to out while no violation has been
 * seen. Returns the octets consumed; *done is set when <CRLF>.<CRLF> was
 * read (the octets after it are not consumed: they are the next command).
 */
size_t smtp_data_feed(struct smtp_data *d, const uint8_t *p, size_t n, struct buf *out,
		      int *done);

#endif
