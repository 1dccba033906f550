/*
 * intake_hasher.c - the password-hashing thread of intake and its way back
 * to the event loop (see intake_hasher.h). The thread touches nothing but
 * the jobs and the two lists under the mutex; every callback runs on the
 * loop.
 */
#include "intake_hasher.h"
#include "smtp_auth.h"
#include "common/event.h"
#include "common/log.h"
#include "common/xmalloc.h"

#include <crypt.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct intake_hash_job {
	struct intake_hash_job *next;
	char *pass, *hash;
	int known;
	int match;
	int cancelled;          /* under the mutex */
	intake_hash_cb cb;
	void *arg;
};

struct intake_hasher {
	struct ev_loop *loop;
	int efd;                /* the thread adds 1 per finished job */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct intake_hash_job *todo, **todo_tail;
	struct intake_hash_job *done, **done_tail;
};

static void hash_job_free(struct intake_hash_job *j)
{
	explicit_bzero(j->pass, strlen(j->pass));
	free(j->pass);
	free(j->hash);
	free(j);
}

static void *hasher_thread(void *arg)
{
	struct intake_hasher *h = arg;
	struct crypt_data *cd = xmalloc(sizeof(*cd));
	uint64_t one = 1;

	pthread_mutex_lock(&h->mu);
	for (;;) {
		while (h->todo == NULL)
			pthread_cond_wait(&h->cv, &h->mu);
		struct intake_hash_job *j = h->todo;
		h->todo = j->next;
		if (h->todo == NULL)
			h->todo_tail = &h->todo;
		if (!j->cancelled) {
			pthread_mutex_unlock(&h->mu);
			memset(cd, 0, sizeof(*cd));
			j->match = smtp_auth_match(j->pass, j->hash, cd) && j->known;
			explicit_bzero(cd, sizeof(*cd));
			pthread_mutex_lock(&h->mu);
		}
		j->next = NULL;
		*h->done_tail = j;
		h->done_tail = &j->next;
		/* The counter cannot overflow: the loop drains it. */
		if (write(h->efd, &one, sizeof(one)) != sizeof(one))
			fatal("intake: hasher eventfd: %s", strerror(errno));
	}
	return NULL;
}

/* Finished jobs: each callback whose owner is still there. */
static void hasher_on_done(int fd, uint32_t events, void *arg)
{
	struct intake_hasher *h = arg;
	uint64_t n;
	(void)events;

	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warnx("intake: hasher eventfd: %s", strerror(errno));
	pthread_mutex_lock(&h->mu);
	struct intake_hash_job *list = h->done;
	h->done = NULL;
	h->done_tail = &h->done;
	pthread_mutex_unlock(&h->mu);
	while (list != NULL) {
		struct intake_hash_job *j = list;
		list = j->next;
		/* Cancelled only from the loop, so no lock is needed to read it now. */
		if (!j->cancelled)
			j->cb(j->arg, j->match);
		hash_job_free(j);
	}
}

struct intake_hasher *intake_hasher_new(struct ev_loop *loop)
{
	struct intake_hasher *h = xcalloc(1, sizeof(*h));
	sigset_t all, old;
	int err;

	h->loop = loop;
	h->todo_tail = &h->todo;
	h->done_tail = &h->done;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	h->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (h->efd < 0 || ev_io_add(loop, h->efd, EPOLLIN, hasher_on_done, h) < 0) {
		log_warnx("intake: cannot watch the password hasher: %s", strerror(errno));
		goto fail;
	}
	/* Signals stay with the loop's signalfd: the thread blocks them all. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&h->thread, NULL, hasher_thread, h);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err != 0) {
		log_warnx("intake: cannot start the password hasher: %s", strerror(err));
		ev_io_del(loop, h->efd);
		goto fail;
	}
	pthread_detach(h->thread);
	return h;
fail:
	if (h->efd >= 0)
		close(h->efd);
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
	free(h);
	return NULL;
}

struct intake_hash_job *intake_hash_start(struct intake_hasher *h, const char *pass,
					  const char *hash, int known, intake_hash_cb cb,
					  void *arg)
{
	struct intake_hash_job *j = xcalloc(1, sizeof(*j));

	j->pass = xstrdup(pass);
	j->hash = xstrdup(hash);
	j->known = known;
	j->cb = cb;
	j->arg = arg;
	pthread_mutex_lock(&h->mu);
	*h->todo_tail = j;
	h->todo_tail = &j->next;
	pthread_cond_signal(&h->cv);
	pthread_mutex_unlock(&h->mu);
	return j;
}

void intake_hash_cancel(struct intake_hasher *h, struct intake_hash_job *j)
{
	pthread_mutex_lock(&h->mu);
	j->cancelled = 1;
	pthread_mutex_unlock(&h->mu);
}
