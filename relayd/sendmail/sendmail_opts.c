/*
 * sendmail_opts.c - sendmail's options. Options may be bundled (-ti) and
 * take their value attached or as the next argument (-fme, -f me); the
 * first argument that is not an option, or "--", starts the recipients.
 */
#include "sendmail_opts.h"
#include "common/config.h"
#include "common/xtext.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Historic options that take a value: the value is skipped with them. */
static const char sendmail_valued[] = "BCFLNORVXfhpr";

static const struct {
	const char *name;
	enum sendmail_mode mode;
} sendmail_bmodes[] = {
	{"m", SENDMAIL_DELIVER},
	{"s", SENDMAIL_SMTP},
	{"p", SENDMAIL_LIST},
	{"i", SENDMAIL_NOOP},
};

static const struct {
	const char *name;
	enum sendmail_mode mode;
} sendmail_aliases[] = {
	{"mailq", SENDMAIL_LIST},
	{"newaliases", SENDMAIL_NOOP},
};

static int sendmail_bmode(const char *v, struct sendmail_opts *o, char *err, size_t errsz)
{
	for (size_t i = 0; i < sizeof(sendmail_bmodes) / sizeof(sendmail_bmodes[0]); i++) {
		if (strcmp(v, sendmail_bmodes[i].name) == 0) {
			o->mode = sendmail_bmodes[i].mode;
			return 0;
		}
	}
	snprintf(err, errsz, "-b%s is not supported (-bm, -bs, -bp, -bi)", v);
	return -1;
}

/* -N never | a list of success, failure, delay (Postfix's sendmail). */
static int sendmail_notify(const char *v, struct sendmail_opts *o, char *err, size_t errsz)
{
	static const char *const words[] = {"never", "success", "failure", "delay"};
	char list[40] = "";
	size_t n = 0;
	unsigned seen = 0;

	for (const char *p = v;; p++) {
		size_t k = strcspn(p, ","), i;
		for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
			if (strlen(words[i]) == k && strncasecmp(p, words[i], k) == 0)
				break;
		if (i == sizeof(words) / sizeof(words[0]) || (seen & (1u << i)))
			goto bad;
		seen |= 1u << i;
		if (n > 0)
			list[n++] = ',';
		for (size_t c = 0; c < k; c++)
			list[n++] = (char)toupper((unsigned char)p[c]);
		list[n] = '\0';
		p += k;
		if (*p == '\0')
			break;
	}
	/* NEVER stands alone (RFC 3461 4.1). */
	if ((seen & 1u) && seen != 1u)
		goto bad;
	snprintf(o->dsn.rcpt, sizeof(o->dsn.rcpt), " NOTIFY=%s", list);
	return 0;
bad:
	snprintf(err, errsz, "-N %s: never, or success, failure, delay separated by commas", v);
	return -1;
}

/* -R full|hdrs and -V envid (RFC 3461 4.3, 4.4) into the MAIL parameters. */
static int sendmail_ret_envid(char ch, const char *v, struct sendmail_opts *o, char *err,
			      size_t errsz)
{
	char ret[8] = "", envid[3 * 100 + 1] = "";
	char *sp = strstr(o->dsn.mail, " ENVID="), *rp = strstr(o->dsn.mail, " RET=");

	if (ch == 'R') {
		if (strcasecmp(v, "full") != 0 && strcasecmp(v, "hdrs") != 0) {
			snprintf(err, errsz, "-R %s: full or hdrs", v);
			return -1;
		}
		for (size_t i = 0; v[i] != '\0'; i++)
			ret[i] = (char)toupper((unsigned char)v[i]);
		if (sp != NULL)
			snprintf(envid, sizeof(envid), "%s", sp + 7);
	} else {
		if (v[0] == '\0' || strlen(v) > 100 || xtext_encode(v, envid, sizeof(envid)) < 0) {
			snprintf(err, errsz, "-V: an envelope id of 1 to 100 characters");
			return -1;
		}
		for (const char *c = v; *c != '\0'; c++)
			if (*c < ' ' || *c > '~') {
				snprintf(err, errsz, "-V: printable ASCII only");
				return -1;
			}
		if (rp != NULL)
			snprintf(ret, sizeof(ret), "%.*s", (int)strcspn(rp + 5, " "), rp + 5);
	}
	snprintf(o->dsn.mail, sizeof(o->dsn.mail), "%s%s%s%s", ret[0] ? " RET=" : "", ret,
		 envid[0] ? " ENVID=" : "", envid);
	return 0;
}

/* One option letter with its value (NULL when it takes none). */
static int sendmail_opt(char ch, const char *v, struct sendmail_opts *o, char *err, size_t errsz)
{
	switch (ch) {
	case 'C':
		o->config = v;
		break;
	case 'F':
		o->fullname = v;
		break;
	case 'f':
	case 'r':
		o->sender = v;
		break;
	case 'b':
		return sendmail_bmode(v, o, err, errsz);
	case 'o':
		/* -oi; -oem, -odb, -oA... are Sendmail's business, not ours. */
		if (strcmp(v, "i") == 0)
			o->ignore_dots = 1;
		break;
	case 'i':
		o->ignore_dots = 1;
		break;
	case 't':
		o->extract = 1;
		break;
	case 'v':
		o->verbose = 1;
		break;
	case 'q':
		o->mode = SENDMAIL_FLUSH;
		break;
	case 'N':
		return sendmail_notify(v, o, err, errsz);
	case 'R':
	case 'V':
		return sendmail_ret_envid(ch, v, o, err, errsz);
	default:
		break; /* -m, -n, -U, -G, -I, -B x...: accepted, ignored */
	}
	return 0;
}

int sendmail_opts_parse(int argc, char **argv, struct sendmail_opts *o, char *err,
			size_t errsz)
{
	int i;

	memset(o, 0, sizeof(*o));
	o->config = CONFIG_DEFAULT_PATH;
	o->mode = SENDMAIL_DELIVER;
	const char *base = argc > 0 ? strrchr(argv[0], '/') : NULL;
	base = base ? base + 1 : argc > 0 ? argv[0] : "";
	for (size_t k = 0; k < sizeof(sendmail_aliases) / sizeof(sendmail_aliases[0]); k++)
		if (strcmp(base, sendmail_aliases[k].name) == 0)
			o->mode = sendmail_aliases[k].mode;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] == '\0')
			break;
		for (const char *p = a + 1; *p != '\0'; p++) {
			/* -q takes an attached interval or selector only (-q30m, -qR...). */
			if (*p == 'q') {
				sendmail_opt('q', NULL, o, err, errsz);
				break;
			}
			if (*p != 'b' && *p != 'o' && strchr(sendmail_valued, *p) == NULL) {
				sendmail_opt(*p, NULL, o, err, errsz);
				continue;
			}
			const char *v = p[1] != '\0' ? p + 1 : i + 1 < argc ? argv[++i] : NULL;
			if (v == NULL) {
				snprintf(err, errsz, "option -%c needs a value", *p);
				return -1;
			}
			if (sendmail_opt(*p, v, o, err, errsz) < 0)
				return -1;
			break;
		}
	}
	o->rcpts = argv + i;
	o->nrcpts = i < argc ? (size_t)(argc - i) : 0;
	return 0;
}
