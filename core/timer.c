/*
** The timer room: every timed wait of a runtime is an entry here (the
** states are in internal.h). A binary min-heap ordered by (deadline, seq)
** finds the earliest; one libuv timer makes the loop return for it, and
** the runtime fires what is due after each turn of the loop
** (qn__timers_fire), so firing never runs inside a libuv callback.
*/
#include "internal.h"

static int less(const qn__timer *a, const qn__timer *b) {
  return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void place(qn__timer_heap *h, uint32_t i, qn__timer *t) {
  h->items[i] = t;
  t->index = i;
}

static void sift_up(qn__timer_heap *h, uint32_t i) {
  qn__timer *t = h->items[i];
  while (i > 0) {
    uint32_t parent = (i - 1) / 2;
    if (!less(t, h->items[parent])) break;
    place(h, i, h->items[parent]);
    i = parent;
  }
  place(h, i, t);
}

void qn__timer_init(qn__timer *t, uint64_t deadline) {
  t->deadline = deadline;
  t->seq = 0;
  t->waker = NULL;
  t->index = QN__TIMER_IDLE;
  t->fired = 0;
}

int qn__timer_start(qn_runtime *rt, qn__timer *t) {
  qn__timer_heap *h = &rt->timers;
  if (h->len == h->cap) {
    /* indexes are 32-bit, QN__TIMER_IDLE excluded: 2^31 entries at most */
    if (h->cap >= (uint32_t)1 << 31) return QN_ENOMEM;
    uint32_t cap = h->cap ? h->cap * 2 : 64;
    qn__timer **items = qn__realloc(rt, h->items, (size_t)cap * sizeof *items);
    if (items == NULL) return QN_ENOMEM;
    h->items = items;
    h->cap = cap;
  }
  t->seq = h->next_seq++;
  t->fired = 0;
  place(h, h->len++, t);
  sift_up(h, t->index);
  return QN_OK;
}

/* The last entry fills the hole. When it goes down, it almost always goes
   to the bottom (it is one of the latest deadlines: a fired timer or a
   sleep dropped in arming order leaves the hole at the root), so the hole
   walks down along the smaller children first, one comparison a level
   instead of two, and the last entry then rises from there, rarely more
   than a level (Floyd's variant of sift-down). */
static void heap_remove(qn__timer_heap *h, qn__timer *t) {
  uint32_t i = t->index;
  if (i == QN__TIMER_IDLE) return;
  t->index = QN__TIMER_IDLE;
  qn__timer *last = h->items[--h->len];
  if (last == t) return;
  if (i > 0 && less(last, h->items[(i - 1) / 2])) {
    place(h, i, last);
    sift_up(h, i);
    return;
  }
  uint32_t n = h->len;
  for (uint32_t child; (child = 2 * i + 1) < n; i = child) {
    if (child + 1 < n && less(h->items[child + 1], h->items[child])) child++;
    place(h, i, h->items[child]);
  }
  /* Rising stops at the hole's first place at the latest: last is not
     below the parent there (checked above), nor then below any ancestor. */
  while (i > 0) {
    uint32_t parent = (i - 1) / 2;
    if (!less(last, h->items[parent])) break;
    place(h, i, h->items[parent]);
    i = parent;
  }
  place(h, i, last);
}

void qn__timer_stop(qn_runtime *rt, qn__timer *t) {
  heap_remove(&rt->timers, t);
}

static qn__timer *top(const qn__timer_heap *h) {
  return h->len ? h->items[0] : NULL;
}

uint64_t qn__timers_next(const qn_runtime *rt) {
  const qn__timer *t = top(&rt->timers);
  return t != NULL ? t->deadline : QN_NEVER;
}

/* Each due entry is marked fired and out of the heap before its waker
   runs, so a woken owner that arms again cannot keep this loop going. */
size_t qn__timers_fire(qn_runtime *rt) {
  uint64_t now = qn_now(rt);
  size_t n = 0;
  qn__timer *t;
  while ((t = top(&rt->timers)) != NULL && t->deadline <= now) {
    heap_remove(&rt->timers, t);
    t->fired = 1;
    qn_wake(t->waker);
    n++;
  }
  return n;
}

/* Entries are fired after uv_run returns; this only makes it return. When
   the deadline passes between qn__timers_wake_loop and uv_run's first look
   at the clock (the thread was descheduled, or a slow build), libuv runs
   this callback before it polls, then polls with no timer left: UV_RUN_ONCE
   would block until some I/O came, maybe never. uv_stop makes that poll
   not block. */
static void on_timer(uv_timer_t *h) { uv_stop(h->loop); }

void qn__timers_wake_loop(qn_runtime *rt) {
  qn__timer *t = top(&rt->timers);
  if (t == NULL) {
    uv_timer_stop(&rt->timer);
    return;
  }
  /* Armed already for no later than this deadline: the loop wakes by then
     (early at worst, and the next idle turn arms again). A read with a
     timeout renewed on every reply then re-arms libuv's timer once a
     timeout, not once a reply (uv_update_time, uv_timer_start and a clock
     read, about 190 instructions a reply). */
  if (t->deadline >= rt->wake_at && uv_is_active((uv_handle_t *)&rt->timer)) return;
  uint64_t now = qn_now(rt);
  uint64_t ns = t->deadline > now ? t->deadline - now : 0;
  uint64_t ms = ns / 1000000 + (ns % 1000000 != 0);   /* rounded up, without overflow */
  uv_update_time(&rt->loop);
  uv_timer_start(&rt->timer, on_timer, ms, 0);
  rt->wake_at = now + ns;
}

void qn__timers_free(qn_runtime *rt) {
  qn__timer_heap *h = &rt->timers;
  qn__free(rt, h->items);
  h->items = NULL;
  h->len = h->cap = 0;
}
