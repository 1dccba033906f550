/*
 * smtpc_stuff.h - turning stored message content into the DATA stream of
 * RFC 5321 4.5.2: every line that starts with a dot gets one more, every
 * line ends in CRLF (a stray CR or LF becomes CRLF, so no bare line end
 * ever leaves relayd: SMTP smuggling), and the stream ends in CRLF.CRLF.
 * It is fed piece by piece, as the content arrives from the queue.
 */
#ifndef RELAYD_SMTPC_STUFF_H
#define RELAYD_SMTPC_STUFF_H

#include "common/buf.h"

#include <stddef.h>
#include <stdint.h>

struct smtpc_stuff {
	int bol; /* the next byte starts a line */
	int cr;  /* a CR was seen and its line end not yet written */
};

void smtpc_stuff_init(struct smtpc_stuff *s);
/* Appends the stuffed form of n content bytes to out. */
void smtpc_stuff(struct smtpc_stuff *s, const uint8_t *p, size_t n, struct buf *out);
/* Ends the last line if needed and appends the final ".\r\n". */
void smtpc_stuff_end(struct smtpc_stuff *s, struct buf *out);

#endif
