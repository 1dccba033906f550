/*
 * unit_skip.h - a skipped Check test. Check has no "skipped" state: a test
 * that returns early counts as passed. A test that cannot run here calls
 * UNIT_SKIP("why", ...) instead, which prints one line
 *
 *     SKIP: <test name>: <reason>
 *
 * on stdout and returns. tests/run.sh counts each such line as a skip, shows
 * its reason and takes it off the passes Check reported.
 */
#ifndef UNIT_SKIP_H
#define UNIT_SKIP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* fn is the __func__ of a START_TEST body, "<name>_fn". The line goes out in
 * one write(2): Check runs each test in a child, and stdio buffers on a pipe
 * could be lost or interleaved with the parent's. */
static inline void unit_skip_line(const char *fn, const char *fmt, ...)
{
	char line[512];
	size_t n = strlen(fn);
	va_list ap;
	int len;

	if (n > 3 && strcmp(fn + n - 3, "_fn") == 0)
		n -= 3;
	len = snprintf(line, sizeof(line), "SKIP: %.*s: ", (int)n, fn);
	va_start(ap, fmt);
	len += vsnprintf(line + len, sizeof(line) - (size_t)len - 1, fmt, ap);
	va_end(ap);
	if ((size_t)len > sizeof(line) - 2)
		len = (int)sizeof(line) - 2;
	line[len++] = '\n';
	fflush(stdout);
	if (write(STDOUT_FILENO, line, (size_t)len) != len)
		_exit(2); /* an unreported skip would count as a pass */
}

#define UNIT_SKIP(...)                                  \
	do {                                            \
		unit_skip_line(__func__, __VA_ARGS__);  \
		return;                                 \
	} while (0)

#endif
