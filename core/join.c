/* The join future: ready when its target task is done. Waiting joiners are
   linked into the target's list; the target wakes them all when it ends. */
#include "internal.h"

typedef struct qn__join_future {
  qn_future base;
  qn_runtime *rt;        /* the target's */
  qn_task *target;
  /* target->joiners while waiting: a list whose head is one pointer (a
     task is 8 bytes smaller), each joiner pointing at the pointer to it,
     so that a dropped join unlinks itself at once */
  struct qn__join_future *next, **pprev;
  qn_waker *waker;
} join_future;

static int join_poll(qn_future *f, qn_waker *w) {
  join_future *j = (join_future *)f;
  if (j->target->state == QN_TASK_DONE) return QN_READY;
  j->waker = w;
  if (j->pprev == NULL) {
    join_future **head = &j->target->joiners;
    j->next = *head;
    if (j->next != NULL) j->next->pprev = &j->next;
    *head = j;
    j->pprev = head;
  }
  return QN_PENDING;
}

static void unlink_joiner(join_future *j) {
  if (j->pprev == NULL) return;
  *j->pprev = j->next;
  if (j->next != NULL) j->next->pprev = j->pprev;
  j->next = NULL;
  j->pprev = NULL;
}

static void join_drop(qn_future *f) {
  join_future *j = (join_future *)f;
  unlink_joiner(j);
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
  j->next = NULL;
  j->pprev = NULL;
  return &j->base;
}

/* Called once when `t` becomes done. Joiners are pushed at the front:
   reversed first, they are woken in the order they began to wait. (A
   wake only schedules: it drops no future.) */
void qn__wake_joiners(qn_task *t) {
  join_future *oldest = NULL;
  while (t->joiners != NULL) {
    join_future *j = t->joiners;
    unlink_joiner(j);
    j->next = oldest;               /* unlinked: next only threads this loop's list */
    oldest = j;
  }
  while (oldest != NULL) {
    join_future *j = oldest;
    oldest = j->next;
    j->next = NULL;
    qn_wake(j->waker);
  }
}
