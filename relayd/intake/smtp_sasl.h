/*
 * smtp_sasl.h - decoding the client side of AUTH PLAIN (RFC 4616) and
 * AUTH LOGIN: base64 responses, "=" for an empty one, "*" to cancel
 * (RFC 4954 section 4).
 */
#ifndef RELAYD_SMTP_SASL_H
#define RELAYD_SMTP_SASL_H

#include <stddef.h>

#define SMTP_SASL_FIELD_MAX 256

/* SASL_REFUSED: well-formed, but asks for something never granted (an
 * authorization identity other than the user's own). */
enum smtp_sasl_result { SASL_OK, SASL_CANCEL, SASL_BAD, SASL_REFUSED };

/*
 * One base64 response line into dst (NUL-terminated text): SASL_CANCEL for
 * "*", SASL_BAD for bad base64, a NUL inside, or more than dstsz - 1 octets.
 * With allow_nul, NULs are kept and *outlen says how long it is.
 */
enum smtp_sasl_result smtp_sasl_decode(const char *line, int allow_nul, char *dst,
				       size_t dstsz, size_t *outlen);

/* PLAIN: [authzid] NUL authcid NUL passwd; authzid empty or equal to authcid
 * (else SASL_REFUSED, with user filled in for the log). */
enum smtp_sasl_result smtp_sasl_plain(const char *line, char *user, size_t usersz, char *pass,
				      size_t passsz);

#endif
