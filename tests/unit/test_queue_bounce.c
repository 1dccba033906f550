/*
 * test_queue_bounce.c - the RFC 3464 report: parsed back as a
 * multipart/report with its boundary, exactly three parts with the right
 * content types, the per-recipient fields, CRLF only, one-line fields even
 * when a diagnostic carries line breaks; and the header-section finder.
 */
#include "queue/queue_bounce.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct part {
	const char *start; /* after the boundary line */
	size_t len;
};

static const char orig_headers[] = "From: s@example.com\r\nTo: a@x.example\r\n"
				   "Subject: hello\r\n";

static const struct queue_dsn_rcpt two_rcpts[] = {
	{"a@x.example", "rfc822;A@orig.example", "5.1.1",
	 "host mx.x.example[192.0.2.10] said: 550 5.1.1 <a@x.example>: user unknown (in reply to RCPT TO)",
	 "550 5.1.1 <a@x.example>: user unknown", "mx.x.example[192.0.2.10]:25"},
	{"b@y.example", NULL, "", "connection\r\nrefused", "", "none"},
};

static char *build(enum queue_dsn_action action, const struct queue_dsn_rcpt *r, size_t n)
{
	struct queue_dsn d = {
		.action = action, .hostname = "relay.test", .qid = "0123456789ABCDEF",
		.orig_qid = "FEDCBA9876543210", .to = "s@example.com", .envid = "env+1",
		.arrival = 1700000000, .now = 1700003600, .rcpts = r, .nrcpts = n,
		.content = orig_headers, .content_len = strlen(orig_headers),
	};
	struct buf b;
	buf_init(&b);
	queue_dsn_build(&d, &b);
	buf_append(&b, "", 1);
	return (char *)b.data;
}

/* Splits a multipart body by its boundary; returns the number of parts
 * and checks the closing delimiter. */
static size_t split(const char *msg, struct part *parts, size_t max)
{
	const char *ct = strstr(msg, "\r\nContent-Type: multipart/report; report-type=");
	ck_assert_ptr_nonnull(ct);
	const char *hdr_end = strstr(msg, "\r\n\r\n");
	ck_assert_ptr_nonnull(hdr_end);
	ck_assert(ct < hdr_end);
	const char *bp = strstr(ct, "boundary=\"");
	ck_assert_ptr_nonnull(bp);
	bp += strlen("boundary=\"");
	char boundary[128], delim[140], close[140];
	size_t bl = strcspn(bp, "\"");
	ck_assert(bl > 0 && bl < 70); /* RFC 2046: 1 to 70 characters */
	memcpy(boundary, bp, bl);
	boundary[bl] = '\0';
	snprintf(delim, sizeof(delim), "\r\n--%s\r\n", boundary);
	snprintf(close, sizeof(close), "\r\n--%s--\r\n", boundary);
	const char *end = strstr(msg, close);
	ck_assert_ptr_nonnull(end);
	ck_assert_str_eq(end + strlen(close), "");
	size_t n = 0;
	const char *p = strstr(hdr_end, delim);
	while (p != NULL && p < end) {
		const char *start = p + strlen(delim);
		const char *next = strstr(start, delim);
		const char *stop = next && next < end ? next : end;
		ck_assert(n < max);
		parts[n].start = start;
		parts[n].len = (size_t)(stop - start);
		n++;
		p = next;
	}
	return n;
}

static int part_has(const struct part *p, const char *s)
{
	char *copy = strndup(p->start, p->len);
	int found = strstr(copy, s) != NULL;
	free(copy);
	return found;
}

START_TEST(failed_report_structure)
{
	char *msg = build(DSN_FAILED, two_rcpts, 2);
	struct part parts[8];
	ck_assert_uint_eq(split(msg, parts, 8), 3);
	static const char *const types[] = {"Content-Type: text/plain",
					    "Content-Type: message/delivery-status\r\n",
					    "Content-Type: text/rfc822-headers\r\n"};
	for (size_t i = 0; i < 3; i++) {
		ck_assert_msg(part_has(&parts[i], types[i]), "part %zu", i);
		ck_assert_msg(part_has(&parts[i], "\r\n\r\n"), "part %zu has no body", i);
	}
	/* Message header. */
	ck_assert_ptr_nonnull(strstr(msg, "From: Mail Delivery System <MAILER-DAEMON@relay.test>\r\n"));
	ck_assert_ptr_nonnull(strstr(msg, "To: <s@example.com>\r\n"));
	ck_assert_ptr_nonnull(strstr(msg, "MIME-Version: 1.0\r\n"));
	ck_assert_ptr_nonnull(strstr(msg, "Auto-Submitted: auto-replied\r\n"));
	ck_assert_ptr_nonnull(strstr(msg, "Date: Tue, 14 Nov 2023 23:13:20 +0000\r\n"));
	/* The delivery-status fields. */
	const struct part *ds = &parts[1];
	static const char *const fields[] = {
		"Original-Envelope-Id: env+1\r\nReporting-MTA: dns; relay.test\r\n",
		"Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n",
		"\r\n\r\nOriginal-Recipient: rfc822; A@orig.example\r\n"
		"Final-Recipient: rfc822; a@x.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
		"Remote-MTA: dns; mx.x.example\r\n"
		"Diagnostic-Code: smtp; 550 5.1.1 <a@x.example>: user unknown\r\n",
		"\r\n\r\nFinal-Recipient: rfc822; b@y.example\r\nAction: failed\r\nStatus: 5.0.0\r\n"
		"Diagnostic-Code: X-Relayd; connection  refused\r\n",
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		ck_assert_msg(part_has(ds, fields[i]), "missing %s", fields[i]);
	ck_assert(!part_has(ds, "Remote-MTA: dns; none"));
	/* The explanation for people keeps "host X said". */
	ck_assert(part_has(&parts[0], "<a@x.example>: host mx.x.example[192.0.2.10] said: 550"));
	/* The original headers, whole; all 7-bit, so no transfer encoding anywhere. */
	ck_assert(part_has(&parts[2], orig_headers));
	ck_assert_ptr_null(strstr(msg, "Content-Transfer-Encoding"));
	/* CRLF only. */
	for (const char *p = msg; *p; p++)
		if (*p == '\n')
			ck_assert_msg(p > msg && p[-1] == '\r', "bare LF at %td", p - msg);
	free(msg);
}
END_TEST

START_TEST(delayed_report)
{
	char *msg = build(DSN_DELAYED, two_rcpts, 1);
	struct part parts[8];
	ck_assert_uint_eq(split(msg, parts, 8), 3);
	ck_assert(part_has(&parts[1], "Action: delayed\r\n"));
	ck_assert(!part_has(&parts[1], "Action: failed"));
	ck_assert(part_has(&parts[1], "Last-Attempt-Date: "));
	ck_assert_ptr_nonnull(strstr(msg, "Subject: Delayed Mail"));
	free(msg);
}
END_TEST

/* RFC 6533: a UTF-8 address makes the status part global, with the utf-8
 * address type and an 8-bit transfer encoding; UTF-8 headers returned
 * whole make message/global. */
START_TEST(utf8_report)
{
	static const char content[] = "Subject: caf\xc3\xa9\r\n\r\nbody \xc3\xa9\r\n";
	static const struct queue_dsn_rcpt r[] = {
		{"j\xc3\xb6rg@x.example", "utf-8;J\xc3\xb6rg@x.example", "5.1.1", "said no",
		 "550 5.1.1 no", "mx.x.example[192.0.2.10]:25"},
	};
	struct queue_dsn d = {
		.action = DSN_FAILED, .hostname = "relay.test", .qid = "Q1", .orig_qid = "O1",
		.to = "s@example.com", .rcpts = r, .nrcpts = 1, .content = content,
		.content_len = strlen(content), .full = 1, .utf8 = 1,
	};
	struct buf b;
	buf_init(&b);
	queue_dsn_build(&d, &b);
	buf_append(&b, "", 1);
	char *msg = (char *)b.data;
	struct part parts[8];
	ck_assert_uint_eq(split(msg, parts, 8), 3);
	ck_assert_ptr_nonnull(strstr(msg, "report-type=global-delivery-status;"));
	ck_assert(part_has(&parts[0], "Content-Transfer-Encoding: 8bit\r\n"));
	ck_assert(part_has(&parts[1], "Content-Type: message/global-delivery-status\r\n"
				      "Content-Transfer-Encoding: 8bit\r\n"));
	ck_assert(part_has(&parts[1], "Original-Recipient: utf-8; J\xc3\xb6rg@x.example\r\n"
				      "Final-Recipient: utf-8; j\xc3\xb6rg@x.example\r\n"));
	ck_assert(part_has(&parts[2], "Content-Type: message/global\r\n"
				      "Content-Transfer-Encoding: 8bit\r\n\r\nSubject: caf\xc3\xa9"));
	ck_assert(part_has(&parts[2], "body \xc3\xa9\r\n"));
	buf_free(&b);
}
END_TEST

/* ASCII headers, an 8-bit body, returned whole: message/rfc822, 8bit. */
START_TEST(full_8bit_body)
{
	static const char content[] = "Subject: x\r\n\r\nbody \xc3\xa9\r\n";
	struct queue_dsn d = {
		.action = DSN_RELAYED, .hostname = "relay.test", .qid = "Q1", .orig_qid = "O1",
		.to = "s@example.com", .rcpts = two_rcpts, .nrcpts = 1, .content = content,
		.content_len = strlen(content), .full = 1,
	};
	struct buf b;
	buf_init(&b);
	queue_dsn_build(&d, &b);
	buf_append(&b, "", 1);
	char *msg = (char *)b.data;
	struct part parts[8];
	ck_assert_uint_eq(split(msg, parts, 8), 3);
	ck_assert_ptr_nonnull(strstr(msg, "report-type=delivery-status;"));
	ck_assert(part_has(&parts[1], "Action: relayed\r\n"));
	ck_assert(!part_has(&parts[0], "Content-Transfer-Encoding"));
	ck_assert(part_has(&parts[2], "Content-Type: message/rfc822\r\n"
				      "Content-Transfer-Encoding: 8bit\r\n"));
	buf_free(&b);
}
END_TEST

START_TEST(header_section)
{
	static const struct {
		const char *in;
		size_t max, want;
	} cases[] = {
		{"A: 1\r\nB: 2\r\n\r\nbody\r\n", 1000, 12},
		{"A: 1\r\nB: 2\r\n", 1000, 12},  /* no body */
		{"\r\nbody", 1000, 0},           /* no headers */
		{"A: 1\r\nB: 2\r\n\r\nbody", 5, 5}, /* capped */
		{"", 1000, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_msg(queue_dsn_header_len(cases[i].in, strlen(cases[i].in), cases[i].max) ==
			      cases[i].want, "case %zu", i);
}
END_TEST

START_TEST(bare_lf_headers_become_crlf)
{
	static const char hdrs[] = "X-A: 1\nX-B: 2";
	struct queue_dsn d = {
		.action = DSN_FAILED, .hostname = "h", .qid = "Q", .orig_qid = "O",
		.to = "s@e", .rcpts = two_rcpts, .nrcpts = 1,
		.content = hdrs, .content_len = strlen(hdrs),
	};
	struct buf b;
	buf_init(&b);
	queue_dsn_build(&d, &b);
	buf_append(&b, "", 1);
	ck_assert_ptr_nonnull(strstr((char *)b.data, "\r\n\r\nX-A: 1\r\nX-B: 2\r\n"));
	buf_free(&b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("queue_bounce");
	TCase *tc = tcase_create("bounce");
	tcase_add_test(tc, failed_report_structure);
	tcase_add_test(tc, delayed_report);
	tcase_add_test(tc, header_section);
	tcase_add_test(tc, utf8_report);
	tcase_add_test(tc, full_8bit_body);
	tcase_add_test(tc, bare_lf_headers_become_crlf);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
