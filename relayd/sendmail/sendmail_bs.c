/*
 * sendmail_bs.c - the SMTP server of `sendmail -bs` without relayd. The
 * command grammar and the replies are intake's (smtp_cmd.c,
 * smtp_reply.c), so a client sees the same answers either way. The caller
 * is a local program, not a network peer: a line may end in a bare LF.
 */
#include "sendmail_bs.h"
#include "common/xmalloc.h"
#include "relayd/intake/smtp_cmd.h"
#include "relayd/intake/smtp_reply.h"

#include <stdlib.h>
#include <string.h>

struct sendmail_bs {
	const struct sendmail_bs_params *p;
	FILE *in, *out;
	int helo;
	int mail;
	char sender[SMTP_PATH_MAX + 1];
	char **rcpts;
	size_t nrcpts;
	int quit;
};

static void bs_reply(struct sendmail_bs *b, enum smtp_reply_id id, const char *arg)
{
	struct buf line;

	buf_init(&line);
	smtp_reply_format(&line, id, arg);
	fwrite(buf_head(&line), 1, buf_avail(&line), b->out);
	fflush(b->out);
	buf_free(&line);
}

static void bs_reset(struct sendmail_bs *b)
{
	for (size_t i = 0; i < b->nrcpts; i++)
		free(b->rcpts[i]);
	free(b->rcpts);
	b->rcpts = NULL;
	b->nrcpts = 0;
	b->mail = 0;
}

/* A line without its line end (CRLF or LF); NULL at the end of input. */
static char *bs_line(struct sendmail_bs *b, char **buf, size_t *cap, size_t *len)
{
	ssize_t n = getline(buf, cap, b->in);
	if (n <= 0)
		return NULL;
	*len = (size_t)n;
	if ((*buf)[*len - 1] == '\n')
		(*buf)[--*len] = '\0';
	if (*len > 0 && (*buf)[*len - 1] == '\r')
		(*buf)[--*len] = '\0';
	return *buf;
}

static void bs_ehlo(struct sendmail_bs *b, const char *args)
{
	(void)args;
	bs_reset(b);
	b->helo = 1;
	fprintf(b->out, "250-%s\r\n250-PIPELINING\r\n250-SIZE %llu\r\n250-8BITMIME\r\n"
			"250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n",
		b->p->hostname, (unsigned long long)b->p->max_size);
	fflush(b->out);
}

static void bs_helo(struct sendmail_bs *b, const char *args)
{
	(void)args;
	bs_reset(b);
	b->helo = 1;
	fprintf(b->out, "250 %s\r\n", b->p->hostname);
	fflush(b->out);
}

static void bs_mail(struct sendmail_bs *b, const char *args)
{
	struct smtp_mail_args m;
	enum smtp_reply_id err;

	if (b->mail) {
		bs_reply(b, SR_NESTED_MAIL, NULL);
		return;
	}
	if ((err = smtp_parse_mail(args, &m)) != SR_NONE) {
		bs_reply(b, err, NULL);
		return;
	}
	if (m.has_size && m.size > b->p->max_size) {
		bs_reply(b, SR_TOO_BIG, NULL);
		return;
	}
	snprintf(b->sender, sizeof(b->sender), "%s", m.path.addr);
	b->mail = 1;
	bs_reply(b, SR_MAIL_OK, NULL);
}

static void bs_rcpt(struct sendmail_bs *b, const char *args)
{
	struct smtp_rcpt_args r;
	enum smtp_reply_id err;

	if (!b->mail) {
		bs_reply(b, SR_NEED_MAIL, NULL);
		return;
	}
	if ((err = smtp_parse_rcpt(args, 1, &r)) != SR_NONE) {
		bs_reply(b, err, NULL);
		return;
	}
	if (b->nrcpts >= b->p->max_rcpts) {
		bs_reply(b, SR_TOO_MANY_RCPTS, NULL);
		return;
	}
	b->rcpts = xreallocarray(b->rcpts, b->nrcpts + 1, sizeof(*b->rcpts));
	b->rcpts[b->nrcpts++] = xstrdup(r.path.addr);
	bs_reply(b, SR_RCPT_OK, NULL);
}

/* The content up to a lone ".", unstuffed, with CRLF line ends. */
static void bs_data(struct sendmail_bs *b, const char *args)
{
	struct buf msg;
	char *line = NULL, id[256];
	size_t cap = 0, len;
	int ended = 0;

	(void)args;
	if (!b->mail || b->nrcpts == 0) {
		bs_reply(b, b->mail ? SR_NEED_RCPT : SR_NEED_MAIL, NULL);
		return;
	}
	bs_reply(b, SR_DATA_GO, NULL);
	buf_init(&msg);
	while (bs_line(b, &line, &cap, &len) != NULL) {
		if (len == 1 && line[0] == '.') {
			ended = 1;
			break;
		}
		const char *l = line[0] == '.' ? line + 1 : line;
		if (buf_avail(&msg) <= b->p->max_size) {
			buf_append(&msg, l, strlen(l));
			buf_append(&msg, "\r\n", 2);
		}
	}
	free(line);
	if (!ended)
		b->quit = 1; /* the input ended inside the message: nothing is taken */
	else if (buf_avail(&msg) > b->p->max_size)
		bs_reply(b, SR_TOO_BIG, NULL);
	else if (b->p->deliver(b->p->arg, b->sender, b->rcpts, b->nrcpts, &msg, id, sizeof(id)) < 0)
		bs_reply(b, SR_QUEUE_DOWN, NULL);
	else
		bs_reply(b, SR_QUEUED, id);
	buf_free(&msg);
	bs_reset(b);
}

static void bs_rset(struct sendmail_bs *b, const char *args)
{
	(void)args;
	bs_reset(b);
	bs_reply(b, SR_OK, NULL);
}

static void bs_noop(struct sendmail_bs *b, const char *args)
{
	(void)args;
	bs_reply(b, SR_OK, NULL);
}

static void bs_quit(struct sendmail_bs *b, const char *args)
{
	(void)args;
	bs_reply(b, SR_QUIT, NULL);
	b->quit = 1;
}

static void bs_vrfy(struct sendmail_bs *b, const char *args)
{
	(void)args;
	bs_reply(b, SR_VRFY, NULL);
}

static const struct {
	const char *name;
	int needs_helo;
	void (*fn)(struct sendmail_bs *b, const char *args);
} bs_verbs[] = {
	{"EHLO", 0, bs_ehlo}, {"HELO", 0, bs_helo}, {"MAIL", 1, bs_mail},
	{"RCPT", 1, bs_rcpt}, {"DATA", 1, bs_data}, {"RSET", 0, bs_rset},
	{"NOOP", 0, bs_noop}, {"QUIT", 0, bs_quit}, {"VRFY", 0, bs_vrfy},
};

void sendmail_bs_serve(FILE *in, FILE *out, const struct sendmail_bs_params *p)
{
	struct sendmail_bs b = {.p = p, .in = in, .out = out};
	char *line = NULL;
	size_t cap = 0, len;

	fprintf(out, "220 %s ESMTP relayd (sendmail -bs)\r\n", p->hostname);
	fflush(out);
	while (!b.quit && bs_line(&b, &line, &cap, &len) != NULL) {
		struct smtp_cmd cmd;
		size_t i, n = sizeof(bs_verbs) / sizeof(bs_verbs[0]);
		if (len + 2 > SMTP_LINE_MAX) {
			bs_reply(&b, SR_LINE_TOO_LONG, NULL);
			continue;
		}
		smtp_cmd_split(line, &cmd);
		for (i = 0; i < n && strcmp(cmd.verb, bs_verbs[i].name) != 0; i++)
			;
		if (i == n)
			bs_reply(&b, SR_UNKNOWN_VERB, NULL);
		else if (bs_verbs[i].needs_helo && !b.helo)
			bs_reply(&b, SR_NEED_HELO, NULL);
		else
			bs_verbs[i].fn(&b, cmd.args);
	}
	free(line);
	bs_reset(&b);
}
