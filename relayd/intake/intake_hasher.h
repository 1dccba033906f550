/*
 * intake_hasher.h - password checks off the event loop. crypt(3) is slow
 * by design (sha512crypt about 2 ms, yescrypt more): run on intake's one
 * loop, every guess would stall every session. One thread hashes queued
 * jobs in turn; results come back to the loop through an eventfd. One
 * thread leaves the other cores to the loop, and the AUTH throttle
 * (intake_anvil.h) bounds how much guessing there is to queue.
 */
#ifndef RELAYD_INTAKE_HASHER_H
#define RELAYD_INTAKE_HASHER_H

struct ev_loop;
struct intake_hasher;
struct intake_hash_job;

/* match: pass gives hash and the check was meant to count (known user). */
typedef void (*intake_hash_cb)(void *arg, int match);

/* NULL, with a log line, when the thread or its eventfd cannot be made. */
struct intake_hasher *intake_hasher_new(struct ev_loop *loop);
/*
 * Queues a check of pass against hash (both copied). known 0: the answer
 * is "no" whatever crypt says, after the same work (an unknown user is
 * checked against a dummy hash so that timing does not tell). cb runs
 * later, on the loop, unless the job is cancelled first.
 */
struct intake_hash_job *intake_hash_start(struct intake_hasher *h, const char *pass,
					  const char *hash, int known, intake_hash_cb cb,
					  void *arg);
/* The owner is gone: cb is never called; the job is freed when the thread is done with it. */
void intake_hash_cancel(struct intake_hasher *h, struct intake_hash_job *j);

#endif
