/*
 * base64.h - RFC 4648 base64 (standard alphabet, padded), strict on input:
 * used for the SASL exchanges of AUTH PLAIN and LOGIN, where a client's
 * malformed response must be refused rather than guessed at.
 */
#ifndef RELAYD_BASE64_H
#define RELAYD_BASE64_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Encoded length of n bytes, without the terminating NUL. */
#define BASE64_ENCODED_LEN(n) ((((n) + 2) / 3) * 4)

/*
 * Decodes srclen characters into dst. The input must be whole quanta of
 * four characters with '=' padding only at the end, and nothing else
 * (no whitespace). Returns the decoded length, or -1 when the input is
 * malformed or does not fit in dstsz.
 */
ssize_t base64_decode(const char *src, size_t srclen, uint8_t *dst, size_t dstsz);
/* Encodes n bytes into dst (NUL-terminated); -1 if dstsz is too small. */
ssize_t base64_encode(const void *src, size_t n, char *dst, size_t dstsz);

#endif
