/*
 * test_dlv_mime.c - the 8BITMIME / SMTPUTF8 downgrade of a message
 * (relayd/delivery/dlv_mime.c): what is converted and how, byte for byte,
 * and what is refused with which reason.
 */
#include "relayd/delivery/dlv_mime.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#define A8 DLV_MIME_8BIT
#define AU DLV_MIME_UTF8

struct mime_case {
	const char *in;
	unsigned allow;
	enum dlv_mime_result res;
	const char *out; /* DLV_MIME_CONVERTED: the whole output; else a part of the reason */
};

static const struct mime_case mime_cases[] = {
	/* Nothing 8-bit: nothing to do. */
	{"Subject: hi\r\n\r\nplain\r\n", 0, DLV_MIME_SAME, ""},
	/* 8-bit allowed and no header problem: the same. */
	{"Subject: hi\r\n\r\ngr\xc3\xbc\xc3\x9f\r\n", A8, DLV_MIME_SAME, ""},
	/* No MIME headers at all: text/plain, made quoted-printable and said so. */
	{"Subject: hi\r\n\r\ngr\xc3\xbc\xc3\x9f = x \r\n",
	 0, DLV_MIME_CONVERTED,
	 "Subject: hi\r\nContent-Transfer-Encoding: quoted-printable\r\nMIME-Version: 1.0\r\n"
	 "Content-Type: text/plain; charset=utf-8\r\n\r\ngr=C3=BC=C3=9F =3D x=20\r\n"},
	/* No header section at all: the headers added get their empty line. */
	{"\xc3\xa9\r\n", 0, DLV_MIME_CONVERTED,
	 "Content-Transfer-Encoding: quoted-printable\r\nMIME-Version: 1.0\r\n"
	 "Content-Type: text/plain; charset=utf-8\r\n\r\n=C3=A9\r\n"},
	/* Labelled 8bit, 7-bit in fact: only the label. */
	{"Content-Transfer-Encoding: 8bit\r\n\r\nascii\r\n", 0, DLV_MIME_CONVERTED,
	 "Content-Transfer-Encoding: 7bit\r\n\r\nascii\r\n"},
	/* Unstructured: only the 8-bit words are encoded. */
	{"Subject: caf\xc3\xa9 au lait\r\n\r\nx\r\n", 0, DLV_MIME_CONVERTED,
	 "Subject: =?utf-8?q?caf=C3=A9?= au lait\r\n\r\nx\r\n"},
	/* Next to an encoded-word, the blank goes inside the encoding. */
	{"Subject: =?utf-8?q?a?= \xc3\xa9\r\n\r\nx\r\n", 0, DLV_MIME_CONVERTED,
	 "Subject: =?utf-8?q?a?= =?utf-8?q?_=C3=A9?=\r\n\r\nx\r\n"},
	/* Not UTF-8: unknown-8bit (RFC 1428). */
	{"Subject: caf\xe9\r\n\r\nx\r\n", 0, DLV_MIME_CONVERTED,
	 "Subject: =?unknown-8bit?q?caf=E9?=\r\n\r\nx\r\n"},
	/* Display names, quoted or not; the addresses stay. */
	{"To: \"Zo\xc3\xab, Q.\" <z@example.net>, a@example.net,\r\n J\xc3\xb6rg <j@example.org>\r\n\r\n",
	 0, DLV_MIME_CONVERTED,
	 "To: =?utf-8?q?Zo=C3=AB=2C_Q=2E?= <z@example.net>,\r\n a@example.net,\r\n"
	 " =?utf-8?q?J=C3=B6rg?= <j@example.org>\r\n\r\n"},
	/* SMTPUTF8 missing, 8BITMIME there: headers encoded, the body stays. */
	{"Subject: \xc3\xa9\r\n\r\n\xc3\xa9\r\n", A8, DLV_MIME_CONVERTED,
	 "Subject: =?utf-8?q?=C3=A9?=\r\n\r\n\xc3\xa9\r\n"},
	/* UTF-8 headers allowed, 8-bit body not. */
	{"Subject: \xc3\xa9\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xc3\xa9\r\n", AU,
	 DLV_MIME_CONVERTED,
	 "Subject: \xc3\xa9\r\nContent-Type: text/plain; charset=utf-8\r\n"
	 "Content-Transfer-Encoding: quoted-printable\r\n\r\n=C3=A9\r\n"},
	/* RFC 2231 for a parameter; other parameters as they were. */
	{"Content-Type: application/pdf; name=\"r\xc3\xa9sum\xc3\xa9.pdf\"\r\n"
	 "Content-Transfer-Encoding: base64\r\n\r\nAAAA\r\n",
	 0, DLV_MIME_CONVERTED,
	 "Content-Type: application/pdf;\r\n\tname*=utf-8''r%C3%A9sum%C3%A9.pdf\r\n"
	 "Content-Transfer-Encoding: base64\r\n\r\nAAAA\r\n"},
	/* A multipart: text to quoted-printable, the rest to base64, delimiters kept. */
	{"Content-Type: multipart/mixed; boundary=\"b\"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
	 "pre\r\n--b\r\nContent-Type: text/plain\r\n\r\n\xc3\xa9\r\n--b\r\n"
	 "Content-Type: image/x\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\xff\xfe\xfd\r\n"
	 "--b--\r\npost\r\n",
	 0, DLV_MIME_CONVERTED,
	 "Content-Type: multipart/mixed; boundary=\"b\"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
	 "pre\r\n--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable"
	 "\r\n\r\n=C3=A9\r\n--b\r\n"
	 "Content-Type: image/x\r\nContent-Transfer-Encoding: base64\r\n\r\n//79\r\n"
	 "--b--\r\npost\r\n"},
	/* message/rfc822: a message of its own, headers and body. */
	{"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
	 "Subject: \xc3\xa9\r\n\r\n\xc3\xa9\r\n",
	 0, DLV_MIME_CONVERTED,
	 "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
	 "Subject: =?utf-8?q?=C3=A9?=\r\nContent-Transfer-Encoding: quoted-printable\r\n"
	 "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n=C3=A9\r\n"},
	/* Raw 8-bit in a quoted-printable part: those octets escaped. */
	{"Content-Transfer-Encoding: quoted-printable\r\n\r\na=3D\xc3\xa9\r\n", 0,
	 DLV_MIME_CONVERTED,
	 "Content-Transfer-Encoding: quoted-printable\r\n\r\na=3D=C3=A9\r\n"},
	/* Soft line breaks keep quoted-printable lines within 76 (between any two octets). */
	{"\r\n\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	 "\xc3\xa9\xc3\xa9\xc3\xa9\r\n",
	 0, DLV_MIME_CONVERTED,
	 "Content-Transfer-Encoding: quoted-printable\r\nMIME-Version: 1.0\r\n"
	 "Content-Type: text/plain; charset=utf-8\r\n\r\n"
	 "=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=\r\n"
	 "=A9\r\n"},
	/* What cannot be converted, and why. */
	{"From: j\xc3\xb6rg@example.org\r\n\r\nx\r\n", 0, DLV_MIME_BAD_HEADER,
	 "the From: header holds a UTF-8 address"},
	{"To: J <j\xc3\xb6rg@example.org>\r\n\r\nx\r\n", A8, DLV_MIME_BAD_HEADER,
	 "the To: header holds a UTF-8 address"},
	{"Message-ID: <\xc3\xa9@x>\r\n\r\nx\r\n", 0, DLV_MIME_BAD_HEADER,
	 "the Message-ID: header holds 8-bit where it cannot be encoded"},
	{"Content-Type: message/partial; id=x\r\n\r\n\xc3\xa9\r\n", 0, DLV_MIME_BAD_BODY,
	 "message/partial or message/external-body"},
	{"Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\nAA\xc3\xa9\r\n", 0,
	 DLV_MIME_BAD_BODY, "Content-Transfer-Encoding base64"},
	{"Content-Type: multipart/mixed; boundary=b\r\n\r\n\xc3\xa9\r\n--b\r\n\r\nx\r\n--b--\r\n", 0,
	 DLV_MIME_BAD_BODY, "preamble or epilogue"},
	{"Content-Type: multipart/mixed; boundary=\"\xc3\xa9\"\r\n\r\n--\xc3\xa9\r\n\r\nx\r\n", A8,
	 DLV_MIME_BAD_BODY, "boundary with 8-bit octets"},
	/* A bare LF before a delimiter goes with it, as a CRLF does. */
	{"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n\xc3\xa9\n--b--\r\n", 0,
	 DLV_MIME_CONVERTED,
	 "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
	 "Content-Transfer-Encoding: quoted-printable\r\nContent-Type: text/plain; charset=utf-8"
	 "\r\n\r\n=C3=A9\n--b--\r\n"},
};

START_TEST(test_mime_table)
{
	const struct mime_case *tc = &mime_cases[_i];
	struct buf out;
	char why[256] = "";

	buf_init(&out);
	enum dlv_mime_result r = dlv_mime_convert((const uint8_t *)tc->in, strlen(tc->in),
						  tc->allow, &out, why, sizeof(why));
	ck_assert_msg(r == tc->res, "case %d: result %d, want %d (%s)", _i, r, tc->res, why);
	if (r == DLV_MIME_CONVERTED)
		ck_assert_msg(buf_avail(&out) == strlen(tc->out) &&
				      memcmp(buf_head(&out), tc->out, buf_avail(&out)) == 0,
			      "case %d: got\n%.*s", _i, (int)buf_avail(&out),
			      (const char *)buf_head(&out));
	else
		ck_assert_msg(buf_avail(&out) == 0 && strstr(why, tc->out) != NULL,
			      "case %d: reason %s", _i, why);
	buf_free(&out);
}
END_TEST

/* Nested deeper than DLV_MIME_DEPTH_MAX: refused, not a stack overflow. */
START_TEST(test_mime_depth)
{
	struct buf in, out;
	char why[256] = "";

	buf_init(&in);
	buf_init(&out);
	for (int i = 0; i < DLV_MIME_DEPTH_MAX + 5; i++)
		buf_appendf(&in, "Content-Type: message/rfc822\r\n\r\n");
	buf_appendf(&in, "\r\n\xc3\xa9\r\n");
	ck_assert_int_eq(dlv_mime_convert(buf_head(&in), buf_avail(&in), 0, &out, why,
					  sizeof(why)),
			 DLV_MIME_BAD_BODY);
	ck_assert_ptr_nonnull(strstr(why, "nested deeper than 100"));
	buf_free(&in);
	buf_free(&out);
}
END_TEST

/* Long encoded headers: every encoded-word within 75, every line within 998. */
START_TEST(test_mime_long_header)
{
	struct buf in, out;
	char why[64];

	buf_init(&in);
	buf_init(&out);
	buf_appendf(&in, "Subject: ");
	for (int i = 0; i < 400; i++)
		buf_appendf(&in, "\xe2\x98\x95");
	buf_appendf(&in, "\r\n\r\nx\r\n");
	ck_assert_int_eq(dlv_mime_convert(buf_head(&in), buf_avail(&in), 0, &out, why,
					  sizeof(why)),
			 DLV_MIME_CONVERTED);
	buf_append(&out, "", 1);
	const char *p = (const char *)buf_head(&out);
	for (const char *w = strstr(p, "=?"); w != NULL; w = strstr(w + 2, "=?")) {
		const char *e = strstr(w, "?=\r\n");
		if (e == NULL)
			e = strstr(w, "?=\r\n\r\n");
		ck_assert_ptr_nonnull(e);
		ck_assert_int_le(e + 2 - w, 75);
		/* A character is never cut in two: every word ends after a whole one. */
		ck_assert(strncmp(e - 9, "=E2=98=95", 9) == 0);
		w = e;
	}
	buf_free(&in);
	buf_free(&out);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dlv_mime");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_mime_table, 0, sizeof(mime_cases) / sizeof(mime_cases[0]));
	tcase_add_test(tc, test_mime_depth);
	tcase_add_test(tc, test_mime_long_header);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
