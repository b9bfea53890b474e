/* The join future: ready when its target task is done. Waiting joiners are
   linked into the target's list; the target wakes them all when it ends. */
#include "internal.h"

typedef struct join_future {
  qn_future base;
  qn_runtime *rt;        /* the target's */
  qn_task *target;
  qn__list node;        /* target->joiners while waiting */
  qn_waker *waker;
} join_future;

static int join_poll(qn_future *f, qn_waker *w) {
  join_future *j = (join_future *)f;
  if (j->target->state == QN_TASK_DONE) return QN_READY;
  j->waker = w;
  if (qn__list_empty(&j->node)) qn__list_push(&j->target->joiners, &j->node);
  return QN_PENDING;
}

static void join_drop(qn_future *f) {
  join_future *j = (join_future *)f;
  qn__list_remove(&j->node);
  qn__small_free(j->rt, j, sizeof *j);
}

static const qn_future_vt join_vt = { join_poll, join_drop };

qn_future *qn_join_new(qn_task *target) {
  join_future *j = qn__small_alloc(target->rt, sizeof *j);
  if (j == NULL) return NULL;
  j->base.vt = &join_vt;
  j->rt = target->rt;
  j->target = target;
  j->waker = NULL;
  qn__list_init(&j->node);
  return &j->base;
}

/* Called once when `t` becomes done. */
void qn__wake_joiners(qn_task *t) {
  while (!qn__list_empty(&t->joiners)) {
    join_future *j = qn__container_of(t->joiners.next, join_future, node);
    qn__list_remove(&j->node);
    qn_wake(j->waker);
  }
}
