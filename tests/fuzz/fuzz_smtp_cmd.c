/*
 * fuzz_smtp_cmd.c - libFuzzer target for the command side: line framing,
 * verb splitting, MAIL/RCPT arguments, paths and SASL decoding. The input
 * is cut into lines as intake would; every line goes through every parser.
 */
#include "relayd/intake/smtp_cmd.h"
#include "relayd/intake/smtp_sasl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_line_reader lr = {SR_NONE};
	size_t off = 0;

	while (off < size) {
		size_t used = 0, len = 0;
		enum smtp_reply_id err = SR_NONE;
		enum smtp_line_status st = smtp_line_next(&lr, data + off, size - off, &used, &len, &err);
		if (used > size - off)
			abort();
		if (st == SMTP_LINE_OK) {
			if (len + 2 > used || len > SMTP_LINE_MAX - 2)
				abort();
			char line[SMTP_LINE_MAX];
			memcpy(line, data + off, len);
			line[len] = '\0';
			struct smtp_cmd cmd;
			smtp_cmd_split(line, &cmd);
			struct smtp_mail_args m;
			struct smtp_rcpt_args r;
			if (smtp_parse_mail(cmd.args, &m) == SR_NONE && strlen(m.path.addr) > SMTP_PATH_MAX)
				abort();
			if (smtp_parse_rcpt(cmd.args, 1, &r) == SR_NONE &&
			    (strlen(r.path.local) > SMTP_LOCAL_MAX || strlen(r.orcpt) > SMTP_ORCPT_MAX))
				abort();
			char user[SMTP_SASL_FIELD_MAX], pass[SMTP_SASL_FIELD_MAX];
			smtp_sasl_plain(line, user, sizeof(user), pass, sizeof(pass));
			smtp_sasl_decode(line, 0, user, sizeof(user), NULL);
		}
		if (used == 0)
			break;
		off += used;
	}
	return 0;
}
