/*
 * dlv_lines.h - breaking lines longer than SMTP allows (RFC 5321
 * 4.5.3.1.6: 998 octets before the CRLF) as content leaves relayd, the way
 * Postfix's smtp_line_length_limit does: a header line is folded (CRLF
 * before a blank where there is one, else CRLF and a space), a body line
 * is split with a CRLF. Intake takes lines up to 64 KiB; this runs in
 * delivery before DKIM signing, so the signature covers what is sent.
 *
 * Fed piece by piece, as the content comes from the queue. A piece whose
 * lines are all short comes back as it was, not copied: ordinary mail
 * pays one memchr per line. An incomplete header line at the end of a
 * piece is held back until its end comes, so that where a header is folded
 * does not depend on where the pieces were cut.
 */
#ifndef RELAYD_DLV_LINES_H
#define RELAYD_DLV_LINES_H

#include "common/buf.h"

#include <stddef.h>
#include <stdint.h>

#define DLV_LINE_MAX 998

struct dlv_lines {
	size_t col;       /* octets of the current line already passed on */
	int in_head;      /* still in the message's header section */
	struct buf hold;  /* the start of a header line whose end has not come */
};

void dlv_lines_init(struct dlv_lines *l);
/* Back to the start of a message (another pass over the same content). */
void dlv_lines_restart(struct dlv_lines *l);
void dlv_lines_free(struct dlv_lines *l);
/*
 * The content p[0..n) with its long lines broken: p itself when nothing
 * needed breaking, else the broken form in out (reset first). *outn is
 * set to the length returned. last: p ends the content (nothing is held).
 */
const uint8_t *dlv_lines_break(struct dlv_lines *l, const uint8_t *p, size_t n, int last,
			       struct buf *out, size_t *outn);

#endif
