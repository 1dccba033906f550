/*
 * dlv_txn.c - one mail transaction of the SMTP client (RFC 5321, PIPELINING
 * RFC 2920, SIZE RFC 1870, 8BITMIME RFC 6152, SMTPUTF8 RFC 6531, DSN
 * RFC 3461) on a
 * connection dlv_session.c made ready: MAIL, RCPT, DATA, the dot-stuffed
 * content as it arrives from the queue, and one outcome per recipient;
 * then RSET and the destination's next job on the same connection.
 *
 * Pipelined or one by one, the commands go out through smtpc_send() and
 * their replies come back to the handlers here in order.
 *
 * A server without 8BITMIME or SMTPUTF8 gets the message downgraded
 * (dlv_mime.c) instead of a bounce; every message has its long lines
 * broken (dlv_lines.c). Both happen before DKIM signing, so the signature
 * covers the bytes the server receives.
 */
#include "relayd/delivery/dlv_session.h"
#include "relayd/delivery/dlv_mime.h"
#include "common/conn.h"
#include "common/idn.h"
#include "common/log.h"
#include "common/xtext.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void smtpc_content_next(struct dlv_session *s);
static int smtpc_sign_end(struct dlv_session *s);

/* ---- outcomes ---- */

void smtpc_outcome_local(struct dlv_session *s, struct dlv_outcome *o, enum dlv_class cls,
			 const char *enh, const char *fmt, ...)
{
	va_list ap;

	memset(o, 0, sizeof(*o));
	o->cls = cls;
	snprintf(o->enh, sizeof(o->enh), "%s", enh);
	va_start(ap, fmt);
	vsnprintf(o->text, sizeof(o->text), fmt, ap);
	va_end(ap);
	o->relay = s->c ? s->relay : NULL;
	o->conn_use = s->conn_use;
}

void smtpc_outcome_reply(struct dlv_session *s, struct dlv_outcome *o, enum smtpc_cmd cmd)
{
	char line[1024];
	int cls = s->reply.code / 100;

	memset(o, 0, sizeof(*o));
	/* A 3xx where none belongs is the server's confusion: try again later. */
	o->cls = cls == 2 ? DLV_SENT : cls == 5 ? DLV_BOUNCED : DLV_DEFERRED;
	o->code = s->reply.code;
	if (s->reply.enh[0])
		snprintf(o->enh, sizeof(o->enh), "%s", s->reply.enh);
	else
		snprintf(o->enh, sizeof(o->enh), "%s",
			 cls == 2 ? "2.0.0" : cls == 5 ? "5.0.0" : "4.0.0");
	smtpc_reply_oneline(&s->reply, line, sizeof(line));
	/* The reply itself for a report's Diagnostic-Code; the text for people. */
	snprintf(o->reply, sizeof(o->reply), "%s", line);
	/* Without DSN at the next hop, NOTIFY=SUCCESS ends here: the queue says "relayed". */
	if (o->cls == DLV_SENT && !(s->caps.ext & SMTPC_EXT_DSN))
		o->flags |= RESULT_DSN_RELAYED;
	if (o->cls == DLV_SENT)
		snprintf(o->text, sizeof(o->text), "%s", line);
	else
		snprintf(o->text, sizeof(o->text), "host %s said: %s (in reply to %s)", s->peer,
			 line, smtpc_cmd_name(cmd));
	o->relay = s->relay;
	o->conn_use = s->conn_use;
}

/* Recipients accepted by RCPT, still waiting for the end of DATA. */
static void smtpc_outcome_accepted(struct dlv_session *s, const struct dlv_outcome *o)
{
	for (size_t i = 0; i < s->job->nrcpts; i++)
		if (s->job->rcpts[i].accepted && !s->job->rcpts[i].done)
			dlv_rcpt_outcome(s->ctx, s->job, i, o);
}

/* ---- ending jobs ---- */

/*
 * The current job is over (all its recipients decided). The connection
 * then takes the next waiting job of the destination, after an RSET when
 * the last transaction did not end with the final dot.
 */
void smtpc_job_end(struct dlv_session *s, int need_rset)
{
	struct dlv_job *next;

	dlv_job_finish(s->ctx, s->job);
	s->job = NULL;
	smtpc_conv_reset(s);
	s->in_txn = 0;
	s->mail_ok = 0;
	s->naccepted = 0;
	if (s->c == NULL || s->broken || (next = dlv_dest_take(s->ctx, s->dest)) == NULL) {
		smtpc_close(s);
		return;
	}
	s->job = next;
	next->sess = s;
	s->conn_use++;
	dlv_trace_begin(&next->trace, "attempt for %zu recipient(s) at %s on the open "
			"connection to %s (transaction %u on it)", next->nrcpts, next->domain,
			s->relay, s->conn_use);
	s->ctx->stats.conn_reuse++;
	if (need_rset)
		smtpc_send(s, SC_RSET, 0, "RSET");
	else
		smtpc_start_txn(s);
}

void smtpc_txn_fail(struct dlv_session *s, const struct dlv_outcome *o)
{
	log_msg(LOG_INFO, s->job->qid, "%s", o->text);
	dlv_job_outcome_all(s->ctx, s->job, o);
	s->broken = 1;
	smtpc_job_end(s, 0);
}

/* ---- what the server takes ---- */

/* What this server takes of what the message uses (DLV_MIME_*). */
static unsigned smtpc_allow(const struct dlv_session *s)
{
	unsigned a = 0;

	if ((s->job->body & BODY_8BITMIME) && (s->caps.ext & SMTPC_EXT_8BITMIME))
		a |= DLV_MIME_8BIT;
	if ((s->job->body & BODY_SMTPUTF8) && (s->caps.ext & SMTPC_EXT_SMTPUTF8))
		a |= DLV_MIME_UTF8;
	return a;
}

static int smtpc_needs_downgrade(const struct dlv_session *s)
{
	return ((s->job->body & BODY_8BITMIME) && !(s->caps.ext & SMTPC_EXT_8BITMIME)) ||
	       ((s->job->body & BODY_SMTPUTF8) && !(s->caps.ext & SMTPC_EXT_SMTPUTF8));
}

/*
 * An address that only SMTPUTF8 can carry: a UTF-8 local part, or a
 * domain with no A-label form. A U-label domain alone goes as A-labels.
 */
static int smtpc_addr_utf8(const char *addr)
{
	char a[600];

	return idn_addr_to_ascii(addr, a, sizeof(a)) < 0 || !idn_is_ascii(a);
}

static size_t smtpc_next_rcpt(const struct dlv_job *job, size_t from)
{
	while (from < job->nrcpts && job->rcpts[from].done)
		from++;
	return from;
}

/*
 * Requirements of the message the server must meet before MAIL is sent.
 * Without SMTPUTF8, only the addresses that need it bounce (5.6.7); the
 * rest goes plain, its headers downgraded.
 */
static int smtpc_check_server(struct dlv_session *s)
{
	struct dlv_job *job = s->job;
	struct dlv_outcome o;

	/* Converted, the message may have grown (base64: a third). */
	uint64_t size = s->conv_ready ? buf_avail(&s->conv) : job->size;

	if ((s->caps.ext & SMTPC_EXT_SIZE) && s->caps.size_max > 0 && size > s->caps.size_max)
		smtpc_outcome_local(s, &o, DLV_BOUNCED, "5.3.4",
				    "message size %llu exceeds size limit %llu of server %s",
				    (unsigned long long)size, (unsigned long long)s->caps.size_max,
				    s->peer);
	else if ((job->body & BODY_SMTPUTF8) && !(s->caps.ext & SMTPC_EXT_SMTPUTF8) &&
		 smtpc_addr_utf8(job->sender))
		smtpc_outcome_local(s, &o, DLV_BOUNCED, "5.6.7",
				    "host %s does not support SMTPUTF8, needed by the UTF-8 sender "
				    "address", s->peer);
	else {
		if ((job->body & BODY_SMTPUTF8) && !(s->caps.ext & SMTPC_EXT_SMTPUTF8))
			for (size_t i = 0; i < job->nrcpts; i++) {
				if (job->rcpts[i].done || !smtpc_addr_utf8(job->rcpts[i].addr))
					continue;
				smtpc_outcome_local(s, &o, DLV_BOUNCED, "5.6.7",
						    "host %s does not support SMTPUTF8, needed by "
						    "the UTF-8 recipient address", s->peer);
				log_msg(LOG_INFO, job->qid, "<%s>: %s", job->rcpts[i].addr, o.text);
				dlv_rcpt_outcome(s->ctx, job, i, &o);
			}
		return smtpc_next_rcpt(job, 0) < job->nrcpts ? 0 : -1;
	}
	log_msg(LOG_INFO, job->qid, "%s", o.text);
	smtpc_trace(s, '*', "%s", o.text);
	dlv_job_outcome_all(s->ctx, job, &o);
	return -1;
}

/*
 * An address as this transaction sends it: outside SMTPUTF8 a U-label
 * domain goes in its A-labels (RFC 6531 section 3.2); a UTF-8 local part
 * has no such form and is sent as it is.
 */
static const char *smtpc_addr(const struct dlv_session *s, const char *addr, char *buf,
			      size_t bufsz)
{
	if (smtpc_allow(s) & DLV_MIME_UTF8)
		return addr;
	idn_addr_to_ascii(addr, buf, bufsz);
	return buf;
}

/* ---- the downgrade, before MAIL ---- */

/*
 * The message is read whole into memory and converted there, not
 * streamed: whether a part must be re-encoded (does its body hold 8-bit
 * octets?) has to be known before its headers are written, and a failure
 * (an 8-bit address in From:) must be known before MAIL so that it
 * bounces cleanly instead of breaking off a DATA. A streaming converter
 * would need a first pass to find that out anyway. This costs memory for
 * the rare message that goes 8-bit to an old server, bounded here (above
 * the default max-message-size); ordinary mail never comes here.
 */
#define SMTPC_CONV_MAX (64ull * 1024 * 1024)
/* The converted message goes out in pieces of this size, as the queue's do. */
#define SMTPC_CONV_PIECE (64 * 1024)

void smtpc_conv_reset(struct dlv_session *s)
{
	s->loading = 0;
	s->conv_ready = 0;
	s->conv_off = 0;
	buf_free(&s->conv);
}

static void smtpc_load_start(struct dlv_session *s)
{
	struct dlv_outcome o;

	if (s->job->size > SMTPC_CONV_MAX) {
		smtpc_outcome_local(s, &o, DLV_BOUNCED, "5.6.3",
				    "host %s does not support 8BITMIME or SMTPUTF8 and the message "
				    "is too large to convert (%llu octets, at most %llu)", s->peer,
				    (unsigned long long)s->job->size, SMTPC_CONV_MAX);
		log_msg(LOG_INFO, s->job->qid, "%s", o.text);
		dlv_job_outcome_all(s->ctx, s->job, &o);
		smtpc_job_end(s, 0);
		return;
	}
	buf_reset(&s->conv);
	s->loading = 1;
	s->job->chunk_seq = 0;
	ev_timer_start(s->ctx->loop, &s->timer, smtpc_timeout_ms(SMTPC_BLOCK_TIMEOUT));
	dlv_job_request_chunk(s->ctx, s->job);
}

/* The whole message is in conv: downgrade it, break its long lines, then MAIL. */
static void smtpc_load_done(struct dlv_session *s)
{
	struct dlv_job *job = s->job;
	struct buf out;
	struct dlv_lines lines;
	struct dlv_outcome o;
	char why[300];
	size_t n;

	s->loading = 0;
	buf_init(&out);
	enum dlv_mime_result r = dlv_mime_convert(buf_head(&s->conv), buf_avail(&s->conv),
						  smtpc_allow(s), &out, why, sizeof(why));
	if (r == DLV_MIME_BAD_BODY || r == DLV_MIME_BAD_HEADER) {
		int utf8 = r == DLV_MIME_BAD_HEADER && (job->body & BODY_SMTPUTF8);
		smtpc_outcome_local(s, &o, DLV_BOUNCED, utf8 ? "5.6.7" : "5.6.3",
				    "host %s does not support %s and the message cannot be "
				    "converted: %s", s->peer, utf8 ? "SMTPUTF8" : "8BITMIME", why);
		log_msg(LOG_INFO, job->qid, "%s", o.text);
		buf_free(&out);
		dlv_job_outcome_all(s->ctx, job, &o);
		smtpc_job_end(s, 0);
		return;
	}
	if (r == DLV_MIME_CONVERTED) {
		unsigned allow = smtpc_allow(s);
		log_msg(LOG_INFO, job->qid, "converted for %s (%s)", s->peer,
			(allow & DLV_MIME_8BIT) ? "ASCII headers"
			: (allow & DLV_MIME_UTF8) ? "7-bit body" : "7-bit body, ASCII headers");
		buf_free(&s->conv);
		s->conv = out;
		buf_init(&out);
	}
	dlv_lines_init(&lines);
	const uint8_t *p = dlv_lines_break(&lines, buf_head(&s->conv), buf_avail(&s->conv), 1,
					   &out, &n);
	if (p != buf_head(&s->conv)) {
		buf_free(&s->conv);
		s->conv = out;
	} else
		buf_free(&out);
	dlv_lines_free(&lines);
	s->conv_ready = 1;
	smtpc_start_txn(s);
}

/* ---- MAIL, RCPT, DATA ---- */

/* NOTIFY= and ORCPT= for a next hop with DSN (RFC 3461 4.1, 4.2). */
static void smtpc_rcpt_dsn(const struct dlv_rcpt *r, char *params, size_t size)
{
	static const struct {
		unsigned bit;
		const char *name;
	} words[] = {
		{DSN_NOTIFY_NEVER, "NEVER"}, {DSN_NOTIFY_SUCCESS, "SUCCESS"},
		{DSN_NOTIFY_FAILURE, "FAILURE"}, {DSN_NOTIFY_DELAY, "DELAY"},
	};
	size_t n = 0;
	char value[501];

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (r->notify & words[i].bit)
			n += (size_t)snprintf(params + n, size - n, "%s%s",
					      n == 0 ? " NOTIFY=" : ",", words[i].name);
	const char *semi = r->orcpt ? strchr(r->orcpt, ';') : NULL;
	if (semi == NULL)
		return;
	int utf8 = strncmp(r->orcpt, "utf-8;", 6) == 0;
	/* An ORCPT that would encode longer than RFC 3461 allows is left out. */
	if ((utf8 ? xtext_encode_utf8(semi + 1, value, sizeof(value))
		  : xtext_encode(semi + 1, value, sizeof(value))) > 0)
		snprintf(params + n, size - n, " ORCPT=%s;%s", utf8 ? "utf-8" : "rfc822", value);
}

static void smtpc_send_rcpt(struct dlv_session *s, size_t i)
{
	const struct dlv_rcpt *r = &s->job->rcpts[i];
	char buf[600], params[600] = "";

	if ((s->caps.ext & SMTPC_EXT_DSN) && (r->notify != 0 || r->orcpt != NULL))
		smtpc_rcpt_dsn(r, params, sizeof(params));
	smtpc_send(s, SC_RCPT, (uint32_t)i, "RCPT TO:<%s>%s",
		   smtpc_addr(s, r->addr, buf, sizeof(buf)), params);
}

void smtpc_start_txn(struct dlv_session *s)
{
	struct dlv_job *job = s->job;
	unsigned allow;
	char params[400] = "";
	size_t n = 0;

	if (smtpc_check_server(s) < 0) {
		smtpc_job_end(s, 0);
		return;
	}
	if (!s->conv_ready && smtpc_needs_downgrade(s)) {
		smtpc_load_start(s);
		return;
	}
	allow = smtpc_allow(s);
	if (s->caps.ext & SMTPC_EXT_SIZE)
		n += (size_t)snprintf(params + n, sizeof(params) - n, " SIZE=%llu",
				      (unsigned long long)(s->conv_ready ? buf_avail(&s->conv)
									 : job->size));
	if (allow & DLV_MIME_8BIT)
		n += (size_t)snprintf(params + n, sizeof(params) - n, " BODY=8BITMIME");
	if (allow & DLV_MIME_UTF8)
		n += (size_t)snprintf(params + n, sizeof(params) - n, " SMTPUTF8");
	/* RET= and ENVID= go on to a next hop that offers DSN (RFC 3461 4.3, 4.4). */
	if ((s->caps.ext & SMTPC_EXT_DSN) && job->dsn_ret != 0)
		n += (size_t)snprintf(params + n, sizeof(params) - n, " RET=%s",
				      job->dsn_ret == DSN_RET_HDRS ? "HDRS" : "FULL");
	char envid[3 * 100 + 1]; /* xtext of an ENVID: three octets a character at most */
	if ((s->caps.ext & SMTPC_EXT_DSN) && job->envid != NULL &&
	    xtext_encode(job->envid, envid, sizeof(envid)) > 0)
		snprintf(params + n, sizeof(params) - n, " ENVID=%s", envid);
	s->in_txn = 1;
	s->mail_ok = 0;
	s->naccepted = 0;
	char sender[600];
	smtpc_send(s, SC_MAIL, 0, "MAIL FROM:<%s>%s", smtpc_addr(s, job->sender, sender,
								     sizeof(sender)), params);
	if (!(s->caps.ext & SMTPC_EXT_PIPELINING))
		return;
	for (size_t i = smtpc_next_rcpt(job, 0); i < job->nrcpts; i = smtpc_next_rcpt(job, i + 1))
		smtpc_send_rcpt(s, i);
	smtpc_send(s, SC_DATA, 0, "DATA");
}

/* One by one: after the last RCPT, DATA if anybody was accepted. */
static void smtpc_after_rcpts(struct dlv_session *s)
{
	if (s->naccepted > 0)
		smtpc_send(s, SC_DATA, 0, "DATA");
	else
		smtpc_job_end(s, 1);
}

void smtpc_h_mail(struct dlv_session *s, enum smtpc_cmd cmd, uint32_t arg)
{
	(void)cmd;
	int pipelining = (s->caps.ext & SMTPC_EXT_PIPELINING) != 0;
	struct dlv_outcome o;

	(void)arg;
	if (s->reply.code / 100 == 2) {
		s->mail_ok = 1;
		if (!pipelining)
			smtpc_send_rcpt(s, smtpc_next_rcpt(s->job, 0));
		return;
	}
	smtpc_outcome_reply(s, &o, SC_MAIL);
	dlv_job_outcome_all(s->ctx, s->job, &o);
	/* Pipelined: the RCPT and DATA replies are still to come. */
	if (!pipelining)
		smtpc_job_end(s, 1);
}

void smtpc_h_rcpt(struct dlv_session *s, enum smtpc_cmd cmd, uint32_t i)
{
	(void)cmd;
	struct dlv_rcpt *r = &s->job->rcpts[i];
	struct dlv_outcome o;

	if (!r->done) {
		if (s->reply.code / 100 == 2) {
			r->accepted = 1;
			s->naccepted++;
		} else {
			smtpc_outcome_reply(s, &o, SC_RCPT);
			dlv_rcpt_outcome(s->ctx, s->job, i, &o);
		}
	}
	if (s->caps.ext & SMTPC_EXT_PIPELINING)
		return;
	if (smtpc_next_rcpt(s->job, i + 1) < s->job->nrcpts)
		smtpc_send_rcpt(s, smtpc_next_rcpt(s->job, i + 1));
	else
		smtpc_after_rcpts(s);
}

void smtpc_h_data(struct dlv_session *s, enum smtpc_cmd cmd, uint32_t arg)
{
	(void)cmd;
	struct dlv_outcome o;
	int wanted = s->mail_ok && s->naccepted > 0;

	(void)arg;
	if (s->reply.code == 354) {
		if (!wanted) {
			/* A server that says go ahead with nobody accepted gets an empty end. */
			conn_write(s->c, ".\r\n", 3);
			smtpc_trace(s, '>', ". (no recipient was accepted: an empty message)");
			smtpc_push(s, SC_DOT, 1);
			return;
		}
		s->in_content = 1;
		s->want_chunk = 0;
		s->content_bytes = 0;
		smtpc_stuff_init(&s->stuff);
		dlv_lines_restart(&s->lines);
		s->job->chunk_seq = 0;
		s->conv_off = 0;
		/* With keys, a first pass over the content makes the signature,
		 * which goes ahead of the message: dlv_session_chunk. */
		dlv_dkim_stream_free(s->dk);
		s->dk = dlv_dkim_stream_new(s->ctx->dkim);
		if (s->dk != NULL && s->conv_ready) {
			/* The downgraded message is at hand: one pass over it. */
			dlv_dkim_stream_update(s->dk, buf_head(&s->conv), buf_avail(&s->conv));
			if (smtpc_sign_end(s) < 0)
				return;
		}
		smtpc_content_next(s);
		return;
	}
	if (wanted) {
		smtpc_outcome_reply(s, &o, SC_DATA);
		smtpc_outcome_accepted(s, &o);
	}
	smtpc_job_end(s, 1);
}

void smtpc_h_dot(struct dlv_session *s, enum smtpc_cmd cmd, uint32_t discard)
{
	(void)cmd;
	struct dlv_outcome o;

	if (discard) {
		smtpc_job_end(s, 1);
		return;
	}
	smtpc_outcome_reply(s, &o, SC_DOT);
	smtpc_outcome_accepted(s, &o);
	smtpc_job_end(s, 0);
}

void smtpc_h_rset(struct dlv_session *s, enum smtpc_cmd cmd, uint32_t arg)
{
	(void)cmd;
	(void)arg;
	if (s->reply.code / 100 == 2) {
		smtpc_start_txn(s);
		return;
	}
	/* The job never started here: it waits for another connection. */
	dlv_dest_requeue(s->ctx, s->job);
	s->job = NULL;
	s->broken = 1;
	smtpc_close(s);
}

/* ---- the content ---- */

/* The next piece of content: from conv when the message was downgraded, else from the queue. */
static void smtpc_content_next(struct dlv_session *s)
{
	ev_timer_start(s->ctx->loop, &s->timer, smtpc_timeout_ms(SMTPC_BLOCK_TIMEOUT));
	if (!s->conv_ready) {
		dlv_job_request_chunk(s->ctx, s->job);
		return;
	}
	size_t left = buf_avail(&s->conv) - s->conv_off;
	size_t n = left < SMTPC_CONV_PIECE ? left : SMTPC_CONV_PIECE;
	const uint8_t *p = buf_head(&s->conv) + s->conv_off;
	s->conv_off += n;
	dlv_session_chunk(s, p, n, s->conv_off == buf_avail(&s->conv));
}

void smtpc_on_drain(struct conn *c, void *arg)
{
	struct dlv_session *s = arg;

	(void)c;
	if (!s->in_content || !s->want_chunk || s->job->chunk_pending)
		return;
	s->want_chunk = 0;
	smtpc_content_next(s);
}

/*
 * The signature is made: it goes out ahead of the message, and the
 * content is read again from its first piece. -1: signing failed, the
 * job is over (deferred).
 */
static int smtpc_sign_end(struct dlv_session *s)
{
	char err[128];

	buf_reset(&s->tmp);
	int rc = dlv_dkim_stream_finish(s->dk, ev_wallclock(), &s->tmp, err, sizeof(err));
	dlv_dkim_stream_free(s->dk);
	s->dk = NULL;
	if (rc < 0) {
		log_msg(LOG_WARNING, s->job->qid, "%s", err);
		dlv_job_content_failed(s->ctx, s->job, err);
		return -1;
	}
	/* Header lines, CRLF-terminated: nothing to stuff, and the stuffing
	 * state stays at the start of a line. */
	conn_write(s->c, buf_head(&s->tmp), buf_avail(&s->tmp));
	s->content_bytes += buf_avail(&s->tmp);
	s->job->chunk_seq = 0;
	dlv_lines_restart(&s->lines);
	return 0;
}

/*
 * The signing pass: the content is read once for the DKIM signature (the
 * pieces are not kept), the signature is written, and the content is read
 * again from its first piece to be sent. Signed here, at the last moment,
 * after long lines are broken, so the signature covers the bytes the next
 * hop receives.
 */
static void smtpc_sign_piece(struct dlv_session *s, const uint8_t *p, size_t n, int last)
{
	p = dlv_lines_break(&s->lines, p, n, last, &s->brk, &n);
	if (dlv_dkim_stream_update(s->dk, p, n) == 0 && !last) {
		ev_timer_start(s->ctx->loop, &s->timer, smtpc_timeout_ms(SMTPC_BLOCK_TIMEOUT));
		dlv_job_request_chunk(s->ctx, s->job);
		return;
	}
	if (smtpc_sign_end(s) == 0)
		smtpc_content_next(s);
}

void dlv_session_chunk(struct dlv_session *s, const uint8_t *p, size_t n, int last)
{
	if (s->loading && s->c != NULL) {
		smtpc_enter(s);
		buf_append(&s->conv, p, n);
		if (last)
			smtpc_load_done(s);
		else
			smtpc_content_next(s);
		smtpc_leave(s);
		return;
	}
	if (!s->in_content || s->c == NULL)
		return;
	if (s->dk != NULL) {
		smtpc_enter(s);
		smtpc_sign_piece(s, p, n, last);
		smtpc_leave(s);
		return;
	}
	smtpc_enter(s);
	p = dlv_lines_break(&s->lines, p, n, last, &s->brk, &n);
	buf_reset(&s->tmp);
	smtpc_stuff(&s->stuff, p, n, &s->tmp);
	if (last)
		smtpc_stuff_end(&s->stuff, &s->tmp);
	conn_write(s->c, buf_head(&s->tmp), buf_avail(&s->tmp));
	s->content_bytes += buf_avail(&s->tmp);
	/* Bounded memory: the next piece is asked for when this one has left. */
	if (last) {
		s->in_content = 0;
		smtpc_trace(s, '>', "(message content, %llu bytes as sent, ending with \".\")",
			    (unsigned long long)s->content_bytes);
		smtpc_push(s, SC_DOT, 0);
	} else if (buf_avail(&s->tmp) == 0) {
		/* All of it held back (a header line not yet whole): no drain will come. */
		smtpc_content_next(s);
	} else {
		s->want_chunk = 1;
		ev_timer_start(s->ctx->loop, &s->timer, smtpc_timeout_ms(SMTPC_BLOCK_TIMEOUT));
	}
	smtpc_leave(s);
}
