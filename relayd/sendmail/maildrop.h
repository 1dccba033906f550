/*
 * maildrop.h - local submission's two ways in, shared by the sendmail
 * command and intake: STATE_DIR/submit.sock (SMTP, the caller's uid from
 * SO_PEERCRED) while relayd runs, and the drop directory
 * STATE_DIR/maildrop for when it does not (Postfix's postdrop design):
 * one file per message, written by the caller (the file's owner is who
 * sent it), complete once renamed from "t." to "m.", picked up by intake.
 *
 * A file is the envelope, one line each, an empty line, then the content
 * with CRLF line ends, not dot-stuffed:
 *
 *   relayd-maildrop 1
 *   from SENDER          (empty for the null sender)
 *   to RECIPIENT         (one or more)
 *   mail-params PARAMS   (optional: DSN's RET=, ENVID= for MAIL)
 *   rcpt-params PARAMS   (optional: DSN's NOTIFY= for every RCPT)
 *
 *   CONTENT
 */
#ifndef RELAYD_MAILDROP_H
#define RELAYD_MAILDROP_H

#include "relayd/sendmail/submit_dlg.h"

#include <stddef.h>
#include <sys/types.h>

#define SUBMIT_SOCK "submit.sock"
#define MAILDROP_DIR "maildrop"
#define MAILDROP_MAGIC "relayd-maildrop 1"
/* Files still being written, and complete ones. */
#define MAILDROP_TMP_PREFIX "t."
#define MAILDROP_MSG_PREFIX "m."
/* A file refused for good (5xx): kept for the admin, never retried. */
#define MAILDROP_BAD_PREFIX "bad."
/* An envelope address longer than this is refused (RFC 5321: 256). */
#define MAILDROP_ADDR_MAX 512

struct maildrop_msg {
	char *sender;
	char **rcpts;
	size_t nrcpts;
	struct submit_dsn dsn; /* checked again by intake like a client's */
	const char *content; /* points into the parsed data */
	size_t len;
};

/*
 * Writes one message into the directory dirfd as the calling user: a
 * "t." file, fsync'd, made readable by the directory's group (the workers
 * take it from the setgid directory), renamed to "m.". The final name
 * goes to name. 0, or -1 with errno.
 */
int maildrop_write(int dirfd, const char *sender, char *const *rcpts, size_t nrcpts,
		   const struct submit_dsn *dsn, const void *content, size_t len, char *name,
		   size_t namesz);
/* Parses a file's data (kept: content points into it). 0, or -1 when malformed. */
int maildrop_parse(const char *data, size_t len, struct maildrop_msg *m);
void maildrop_msg_free(struct maildrop_msg *m);

#endif
