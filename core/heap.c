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

static void sift_down(qn__timer_heap *h, size_t i) {
  qn__timer *t = h->items[i];
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= h->len) break;
    if (child + 1 < h->len && less(h->items[child + 1], h->items[child])) child++;
    if (!less(h->items[child], t)) break;
    place(h, i, h->items[child]);
    i = child;
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

void qn__heap_remove(qn__timer_heap *h, qn__timer *t) {
  size_t i = t->index;
  if (i == SIZE_MAX) return;
  t->index = SIZE_MAX;
  qn__timer *last = h->items[--h->len];
  if (last == t) return;
  place(h, i, last);
  if (i > 0 && less(last, h->items[(i - 1) / 2])) sift_up(h, i);
  else sift_down(h, i);
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
