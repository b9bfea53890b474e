/*
** Task lifecycle. A task is a future plus scheduling state:
**   PENDING --poll--> RUNNING --PENDING--> SUSPENDED --wake, poll--> RUNNING
**   RUNNING --READY--> DONE;  PENDING/SUSPENDED --abort--> DONE (cancelled)
** A task is in rt->runq at most once (the queued flag). Once done it is never
** queued again, and its future has been dropped: the last thing the core
** does with a task is qn_drop(fut), because the embedder may release the
** task's memory as soon as its future is gone.
*/
#include "internal.h"

size_t qn_task_size(void) { return sizeof(qn_task); }

static void task_wake(qn_waker *w) {
  qn__enqueue(qn__container_of(w, qn_task, waker));
}

void qn__enqueue(qn_task *t) {
  if (t->queued || t->state == QN_TASK_DONE || t->rt == NULL) return;
  t->queued = 1;
  qn__list_push(&t->rt->runq, &t->runq);
}

void qn_task_init(qn_task *t, qn_runtime *rt, qn_future *fut) {
  t->fut = fut;
  t->rt = rt;
  t->waker.wake = task_wake;
  qn__list_init(&t->runq);
  t->joiners = NULL;
  t->id = ++rt->next_id & ((UINT64_C(1) << 48) - 1);
  t->state = QN_TASK_PENDING;
  t->outcome = QN_TASK_OK;
  t->queued = t->cancel = t->abort = t->dropping = 0;
  qn__list_push(&rt->tasks, &t->node);
  rt->stats.spawned++;
  qn__enqueue(t);
}

void qn_task_fini(qn_task *t) {
  if (t->rt == NULL) return;
  if (t->queued) qn__list_remove(&t->runq);
  qn__list_remove(&t->node);
  t->rt = NULL;
}

qn_runtime *qn_task_runtime(const qn_task *t) { return t->rt; }
uint64_t qn_task_id(const qn_task *t) { return t->id; }
qn_task_state qn_task_get_state(const qn_task *t) { return (qn_task_state)t->state; }
qn_task_outcome qn_task_get_outcome(const qn_task *t) { return (qn_task_outcome)t->outcome; }
int qn_task_abort_requested(const qn_task *t) { return t->abort; }
int qn_task_dropping(const qn_task *t) { return t->dropping; }
int qn_task_cancel_requested(const qn_task *t) { return t->cancel; }
qn_waker *qn_task_waker(qn_task *t) { return &t->waker; }
void qn_task_wake(qn_task *t) { qn__enqueue(t); }

void qn_task_set_outcome(qn_task *t, qn_task_outcome o) {
  if (t->rt && t->state == QN_TASK_DONE && t->outcome != o) {
    qn_stats *s = &t->rt->stats;   /* done counters already include the old outcome */
    if (t->outcome == QN_TASK_FAILED) s->failed--;
    if (t->outcome == QN_TASK_CANCELLED) s->cancelled--;
    if (o == QN_TASK_FAILED) s->failed++;
    if (o == QN_TASK_CANCELLED) s->cancelled++;
  }
  t->outcome = o;
}

/* Mark done and wake joiners; the caller then drops the future. */
static qn_future *settle(qn_task *t, qn_task_outcome o) {
  qn_future *fut = t->fut;
  t->fut = NULL;
  t->state = QN_TASK_DONE;
  qn__list_remove(&t->node);
  qn__list_push(&t->rt->done, &t->node);
  t->outcome = o;
  if (t->queued) {
    t->queued = 0;
    qn__list_remove(&t->runq);
  }
  t->rt->stats.finished++;
  if (o == QN_TASK_FAILED) t->rt->stats.failed++;
  if (o == QN_TASK_CANCELLED) t->rt->stats.cancelled++;
  qn__wake_joiners(t);
  return fut;
}

static void drop_now(qn_task *t) {
  t->dropping = 1;
  qn_drop(settle(t, QN_TASK_CANCELLED));   /* the future's cleanups run here */
}

void qn_task_abort(qn_task *t) {
  if (t->rt == NULL || t->state == QN_TASK_DONE || t->dropping) return;
  if (t->state == QN_TASK_RUNNING) {
    t->abort = 1;   /* self-abort: dropped when its poll returns */
    return;
  }
  drop_now(t);
}

void qn_task_cancel(qn_task *t) {
  if (t->rt == NULL || t->state == QN_TASK_DONE) return;
  t->cancel = 1;
  qn__enqueue(t);
}

/* Poll one task taken off the run queue. */
void qn__poll_task(qn_task *t) {
  qn_runtime *rt = t->rt;
  qn_task *prev = rt->current;
  rt->current = t;
  t->state = QN_TASK_RUNNING;
  rt->stats.polls++;
  int r = qn_poll(t->fut, &t->waker);
  rt->current = prev;
  if (r == QN_READY) {
    qn_drop(settle(t, (qn_task_outcome)t->outcome));
  } else {
    t->state = QN_TASK_SUSPENDED;
    if (t->abort) drop_now(t);
  }
}

void qn__abort_for_shutdown(qn_task *t) {
  if (t->state != QN_TASK_DONE && !t->dropping) drop_now(t);
}
