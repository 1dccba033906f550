/*
 * test_intake_proxy.c - the PROXY protocol parser: good headers of both
 * versions with what they yield (also when they come an octet at a time,
 * and with SMTP behind them), bad ones with the reason they earn.
 */
#include "relayd/intake/intake_proxy.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIG "\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a"
/* v2 PROXY TCP4 127.0.0.5:12345 -> 127.0.0.1:25 */
#define V2_TCP4 SIG "\x21\x11\x00\x0c" "\x7f\x00\x00\x05" "\x7f\x00\x00\x01" "\x30\x39\x00\x19"
#define V2_TCP4_LEN 28
#define V2_TCP6_ADDRS "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07" \
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01" "\xd4\x31\x00\x19"
/* HAProxy's TLVs: ALPN "smtp" (type 1) and a NOOP padding (type 4) of 3 octets. */
#define TLVS "\x01\x00\x04smtp" "\x04\x00\x03\x00\x00\x00"
#define TLVS_LEN 13

struct good {
	const char *name;
	const char *data;
	size_t len;  /* octets of data (the header and what may follow) */
	size_t hlen; /* octets of the header */
	int version, local;
	const char *src; /* client address, NULL when local */
	int port;
};

static char v1_max[PROXY_V1_MAX + 1];

static struct good goods[] = {
	{"v1 TCP4", "PROXY TCP4 127.0.0.5 127.0.0.1 12345 25\r\n", 41, 41, 1, 0, "127.0.0.5", 12345},
	{"v1 TCP4 with SMTP behind", "PROXY TCP4 192.0.2.1 198.51.100.1 0 65535\r\nEHLO x\r\n", 51,
	 43, 1, 0, "192.0.2.1", 0},
	{"v1 TCP6", "PROXY TCP6 2001:db8::7 ::1 54321 25\r\n", 37, 37, 1, 0, "2001:db8::7", 54321},
	{"v1 UNKNOWN", "PROXY UNKNOWN\r\n", 15, 15, 1, 1, NULL, 0},
	{"v1 UNKNOWN with addresses", "PROXY UNKNOWN ffff:f...f:ffff 1.2.3.4 65535 65535\r\n", 51,
	 51, 1, 1, NULL, 0},
	{"v1 of 107 octets", v1_max, PROXY_V1_MAX, PROXY_V1_MAX, 1, 1, NULL, 0},
	{"v2 PROXY TCP4", V2_TCP4, V2_TCP4_LEN, V2_TCP4_LEN, 2, 0, "127.0.0.5", 12345},
	{"v2 PROXY TCP4 with SMTP behind", V2_TCP4 "QUIT\r\n", V2_TCP4_LEN + 6, V2_TCP4_LEN, 2, 0,
	 "127.0.0.5", 12345},
	{"v2 PROXY TCP6", SIG "\x21\x21\x00\x24" V2_TCP6_ADDRS, 52, 52, 2, 0, "2001:db8::7", 54321},
	{"v2 PROXY TCP4 with TLVs", SIG "\x21\x11\x00\x19" "\x7f\x00\x00\x05" "\x7f\x00\x00\x01"
	 "\x30\x39\x00\x19" TLVS, V2_TCP4_LEN + TLVS_LEN, V2_TCP4_LEN + TLVS_LEN, 2, 0, "127.0.0.5",
	 12345},
	{"v2 LOCAL", SIG "\x20\x00\x00\x00", 16, 16, 2, 1, NULL, 0},
	{"v2 LOCAL with addresses and TLVs", SIG "\x20\x11\x00\x19" "\x7f\x00\x00\x05"
	 "\x7f\x00\x00\x01" "\x30\x39\x00\x19" TLVS, 41, 41, 2, 1, NULL, 0},
	{"v2 PROXY UNSPEC", SIG "\x21\x00\x00\x00", 16, 16, 2, 1, NULL, 0},
};

START_TEST(test_good)
{
	const struct good *g = &goods[_i];
	const uint8_t *p = (const uint8_t *)g->data;
	struct proxy_hdr h;
	const char *why;

	/* Split across reads: every beginning asks for more. */
	for (size_t n = 0; n < g->hlen; n++)
		ck_assert_msg(proxy_parse(p, n, &h, &why) == PROXY_MORE, "%s: %zu octets: %s",
			      g->name, n, why ? why : "done too early");
	memset(&h, 0xa5, sizeof(h));
	enum proxy_status st = proxy_parse(p, g->len, &h, &why);
	ck_assert_msg(st == PROXY_DONE, "%s: %s", g->name, why ? why : "more");
	ck_assert_uint_eq(h.len, g->hlen);
	ck_assert_int_eq(h.version, g->version);
	ck_assert_int_eq(h.local, g->local);
	if (g->src == NULL)
		return;
	char ip[INET6_ADDRSTRLEN];
	int port;
	if (h.src.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&h.src;
		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		port = ntohs(sin->sin_port);
		ck_assert_uint_eq(h.srclen, sizeof(*sin));
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&h.src;
		ck_assert_int_eq(h.src.ss_family, AF_INET6);
		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		port = ntohs(sin6->sin6_port);
		ck_assert_uint_eq(h.srclen, sizeof(*sin6));
	}
	ck_assert_str_eq(ip, g->src);
	ck_assert_int_eq(port, g->port);
}
END_TEST

struct bad {
	const char *name;
	const char *data;
	size_t len;
	const char *why; /* a part of the reason */
};

static char v1_over[PROXY_V1_MAX + 2], v1_nocrlf[PROXY_V1_MAX];

static struct bad bads[] = {
	{"plain SMTP", "EHLO x\r\n", 8, "no PROXY signature"},
	{"v1 lower case", "proxy TCP4 127.0.0.5 127.0.0.1 1 25\r\n", 37, "no PROXY signature"},
	{"v1 of 108 octets", v1_over, PROXY_V1_MAX + 1, "longer than 107"},
	{"v1 without CRLF in 107 octets", v1_nocrlf, PROXY_V1_MAX - 1, "longer than 107"},
	{"v1 family TCP5", "PROXY TCP5 127.0.0.5 127.0.0.1 1 25\r\n", 37, "unknown family"},
	{"v1 TCP4 with IPv6", "PROXY TCP4 ::1 ::1 1 25\r\n", 25, "not of its family"},
	{"v1 TCP6 with IPv4", "PROXY TCP6 127.0.0.5 127.0.0.1 1 25\r\n", 37, "not of its family"},
	{"v1 address with leading zero", "PROXY TCP4 127.0.0.05 127.0.0.1 1 25\r\n", 38,
	 "not of its family"},
	{"v1 port too big", "PROXY TCP4 127.0.0.5 127.0.0.1 65536 25\r\n", 41, "bad port"},
	{"v1 port with leading zero", "PROXY TCP4 127.0.0.5 127.0.0.1 01 25\r\n", 38, "bad port"},
	{"v1 port not a number", "PROXY TCP4 127.0.0.5 127.0.0.1 1x 25\r\n", 38, "bad port"},
	{"v1 missing port", "PROXY TCP4 127.0.0.5 127.0.0.1 1\r\n", 34, "number of fields"},
	{"v1 extra field", "PROXY TCP4 127.0.0.5 127.0.0.1 1 25 9\r\n", 39, "number of fields"},
	{"v1 double space", "PROXY TCP4  127.0.0.5 127.0.0.1 1 25\r\n", 38, "malformed"},
	{"v1 trailing space", "PROXY TCP4 127.0.0.5 127.0.0.1 1 25 \r\n", 38, "malformed"},
	{"v1 NUL inside", "PROXY TCP4 127.0.0.5\0" "127.0.0.1 1 25\r\n", 37, "malformed"},
	{"v1 LF alone", "PROXY TCP4 127.0.0.5 127.0.0.1 1 25\n", 36, "LF without CR"},
	{"v1 CR alone", "PROXY TCP4 127.0.0.5 127.0.0.1 1 25\rx", 37, "CR without LF"},
	{"v1 empty", "PROXY \r\n", 8, "malformed"},
	{"v2 bad signature", "\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x55\x0a\x21\x11\x00\x0c", 16,
	 "no PROXY signature"},
	{"v2 version 1", SIG "\x11\x11\x00\x0c", 16, "unknown version"},
	{"v2 command 2", SIG "\x22\x11\x00\x0c", 16, "unknown command"},
	{"v2 family UNIX", SIG "\x21\x31\x00\xd8", 16, "unsupported family"},
	{"v2 family INET DGRAM", SIG "\x21\x12\x00\x0c", 16, "unsupported family"},
	{"v2 family 0x41", SIG "\x21\x41\x00\x0c", 16, "unsupported family"},
	{"v2 INET with short length", SIG "\x21\x11\x00\x08" "\x7f\x00\x00\x05\x7f\x00\x00\x01", 24,
	 "addresses longer"},
	{"v2 INET6 with INET length", SIG "\x21\x21\x00\x0c", 16, "addresses longer"},
	{"v2 over 1024 octets", SIG "\x21\x11\x03\xf1", 16, "longer than 1024"},
	{"v2 largest length", SIG "\x21\x11\xff\xff", 16, "longer than 1024"},
	{"v2 truncated TLV", SIG "\x21\x11\x00\x0f" "\x7f\x00\x00\x05" "\x7f\x00\x00\x01"
	 "\x30\x39\x00\x19" "\x01\x00\x04", 31, "malformed TLV"},
	{"v2 TLV of 2 octets", SIG "\x21\x11\x00\x0e" "\x7f\x00\x00\x05" "\x7f\x00\x00\x01"
	 "\x30\x39\x00\x19" "\x01\x00", 30, "malformed TLV"},
};

START_TEST(test_bad)
{
	const struct bad *b = &bads[_i];
	struct proxy_hdr h;
	const char *why = NULL;

	enum proxy_status st = proxy_parse((const uint8_t *)b->data, b->len, &h, &why);
	ck_assert_msg(st == PROXY_BAD, "%s: status %d", b->name, (int)st);
	ck_assert_msg(why != NULL && strstr(why, b->why) != NULL, "%s: \"%s\"", b->name,
		      why ? why : "(none)");
}
END_TEST

/* Truncated: a good header cut short is never taken, whatever the cut. */
START_TEST(test_truncated)
{
	static const char v2[] = V2_TCP4;
	struct proxy_hdr h;
	const char *why;

	ck_assert_int_eq(proxy_parse((const uint8_t *)v2, 27, &h, &why), PROXY_MORE);
	ck_assert_int_eq(proxy_parse((const uint8_t *)"PROXY TCP4 127.0.0.5 127.0.0.1 1 25\r", 36,
				     &h, &why),
			 PROXY_MORE);
	ck_assert_int_eq(proxy_parse((const uint8_t *)"\x0d\x0a\x0d", 3, &h, &why), PROXY_MORE);
	ck_assert_int_eq(proxy_parse((const uint8_t *)"PRO", 3, &h, &why), PROXY_MORE);
	ck_assert_int_eq(proxy_parse((const uint8_t *)"PRX", 3, &h, &why), PROXY_BAD);
}
END_TEST

static void make_long_headers(void)
{
	/* "PROXY UNKNOWN " + filler + CRLF: 107 octets, the most v1 allows. */
	memset(v1_max, 'x', sizeof(v1_max));
	memcpy(v1_max, "PROXY UNKNOWN ", 14);
	memcpy(v1_max + PROXY_V1_MAX - 2, "\r\n", 2);
	memcpy(v1_over, v1_max, PROXY_V1_MAX - 2);
	memcpy(v1_over + PROXY_V1_MAX - 2, "x\r\n", 3);
	memset(v1_nocrlf, 'x', sizeof(v1_nocrlf));
	memcpy(v1_nocrlf, "PROXY UNKNOWN ", 14);
}

int main(void)
{
	make_long_headers();
	Suite *s = suite_create("intake_proxy");
	TCase *tc = tcase_create("parse");
	tcase_add_loop_test(tc, test_good, 0, sizeof(goods) / sizeof(goods[0]));
	tcase_add_loop_test(tc, test_bad, 0, sizeof(bads) / sizeof(bads[0]));
	tcase_add_test(tc, test_truncated);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
