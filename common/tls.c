/*
 * tls.c - building OpenSSL contexts with relayd's settings.
 */
#include "tls.h"
#include "pkey.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>

static void tls_err(char *err, size_t errsz, const char *what)
{
	unsigned long e = ERR_get_error();
	snprintf(err, errsz, "%s: %s", what, e ? ERR_reason_error_string(e) : "failed");
	ERR_clear_error();
}

/* The certificate, then its chain, from PEM text. */
static int tls_use_chain(SSL_CTX *ctx, const char *pem, size_t len)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	X509 *x = bio ? PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL) : NULL;
	int ok = x != NULL && SSL_CTX_use_certificate(ctx, x) == 1;
	X509_free(x);
	while (ok && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		/* add0 takes x only when it succeeds. */
		ok = SSL_CTX_add0_chain_cert(ctx, x) == 1;
		if (!ok)
			X509_free(x);
	}
	BIO_free(bio);
	/* The end of the text reads as a "no start line" error: not one. */
	if (ok)
		ERR_clear_error();
	return ok ? 0 : -1;
}

static int tls_use_key(SSL_CTX *ctx, const char *pem, size_t len)
{
	EVP_PKEY *k = pkey_from_pem(pem, len);
	int ok = k != NULL && SSL_CTX_use_PrivateKey(ctx, k) == 1;
	EVP_PKEY_free(k);
	return ok ? 0 : -1;
}

SSL_CTX *tls_server_ctx(const char *cert_pem, size_t cert_len, const char *key_pem,
			size_t key_len, char *err, size_t errsz)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		tls_err(err, errsz, "SSL_CTX_new");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (tls_use_chain(ctx, cert_pem, cert_len) < 0) {
		tls_err(err, errsz, "tls-cert");
		goto fail;
	}
	if (tls_use_key(ctx, key_pem, key_len) < 0) {
		tls_err(err, errsz, "tls-key");
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_err(err, errsz, "certificate and key do not match");
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* Every certificate in the PEM text into the context's trust store. */
static int tls_load_cas(SSL_CTX *ctx, const char *pem, size_t len)
{
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	X509 *x;
	int n = 0;
	while (bio && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (X509_STORE_add_cert(store, x) == 1)
			n++;
		X509_free(x);
	}
	BIO_free(bio);
	if (n > 0)
		ERR_clear_error();
	return n > 0 ? 0 : -1;
}

SSL_CTX *tls_client_ctx(int verify, const char *ca_pem, size_t ca_len, char *err, size_t errsz)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL) {
		tls_err(err, errsz, "SSL_CTX_new");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (verify) {
		int ok = ca_pem ? tls_load_cas(ctx, ca_pem, ca_len) == 0
				: SSL_CTX_set_default_verify_paths(ctx) == 1;
		if (!ok) {
			tls_err(err, errsz, ca_pem ? "tls-ca-file: no usable certificate" : "system CA store");
			SSL_CTX_free(ctx);
			return NULL;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	return ctx;
}
