/*
 * intake_anvil.h - failed AUTH counted per client address across sessions
 * (after Postfix's anvil): auth-fail-limit failures within a window, then
 * AUTH from that address is refused until the window has passed. IPv4
 * addresses count one by one, IPv6 by /64 (one host's usual share). The
 * table is bounded: when full, the address whose window started first is
 * forgotten.
 */
#ifndef RELAYD_INTAKE_ANVIL_H
#define RELAYD_INTAKE_ANVIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Addresses remembered at most (about 80 bytes each). */
#define INTAKE_ANVIL_MAX 8192

struct intake_anvil;

struct intake_anvil *intake_anvil_new(size_t max);
void intake_anvil_free(struct intake_anvil *a);
/*
 * 1 when sa has limit failures in its current window (limit 0: never);
 * *retry_s, if not NULL, says in how many seconds the window ends.
 */
int intake_anvil_blocked(struct intake_anvil *a, const struct sockaddr *sa, uint64_t now_ms,
			 unsigned limit, unsigned window_s, unsigned *retry_s);
/* Counts one failure of sa; 1 when it is the one that reaches limit. */
int intake_anvil_fail(struct intake_anvil *a, const struct sockaddr *sa, uint64_t now_ms,
		      unsigned limit, unsigned window_s);
/* Addresses in the table now. */
size_t intake_anvil_size(const struct intake_anvil *a);

#endif
