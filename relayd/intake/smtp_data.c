/*
 * smtp_data.c - the DATA state machine. Only CRLF makes a line start, so
 * a bare CR or LF can never bring the reader to a place where "." ends
 * the message.
 */
#include "smtp_data.h"

#include <string.h>

enum { DS_BOL, DS_DOT, DS_DOT_CR, DS_TEXT, DS_CR };
/* Where a header line is: in its name, blanks after the name, past the colon. */
enum { HS_NAME, HS_NAME_WS, HS_VALUE, HS_BAD };

void smtp_data_init(struct smtp_data *d, uint64_t max_size)
{
	memset(d, 0, sizeof(*d));
	d->max_size = max_size;
	d->in_headers = 1;
	d->state = DS_BOL;
	d->hstate = HS_NAME;
}

static void data_violation(struct smtp_data *d, enum smtp_reply_id err)
{
	if (d->err == SR_NONE)
		d->err = err;
}

/* One content character of a line (not CR, LF, NUL). */
static void data_line_char(struct smtp_data *d, uint8_t c)
{
	if (++d->linelen > SMTP_DATA_LINE_MAX)
		data_violation(d, SR_DATA_LONG_LINE);
	if (!d->in_headers)
		return;
	switch (d->hstate) {
	case HS_NAME:
		if (d->linelen == 1 && (c == ' ' || c == '\t'))
			d->hstate = d->hlines > 0 ? HS_VALUE : HS_BAD; /* folded line */
		else if (c == ':')
			d->hstate = d->linelen > 1 ? HS_VALUE : HS_BAD;
		else if (c == ' ' || c == '\t')
			d->hstate = HS_NAME_WS;
		else if (c > 32 && c < 127) {
			if (d->hnlen < sizeof(d->hname))
				d->hname[d->hnlen] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
			d->hnlen++;
		} else
			d->hstate = HS_BAD;
		break;
	case HS_NAME_WS:
		if (c == ':')
			d->hstate = HS_VALUE;
		else if (c != ' ' && c != '\t')
			d->hstate = HS_BAD;
		break;
	}
}

static int hname_is(const struct smtp_data *d, const char *name)
{
	size_t n = strlen(name);
	return d->hnlen == n && memcmp(d->hname, name, n) == 0;
}

/* A CRLF ended a line. */
static void data_line_end(struct smtp_data *d)
{
	if (d->in_headers) {
		/* The empty line, or a line that is no header, starts the body. */
		if (d->linelen == 0 || d->hstate != HS_VALUE)
			d->in_headers = 0;
		else {
			d->hlines++;
			if (hname_is(d, "received") && ++d->received > SMTP_MAX_HOPS)
				data_violation(d, SR_LOOP);
			if (hname_is(d, "message-id"))
				d->has_msgid = 1;
			if (hname_is(d, "date"))
				d->has_date = 1;
		}
	}
	d->linelen = 0;
	d->hnlen = 0;
	d->hstate = HS_NAME;
}

size_t smtp_data_feed(struct smtp_data *d, const uint8_t *p, size_t n, struct buf *out,
		      int *done)
{
	size_t run = 0; /* start of the octets still to be copied to out */
	size_t i;

	*done = 0;
	for (i = 0; i < n; i++) {
		uint8_t c = p[i];
		int emit = 1;
reprocess:
		switch (d->state) {
		case DS_BOL:
		case DS_TEXT:
			if (c == '.' && d->state == DS_BOL) {
				d->state = DS_DOT;
				emit = 0;
			} else if (c == '\r')
				d->state = DS_CR;
			else if (c == '\n' || c == '\0') {
				data_violation(d, SR_DATA_BAD_EOL);
				d->state = DS_TEXT;
			} else {
				data_line_char(d, c);
				d->state = DS_TEXT;
			}
			break;
		case DS_DOT:
			if (c == '\r') {
				d->state = DS_DOT_CR;
				emit = 0;
			} else {
				/* The leading dot goes (RFC 5321 4.5.2); c is text. */
				d->state = DS_TEXT;
				goto reprocess;
			}
			break;
		case DS_DOT_CR:
			if (c == '\n') {
				i++;
				*done = 1;
				goto out;
			}
			data_violation(d, SR_DATA_BAD_EOL);
			d->state = DS_TEXT;
			goto reprocess;
		case DS_CR:
			if (c == '\n') {
				data_line_end(d);
				d->state = DS_BOL;
			} else if (c == '\r')
				data_violation(d, SR_DATA_BAD_EOL);
			else {
				data_violation(d, SR_DATA_BAD_EOL);
				d->state = DS_TEXT;
				goto reprocess;
			}
			break;
		}
		if (!emit) {
			if (d->err == SR_NONE && i > run)
				buf_append(out, p + run, i - run);
			run = i + 1;
		} else if (d->err == SR_NONE && ++d->size > d->max_size)
			data_violation(d, SR_TOO_BIG);
	}
out:
	if (d->err == SR_NONE) {
		/* The terminating ".CRLF" was withheld already; copy the rest. */
		size_t end = *done ? i - 1 : i;
		if (end > run)
			buf_append(out, p + run, end - run);
	}
	return i;
}
