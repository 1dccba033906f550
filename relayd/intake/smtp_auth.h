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
};

/*
 * Replaces db with the users in text, the content of the file name (for
 * log lines; the master read it). Malformed lines are logged and skipped.
 */
void smtp_auth_load(struct smtp_auth_db *db, const char *name, const char *text);
void smtp_auth_free(struct smtp_auth_db *db);
/* 1 when user exists and pass matches its hash. */
int smtp_auth_check(const struct smtp_auth_db *db, const char *user, const char *pass);

#endif
