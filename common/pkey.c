/*
 * pkey.c - private keys from PEM text.
 */
#include "pkey.h"

#include <openssl/err.h>
#include <openssl/pem.h>

EVP_PKEY *pkey_from_pem(const char *pem, size_t len)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *k = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	ERR_clear_error();
	return k;
}

const char *pkey_dkim_problem(const EVP_PKEY *k)
{
	if (k == NULL)
		return "not a PEM private key";
	if (EVP_PKEY_id(k) == EVP_PKEY_RSA)
		return EVP_PKEY_bits(k) < 1024 ? "an RSA key under 1024 bits" : NULL;
	return EVP_PKEY_id(k) == EVP_PKEY_ED25519 ? NULL : "neither RSA nor Ed25519";
}
