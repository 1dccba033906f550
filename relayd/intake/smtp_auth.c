/*
 * smtp_auth.c - checking AUTH credentials against crypt(3) hashes.
 */
#include "smtp_auth.h"
#include "common/log.h"
#include "common/xmalloc.h"

#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void smtp_auth_free(struct smtp_auth_db *db)
{
	for (size_t i = 0; i < db->n; i++) {
		free(db->users[i].name);
		free(db->users[i].hash);
	}
	free(db->users);
	db->users = NULL;
	db->n = 0;
}

void smtp_auth_load(struct smtp_auth_db *db, const char *name, const char *text)
{
	unsigned lineno = 0;
	char *copy = xstrdup(text), *save = NULL;

	smtp_auth_free(db);
	for (char *line = copy; *line; line = save) {
		size_t n = strcspn(line, "\n");
		save = line + n + (line[n] != '\0');
		line[n] = '\0';
		lineno++;
		line[strcspn(line, "\r")] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		char *colon = strchr(line, ':');
		if (colon == NULL || colon == line || colon[1] == '\0') {
			log_warnx("auth-users %s:%u: expected user:hash", name, lineno);
			continue;
		}
		*colon = '\0';
		db->users = xreallocarray(db->users, db->n + 1, sizeof(*db->users));
		db->users[db->n].name = xstrdup(line);
		db->users[db->n].hash = xstrdup(colon + 1);
		db->n++;
	}
	explicit_bzero(copy, strlen(text));
	free(copy);
	log_debug("auth-users %s: %zu users", name, db->n);
}

/* Compares without an early exit, so timing says nothing about the hash. */
static int same_string(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	unsigned char diff = na != nb;
	for (size_t i = 0; i < na && i < nb; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

int smtp_auth_check(const struct smtp_auth_db *db, const char *user, const char *pass)
{
	/* crypt_data is large; intake is single-threaded. */
	static struct crypt_data cd;

	for (size_t i = 0; i < db->n; i++) {
		if (strcmp(db->users[i].name, user) != 0)
			continue;
		memset(&cd, 0, sizeof(cd));
		const char *h = crypt_r(pass, db->users[i].hash, &cd);
		/* libxcrypt returns "*0"-style failure tokens, never the hash. */
		return h != NULL && h[0] != '*' && same_string(h, db->users[i].hash);
	}
	return 0;
}
