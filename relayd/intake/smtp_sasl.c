/*
 * smtp_sasl.c - SASL PLAIN and LOGIN response decoding.
 */
#include "smtp_sasl.h"
#include "common/base64.h"

#include <string.h>

enum smtp_sasl_result smtp_sasl_decode(const char *line, int allow_nul, char *dst,
				       size_t dstsz, size_t *outlen)
{
	if (strcmp(line, "*") == 0)
		return SASL_CANCEL;
	if (dstsz == 0)
		return SASL_BAD;
	ssize_t n = 0;
	if (strcmp(line, "=") != 0) {
		n = base64_decode(line, strlen(line), (uint8_t *)dst, dstsz - 1);
		if (n < 0 || (!allow_nul && memchr(dst, '\0', (size_t)n) != NULL))
			return SASL_BAD;
	}
	dst[n] = '\0';
	if (outlen)
		*outlen = (size_t)n;
	return SASL_OK;
}

enum smtp_sasl_result smtp_sasl_plain(const char *line, char *user, size_t usersz, char *pass,
				      size_t passsz)
{
	char msg[3 * SMTP_SASL_FIELD_MAX + 3];
	size_t n;

	enum smtp_sasl_result r = smtp_sasl_decode(line, 1, msg, sizeof(msg), &n);
	if (r != SASL_OK)
		return r;
	/* Three fields: exactly two NULs. */
	const char *authz = msg;
	const char *nul1 = memchr(msg, '\0', n);
	if (nul1 == NULL)
		return SASL_BAD;
	const char *authc = nul1 + 1;
	const char *nul2 = memchr(authc, '\0', n - (size_t)(authc - msg));
	if (nul2 == NULL)
		return SASL_BAD;
	const char *pw = nul2 + 1;
	size_t pwlen = n - (size_t)(pw - msg);
	if (memchr(pw, '\0', pwlen) != NULL)
		return SASL_BAD;
	size_t authclen = (size_t)(nul2 - authc);
	if (authclen == 0 || authclen >= usersz || pwlen >= passsz)
		return SASL_BAD;
	memcpy(user, authc, authclen + 1);
	if (*authz != '\0' && strcmp(authz, authc) != 0)
		return SASL_REFUSED;
	memcpy(pass, pw, pwlen + 1);
	return SASL_OK;
}
