/* Binary min-heap of timer entries, ordered by (deadline, seq). */
#include "internal.h"

static int less(const qn__timer *a, const qn__timer *b) {
  return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void place(qn__timer_heap *h, size_t i, qn__timer *t) {
  h->items[i] = t;
  t->index = i;
}

static void sift_up(qn__timer_heap *h, size_t i) {
  qn__timer *t = h->items[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!less(t, h->items[parent])) break;
    place(h, i, h->items[parent]);
    i = parent;
  }
  place(h, i, t);
}

int qn__heap_push(qn_runtime *rt, qn__timer *t) {
  qn__timer_heap *h = &rt->timers;
  if (h->len == h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 64;
    qn__timer **items = qn__realloc(rt, h->items, cap * sizeof *items);
    if (items == NULL) return QN_ENOMEM;
    h->items = items;
    h->cap = cap;
  }
  t->seq = h->next_seq++;
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
void qn__heap_remove(qn__timer_heap *h, qn__timer *t) {
  size_t i = t->index;
  if (i == SIZE_MAX) return;
  t->index = SIZE_MAX;
  qn__timer *last = h->items[--h->len];
  if (last == t) return;
  if (i > 0 && less(last, h->items[(i - 1) / 2])) {
    place(h, i, last);
    sift_up(h, i);
    return;
  }
  size_t n = h->len;
  for (size_t child; (child = 2 * i + 1) < n; i = child) {
    if (child + 1 < n && less(h->items[child + 1], h->items[child])) child++;
    place(h, i, h->items[child]);
  }
  /* Rising stops at the hole's first place at the latest: last is not
     below the parent there (checked above), nor then below any ancestor. */
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!less(last, h->items[parent])) break;
    place(h, i, h->items[parent]);
    i = parent;
  }
  place(h, i, last);
}

qn__timer *qn__heap_top(const qn__timer_heap *h) {
  return h->len ? h->items[0] : NULL;
}

void qn__heap_free(qn_runtime *rt) {
  qn__timer_heap *h = &rt->timers;
  qn__free(rt, h->items);
  h->items = NULL;
  h->len = h->cap = 0;
}
