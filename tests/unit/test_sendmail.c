/*
 * test_sendmail.c - the sendmail command's pure parts: its command line
 * (what callers write, and the historic flags it must swallow), reading
 * the message (bare LF, the lone dot), the header rewriting (-t, Bcc,
 * added From:/Date:/Message-ID:), address lists, the maildrop file
 * format, and the submission dialogue's steps.
 */
#include "relayd/sendmail/maildrop.h"
#include "relayd/sendmail/sendmail_msg.h"
#include "relayd/sendmail/sendmail_opts.h"
#include "relayd/sendmail/submit_dlg.h"
#include "common/config.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAXARGS 32

/* Splits a command line on blanks ("" stands for an empty argument). */
static int split(const char *line, char *copy, char **argv)
{
	int argc = 0;
	strcpy(copy, line);
	for (char *save = NULL, *t = strtok_r(copy, " ", &save); t && argc < MAXARGS - 1;
	     t = strtok_r(NULL, " ", &save))
		argv[argc++] = strcmp(t, "\"\"") == 0 ? t + 2 : t;
	argv[argc] = NULL;
	return argc;
}

static const struct {
	const char *cmd;
	enum sendmail_mode mode;
	int extract, ignore_dots, verbose;
	const char *sender, *fullname, *config;
	const char *rcpts; /* joined with "," */
} opts_good[] = {
	{"sendmail a@x", SENDMAIL_DELIVER, 0, 0, 0, NULL, NULL, NULL, "a@x"},
	{"sendmail -t -i", SENDMAIL_DELIVER, 1, 1, 0, NULL, NULL, NULL, ""},
	{"sendmail -ti", SENDMAIL_DELIVER, 1, 1, 0, NULL, NULL, NULL, ""},
	{"sendmail -oi -t", SENDMAIL_DELIVER, 1, 1, 0, NULL, NULL, NULL, ""},
	{"sendmail -f me@x -F Me a@x b@y", SENDMAIL_DELIVER, 0, 0, 0, "me@x", "Me", NULL, "a@x,b@y"},
	{"sendmail -fme@x a@x", SENDMAIL_DELIVER, 0, 0, 0, "me@x", NULL, NULL, "a@x"},
	{"sendmail -r me@x a@x", SENDMAIL_DELIVER, 0, 0, 0, "me@x", NULL, NULL, "a@x"},
	{"sendmail -f \"\" a@x", SENDMAIL_DELIVER, 0, 0, 0, "", NULL, NULL, "a@x"},
	{"sendmail -C /etc/r.conf -v a@x", SENDMAIL_DELIVER, 0, 0, 1, NULL, NULL, "/etc/r.conf", "a@x"},
	{"sendmail -bs", SENDMAIL_SMTP, 0, 0, 0, NULL, NULL, NULL, ""},
	{"sendmail -b s", SENDMAIL_SMTP, 0, 0, 0, NULL, NULL, NULL, ""},
	{"sendmail -bp", SENDMAIL_LIST, 0, 0, 0, NULL, NULL, NULL, ""},
	{"sendmail -bm a@x", SENDMAIL_DELIVER, 0, 0, 0, NULL, NULL, NULL, "a@x"},
	{"sendmail -bi", SENDMAIL_NOOP, 0, 0, 0, NULL, NULL, NULL, ""},
	{"sendmail -q", SENDMAIL_FLUSH, 0, 0, 0, NULL, NULL, NULL, ""},
	{"sendmail -q30m", SENDMAIL_FLUSH, 0, 0, 0, NULL, NULL, NULL, ""},
	{"/usr/bin/mailq", SENDMAIL_LIST, 0, 0, 0, NULL, NULL, NULL, ""},
	{"newaliases", SENDMAIL_NOOP, 0, 0, 0, NULL, NULL, NULL, ""},
	/* Ignored, as Postfix's sendmail does: -o options, historic flags and their values. */
	{"sendmail -oem -odb -oQ/x -om -m -n -U -G -I a@x", SENDMAIL_DELIVER, 0, 0, 0, NULL, NULL,
	 NULL, "a@x"},
	{"sendmail -B 8BITMIME -X /log -L tag -h 3 -O a=b a@x",
	 SENDMAIL_DELIVER, 0, 0, 0, NULL, NULL, NULL, "a@x"},
	{"sendmail -o i a@x", SENDMAIL_DELIVER, 0, 1, 0, NULL, NULL, NULL, "a@x"},
	/* The recipients start at the first non-option or after "--". */
	{"sendmail -i -- -weird@x b@y", SENDMAIL_DELIVER, 0, 1, 0, NULL, NULL, NULL, "-weird@x,b@y"},
	{"sendmail a@x -t", SENDMAIL_DELIVER, 0, 0, 0, NULL, NULL, NULL, "a@x,-t"},
	{"sendmail - a@x", SENDMAIL_DELIVER, 0, 0, 0, NULL, NULL, NULL, "-,a@x"},
};

START_TEST(test_opts_good)
{
	char copy[256], *argv[MAXARGS], joined[256] = "";
	struct sendmail_opts o;
	char err[128];
	int argc = split(opts_good[_i].cmd, copy, argv);

	ck_assert_msg(sendmail_opts_parse(argc, argv, &o, err, sizeof(err)) == 0, "%s: %s",
		      opts_good[_i].cmd, err);
	ck_assert_int_eq(o.mode, opts_good[_i].mode);
	ck_assert_int_eq(o.extract, opts_good[_i].extract);
	ck_assert_int_eq(o.ignore_dots, opts_good[_i].ignore_dots);
	ck_assert_int_eq(o.verbose, opts_good[_i].verbose);
	ck_assert_pstr_eq(o.sender, opts_good[_i].sender);
	ck_assert_pstr_eq(o.fullname, opts_good[_i].fullname);
	ck_assert_str_eq(o.config, opts_good[_i].config ? opts_good[_i].config : CONFIG_DEFAULT_PATH);
	for (size_t i = 0; i < o.nrcpts; i++)
		snprintf(joined + strlen(joined), sizeof(joined) - strlen(joined), "%s%s",
			 i ? "," : "", o.rcpts[i]);
	ck_assert_str_eq(joined, opts_good[_i].rcpts);
}
END_TEST

static const struct {
	const char *cmd;
	const char *err;
} opts_bad[] = {
	{"sendmail -f", "option -f needs a value"},
	{"sendmail -t -C", "option -C needs a value"},
	{"sendmail -F", "option -F needs a value"},
	{"sendmail -bd", "-bd is not supported (-bm, -bs, -bp, -bi)"},
	{"sendmail -bv a@x", "-bv is not supported (-bm, -bs, -bp, -bi)"},
	{"sendmail -b", "option -b needs a value"},
	{"sendmail -N sometimes a@x", "-N sometimes: never, or success, failure, delay separated by commas"},
	{"sendmail -N never,delay a@x", "-N never,delay: never, or success, failure, delay separated by commas"},
	{"sendmail -N delay,delay a@x", "-N delay,delay: never, or success, failure, delay separated by commas"},
	{"sendmail -R body a@x", "-R body: full or hdrs"},
	{"sendmail -V", "option -V needs a value"},
};

/* -N, -R, -V (Postfix's sendmail): the DSN parameters submit_dlg sends. */
static const struct {
	const char *cmd;
	const char *mail, *rcpt;
} opts_dsn[] = {
	{"sendmail a@x", "", ""},
	{"sendmail -N never a@x", "", " NOTIFY=NEVER"},
	{"sendmail -N success,Failure,DELAY a@x", "", " NOTIFY=SUCCESS,FAILURE,DELAY"},
	{"sendmail -R hdrs a@x", " RET=HDRS", ""},
	{"sendmail -V id+1=2 -R full a@x", " RET=FULL ENVID=id+2B1+3D2", ""},
	{"sendmail -Rfull -Vx -N delay a@x", " RET=FULL ENVID=x", " NOTIFY=DELAY"},
};

START_TEST(test_opts_dsn)
{
	char copy[256], *argv[MAXARGS];
	struct sendmail_opts o;
	char err[128] = "";
	int argc = split(opts_dsn[_i].cmd, copy, argv);

	ck_assert_msg(sendmail_opts_parse(argc, argv, &o, err, sizeof(err)) == 0, "%s: %s",
		      opts_dsn[_i].cmd, err);
	ck_assert_str_eq(o.dsn.mail, opts_dsn[_i].mail);
	ck_assert_str_eq(o.dsn.rcpt, opts_dsn[_i].rcpt);
	ck_assert_uint_eq(o.nrcpts, 1);
}
END_TEST

START_TEST(test_opts_bad)
{
	char copy[256], *argv[MAXARGS];
	struct sendmail_opts o;
	char err[128] = "";
	int argc = split(opts_bad[_i].cmd, copy, argv);

	ck_assert_int_eq(sendmail_opts_parse(argc, argv, &o, err, sizeof(err)), -1);
	ck_assert_str_eq(err, opts_bad[_i].err);
}
END_TEST

static const struct {
	const char *in;
	int ignore_dots;
	uint64_t max;
	enum sendmail_read rc;
	const char *out;
} reads[] = {
	{"a\nb\n", 0, 100, SENDMAIL_READ_OK, "a\r\nb\r\n"},
	{"a\r\nb\r\n", 0, 100, SENDMAIL_READ_OK, "a\r\nb\r\n"},
	{"a\nb", 0, 100, SENDMAIL_READ_OK, "a\r\nb\r\n"},           /* no last line end */
	{"a\r\n\nb\n", 0, 100, SENDMAIL_READ_OK, "a\r\n\r\nb\r\n"},  /* mixed */
	{"a\n.\nb\n", 0, 100, SENDMAIL_READ_OK, "a\r\n"},             /* the dot ends it */
	{"a\n.\r\nb\n", 0, 100, SENDMAIL_READ_OK, "a\r\n"},
	{"a\n.\nb\n", 1, 100, SENDMAIL_READ_OK, "a\r\n.\r\nb\r\n"},   /* -i */
	{"a\n..\n.x\n", 0, 100, SENDMAIL_READ_OK, "a\r\n..\r\n.x\r\n"}, /* only a lone dot */
	{"", 0, 100, SENDMAIL_READ_OK, ""},
	{"12345\n", 0, 7, SENDMAIL_READ_OK, "12345\r\n"},
	{"123456\n", 0, 7, SENDMAIL_READ_TOO_BIG, NULL},
};

START_TEST(test_read)
{
	FILE *f = fmemopen((void *)reads[_i].in, strlen(reads[_i].in), "r");
	struct buf out;

	if (reads[_i].in[0] == '\0') {
		if (f)
			fclose(f);
		f = fopen("/dev/null", "r");
	}
	ck_assert_ptr_nonnull(f);
	buf_init(&out);
	ck_assert_int_eq(sendmail_msg_read(f, reads[_i].ignore_dots, reads[_i].max, &out),
			 reads[_i].rc);
	if (reads[_i].out) {
		buf_append(&out, "", 1);
		ck_assert_str_eq((const char *)buf_head(&out), reads[_i].out);
	}
	buf_free(&out);
	fclose(f);
}
END_TEST

static const struct {
	const char *in;
	const char *out;
} addr_lists[] = {
	{"a@x", "a@x"},
	{"a@x, b@y", "a@x,b@y"},
	{"Alice <a@x>, \"Doe, John\" <jd@y>", "a@x,jd@y"},
	{"a@x (Alice, the boss), b@y", "a@x,b@y"},
	{"(comment (nested)) a@x", "a@x"},
	{"team: a@x, b@y;, c@z", "a@x,b@y,c@z"},
	{"undisclosed-recipients:;", ""},
	{"root", "root@host.test"},
	{"Root <root>", "root@host.test"},
	{"<@relay.example:u@x>", "u@x"},
	{"\"quoted local\"@x", "\"quoted local\"@x"},
	{"a@x,\r\n b@y", "a@x,b@y"},
	{"", ""},
	{" , ,", ""},
};

static void join(char **v, size_t n, char *dst, size_t dstsz)
{
	dst[0] = '\0';
	for (size_t i = 0; i < n; i++)
		snprintf(dst + strlen(dst), dstsz - strlen(dst), "%s%s", i ? "," : "", v[i]);
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

START_TEST(test_addr_list)
{
	char **v = NULL, got[256];
	size_t n = 0;

	sendmail_addr_list(addr_lists[_i].in, "host.test", &v, &n);
	join(v, n, got, sizeof(got));
	ck_assert_msg(strcmp(got, addr_lists[_i].out) == 0, "%s -> %s", addr_lists[_i].in, got);
	free_list(v, n);
}
END_TEST

#define ADDED "Date: D\r\nMessage-ID: <M>\r\n"

static const struct {
	const char *in;
	int extract;
	const char *fullname;
	const char *out;
	const char *rcpts;
} headers[] = {
	/* Missing From:, Date:, Message-ID: are added at the end of the header section. */
	{"Subject: s\r\n\r\nbody\r\n", 0, NULL,
	 "Subject: s\r\nFrom: me@host.test\r\n" ADDED "\r\nbody\r\n", ""},
	{"Subject: s\r\n\r\nbody\r\n", 0, "Me Myself",
	 "Subject: s\r\nFrom: Me Myself <me@host.test>\r\n" ADDED "\r\nbody\r\n", ""},
	{"Subject: s\r\n\r\n", 0, "Doe, J. \"Jr\"",
	 "Subject: s\r\nFrom: \"Doe, J. \\\"Jr\\\"\" <me@host.test>\r\n" ADDED "\r\n", ""},
	/* Present ones stay, once, whatever their case. */
	{"FROM: x@y\r\ndate: d\r\nmessage-id: <m>\r\n\r\nb\r\n", 0, "Me", "FROM: x@y\r\ndate: d\r\nmessage-id: <m>\r\n\r\nb\r\n", ""},
	/* Bcc: goes, continuation lines and all; -t takes its addresses. */
	{"To: a@x\r\nBcc: h@x,\r\n  i@x\r\nSubject: s\r\n\r\nb\r\n", 1, NULL,
	 "To: a@x\r\nSubject: s\r\nFrom: me@host.test\r\n" ADDED "\r\nb\r\n", "a@x,h@x,i@x"},
	{"To: a@x\r\nBCC: h@x\r\n\r\nb\r\n", 0, NULL,
	 "To: a@x\r\nFrom: me@host.test\r\n" ADDED "\r\nb\r\n", ""},
	{"To: A <a@x>, b\r\nCc: c@y\r\n\r\n", 1, NULL,
	 "To: A <a@x>, b\r\nCc: c@y\r\nFrom: me@host.test\r\n" ADDED "\r\n", "a@x,b@host.test,c@y"},
	/* Being resent: only the Resent- fields name the recipients. */
	{"To: a@x\r\nResent-To: r@x\r\nResent-Bcc: rb@x\r\n\r\n", 1, NULL,
	 "To: a@x\r\nResent-To: r@x\r\nFrom: me@host.test\r\n" ADDED "\r\n", "r@x,rb@x"},
	/* No header at all: the body starts after the added ones and an empty line. */
	{"just text\r\n", 0, NULL, "From: me@host.test\r\n" ADDED "\r\njust text\r\n", ""},
	{"", 0, NULL, "From: me@host.test\r\n" ADDED "\r\n", ""},
	/* A line that is no header ends the section; an empty line is put before it. */
	{"Subject: s\r\nnot a header\r\nTo: a@x\r\n", 1, NULL,
	 "Subject: s\r\nFrom: me@host.test\r\n" ADDED "\r\nnot a header\r\nTo: a@x\r\n", ""},
	/* An mbox From_ line is dropped. */
	{"From me Mon Jan  1 00:00:00 2024\r\nSubject: s\r\n\r\nb\r\n", 0, NULL,
	 "Subject: s\r\nFrom: me@host.test\r\n" ADDED "\r\nb\r\n", ""},
	/* Headers only, the last without its line end. */
	{"Subject: s", 0, NULL, "Subject: s\r\nFrom: me@host.test\r\n" ADDED "\r\n", ""},
	/* Obsolete "Name :" syntax counts as the field. */
	{"Date : d\r\n\r\n", 0, NULL, "Date : d\r\nFrom: me@host.test\r\nMessage-ID: <M>\r\n\r\n", ""},
};

START_TEST(test_headers)
{
	struct sendmail_hdr_params p = {
		.sender = "me@host.test", .fullname = headers[_i].fullname,
		.hostname = "host.test", .date = "D", .msgid = "<M>", .extract = headers[_i].extract,
	};
	struct buf out;
	char **v = NULL, got[256];
	size_t n = 0;

	buf_init(&out);
	sendmail_msg_headers(headers[_i].in, strlen(headers[_i].in), &p, &out, &v, &n);
	buf_append(&out, "", 1);
	ck_assert_str_eq((const char *)buf_head(&out), headers[_i].out);
	join(v, n, got, sizeof(got));
	ck_assert_str_eq(got, headers[_i].rcpts);
	free_list(v, n);
	buf_free(&out);
}
END_TEST

START_TEST(test_null_sender_from)
{
	struct sendmail_hdr_params p = {
		.sender = "", .hostname = "host.test", .date = "D", .msgid = "<M>",
	};
	struct buf out;
	char **v = NULL;
	size_t n = 0;

	buf_init(&out);
	sendmail_msg_headers("\r\nb\r\n", 5, &p, &out, &v, &n);
	buf_append(&out, "", 1);
	ck_assert_str_eq((const char *)buf_head(&out), "From: MAILER-DAEMON@host.test\r\n" ADDED "\r\nb\r\n");
	buf_free(&out);
}
END_TEST

static const struct {
	const char *data;
	int ok;
	const char *sender;
	size_t nrcpts;
	const char *content;
} drops[] = {
	{"relayd-maildrop 1\nfrom a@x\nto b@y\nto c@z\n\nSubject: s\r\n\r\nx\r\n", 1, "a@x", 2,
	 "Subject: s\r\n\r\nx\r\n"},
	{"relayd-maildrop 1\nfrom \nto b@y\n\n", 1, "", 1, ""},
	{"relayd-maildrop 2\nfrom a@x\nto b@y\n\nx", 0, NULL, 0, NULL},
	{"relayd-maildrop 1\nto b@y\n\nx", 0, NULL, 0, NULL},
	{"relayd-maildrop 1\nfrom a@x\n\nx", 0, NULL, 0, NULL},
	{"relayd-maildrop 1\nfrom a@x\nto \n\nx", 0, NULL, 0, NULL},
	{"relayd-maildrop 1\nfrom a@x\nto b@y\r\n\nx", 0, NULL, 0, NULL}, /* control character */
	{"relayd-maildrop 1\nfrom a@x\nto b@y", 0, NULL, 0, NULL},         /* cut short */
	{"relayd-maildrop 1\nfrom a@x\nbcc b@y\n\nx", 0, NULL, 0, NULL},
	{"relayd-maildrop 1\nfrom a@x\nto b@y\nmail-params RET=HDRS\nrcpt-params NOTIFY=NEVER\n\nx", 1,
	 "a@x", 1, "x"},
	{"relayd-maildrop 1\nfrom a@x\nto b@y\nmail-params RET=HDRS\nmail-params RET=FULL\n\nx", 0,
	 NULL, 0, NULL}, /* twice */
	{"relayd-maildrop 1\nfrom a@x\nto b@y\nrcpt-params NOTIFY=SUCCESS,FAILURE,DELAY,NEVER,SUCCESS,FAILURE,DELAY\n\nx",
	 0, NULL, 0, NULL}, /* longer than any real one */
	{"", 0, NULL, 0, NULL},
};

START_TEST(test_maildrop_parse)
{
	struct maildrop_msg m;
	int rc = maildrop_parse(drops[_i].data, strlen(drops[_i].data), &m);

	ck_assert_int_eq(rc, drops[_i].ok ? 0 : -1);
	if (!drops[_i].ok)
		return;
	ck_assert_str_eq(m.sender, drops[_i].sender);
	ck_assert_uint_eq(m.nrcpts, drops[_i].nrcpts);
	ck_assert_uint_eq(m.len, strlen(drops[_i].content));
	ck_assert(memcmp(m.content, drops[_i].content, m.len) == 0);
	maildrop_msg_free(&m);
}
END_TEST

START_TEST(test_maildrop_roundtrip)
{
	char dir[] = "/tmp/test_sendmail.XXXXXX", name[256], path[512], data[512];
	char *rcpts[] = {"b@y", "c@z"};
	struct maildrop_msg m;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(dfd, 0);
	struct submit_dsn dsn = {" RET=HDRS ENVID=e+2B1", " NOTIFY=SUCCESS"};
	ck_assert_int_eq(maildrop_write(dfd, "a@x", rcpts, 2, &dsn, "hi\r\n", 4, name, sizeof(name)), 0);
	ck_assert(strncmp(name, MAILDROP_MSG_PREFIX, strlen(MAILDROP_MSG_PREFIX)) == 0);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	struct stat sb;
	ck_assert_int_eq(fstat(fd, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 07777, 0640);
	ssize_t n = read(fd, data, sizeof(data));
	ck_assert_int_gt(n, 0);
	close(fd);
	ck_assert_int_eq(maildrop_parse(data, (size_t)n, &m), 0);
	ck_assert_str_eq(m.sender, "a@x");
	ck_assert_uint_eq(m.nrcpts, 2);
	ck_assert_str_eq(m.rcpts[1], "c@z");
	ck_assert_str_eq(m.dsn.mail, dsn.mail);
	ck_assert_str_eq(m.dsn.rcpt, dsn.rcpt);
	ck_assert_uint_eq(m.len, 4);
	maildrop_msg_free(&m);
	unlink(path);
	close(dfd);
	ck_assert_int_eq(rmdir(dir), 0); /* nothing else (no "t." file) was left */
}
END_TEST

/* Feeds a reply line to the dialogue; returns its result, the commands in out. */
static enum submit_result say(struct submit_dlg *d, const char *line, struct buf *out)
{
	struct smtpc_reply r;
	struct buf in;

	smtpc_reply_init(&r);
	buf_init(&in);
	buf_append(&in, line, strlen(line));
	buf_append(&in, "\r\n", 2);
	ck_assert_int_eq(smtpc_reply_read(&r, &in), SMTPC_DONE);
	buf_free(&in);
	buf_reset(out);
	enum submit_result res = submit_dlg_reply(d, &r, out);
	buf_append(out, "", 1);
	return res;
}

START_TEST(test_dialogue_ok)
{
	char *rcpts[] = {"b@y", "c@z"};
	struct submit_dlg d;
	struct buf out;

	buf_init(&out);
	submit_dlg_init(&d, "a@x", rcpts, 2, NULL, "x", 1);
	ck_assert_int_eq(say(&d, "220 relay ESMTP", &out), SUBMIT_MORE);
	ck_assert_str_eq((char *)buf_head(&out),
			 "EHLO localhost\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@z>\r\n");
	ck_assert_int_eq(say(&d, "250 relay", &out), SUBMIT_MORE);
	ck_assert_int_eq(say(&d, "250 2.1.0 Ok", &out), SUBMIT_MORE);
	ck_assert_int_eq(say(&d, "250 2.1.5 Ok", &out), SUBMIT_MORE);
	ck_assert_str_eq((char *)buf_head(&out), "");
	ck_assert_int_eq(say(&d, "250 2.1.5 Ok", &out), SUBMIT_MORE);
	ck_assert_str_eq((char *)buf_head(&out), "DATA\r\n");
	ck_assert_int_eq(say(&d, "354 go", &out), SUBMIT_CONTENT);
	ck_assert_int_eq(say(&d, "250 2.0.0 Ok: queued as ABC123", &out), SUBMIT_OK);
	ck_assert_str_eq((char *)buf_head(&out), "QUIT\r\n");
	ck_assert_str_eq(d.qid, "ABC123");
	ck_assert_int_eq(d.code, 0);
	buf_free(&out);
}
END_TEST

START_TEST(test_dialogue_refused_rcpt_sends_no_data)
{
	char *rcpts[] = {"b@y", "c@z"};
	struct submit_dlg d;
	struct buf out;

	buf_init(&out);
	submit_dlg_init(&d, "a@x", rcpts, 2, NULL, "x", 1);
	say(&d, "220 relay", &out);
	say(&d, "250 relay", &out);
	say(&d, "250 2.1.0 Ok", &out);
	ck_assert_int_eq(say(&d, "452 4.5.3 Too many recipients", &out), SUBMIT_MORE);
	ck_assert_int_eq(say(&d, "550 5.1.1 no", &out), SUBMIT_FAILED);
	ck_assert_str_eq((char *)buf_head(&out), "QUIT\r\n");
	/* The first refusal is the one reported. */
	ck_assert_int_eq(d.code, 452);
	ck_assert_str_eq(d.enh, "4.5.3");
	ck_assert_str_eq(d.text, "RCPT TO:<b@y>: 452 4.5.3 Too many recipients");
	buf_free(&out);
}
END_TEST

START_TEST(test_dialogue_end_refused_and_lost)
{
	char *rcpts[] = {"b@y"};
	struct submit_dlg d;
	struct buf out;

	buf_init(&out);
	submit_dlg_init(&d, "", rcpts, 1, NULL, "x", 1);
	say(&d, "220 relay", &out);
	say(&d, "250 relay", &out);
	say(&d, "250 2.1.0 Ok", &out);
	say(&d, "250 2.1.5 Ok", &out);
	say(&d, "354 go", &out);
	ck_assert_int_eq(say(&d, "554 5.6.0 bare LF", &out), SUBMIT_FAILED);
	ck_assert_int_eq(d.code, 554);
	ck_assert_str_eq(d.enh, "5.6.0");

	submit_dlg_init(&d, "", rcpts, 1, NULL, "x", 1);
	ck_assert_int_eq(say(&d, "421 4.7.0 busy", &out), SUBMIT_FAILED);
	ck_assert_int_eq(d.code, 421);
	submit_dlg_init(&d, "", rcpts, 1, NULL, "x", 1);
	submit_dlg_lost(&d, "connection refused");
	ck_assert_int_eq(d.code, 451);
	ck_assert_str_eq(d.text, "connection refused");
	buf_free(&out);
}
END_TEST

START_TEST(test_dialogue_mail_parameters)
{
	char *ascii[] = {"b@y"}, *utf8[] = {"b\xc3\xb6@y"};
	struct submit_dlg d;
	struct buf out;

	buf_init(&out);
	submit_dlg_init(&d, "a@x", ascii, 1, NULL, "caf\xc3\xa9", 5);
	say(&d, "220 relay", &out);
	ck_assert_str_eq((char *)buf_head(&out),
			 "EHLO localhost\r\nMAIL FROM:<a@x> BODY=8BITMIME\r\nRCPT TO:<b@y>\r\n");
	submit_dlg_init(&d, "a@x", utf8, 1, NULL, "x", 1);
	say(&d, "220 relay", &out);
	ck_assert_str_eq((char *)buf_head(&out), "EHLO localhost\r\nMAIL FROM:<a@x> BODY=8BITMIME "
						 "SMTPUTF8\r\nRCPT TO:<b\xc3\xb6@y>\r\n");
	struct submit_dsn dsn = {" RET=HDRS", " NOTIFY=NEVER"};
	char *two[] = {"b@y", "c@y"};
	buf_reset(&out);
	submit_dlg_init(&d, "a@x", two, 2, &dsn, "x", 1);
	say(&d, "220 relay", &out);
	ck_assert_str_eq((char *)buf_head(&out), "EHLO localhost\r\nMAIL FROM:<a@x> RET=HDRS\r\n"
						 "RCPT TO:<b@y> NOTIFY=NEVER\r\nRCPT TO:<c@y> NOTIFY=NEVER\r\n");
	buf_free(&out);
}
END_TEST

#define LOOP(tc, fn, table) tcase_add_loop_test(tc, fn, 0, sizeof(table) / sizeof(table[0]))

int main(void)
{
	Suite *s = suite_create("sendmail");
	TCase *tc = tcase_create("sendmail");
	LOOP(tc, test_opts_good, opts_good);
	LOOP(tc, test_opts_bad, opts_bad);
	LOOP(tc, test_opts_dsn, opts_dsn);
	LOOP(tc, test_read, reads);
	LOOP(tc, test_addr_list, addr_lists);
	LOOP(tc, test_headers, headers);
	tcase_add_test(tc, test_null_sender_from);
	LOOP(tc, test_maildrop_parse, drops);
	tcase_add_test(tc, test_maildrop_roundtrip);
	tcase_add_test(tc, test_dialogue_ok);
	tcase_add_test(tc, test_dialogue_refused_rcpt_sends_no_data);
	tcase_add_test(tc, test_dialogue_end_refused_and_lost);
	tcase_add_test(tc, test_dialogue_mail_parameters);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
