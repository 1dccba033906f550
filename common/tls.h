/*
 * tls.h - OpenSSL contexts for relayd: the server side (STARTTLS, smtps)
 * and the client side (delivery's outbound policies). TLS 1.2 and newer.
 */
#ifndef RELAYD_TLS_H
#define RELAYD_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

/* NULL with a message in err when the files cannot be used. */
SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file, char *err, size_t errsz);
/* verify: demand a valid chain (ca_file or the system store) and name. */
SSL_CTX *tls_client_ctx(int verify, const char *ca_file, char *err, size_t errsz);

#endif
