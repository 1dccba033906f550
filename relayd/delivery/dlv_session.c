/*
 * dlv_session.c - the SMTP client's walk to a server that talks (RFC 5321,
 * STARTTLS RFC 3207, AUTH RFC 4954): resolve the next hop, connect to its
 * ranked hosts and their addresses, read the greeting, EHLO (or HELO), take
 * TLS and AUTH as the hop's policy says; on failure the next address, the
 * next host, the next smarthost. Once a connection is ready, the
 * transaction (dlv_txn.c) carries the destination's jobs over it.
 *
 * Every command sent is remembered in a FIFO of expected replies, so
 * pipelined and one-by-one conversations are handled by the same reply
 * handlers: the command table below names each one's handler, here or in
 * dlv_txn.c.
 *
 * Failures before MAIL belong to the host: the session tries the next
 * address, the next host, the next smarthost; when all are used up the
 * job is deferred with the last error. Failures from MAIL on belong to the
 * transaction: the recipients not yet decided are deferred or bounced.
 */
#include "relayd/delivery/dlv_session.h"
#include "common/base64.h"
#include "common/conn.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "resolver/resolver.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Divides the timeouts of dlv_session.h and of the table below. */
#ifndef SMTPC_TIMEOUT_DIV
#define SMTPC_TIMEOUT_DIV 1
#endif
static unsigned smtpc_timeout_div = SMTPC_TIMEOUT_DIV;

typedef void (*smtpc_handler)(struct dlv_session *s, enum smtpc_cmd cmd, uint32_t arg);

static void smtpc_h_greeting(struct dlv_session *s, enum smtpc_cmd cmd, uint32_t arg);
static void smtpc_h_ehlo(struct dlv_session *s, enum smtpc_cmd cmd, uint32_t arg);
static void smtpc_h_helo(struct dlv_session *s, enum smtpc_cmd cmd, uint32_t arg);
static void smtpc_h_starttls(struct dlv_session *s, enum smtpc_cmd cmd, uint32_t arg);
static void smtpc_h_auth(struct dlv_session *s, enum smtpc_cmd cmd, uint32_t arg);

struct smtpc_cmd_row {
	const char *name;     /* "(in reply to NAME)" */
	const char *doing;    /* "lost connection with H while DOING" */
	unsigned timeout;     /* seconds to wait for the reply */
	int txn;              /* part of a mail transaction */
	smtpc_handler handler;
};

static const struct smtpc_cmd_row smtpc_cmds[] = {
	[SC_GREETING] = {"initial greeting", "receiving the initial server greeting", 300, 0,
			 smtpc_h_greeting},
	[SC_EHLO] = {"EHLO", "receiving the EHLO reply", 300, 0, smtpc_h_ehlo},
	[SC_HELO] = {"HELO", "receiving the HELO reply", 300, 0, smtpc_h_helo},
	[SC_STARTTLS] = {"STARTTLS", "receiving the STARTTLS reply", 300, 0, smtpc_h_starttls},
	[SC_AUTH] = {"AUTH", "authenticating", 300, 0, smtpc_h_auth},
	[SC_AUTH_USER] = {"AUTH", "authenticating", 300, 0, smtpc_h_auth},
	[SC_AUTH_PASS] = {"AUTH", "authenticating", 300, 0, smtpc_h_auth},
	[SC_MAIL] = {"MAIL FROM", "sending MAIL FROM", 300, 1, smtpc_h_mail},
	[SC_RCPT] = {"RCPT TO", "sending RCPT TO", 300, 1, smtpc_h_rcpt},
	[SC_DATA] = {"DATA", "sending DATA", 120, 1, smtpc_h_data},
	[SC_DOT] = {"end of DATA", "sending end of data -- message may be sent more than once",
		    600, 1, smtpc_h_dot},
	[SC_RSET] = {"RSET", "sending RSET", 300, 0, smtpc_h_rset},
};

/* SC_AUTH's argument: which mechanism. */
enum { SMTPC_MECH_PLAIN, SMTPC_MECH_LOGIN };

/* What ended an attempt on one address; decides where to go next. */
enum smtpc_fail { SF_CONNECT, SF_TLS, SF_OTHER };

static void smtpc_resolve(struct dlv_session *s);
static void smtpc_try_connect(struct dlv_session *s);

/* ---- lifetime ---- */

void smtpc_enter(struct dlv_session *s)
{
	s->busy++;
}

static void smtpc_free(struct dlv_session *s)
{
	ev_timer_stop(s->ctx->loop, &s->timer);
	mx_plan_free(s->plan);
	dlv_dkim_stream_free(s->dk);
	buf_free(&s->tmp);
	buf_free(&s->brk);
	buf_free(&s->conv);
	dlv_lines_free(&s->lines);
	free(s->pend);
	free(s);
}

void smtpc_leave(struct dlv_session *s)
{
	if (--s->busy == 0 && s->closed && !s->resolving)
		smtpc_free(s);
}

unsigned smtpc_timeout_ms(unsigned secs)
{
	unsigned ms = secs * 1000 / smtpc_timeout_div;
	return ms ? ms : 1;
}

void dlv_session_timeout_div(unsigned div)
{
	smtpc_timeout_div = div ? div : 1;
}

/* ---- the connection ---- */

static void smtpc_orphan_read(struct conn *c, void *arg)
{
	(void)arg;
	buf_reset(&c->in);
}

static void smtpc_orphan_close(struct conn *c, void *arg, const char *why)
{
	(void)arg;
	(void)why;
	conn_free(c);
}

/* Lets go of the connection: a polite QUIT when it still works. */
static void smtpc_drop_conn(struct dlv_session *s)
{
	struct conn *c = s->c;

	if (c == NULL)
		return;
	s->c = NULL;
	ev_timer_stop(s->ctx->loop, &s->timer);
	if (c->closed || c->connecting || s->handshake || s->broken || s->in_content) {
		/* Closing in the middle of DATA makes the server drop the message. */
		conn_free(c);
	} else {
		c->on_read = smtpc_orphan_read;
		c->on_close = smtpc_orphan_close;
		c->on_drain = NULL;
		c->arg = NULL;
		conn_write(c, "QUIT\r\n", 6);
		conn_close_after_flush(c);
	}
	smtpc_conv_reset(s);
	s->handshake = 0;
	s->tls_active = 0;
	s->in_content = 0;
	s->want_chunk = 0;
	s->broken = 0;
	s->starttls_refused = 0;
	s->pend_head = s->pend_tail = 0;
	smtpc_reply_init(&s->reply);
}

void smtpc_push(struct dlv_session *s, enum smtpc_cmd cmd, uint32_t arg)
{
	if (s->pend_head == s->pend_tail) {
		s->pend_head = s->pend_tail = 0;
		ev_timer_start(s->ctx->loop, &s->timer, smtpc_timeout_ms(smtpc_cmds[cmd].timeout));
	}
	if (s->pend_tail == s->pend_cap) {
		s->pend_cap = s->pend_cap ? 2 * s->pend_cap : 16;
		s->pend = xreallocarray(s->pend, s->pend_cap, sizeof(*s->pend));
	}
	s->pend[s->pend_tail].cmd = (uint8_t)cmd;
	s->pend[s->pend_tail].arg = arg;
	s->pend_tail++;
}

void smtpc_send(struct dlv_session *s, enum smtpc_cmd cmd, uint32_t arg, const char *fmt, ...)
{
	va_list ap;
	char *line = NULL;

	va_start(ap, fmt);
	int n = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (n < 0)
		fatal("vasprintf: out of memory");
	if (log_verbose() && cmd != SC_AUTH_USER && cmd != SC_AUTH_PASS &&
	    !(cmd == SC_AUTH && arg == SMTPC_MECH_PLAIN))
		log_debug("%s: > %s: %s", s->job ? s->job->qid : "-", s->peer, line);
	if (cmd == SC_AUTH && arg == SMTPC_MECH_PLAIN)
		smtpc_trace(s, '>', "AUTH PLAIN ******** (user name and password, masked)");
	else if (cmd == SC_AUTH_USER)
		smtpc_trace(s, '>', "******** (user name, base64, masked)");
	else if (cmd == SC_AUTH_PASS)
		smtpc_trace(s, '>', "******** (password, base64, masked)");
	else
		smtpc_trace(s, '>', "%s", line);
	conn_write(s->c, line, (size_t)n);
	conn_write(s->c, "\r\n", 2);
	free(line);
	smtpc_push(s, cmd, arg);
}

void smtpc_trace(struct dlv_session *s, char mark, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (s->job == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	dlv_trace_add(&s->job->trace, mark, "%s", line);
}

/* Every line of the reply just read, as the server wrote it (code and all). */
static void smtpc_trace_reply(struct dlv_session *s)
{
	const char *p = s->reply.text, *end = p + s->reply.textlen;

	for (unsigned i = 0; i < s->reply.nlines; i++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		smtpc_trace(s, '<', "%d%s%.*s", s->reply.code, i + 1 < s->reply.nlines ? "-" :
			    len ? " " : "", (int)len, p);
		p = nl ? nl + 1 : end;
	}
}

const char *smtpc_cmd_name(enum smtpc_cmd cmd)
{
	return smtpc_cmds[cmd].name;
}

/* ---- ending the session ---- */

void smtpc_close(struct dlv_session *s)
{
	if (s->closed)
		return;
	if (s->job)
		fatal("delivery session closed with job %s still on it", s->job->qid);
	smtpc_drop_conn(s);
	s->closed = 1;
	s->dest->nsessions--;
	s->ctx->nsessions--;
	dlv_session_ended(s->ctx, s->dest);
	if (s->busy == 0 && !s->resolving)
		smtpc_free(s);
}

/* ---- an attempt that failed ---- */

/*
 * Nothing is left to try for this job: defer it with the last error, and
 * make the destination's other jobs wait instead of trying the same.
 */
static void smtpc_exhausted(struct dlv_session *s)
{
	struct dlv_outcome o = s->last;

	if (o.text[0] == '\0')
		smtpc_outcome_local(s, &o, DLV_DEFERRED, "4.4.1", "no host of %s could be reached",
				    s->hop.name);
	o.cls = DLV_DEFERRED;
	o.enh[0] = '4';
	o.relay = NULL;
	smtpc_trace(s, '*', "nothing left to try: deferred (%s)", o.text);
	dlv_dest_failed(s->ctx, s->dest, &o);
	dlv_job_outcome_all(s->ctx, s->job, &o);
	smtpc_job_end(s, 0);
}

/* Moves to the next smarthost of the chain; 0, or -1 when there is none. */
static int smtpc_next_hop(struct dlv_session *s)
{
	struct dlv_hop hop;

	if (dlv_hop_select(s->ctx->w->cfg, s->job->domain, s->job->sender, s->hop_idx + 1,
			   &hop) < 0)
		return -1;
	s->hop_idx++;
	s->hop = hop;
	log_msg(LOG_INFO, s->job->qid, "trying the next hop: %s", hop.desc);
	smtpc_trace(s, '*', "trying the next hop: %s", hop.desc);
	smtpc_resolve(s);
	return 0;
}

/*
 * This address failed before a transaction started: remember why, let go
 * of the connection and try what comes next.
 */
static void smtpc_host_fail(struct dlv_session *s, enum smtpc_fail kind, const char *enh,
			    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void smtpc_host_fail(struct dlv_session *s, enum smtpc_fail kind, const char *enh,
			    const char *fmt, ...)
{
	va_list ap;

	memset(&s->last, 0, sizeof(s->last));
	s->last.cls = DLV_DEFERRED;
	snprintf(s->last.enh, sizeof(s->last.enh), "%s", enh);
	s->last.enh[0] = '4';
	va_start(ap, fmt);
	vsnprintf(s->last.text, sizeof(s->last.text), fmt, ap);
	va_end(ap);
	if (s->reply.code)
		s->last.code = s->reply.code;
	log_msg(LOG_INFO, s->job->qid, "%s", s->last.text);
	smtpc_trace(s, '*', "%s", s->last.text);
	if (kind == SF_CONNECT)
		s->ctx->stats.connect_failures++;
	smtpc_drop_conn(s);
	if (kind == SF_TLS && s->hop.tls == TLS_POLICY_MAY && !s->plain_retry) {
		/* outbound-tls may: the same host again, in plaintext. */
		s->plain_retry = 1;
		log_msg(LOG_INFO, s->job->qid, "retrying %s without STARTTLS", s->peer);
	} else {
		s->plain_retry = 0;
		s->addr_idx++;
	}
	smtpc_try_connect(s);
}

/* A reply that ends the attempt on this host. */
static void smtpc_host_fail_reply(struct dlv_session *s, enum smtpc_cmd cmd, const char *what)
{
	char line[1024];

	smtpc_reply_oneline(&s->reply, line, sizeof(line));
	smtpc_host_fail(s, SF_OTHER, s->reply.enh[0] ? s->reply.enh : "4.0.0",
			"host %s %s: %s (in reply to %s)", s->peer, what, line,
			smtpc_cmds[cmd].name);
}

/* ---- TLS ---- */

/* What a student wants to see of a handshake: protocol, cipher, who the
 * certificate names and whether its chain checked out. */
static void smtpc_trace_tls(struct dlv_session *s, const char *desc)
{
	char subject[256] = "(none)", issuer[256] = "(none)";
	X509 *cert = SSL_get1_peer_certificate(s->c->ssl);
	long vr = SSL_get_verify_result(s->c->ssl);

	if (cert != NULL) {
		X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
		X509_NAME_oneline(X509_get_issuer_name(cert), issuer, sizeof(issuer));
		X509_free(cert);
	}
	smtpc_trace(s, '*', "TLS established: %s; certificate subject %s, issuer %s; %s%s%s", desc,
		    subject, issuer, vr == X509_V_OK ? "chain verified" : "chain not verified: ",
		    vr == X509_V_OK ? "" : X509_verify_cert_error_string(vr),
		    s->hop.tls == TLS_POLICY_VERIFY ? " (tls=verify: required)" :
		    " (not required by the policy)");
}

static void smtpc_on_tls(struct conn *c, void *arg)
{
	struct dlv_session *s = arg;
	char desc[128];

	(void)c;
	smtpc_enter(s);
	s->handshake = 0;
	ev_timer_stop(s->ctx->loop, &s->timer);
	if (s->hop.tls == TLS_POLICY_VERIFY && SSL_get_verify_result(s->c->ssl) != X509_V_OK) {
		smtpc_host_fail(s, SF_TLS, "4.7.5", "TLS with %s: certificate verification failed",
				s->peer);
		goto out;
	}
	s->tls_active = 1;
	s->ctx->stats.tls_out++;
	conn_tls_desc(s->c, desc, sizeof(desc));
	smtpc_trace_tls(s, desc);
	log_msg(LOG_INFO, s->job->qid, "TLS with %s: %s%s", s->peer, desc,
		s->hop.tls == TLS_POLICY_VERIFY ? ", verified" : "");
	if (s->hop.tls == TLS_POLICY_SMTPS)
		smtpc_push(s, SC_GREETING, 0);
	else
		smtpc_send(s, SC_EHLO, 0, "EHLO %s", s->ctx->w->cfg->hostname);
out:
	smtpc_leave(s);
}

static void smtpc_start_tls(struct dlv_session *s)
{
	char err[256];
	/* SNI and verify use the name that was looked up: the MX host, or the [host]
	 * (an address literal is checked against the certificate's IP entries). */
	const char *sni = s->plan->hosts[s->host_idx].name;
	SSL_CTX *ctx = dlv_tls_ctx(s->ctx, s->hop.tls, err, sizeof(err));

	if (ctx == NULL) {
		smtpc_host_fail(s, SF_OTHER, "4.7.5", "cannot start TLS with %s: %s", s->peer, err);
		return;
	}
	s->handshake = 1;
	smtpc_trace(s, '*', "TLS handshake (SNI %s)", sni);
	ev_timer_start(s->ctx->loop, &s->timer, smtpc_timeout_ms(SMTPC_TLS_TIMEOUT));
	struct conn *c = s->c;
	conn_hold(c);
	int r = conn_starttls(c, ctx, 0, sni, smtpc_on_tls);
	int freed = conn_release(c);
	if (r < 0 && !freed && s->c == c)
		smtpc_host_fail(s, SF_TLS, "4.7.5", "cannot start TLS with %s", s->peer);
}

/* ---- greeting, EHLO, STARTTLS, AUTH ---- */

/* After EHLO/HELO (again after STARTTLS): TLS, then AUTH, then the mail. */
static void smtpc_after_hello(struct dlv_session *s)
{
	enum tls_policy pol = s->hop.tls;
	int offered = (s->caps.ext & SMTPC_EXT_STARTTLS) != 0;

	if (!s->tls_active && pol != TLS_POLICY_NONE && pol != TLS_POLICY_SMTPS) {
		int required = pol != TLS_POLICY_MAY;
		if (required && !offered) {
			smtpc_host_fail(s, SF_OTHER, "4.7.4",
					"TLS is required, but was not offered by host %s", s->peer);
			return;
		}
		if (offered && !s->plain_retry && !s->starttls_refused) {
			smtpc_send(s, SC_STARTTLS, 0, "STARTTLS");
			return;
		}
	}
	if (s->hop.auth_user[0]) {
		if (!s->tls_active) {
			log_warnx("%s: not sending AUTH credentials for %s to %s over a connection "
				  "without TLS", s->job->qid, s->hop.auth_user, s->peer);
			smtpc_host_fail(s, SF_OTHER, "4.7.0",
					"TLS is needed to send credentials to %s, but the "
					"connection is not encrypted", s->peer);
			return;
		}
		if (s->caps.auth & SMTPC_AUTH_PLAIN) {
			char sasl[520], b64[BASE64_ENCODED_LEN(sizeof(sasl)) + 1];
			size_t ul = strlen(s->hop.auth_user), pl = strlen(s->hop.auth_pass);
			sasl[0] = '\0';
			memcpy(sasl + 1, s->hop.auth_user, ul);
			sasl[1 + ul] = '\0';
			memcpy(sasl + 2 + ul, s->hop.auth_pass, pl);
			if (base64_encode(sasl, 2 + ul + pl, b64, sizeof(b64)) < 0)
				fatal("base64_encode: buffer too small");
			smtpc_send(s, SC_AUTH, SMTPC_MECH_PLAIN, "AUTH PLAIN %s", b64);
			return;
		}
		if (s->caps.auth & SMTPC_AUTH_LOGIN) {
			smtpc_send(s, SC_AUTH, SMTPC_MECH_LOGIN, "AUTH LOGIN");
			return;
		}
		log_warnx("%s: %s offers neither AUTH PLAIN nor LOGIN; sending without "
			  "authentication", s->job->qid, s->peer);
	}
	smtpc_start_txn(s);
}

static void smtpc_h_greeting(struct dlv_session *s, enum smtpc_cmd cmd, uint32_t arg)
{
	(void)cmd;
	(void)arg;
	if (s->reply.code / 100 != 2) {
		smtpc_host_fail_reply(s, SC_GREETING, "refused to talk to me");
		return;
	}
	smtpc_send(s, SC_EHLO, 0, "EHLO %s", s->ctx->w->cfg->hostname);
}

static void smtpc_h_ehlo(struct dlv_session *s, enum smtpc_cmd cmd, uint32_t arg)
{
	(void)cmd;
	(void)arg;
	if (s->reply.code / 100 == 2) {
		smtpc_caps_parse(&s->reply, &s->caps);
		smtpc_after_hello(s);
	} else if (s->reply.code / 100 == 5) {
		memset(&s->caps, 0, sizeof(s->caps));
		smtpc_send(s, SC_HELO, 0, "HELO %s", s->ctx->w->cfg->hostname);
	} else {
		smtpc_host_fail_reply(s, SC_EHLO, "refused to talk to me");
	}
}

static void smtpc_h_helo(struct dlv_session *s, enum smtpc_cmd cmd, uint32_t arg)
{
	(void)cmd;
	(void)arg;
	if (s->reply.code / 100 != 2) {
		smtpc_host_fail_reply(s, SC_HELO, "refused to talk to me");
		return;
	}
	memset(&s->caps, 0, sizeof(s->caps));
	smtpc_after_hello(s);
}

static void smtpc_h_starttls(struct dlv_session *s, enum smtpc_cmd cmd, uint32_t arg)
{
	(void)cmd;
	(void)arg;
	if (s->reply.code == 220) {
		smtpc_start_tls(s);
	} else if (s->hop.tls == TLS_POLICY_MAY) {
		s->starttls_refused = 1;
		smtpc_after_hello(s);
	} else {
		smtpc_host_fail_reply(s, SC_STARTTLS, "refused STARTTLS");
	}
}

static void smtpc_h_auth(struct dlv_session *s, enum smtpc_cmd cmd, uint32_t arg)
{
	char b64[BASE64_ENCODED_LEN(256) + 1];

	(void)arg;
	if (s->reply.code == 235) {
		log_msg(LOG_INFO, s->job->qid, "authenticated to %s as %s", s->peer,
			s->hop.auth_user);
		smtpc_start_txn(s);
		return;
	}
	if (s->reply.code == 334 && cmd != SC_AUTH_PASS && arg == SMTPC_MECH_LOGIN) {
		const char *v = cmd == SC_AUTH ? s->hop.auth_user : s->hop.auth_pass;
		if (base64_encode(v, strlen(v), b64, sizeof(b64)) < 0)
			fatal("base64_encode: buffer too small");
		smtpc_send(s, cmd == SC_AUTH ? SC_AUTH_USER : SC_AUTH_PASS, arg, "%s", b64);
		return;
	}
	smtpc_host_fail_reply(s, cmd, "rejected the credentials (SASL authentication failed)");
}

/* ---- replies and the connection's events ---- */

/* One complete reply: the generic rules, then the command's handler. */
static void smtpc_on_reply(struct dlv_session *s)
{
	struct smtpc_pend p = s->pend[s->pend_head++];
	const struct smtpc_cmd_row *row = &smtpc_cmds[p.cmd];
	struct dlv_outcome o;

	if (s->pend_head < s->pend_tail)
		ev_timer_start(s->ctx->loop, &s->timer,
			       smtpc_timeout_ms(smtpc_cmds[s->pend[s->pend_head].cmd].timeout));
	else if (!s->in_content)
		ev_timer_stop(s->ctx->loop, &s->timer);
	if (log_verbose()) {
		char line[1024];
		smtpc_reply_oneline(&s->reply, line, sizeof(line));
		log_debug("%s: < %s: %s", s->job ? s->job->qid : "-", s->peer, line);
	}
	smtpc_trace_reply(s);
	if (s->reply.code == 421) {
		/* The server is closing the connection: nothing more goes on it. */
		if (!row->txn && p.cmd != SC_RSET) {
			smtpc_host_fail_reply(s, p.cmd, "refused to talk to me");
			return;
		}
		s->broken = 1;
		smtpc_outcome_reply(s, &o, p.cmd);
		smtpc_txn_fail(s, &o);
		return;
	}
	row->handler(s, (enum smtpc_cmd)p.cmd, p.arg);
}

/* The connection ended or stalled: what it means depends on where we were. */
static void smtpc_conn_lost(struct dlv_session *s, const char *why, int timeout)
{
	struct dlv_outcome o;
	const char *doing = s->in_content ? "sending message body" : "waiting";

	if (s->pend_head < s->pend_tail)
		doing = smtpc_cmds[s->pend[s->pend_head].cmd].doing;
	if (s->c->connecting) {
		const char *reason = timeout ? "Connection timed out" : why;
		if (strncmp(reason, "connect: ", 9) == 0)
			reason += 9;
		smtpc_host_fail(s, SF_CONNECT, "4.4.1", "connect to %s: %s", s->relay, reason);
		return;
	}
	if (s->handshake) {
		smtpc_host_fail(s, SF_TLS, "4.7.5", "TLS handshake with %s failed: %s", s->peer,
				timeout ? "timed out" : why);
		return;
	}
	s->broken = 1;
	if (!s->in_txn) {
		if (s->conn_use > 1) {
			/* A reused connection died between jobs: the job waits for another. */
			dlv_dest_requeue(s->ctx, s->job);
			s->job = NULL;
			smtpc_close(s);
			return;
		}
		smtpc_host_fail(s, SF_OTHER, "4.4.2", "%s with %s while %s",
				timeout ? "conversation timed out" : "lost connection", s->peer,
				doing);
		return;
	}
	smtpc_outcome_local(s, &o, DLV_DEFERRED, "4.4.2", "%s with %s while %s",
			    timeout ? "conversation timed out" : "lost connection", s->peer, doing);
	smtpc_trace(s, '*', "%s", o.text);
	smtpc_txn_fail(s, &o);
}

static void smtpc_on_read(struct conn *c, void *arg)
{
	struct dlv_session *s = arg;

	smtpc_enter(s);
	while (!s->closed && s->c == c && !c->closed && !s->handshake) {
		if (s->pend_head == s->pend_tail) {
			/* Nothing asked: whatever the server says is not an answer. */
			buf_reset(&c->in);
			break;
		}
		enum smtpc_parse res = smtpc_reply_read(&s->reply, &c->in);
		if (res == SMTPC_MORE)
			break;
		if (res == SMTPC_BAD) {
			smtpc_conn_lost(s, "bad reply", 0);
			break;
		}
		smtpc_on_reply(s);
		smtpc_reply_init(&s->reply);
	}
	smtpc_leave(s);
}

static void smtpc_on_close(struct conn *c, void *arg, const char *why)
{
	struct dlv_session *s = arg;

	smtpc_enter(s);
	if (s->c == c)
		smtpc_conn_lost(s, why, 0);
	smtpc_leave(s);
}

static void smtpc_on_timer(void *arg)
{
	struct dlv_session *s = arg;

	smtpc_enter(s);
	if (s->c)
		smtpc_conn_lost(s, "timeout", 1);
	smtpc_leave(s);
}

static void smtpc_on_connected(struct conn *c, void *arg)
{
	struct dlv_session *s = arg;

	(void)c;
	smtpc_enter(s);
	s->ctx->stats.connections_out++;
	s->conn_use = 1;
	log_debug("%s: connected to %s", s->job->qid, s->relay);
	smtpc_trace(s, '*', "connected to %s", s->relay);
	if (s->hop.tls == TLS_POLICY_SMTPS)
		smtpc_start_tls(s);
	else
		smtpc_push(s, SC_GREETING, 0);
	smtpc_leave(s);
}

/* ---- finding a host ---- */

static void smtpc_addr_text(const struct mx_addr *a, char *dst, size_t dstsz, uint16_t *port)
{
	if (a->ss.ss_family == AF_INET6)
		*port = ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
	else
		*port = ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
	snprintf(dst, dstsz, "%s", a->text);
}

/* Connects to the current address, or the next one that can be tried. */
static void smtpc_try_connect(struct dlv_session *s)
{
	while (s->host_idx < s->plan->nhosts) {
		struct mx_host *h = &s->plan->hosts[s->host_idx];
		if (s->addr_idx >= h->naddrs) {
			if (h->naddrs == 0 && h->addr_tempfail) {
				memset(&s->last, 0, sizeof(s->last));
				s->last.cls = DLV_DEFERRED;
				snprintf(s->last.enh, sizeof(s->last.enh), "4.4.3");
				snprintf(s->last.text, sizeof(s->last.text),
					 "address lookup of %s failed temporarily", h->name);
			}
			s->host_idx++;
			s->addr_idx = 0;
			s->plain_retry = 0;
			continue;
		}
		struct mx_addr *a = &h->addrs[s->addr_idx];
		char ip[64];
		uint16_t port;
		smtpc_addr_text(a, ip, sizeof(ip), &port);
		snprintf(s->peer, sizeof(s->peer), "%s[%s]", h->name, ip);
		snprintf(s->relay, sizeof(s->relay), "%s[%s]:%u", h->name, ip, port);
		s->c = conn_connect(s->ctx->loop, (const struct sockaddr *)&a->ss, a->len,
				    smtpc_on_connected, smtpc_on_read, smtpc_on_close, s);
		if (s->c == NULL) {
			char err[128];
			snprintf(err, sizeof(err), "%m");
			smtpc_host_fail(s, SF_CONNECT, "4.4.1", "connect to %s: %s", s->relay, err);
			return;
		}
		s->c->on_drain = smtpc_on_drain;
		smtpc_trace(s, '*', "connecting to %s", s->relay);
		memset(&s->caps, 0, sizeof(s->caps));
		ev_timer_start(s->ctx->loop, &s->timer, smtpc_timeout_ms(SMTPC_CONNECT_TIMEOUT));
		return;
	}
	if (smtpc_next_hop(s) == 0)
		return;
	smtpc_exhausted(s);
}

/* The DNS answers the plan was made of, one line each. */
static void smtpc_trace_plan(struct dlv_session *s, const struct mx_plan *plan)
{
	const char *p = plan->trace;

	while (*p) {
		size_t len = strcspn(p, "\n");
		if (len > 0)
			smtpc_trace(s, '*', "DNS: %.*s", (int)len, p);
		p += len + (p[len] == '\n');
	}
	if (plan->status != MX_OK)
		smtpc_trace(s, '*', "%s: %s", s->hop.name, plan->error);
	else if (plan->implicit)
		smtpc_trace(s, '*', "no MX records: the domain's own address is its mail server "
			    "(implicit MX)");
}

static void smtpc_on_plan(struct mx_plan *plan, void *arg)
{
	struct dlv_session *s = arg;
	struct dlv_outcome o;

	smtpc_enter(s);
	s->resolving = 0;
	if (s->closed) {
		mx_plan_free(plan);
		goto out;
	}
	mx_plan_free(s->plan);
	s->plan = plan;
	s->host_idx = s->addr_idx = 0;
	s->plain_retry = 0;
	smtpc_trace_plan(s, plan);
	if (plan->status == MX_OK) {
		smtpc_try_connect(s);
		goto out;
	}
	log_msg(LOG_INFO, s->job->qid, "%s: %s", s->hop.name, plan->error);
	smtpc_outcome_local(s, &o, plan->status == MX_PERMFAIL ? DLV_BOUNCED : DLV_DEFERRED,
			    plan->enh[0] ? plan->enh : plan->status == MX_PERMFAIL ? "5.1.2" : "4.4.3",
			    "%s", plan->error);
	s->last = o;
	s->last.cls = DLV_DEFERRED;
	s->last.enh[0] = '4';
	/* A smarthost that cannot be found leaves the mail to the next one. */
	if (smtpc_next_hop(s) == 0)
		goto out;
	dlv_job_outcome_all(s->ctx, s->job, &o);
	smtpc_job_end(s, 0);
out:
	smtpc_leave(s);
}

static void smtpc_resolve(struct dlv_session *s)
{
	s->resolving = 1;
	/* The callback may run before mx_resolve returns. */
	mx_resolve(s->ctx->res, s->hop.name, s->hop.no_mx, s->hop.port, smtpc_on_plan, s);
}

void dlv_session_start(struct dlv_ctx *ctx, struct dlv_dest *dest, struct dlv_job *job)
{
	struct dlv_session *s = xcalloc(1, sizeof(*s));

	s->ctx = ctx;
	s->dest = dest;
	s->job = job;
	job->sess = s;
	ev_timer_init(&s->timer, smtpc_on_timer, s);
	buf_init(&s->tmp);
	buf_init(&s->brk);
	buf_init(&s->conv);
	dlv_lines_init(&s->lines);
	smtpc_reply_init(&s->reply);
	dest->nsessions++;
	ctx->nsessions++;
	if (dlv_hop_select(ctx->w->cfg, job->domain, job->sender, 0, &s->hop) < 0)
		fatal("no next hop for %s", job->domain);
	dlv_trace_begin(&job->trace, "attempt for %zu recipient(s) at %s, next hop: %s",
			job->nrcpts, job->domain, s->hop.desc);
	smtpc_enter(s);
	smtpc_resolve(s);
	smtpc_leave(s);
}

void dlv_session_abort(struct dlv_session *s)
{
	if (s->job)
		s->job->sess = NULL;
	s->job = NULL;
	s->broken = 1;
	smtpc_close(s);
}
