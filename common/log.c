/*
 * log.c - one logging path for every process, and fatal(). Lines go to
 * stderr with the role as prefix when in the foreground, to syslog
 * (facility mail) otherwise. Control characters and ill-formed UTF-8 in a
 * message are replaced.
 */
#include "log.h"
#include "printable.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char log_ident[32] = "relayd";
static int log_foreground = 1;
static int log_is_verbose;

static void log_set_ident(const char *ident)
{
	snprintf(log_ident, sizeof(log_ident), "%s", ident);
}

void log_init(const char *ident, int foreground, int verbose)
{
	log_foreground = foreground;
	log_is_verbose = verbose;
	log_set_ident(ident);
	if (!foreground)
		openlog("relayd", LOG_PID | LOG_NDELAY, LOG_MAIL);
}

int log_verbose(void)
{
	return log_is_verbose;
}

void log_msg(int level, const char *qid, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/*
	 * Here rather than at each call site (as Postfix's msg_output does):
	 * client names, AUTH identities, addresses and remote replies can
	 * never forge a line or drive the reader's terminal.
	 */
	printable(msg, '?');

	if (!log_foreground) {
		if (qid)
			syslog(level, "%s: %s: %s", log_ident, qid, msg);
		else
			syslog(level, "%s: %s", log_ident, msg);
		return;
	}
	/* One write per line keeps lines from several processes whole. */
	char line[2200];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line), "%02d:%02d:%02d.%03ld relayd[%d] %s: %s%s%s\n",
			 tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L, (int)getpid(),
			 log_ident, qid ? qid : "", qid ? ": " : "", msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	ssize_t w = write(STDERR_FILENO, line, (size_t)n);
	(void)w;
}

void fatal(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_msg(LOG_CRIT, NULL, "fatal: %s", msg);
	abort();
}
