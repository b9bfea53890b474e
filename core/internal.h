/* What the core's files share. Nothing here is public. */
#ifndef QUENCH_INTERNAL_H
#define QUENCH_INTERNAL_H

#include "quench.h"

/* Intrusive circular doubly linked list (as libuv's queue.h). */
typedef struct qn__list {
  struct qn__list *next, *prev;
} qn__list;

static inline void qn__list_init(qn__list *h) { h->next = h->prev = h; }
static inline int qn__list_empty(const qn__list *h) { return h->next == h; }
static inline void qn__list_push(qn__list *h, qn__list *n) {
  n->prev = h->prev; n->next = h;
  h->prev->next = n; h->prev = n;
}
static inline void qn__list_remove(qn__list *n) {
  n->prev->next = n->next; n->next->prev = n->prev;
  n->next = n->prev = n;
}
#define qn__container_of(ptr, type, field) \
  ((type *)((char *)(ptr) - offsetof(type, field)))

/* A waiter in a FIFO wait list: embedded in a future. */
typedef struct qn__wait {
  qn__list node;
  qn_waker *waker;
  int linked;
} qn__wait;

static inline void qn__wait_init(qn__wait *w) {
  qn__list_init(&w->node);
  w->waker = NULL;
  w->linked = 0;
}
/* Join the list if not in it yet; in any case remember the newest waker. */
static inline void qn__wait_link(qn__list *l, qn__wait *w, qn_waker *wk) {
  w->waker = wk;
  if (w->linked) return;
  qn__list_push(l, &w->node);
  w->linked = 1;
}
static inline void qn__wait_unlink(qn__wait *w) {
  if (!w->linked) return;
  qn__list_remove(&w->node);
  w->linked = 0;
}
static inline qn__wait *qn__wait_first(qn__list *l) {
  return qn__list_empty(l) ? NULL : (qn__wait *)((char *)l->next - offsetof(qn__wait, node));
}
static inline void qn__wait_wake_all(qn__list *l) {
  qn__wait *w;
  while ((w = qn__wait_first(l)) != NULL) {
    qn__wait_unlink(w);
    qn_wake(w->waker);
  }
}

/* A timer entry lives inside whatever waits on it (a sleep future). */
typedef struct qn__timer {
  uint64_t deadline;
  uint64_t seq;         /* equal deadlines fire in arming order */
  size_t index;         /* position in the heap, SIZE_MAX when not armed */
  qn_waker *waker;
} qn__timer;

typedef struct qn__timer_heap {
  qn__timer **items;
  size_t len, cap;
  uint64_t next_seq;
} qn__timer_heap;

int qn__heap_push(qn__timer_heap *h, qn__timer *t);
void qn__heap_remove(qn__timer_heap *h, qn__timer *t);
qn__timer *qn__heap_top(const qn__timer_heap *h);
void qn__heap_free(qn__timer_heap *h);

/* An object of a core module that owns libuv handles and must close them
   with its own close callback (which frees it) when the runtime shuts down.
   Embed it, register it while the handles are open, remove it when closed. */
typedef struct qn__closer {
  qn__list node;        /* rt->closers */
  void (*close)(struct qn__closer *c);
} qn__closer;

void qn__closer_add(qn_runtime *rt, qn__closer *c);
void qn__closer_remove(qn__closer *c);

struct qn_task {
  qn_future *fut;
  qn_runtime *rt;
  void *userdata;
  qn_waker waker;
  qn__list node;        /* rt->tasks while not done, then rt->done until finalised */
  qn__list runq;        /* rt->runq while queued */
  qn__list joiners;     /* join futures waiting for the end */
  uint64_t id;
  uint8_t state;        /* qn_task_state */
  uint8_t outcome;      /* qn_task_outcome, meaningful when done */
  uint8_t queued, cancel, abort, dropping;
};

struct qn_runtime {
  uv_loop_t loop;
  uv_timer_t timer;     /* the one libuv timer: armed for the earliest deadline */
  qn__timer_heap timers;
  qn__list tasks;       /* tasks not done, in spawn order */
  qn__list done;        /* done tasks whose memory is still held */
  qn__list runq;
  qn__list signals;     /* signal watchers (signal.c) */
  qn__list closers;     /* qn__closer: closed first at shutdown */
  qn_task *current;
  qn_clock clock;
  uint64_t start;       /* uv_hrtime at creation (real clock) */
  uint64_t vnow;        /* virtual and manual clocks */
  uint64_t rng;
  uint64_t next_id;
  unsigned budget;      /* polls between two I/O turns */
  int closed;
  qn_stats stats;
};

void qn__enqueue(qn_task *t);
/* Wake every timer due at the current time. Returns how many fired. */
size_t qn__fire_timers(qn_runtime *rt);
void qn__timer_arm(qn_runtime *rt);
void qn__wake_joiners(qn_task *t);
void qn__poll_task(qn_task *t);
void qn__abort_for_shutdown(qn_task *t);

#endif
