/*
 * dlv_dkim.h - DKIM signing (RFC 6376; Ed25519 per RFC 8463) of a message
 * as it leaves: relaxed/relaxed canonicalization, the RFC 6376 5.4.1 set
 * of headers that the message has, From oversigned, t= set, no l=. The
 * delivery worker signs because it holds the final bytes: a signature
 * made before a conversion (8-bit to 7-bit, long lines broken) would not
 * verify on what the next hop receives. The keys come from the master
 * with the rest of delivery's part of the config.
 *
 * Not wired yet: no directive sets cfg->dkim and nothing calls
 * dlv_dkim_sign on the delivery path (issue 13); tested on its own.
 */
#ifndef RELAYD_DLV_DKIM_H
#define RELAYD_DLV_DKIM_H

#include "common/buf.h"
#include "common/config.h"

#include <stddef.h>
#include <stdint.h>

struct dlv_dkim_key;

struct dlv_dkim {
	struct dlv_dkim_key *keys;
	size_t n;
};

/*
 * Loads the key of every dkim-sign line of cfg from the files this process
 * holds; -1 with the reason in err (an unreadable key, a type that cannot
 * sign, RSA under 1024 bits). On error d holds nothing.
 */
int dlv_dkim_load(struct dlv_dkim *d, const struct config *cfg, char *err, size_t errsz);
void dlv_dkim_free(struct dlv_dkim *d);
/*
 * Appends to out one DKIM-Signature header (folded, CRLF-terminated) per
 * key whose domain matches the domain of msg's From: address. msg is the
 * whole message, CRLF line ends. Returns the number of signatures made,
 * or -1 with err (a signing failure: an environment error).
 */
int dlv_dkim_sign(const struct dlv_dkim *d, const uint8_t *msg, size_t len, int64_t now,
		  struct buf *out, char *err, size_t errsz);
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
