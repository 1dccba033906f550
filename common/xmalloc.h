/*
 * xmalloc.h - allocation that cannot fail: out of memory aborts loudly,
 * so callers never carry a half-handled NULL path.
 */
#ifndef RELAYD_XMALLOC_H
#define RELAYD_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t n);
void *xrealloc(void *p, size_t n);
/* xreallocarray: grows an array, aborting on multiplication overflow. */
void *xreallocarray(void *p, size_t nmemb, size_t n);
char *xstrdup(const char *s);
/* xstrndup: at most n bytes of s, NUL-terminated; s may be NULL when n is 0. */
char *xstrndup(const char *s, size_t n);

#endif
