/*
 * smtp_log.h - the intake log lines that tools read (fail2ban and the
 * like), in Postfix's words: a refused command with the client, the reply
 * and the envelope so far, and a failed AUTH with the client address.
 */
#ifndef RELAYD_SMTP_LOG_H
#define RELAYD_SMTP_LOG_H

#include "smtp_reply.h"

struct smtp_session;

/* Reject lines logged per connection; the rest are counted, then summed up. */
#define SMTP_LOG_REJECTS_MAX 10

/* The client as "name[addr]"; the name is "unknown" while intake looks up none. */
void smtp_log_client(const struct smtp_session *s, char *dst, size_t dstsz);
/* A 4xx or 5xx reply to the session's current command (s->cmd_verb). */
void smtp_log_reject(struct smtp_session *s, enum smtp_reply_id id, const char *arg);
/* A failed AUTH: mechanism and the identity the client gave. */
void smtp_log_auth_failed(const struct smtp_session *s, const char *mech, const char *user);
/* The session ends: how many reject lines were left out, if any. */
void smtp_log_session_end(const struct smtp_session *s);

#endif
