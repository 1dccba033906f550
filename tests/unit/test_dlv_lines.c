/*
 * test_dlv_lines.c - long lines broken at 998 octets on the way out
 * (relayd/delivery/dlv_lines.c): header lines folded at a blank, or with
 * an added space; body lines split; short lines passed through without a
 * copy; the same result whatever the pieces the content comes in.
 */
#include "relayd/delivery/dlv_lines.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* The content in pieces of step octets, broken; into out. */
static void lines_pieces(const char *in, size_t n, size_t step, struct buf *out)
{
	struct dlv_lines l;
	struct buf tmp;

	buf_init(&tmp);
	dlv_lines_init(&l);
	for (size_t off = 0; off < n; off += step) {
		size_t k = n - off < step ? n - off : step, got;
		const uint8_t *p = dlv_lines_break(&l, (const uint8_t *)in + off, k, off + k == n,
						   &tmp, &got);
		buf_append(out, p, got);
	}
	buf_free(&tmp);
	dlv_lines_free(&l);
}

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* Every line of out within DLV_LINE_MAX, and CRLF-terminated but maybe the last. */
static void assert_short_lines(const struct buf *out)
{
	const char *p = (const char *)buf_head(out);
	size_t n = buf_avail(out), col = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n') {
			col = 0;
			i++;
			continue;
		}
		ck_assert_uint_le(++col, DLV_LINE_MAX);
	}
}

START_TEST(test_lines_short_untouched)
{
	static const char in[] = "Subject: x\r\n\r\nshort\r\nlines\r\n";
	struct dlv_lines l;
	struct buf tmp;
	size_t got;
	char *exact = repeat('x', DLV_LINE_MAX);

	buf_init(&tmp);
	dlv_lines_init(&l);
	ck_assert_ptr_eq(dlv_lines_break(&l, (const uint8_t *)in, strlen(in), 0, &tmp, &got), in);
	ck_assert_uint_eq(got, strlen(in));
	/* 998 octets exactly: still fine. */
	ck_assert_ptr_eq(dlv_lines_break(&l, (const uint8_t *)exact, DLV_LINE_MAX, 0, &tmp, &got),
			 exact);
	ck_assert_ptr_eq(dlv_lines_break(&l, (const uint8_t *)"\r\n", 2, 0, &tmp, &got), "\r\n");
	ck_assert_uint_eq(l.col, 0);
	ck_assert_int_eq(l.in_head, 0);
	/* A header line cut by the end of a piece is held, not passed. */
	dlv_lines_restart(&l);
	ck_assert_ptr_nonnull(dlv_lines_break(&l, (const uint8_t *)"Subject: a", 10, 0, &tmp, &got));
	ck_assert_uint_eq(got, 0);
	const uint8_t *p = dlv_lines_break(&l, (const uint8_t *)"b\r\n\r\n", 5, 0, &tmp, &got);
	ck_assert(got == 15 && memcmp(p, "Subject: ab\r\n\r\n", 15) == 0);
	free(exact);
	buf_free(&tmp);
	dlv_lines_free(&l);
}
END_TEST

START_TEST(test_lines_body_split)
{
	/* 2500 octets of body: 998 + 998 + 504; every piece size gives the same. */
	struct buf in, want;
	buf_init(&in);
	buf_init(&want);
	buf_appendf(&in, "Subject: s\r\n\r\n");
	buf_appendf(&want, "Subject: s\r\n\r\n");
	for (int i = 0; i < 2500; i++)
		buf_append(&in, i < 998 ? "a" : i < 1996 ? "b" : "c", 1);
	buf_appendf(&in, "\r\nend\r\n");
	char *a = repeat('a', 998), *b = repeat('b', 998), *c = repeat('c', 504);
	buf_appendf(&want, "%s\r\n%s\r\n%s\r\nend\r\n", a, b, c);
	size_t steps[] = {1, 2, 7, 100, 997, 998, 999, 1000, 4096};
	for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
		struct buf out;
		buf_init(&out);
		lines_pieces((const char *)buf_head(&in), buf_avail(&in), steps[k], &out);
		ck_assert_msg(buf_avail(&out) == buf_avail(&want) &&
				      memcmp(buf_head(&out), buf_head(&want), buf_avail(&out)) == 0,
			      "step %zu", steps[k]);
		buf_free(&out);
	}
	free(a);
	free(b);
	free(c);
	buf_free(&in);
	buf_free(&want);
}
END_TEST

START_TEST(test_lines_header_fold)
{
	/* Words of 9 octets and a blank: folded before a blank, which starts the next line. */
	struct buf in;
	buf_init(&in);
	buf_appendf(&in, "Subject:");
	for (int i = 0; i < 300; i++)
		buf_appendf(&in, " w%07d", i);
	buf_appendf(&in, "\r\nX-Blob: ");
	for (int i = 0; i < 2000; i++)
		buf_append(&in, "z", 1);
	buf_appendf(&in, "\r\n\r\nbody\r\n");
	size_t steps[] = {1, 13, 512, 65536};
	for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
		struct buf out;
		buf_init(&out);
		lines_pieces((const char *)buf_head(&in), buf_avail(&in), steps[k], &out);
		assert_short_lines(&out);
		/* Unfolding (CRLF before a blank removed) gives the Subject back; the blob
		 * got a CRLF and a space where it had no blank. */
		buf_append(&out, "", 1);
		char *s = (char *)buf_head(&out), *w = s;
		for (char *r = s; *r; r++) {
			if (r[0] == '\r' && r[1] == '\n' && (r[2] == ' ' || r[2] == '\t')) {
				r++;
				continue;
			}
			*w++ = *r;
		}
		*w = '\0';
		char *blob = strstr(s, "X-Blob: ");
		ck_assert_ptr_nonnull(blob);
		ck_assert_int_eq(memcmp(s, buf_head(&in), (size_t)(blob - s)), 0);
		size_t zs = 0;
		for (char *z = blob + 8; *z != '\r'; z++)
			if (*z == 'z')
				zs++;
			else
				ck_assert_int_eq(*z, ' ');
		ck_assert_uint_eq(zs, 2000);
		ck_assert_ptr_nonnull(strstr(blob, "\r\n\r\nbody\r\n"));
		buf_free(&out);
	}
	buf_free(&in);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dlv_lines");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_lines_short_untouched);
	tcase_add_test(tc, test_lines_body_split);
	tcase_add_test(tc, test_lines_header_fold);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
