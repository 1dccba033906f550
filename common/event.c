/*
 * event.c - epoll loop with a binary heap of timers and a signalfd.
 * Each fd slot carries a generation number in the epoll data so that an
 * event for an fd deleted (and maybe reused) earlier in the same batch is
 * dropped instead of reaching the new owner.
 */
#include "event.h"
#include "log.h"
#include "xmalloc.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define EV_BATCH 128

struct ev_slot {
	ev_io_cb cb;
	void *arg;
	uint32_t gen;
	int active;
};

struct ev_sigh {
	ev_signal_cb cb;
	void *arg;
};

struct ev_loop {
	int epfd;
	int running;
	uint64_t now;
	struct ev_slot *slots;
	size_t nslots;
	struct ev_timer **heap; /* 1-based */
	size_t heap_len, heap_cap;
	int sigfd;
	sigset_t sigmask;
	struct ev_sigh sigh[65];
};

static uint64_t ev_clock_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int64_t ev_wallclock(void)
{
	return (int64_t)time(NULL);
}

struct ev_loop *ev_loop_new(void)
{
	struct ev_loop *loop = xcalloc(1, sizeof(*loop));
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0)
		fatal("epoll_create1: %s", strerror(errno));
	loop->sigfd = -1;
	sigemptyset(&loop->sigmask);
	loop->now = ev_clock_ms();
	return loop;
}

void ev_loop_free(struct ev_loop *loop)
{
	if (loop == NULL)
		return;
	close(loop->epfd);
	if (loop->sigfd >= 0)
		close(loop->sigfd);
	free(loop->slots);
	free(loop->heap);
	free(loop);
}

uint64_t ev_now(struct ev_loop *loop)
{
	return loop->now;
}

void ev_now_update(struct ev_loop *loop)
{
	loop->now = ev_clock_ms();
}

static struct ev_slot *ev_slot(struct ev_loop *loop, int fd)
{
	if (fd < 0)
		fatal("ev: negative fd");
	if ((size_t)fd >= loop->nslots) {
		size_t n = loop->nslots ? loop->nslots : 64;
		while (n <= (size_t)fd)
			n *= 2;
		loop->slots = xreallocarray(loop->slots, n, sizeof(*loop->slots));
		memset(loop->slots + loop->nslots, 0, (n - loop->nslots) * sizeof(*loop->slots));
		loop->nslots = n;
	}
	return &loop->slots[fd];
}

static int ev_ctl(struct ev_loop *loop, int op, int fd, uint32_t events)
{
	struct ev_slot *s = ev_slot(loop, fd);
	struct epoll_event ee;
	memset(&ee, 0, sizeof(ee));
	ee.events = events;
	ee.data.u64 = ((uint64_t)s->gen << 32) | (uint32_t)fd;
	return epoll_ctl(loop->epfd, op, fd, &ee);
}

int ev_io_add(struct ev_loop *loop, int fd, uint32_t events, ev_io_cb cb, void *arg)
{
	struct ev_slot *s = ev_slot(loop, fd);
	if (s->active)
		fatal("ev_io_add: fd %d already registered", fd);
	s->gen++;
	if (ev_ctl(loop, EPOLL_CTL_ADD, fd, events) < 0)
		return -1;
	s->cb = cb;
	s->arg = arg;
	s->active = 1;
	return 0;
}

int ev_io_mod(struct ev_loop *loop, int fd, uint32_t events)
{
	struct ev_slot *s = ev_slot(loop, fd);
	if (!s->active)
		fatal("ev_io_mod: fd %d not registered", fd);
	return ev_ctl(loop, EPOLL_CTL_MOD, fd, events);
}

void ev_io_del(struct ev_loop *loop, int fd)
{
	struct ev_slot *s = ev_slot(loop, fd);
	if (!s->active)
		return;
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
	s->active = 0;
	s->cb = NULL;
	s->arg = NULL;
	s->gen++;
}

/* Timer heap ordered by due time. */

static void heap_set(struct ev_loop *loop, size_t i, struct ev_timer *t)
{
	loop->heap[i] = t;
	t->heap_idx = i;
}

static void heap_up(struct ev_loop *loop, size_t i)
{
	struct ev_timer *t = loop->heap[i];
	while (i > 1 && loop->heap[i / 2]->due_ms > t->due_ms) {
		heap_set(loop, i, loop->heap[i / 2]);
		i /= 2;
	}
	heap_set(loop, i, t);
}

static void heap_down(struct ev_loop *loop, size_t i)
{
	struct ev_timer *t = loop->heap[i];
	for (;;) {
		size_t c = i * 2;
		if (c > loop->heap_len)
			break;
		if (c + 1 <= loop->heap_len && loop->heap[c + 1]->due_ms < loop->heap[c]->due_ms)
			c++;
		if (loop->heap[c]->due_ms >= t->due_ms)
			break;
		heap_set(loop, i, loop->heap[c]);
		i = c;
	}
	heap_set(loop, i, t);
}

void ev_timer_init(struct ev_timer *t, ev_timer_cb cb, void *arg)
{
	memset(t, 0, sizeof(*t));
	t->cb = cb;
	t->arg = arg;
}

void ev_timer_stop(struct ev_loop *loop, struct ev_timer *t)
{
	size_t i = t->heap_idx;
	if (i == 0)
		return;
	if (i > loop->heap_len || loop->heap[i] != t)
		fatal("ev_timer_stop: corrupt timer");
	struct ev_timer *last = loop->heap[loop->heap_len--];
	t->heap_idx = 0;
	if (last == t)
		return;
	heap_set(loop, i, last);
	heap_up(loop, i);
	heap_down(loop, last->heap_idx);
}

void ev_timer_start(struct ev_loop *loop, struct ev_timer *t, uint64_t ms)
{
	ev_timer_stop(loop, t);
	if (loop->heap_len + 1 >= loop->heap_cap) {
		loop->heap_cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
		loop->heap = xreallocarray(loop->heap, loop->heap_cap, sizeof(*loop->heap));
	}
	t->due_ms = ev_clock_ms() + ms;
	loop->heap_len++;
	heap_set(loop, loop->heap_len, t);
	heap_up(loop, loop->heap_len);
}

static void ev_run_timers(struct ev_loop *loop)
{
	while (loop->heap_len > 0 && loop->heap[1]->due_ms <= loop->now && loop->running) {
		struct ev_timer *t = loop->heap[1];
		ev_timer_stop(loop, t);
		t->cb(t->arg);
	}
}

static void ev_signal_read(int fd, uint32_t events, void *arg)
{
	struct ev_loop *loop = arg;
	struct signalfd_siginfo si;
	(void)events;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo < 65 && loop->sigh[si.ssi_signo].cb)
			loop->sigh[si.ssi_signo].cb((int)si.ssi_signo, loop->sigh[si.ssi_signo].arg);
	}
}

int ev_signal_add(struct ev_loop *loop, int signo, ev_signal_cb cb, void *arg)
{
	if (signo <= 0 || signo >= 65)
		fatal("ev_signal_add: bad signal %d", signo);
	sigaddset(&loop->sigmask, signo);
	if (sigprocmask(SIG_BLOCK, &loop->sigmask, NULL) < 0)
		return -1;
	int first = loop->sigfd < 0;
	int fd = signalfd(loop->sigfd, &loop->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -1;
	loop->sigfd = fd;
	loop->sigh[signo].cb = cb;
	loop->sigh[signo].arg = arg;
	if (first && ev_io_add(loop, fd, EPOLLIN, ev_signal_read, loop) < 0)
		return -1;
	return 0;
}

void ev_break(struct ev_loop *loop)
{
	loop->running = 0;
}

int ev_run(struct ev_loop *loop)
{
	struct epoll_event evs[EV_BATCH];

	loop->running = 1;
	while (loop->running) {
		ev_now_update(loop);
		ev_run_timers(loop);
		if (!loop->running)
			break;
		int timeout = -1;
		if (loop->heap_len > 0) {
			uint64_t due = loop->heap[1]->due_ms;
			uint64_t now = ev_clock_ms();
			timeout = due <= now ? 0 : (int)(due - now > 60000 ? 60000 : due - now);
		}
		int n = epoll_wait(loop->epfd, evs, EV_BATCH, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_errx("epoll_wait: %s", strerror(errno));
			return -1;
		}
		ev_now_update(loop);
		for (int i = 0; i < n && loop->running; i++) {
			int fd = (int)(uint32_t)evs[i].data.u64;
			uint32_t gen = (uint32_t)(evs[i].data.u64 >> 32);
			if ((size_t)fd >= loop->nslots)
				continue;
			struct ev_slot *s = &loop->slots[fd];
			if (!s->active || s->gen != gen)
				continue;
			s->cb(fd, evs[i].events, s->arg);
		}
	}
	return 0;
}
