/*
 * sendmail_bs.h - `sendmail -bs` while relayd is not running: a small
 * SMTP server on the caller's stdin/stdout whose messages go to the drop
 * directory, as Postfix's `sendmail -bs` runs its smtpd in front of
 * postdrop. (While relayd runs, -bs talks to intake itself.)
 */
#ifndef RELAYD_SENDMAIL_BS_H
#define RELAYD_SENDMAIL_BS_H

#include "common/buf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Takes one message; 0 with its name in id, or -1 (a temporary failure). */
typedef int (*sendmail_bs_deliver_fn)(void *arg, const char *sender, char **rcpts,
				      size_t nrcpts, const struct buf *msg, char *id,
				      size_t idsz);

struct sendmail_bs_params {
	const char *hostname;
	uint64_t max_size;
	unsigned max_rcpts;
	sendmail_bs_deliver_fn deliver;
	void *arg;
};

/* Serves one SMTP session until QUIT or the end of input. */
void sendmail_bs_serve(FILE *in, FILE *out, const struct sendmail_bs_params *p);

#endif
