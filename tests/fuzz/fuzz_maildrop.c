/*
 * fuzz_maildrop.c - libFuzzer target for what local users hand in: a
 * maildrop file (any bytes a user can write there), and a message's
 * header section and address lists as sendmail rewrites them. Any input
 * parses or is refused, never a crash or a leak; a parsed file's content
 * lies inside the data.
 */
#include "relayd/sendmail/maildrop.h"
#include "relayd/sendmail/sendmail_msg.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct maildrop_msg m;
	struct buf out;
	char **rcpts = NULL;
	size_t nrcpts = 0;

	if (text == NULL)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	if (maildrop_parse(text, size, &m) == 0) {
		if (m.content < text || m.content + m.len != text + size || m.nrcpts == 0)
			abort();
		maildrop_msg_free(&m);
	}
	struct sendmail_hdr_params p = {
		.sender = "me@host.test", .fullname = "Me", .hostname = "host.test",
		.date = "D", .msgid = "<M>", .extract = 1,
	};
	buf_init(&out);
	sendmail_msg_headers(text, size, &p, &out, &rcpts, &nrcpts);
	sendmail_addr_list(text, "host.test", &rcpts, &nrcpts);
	for (size_t i = 0; i < nrcpts; i++)
		free(rcpts[i]);
	free(rcpts);
	buf_free(&out);
	free(text);
	return 0;
}
