/*
 * maildrop.c - the drop file: written by sendmail, parsed by intake's
 * pickup. The parser trusts nothing: any local user can put any bytes in
 * a file, so an address with a control character or a file without the
 * magic line is malformed; the content is checked later by intake's DATA
 * reader like any SMTP client's.
 */
#include "maildrop.h"
#include "common/buf.h"
#include "common/xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static int maildrop_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int maildrop_write(int dirfd, const char *sender, char *const *rcpts, size_t nrcpts,
		   const struct submit_dsn *dsn, const void *content, size_t len, char *name,
		   size_t namesz)
{
	char tmp[128];
	uint64_t rnd = 0;
	struct timeval tv;
	struct buf env;
	int e;

	if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		rnd ^= (uint64_t)getpid() << 32;
	gettimeofday(&tv, NULL);
	snprintf(tmp, sizeof(tmp), MAILDROP_TMP_PREFIX "%d.%016llx", (int)getpid(),
		 (unsigned long long)rnd);
	/* The time first: the pickup takes the oldest first. */
	if ((size_t)snprintf(name, namesz, MAILDROP_MSG_PREFIX "%010lld.%06ld.%016llx",
			     (long long)tv.tv_sec, (long)tv.tv_usec,
			     (unsigned long long)rnd) >= namesz) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	buf_init(&env);
	buf_appendf(&env, "%s\nfrom %s\n", MAILDROP_MAGIC, sender);
	for (size_t i = 0; i < nrcpts; i++)
		buf_appendf(&env, "to %s\n", rcpts[i]);
	/* The parameters' text without its leading blank. */
	if (dsn != NULL && dsn->mail[0] != '\0')
		buf_appendf(&env, "mail-params %s\n", dsn->mail + 1);
	if (dsn != NULL && dsn->rcpt[0] != '\0')
		buf_appendf(&env, "rcpt-params %s\n", dsn->rcpt + 1);
	buf_append(&env, "\n", 1);
	int rc = maildrop_write_all(fd, buf_head(&env), buf_avail(&env));
	buf_free(&env);
	/* Readable by the directory's group (the workers'), by nobody else. */
	if (rc < 0 || maildrop_write_all(fd, content, len) < 0 || fsync(fd) < 0 ||
	    fchmod(fd, 0640) < 0)
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (renameat(dirfd, tmp, dirfd, name) < 0)
		goto fail;
	/* A caller who may not read the directory holds it O_PATH (EBADF):
	 * then only the file's own fsync vouches for it, as with postdrop. */
	if (fsync(dirfd) < 0 && errno != EBADF) {
		unlinkat(dirfd, name, 0);
		return -1;
	}
	return 0;
fail:
	e = errno;
	if (fd >= 0)
		close(fd);
	unlinkat(dirfd, tmp, 0);
	errno = e;
	return -1;
}

/* An envelope line "KEY VALUE": the value, or NULL. */
static char *maildrop_field(const char *line, size_t n, const char *key)
{
	size_t k = strlen(key);
	if (n < k + 1 || memcmp(line, key, k) != 0 || line[k] != ' ' || n - k - 1 > MAILDROP_ADDR_MAX)
		return NULL;
	for (size_t i = k + 1; i < n; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			return NULL;
	char *v = xmalloc(n - k);
	memcpy(v, line + k + 1, n - k - 1);
	v[n - k - 1] = '\0';
	return v;
}

int maildrop_parse(const char *data, size_t len, struct maildrop_msg *m)
{
	const char *p = data, *end = data + len;
	size_t lineno = 0;

	memset(m, 0, sizeof(*m));
	for (;;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			goto bad;
		size_t n = (size_t)(nl - p);
		lineno++;
		if (n == 0)
			break;
		char *v;
		if (lineno == 1) {
			if (n != strlen(MAILDROP_MAGIC) || memcmp(p, MAILDROP_MAGIC, n) != 0)
				goto bad;
		} else if (lineno == 2) {
			if ((v = maildrop_field(p, n, "from")) == NULL)
				goto bad;
			m->sender = v;
		} else if ((v = maildrop_field(p, n, "mail-params")) != NULL ||
			   (v = maildrop_field(p, n, "rcpt-params")) != NULL) {
			/* " " + the text, as submit_dlg sends it; bounded by its buffer. */
			int mail = p[0] == 'm';
			char *dst = mail ? m->dsn.mail : m->dsn.rcpt;
			size_t dstsz = mail ? sizeof(m->dsn.mail) : sizeof(m->dsn.rcpt);
			int fits = dst[0] == '\0' && v[0] != '\0' && strlen(v) + 2 <= dstsz;
			if (fits)
				snprintf(dst, dstsz, " %s", v);
			free(v);
			if (!fits)
				goto bad;
		} else {
			if ((v = maildrop_field(p, n, "to")) == NULL || v[0] == '\0') {
				free(v);
				goto bad;
			}
			m->rcpts = xreallocarray(m->rcpts, m->nrcpts + 1, sizeof(*m->rcpts));
			m->rcpts[m->nrcpts++] = v;
		}
		p = nl + 1;
	}
	if (m->sender == NULL || m->nrcpts == 0)
		goto bad;
	m->content = p + 1;
	m->len = (size_t)(end - p - 1);
	return 0;
bad:
	maildrop_msg_free(m);
	return -1;
}

void maildrop_msg_free(struct maildrop_msg *m)
{
	free(m->sender);
	for (size_t i = 0; i < m->nrcpts; i++)
		free(m->rcpts[i]);
	free(m->rcpts);
	memset(m, 0, sizeof(*m));
}
