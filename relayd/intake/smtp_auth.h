/*
 * smtp_auth.h - the auth-users table: "user:hash" lines, the hash in
 * crypt(3) form (`openssl passwd -6`), loaded at start and on reload
 * from the file's content as the master hands it over.
 */
#ifndef RELAYD_SMTP_AUTH_H
#define RELAYD_SMTP_AUTH_H

#include <stddef.h>

struct smtp_auth_user {
	char *name;
	char *hash;
};

struct smtp_auth_db {
	struct smtp_auth_user *users;
	size_t n;
	char *dummy; /* made on first need: see smtp_auth_hash */
};

/*
 * Replaces db with the users in text, the content of the file name (for
 * log lines; the master read it). Malformed lines are logged and skipped.
 */
void smtp_auth_load(struct smtp_auth_db *db, const char *name, const char *text);

struct crypt_data;

void smtp_auth_free(struct smtp_auth_db *db);
/*
 * The hash to check user's password against, *known 1; for an unknown
 * user a dummy of the same kind and cost, *known 0, so that the check
 * takes as long and tells nothing.
 */
const char *smtp_auth_hash(struct smtp_auth_db *db, const char *user, int *known);
/* 1 when pass gives hash (crypt_r, compared in constant time). Thread-safe. */
int smtp_auth_match(const char *pass, const char *hash, struct crypt_data *cd);

#endif
