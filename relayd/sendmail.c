/*
 * sendmail.c - the sendmail command of relayd (installed as
 * relayd-sendmail, to be /usr/sbin/sendmail). It runs as the caller, with
 * no privilege: the message goes in over STATE_DIR/submit.sock, where
 * intake learns the caller's uid from the kernel; when relayd is not
 * running, or cannot take mail now, it is written to STATE_DIR/maildrop,
 * which intake picks up when it can (see relayd/sendmail/maildrop.h).
 * Exit status per sysexits.h: EX_TEMPFAIL only when even the drop failed.
 */
#include "common/config.h"
#include "common/ctl.h"
#include "common/ctl_client.h"
#include "common/qid.h"
#include "common/worker.h"
#include "common/xmalloc.h"
#include "relayd/delivery/smtpc_reply.h"
#include "relayd/delivery/smtpc_stuff.h"
#include "relayd/sendmail/maildrop.h"
#include "relayd/sendmail/sendmail_bs.h"
#include "relayd/sendmail/sendmail_msg.h"
#include "relayd/sendmail/sendmail_opts.h"
#include "relayd/sendmail/submit_dlg.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

/* How long relayd may take to answer one step of the dialogue. */
#define SENDMAIL_TIMEOUT_S 300

/* A permanent refusal, by its enhanced code, as an exit status. */
static const struct {
	const char *enh_prefix;
	int status;
} sendmail_exits[] = {
	{"5.1.", EX_NOUSER},
	{"5.7.", EX_NOPERM},
	{"5.3.4", EX_DATAERR},
	{"5.6.", EX_DATAERR},
	{"5.5.", EX_PROTOCOL},
	{"", EX_UNAVAILABLE},
};

static int sendmail_exit_for(const char *enh)
{
	size_t i = 0;
	while (strncmp(enh, sendmail_exits[i].enh_prefix, strlen(sendmail_exits[i].enh_prefix)) != 0)
		i++;
	return sendmail_exits[i].status;
}

static void usage(const char *why)
{
	fprintf(stderr, "sendmail: %s\nusage: sendmail [-C FILE] [-t] [-i|-oi] [-f SENDER] "
			"[-F FULLNAME] [-bs] [-bp] [-q] [-v] [ADDRESS...]\n", why);
}

/* The config's state-dir, hostname and limits; no file it names is read. */
static int sendmail_config(const char *path, struct config *cfg)
{
	struct cfg_files given = {0};

	if (cfg_files_read(&given, path) == NULL) {
		fprintf(stderr, "sendmail: %s: %s\n", path, strerror(errno));
		config_defaults(cfg);
		return -1;
	}
	FILE *devnull = fopen("/dev/null", "w");
	config_load_given(path, &given, cfg, devnull ? devnull : stderr);
	if (devnull)
		fclose(devnull);
	cfg_files_free(&given);
	return 0;
}

static int sendmail_connect(const struct config *cfg)
{
	struct timeval tv = {SENDMAIL_TIMEOUT_S, 0};
	int fd = worker_state_connect(cfg, SUBMIT_SOCK, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

static int sendmail_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The dialogue on submit.sock; the outcome is in d. */
static void sendmail_submit(const struct config *cfg, struct submit_dlg *d, const struct buf *msg)
{
	struct smtpc_reply r;
	struct buf in, out;
	char tmp[4096];
	int fd = sendmail_connect(cfg);

	if (fd < 0) {
		snprintf(tmp, sizeof(tmp), "cannot reach relayd: %s", strerror(errno));
		submit_dlg_lost(d, tmp);
		return;
	}
	buf_init(&in);
	buf_init(&out);
	smtpc_reply_init(&r);
	for (;;) {
		enum smtpc_parse pr = smtpc_reply_read(&r, &in);
		if (pr == SMTPC_BAD) {
			submit_dlg_lost(d, "relayd's reply is malformed");
			break;
		}
		if (pr == SMTPC_MORE) {
			ssize_t n = read(fd, tmp, sizeof(tmp));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				submit_dlg_lost(d, n == 0 ? "relayd closed the connection"
							  : "no answer from relayd");
				break;
			}
			buf_append(&in, tmp, (size_t)n);
			continue;
		}
		enum submit_result res = submit_dlg_reply(d, &r, &out);
		smtpc_reply_init(&r);
		if (res == SUBMIT_CONTENT) {
			struct smtpc_stuff st;
			smtpc_stuff_init(&st);
			smtpc_stuff(&st, buf_head(msg), buf_avail(msg), &out);
			smtpc_stuff_end(&st, &out);
		}
		int wr = sendmail_write_all(fd, buf_head(&out), buf_avail(&out));
		buf_reset(&out);
		if (res == SUBMIT_OK || res == SUBMIT_FAILED)
			break;
		if (wr < 0) {
			submit_dlg_lost(d, "relayd closed the connection");
			break;
		}
	}
	buf_free(&in);
	buf_free(&out);
	close(fd);
}

/*
 * The message into STATE_DIR/maildrop, its file's name into name. 0, or
 * -1 with the reason printed.
 */
static int sendmail_drop(const struct config *cfg, const char *sender, char **rcpts,
			 size_t nrcpts, const struct buf *msg, char *name, size_t namesz)
{
	char path[4096];

	worker_state_path(cfg, MAILDROP_DIR, path, sizeof(path));
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	/* Write-only for us: O_PATH would do, but fsync needs a real descriptor. */
	if (dfd < 0 && errno == EACCES)
		dfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || maildrop_write(dfd, sender, rcpts, nrcpts, buf_head(msg), buf_avail(msg),
				      name, namesz) < 0) {
		fprintf(stderr, "sendmail: cannot queue the message in %s: %s\n", path,
			strerror(errno));
		if (dfd >= 0)
			close(dfd);
		return -1;
	}
	close(dfd);
	return 0;
}

static int sendmail_bs_drop(void *arg, const char *sender, char **rcpts, size_t nrcpts,
			    const struct buf *msg, char *id, size_t idsz)
{
	return sendmail_drop(arg, sender, rcpts, nrcpts, msg, id, idsz);
}

/*
 * -bs: SMTP between the caller (stdin/stdout) and intake, as the caller.
 * Lines that end in a bare LF are passed on with CRLF. Without relayd, our
 * own small server takes the messages into the drop directory.
 */
static int sendmail_smtp(struct config *cfg)
{
	char ibuf[4096], obuf[2 * sizeof(ibuf)];
	int fd = sendmail_connect(cfg);
	int last_cr = 0, in_open = 1;

	if (fd < 0) {
		struct sendmail_bs_params p = {
			.hostname = cfg->hostname, .max_size = cfg->max_message_size,
			.max_rcpts = cfg->max_recipients, .deliver = sendmail_bs_drop, .arg = cfg,
		};
		sendmail_bs_serve(stdin, stdout, &p);
		return EX_OK;
	}
	struct pollfd pf[2] = {{.fd = 0, .events = POLLIN}, {.fd = fd, .events = POLLIN}};
	for (;;) {
		pf[0].fd = in_open ? 0 : -1;
		if (poll(pf, 2, SENDMAIL_TIMEOUT_S * 1000) <= 0)
			break;
		if (pf[1].revents) {
			ssize_t n = read(fd, ibuf, sizeof(ibuf));
			if (n <= 0 || sendmail_write_all(1, ibuf, (size_t)n) < 0)
				break;
		}
		if (in_open && pf[0].revents) {
			ssize_t n = read(0, ibuf, sizeof(ibuf));
			if (n <= 0) {
				in_open = 0;
				shutdown(fd, SHUT_WR);
				continue;
			}
			size_t o = 0;
			for (ssize_t i = 0; i < n; i++) {
				if (ibuf[i] == '\n' && !last_cr)
					obuf[o++] = '\r';
				obuf[o++] = ibuf[i];
				last_cr = ibuf[i] == '\r';
			}
			if (sendmail_write_all(fd, obuf, o) < 0)
				break;
		}
	}
	close(fd);
	return EX_OK;
}

static int sendmail_ctl(const struct sendmail_opts *o, const char *cmd)
{
	char *argv[] = {(char *)cmd, NULL};
	return ctl_client_run("sendmail", o->config, 1, argv) == CTL_EXIT_OK ? EX_OK : EX_UNAVAILABLE;
}

static int sendmail_deliver(const struct sendmail_opts *o, const struct config *cfg)
{
	struct passwd *pw = getpwuid(getuid());
	char user[64], date[64], msgid[512], *sender;
	struct buf raw, msg;
	char **rcpts = NULL;
	size_t nrcpts = 0;
	int status;

	if (pw != NULL)
		snprintf(user, sizeof(user), "%s", pw->pw_name);
	else
		snprintf(user, sizeof(user), "uid%u", (unsigned)getuid());
	if (o->sender != NULL) {
		/* -f '<a@b>' and -f '<>' as well as -f a@b. */
		size_t n = strlen(o->sender);
		int angle = n >= 2 && o->sender[0] == '<' && o->sender[n - 1] == '>';
		char *bare = angle ? xstrndup(o->sender + 1, n - 2) : xstrdup(o->sender);
		sender = sendmail_qualify(bare, cfg->hostname);
		free(bare);
	} else
		sender = sendmail_qualify(user, cfg->hostname);
	const char *fullname = o->fullname;
	char gecos[256] = "";
	if (fullname == NULL && pw != NULL && pw->pw_gecos != NULL) {
		snprintf(gecos, sizeof(gecos), "%.*s", (int)strcspn(pw->pw_gecos, ","), pw->pw_gecos);
		fullname = gecos;
	}

	buf_init(&raw);
	buf_init(&msg);
	switch (sendmail_msg_read(stdin, o->ignore_dots, cfg->max_message_size, &raw)) {
	case SENDMAIL_READ_TOO_BIG:
		fprintf(stderr, "sendmail: message larger than max-message-size (%llu octets)\n",
			(unsigned long long)cfg->max_message_size);
		status = EX_DATAERR;
		goto out;
	case SENDMAIL_READ_ERROR:
		fprintf(stderr, "sendmail: reading the message: %s\n", strerror(errno));
		status = EX_IOERR;
		goto out;
	case SENDMAIL_READ_OK:
		break;
	}
	for (size_t i = 0; i < o->nrcpts; i++)
		sendmail_addr_list(o->rcpts[i], cfg->hostname, &rcpts, &nrcpts);
	uint64_t rnd = 0;
	if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		rnd = (uint64_t)getpid();
	qid_date(time(NULL), date, sizeof(date));
	snprintf(msgid, sizeof(msgid), "<%lld.%d.%016llx@%s>", (long long)time(NULL), (int)getpid(),
		 (unsigned long long)rnd, cfg->hostname);
	struct sendmail_hdr_params hp = {
		.sender = sender, .fullname = fullname, .hostname = cfg->hostname,
		.date = date, .msgid = msgid, .extract = o->extract,
	};
	sendmail_msg_headers((const char *)buf_head(&raw), buf_avail(&raw), &hp, &msg, &rcpts,
			     &nrcpts);
	if (nrcpts == 0) {
		usage(o->extract ? "no recipients in To:, Cc: or Bcc:" : "no recipients given");
		status = EX_USAGE;
		goto out;
	}
	/* relayd would take the first max-recipients and refuse the rest, now and from the drop. */
	if (nrcpts > cfg->max_recipients) {
		fprintf(stderr, "sendmail: %zu recipients; relayd takes at most %u (max-recipients)\n",
			nrcpts, cfg->max_recipients);
		status = EX_DATAERR;
		goto out;
	}

	struct submit_dlg d;
	submit_dlg_init(&d, sender, rcpts, nrcpts, buf_head(&msg), buf_avail(&msg));
	sendmail_submit(cfg, &d, &msg);
	if (d.code == 0) {
		if (o->verbose)
			printf("sendmail: queued as %s\n", d.qid);
		status = EX_OK;
	} else if (d.code >= 500) {
		fprintf(stderr, "sendmail: message refused: %s\n", d.text);
		status = sendmail_exit_for(d.enh);
	} else {
		char name[256];
		if (o->verbose)
			printf("sendmail: relayd did not take the message now: %s\n", d.text);
		status = sendmail_drop(cfg, sender, rcpts, nrcpts, &msg, name, sizeof(name)) < 0
				 ? EX_TEMPFAIL : EX_OK;
		if (status == EX_OK && o->verbose)
			printf("sendmail: relayd will take the message from %s/%s\n", MAILDROP_DIR, name);
	}
out:
	for (size_t i = 0; i < nrcpts; i++)
		free(rcpts[i]);
	free(rcpts);
	free(sender);
	buf_free(&raw);
	buf_free(&msg);
	return status;
}

int main(int argc, char **argv)
{
	struct sendmail_opts o;
	struct config cfg;
	char err[256];
	int status;

	signal(SIGPIPE, SIG_IGN);
	if (sendmail_opts_parse(argc, argv, &o, err, sizeof(err)) < 0) {
		usage(err);
		return EX_USAGE;
	}
	switch (o.mode) {
	case SENDMAIL_NOOP:
		return EX_OK;
	case SENDMAIL_LIST:
		return sendmail_ctl(&o, "queue");
	case SENDMAIL_FLUSH:
		return sendmail_ctl(&o, "flush");
	default:
		break;
	}
	if (sendmail_config(o.config, &cfg) < 0) {
		config_free(&cfg);
		return EX_CONFIG;
	}
	status = o.mode == SENDMAIL_SMTP ? sendmail_smtp(&cfg) : sendmail_deliver(&o, &cfg);
	fflush(stdout);
	config_free(&cfg);
	return status;
}
