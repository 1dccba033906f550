/*
 * event.h - the epoll event loop every process runs: file descriptors,
 * one-shot timers (embedded in their owner, so stopping one that is not
 * pending is harmless) and signals (through signalfd).
 */
#ifndef RELAYD_EVENT_H
#define RELAYD_EVENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

struct ev_loop;

typedef void (*ev_io_cb)(int fd, uint32_t events, void *arg);
typedef void (*ev_timer_cb)(void *arg);
typedef void (*ev_signal_cb)(int signo, void *arg);

struct ev_timer {
	uint64_t due_ms;   /* on the loop's monotonic clock */
	size_t heap_idx;   /* 0 when not pending; heap slots start at 1 */
	ev_timer_cb cb;
	void *arg;
};

struct ev_loop *ev_loop_new(void);
void ev_loop_free(struct ev_loop *loop);

/* events: EPOLLIN, EPOLLOUT (level-triggered). 0 on success, -1 + errno. */
int ev_io_add(struct ev_loop *loop, int fd, uint32_t events, ev_io_cb cb, void *arg);
int ev_io_mod(struct ev_loop *loop, int fd, uint32_t events);
/* Safe to call from inside a callback, also for the fd being served. */
void ev_io_del(struct ev_loop *loop, int fd);

void ev_timer_init(struct ev_timer *t, ev_timer_cb cb, void *arg);
/* (Re)arms the timer to fire after ms milliseconds. */
void ev_timer_start(struct ev_loop *loop, struct ev_timer *t, uint64_t ms);
void ev_timer_stop(struct ev_loop *loop, struct ev_timer *t);
static inline int ev_timer_pending(const struct ev_timer *t) { return t->heap_idx != 0; }

/* Blocks signo for the process and delivers it to cb from the loop. */
int ev_signal_add(struct ev_loop *loop, int signo, ev_signal_cb cb, void *arg);

/* Runs until ev_break. Returns 0, or -1 if epoll itself failed. */
int ev_run(struct ev_loop *loop);
void ev_break(struct ev_loop *loop);
/* Monotonic milliseconds, refreshed once per loop iteration. */
uint64_t ev_now(struct ev_loop *loop);
void ev_now_update(struct ev_loop *loop);
/* Wall clock seconds, for timestamps that are stored or shown. */
int64_t ev_wallclock(void);

#endif
