/*
** Notify (as tokio's): notify_one wakes the first waiter, or stores one
** permit when nobody waits; notify_all wakes every current waiter and
** stores nothing; notify_last wakes the newest waiter. A waiter woken by notify_one and dropped before it saw
** the notification passes it on, so no notify_one is lost.
*/
#include "internal.h"

struct qn_notify {
  int permit;
  qn__list waiters;
};

typedef struct notified_future {
  qn_future base;
  qn_runtime *rt;
  qn_notify *n;
  qn__wait w;
  int notified, by_one, taken;
} notified_future;

size_t qn_notify_size(void) { return sizeof(qn_notify); }

void qn_notify_init(qn_notify *n) {
  n->permit = 0;
  qn__list_init(&n->waiters);
}

static void wake_one(notified_future *f, int by_one) {
  qn__wait_unlink(&f->w);
  f->notified = 1;
  f->by_one = by_one;
  qn_wake(f->w.waker);
}

void qn_notify_one(qn_notify *n) {
  qn__wait *w = qn__wait_first(&n->waiters);
  if (w == NULL) n->permit = 1;
  else wake_one(qn__container_of(w, notified_future, w), 1);
}

/* As notify_one, but the most recent waiter (tokio's notify_last): LIFO,
   for a pool that wants the warmest worker. */
void qn_notify_last(qn_notify *n) {
  if (qn__list_empty(&n->waiters)) {
    n->permit = 1;
    return;
  }
  qn__wait *w = (qn__wait *)((char *)n->waiters.prev - offsetof(qn__wait, node));
  wake_one(qn__container_of(w, notified_future, w), 1);
}

void qn_notify_all(qn_notify *n) {
  qn__wait *w;
  while ((w = qn__wait_first(&n->waiters)) != NULL)
    wake_one(qn__container_of(w, notified_future, w), 0);
}

static int notified_poll(qn_future *f, qn_waker *wk) {
  notified_future *nf = (notified_future *)f;
  if (nf->notified) return QN_READY;
  if (!nf->w.linked && nf->n->permit) {
    nf->n->permit = 0;
    nf->notified = nf->by_one = 1;
    return QN_READY;
  }
  qn__wait_link(&nf->n->waiters, &nf->w, wk);
  return QN_PENDING;
}

static void notified_drop(qn_future *f) {
  notified_future *nf = (notified_future *)f;
  qn__wait_unlink(&nf->w);
  if (nf->notified && nf->by_one && !nf->taken) qn_notify_one(nf->n);
  qn__free(nf->rt, nf);
}

static const qn_future_vt notified_vt = { notified_poll, notified_drop };

qn_future *qn_notify_notified_new(qn_runtime *rt, qn_notify *n) {
  notified_future *nf = qn__calloc(rt, 1, sizeof *nf);
  if (nf == NULL) return NULL;
  nf->base.vt = &notified_vt;
  nf->rt = rt;
  nf->n = n;
  qn__wait_init(&nf->w);
  return &nf->base;
}

void qn_notify_notified_take(qn_future *f) {
  ((notified_future *)f)->taken = 1;
}
