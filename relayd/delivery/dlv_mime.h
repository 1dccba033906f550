/*
 * dlv_mime.h - making a message fit a next hop that lacks 8BITMIME (RFC
 * 6152) or SMTPUTF8 (RFC 6531), as Postfix's mime_state does for old
 * hosts instead of bouncing: 8-bit leaf parts become quoted-printable
 * (text) or base64 (other types), multipart and message/rfc822 trees are
 * walked, and raw 8-bit in headers becomes RFC 2047 encoded-words
 * (unstructured fields, display names) or RFC 2231 parameters (Content-Type,
 * Content-Disposition). What cannot be converted (8-bit where a header
 * holds an address or a structured value, 8-bit in message/partial or
 * message/external-body, in a base64 part, in a preamble) is refused with
 * the reason, and the message bounces.
 *
 * It works on the whole message in memory: the decision for a part (does
 * its body hold 8-bit octets?) must be made before its headers are
 * written, and a part can be anywhere in the message. See dlv_txn.c for
 * the bound and why buffering was chosen over two streaming passes.
 */
#ifndef RELAYD_DLV_MIME_H
#define RELAYD_DLV_MIME_H

#include "common/buf.h"

#include <stddef.h>
#include <stdint.h>

/* What the next hop takes, for this message. */
#define DLV_MIME_8BIT 0x1u  /* 8-bit bodies (8BITMIME, and the message said BODY=8BITMIME) */
#define DLV_MIME_UTF8 0x2u  /* UTF-8 headers (SMTPUTF8, and the message said SMTPUTF8) */

enum dlv_mime_result {
	DLV_MIME_SAME,        /* nothing needs changing: send the message as it is */
	DLV_MIME_CONVERTED,   /* out holds the converted message */
	DLV_MIME_BAD_BODY,    /* 8-bit content that cannot be made 7-bit (why says where) */
	DLV_MIME_BAD_HEADER,  /* a header that needs UTF-8 (why says which) */
};

/* A MIME tree nested deeper than this is not converted (Postfix: mime_nesting_limit). */
#define DLV_MIME_DEPTH_MAX 100

/*
 * Converts msg[0..len) (CRLF lines) for a next hop that takes only what
 * allow says (DLV_MIME_*). out is appended to only on DLV_MIME_CONVERTED.
 */
enum dlv_mime_result dlv_mime_convert(const uint8_t *msg, size_t len, unsigned allow,
				      struct buf *out, char *why, size_t whysz);

#endif
