/*
 * dlv_rate.c - the spacing of one destination's messages and the slots
 * promised to the ones sent back to the queue (see dlv_rate.h).
 */
#include "relayd/delivery/dlv_rate.h"

uint64_t dlv_rate_interval(const struct cfg_rate *r)
{
	if (r->n == 0)
		return 0;
	/* Rounded up: never faster than written. */
	return ((uint64_t)r->period * 1000 + r->n - 1) / r->n;
}

uint64_t dlv_rate_wait(const struct dlv_rate *rs, uint64_t now)
{
	return rs->next > now ? rs->next - now : 0;
}

void dlv_rate_take(struct dlv_rate *rs, uint64_t interval, uint64_t now)
{
	rs->next = now + interval;
}

int dlv_rate_admit(struct dlv_rate *rs, uint64_t interval, uint64_t now, size_t nahead,
		   uint64_t *slot)
{
	uint64_t at = (rs->next > now ? rs->next : now) + nahead * interval;

	if (at - now <= DLV_RATE_KEEP_MS && nahead < DLV_RATE_KEEP_MAX)
		return 1;
	*slot = at > rs->booked ? at : rs->booked;
	rs->booked = *slot + interval;
	return 0;
}

void dlv_rate_unbook(struct dlv_rate *rs)
{
	rs->booked = 0;
}

int dlv_rate_live(const struct dlv_rate *rs, uint64_t now)
{
	return rs->next > now || rs->booked > now;
}
