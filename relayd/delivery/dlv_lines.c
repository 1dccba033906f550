/*
 * dlv_lines.c - long lines broken at DLV_LINE_MAX on the way out (see
 * dlv_lines.h). A line ends at LF (the queue holds CRLF lines); a CR is
 * not counted, being half of a line end.
 */
#include "relayd/delivery/dlv_lines.h"

#include <string.h>

void dlv_lines_init(struct dlv_lines *l)
{
	l->col = 0;
	l->in_head = 1;
	buf_init(&l->hold);
}

void dlv_lines_restart(struct dlv_lines *l)
{
	l->col = 0;
	l->in_head = 1;
	buf_reset(&l->hold);
}

void dlv_lines_free(struct dlv_lines *l)
{
	buf_free(&l->hold);
}

/* Octets of a line segment that count toward its length (not its CR LF). */
static size_t lines_text_len(const uint8_t *p, size_t n)
{
	if (n > 0 && p[n - 1] == '\n')
		n--;
	if (n > 0 && p[n - 1] == '\r')
		n--;
	return n;
}

/*
 * Can p go out as it is? Yes when no line runs past the limit and the
 * piece does not end inside a header line (which would be held). The
 * state moves on as if it had gone.
 */
static int lines_pass(struct dlv_lines *l, const uint8_t *p, size_t n, int last)
{
	size_t col = l->col;
	int in_head = l->in_head;

	while (n > 0) {
		const uint8_t *nl = memchr(p, '\n', n);
		size_t seg = nl ? (size_t)(nl - p) + 1 : n;
		size_t text = lines_text_len(p, seg);
		if (col + text > DLV_LINE_MAX)
			return 0;
		if (nl == NULL) {
			if (in_head && !last)
				return 0;
			col += text;
			break;
		}
		if (in_head && col == 0 && text == 0)
			in_head = 0; /* the empty line: the body follows */
		col = 0;
		p += seg;
		n -= seg;
	}
	l->col = col;
	l->in_head = in_head;
	return 1;
}

/*
 * Where to fold a header line: at the last blank that keeps the line
 * within the limit; at 0 only when the line already has octets before
 * this piece (a line of blanks alone is no fold). -1 when there is none.
 */
static long lines_fold_at(const uint8_t *p, size_t room, size_t col)
{
	for (size_t j = room + 1; j-- > (col > 0 ? 0 : 1);)
		if (p[j] == ' ' || p[j] == '\t')
			return (long)j;
	return -1;
}

/* One line segment (up to and with its LF, or the rest of the piece). */
static void lines_segment(struct dlv_lines *l, const uint8_t *p, size_t seg, struct buf *out)
{
	size_t text = lines_text_len(p, seg);
	int ends = seg > 0 && p[seg - 1] == '\n';

	while (l->col + text > DLV_LINE_MAX) {
		size_t room = DLV_LINE_MAX - l->col, cut = room;
		const char *brk = "\r\n";
		if (l->in_head) {
			long j = lines_fold_at(p, room, l->col);
			if (j >= 0)
				cut = (size_t)j; /* the blank starts the continuation line */
			else
				brk = "\r\n "; /* no blank: one is added */
		}
		buf_append(out, p, cut);
		buf_append(out, brk, strlen(brk));
		l->col = strlen(brk) - 2;
		p += cut;
		seg -= cut;
		text -= cut;
	}
	buf_append(out, p, seg);
	if (!ends) {
		l->col += text;
		return;
	}
	if (l->col == 0 && text == 0)
		l->in_head = 0; /* the empty line: the body follows */
	l->col = 0;
}

const uint8_t *dlv_lines_break(struct dlv_lines *l, const uint8_t *p, size_t n, int last,
			       struct buf *out, size_t *outn)
{
	if (buf_avail(&l->hold) == 0 && lines_pass(l, p, n, last)) {
		*outn = n;
		return p;
	}
	buf_reset(out);
	int held = buf_avail(&l->hold) > 0;
	if (held) {
		/* The held start of a header line goes first. */
		buf_append(&l->hold, p, n);
		p = buf_head(&l->hold);
		n = buf_avail(&l->hold);
	}
	while (n > 0) {
		const uint8_t *nl = memchr(p, '\n', n);
		size_t seg = nl ? (size_t)(nl - p) + 1 : n;
		if (nl == NULL && l->in_head && !last) {
			/* Held whole: its fold point may be in the next piece. */
			if (held)
				buf_consume(&l->hold, (size_t)(p - buf_head(&l->hold)));
			else
				buf_append(&l->hold, p, seg);
			*outn = buf_avail(out);
			return *outn ? buf_head(out) : (const uint8_t *)""; /* never NULL */
		}
		lines_segment(l, p, seg, out);
		p += seg;
		n -= seg;
	}
	buf_reset(&l->hold);
	*outn = buf_avail(out);
	return buf_head(out);
}
