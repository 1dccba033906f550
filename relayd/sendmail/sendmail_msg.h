/*
 * sendmail_msg.h - what sendmail does to a message before it goes in:
 * input lines end in CRLF (bare LF becomes CRLF), a lone "." ends it
 * unless -i; a leading mbox "From " line goes; Bcc: is removed; From:,
 * Date: and Message-ID: are added when missing; with -t the recipients
 * come from To:, Cc: and Bcc: (Resent-To:, Resent-Cc:, Resent-Bcc: when
 * the message has any, as it is then being resent). Pure functions on
 * bytes, unit-tested apart from the program.
 */
#ifndef RELAYD_SENDMAIL_MSG_H
#define RELAYD_SENDMAIL_MSG_H

#include "common/buf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct sendmail_hdr_params {
	const char *sender;   /* the envelope sender, "" for <> */
	const char *fullname; /* for From:, NULL or "" for none */
	const char *hostname; /* unqualified addresses get @hostname */
	const char *date;     /* the Date: value to add */
	const char *msgid;    /* the Message-ID: value to add, with its <> */
	int extract;          /* -t */
};

enum sendmail_read { SENDMAIL_READ_OK, SENDMAIL_READ_TOO_BIG, SENDMAIL_READ_ERROR };

/* Reads the message from f into out with CRLF line ends; at most max octets. */
enum sendmail_read sendmail_msg_read(FILE *f, int ignore_dots, uint64_t max, struct buf *out);
/*
 * The message in[0..len) with its header section rewritten into out;
 * with p->extract the recipients found are appended to *rcpts (qualified).
 */
void sendmail_msg_headers(const char *in, size_t len, const struct sendmail_hdr_params *p,
			  struct buf *out, char ***rcpts, size_t *nrcpts);
/*
 * The addr-specs of an RFC 5322 address list ("A <a@x>, b@y (B), g: c@z;"),
 * qualified with @hostname when they have no domain, appended to *v.
 */
void sendmail_addr_list(const char *value, const char *hostname, char ***v, size_t *n);
/* addr, or addr@hostname when it has no domain; "" stays "". Allocated. */
char *sendmail_qualify(const char *addr, const char *hostname);

#endif
