/*
 * smtp_handoff.c - a transaction's way to the queue worker: BEGIN with
 * the envelope, one RCPT per recipient, the content in pieces as it
 * arrives (trace headers first), then END; or ABORT. The header section
 * is held back (up to SMTP_HEADER_HOLD octets) until it is known whether
 * Message-ID: and Date: must be added, and so that rewrite-sender can
 * rewrite the addresses of From:, Sender: and Reply-To: in it.
 */
#include "smtp_log.h"
#include "smtp_session.h"
#include "common/ipc.h"
#include "common/ipc_msg.h"
#include "common/ipc_types.h"
#include "common/log.h"
#include "common/qid.h"
#include "common/worker.h"
#include "common/xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define SMTP_HEADER_HOLD (64 * 1024)

void smtp_tx_free(struct smtp_tx *tx)
{
	if (tx == NULL)
		return;
	if (tx->sess != NULL)
		idmap_del(&tx->sess->in->by_sid, tx->sid);
	for (size_t i = 0; i < tx->nrcpts; i++) {
		free(tx->rcpts[i].addr);
		free(tx->rcpts[i].orcpt);
	}
	free(tx->rcpts);
	buf_free(&tx->out);
	free(tx);
}

int smtp_handoff_begin(struct smtp_session *s)
{
	struct intake *in = s->in;
	struct smtp_tx *tx = s->tx;
	struct ipc_wr wr;

	if (!intake_queue_up(in))
		return -1;
	tx->sid = ++in->next_sid;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	tx->arrival = now.tv_sec;
	tx->arrival_usec = (uint32_t)(now.tv_nsec / 1000);
	qid_new(tx->qid);
	struct ipc_msg_q_begin m = {
		.sid = tx->sid, .qid = ipc_str(tx->qid), .sender = ipc_str(tx->sender),
		.client = ipc_str(s->ip), .helo = ipc_str(s->helo),
		.auth_user = ipc_str(s->auth_user), .body_flags = tx->body_flags,
		.arrival = tx->arrival, .arrival_usec = tx->arrival_usec, .dsn_ret = tx->dsn_ret,
		.envid = ipc_str(tx->envid),
	};
	ipc_wr_init(&wr);
	ipc_msg_q_begin_encode(&wr, &m);
	int rc = ipc_send_wr(in->queue.ch, MSG_Q_BEGIN, &wr);
	for (size_t i = 0; rc == 0 && i < tx->nrcpts; i++) {
		struct ipc_msg_q_rcpt r = {tx->sid, ipc_str(tx->rcpts[i].addr), tx->rcpts[i].notify,
					   ipc_str(tx->rcpts[i].orcpt ? tx->rcpts[i].orcpt : "")};
		buf_reset(&wr.b);
		ipc_msg_q_rcpt_encode(&wr, &r);
		rc = ipc_send_wr(in->queue.ch, MSG_Q_RCPT, &wr);
	}
	ipc_wr_free(&wr);
	if (rc < 0)
		return -1;
	tx->begun = 1;
	/* Postfix's smtpd line: who handed the message in, by verified name. */
	if (s->mode != LISTEN_LOCAL) {
		char client[SMTP_LOG_CLIENT_MAX];
		smtp_log_client(s, client, sizeof(client));
		log_msg(LOG_INFO, tx->qid, "client=%s", client);
	}
	/* The queue's verdict names the sid: it finds the session here. */
	tx->sess = s;
	if (idmap_put(&in->by_sid, tx->sid, s) < 0)
		fatal("intake: session id %llu used twice", (unsigned long long)tx->sid);
	return 0;
}

static void smtp_send_content(struct smtp_session *s, const uint8_t *p, size_t n)
{
	struct smtp_tx *tx = s->tx;
	struct ipc_msg_q_content m = {.sid = tx->sid};
	struct ipc_wr wr;

	ipc_wr_init(&wr);
	ipc_msg_q_content_head(&wr, &m);
	while (n > 0) {
		size_t piece = n < IPC_CHUNK_SIZE ? n : IPC_CHUNK_SIZE;
		/* The bytes go from the session's buffer, uncopied, after the head. */
		ipc_send_wr_bytes(s->in->queue.ch, MSG_Q_CONTENT, &wr, p, piece);
		tx->sent += piece;
		p += piece;
		n -= piece;
	}
	ipc_wr_free(&wr);
}

/* Received: always; Message-ID: and Date: for our own clients' mail. */
static void smtp_trace_headers(struct smtp_session *s, struct buf *b)
{
	const struct config *cfg = s->in->w->cfg;
	struct smtp_tx *tx = s->tx;
	char date[64];
	/* RFC 3848 protocol names, [SMTPUTF8][TLS][AUTH]; RFC 6531 4.3 for UTF8. */
	static const char *const with_names[2][2][2] = {
		{{"ESMTP", "ESMTPA"}, {"ESMTPS", "ESMTPSA"}},
		{{"UTF8SMTP", "UTF8SMTPA"}, {"UTF8SMTPS", "UTF8SMTPSA"}},
	};
	const char *with = !s->esmtp ? "SMTP"
			   : with_names[(tx->body_flags & BODY_SMTPUTF8) != 0][s->tls != 0]
				       [s->auth_user[0] != '\0'];

	qid_date(tx->arrival, date, sizeof(date));
	/* Local submission (Postfix's form): no client host, the user instead. */
	if (s->mode == LISTEN_LOCAL)
		buf_appendf(b, "Received: by %s (relayd, from userid %u) id %s", cfg->hostname,
			    (unsigned)s->uid, tx->qid);
	/*
	 * RFC 5321 4.4 TCP-info: the verified name, if any, then the address
	 * literal, tagged "IPv6:" for IPv6 (4.1.3).
	 */
	else
		buf_appendf(b, "Received: from %s (%s%s[%s%s]) by %s with %s id %s", s->helo,
			    s->client_name, s->client_name[0] ? " " : "",
			    s->peer.ss_family == AF_INET6 ? "IPv6:" : "", s->ip, cfg->hostname,
			    with, tx->qid);
	if (tx->nrcpts == 1)
		buf_appendf(b, " for <%s>", tx->rcpts[0].addr);
	buf_appendf(b, "; %s\r\n", date);

	/* Only when the whole header section was seen. */
	int own = s->auth_user[0] != '\0' || s->mode == LISTEN_LOCAL ||
		  config_cidr_match(cfg->mynetworks, cfg->nmynetworks,
				    (const struct sockaddr *)&s->peer);
	if (!own || tx->data.in_headers)
		return;
	if (!tx->data.has_msgid)
		buf_appendf(b, "Message-ID: <%lld.%s@%s>\r\n", (long long)tx->arrival, tx->qid,
			    cfg->hostname);
	if (!tx->data.has_date)
		buf_appendf(b, "Date: %s\r\n", date);
}

/*
 * rewrite-sender over the held header section, a field at a time; a
 * section longer than the hold has its fields past it sent unrewritten.
 */
static void smtp_rewrite_headers(struct smtp_session *s)
{
	const struct config *cfg = s->in->w->cfg;
	struct smtp_tx *tx = s->tx;
	struct buf b;

	if (cfg->rewrite_sender.n == 0 || buf_avail(&tx->out) == 0)
		return;
	buf_init(&b);
	unsigned n = addr_header_section_rewrite(&cfg->rewrite_sender,
						 (const char *)buf_head(&tx->out),
						 buf_avail(&tx->out), !tx->data.in_headers, &b);
	if ((n > 0 || tx->sender_rewritten) && log_verbose())
		log_msg(LOG_DEBUG, tx->qid, "rewrite-sender: from=<%s>%s, %u header address%s",
			tx->sender, tx->sender_rewritten ? " (rewritten)" : "", n,
			n == 1 ? "" : "es");
	if (n > 0) {
		buf_reset(&tx->out);
		buf_append(&tx->out, buf_head(&b), buf_avail(&b));
	}
	buf_free(&b);
}

void smtp_handoff_content(struct smtp_session *s, int at_end)
{
	struct smtp_tx *tx = s->tx;

	if (!tx->headers_sent) {
		if (tx->data.in_headers && !at_end && buf_avail(&tx->out) < SMTP_HEADER_HOLD)
			return;
		struct buf trace;
		buf_init(&trace);
		/* A message cut in the headers (at_end) has had them all. */
		if (at_end)
			tx->data.in_headers = 0;
		smtp_trace_headers(s, &trace);
		smtp_rewrite_headers(s);
		smtp_send_content(s, buf_head(&trace), buf_avail(&trace));
		buf_free(&trace);
		tx->headers_sent = 1;
	}
	if (buf_avail(&tx->out) > 0)
		smtp_send_content(s, buf_head(&tx->out), buf_avail(&tx->out));
	buf_reset(&tx->out);
}

void smtp_handoff_end(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	struct ipc_msg_q_end m = {tx->sid, tx->sent};
	struct ipc_wr wr;

	ipc_wr_init(&wr);
	ipc_msg_q_end_encode(&wr, &m);
	ipc_send_wr(s->in->queue.ch, MSG_Q_END, &wr);
	ipc_wr_free(&wr);
	tx->ended = 1;
}

void smtp_handoff_abort(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	struct ipc_msg_id m = {tx->sid};
	struct ipc_wr wr;

	ipc_wr_init(&wr);
	ipc_msg_id_encode(&wr, &m);
	ipc_send_wr(s->in->queue.ch, MSG_Q_ABORT, &wr);
	ipc_wr_free(&wr);
	tx->ended = 1;
}
