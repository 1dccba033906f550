/*
 * proctitle.c - overwrites the argv area so that ps shows each process's
 * role. The environment that follows argv in memory is copied elsewhere
 * first so the whole area can hold the title.
 */
#include "proctitle.h"
#include "common/xmalloc.h"

#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

extern char **environ;

static char *title_area;
static size_t title_len;
/* The moved environment, kept reachable: valgrind's exit-time
 * __libc_freeres clears environ. "used" because gcc drops a never-read static. */
static char **title_environ __attribute__((used));

void proctitle_init(int argc, char **argv)
{
	if (argc < 1 || argv[0] == NULL)
		return;
	char *start = argv[0];
	char *end = argv[0] + strlen(argv[0]) + 1;
	for (int i = 1; i < argc; i++)
		if (argv[i] == end)
			end = argv[i] + strlen(argv[i]) + 1;
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = xcalloc(n + 1, sizeof(*env));
	for (size_t i = 0; i < n; i++) {
		if (environ[i] == end)
			end = environ[i] + strlen(environ[i]) + 1;
		env[i] = xstrdup(environ[i]);
	}
	environ = title_environ = env;
	/* main keeps using argv after this: point it at copies. */
	for (int i = 0; i < argc; i++)
		argv[i] = xstrdup(argv[i]);
	title_area = start;
	title_len = (size_t)(end - start);
}

void proctitle_set(const char *title)
{
	char comm[16];
	snprintf(comm, sizeof(comm), "%s", title);
	prctl(PR_SET_NAME, comm, 0, 0, 0);
	if (title_area == NULL || title_len < 2)
		return;
	memset(title_area, 0, title_len);
	snprintf(title_area, title_len, "%s", title);
}
