/*
 * idn.c - U-labels to A-labels and back with libidn2, in one place.
 *
 * Flags: IDN2_NONTRANSITIONAL is UTS #46 non-transitional processing (the
 * mapping of case and compatibility forms, "BÜCHER" -> "bücher", with
 * "ß" kept as itself, as IDNA2008 wants), followed by the IDNA2008 rules
 * that refuse disallowed code points, leading combining marks and bad
 * joiners. IDN2_NFC_INPUT normalizes first, since a client may send a
 * decomposed "u" + U+0308. STD3 rules stay off: an ASCII name never goes
 * through libidn2 here, and "_" in host names must keep working.
 */
#include "common/idn.h"

#include <ctype.h>
#include <idn2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define IDN_FLAGS (IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT)

int idn_is_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 0;
	return 1;
}

static int idn_copy_lower(const char *s, char *out, size_t outsz)
{
	size_t n = strlen(s);

	if (n >= outsz)
		return -1;
	for (size_t i = 0; i <= n; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	return 0;
}

int idn_domain_to_ascii(const char *domain, char *out, size_t outsz, char *err, size_t errsz)
{
	char *a = NULL;
	int rc;

	if (idn_is_ascii(domain) || domain[0] == '[') {
		if (idn_copy_lower(domain, out, outsz) == 0)
			return 0;
		snprintf(err, errsz, "domain too long");
		return -1;
	}
	rc = idn2_to_ascii_8z(domain, &a, IDN_FLAGS);
	if (rc != IDN2_OK) {
		snprintf(err, errsz, "%s", idn2_strerror(rc));
		return -1;
	}
	rc = idn_copy_lower(a, out, outsz);
	free(a);
	if (rc < 0)
		snprintf(err, errsz, "domain too long in its A-label form");
	return rc;
}

/* "xn--" at the start of a label. */
static int idn_has_alabel(const char *s)
{
	for (const char *p = s; p != NULL; p = strchr(p, '.')) {
		if (*p == '.')
			p++;
		if (strncasecmp(p, "xn--", 4) == 0)
			return 1;
	}
	return 0;
}

int idn_domain_to_utf8(const char *domain, char *out, size_t outsz)
{
	char low[256], *u = NULL;

	if (!idn_is_ascii(domain) || !idn_has_alabel(domain) ||
	    idn_copy_lower(domain, low, sizeof(low)) < 0)
		return 0;
	/* Punycode keeps the case it was given: "XN--BCHER-KVA" reads "BüCHER". */
	if (idn2_to_unicode_8z8z(low, &u, 0) != IDN2_OK)
		return 0;
	int ok = strlen(u) < outsz;
	if (ok)
		memcpy(out, u, strlen(u) + 1);
	free(u);
	return ok;
}

int idn_addr_to_ascii(const char *addr, char *out, size_t outsz)
{
	const char *at = strrchr(addr, '@');
	char dom[256], err[128];
	size_t llen;

	if (at == NULL || idn_is_ascii(at + 1)) {
		snprintf(out, outsz, "%s", addr);
		return 0;
	}
	llen = (size_t)(at - addr);
	if (idn_domain_to_ascii(at + 1, dom, sizeof(dom), err, sizeof(err)) < 0 ||
	    llen + 1 + strlen(dom) >= outsz) {
		snprintf(out, outsz, "%s", addr);
		return -1;
	}
	snprintf(out, outsz, "%.*s@%s", (int)llen, addr, dom);
	return 0;
}
