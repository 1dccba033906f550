/*
 * submit_dlg.h - the client side of a local submission, as a state
 * machine on replies, so that the blocking sendmail command and intake's
 * non-blocking maildrop pickup speak the same dialogue: EHLO, MAIL and
 * every RCPT pipelined; DATA only when every recipient was taken (a
 * message goes to all of its recipients or to none, so that a retry
 * cannot deliver twice); then the content, then QUIT.
 */
#ifndef RELAYD_SUBMIT_DLG_H
#define RELAYD_SUBMIT_DLG_H

#include "common/buf.h"
#include "relayd/delivery/smtpc_reply.h"

#include <stddef.h>

/*
 * The DSN parameters of a submission (sendmail -N, -R, -V), as the ESMTP
 * text that follows MAIL and each RCPT: " RET=HDRS ENVID=..." and
 * " NOTIFY=SUCCESS,FAILURE"; "" when none. Intake checks them like any
 * client's (RFC 3461).
 */
struct submit_dsn {
	char mail[360];
	char rcpt[48];
};

enum submit_step { SUBMIT_GREETING, SUBMIT_ENVELOPE, SUBMIT_DATA, SUBMIT_END, SUBMIT_OVER };

enum submit_result {
	SUBMIT_MORE,    /* send what is in out, read the next reply */
	SUBMIT_CONTENT, /* send the stuffed content (and what is in out is empty) */
	SUBMIT_OK,      /* accepted: qid is set; send out (QUIT) */
	SUBMIT_FAILED,  /* code/enh/text say why; send out (QUIT) */
};

struct submit_dlg {
	const char *sender;
	char *const *rcpts;
	size_t nrcpts;
	const struct submit_dsn *dsn; /* NULL: none */
	int eightbit;       /* the content has octets over 127: BODY=8BITMIME */
	enum submit_step step;
	size_t pending;     /* replies still due in this step */
	size_t answered;    /* replies of the envelope step so far */
	int code;           /* the first refusal (4xx/5xx), 0 while none */
	char enh[16];
	char text[512];     /* "RCPT TO:<x>: 550 5.1.1 ..." */
	char qid[64];
};

/* The MAIL parameters follow the envelope and the content (RFC 6152, 6531),
 * and dsn (may be NULL), which must outlive d. */
void submit_dlg_init(struct submit_dlg *d, const char *sender, char *const *rcpts,
		     size_t nrcpts, const struct submit_dsn *dsn, const void *content, size_t len);
/* A complete reply from the server; the next commands go to out. */
enum submit_result submit_dlg_reply(struct submit_dlg *d, const struct smtpc_reply *r,
				    struct buf *out);
/* The connection broke or spoke nonsense: a temporary failure. */
void submit_dlg_lost(struct submit_dlg *d, const char *why);

#endif
