/*
 * xtext.h - the encodings of DSN parameter values: xtext (RFC 3461 4,
 * ENVID= and ORCPT=rfc822;...) and utf-8-addr-xtext (RFC 6533 3, ORCPT=
 * utf-8;...), decoded when intake takes them and encoded again when
 * delivery passes them on. The decoded forms are what the queue stores
 * and what reports show.
 */
#ifndef RELAYD_XTEXT_H
#define RELAYD_XTEXT_H

#include <stddef.h>

/*
 * xtext = *( xchar / "+" 2HEXUPPER ), xchar = "!".."~" but "+" and "=".
 * Decodes s into dst (dstsz with the NUL): its length, or -1 when s is not
 * xtext, decodes to a control or 8-bit octet, or does not fit.
 */
int xtext_decode(const char *s, char *dst, size_t dstsz);
/* Encodes s as xtext: its length, or -1 when it does not fit dst. */
int xtext_encode(const char *s, char *dst, size_t dstsz);

/*
 * utf-8-addr-xtext / utf-8-addr-unitext: printable ASCII but "+", "=" and
 * "\", "\x{HEX}" for any other code point, and (utf8 set: the client said
 * SMTPUTF8) raw UTF-8. Decodes to UTF-8 as xtext_decode does.
 */
int xtext_decode_utf8(const char *s, int utf8, char *dst, size_t dstsz);
/* Encodes UTF-8 s as utf-8-addr-xtext (pure ASCII, "\x{HEX}" escapes). */
int xtext_encode_utf8(const char *s, char *dst, size_t dstsz);

#endif
