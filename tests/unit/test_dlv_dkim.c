/*
 * test_dlv_dkim.c - DKIM signing (relayd/delivery/dlv_dkim.c): relaxed
 * canonicalization against RFC 6376's rules in tables, then real
 * signatures with RSA-2048 and Ed25519 keys made by openssl, each checked
 * by dkimpy (tests/unit/dkim_verify.py) with the records dlv_dkim_records
 * prints: plain, multipart, odd folding and whitespace, long lines,
 * subdomain keys, dual signing; no signature for a foreign From: domain;
 * keys that cannot sign refused at load.
 */
#include "common/config.h"
#include "relayd/delivery/dlv_dkim.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64];

static const struct {
	const char *name, *value, *want;
} header_cases[] = {
	{"Subject", " hello", "subject:hello\r\n"},
	{"SUBJECT ", "  two   words  ", "subject:two words\r\n"},
	{"To", " a@example.org,\r\n\tb@example.org", "to:a@example.org, b@example.org\r\n"},
	{"X", "\t tab\t\tin  \r\n   folds \t", "x:tab in folds\r\n"},
	{"Empty", "", "empty:\r\n"},
};

START_TEST(test_canon_header)
{
	struct buf b;
	buf_init(&b);
	dlv_dkim_canon_header(header_cases[_i].name, strlen(header_cases[_i].name),
			      header_cases[_i].value, strlen(header_cases[_i].value), &b);
	buf_append(&b, "", 1);
	ck_assert_str_eq((char *)buf_head(&b), header_cases[_i].want);
	buf_free(&b);
}
END_TEST

static const struct {
	const char *body, *want;
} body_cases[] = {
	{"", ""},
	{"\r\n", ""},
	{"\r\n\r\n\r\n", ""},
	{"a\r\n", "a\r\n"},
	{"a", "a\r\n"},
	{"a  b \t c\t \r\n", "a b c\r\n"},
	{"  lead\r\n", " lead\r\n"},
	{"a\r\n\r\nb\r\n\r\n\r\n", "a\r\n\r\nb\r\n"},
	{"a\r\n \t \r\nb\r\n", "a\r\n\r\nb\r\n"},
	{"a\r\n\t\r\n", "a\r\n"},
};

START_TEST(test_canon_body)
{
	struct buf b;
	buf_init(&b);
	dlv_dkim_canon_body((const uint8_t *)body_cases[_i].body, strlen(body_cases[_i].body), &b);
	buf_append(&b, "", 1);
	ck_assert_str_eq((char *)buf_head(&b), body_cases[_i].want);
	buf_free(&b);
}
END_TEST

static void run(const char *cmd)
{
	int rc = system(cmd);
	ck_assert_msg(rc == 0, "%s: exit %d", cmd, rc);
}

static void setup(void)
{
	char cmd[512];
	snprintf(dir, sizeof(dir), "/tmp/test_dlv_dkim.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd),
		 "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s/rsa.pem "
		 "2>/dev/null && openssl genpkey -algorithm ed25519 -out %s/ed.pem 2>/dev/null && "
		 "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:512 -out %s/small.pem "
		 "2>/dev/null",
		 dir, dir, dir);
	run(cmd);
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	run(cmd);
}

/*
 * A config with the keys of spec, "DOMAIN SELECTOR FILE;..." (FILE in the
 * test dir), their files read as the master reads them.
 */
static void keys(const char *spec, struct config *cfg)
{
	char *copy = strdup(spec), *save = NULL;
	config_defaults(cfg);
	for (char *k = strtok_r(copy, ";", &save); k; k = strtok_r(NULL, ";", &save)) {
		char domain[128], selector[64], file[64], path[256];
		ck_assert_int_eq(sscanf(k, "%127s %63s %63s", domain, selector, file), 3);
		snprintf(path, sizeof(path), "%s/%s", dir, file);
		struct cfg_dkim *d;
		cfg->dkim = realloc(cfg->dkim, (cfg->ndkim + 1) * sizeof(*cfg->dkim));
		d = &cfg->dkim[cfg->ndkim++];
		d->subdomains = strncmp(domain, "*.", 2) == 0;
		d->domain = strdup(domain + (d->subdomains ? 2 : 0));
		d->selector = strdup(selector);
		d->keyfile = strdup(path);
		cfg_files_read(&cfg->files, path);
	}
	free(copy);
}

/* Signs msg with the keys of conf; dkimpy must verify want signatures. */
static void sign_and_verify(const char *spec, const char *records_domain, const char *msg,
			    int want)
{
	struct config cfg;
	struct buf out, rec;
	char err[256], path[128], rpath[128], cmd[512];

	keys(spec, &cfg);
	struct dlv_dkim *d = dlv_dkim_load(&cfg, err, sizeof(err));
	ck_assert_ptr_nonnull(d);
	buf_init(&out);
	buf_init(&rec);
	ck_assert_int_eq(dlv_dkim_sign(d, (const uint8_t *)msg, strlen(msg), 1767225600, &out,
				       err, sizeof(err)),
			 want);
	/* In pieces of any size, as delivery reads it, the same signature. */
	static const size_t pieces[] = {1, 2, 7, 64, 4096};
	for (size_t k = 0; k < sizeof(pieces) / sizeof(pieces[0]); k++) {
		struct buf again;
		buf_init(&again);
		struct dlv_dkim_stream *st = dlv_dkim_stream_new(d);
		ck_assert_ptr_nonnull(st);
		for (size_t off = 0, len = strlen(msg); off < len; off += pieces[k])
			dlv_dkim_stream_update(st, (const uint8_t *)msg + off,
					       len - off < pieces[k] ? len - off : pieces[k]);
		ck_assert_int_eq(dlv_dkim_stream_finish(st, 1767225600, &again, err, sizeof(err)),
				 want);
		dlv_dkim_stream_free(st);
		ck_assert_uint_eq(buf_avail(&again), buf_avail(&out));
		ck_assert(memcmp(buf_head(&again), buf_head(&out), buf_avail(&out)) == 0);
		buf_free(&again);
	}
	buf_append(&out, msg, strlen(msg));
	ck_assert_int_ge(dlv_dkim_records(d, records_domain, &rec), 1);
	snprintf(path, sizeof(path), "%s/msg", dir);
	snprintf(rpath, sizeof(rpath), "%s/records", dir);
	FILE *f = fopen(path, "w");
	fwrite(buf_head(&out), 1, buf_avail(&out), f);
	fclose(f);
	f = fopen(rpath, "w");
	fwrite(buf_head(&rec), 1, buf_avail(&rec), f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 tests/unit/dkim_verify.py %s %s %d", path,
		 rpath, want);
	run(cmd);
	buf_free(&out);
	buf_free(&rec);
	dlv_dkim_release(d);
	config_free(&cfg);
}

static const char *const messages[] = {
	/* plain */
	"From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: hi\r\n"
	"Date: Thu, 1 Jan 2026 00:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n\r\nHello.\r\n",
	/* multipart, headers folded oddly, whitespace runs */
	"From:   \"Alice A.\"\r\n\t<alice@example.org>\r\nTo: bob@example.net,\r\n  carol@example.net\r\n"
	"Subject:  a   folded\r\n   subject \t\r\nMIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=\"xyz\"\r\n\r\n"
	"--xyz\r\nContent-Type: text/plain\r\n\r\nline  with   spaces \t\r\n\r\n"
	"--xyz\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	"AAECAwQ=\r\n--xyz--\r\n\r\n\r\n",
	/* long lines, no final CRLF, empty lines at the end */
	"From: alice@example.org\r\nSubject: long\r\n\r\n"
	"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
	"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\r\n"
	"\r\n\r\nlast line",
	/* an empty body */
	"From: alice@example.org\r\nSubject: empty\r\n\r\n",
};

START_TEST(test_rsa_verifies)
{
	sign_and_verify("example.org rsa1 rsa.pem", "example.org", messages[_i], 1);
}
END_TEST

START_TEST(test_ed25519_verifies)
{
	sign_and_verify("example.org ed1 ed.pem", "example.org", messages[_i], 1);
}
END_TEST

START_TEST(test_dual_signing)
{
	sign_and_verify("example.org rsa1 rsa.pem;example.org ed1 ed.pem", "example.org",
			messages[0], 2);
}
END_TEST

START_TEST(test_subdomain_key)
{
	const char *msg = "From: printer@lan.example.org\r\nSubject: s\r\n\r\nbody\r\n";
	/* The record is published under the key's domain; d= is that domain. */
	sign_and_verify("*.example.org sub rsa.pem", "example.org", msg, 1);
}
END_TEST

START_TEST(test_foreign_from_not_signed)
{
	char err[256];
	struct config cfg;
	struct buf out;
	static const char *const others[] = {
		"From: x@example.com\r\n\r\nb\r\n",
		"From: x@notexample.org\r\n\r\nb\r\n",
		"Subject: no from\r\n\r\nb\r\n",
		"From: undisclosed\r\n\r\nb\r\n",
	};
	keys("*.example.org s ed.pem", &cfg);
	struct dlv_dkim *d = dlv_dkim_load(&cfg, err, sizeof(err));
	ck_assert_ptr_nonnull(d);
	buf_init(&out);
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
		ck_assert_int_eq(dlv_dkim_sign(d, (const uint8_t *)others[i], strlen(others[i]), 0,
					       &out, err, sizeof(err)),
				 0);
	ck_assert_uint_eq(buf_avail(&out), 0);
	buf_free(&out);
	dlv_dkim_release(d);
	config_free(&cfg);
}
END_TEST

/* Keys that cannot sign are refused when loaded, with the reason. */
static const struct {
	const char *spec, *why;
} bad_keys[] = {
	{"example.org s small.pem", "small.pem: an RSA key under 1024 bits"},
	{"example.org s notakey.pem", "notakey.pem: not a PEM private key"},
	{"example.org s missing.pem", "missing.pem: not held by this process"},
	{"example.org s ed.pem;example.org t small.pem", "an RSA key under 1024 bits"},
};

START_TEST(test_unusable_keys_refused)
{
	char err[512] = "", path[128];
	struct config cfg;
	snprintf(path, sizeof(path), "%s/notakey.pem", dir);
	FILE *f = fopen(path, "w");
	fputs("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n", f);
	fclose(f);
	keys(bad_keys[_i].spec, &cfg);
	ck_assert_ptr_null(dlv_dkim_load(&cfg, err, sizeof(err)));
	ck_assert_msg(strstr(err, bad_keys[_i].why) != NULL, "%s", err);
	config_free(&cfg);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dlv_dkim");
	TCase *tc = tcase_create("canon");
	tcase_add_loop_test(tc, test_canon_header, 0, sizeof(header_cases) / sizeof(header_cases[0]));
	tcase_add_loop_test(tc, test_canon_body, 0, sizeof(body_cases) / sizeof(body_cases[0]));
	suite_add_tcase(s, tc);
	TCase *sig = tcase_create("sign");
	tcase_add_checked_fixture(sig, setup, teardown);
	tcase_set_timeout(sig, 60);
	int nmsg = (int)(sizeof(messages) / sizeof(messages[0]));
	tcase_add_loop_test(sig, test_rsa_verifies, 0, nmsg);
	tcase_add_loop_test(sig, test_ed25519_verifies, 0, nmsg);
	tcase_add_test(sig, test_dual_signing);
	tcase_add_test(sig, test_subdomain_key);
	tcase_add_test(sig, test_foreign_from_not_signed);
	tcase_add_loop_test(sig, test_unusable_keys_refused, 0,
			    sizeof(bad_keys) / sizeof(bad_keys[0]));
	suite_add_tcase(s, sig);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
