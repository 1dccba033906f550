/*
 * dlv_dkim.h - DKIM signing (RFC 6376; Ed25519 per RFC 8463) of a message
 * as it leaves: relaxed/relaxed canonicalization, the RFC 6376 5.4.1 set
 * of headers that the message has, From oversigned, t= set, no l=. The
 * delivery worker signs because it holds the final bytes: a signature
 * made before a conversion (8-bit to 7-bit, long lines broken) would not
 * verify on what the next hop receives. The keys come from the master
 * with the rest of delivery's part of the config.
 */
#ifndef RELAYD_DLV_DKIM_H
#define RELAYD_DLV_DKIM_H

#include "common/buf.h"
#include "common/config.h"

#include <stddef.h>
#include <stdint.h>

struct dlv_dkim_key;

/* The keys of one configuration; counted references, so that a message
 * being signed keeps its keys through a reload. */
struct dlv_dkim {
	struct dlv_dkim_key *keys;
	size_t n;
	int refs;
};

/*
 * The keys of every dkim-sign line of cfg, from the files this process
 * holds (one reference); NULL with the reason in err (an unreadable key, a
 * type that cannot sign, RSA under 1024 bits).
 */
struct dlv_dkim *dlv_dkim_load(const struct config *cfg, char *err, size_t errsz);
void dlv_dkim_release(struct dlv_dkim *d);
/*
 * Appends to out one DKIM-Signature header (folded, CRLF-terminated) per
 * key whose domain matches the domain of msg's From: address. msg is the
 * whole message, CRLF line ends. Returns the number of signatures made,
 * or -1 with err (a signing failure: an environment error).
 */
int dlv_dkim_sign(struct dlv_dkim *d, const uint8_t *msg, size_t len, int64_t now,
		  struct buf *out, char *err, size_t errsz);
/*
 * The same over a message that arrives in pieces (delivery reads it from
 * the queue chunk by chunk): memory is bounded by the header section and
 * one line. update returns 1 once it is known that no key applies (the
 * From: domain has none: the rest need not be read), 0 to go on.
 */
struct dlv_dkim_stream;
struct dlv_dkim_stream *dlv_dkim_stream_new(struct dlv_dkim *d); /* NULL: no keys */
int dlv_dkim_stream_update(struct dlv_dkim_stream *st, const uint8_t *p, size_t n);
int dlv_dkim_stream_finish(struct dlv_dkim_stream *st, int64_t now, struct buf *out, char *err,
			   size_t errsz);
void dlv_dkim_stream_free(struct dlv_dkim_stream *st);
/*
 * The DNS records to publish for domain: "SELECTOR._domainkey.DOMAIN TXT
 * "v=DKIM1; k=...; p=..."" lines. Returns how many keys matched.
 */
int dlv_dkim_records(const struct dlv_dkim *d, const char *domain, struct buf *out);

/* Exposed for the unit tests: relaxed canonicalization of one header
 * (name and value, unfolded) and of a body. */
void dlv_dkim_canon_header(const char *name, size_t nlen, const char *value, size_t vlen,
			   struct buf *out);
void dlv_dkim_canon_body(const uint8_t *body, size_t len, struct buf *out);

#endif
