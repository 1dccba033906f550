/*
 * smtpc_reply.h - the delivery client's reading of what an SMTP server
 * says: replies (one or many lines, RFC 5321 4.2) with their enhanced
 * status code (RFC 3463), and the extensions an EHLO reply advertises.
 * Pure functions on bytes, so they are unit-tested and fuzzed apart from
 * the session.
 */
#ifndef RELAYD_SMTPC_REPLY_H
#define RELAYD_SMTPC_REPLY_H

#include "common/buf.h"

#include <stddef.h>
#include <stdint.h>

/* A server line longer than this is a protocol error (RFC 5321: 512). */
#define SMTPC_LINE_MAX 4096
/* What is kept of a reply's text; the rest is cut (logs, DSNs). */
#define SMTPC_TEXT_MAX 2048

struct smtpc_reply {
	int code;                   /* 0 until the last line arrived */
	int pending_code;           /* the code of the lines read so far */
	char enh[16];               /* "5.1.1" from the first line, or "" */
	char text[SMTPC_TEXT_MAX];  /* each line after "ddd-", '\n' between */
	size_t textlen;
	unsigned nlines;
};

enum smtpc_parse {
	SMTPC_MORE,   /* the reply goes on: feed more lines */
	SMTPC_DONE,   /* r->code is set */
	SMTPC_BAD,    /* not an SMTP reply: give up on the connection */
};

void smtpc_reply_init(struct smtpc_reply *r);
/* Feeds one line without its line end. */
enum smtpc_parse smtpc_reply_line(struct smtpc_reply *r, const char *line, size_t len);
/*
 * Takes whole lines out of in until a reply is complete (DONE: the bytes
 * after it stay in in, for pipelined replies), input runs out (MORE) or
 * a line is malformed or too long (BAD).
 */
enum smtpc_parse smtpc_reply_read(struct smtpc_reply *r, struct buf *in);
/* "550 5.1.1 User unknown" with the lines joined by blanks. */
void smtpc_reply_oneline(const struct smtpc_reply *r, char *dst, size_t dstsz);

/* Extensions the client uses, from an EHLO reply. */
#define SMTPC_EXT_PIPELINING 0x01u
#define SMTPC_EXT_8BITMIME   0x02u
#define SMTPC_EXT_STARTTLS   0x04u
#define SMTPC_EXT_SIZE       0x08u
#define SMTPC_EXT_AUTH       0x10u
#define SMTPC_EXT_SMTPUTF8   0x20u
#define SMTPC_EXT_ENHANCED   0x40u
#define SMTPC_EXT_DSN        0x80u

#define SMTPC_AUTH_PLAIN 0x1u
#define SMTPC_AUTH_LOGIN 0x2u

struct smtpc_caps {
	unsigned ext;       /* SMTPC_EXT_* */
	uint64_t size_max;  /* SIZE n; 0: no limit given */
	unsigned auth;      /* SMTPC_AUTH_* */
};

/* Reads the extension lines (all but the first) of a 250 EHLO reply. */
void smtpc_caps_parse(const struct smtpc_reply *r, struct smtpc_caps *caps);

#endif
