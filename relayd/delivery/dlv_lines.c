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

/* Does any line of p, counted from l's column, run past the limit? */
static int lines_any_long(const struct dlv_lines *l, const uint8_t *p, size_t n)
{
	size_t col = l->col;

	while (n > 0) {
		const uint8_t *nl = memchr(p, '\n', n);
		size_t seg = nl ? (size_t)(nl - p) + 1 : n;
		if (col + lines_text_len(p, seg) > DLV_LINE_MAX)
			return 1;
		col = nl ? 0 : col + seg;
		p += seg;
		n -= seg;
	}
	return 0;
}

/* Where to fold a header line: after the last blank that keeps the line
 * within the limit, not at its very start; 0 when there is none. */
static size_t lines_fold_at(const uint8_t *p, size_t room)
{
	for (size_t j = room; j > 0; j--)
		if (p[j] == ' ' || p[j] == '\t')
			return j;
	return 0;
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
			size_t j = lines_fold_at(p, room);
			if (j > 0)
				cut = j; /* the blank starts the continuation line */
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

const uint8_t *dlv_lines_break(struct dlv_lines *l, const uint8_t *p, size_t n, struct buf *out,
			       size_t *outn)
{
	if (!lines_any_long(l, p, n)) {
		/* Nothing to break: only the state moves on. */
		for (size_t i = 0; i < n;) {
			const uint8_t *nl = memchr(p + i, '\n', n - i);
			size_t seg = nl ? (size_t)(nl - (p + i)) + 1 : n - i;
			size_t text = lines_text_len(p + i, seg);
			if (!nl) {
				l->col += text;
				break;
			}
			if (l->in_head && l->col == 0 && text == 0)
				l->in_head = 0;
			l->col = 0;
			i += seg;
			if (!l->in_head) {
				/* In the body only the last line's column matters. */
				const uint8_t *last = memrchr(p + i, '\n', n - i);
				size_t from = last ? (size_t)(last - p) + 1 : i;
				l->col = lines_text_len(p + from, n - from);
				break;
			}
		}
		*outn = n;
		return p;
	}
	buf_reset(out);
	while (n > 0) {
		const uint8_t *nl = memchr(p, '\n', n);
		size_t seg = nl ? (size_t)(nl - p) + 1 : n;
		lines_segment(l, p, seg, out);
		p += seg;
		n -= seg;
	}
	*outn = buf_avail(out);
	return buf_head(out);
}
