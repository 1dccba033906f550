/*
 * test_dlv_stuff.c - dot-stuffing and CRLF normalization of outgoing
 * content (relayd/delivery/smtpc_stuff.c).
 */
#include "relayd/delivery/smtpc_stuff.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

struct stuff_case {
	const char *in;
	const char *out; /* including the final ".\r\n" */
};

static const struct stuff_case stuff_cases[] = {
	{"", ".\r\n"},
	{"a\r\n", "a\r\n.\r\n"},
	{"a", "a\r\n.\r\n"},
	{".\r\n", "..\r\n.\r\n"},
	{".a\r\n.\r\nb.\r\n", "..a\r\n..\r\nb.\r\n.\r\n"},
	{"x\r\n..y\r\n", "x\r\n...y\r\n.\r\n"},
	{"Subject: x\r\n\r\n.\r\n", "Subject: x\r\n\r\n..\r\n.\r\n"},
	/* Bare line ends never leave relayd (SMTP smuggling). */
	{"a\nb\n", "a\r\nb\r\n.\r\n"},
	{"a\rb\r", "a\r\nb\r\n.\r\n"},
	{"a\n.\r\n", "a\r\n..\r\n.\r\n"},
	{"a\r.\r\n", "a\r\n..\r\n.\r\n"},
	{"a\r\r\n", "a\r\n\r\n.\r\n"},
	{"a\r\n.", "a\r\n..\r\n.\r\n"},
	{"8bit \xc3\xa9\r\n", "8bit \xc3\xa9\r\n.\r\n"},
};

static void stuff_pieces(const char *in, size_t step, struct buf *out)
{
	struct smtpc_stuff s;
	size_t n = strlen(in);

	smtpc_stuff_init(&s);
	for (size_t off = 0; off < n; off += step) {
		size_t k = n - off < step ? n - off : step;
		smtpc_stuff(&s, (const uint8_t *)in + off, k, out);
	}
	smtpc_stuff_end(&s, out);
}

START_TEST(test_stuff_table)
{
	const struct stuff_case *tc = &stuff_cases[_i];

	/* In one piece and cut at every size: the state carries across pieces. */
	for (size_t step = 1; step <= strlen(tc->in) + 1; step++) {
		struct buf out;
		buf_init(&out);
		stuff_pieces(tc->in, step, &out);
		ck_assert_msg(buf_avail(&out) == strlen(tc->out) &&
			      memcmp(buf_head(&out), tc->out, buf_avail(&out)) == 0,
			      "case %d step %zu: got %.*s", _i, step, (int)buf_avail(&out),
			      (char *)buf_head(&out));
		buf_free(&out);
	}
}
END_TEST

/* Random content: no bare CR/LF, no line "." before the end, unstuffs back. */
START_TEST(test_stuff_random)
{
	static const char alphabet[] = ".\r\nab";
	srand(42);
	for (int round = 0; round < 500; round++) {
		char in[64];
		size_t n = (size_t)(rand() % 63);
		for (size_t i = 0; i < n; i++)
			in[i] = alphabet[rand() % 5];
		in[n] = '\0';
		struct buf out;
		buf_init(&out);
		stuff_pieces(in, (size_t)(rand() % 7) + 1, &out);
		const char *p = (const char *)buf_head(&out);
		size_t len = buf_avail(&out);
		ck_assert(len >= 3 && memcmp(p + len - 3, ".\r\n", 3) == 0);
		ck_assert(len == 3 || (p[len - 5] == '\r' && p[len - 4] == '\n'));
		for (size_t i = 0; i < len; i++) {
			if (p[i] == '\r')
				ck_assert(i + 1 < len && p[i + 1] == '\n');
			if (p[i] == '\n')
				ck_assert(i > 0 && p[i - 1] == '\r');
			/* Only the terminator is a lone dot on its line. */
			int bol = i == 0 || p[i - 1] == '\n';
			if (bol && p[i] == '.' && i + 3 < len)
				ck_assert(p[i + 1] == '.');
		}
		buf_free(&out);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dlv_stuff");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_stuff_table, 0, sizeof(stuff_cases) / sizeof(stuff_cases[0]));
	tcase_add_test(tc, test_stuff_random);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
