/*
 * idn.h - internationalized domain names. A domain written with U-labels
 * (UTF-8, "bücher.test") has one ASCII form, its A-labels
 * ("xn--bcher-kva.test"): the DNS, route and relay-domains matching and a
 * next hop without SMTPUTF8 all use that form, so that a domain written
 * either way is one destination. IDNA2008 with the UTS #46 mapping
 * (libidn2), as browsers and Postfix (smtputf8_enable) do.
 */
#ifndef RELAYD_IDN_H
#define RELAYD_IDN_H

#include <stddef.h>

/* 1 when s holds no octet above 127. */
int idn_is_ascii(const char *s);
/*
 * The A-label form of domain, lower case, into out: 0, or -1 with the
 * reason in err when a label is not allowed by IDNA2008 or the result
 * does not fit. An ASCII domain or an address literal ("[...]") is only
 * lower-cased: names that were valid before IDN stay as they were.
 */
int idn_domain_to_ascii(const char *domain, char *out, size_t outsz, char *err, size_t errsz);
/*
 * The U-label form of an A-label domain, for people to read (relayctl
 * route): 1 when domain has an A-label and out holds its UTF-8 form,
 * 0 when there is nothing to convert or it does not convert.
 */
int idn_domain_to_utf8(const char *domain, char *out, size_t outsz);
/*
 * addr ("local@domain") with its domain in A-labels, into out: 0, or -1
 * when the domain does not convert (out then holds addr unchanged). The
 * local part is kept as it is: a UTF-8 one still needs SMTPUTF8.
 */
int idn_addr_to_ascii(const char *addr, char *out, size_t outsz);

#endif
