/*
** The runtime: a FIFO run queue drained with a per-tick budget, one uv loop,
** and the timer heap behind one uv timer. When nothing is runnable the
** runtime blocks in uv_run(UV_RUN_ONCE) (real clock) or jumps time to the
** next deadline (virtual clock); when busy it still gives I/O a
** UV_RUN_NOWAIT turn every `budget` polls so no task starves the reactor.
*/
#include <stdlib.h>
#include <string.h>
#include "internal.h"

enum { DEFAULT_BUDGET = 64 };

/* ---- the runtime ---- */

qn_runtime *qn_runtime_new(qn_clock clock, uint64_t seed) {
  return qn_runtime_new_with(clock, seed, NULL, NULL);
}

qn_runtime *qn_runtime_new_with(qn_clock clock, uint64_t seed, qn_alloc_fn alloc, void *ud) {
  if (alloc == NULL) alloc = qn__default_alloc;
  qn_runtime *rt = alloc(ud, NULL, sizeof *rt);
  if (rt == NULL) return NULL;
  memset(rt, 0, sizeof *rt);
  rt->alloc = alloc;
  rt->alloc_ud = ud;
  rt->stats.allocs = 1;                 /* its own block */
  if (uv_loop_init(&rt->loop) != 0) {
    qn__release_runtime(rt);
    return NULL;
  }
  uv_timer_init(&rt->loop, &rt->timer);
  qn__list_init(&rt->tasks);
  qn__list_init(&rt->done);
  qn__list_init(&rt->runq);
  qn__list_init(&rt->signals);
  qn__list_init(&rt->closers);
  rt->clock = clock;
  rt->start = uv_hrtime();
  rt->rng = seed ? seed : 0x9E3779B97F4A7C15ull;
  rt->budget = DEFAULT_BUDGET;
  return rt;
}

uv_loop_t *qn_runtime_loop(qn_runtime *rt) { return &rt->loop; }
qn_clock qn_runtime_clock(qn_runtime *rt) { return rt->clock; }
const qn_stats *qn_runtime_stats(qn_runtime *rt) { return &rt->stats; }
qn_task *qn_current(qn_runtime *rt) { return rt->current; }

uint64_t qn_now(qn_runtime *rt) {
  return rt->clock == QN_CLOCK_REAL ? uv_hrtime() - rt->start : rt->vnow;
}

uint64_t qn_random(qn_runtime *rt) {
  uint64_t x = rt->rng;   /* xorshift64* */
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rt->rng = x;
  return x * 0x2545F4914F6CDD1Dull;
}

int qn_advance(qn_runtime *rt, uint64_t ns) {
  if (rt->clock == QN_CLOCK_REAL) return QN_EINVAL;
  /* never backwards; QN_NEVER stays out of reach (its sleeps are not timers) */
  rt->vnow = ns >= QN_NEVER - 1 - rt->vnow ? QN_NEVER - 1 : rt->vnow + ns;
  qn__timers_fire(rt);
  return QN_OK;
}

void qn_runtime_each_task(qn_runtime *rt, void (*fn)(qn_task *, void *), void *arg) {
  qn__list *n, *next;
  for (n = rt->tasks.next; n != &rt->tasks; n = next) {
    next = n->next;   /* fn may not end other tasks */
    fn(qn__container_of(n, qn_task, node), arg);
  }
}

static int runnable(qn_runtime *rt) { return !qn__list_empty(&rt->runq); }

/* Nothing is runnable: wait for I/O or time. */
static int idle(qn_runtime *rt) {
  if (rt->clock == QN_CLOCK_REAL) {
    if (qn__timers_fire(rt) > 0) return QN_OK;
    if (qn__timers_next(rt) == QN_NEVER && !uv_loop_alive(&rt->loop)) return QN_EDEADLOCK;
    qn__timers_wake_loop(rt);
    uv_run(&rt->loop, UV_RUN_ONCE);
    qn__timers_fire(rt);
    return QN_OK;
  }
  uv_run(&rt->loop, UV_RUN_NOWAIT);
  qn__timers_fire(rt);
  if (runnable(rt)) return QN_OK;
  uint64_t next = qn__timers_next(rt);
  if (rt->clock == QN_CLOCK_VIRTUAL && next != QN_NEVER) {
    rt->vnow = next;            /* autojump: pending I/O does not hold the clock */
    qn__timers_fire(rt);
    return QN_OK;
  }
  if (uv_loop_alive(&rt->loop)) {
    uv_run(&rt->loop, UV_RUN_ONCE);
    return QN_OK;
  }
  return next != QN_NEVER ? QN_ESTALLED : QN_EDEADLOCK;
}

int qn_run(qn_runtime *rt, qn_task *until) {
  while (until->state != QN_TASK_DONE) {
    unsigned polls = 0;
    while (runnable(rt) && until->state != QN_TASK_DONE) {
      qn_task *t = qn__container_of(rt->runq.next, qn_task, runq);
      qn__list_remove(&t->runq);
      t->queued = 0;
      qn__poll_task(t);
      if (++polls == rt->budget) {
        polls = 0;
        uv_run(&rt->loop, UV_RUN_NOWAIT);
        qn__timers_fire(rt);
      }
    }
    if (until->state == QN_TASK_DONE) break;
    int r = idle(rt);
    if (r != QN_OK) return r;
  }
  return QN_OK;
}

static qn_task *first_alive(qn_runtime *rt) {
  return qn__list_empty(&rt->tasks) ? NULL : qn__container_of(rt->tasks.next, qn_task, node);
}

void qn__closer_add(qn_runtime *rt, qn__closer *c) {
  qn__list_push(&rt->closers, &c->node);
}

void qn__closer_remove(qn__closer *c) {
  qn__list_remove(&c->node);
}

static void on_close(uv_handle_t *h) { (void)h; }

static void close_any(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, on_close);
}

void qn_runtime_shutdown(qn_runtime *rt) {
  if (rt->closed) return;
  qn_task *t;
  while ((t = first_alive(rt)) != NULL)   /* a cleanup may spawn: loop until none */
    qn__abort_for_shutdown(t);
  while (!qn__list_empty(&rt->done)) {    /* tasks whose memory outlives the runtime */
    t = qn__container_of(rt->done.next, qn_task, node);
    qn_task_fini(t);
  }
  rt->closed = 1;
  while (!qn__list_empty(&rt->closers)) {   /* owners close their handles (and free them) */
    qn__closer *c = qn__container_of(rt->closers.next, qn__closer, node);
    qn__closer_remove(c);
    c->close(c);
  }
  uv_walk(&rt->loop, close_any, NULL);      /* the rest: the runtime's own timer */
  while (uv_run(&rt->loop, UV_RUN_DEFAULT) != 0) {}
  if (qn__timers_next(rt) == QN_NEVER) qn__timers_free(rt);   /* left: blocks objects hold */
}

void qn_runtime_free(qn_runtime *rt) {
  if (rt == NULL) return;
  qn_runtime_shutdown(rt);
  /* Shutdown's loop run has waited for every request of a dropped future
     (pool work, fs, dns: their callbacks free them). A handle opened by a
     callback during that run would still make the close fail (UV_EBUSY),
     and the loop's memory must not go while libuv holds it: close again. */
  while (uv_loop_close(&rt->loop) == UV_EBUSY) {
    uv_walk(&rt->loop, close_any, NULL);
    uv_run(&rt->loop, UV_RUN_DEFAULT);
  }
  qn__timers_free(rt);
  qn__small_flush(rt);
  qn__stream_bufs_flush(rt);
  rt->freed = 1;
  if (rt->stats.live_blocks == 0) qn__release_runtime(rt);
}
