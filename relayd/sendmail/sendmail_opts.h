/*
 * sendmail_opts.h - the sendmail command line, as programs that call
 * /usr/sbin/sendmail write it (cron, mailx, PHP's mail(), git
 * send-email): the options relayd acts on, and, as Postfix's sendmail
 * does, every other -o option and historic flag accepted and ignored.
 */
#ifndef RELAYD_SENDMAIL_OPTS_H
#define RELAYD_SENDMAIL_OPTS_H

#include "relayd/sendmail/submit_dlg.h"

#include <stddef.h>

enum sendmail_mode {
	SENDMAIL_DELIVER, /* -bm (default): a message on stdin */
	SENDMAIL_SMTP,    /* -bs: SMTP on stdin/stdout */
	SENDMAIL_LIST,    /* -bp, or called as mailq: relayctl queue */
	SENDMAIL_FLUSH,   /* -q: relayctl flush */
	SENDMAIL_NOOP,    /* -bi, or called as newaliases: nothing to do */
};

struct sendmail_opts {
	const char *config;      /* -C, default CONFIG_DEFAULT_PATH */
	enum sendmail_mode mode;
	int extract;             /* -t: recipients from To:, Cc:, Bcc: */
	int ignore_dots;         /* -i, -oi: a lone "." is an ordinary line */
	const char *sender;      /* -f or -r; NULL: the caller's user@hostname */
	const char *fullname;    /* -F */
	int verbose;             /* -v */
	struct submit_dsn dsn;   /* -N NOTIFY, -R RET, -V ENVID (Postfix's) */
	char **rcpts;            /* the arguments after the options */
	size_t nrcpts;
};

/*
 * Parses argv (argv[0] decides mailq/newaliases). 0, or -1 with the
 * reason in err for a usage message.
 */
int sendmail_opts_parse(int argc, char **argv, struct sendmail_opts *o, char *err,
			size_t errsz);

#endif
