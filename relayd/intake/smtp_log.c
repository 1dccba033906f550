/*
 * smtp_log.c - the intake log lines that tools read, in Postfix's form so
 * that fail2ban filters and habits carry over:
 *
 *   NOQUEUE: reject: RCPT from unknown[192.0.2.9]: 554 5.7.1 Relay access
 *     denied; from=<s@example.net> to=<x@example.org> proto=ESMTP helo=<h>
 *   warning: unknown[192.0.2.9]: SASL LOGIN authentication failed:
 *     authentication failure, sasl_username=alice
 *
 * Each refused command is logged once; a client that keeps sending bad
 * commands gets SMTP_LOG_REJECTS_MAX lines, then one line that counts the
 * rest when it leaves. log_msg makes the client's bytes printable.
 */
#include "smtp_log.h"
#include "smtp_session.h"
#include "common/log.h"

#include <stdio.h>
#include <string.h>

/* Replies that another line reports (the SASL warning, the timeout and
 * too-many-errors lines), or that refuse nothing. */
static const enum smtp_reply_id smtp_log_not_rejects[] = {
	SR_AUTH_FAILED, SR_AUTH_TOO_MANY, SR_TIMEOUT, SR_TOO_MANY_ERRORS,
};

void smtp_log_client(const struct smtp_session *s, char *dst, size_t dstsz)
{
	snprintf(dst, dstsz, "unknown[%s]", s->ip);
}

static int smtp_log_is_reject(enum smtp_reply_id id)
{
	if (smtp_reply_get(id)->code < 400)
		return 0;
	for (size_t i = 0; i < sizeof(smtp_log_not_rejects) / sizeof(smtp_log_not_rejects[0]); i++)
		if (smtp_log_not_rejects[i] == id)
			return 0;
	return 1;
}

void smtp_log_reject(struct smtp_session *s, enum smtp_reply_id id, const char *arg)
{
	char client[INET6_ADDRSTRLEN + 16], env[3 * 300 + 64] = "";
	struct buf reply;
	size_t n = 0;

	if (!smtp_log_is_reject(id))
		return;
	smtp_log_client(s, client, sizeof(client));
	if (s->rejects_logged >= SMTP_LOG_REJECTS_MAX) {
		if (s->rejects_unlogged++ == 0)
			log_info("NOQUEUE: reject lines from %s stop here; the rest are counted",
				 client);
		return;
	}
	s->rejects_logged++;
	const char *from = s->tx ? s->tx->sender : NULL;
	const char *verb = s->cmd_verb ? s->cmd_verb : "CONNECT";
	if (s->cmd_addr != NULL && strcmp(verb, "MAIL") == 0)
		from = s->cmd_addr;
	if (from != NULL)
		n += (size_t)snprintf(env + n, sizeof(env) - n, " from=<%s>", from);
	if (s->cmd_addr != NULL && strcmp(verb, "RCPT") == 0 && n < sizeof(env))
		n += (size_t)snprintf(env + n, sizeof(env) - n, " to=<%s>", s->cmd_addr);
	if (n < sizeof(env))
		n += (size_t)snprintf(env + n, sizeof(env) - n, " proto=%s",
				      s->esmtp ? "ESMTP" : "SMTP");
	if (s->helo[0] != '\0' && n < sizeof(env))
		snprintf(env + n, sizeof(env) - n, " helo=<%s>", s->helo);
	buf_init(&reply);
	smtp_reply_format(&reply, id, arg);
	/* The reply ends in CRLF; the envelope follows after "; ". */
	log_info("NOQUEUE: reject: %s from %s: %.*s;%s", verb, client,
		 (int)(buf_avail(&reply) - 2), (const char *)buf_head(&reply), env);
	buf_free(&reply);
}

void smtp_log_auth_failed(const struct smtp_session *s, const char *mech, const char *user)
{
	char client[INET6_ADDRSTRLEN + 16];
	smtp_log_client(s, client, sizeof(client));
	log_warnx("warning: %s: SASL %s authentication failed: authentication failure, "
		  "sasl_username=%s", client, mech, user);
}

void smtp_log_session_end(const struct smtp_session *s)
{
	char client[INET6_ADDRSTRLEN + 16];
	if (s->rejects_unlogged == 0)
		return;
	smtp_log_client(s, client, sizeof(client));
	log_info("NOQUEUE: %u more reject(s) from %s not logged", s->rejects_unlogged, client);
}
