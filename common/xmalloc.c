/*
 * xmalloc.c - allocation wrappers that abort on exhaustion.
 */
#include "xmalloc.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL)
		fatal("out of memory (%zu bytes)", n);
	return p;
}

void *xcalloc(size_t nmemb, size_t n)
{
	void *p = calloc(nmemb ? nmemb : 1, n ? n : 1);
	if (p == NULL)
		fatal("out of memory (%zu x %zu bytes)", nmemb, n);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (q == NULL)
		fatal("out of memory (%zu bytes)", n);
	return q;
}

void *xreallocarray(void *p, size_t nmemb, size_t n)
{
	if (n != 0 && nmemb > (size_t)-1 / n)
		fatal("allocation overflow (%zu x %zu)", nmemb, n);
	return xrealloc(p, nmemb * n);
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	/* s is read only when n > 0: (NULL, 0), e.g. an empty payload, gives "". */
	size_t len = n > 0 ? strnlen(s, n) : 0;
	char *d = xmalloc(len + 1);
	if (len > 0)
		memcpy(d, s, len);
	d[len] = '\0';
	return d;
}
