/*
 * sendmail_opts.c - sendmail's options. Options may be bundled (-ti) and
 * take their value attached or as the next argument (-fme, -f me); the
 * first argument that is not an option, or "--", starts the recipients.
 */
#include "sendmail_opts.h"
#include "common/config.h"

#include <stdio.h>
#include <string.h>

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
