/*
 * log.h - logging to stderr (foreground, -d) or syslog, with an optional
 * queue id prefix so that every line about a message starts "QID: ".
 */
#ifndef RELAYD_LOG_H
#define RELAYD_LOG_H

#include <syslog.h>

/* ident: process role ("master", "intake", ...); foreground: stderr. */
void log_init(const char *ident, int foreground, int verbose);
int log_verbose(void);
/* level: a syslog level. qid may be NULL. */
void log_msg(int level, const char *qid, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* An impossible state or a resource we cannot live without: logged, then abort(). */
void fatal(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

#define log_info(...) log_msg(LOG_INFO, NULL, __VA_ARGS__)
#define log_warnx(...) log_msg(LOG_WARNING, NULL, __VA_ARGS__)
#define log_errx(...) log_msg(LOG_ERR, NULL, __VA_ARGS__)
#define log_debug(...) \
	do { if (log_verbose()) log_msg(LOG_DEBUG, NULL, __VA_ARGS__); } while (0)

#endif
