/*
 * submit_dlg.c - the local submission dialogue (see submit_dlg.h).
 */
#include "submit_dlg.h"

#include <stdio.h>
#include <string.h>

static int submit_dlg_has_8bit(const void *p, size_t n)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		if (c[i] > 127)
			return 1;
	return 0;
}

void submit_dlg_init(struct submit_dlg *d, const char *sender, char *const *rcpts,
		     size_t nrcpts, const struct submit_dsn *dsn, const void *content, size_t len)
{
	memset(d, 0, sizeof(*d));
	d->sender = sender;
	d->rcpts = rcpts;
	d->nrcpts = nrcpts;
	d->dsn = dsn;
	d->eightbit = submit_dlg_has_8bit(content, len);
	d->step = SUBMIT_GREETING;
	d->pending = 1;
}

/* Keeps the first refusal, with the command it answered. */
static void submit_dlg_refused(struct submit_dlg *d, const char *what, const struct smtpc_reply *r)
{
	char line[400];

	if (d->code != 0)
		return;
	smtpc_reply_oneline(r, line, sizeof(line));
	d->code = r->code >= 400 && r->code <= 599 ? r->code : 451;
	snprintf(d->enh, sizeof(d->enh), "%s", r->enh);
	snprintf(d->text, sizeof(d->text), "%s: %s", what, line);
}

void submit_dlg_lost(struct submit_dlg *d, const char *why)
{
	if (d->code == 0) {
		d->code = 451;
		snprintf(d->enh, sizeof(d->enh), "4.3.0");
		snprintf(d->text, sizeof(d->text), "%s", why);
	}
	d->step = SUBMIT_OVER;
}

static enum submit_result submit_dlg_fail(struct submit_dlg *d, struct buf *out)
{
	buf_appendf(out, "QUIT\r\n");
	d->step = SUBMIT_OVER;
	return SUBMIT_FAILED;
}

/* "Ok: queued as QID": the last word (cut to fit). */
static void submit_dlg_qid(struct submit_dlg *d, const struct smtpc_reply *r)
{
	const char *sp = strrchr(r->text, ' ');
	const char *w = sp ? sp + 1 : r->text;
	size_t n = strnlen(w, sizeof(d->qid) - 1);
	memcpy(d->qid, w, n);
	d->qid[n] = '\0';
}

/* EHLO, MAIL and the RCPTs, pipelined. */
static void submit_dlg_envelope(const struct submit_dlg *d, struct buf *out)
{
	/* An address beyond ASCII needs SMTPUTF8, which implies 8-bit content. */
	int utf8 = submit_dlg_has_8bit(d->sender, strlen(d->sender));
	for (size_t i = 0; i < d->nrcpts; i++)
		utf8 |= submit_dlg_has_8bit(d->rcpts[i], strlen(d->rcpts[i]));
	buf_appendf(out, "EHLO localhost\r\nMAIL FROM:<%s>%s%s%s\r\n", d->sender,
		    d->eightbit || utf8 ? " BODY=8BITMIME" : "", utf8 ? " SMTPUTF8" : "",
		    d->dsn ? d->dsn->mail : "");
	for (size_t i = 0; i < d->nrcpts; i++)
		buf_appendf(out, "RCPT TO:<%s>%s\r\n", d->rcpts[i], d->dsn ? d->dsn->rcpt : "");
}

enum submit_result submit_dlg_reply(struct submit_dlg *d, const struct smtpc_reply *r,
				    struct buf *out)
{
	char what[600];

	switch (d->step) {
	case SUBMIT_GREETING:
		if (r->code != 220) {
			submit_dlg_refused(d, "greeting", r);
			return submit_dlg_fail(d, out);
		}
		submit_dlg_envelope(d, out);
		d->step = SUBMIT_ENVELOPE;
		d->pending = 2 + d->nrcpts;
		return SUBMIT_MORE;
	case SUBMIT_ENVELOPE:
		if (r->code < 200 || r->code > 299) {
			if (d->answered == 0)
				snprintf(what, sizeof(what), "EHLO");
			else if (d->answered == 1)
				snprintf(what, sizeof(what), "MAIL FROM:<%s>", d->sender);
			else
				snprintf(what, sizeof(what), "RCPT TO:<%s>", d->rcpts[d->answered - 2]);
			submit_dlg_refused(d, what, r);
		}
		d->answered++;
		if (--d->pending > 0)
			return SUBMIT_MORE;
		if (d->code != 0)
			return submit_dlg_fail(d, out);
		buf_appendf(out, "DATA\r\n");
		d->step = SUBMIT_DATA;
		d->pending = 1;
		return SUBMIT_MORE;
	case SUBMIT_DATA:
		if (r->code != 354) {
			submit_dlg_refused(d, "DATA", r);
			return submit_dlg_fail(d, out);
		}
		d->step = SUBMIT_END;
		return SUBMIT_CONTENT;
	case SUBMIT_END:
		if (r->code < 200 || r->code > 299) {
			submit_dlg_refused(d, "end of data", r);
			return submit_dlg_fail(d, out);
		}
		submit_dlg_qid(d, r);
		buf_appendf(out, "QUIT\r\n");
		d->step = SUBMIT_OVER;
		return SUBMIT_OK;
	case SUBMIT_OVER:
		break;
	}
	submit_dlg_lost(d, "reply after the end of the dialogue");
	return SUBMIT_FAILED;
}
