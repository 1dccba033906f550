/*
 * smtp_auth.c - the auth-users table and checking a password against a
 * crypt(3) hash (done off the event loop, by intake_hasher.c).
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
	free(db->dummy);
	db->users = NULL;
	db->dummy = NULL;
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

int smtp_auth_match(const char *pass, const char *hash, struct crypt_data *cd)
{
	const char *h = crypt_r(pass, hash, cd);
	/* libxcrypt returns "*0"-style failure tokens, never the hash. */
	return h != NULL && h[0] != '*' && same_string(h, hash);
}

/*
 * A hash nobody's password gives, of the same kind and cost as the first
 * usable user's: crypt(3) with a whole hash as setting keeps its method,
 * rounds and salt.
 */
static char *smtp_auth_make_dummy(const struct smtp_auth_db *db)
{
	static const char fallback[] = "$6$relayd.dummy.sal$LnvLaTAVb1334RR5cj.ilv86O0NeuLfoXA"
				       "hG4sIjlwvn345EM4brLW5HWg/HYlUnRLWyJyu5CQz8uW8qV0rLq1";
	struct crypt_data *cd = xcalloc(1, sizeof(*cd));
	char *dummy = NULL;

	for (size_t i = 0; i < db->n && dummy == NULL; i++) {
		const char *h = crypt_r("relayd: no such user", db->users[i].hash, cd);
		if (h != NULL && h[0] != '*')
			dummy = xstrdup(h);
	}
	free(cd);
	return dummy != NULL ? dummy : xstrdup(fallback);
}

const char *smtp_auth_hash(struct smtp_auth_db *db, const char *user, int *known)
{
	for (size_t i = 0; i < db->n; i++)
		if (strcmp(db->users[i].name, user) == 0) {
			*known = 1;
			return db->users[i].hash;
		}
	*known = 0;
	if (db->dummy == NULL)
		db->dummy = smtp_auth_make_dummy(db);
	return db->dummy;
}
