/*
 * tls.h - OpenSSL contexts for relayd: the server side (STARTTLS, smtps)
 * and the client side (delivery's outbound policies). TLS 1.2 and newer.
 * Certificates and keys come as PEM text in memory: the master read the
 * files, the workers never open them.
 */
#ifndef RELAYD_TLS_H
#define RELAYD_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

/* NULL with a message in err when the PEM text cannot be used. */
SSL_CTX *tls_server_ctx(const char *cert_pem, size_t cert_len, const char *key_pem,
			size_t key_len, char *err, size_t errsz);
/*
 * verify: demand a valid chain and name, against the CA certificates in
 * ca_pem, or the system store when ca_pem is NULL.
 */
SSL_CTX *tls_client_ctx(int verify, const char *ca_pem, size_t ca_len, char *err, size_t errsz);

#endif
