/*
 * pkey.h - private keys from PEM text (the master read the file; workers
 * get the text): loading, and whether a key can sign DKIM.
 */
#ifndef RELAYD_PKEY_H
#define RELAYD_PKEY_H

#include <openssl/evp.h>
#include <stddef.h>

/* NULL when pem holds no private key (OpenSSL's error queue is cleared). */
EVP_PKEY *pkey_from_pem(const char *pem, size_t len);
/* Why k cannot sign DKIM (RSA under 1024 bits, another type, NULL), or NULL. */
const char *pkey_dkim_problem(const EVP_PKEY *k);

#endif
