/*
 * config_files.h - the files a configuration names: the config itself, the
 * TLS certificate and key, auth-users, the auth= credentials of next hops,
 * the CA bundle. The master reads each once, as root, when it loads the
 * configuration; a worker is handed only the ones its role needs over its
 * channel and never opens them itself (the OpenSMTPD model: the parent
 * holds the secrets and gives each process its part).
 */
#ifndef RELAYD_CONFIG_FILES_H
#define RELAYD_CONFIG_FILES_H

#include <stddef.h>

/* A config file over this size is refused: it would not be one. */
#define CFG_FILE_MAX (16 * 1024 * 1024)

struct cfg_file {
	char *path;
	char *data; /* NUL-terminated; len does not count the NUL */
	size_t len;
};

struct cfg_files {
	struct cfg_file *v;
	size_t n;
};

const struct cfg_file *cfg_files_find(const struct cfg_files *fs, const char *path);
/* Adds a copy of data under path, replacing a file of the same path. */
const struct cfg_file *cfg_files_add(struct cfg_files *fs, const char *path, const void *data,
				     size_t len);
/* Appends a piece to the file of that path (first: start it anew). */
void cfg_files_append(struct cfg_files *fs, const char *path, int first, const void *data,
		      size_t len);
/* Reads path and adds it; NULL with errno set when it cannot be read. */
const struct cfg_file *cfg_files_read(struct cfg_files *fs, const char *path);
/* Frees every file, wiping the contents first: some are secrets. */
void cfg_files_free(struct cfg_files *fs);

#endif
