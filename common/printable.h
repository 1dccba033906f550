/*
 * printable.h - bytes from outside (clients, remote servers) made safe to
 * show: in log lines, relayctl's text output and terminals (printable(),
 * after Postfix's), and in JSON strings. Nothing a peer sends may forge a
 * line or reach an operator's terminal as a control sequence.
 */
#ifndef RELAYD_PRINTABLE_H
#define RELAYD_PRINTABLE_H

#include "buf.h"

#include <stddef.h>

/* Length of the well-formed UTF-8 sequence at p (1..4), or 0 (also for n 0). */
size_t printable_utf8_len(const unsigned char *p, size_t n);

/*
 * In place: every octet of a control character (C0, DEL, and the C1 range
 * U+0080..U+009F that some terminals obey) or of ill-formed UTF-8 becomes
 * repl, except the ASCII octets listed in keep (e.g. "\n\t" for text
 * that is shown as lines). Well-formed UTF-8 stays. The length does not
 * change. Returns s.
 */
char *printable_except(char *s, char repl, const char *keep);
#define printable(s, repl) printable_except((s), (repl), "")

/*
 * Appends s as a JSON string literal (with its quotes): '"' and '\\'
 * escaped, control characters as \u00XX, each octet of ill-formed UTF-8 as
 * U+FFFD. The result is always valid UTF-8 JSON.
 */
void printable_json(struct buf *out, const char *s);

#endif
