/*
** Barrier: n tasks wait; the n-th arrival releases them all and is the
** leader. A waiter dropped before the release takes its arrival back.
*/
#include "internal.h"

struct qn_barrier {
  size_t n, arrived;
  uint64_t generation;
  qn__list waiters;
};

typedef struct barrier_future {
  qn_future base;
  qn_runtime *rt;
  qn_barrier *b;
  qn__wait w;
  uint64_t generation;
  int arrived, leader;
} barrier_future;

size_t qn_barrier_size(void) { return sizeof(qn_barrier); }

void qn_barrier_init(qn_barrier *b, size_t n) {
  b->n = n;
  b->arrived = 0;
  b->generation = 0;
  qn__list_init(&b->waiters);
}

static int barrier_poll(qn_future *f, qn_waker *wk) {
  barrier_future *bf = (barrier_future *)f;
  qn_barrier *b = bf->b;
  if (!bf->arrived) {
    bf->arrived = 1;
    bf->generation = b->generation;
    if (++b->arrived == b->n) {
      b->arrived = 0;
      b->generation++;
      bf->leader = 1;
      qn__wait_wake_all(&b->waiters);
      return QN_READY;
    }
  }
  if (b->generation != bf->generation) return QN_READY;
  qn__wait_link(&b->waiters, &bf->w, wk);
  return QN_PENDING;
}

static void barrier_drop(qn_future *f) {
  barrier_future *bf = (barrier_future *)f;
  qn__wait_unlink(&bf->w);
  if (bf->arrived && bf->b->generation == bf->generation) bf->b->arrived--;
  qn__free(bf->rt, bf);
}

static const qn_future_vt barrier_vt = { barrier_poll, barrier_drop };

qn_future *qn_barrier_wait_new(qn_runtime *rt, qn_barrier *b) {
  barrier_future *bf = qn__calloc(rt, 1, sizeof *bf);
  if (bf == NULL) return NULL;
  bf->base.vt = &barrier_vt;
  bf->rt = rt;
  bf->b = b;
  qn__wait_init(&bf->w);
  return &bf->base;
}

int qn_barrier_is_leader(const qn_future *f) {
  return ((const barrier_future *)f)->leader;
}
