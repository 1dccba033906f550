/*
 * config_files.c - the contents of the files a configuration names, read
 * once and kept in memory so that they can be handed to the workers.
 */
#include "config_files.h"
#include "xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const struct cfg_file *cfg_files_find(const struct cfg_files *fs, const char *path)
{
	for (size_t i = 0; i < fs->n; i++)
		if (strcmp(fs->v[i].path, path) == 0)
			return &fs->v[i];
	return NULL;
}

static void cfg_file_wipe(struct cfg_file *f)
{
	explicit_bzero(f->data, f->len);
	free(f->data);
	free(f->path);
}

const struct cfg_file *cfg_files_add(struct cfg_files *fs, const char *path, const void *data,
				     size_t len)
{
	struct cfg_file *f = (struct cfg_file *)cfg_files_find(fs, path);
	if (f != NULL)
		cfg_file_wipe(f);
	else {
		fs->v = xreallocarray(fs->v, fs->n + 1, sizeof(*fs->v));
		f = &fs->v[fs->n++];
	}
	f->path = xstrdup(path);
	f->data = xmalloc(len + 1);
	memcpy(f->data, data, len);
	f->data[len] = '\0';
	f->len = len;
	return f;
}

void cfg_files_append(struct cfg_files *fs, const char *path, int first, const void *data,
		      size_t len)
{
	struct cfg_file *f = (struct cfg_file *)cfg_files_find(fs, path);
	if (f == NULL || first) {
		cfg_files_add(fs, path, data, len);
		return;
	}
	/* Grown by copy, so that no stale secret is left behind by realloc. */
	char *n = xmalloc(f->len + len + 1);
	memcpy(n, f->data, f->len);
	memcpy(n + f->len, data, len);
	n[f->len + len] = '\0';
	explicit_bzero(f->data, f->len);
	free(f->data);
	f->data = n;
	f->len += len;
}

const struct cfg_file *cfg_files_read(struct cfg_files *fs, const char *path)
{
	struct stat sb;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	int e = fstat(fd, &sb) < 0 ? errno
		: !S_ISREG(sb.st_mode) ? EINVAL
		: sb.st_size > CFG_FILE_MAX ? EFBIG : 0;
	if (e != 0) {
		close(fd);
		errno = e;
		return NULL;
	}
	size_t cap = (size_t)sb.st_size + 1, len = 0;
	char *data = xmalloc(cap);
	for (;;) {
		if (len == cap)
			break;
		ssize_t r = read(fd, data + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				break;
			e = errno;
			explicit_bzero(data, len);
			free(data);
			close(fd);
			errno = e;
			return NULL;
		}
		len += (size_t)r;
	}
	close(fd);
	/* The file grew while read: it is not the file that was checked. */
	if (len == cap) {
		explicit_bzero(data, len);
		free(data);
		errno = EFBIG;
		return NULL;
	}
	const struct cfg_file *f = cfg_files_add(fs, path, data, len);
	explicit_bzero(data, len);
	free(data);
	return f;
}

void cfg_files_free(struct cfg_files *fs)
{
	for (size_t i = 0; i < fs->n; i++)
		cfg_file_wipe(&fs->v[i]);
	free(fs->v);
	fs->v = NULL;
	fs->n = 0;
}
