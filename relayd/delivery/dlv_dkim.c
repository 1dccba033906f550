/*
 * dlv_dkim.c - DKIM-Signature headers for outgoing mail: which keys apply
 * (the From: domain), relaxed canonicalization of headers and body, the
 * signature (rsa-sha256, or ed25519-sha256 which signs the SHA-256 of the
 * data), and the DNS records to publish.
 */
#include "dlv_dkim.h"
#include "common/base64.h"
#include "common/pkey.h"
#include "common/xmalloc.h"

#include <ctype.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct dlv_dkim_key {
	struct cfg_dkim line;     /* copies: the config may go before the key set */
	EVP_PKEY *pkey;
	int ed25519;
};

/* RFC 6376 5.4.1: the headers worth signing, when the message has them. */
static const char *const dkim_headers[] = {
	"from", "reply-to", "subject", "date", "to", "cc", "resent-date", "resent-from",
	"resent-to", "resent-cc", "in-reply-to", "references", "list-id", "list-help",
	"list-unsubscribe", "list-subscribe", "list-post", "list-owner", "list-archive",
	"message-id", "mime-version", "content-type", "content-transfer-encoding",
};

/* One header field of the message: its name and its value, folded as sent. */
struct dkim_field {
	const char *name, *value;
	size_t nlen, vlen;
};

struct dlv_dkim *dlv_dkim_load(const struct config *cfg, char *err, size_t errsz)
{
	struct dlv_dkim *d = xcalloc(1, sizeof(*d));
	d->refs = 1;
	if (cfg->ndkim > 0)
		d->keys = xcalloc(cfg->ndkim, sizeof(*d->keys));
	for (size_t i = 0; i < cfg->ndkim; i++) {
		const struct cfg_file *f = config_file(cfg, cfg->dkim[i].keyfile);
		EVP_PKEY *k = f ? pkey_from_pem(f->data, f->len) : NULL;
		const char *why = f ? pkey_dkim_problem(k) : "not held by this process";
		if (why != NULL) {
			snprintf(err, errsz, "DKIM key for %s: %s: %s", cfg->dkim[i].domain,
				 cfg->dkim[i].keyfile, why);
			EVP_PKEY_free(k);
			dlv_dkim_release(d);
			return NULL;
		}
		struct dlv_dkim_key *key = &d->keys[d->n++];
		key->line.domain = xstrdup(cfg->dkim[i].domain);
		key->line.subdomains = cfg->dkim[i].subdomains;
		key->line.selector = xstrdup(cfg->dkim[i].selector);
		key->line.keyfile = xstrdup(cfg->dkim[i].keyfile);
		key->pkey = k;
		key->ed25519 = EVP_PKEY_id(k) == EVP_PKEY_ED25519;
	}
	return d;
}

static struct dlv_dkim *dlv_dkim_ref(struct dlv_dkim *d)
{
	d->refs++;
	return d;
}

void dlv_dkim_release(struct dlv_dkim *d)
{
	if (d == NULL || --d->refs > 0)
		return;
	for (size_t i = 0; i < d->n; i++) {
		EVP_PKEY_free(d->keys[i].pkey);
		free(d->keys[i].line.domain);
		free(d->keys[i].line.selector);
		free(d->keys[i].line.keyfile);
	}
	free(d->keys);
	free(d);
}

static int dkim_wsp(int c)
{
	return c == ' ' || c == '\t';
}

/* RFC 6376 3.4.2: name lower-cased; value unfolded, runs of WSP as one
 * SP, none at either end; "name:value" CRLF. */
void dlv_dkim_canon_header(const char *name, size_t nlen, const char *value, size_t vlen,
			   struct buf *out)
{
	while (nlen > 0 && dkim_wsp((unsigned char)name[nlen - 1]))
		nlen--;
	for (size_t i = 0; i < nlen; i++) {
		char c = (char)tolower((unsigned char)name[i]);
		buf_append(out, &c, 1);
	}
	buf_append(out, ":", 1);
	int space = 0, any = 0;
	for (size_t i = 0; i < vlen; i++) {
		unsigned char c = (unsigned char)value[i];
		if (c == '\r' || c == '\n' || dkim_wsp(c)) {
			space = 1;
			continue;
		}
		if (space && any)
			buf_append(out, " ", 1);
		space = 0;
		any = 1;
		buf_append(out, &c, 1);
	}
	buf_append(out, "\r\n", 2);
}

/* Relaxed body canonicalization, a line at a time (RFC 6376 3.4.4): WSP
 * runs as one SP, none at line ends; empty lines are held back and dropped
 * if nothing follows them. */
struct dkim_body {
	size_t blank;
	struct buf *out;
};

/* One body line, without its line end; words are copied whole. */
static void dkim_body_line(struct dkim_body *b, const uint8_t *p, size_t n)
{
	size_t i = 0;
	int any = 0;
	while (i < n) {
		size_t ws = i;
		while (i < n && dkim_wsp(p[i]))
			i++;
		if (i == n)
			break; /* WSP at the end of the line goes */
		size_t word = i;
		while (i < n && !dkim_wsp(p[i]))
			i++;
		if (!any) {
			for (; b->blank > 0; b->blank--)
				buf_append(b->out, "\r\n", 2);
			any = 1;
		}
		if (word > ws)
			buf_append(b->out, " ", 1);
		buf_append(b->out, p + word, i - word);
	}
	if (any)
		buf_append(b->out, "\r\n", 2);
	else
		b->blank++;
}

/* Feeds the complete lines of p; returns the length of the incomplete rest. */
static size_t dkim_body_lines(struct dkim_body *b, const uint8_t *p, size_t n)
{
	size_t done = 0;
	for (;;) {
		const uint8_t *nl = memchr(p + done, '\n', n - done);
		if (nl == NULL)
			return n - done;
		size_t len = (size_t)(nl - (p + done));
		if (len > 0 && p[done + len - 1] == '\r')
			len--;
		dkim_body_line(b, p + done, len);
		done = (size_t)(nl - p) + 1;
	}
}

void dlv_dkim_canon_body(const uint8_t *body, size_t len, struct buf *out)
{
	struct dkim_body b = {0, out};
	size_t rest = dkim_body_lines(&b, body, len);
	if (rest > 0)
		dkim_body_line(&b, body + len - rest, rest);
}

/* The header fields of msg, up to the empty line; *body is where the body starts. */
static size_t dkim_fields(const uint8_t *msg, size_t len, struct dkim_field **out,
			  size_t *body)
{
	struct dkim_field *v = NULL;
	size_t n = 0, i = 0;
	while (i < len) {
		if (msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n') {
			i += 2;
			break;
		}
		size_t start = i, colon = 0;
		/* A field ends at a CRLF not followed by WSP. */
		while (i < len) {
			if (msg[i] == ':' && colon == 0)
				colon = i;
			if (msg[i] == '\n' && (i + 1 >= len || !dkim_wsp(msg[i + 1]))) {
				i++;
				break;
			}
			i++;
		}
		if (colon == 0)
			continue; /* not a field: ignored, as verifiers do */
		size_t vend = i;
		while (vend > colon + 1 && (msg[vend - 1] == '\n' || msg[vend - 1] == '\r'))
			vend--;
		v = xreallocarray(v, n + 1, sizeof(*v));
		v[n].name = (const char *)msg + start;
		v[n].nlen = colon - start;
		v[n].value = (const char *)msg + colon + 1;
		v[n].vlen = vend - colon - 1;
		n++;
	}
	*out = v;
	*body = i;
	return n;
}

static int dkim_name_is(const struct dkim_field *f, const char *name)
{
	size_t n = f->nlen;
	while (n > 0 && dkim_wsp((unsigned char)f->name[n - 1]))
		n--;
	return n == strlen(name) && strncasecmp(f->name, name, n) == 0;
}

/* The domain of the (first) From: address, lower-cased, into dst; -1 if none. */
static int dkim_from_domain(const struct dkim_field *fs, size_t n, char *dst, size_t dstsz)
{
	for (size_t i = 0; i < n; i++) {
		if (!dkim_name_is(&fs[i], "from"))
			continue;
		const char *v = fs[i].value, *end = v + fs[i].vlen;
		const char *lt = memchr(v, '<', fs[i].vlen);
		if (lt != NULL) {
			v = lt + 1;
			const char *gt = memchr(v, '>', (size_t)(end - v));
			if (gt == NULL)
				return -1;
			end = gt;
		}
		const char *at = NULL;
		for (const char *p = v; p < end; p++)
			if (*p == '@')
				at = p;
		if (at == NULL)
			return -1;
		size_t k = 0;
		for (const char *p = at + 1; p < end && k + 1 < dstsz; p++) {
			if (isspace((unsigned char)*p) || *p == '>' || *p == ',' || *p == '(')
				break;
			dst[k++] = (char)tolower((unsigned char)*p);
		}
		dst[k] = '\0';
		return k > 0 ? 0 : -1;
	}
	return -1;
}

static int dkim_key_applies(const struct cfg_dkim *line, const char *domain)
{
	size_t dl = strlen(domain), kl = strlen(line->domain);
	if (strcmp(domain, line->domain) == 0)
		return 1;
	return line->subdomains && dl > kl + 1 && domain[dl - kl - 1] == '.' &&
	       strcmp(domain + dl - kl, line->domain) == 0;
}

static void dkim_b64(const void *p, size_t n, struct buf *out)
{
	char *s = xmalloc(BASE64_ENCODED_LEN(n) + 1);
	base64_encode(p, n, s, BASE64_ENCODED_LEN(n) + 1);
	buf_append(out, s, strlen(s));
	free(s);
}

/* h=: each recommended header as often as the message has it; From once more. */
static void dkim_h_tag(const struct dkim_field *fs, size_t n, struct buf *h)
{
	for (size_t k = 0; k < sizeof(dkim_headers) / sizeof(dkim_headers[0]); k++)
		for (size_t i = 0; i < n; i++)
			if (dkim_name_is(&fs[i], dkim_headers[k]))
				buf_appendf(h, "%s%s", buf_avail(h) ? ":" : "", dkim_headers[k]);
	/* Oversigned: a From added on the way breaks the signature. */
	buf_appendf(h, ":from");
}

/* The canonical headers named in h, each instance taken from the bottom up. */
static void dkim_signed_headers(const struct dkim_field *fs, size_t n, const char *h,
				struct buf *out)
{
	size_t *used = xcalloc(n ? n : 1, sizeof(*used));
	char *list = xstrdup(h), *save = NULL;
	for (char *name = strtok_r(list, ":", &save); name; name = strtok_r(NULL, ":", &save)) {
		for (size_t i = n; i-- > 0;) {
			if (used[i] || !dkim_name_is(&fs[i], name))
				continue;
			used[i] = 1;
			dlv_dkim_canon_header(fs[i].name, fs[i].nlen, fs[i].value, fs[i].vlen, out);
			break;
		}
	}
	free(list);
	free(used);
}

static int dkim_digest(const void *p, size_t n, unsigned char md[32])
{
	unsigned int len = 0;
	return EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) == 1 && len == 32 ? 0 : -1;
}

/* The signature over data: RSA signs it with SHA-256; Ed25519 signs its SHA-256. */
static int dkim_signature(const struct dlv_dkim_key *k, const struct buf *data, struct buf *out)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char md[32], sig[1024];
	size_t siglen = sizeof(sig);
	int ok;
	if (ctx == NULL)
		return -1;
	if (k->ed25519)
		ok = dkim_digest(buf_head(data), buf_avail(data), md) == 0 &&
		     EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) == 1 &&
		     EVP_DigestSign(ctx, sig, &siglen, md, sizeof(md)) == 1;
	else
		ok = EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
		     EVP_DigestSign(ctx, sig, &siglen, buf_head(data), buf_avail(data)) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok) {
		ERR_clear_error();
		return -1;
	}
	dkim_b64(sig, siglen, out);
	return 0;
}

/* Appends value to the header in out, breaking it with CRLF+TAB every 72 characters. */
static void dkim_fold(struct buf *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i += 72) {
		buf_append(out, "\r\n\t", 3);
		buf_append(out, s + i, n - i < 72 ? n - i : 72);
	}
}

static int dkim_sign_one(const struct dlv_dkim_key *k, const struct dkim_field *fs, size_t n,
			 const char *bh, int64_t now, struct buf *out)
{
	struct buf h, tags, data, b;
	int rc = -1;
	buf_init(&h);
	buf_init(&tags);
	buf_init(&data);
	buf_init(&b);
	dkim_h_tag(fs, n, &h);
	buf_appendf(&tags, "v=1; a=%s; c=relaxed/relaxed; d=%s; s=%s; t=%lld; h=%.*s; bh=%s; b=",
		    k->ed25519 ? "ed25519-sha256" : "rsa-sha256", k->line.domain,
		    k->line.selector, (long long)now, (int)buf_avail(&h),
		    (const char *)buf_head(&h), bh);
	buf_append(&h, "", 1);
	dkim_signed_headers(fs, n, (const char *)buf_head(&h), &data);
	/* The signature header itself, with b= empty and no final CRLF. */
	dlv_dkim_canon_header("DKIM-Signature", 14, (const char *)buf_head(&tags),
			      buf_avail(&tags), &data);
	data.len -= 2;
	if (dkim_signature(k, &data, &b) < 0)
		goto out;
	/* Folded where verifiers expect it: between tags, and inside b=. */
	buf_appendf(out, "DKIM-Signature: v=1; a=%s; c=relaxed/relaxed; d=%s; s=%s;\r\n\tt=%lld; h=",
		    k->ed25519 ? "ed25519-sha256" : "rsa-sha256", k->line.domain,
		    k->line.selector, (long long)now);
	buf_append(out, buf_head(&h), strlen((const char *)buf_head(&h)));
	buf_appendf(out, ";\r\n\tbh=%s;\r\n\tb=", bh);
	dkim_fold(out, (const char *)buf_head(&b), buf_avail(&b));
	buf_append(out, "\r\n", 2);
	rc = 0;
out:
	buf_free(&h);
	buf_free(&tags);
	buf_free(&data);
	buf_free(&b);
	return rc;
}

/* The most header a message may have to be signed: beyond, it goes unsigned. */
#define DKIM_HEAD_MAX (1024 * 1024)

struct dlv_dkim_stream {
	struct dlv_dkim *d;     /* a reference: a reload does not pull it away */
	struct buf head;        /* the header section, then nothing more */
	int in_body;
	int none;               /* no key for the From: domain: nothing to do */
	char domain[256];
	EVP_MD_CTX *md;         /* SHA-256 of the canonical body */
	struct dkim_body body;
	struct buf canon;       /* canonical lines on their way into md */
	struct buf line;        /* an incomplete body line */
	int failed;
};

struct dlv_dkim_stream *dlv_dkim_stream_new(struct dlv_dkim *d)
{
	if (d == NULL || d->n == 0)
		return NULL;
	struct dlv_dkim_stream *st = xcalloc(1, sizeof(*st));
	st->d = dlv_dkim_ref(d);
	buf_init(&st->head);
	buf_init(&st->canon);
	buf_init(&st->line);
	st->body.out = &st->canon;
	st->md = EVP_MD_CTX_new();
	if (st->md == NULL || EVP_DigestInit_ex(st->md, EVP_sha256(), NULL) != 1)
		st->failed = 1;
	return st;
}

void dlv_dkim_stream_free(struct dlv_dkim_stream *st)
{
	if (st == NULL)
		return;
	EVP_MD_CTX_free(st->md);
	dlv_dkim_release(st->d);
	buf_free(&st->head);
	buf_free(&st->canon);
	buf_free(&st->line);
	free(st);
}

static int dkim_key_for(const struct dlv_dkim *d, const char *domain)
{
	for (size_t i = 0; i < d->n; i++)
		if (dkim_key_applies(&d->keys[i].line, domain))
			return 1;
	return 0;
}

/* The header section is whole: is there a key for its From: domain? */
static void dkim_stream_head_done(struct dlv_dkim_stream *st)
{
	struct dkim_field *fs = NULL;
	size_t body;
	size_t n = dkim_fields(buf_head(&st->head), buf_avail(&st->head), &fs, &body);
	st->none = dkim_from_domain(fs, n, st->domain, sizeof(st->domain)) < 0 ||
		   !dkim_key_for(st->d, st->domain);
	free(fs);
	st->in_body = 1;
}

/* The canonical lines so far into the body hash. */
static void dkim_stream_digest(struct dlv_dkim_stream *st)
{
	if (buf_avail(&st->canon) > 0 &&
	    EVP_DigestUpdate(st->md, buf_head(&st->canon), buf_avail(&st->canon)) != 1)
		st->failed = 1;
	buf_reset(&st->canon);
}

static void dkim_stream_body(struct dlv_dkim_stream *st, const uint8_t *p, size_t n)
{
	if (n == 0)
		return;
	buf_append(&st->line, p, n);
	size_t rest = dkim_body_lines(&st->body, buf_head(&st->line), buf_avail(&st->line));
	buf_consume(&st->line, buf_avail(&st->line) - rest);
	dkim_stream_digest(st);
}

int dlv_dkim_stream_update(struct dlv_dkim_stream *st, const uint8_t *p, size_t n)
{
	if (st->none)
		return 1;
	if (!st->in_body) {
		size_t had = buf_avail(&st->head);
		buf_append(&st->head, p, n);
		/* The empty line may straddle two pieces: look back 3 octets. */
		size_t from = had > 3 ? had - 3 : 0;
		const uint8_t *h = buf_head(&st->head);
		size_t len = buf_avail(&st->head), end = 0;
		for (size_t i = from; i + 4 <= len && end == 0; i++)
			if (memcmp(h + i, "\r\n\r\n", 4) == 0)
				end = i + 4;
		if (end == 0) {
			if (len > DKIM_HEAD_MAX)
				st->none = 1;
			return st->none;
		}
		size_t body_len = len - end;
		st->head.len -= body_len;
		dkim_stream_head_done(st);
		if (st->none)
			return 1;
		/* What came after the empty line is body. */
		dkim_stream_body(st, h + end, body_len);
		return 0;
	}
	dkim_stream_body(st, p, n);
	return 0;
}

int dlv_dkim_stream_finish(struct dlv_dkim_stream *st, int64_t now, struct buf *out, char *err,
			   size_t errsz)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	char bh[BASE64_ENCODED_LEN(32) + 1];
	int made = 0;

	if (!st->in_body && !st->none) {
		/* No empty line: all of it is header, the body is empty. */
		buf_append(&st->head, "\r\n", 2);
		dkim_stream_head_done(st);
	}
	if (st->none)
		return 0;
	if (buf_avail(&st->line) > 0) {
		dkim_body_line(&st->body, buf_head(&st->line), buf_avail(&st->line));
		buf_reset(&st->line);
		dkim_stream_digest(st);
	}
	if (st->failed || EVP_DigestFinal_ex(st->md, md, &mdlen) != 1 || mdlen != 32)
		goto fail;
	base64_encode(md, sizeof(md), bh, sizeof(bh));
	struct dkim_field *fs = NULL;
	size_t body;
	size_t n = dkim_fields(buf_head(&st->head), buf_avail(&st->head), &fs, &body);
	for (size_t i = 0; i < st->d->n; i++) {
		if (!dkim_key_applies(&st->d->keys[i].line, st->domain))
			continue;
		if (dkim_sign_one(&st->d->keys[i], fs, n, bh, now, out) < 0) {
			free(fs);
			goto fail;
		}
		made++;
	}
	free(fs);
	return made;
fail:
	ERR_clear_error();
	snprintf(err, errsz, "DKIM signing failed for %s", st->domain);
	return -1;
}

int dlv_dkim_sign(struct dlv_dkim *d, const uint8_t *msg, size_t len, int64_t now,
		  struct buf *out, char *err, size_t errsz)
{
	struct dlv_dkim_stream *st = dlv_dkim_stream_new(d);
	if (st == NULL)
		return 0;
	int rc = dlv_dkim_stream_update(st, msg, len) < 0
			 ? -1
			 : dlv_dkim_stream_finish(st, now, out, err, errsz);
	dlv_dkim_stream_free(st);
	return rc;
}

int dlv_dkim_records(const struct dlv_dkim *d, const char *domain, struct buf *out)
{
	int found = 0;
	for (size_t i = 0; i < d->n; i++) {
		const struct dlv_dkim_key *k = &d->keys[i];
		if (strcasecmp(k->line.domain, domain) != 0)
			continue;
		unsigned char *der = NULL, raw[32];
		size_t rawlen = sizeof(raw);
		int len;
		buf_appendf(out, "%s._domainkey.%s. IN TXT \"v=DKIM1; k=%s; p=", k->line.selector,
			    k->line.domain, k->ed25519 ? "ed25519" : "rsa");
		/* RSA: the SubjectPublicKeyInfo; Ed25519: the raw 32-byte key (RFC 8463). */
		if (k->ed25519 && EVP_PKEY_get_raw_public_key(k->pkey, raw, &rawlen) == 1)
			dkim_b64(raw, rawlen, out);
		else if (!k->ed25519 && (len = i2d_PUBKEY(k->pkey, &der)) > 0)
			dkim_b64(der, (size_t)len, out);
		OPENSSL_free(der);
		buf_append(out, "\"\n", 2);
		found++;
	}
	return found;
}
