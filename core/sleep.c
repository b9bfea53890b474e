/* The sleep future: ready when the runtime's clock reaches its deadline.
   An already-due sleep arms nothing; a pending one holds one heap entry,
   but for one whose deadline is QN_NEVER, which waits for ever and arms
   nothing (a virtual clock does not jump to it, and a task left waiting on
   it alone is a deadlock). */
#include "internal.h"

/* 56 bytes (one per sleeping task): no field to spare. */
typedef struct sleep_future {
  qn_future base;
  qn_runtime *rt;
  qn__timer timer;        /* while relative, timer.deadline holds the delay: the
                             deadline is set at the first poll */
  uint8_t relative, failed;
} sleep_future;

/* The size docs/performance.md counts for a sleeping task (W7s). */
_Static_assert(sizeof(sleep_future) <= 56, "a sleep future grew past 56 bytes");

static int sleep_poll(qn_future *f, qn_waker *w) {
  sleep_future *s = (sleep_future *)f;
  if (s->timer.fired) return QN_READY;
  if (s->relative) {       /* read the clock only now: a sleep never polled costs none */
    uint64_t now = qn_now(s->rt);
    uint64_t after = s->timer.deadline;
    s->timer.deadline = after >= QN_NEVER - now ? QN_NEVER : now + after;
    s->relative = 0;
  }
  if (s->timer.index == QN__TIMER_IDLE && s->timer.deadline != QN_NEVER) {
    if (qn_now(s->rt) >= s->timer.deadline) {
      s->timer.fired = 1;
      return QN_READY;
    }
    if (qn__timer_start(s->rt, &s->timer) != QN_OK) {
      s->timer.fired = s->failed = 1;   /* out of memory: ready now, and qn_sleep_failed says so */
      return QN_READY;
    }
  }
  s->timer.waker = w;
  return QN_PENDING;
}

static void sleep_drop(qn_future *f) {
  sleep_future *s = (sleep_future *)f;
  qn__timer_stop(s->rt, &s->timer);
  qn__small_free(s->rt, s, sizeof *s);
}

static const qn_future_vt sleep_vt = { sleep_poll, sleep_drop };

qn_future *qn_sleep_new(qn_runtime *rt, uint64_t deadline) {
  sleep_future *s = qn__small_alloc(rt, sizeof *s);
  if (s == NULL) return NULL;
  s->base.vt = &sleep_vt;
  s->rt = rt;
  qn__timer_init(&s->timer, deadline);
  s->relative = s->failed = 0;
  return &s->base;
}

qn_future *qn_sleep_after_new(qn_runtime *rt, uint64_t ns) {
  qn_future *f = qn_sleep_new(rt, 0);
  if (f != NULL) {
    sleep_future *s = (sleep_future *)f;
    s->timer.deadline = ns;
    s->relative = 1;
  }
  return f;
}

int qn_sleep_failed(const qn_future *f) {
  return ((const sleep_future *)f)->failed;
}

uint64_t qn_sleep_deadline(const qn_future *f) {
  const sleep_future *s = (const sleep_future *)f;
  return s->relative ? 0 : s->timer.deadline;
}
