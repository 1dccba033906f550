/*
 * smtp_path.h - the RFC 5321 path grammar (section 4.1.2) with the
 * RFC 6531 extension for UTF-8 addresses: what follows "MAIL FROM:" and
 * "RCPT TO:". Source routes are accepted and stripped (RFC 5321 C).
 */
#ifndef RELAYD_SMTP_PATH_H
#define RELAYD_SMTP_PATH_H

#include "smtp_reply.h"

#include <stddef.h>

#define SMTP_LOCAL_MAX 64
#define SMTP_DOMAIN_MAX 255
#define SMTP_PATH_MAX 256 /* from "<" to ">" inclusive */

/* Flags of smtp_path_parse. */
#define SMTP_PATH_SENDER 0x1u /* reverse-path: "<>" allowed, errors say 5.1.7 */
#define SMTP_PATH_UTF8 0x2u   /* non-ASCII allowed (SMTPUTF8) */

struct smtp_path {
	char addr[SMTP_PATH_MAX + 1];     /* local@domain as written; "" for "<>" */
	char local[SMTP_LOCAL_MAX + 1];   /* as written, quotes kept */
	char domain[SMTP_DOMAIN_MAX + 1]; /* name or [literal]; "" for <> and <Postmaster> */
	unsigned is_null : 1;
	unsigned is_postmaster : 1;       /* "<Postmaster>" without a domain */
	unsigned is_literal : 1;
	unsigned utf8 : 1;                /* holds non-ASCII octets */
	unsigned relay_chars : 1;         /* '%', '!' or '@' in the local part */
	unsigned had_route : 1;
};

/*
 * Parses the path that starts at s[0] ('<'), at most len octets. Returns
 * the octets used (through the '>'), or -1 with *err set: SR_BAD_SENDER /
 * SR_BAD_RCPT for bad syntax, SR_LOCAL_TOO_LONG, SR_PATH_TOO_LONG (also
 * for a domain over 255 octets, which cannot fit in a path), SR_NEED_SMTPUTF8 (non-ASCII without SMTP_PATH_UTF8).
 */
int smtp_path_parse(const char *s, size_t len, unsigned flags, struct smtp_path *out,
		    enum smtp_reply_id *err);

/*
 * The argument of HELO/EHLO: a Domain or an address-literal (RFC 5321
 * 4.1.1.1), ASCII only. Beyond the grammar, the forms real clients send
 * are kept: '_' in labels (Windows host names); a bare name without dots
 * is a Domain already. 1 if acceptable.
 */
int smtp_helo_valid(const char *s);

#endif
