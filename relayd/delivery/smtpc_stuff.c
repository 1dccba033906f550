/*
 * smtpc_stuff.c - dot-stuffing and line-end normalization of outgoing
 * message content.
 */
#include "relayd/delivery/smtpc_stuff.h"

void smtpc_stuff_init(struct smtpc_stuff *s)
{
	s->bol = 1;
	s->cr = 0;
}

void smtpc_stuff(struct smtpc_stuff *s, const uint8_t *p, size_t n, struct buf *out)
{
	/* Worst case: every byte a line end or a leading dot doubles. */
	uint8_t *dst = buf_reserve(out, 2 * n + 2), *o = dst;

	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (s->cr) {
			/* CR then anything: one CRLF; the LF of a CRLF is used up. */
			*o++ = '\r';
			*o++ = '\n';
			s->cr = 0;
			s->bol = 1;
			if (c == '\n')
				continue;
		}
		if (c == '\r') {
			s->cr = 1;
			continue;
		}
		if (c == '\n') {
			*o++ = '\r';
			*o++ = '\n';
			s->bol = 1;
			continue;
		}
		if (s->bol && c == '.')
			*o++ = '.';
		*o++ = c;
		s->bol = 0;
	}
	buf_commit(out, (size_t)(o - dst));
}

void smtpc_stuff_end(struct smtpc_stuff *s, struct buf *out)
{
	if (s->cr || !s->bol)
		buf_append(out, "\r\n", 2);
	buf_append(out, ".\r\n", 3);
	smtpc_stuff_init(s);
}
