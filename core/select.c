/*
** The select future: polls its children, and when the first is ready drops
** every other one (their cleanup runs) before reporting the winner. Each
** child gets its own waker, which marks it notified and wakes the select's
** waker, so a wake-up re-polls only the children that can progress.
** Fair selects start at a random child on every poll; biased ones always
** start at the first.
*/
#include "internal.h"

typedef struct select_future select_future;

typedef struct child {
  qn_future *f;
  qn_waker waker;
  select_future *sel;
  int notified;
} child;

struct select_future {
  qn_future base;
  qn_runtime *rt;
  qn_waker *parent;
  size_t n;
  long winner;
  int biased;
  child children[];
};

static void child_wake(qn_waker *w) {
  child *c = qn__container_of(w, child, waker);
  c->notified = 1;
  if (c->sel->parent) qn_wake(c->sel->parent);
}

/* Drop every child but the winner. A child's drop may run cleanup code that
   wakes other children: their slots are cleared before each drop. */
static void drop_losers(select_future *s) {
  for (size_t i = 0; i < s->n; i++) {
    qn_future *f = s->children[i].f;
    if ((long)i == s->winner || f == NULL) continue;
    s->children[i].f = NULL;
    qn_drop(f);
  }
}

static int select_poll(qn_future *f, qn_waker *w) {
  select_future *s = (select_future *)f;
  s->parent = w;
  if (s->winner >= 0) return QN_READY;
  size_t start = s->biased ? 0 : (size_t)(qn_random(s->rt) % s->n);
  for (size_t k = 0; k < s->n; k++) {
    size_t i = (start + k) % s->n;
    child *c = &s->children[i];
    if (!c->notified || c->f == NULL) continue;
    c->notified = 0;
    if (qn_poll(c->f, &c->waker) == QN_READY) {
      s->winner = (long)i;
      drop_losers(s);
      return QN_READY;
    }
  }
  return QN_PENDING;
}

static void select_drop(qn_future *f) {
  select_future *s = (select_future *)f;
  s->winner = -1;
  drop_losers(s);
  qn__small_free(s->rt, s, sizeof *s + s->n * sizeof(child));
}

static const qn_future_vt select_vt = { select_poll, select_drop };

qn_future *qn_select_new(qn_runtime *rt, size_t n, qn_future *const *children, int biased) {
  select_future *s = n && n <= (SIZE_MAX - sizeof *s) / sizeof(child)
                      ? qn__small_alloc(rt, sizeof *s + n * sizeof(child)) : NULL;
  if (s == NULL) {
    for (size_t i = 0; i < n; i++) qn_drop(children[i]);
    return NULL;
  }
  s->base.vt = &select_vt;
  s->rt = rt;
  s->parent = NULL;
  s->n = n;
  s->winner = -1;
  s->biased = biased;
  for (size_t i = 0; i < n; i++) {
    child *c = &s->children[i];
    c->f = children[i];
    c->waker.wake = child_wake;
    c->sel = s;
    c->notified = 1;   /* every child is polled once at the start */
  }
  return &s->base;
}

long qn_select_winner(const qn_future *f) {
  return ((const select_future *)f)->winner;
}

qn_future *qn_select_child(const qn_future *f, size_t i) {
  const select_future *s = (const select_future *)f;
  return i < s->n ? s->children[i].f : NULL;
}
