/*
 * smtp_session.c - the SMTP server dialogue of intake (RFC 5321, 2920,
 * 3207, 4954): reading command lines, the verb table, STARTTLS, AUTH,
 * relay control and limits. The content of a message goes to the queue
 * through smtp_handoff.c; every reply comes from smtp_reply.c.
 */
#include "smtp_session.h"
#include "smtp_log.h"
#include "intake_anvil.h"
#include "intake_hasher.h"
#include "common/conn.h"
#include "common/ipc_types.h"
#include "common/log.h"
#include "common/worker.h"
#include "common/xmalloc.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Postfix's smtpd_hard_error_limit. */
#define SMTP_MAX_ERRORS 20
#define SMTP_MAX_AUTH_FAILURES 3
/* Postfix's smtpd_min_data_rate: content earns time at this rate. */
#define SMTP_MIN_DATA_RATE 500

static void smtp_process(struct smtp_session *s);

static const struct config *smtp_cfg(const struct smtp_session *s)
{
	return s->in->w->cfg;
}

/*
 * smtp-timeout (shorter under stress): the time allowed to wait for a
 * command, and to send it from its first octet on. Octets that neither
 * start nor end a line leave the deadline alone, so a client trickling a
 * byte now and then cannot keep a session forever.
 */
static void smtp_arm_timeout(struct smtp_session *s)
{
	ev_timer_start(s->in->loop, &s->timer, intake_timeout_ms(s->in));
}

/*
 * Content earns time (Postfix's deadline with smtpd_min_data_rate): n
 * octets add n / SMTP_MIN_DATA_RATE seconds to what is left, up to the
 * full timeout, so a trickle runs out while a slow real upload does not.
 */
static void smtp_extend_timeout(struct smtp_session *s, size_t n)
{
	struct ev_loop *loop = s->in->loop;
	uint64_t now = ev_now(loop), full = intake_timeout_ms(s->in);
	uint64_t left = s->timer.due_ms > now ? s->timer.due_ms - now : 0;

	if (!ev_timer_pending(&s->timer))
		return;
	left += (uint64_t)n * 1000 / SMTP_MIN_DATA_RATE;
	ev_timer_start(loop, &s->timer, left < full ? left : full);
}

void smtp_session_stress(struct smtp_session *s)
{
	uint64_t now = ev_now(s->in->loop), full = intake_timeout_ms(s->in);

	if (s->input != SI_WAIT && ev_timer_pending(&s->timer) && s->timer.due_ms > now + full)
		ev_timer_start(s->in->loop, &s->timer, full);
}

/* Frees everything; the session must not be used afterwards. */
static void smtp_destroy(struct smtp_session *s)
{
	struct intake *in = s->in;

	if (s->tx != NULL && s->tx->begun && !s->tx->ended)
		smtp_handoff_abort(s);
	smtp_tx_free(s->tx);
	if (s->auth_job != NULL)
		intake_hash_cancel(in->hasher, s->auth_job);
	ev_timer_stop(in->loop, &s->timer);
	if (s->prev)
		s->prev->next = s->next;
	else
		in->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	in->nsessions--;
	smtp_log_session_end(s);
	conn_free(s->c);
	free(s);
	intake_sessions_changed(in);
}

void smtp_session_free(struct smtp_session *s)
{
	if (s->busy)
		s->dead = 1;
	else
		smtp_destroy(s);
}

/* Sends a reply from the table, counting permanent failures. */
static void smtp_reply(struct smtp_session *s, enum smtp_reply_id id, const char *arg)
{
	smtp_reply_write(s->c, id, arg);
	smtp_log_reject(s, id, arg);
	if (smtp_reply_is_error(id) && ++s->errors >= SMTP_MAX_ERRORS &&
	    s->input != SI_CLOSING) {
		log_info("too many errors from [%s]", s->ip);
		smtp_reply_write(s->c, SR_TOO_MANY_ERRORS, NULL);
		s->input = SI_CLOSING;
		conn_close_after_flush(s->c);
	}
}

/* A refusal by policy, counted in `relayctl stats`. */
static void smtp_reject(struct smtp_session *s, enum smtp_reply_id id)
{
	s->in->stats.rejected++;
	smtp_reply(s, id, NULL);
}

/* The last reply, then the connection goes. */
static void smtp_close(struct smtp_session *s, enum smtp_reply_id id)
{
	if (s->input == SI_CLOSING)
		return;
	if (id != SR_NONE)
		smtp_reply(s, id, NULL);
	if (s->input == SI_CLOSING)
		return;
	s->input = SI_CLOSING;
	conn_close_after_flush(s->c);
	/* A client that does not read its last reply is dropped at the timeout. */
	if (!s->dead)
		smtp_arm_timeout(s);
}

static void smtp_tx_reset(struct smtp_session *s)
{
	if (s->tx != NULL && s->tx->begun && !s->tx->ended)
		smtp_handoff_abort(s);
	smtp_tx_free(s->tx);
	s->tx = NULL;
	if (s->state != SS_INIT)
		s->state = SS_HELO;
}

static void smtp_greeting(struct smtp_session *s)
{
	smtp_reply(s, SR_GREETING, smtp_cfg(s)->hostname);
}

/* The verbs. */

/*
 * The name goes into Received: and the queue as given, so only a valid
 * one is taken (what follows it on the line is ignored). 0, or -1 after
 * a 501.
 */
static int smtp_helo_common(struct smtp_session *s, const char *args, int esmtp)
{
	char name[sizeof(s->helo)];
	size_t n = strcspn(args, " ");

	if (n >= sizeof(name)) {
		smtp_reply(s, SR_BAD_HELO, NULL);
		return -1;
	}
	memcpy(name, args, n);
	name[n] = '\0';
	if (!smtp_helo_valid(name)) {
		log_info("invalid HELO/EHLO name from [%s]: %s", s->ip, name);
		smtp_reply(s, SR_BAD_HELO, NULL);
		return -1;
	}
	memcpy(s->helo, name, n + 1);
	smtp_tx_reset(s);
	s->state = SS_HELO;
	s->esmtp = esmtp ? 1 : 0;
	return 0;
}

static void smtp_ehlo(struct smtp_session *s, const char *args)
{
	const struct config *cfg = smtp_cfg(s);
	unsigned offer = 0;

	if (smtp_helo_common(s, args, 1) < 0)
		return;
	if (s->in->tls != NULL && !s->tls && s->mode != LISTEN_LOCAL)
		offer |= SMTP_EHLO_STARTTLS;
	/* AUTH only inside TLS: no password crosses the network in the clear. */
	if (s->tls)
		offer |= SMTP_EHLO_AUTH;
	smtp_reply_ehlo(s->c, cfg->hostname, (unsigned long long)cfg->max_message_size, offer);
}

static void smtp_helo(struct smtp_session *s, const char *args)
{
	if (smtp_helo_common(s, args, 0) < 0)
		return;
	smtp_reply(s, SR_HELO, smtp_cfg(s)->hostname);
}

static int smtp_may_relay(const struct smtp_session *s)
{
	const struct config *cfg = smtp_cfg(s);
	return s->auth_user[0] != '\0' || s->mode == LISTEN_LOCAL ||
	       config_cidr_match(cfg->mynetworks, cfg->nmynetworks,
				 (const struct sockaddr *)&s->peer);
}

static void smtp_mail(struct smtp_session *s, const char *args)
{
	const struct config *cfg = smtp_cfg(s);
	struct smtp_mail_args m;

	if (s->mode != LISTEN_SMTP && s->mode != LISTEN_LOCAL && s->auth_user[0] == '\0') {
		smtp_reject(s, SR_AUTH_REQUIRED);
		return;
	}
	enum smtp_reply_id err = smtp_parse_mail(args, &m);
	if (err != SR_NONE) {
		smtp_reply(s, err, NULL);
		return;
	}
	s->cmd_addr = m.path.addr;
	if (m.has_size && m.size > cfg->max_message_size) {
		smtp_reject(s, SR_TOO_BIG);
		return;
	}
	/*
	 * auth-senders: checked against the sender as the client gave it,
	 * before rewrite-sender (as Postfix's smtpd_sender_login_maps). The
	 * null sender (bounces) stays open to every user.
	 */
	if (cfg->auth_senders_file != NULL && s->auth_user[0] != '\0' && m.path.addr[0] != '\0' &&
	    !addr_owners_allow(&cfg->auth_senders, s->auth_user, m.path.addr)) {
		s->in->stats.rejected++;
		smtp_reply(s, SR_SENDER_NOT_OWNED, s->auth_user);
		return;
	}
	if (!intake_queue_up(s->in)) {
		smtp_reply(s, SR_QUEUE_DOWN, NULL);
		return;
	}
	struct smtp_tx *tx = xcalloc(1, sizeof(*tx));
	/* rewrite-sender: the queue, the logs and signing see the final address. */
	tx->sender_rewritten = addr_map_apply(&cfg->rewrite_sender, m.path.addr, tx->sender,
					      sizeof(tx->sender));
	if (!tx->sender_rewritten)
		snprintf(tx->sender, sizeof(tx->sender), "%s", m.path.addr);
	tx->body_flags = (m.body_8bit ? BODY_8BITMIME : 0) | (m.smtputf8 ? BODY_SMTPUTF8 : 0);
	buf_init(&tx->out);
	s->tx = tx;
	s->state = SS_MAIL;
	smtp_reply(s, SR_MAIL_OK, NULL);
}

/*
 * Whether a recipient may be accepted from this client. Outsiders only
 * reach relay-domains, and never through a local part that hides another
 * destination (%, !, an embedded @) or an address literal.
 */
static int smtp_rcpt_allowed(const struct smtp_session *s, const struct smtp_path *p)
{
	char domain[SMTP_DOMAIN_MAX + 1];

	if (p->is_postmaster || smtp_may_relay(s))
		return 1;
	if (p->relay_chars || p->is_literal)
		return 0;
	size_t i;
	for (i = 0; p->domain[i] != '\0'; i++)
		domain[i] = (char)tolower((unsigned char)p->domain[i]);
	domain[i] = '\0';
	return config_is_relay_domain(smtp_cfg(s), domain);
}

static void smtp_rcpt(struct smtp_session *s, const char *args)
{
	const struct config *cfg = smtp_cfg(s);
	struct smtp_tx *tx = s->tx;
	struct smtp_path p;

	enum smtp_reply_id err = smtp_parse_rcpt(args, (tx->body_flags & BODY_SMTPUTF8) != 0, &p);
	if (err != SR_NONE) {
		smtp_reply(s, err, NULL);
		return;
	}
	s->cmd_addr = p.addr;
	if (tx->nrcpts >= cfg->max_recipients) {
		smtp_reply(s, SR_TOO_MANY_RCPTS, NULL);
		return;
	}
	if (!smtp_rcpt_allowed(s, &p)) {
		smtp_reject(s, SR_RELAY_DENIED);
		return;
	}
	char addr[SMTP_PATH_MAX + 1 + sizeof(cfg->hostname)];
	if (p.is_postmaster)
		snprintf(addr, sizeof(addr), "postmaster@%s", cfg->hostname);
	else
		snprintf(addr, sizeof(addr), "%s", p.addr);
	char rewritten[sizeof(addr)];
	int dup = 0;
	if (addr_map_apply(&cfg->rewrite_recipient, addr, rewritten, sizeof(rewritten))) {
		log_debug("rewrite-recipient: <%s> -> <%s>", addr, rewritten);
		snprintf(addr, sizeof(addr), "%s", rewritten);
		/* Two recipients rewritten into one get one copy. */
		for (size_t i = 0; i < tx->nrcpts && !dup; i++)
			dup = strcmp(tx->rcpts[i], addr) == 0;
	}
	if (!dup) {
		tx->rcpts = xreallocarray(tx->rcpts, tx->nrcpts + 1, sizeof(*tx->rcpts));
		tx->rcpts[tx->nrcpts++] = xstrdup(addr);
	}
	s->state = SS_RCPT;
	smtp_reply(s, SR_RCPT_OK, NULL);
}

static void smtp_data(struct smtp_session *s, const char *args)
{
	(void)args;
	if (smtp_handoff_begin(s) < 0) {
		smtp_reply(s, SR_QUEUE_DOWN, NULL);
		smtp_tx_reset(s);
		return;
	}
	smtp_data_init(&s->tx->data, smtp_cfg(s)->max_message_size);
	s->input = SI_DATA;
	smtp_reply(s, SR_DATA_GO, NULL);
}

static void smtp_rset(struct smtp_session *s, const char *args)
{
	(void)args;
	smtp_tx_reset(s);
	smtp_reply(s, SR_OK, NULL);
}

static void smtp_noop(struct smtp_session *s, const char *args)
{
	(void)args;
	smtp_reply(s, SR_OK, NULL);
}

static void smtp_quit(struct smtp_session *s, const char *args)
{
	(void)args;
	smtp_close(s, SR_QUIT);
}

static void smtp_vrfy(struct smtp_session *s, const char *args)
{
	(void)args;
	smtp_reply(s, SR_VRFY, NULL);
}

static void smtp_help(struct smtp_session *s, const char *args)
{
	(void)args;
	smtp_reply(s, SR_HELP, NULL);
}

static void smtp_expn(struct smtp_session *s, const char *args)
{
	(void)args;
	smtp_reply(s, SR_EXPN, NULL);
}

/* After a handshake every earlier state is forgotten (RFC 3207 4.2). */
static void smtp_tls_done(struct conn *c, void *arg)
{
	struct smtp_session *s = arg;
	char desc[128];

	conn_tls_desc(c, desc, sizeof(desc));
	log_info("TLS established with [%s]: %s", s->ip, desc);
	s->tls = 1;
	s->in->stats.tls++;
	smtp_tx_reset(s);
	s->state = SS_INIT;
	s->esmtp = 0;
	s->helo[0] = '\0';
	s->auth_user[0] = '\0';
	memset(&s->lr, 0, sizeof(s->lr));
	int greet = s->input == SI_TLS_ACCEPT && s->mode == LISTEN_SMTPS;
	s->input = SI_CMD;
	smtp_arm_timeout(s);
	if (greet)
		smtp_greeting(s);
	smtp_process(s);
}

static void smtp_starttls(struct smtp_session *s, const char *args)
{
	(void)args;
	if (s->tls) {
		smtp_reply(s, SR_TLS_ALREADY, NULL);
		return;
	}
	if (s->in->tls == NULL || s->mode == LISTEN_LOCAL) {
		smtp_reply(s, SR_TLS_UNAVAILABLE, NULL);
		return;
	}
	smtp_reply(s, SR_STARTTLS_GO, NULL);
	/* Input pipelined after STARTTLS is dropped here (CVE-2011-0411). */
	s->input = SI_TLS_ACCEPT;
	if (conn_starttls(s->c, s->in->tls, 1, NULL, smtp_tls_done) < 0) {
		log_warnx("STARTTLS with [%s] failed to start", s->ip);
		s->input = SI_CLOSING;
		conn_close_after_flush(s->c);
	}
}

/*
 * AUTH from an address that used up auth-fail-limit: 454 without looking
 * at credentials. 1 when refused.
 */
static int smtp_auth_throttled(struct smtp_session *s)
{
	const struct config *cfg = smtp_cfg(s);

	if (s->in->anvil == NULL ||
	    !intake_anvil_blocked(s->in->anvil, (const struct sockaddr *)&s->peer,
				  ev_now(s->in->loop), cfg->auth_fail_limit, cfg->auth_fail_window,
				  NULL))
		return 0;
	smtp_reject(s, SR_AUTH_THROTTLED);
	return 1;
}

static void smtp_auth_failed(struct smtp_session *s, const char *user)
{
	const struct config *cfg = smtp_cfg(s);
	struct intake *in = s->in;

	smtp_log_auth_failed(s, s->auth_mech ? s->auth_mech : "?", user);
	if (cfg->auth_fail_limit > 0 && in->anvil == NULL)
		in->anvil = intake_anvil_new(INTAKE_ANVIL_MAX);
	if (in->anvil != NULL &&
	    intake_anvil_fail(in->anvil, (const struct sockaddr *)&s->peer, ev_now(in->loop),
			      cfg->auth_fail_limit, cfg->auth_fail_window))
		log_warnx("[%s]: %u failed AUTH within %u s: AUTH refused until that window ends",
			  s->ip, cfg->auth_fail_limit, cfg->auth_fail_window);
	if (++s->auth_failures >= SMTP_MAX_AUTH_FAILURES) {
		smtp_close(s, SR_AUTH_TOO_MANY);
		return;
	}
	smtp_reply(s, SR_AUTH_FAILED, NULL);
}

/* The hasher's answer for the session's auth_try_user. */
static void smtp_auth_checked(void *arg, int match)
{
	struct smtp_session *s = arg;

	s->auth_job = NULL;
	/* A timeout closed the session meanwhile: nothing to answer. */
	if (s->input != SI_AUTH_CHECK)
		return;
	s->input = SI_CMD;
	s->busy++;
	if (match) {
		snprintf(s->auth_user, sizeof(s->auth_user), "%s", s->auth_try_user);
		log_info("[%s] authenticated as %s", s->ip, s->auth_user);
		smtp_reply(s, SR_AUTH_OK, NULL);
	} else
		smtp_auth_failed(s, s->auth_try_user);
	s->busy--;
	/* Commands pipelined behind the AUTH; frees the session if it died. */
	smtp_process(s);
}

/* Hands the password check to the hasher thread; the session waits. */
static void smtp_auth_verify(struct smtp_session *s, const char *user, const char *pass)
{
	struct intake *in = s->in;
	int known;

	if (smtp_auth_throttled(s))
		return;
	if (in->hasher == NULL)
		in->hasher = intake_hasher_new(in->loop);
	if (in->hasher == NULL) {
		smtp_reply(s, SR_AUTH_TEMPFAIL, NULL);
		return;
	}
	snprintf(s->auth_try_user, sizeof(s->auth_try_user), "%s", user);
	const char *hash = smtp_auth_hash(&in->auth, user, &known);
	s->auth_job = intake_hash_start(in->hasher, pass, hash, known, smtp_auth_checked, s);
	s->input = SI_AUTH_CHECK;
}

/* A decoded PLAIN message, or the LOGIN username, or its password. */
static void smtp_auth_step(struct smtp_session *s, enum smtp_auth_step step, const char *b64)
{
	char user[SMTP_SASL_FIELD_MAX], pass[SMTP_SASL_FIELD_MAX];
	enum smtp_sasl_result r;

	s->auth_step = SA_NONE;
	s->input = SI_CMD;
	switch (step) {
	case SA_PLAIN:
		r = smtp_sasl_plain(b64, user, sizeof(user), pass, sizeof(pass));
		break;
	case SA_LOGIN_USER:
		r = smtp_sasl_decode(b64, 0, s->auth_try_user, sizeof(s->auth_try_user), NULL);
		break;
	case SA_LOGIN_PASS:
		r = smtp_sasl_decode(b64, 0, pass, sizeof(pass), NULL);
		snprintf(user, sizeof(user), "%s", s->auth_try_user);
		break;
	default:
		fatal("smtp_auth_step: step %d", (int)step);
	}
	if (r == SASL_CANCEL) {
		smtp_reply(s, SR_AUTH_CANCELLED, NULL);
		return;
	}
	if (r == SASL_BAD) {
		smtp_reply(s, SR_AUTH_BAD_B64, NULL);
		return;
	}
	if (r == SASL_REFUSED) {
		/* Refused before any password check. */
		smtp_auth_failed(s, user);
		return;
	}
	if (step == SA_LOGIN_USER) {
		s->auth_step = SA_LOGIN_PASS;
		s->input = SI_AUTH;
		smtp_reply(s, SR_AUTH_PASSWORD, NULL);
		return;
	}
	smtp_auth_verify(s, user, pass);
	explicit_bzero(pass, sizeof(pass));
}

static void smtp_auth(struct smtp_session *s, const char *args)
{
	char mech[16];
	size_t n = strcspn(args, " ");
	const char *initial = args + n;

	while (*initial == ' ')
		initial++;
	if (!s->tls) {
		smtp_reply(s, SR_AUTH_NEEDS_TLS, NULL);
		return;
	}
	if (s->auth_user[0] != '\0') {
		smtp_reply(s, SR_AUTH_ALREADY, NULL);
		return;
	}
	if (smtp_auth_throttled(s))
		return;
	if (n >= sizeof(mech)) {
		smtp_reply(s, SR_AUTH_MECH, NULL);
		return;
	}
	memcpy(mech, args, n);
	mech[n] = '\0';
	enum smtp_auth_step step;
	enum smtp_reply_id challenge;
	if (strcasecmp(mech, "PLAIN") == 0) {
		step = SA_PLAIN;
		challenge = SR_AUTH_GO;
		s->auth_mech = "PLAIN";
	} else if (strcasecmp(mech, "LOGIN") == 0) {
		step = SA_LOGIN_USER;
		challenge = SR_AUTH_USERNAME;
		s->auth_mech = "LOGIN";
	} else {
		smtp_reply(s, SR_AUTH_MECH, NULL);
		return;
	}
	if (*initial != '\0') {
		smtp_auth_step(s, step, initial);
		return;
	}
	s->auth_step = step;
	s->input = SI_AUTH;
	smtp_reply(s, challenge, NULL);
}

enum smtp_args { ARGS_NONE, ARGS_REQUIRED, ARGS_ANY };

/*
 * The verbs. refuse[state] is the reply when the verb comes in that
 * state; SR_NONE means it is allowed there.
 */
static const struct smtp_verb {
	const char *name;
	enum smtp_args args;
	enum smtp_reply_id refuse[SS_NSTATES];
	void (*fn)(struct smtp_session *s, const char *args);
} smtp_verbs[] = {
	{"EHLO", ARGS_REQUIRED, {0, 0, 0, 0}, smtp_ehlo},
	{"HELO", ARGS_REQUIRED, {0, 0, 0, 0}, smtp_helo},
	{"MAIL", ARGS_REQUIRED, {SR_NEED_HELO, 0, SR_NESTED_MAIL, SR_NESTED_MAIL}, smtp_mail},
	{"RCPT", ARGS_REQUIRED, {SR_NEED_HELO, SR_NEED_MAIL, 0, 0}, smtp_rcpt},
	{"DATA", ARGS_NONE, {SR_NEED_HELO, SR_NEED_MAIL, SR_NEED_RCPT, 0}, smtp_data},
	{"RSET", ARGS_NONE, {0, 0, 0, 0}, smtp_rset},
	{"NOOP", ARGS_ANY, {0, 0, 0, 0}, smtp_noop},
	{"QUIT", ARGS_NONE, {0, 0, 0, 0}, smtp_quit},
	{"VRFY", ARGS_REQUIRED, {0, 0, 0, 0}, smtp_vrfy},
	{"HELP", ARGS_ANY, {0, 0, 0, 0}, smtp_help},
	{"EXPN", ARGS_ANY, {0, 0, 0, 0}, smtp_expn},
	{"STARTTLS", ARGS_NONE, {0, 0, 0, 0}, smtp_starttls},
	{"AUTH", ARGS_REQUIRED, {SR_NEED_HELO, 0, SR_BAD_SEQUENCE, SR_BAD_SEQUENCE}, smtp_auth},
};

static void smtp_command(struct smtp_session *s, const char *line)
{
	struct smtp_cmd cmd;
	const struct smtp_verb *v = NULL;

	smtp_cmd_split(line, &cmd);
	for (size_t i = 0; i < sizeof(smtp_verbs) / sizeof(smtp_verbs[0]); i++)
		if (strcmp(cmd.verb, smtp_verbs[i].name) == 0)
			v = &smtp_verbs[i];
	/* Postfix's word for a verb it does not know. */
	s->cmd_verb = v ? v->name : "UNKNOWN";
	s->cmd_addr = NULL;
	if (v == NULL) {
		smtp_reply(s, SR_UNKNOWN_VERB, NULL);
		return;
	}
	if (v->refuse[s->state] != SR_NONE) {
		smtp_reply(s, v->refuse[s->state], NULL);
		return;
	}
	if (v->args == ARGS_NONE && cmd.args[0] != '\0') {
		smtp_reply(s, SR_NO_ARGS, NULL);
		return;
	}
	if (v->args == ARGS_REQUIRED && cmd.args[0] == '\0') {
		smtp_reply(s, SR_SYNTAX, NULL);
		return;
	}
	v->fn(s, cmd.args);
	s->cmd_addr = NULL; /* it pointed into the handler's frame */
}

/* Content: through the DATA reader to the queue. */
static void smtp_data_input(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	struct conn *c = s->c;
	int done;

	size_t used = smtp_data_feed(&tx->data, buf_head(&c->in), buf_avail(&c->in), &tx->out,
				     &done);
	buf_consume(&c->in, used);
	if (tx->data.err != SR_NONE || tx->queue_lost) {
		buf_reset(&tx->out);
		if (tx->begun && !tx->ended)
			smtp_handoff_abort(s);
	} else
		smtp_handoff_content(s, done);
	if (!done) {
		if (intake_queue_busy(s->in)) {
			s->flow_paused = 1;
			intake_flow_wait(s->in);
		}
		return;
	}
	s->input = SI_CMD;
	s->lines++;
	s->cmd_verb = "END-OF-MESSAGE";
	if (tx->data.err != SR_NONE) {
		smtp_reject(s, tx->data.err);
		smtp_tx_reset(s);
		return;
	}
	if (tx->queue_lost) {
		smtp_reply(s, SR_QUEUE_DOWN, NULL);
		smtp_tx_reset(s);
		return;
	}
	smtp_handoff_end(s);
	s->input = SI_WAIT;
	ev_timer_start(s->in->loop, &s->timer, intake_verdict_timeout_ms(s->in));
}

/* Works through the input buffer: every whole command, in order. */
static void smtp_process(struct smtp_session *s)
{
	struct conn *c = s->c;

	s->busy++;
	/* A full connection takes no more commands until its output drains. */
	while (!s->dead && !s->flow_paused && !conn_full(c) && buf_avail(&c->in) > 0 &&
	       (s->input == SI_CMD || s->input == SI_AUTH || s->input == SI_DATA)) {
		if (s->input == SI_DATA) {
			smtp_data_input(s);
			continue;
		}
		size_t used = 0, len = 0;
		enum smtp_reply_id err = SR_NONE;
		enum smtp_line_status st =
			smtp_line_next(&s->lr, buf_head(&c->in), buf_avail(&c->in), &used, &len, &err);
		if (st == SMTP_LINE_MORE) {
			buf_consume(&c->in, used);
			break;
		}
		char line[SMTP_LINE_MAX];
		memcpy(line, buf_head(&c->in), len);
		line[len] = '\0';
		buf_consume(&c->in, used);
		s->lines++;
		if (st == SMTP_LINE_ERR) {
			/* A line too long or malformed to read a verb from. */
			if (s->input != SI_AUTH)
				s->cmd_verb = "UNKNOWN";
			s->auth_step = SA_NONE;
			if (s->input == SI_AUTH)
				s->input = SI_CMD;
			smtp_reply(s, err, NULL);
		} else if (s->input == SI_AUTH)
			smtp_auth_step(s, s->auth_step, line);
		else
			smtp_command(s, line);
	}
	s->busy--;
	if (s->dead) {
		smtp_destroy(s);
		return;
	}
	if (s->input != SI_CLOSING && s->input != SI_TLS_ACCEPT)
		conn_pause_read(c, s->flow_paused || s->input == SI_AUTH_CHECK);
	s->in_left = buf_avail(&c->in);
	s->line_open = s->in_left > 0 || s->lr.skip_err != SR_NONE;
	/* An idle session keeps no input buffer: the next read allocates one. */
	if (buf_avail(&c->in) == 0)
		buf_free(&c->in);
}

static void smtp_on_read(struct conn *c, void *arg)
{
	struct smtp_session *s = arg;
	size_t avail = buf_avail(&c->in);
	size_t fresh = avail > s->in_left ? avail - s->in_left : avail;
	uint64_t lines = s->lines;
	int was_open = s->line_open;

	conn_hold(c);
	smtp_process(s);
	if (conn_release(c))
		return; /* the session went with its connection */
	/* Waiting for the queue and closing have timers of their own. */
	if (s->input == SI_WAIT || s->input == SI_CLOSING)
		return;
	if (s->lines != lines || (!was_open && s->input != SI_DATA))
		smtp_arm_timeout(s);
	else if (s->input == SI_DATA)
		smtp_extend_timeout(s, fresh);
}

/* Our output went out: commands held back while it was full go on. */
static void smtp_on_drain(struct conn *c, void *arg)
{
	struct smtp_session *s = arg;

	if (buf_avail(&c->in) > 0 && !s->flow_paused)
		smtp_process(s);
}

static void smtp_on_close(struct conn *c, void *arg, const char *why)
{
	struct smtp_session *s = arg;
	(void)c;
	log_debug("disconnect from [%s]: %s", s->ip, why);
	smtp_session_free(s);
}

static void smtp_on_timeout(void *arg)
{
	struct smtp_session *s = arg;

	/* Waiting on the queue is not the client's idleness: the queue is late. */
	if (s->input == SI_WAIT) {
		intake_queue_late(s->in, s);
		return;
	}
	log_info("timeout from [%s]", s->ip);
	/* Replies still unread would hold a 421 back too: drop the client now. */
	if (s->input == SI_TLS_ACCEPT || s->input == SI_CLOSING || buf_avail(&s->c->out) > 0) {
		smtp_session_free(s);
		return;
	}
	smtp_close(s, SR_TIMEOUT);
}

struct smtp_session *smtp_session_new(struct intake *in, int fd, const struct sockaddr *sa,
				      socklen_t salen, enum listen_mode mode)
{
	struct smtp_session *s = xcalloc(1, sizeof(*s));

	s->in = in;
	s->mode = mode;
	memcpy(&s->peer, sa, salen < sizeof(s->peer) ? salen : sizeof(s->peer));
	if (sa->sa_family == AF_UNIX)
		snprintf(s->ip, sizeof(s->ip), "local");
	else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &sin6->sin6_addr, s->ip, sizeof(s->ip));
	} else
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, s->ip, sizeof(s->ip));
	s->c = conn_new(in->loop, fd, smtp_on_read, smtp_on_close, s);
	if (s->c == NULL) {
		log_warnx("cannot watch the connection from [%s]", s->ip);
		free(s);
		return NULL;
	}
	s->c->on_drain = smtp_on_drain;
	s->next = in->sessions;
	if (in->sessions)
		in->sessions->prev = s;
	in->sessions = s;
	in->nsessions++;
	in->stats.connections++;
	ev_timer_init(&s->timer, smtp_on_timeout, s);
	smtp_arm_timeout(s);
	intake_sessions_changed(in);
	log_debug("connect from [%s]", s->ip);
	if (mode == LISTEN_SMTPS) {
		s->input = SI_TLS_ACCEPT;
		if (in->tls == NULL || conn_starttls(s->c, in->tls, 1, NULL, smtp_tls_done) < 0) {
			log_warnx("smtps connection from [%s]: TLS not available", s->ip);
			smtp_destroy(s);
			return NULL;
		}
		return s;
	}
	s->input = SI_CMD;
	smtp_greeting(s);
	return s;
}

/* The queue's verdict ends the wait; pipelined commands go on. */
static void smtp_tx_done(struct smtp_session *s)
{
	smtp_tx_reset(s);
	s->input = SI_CMD;
	smtp_arm_timeout(s);
	smtp_process(s);
}

void smtp_session_committed(struct smtp_session *s, const char *qid)
{
	/* The queue logs the "from=<...>, size=..." line once it is on disk. */
	log_debug("%s: queued for [%s]", qid, s->ip);
	/* Postfix's pickup line: who handed a local message in. */
	if (s->mode == LISTEN_LOCAL)
		log_msg(LOG_INFO, qid, "uid=%u from=<%s>", (unsigned)s->uid, s->tx->sender);
	s->in->stats.received++;
	smtp_reply(s, SR_QUEUED, qid);
	s->tx->ended = 1;
	smtp_tx_done(s);
}

void smtp_session_failed(struct smtp_session *s, int code, const char *enhanced,
			 const char *text)
{
	log_msg(LOG_WARNING, s->tx->qid, "queue refused the message from [%s]: %d %s %s", s->ip,
		code, enhanced, text);
	smtp_reply_queue_failed(s->c, code, enhanced, text);
	s->tx->ended = 1;
	smtp_tx_done(s);
}

void smtp_session_queue_lost(struct smtp_session *s)
{
	if (s->tx == NULL || !s->tx->begun)
		return;
	s->tx->queue_lost = 1;
	s->tx->ended = 1; /* nothing more can be sent */
	if (s->input == SI_WAIT) {
		smtp_reply(s, SR_QUEUE_DOWN, NULL);
		smtp_tx_done(s);
	}
}

int smtp_session_evictable(const struct smtp_session *s)
{
	return (s->input == SI_CMD || s->input == SI_AUTH || s->input == SI_TLS_ACCEPT) &&
	       !s->busy && !s->dead && ev_timer_pending(&s->timer);
}

void smtp_session_evict(struct smtp_session *s)
{
	if (buf_avail(&s->c->out) > 0 || s->input == SI_TLS_ACCEPT) {
		smtp_session_free(s);
		return;
	}
	smtp_close(s, SR_TOO_MANY_CONNS);
}

void smtp_session_resume(struct smtp_session *s)
{
	if (!s->flow_paused)
		return;
	s->flow_paused = 0;
	smtp_process(s);
}
