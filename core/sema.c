/*
** A FIFO semaphore: the base of quench's mutex, rwlock and semaphore.
** Permits go to waiters strictly in arrival order (a large request at the
** head is not overtaken), and an acquire succeeds at once only when nobody
** waits. A permit granted to a waiter that is dropped before taking it is
** released again, so a dropped waiter never ends up holding anything.
*/
#include "internal.h"

struct qn_sema {
  size_t permits;
  qn__list waiters;
  int closed;             /* qn_sema_close: every acquire fails from then on */
};

typedef struct acquire_future {
  qn_future base;
  qn_runtime *rt;
  qn_sema *s;
  qn__wait w;
  size_t k;
  int granted, taken;
} acquire_future;

size_t qn_sema_size(void) { return sizeof(qn_sema); }

void qn_sema_init(qn_sema *s, size_t permits) {
  s->permits = permits;
  qn__list_init(&s->waiters);
  s->closed = 0;
}

int qn_sema_is_closed(const qn_sema *s) { return s->closed; }

/* Waiters are woken ungranted: their acquire fails (QN_ECLOSED). Permits
   still held come back with qn_sema_release as before. */
void qn_sema_close(qn_sema *s) {
  s->closed = 1;
  qn__wait_wake_all(&s->waiters);
}

/* Take up to k available permits out of the semaphore for good; returns
   how many were taken (tokio's forget_permits). */
size_t qn_sema_forget(qn_sema *s, size_t k) {
  if (k > s->permits) k = s->permits;
  s->permits -= k;
  return k;
}

size_t qn_sema_available(const qn_sema *s) { return s->permits; }
int qn_sema_has_waiters(const qn_sema *s) { return !qn__list_empty(&s->waiters); }

int qn_sema_try_acquire(qn_sema *s, size_t k) {
  if (s->closed) return QN_ECLOSED;
  if (!qn__list_empty(&s->waiters) || s->permits < k) return QN_EFULL;
  s->permits -= k;
  return QN_OK;
}

void qn_sema_release(qn_sema *s, size_t k) {
  s->permits += k;
  qn__wait *w;
  while (!s->closed && (w = qn__wait_first(&s->waiters)) != NULL) {
    acquire_future *a = qn__container_of(w, acquire_future, w);
    if (a->k > s->permits) break;
    s->permits -= a->k;
    a->granted = 1;
    qn__wait_unlink(w);
    qn_wake(w->waker);
  }
}

static int acquire_poll(qn_future *f, qn_waker *wk) {
  acquire_future *a = (acquire_future *)f;
  if (a->granted || a->s->closed) return QN_READY;
  if (!a->w.linked && qn_sema_try_acquire(a->s, a->k) == QN_OK) {
    a->granted = 1;
    return QN_READY;
  }
  qn__wait_link(&a->s->waiters, &a->w, wk);
  return QN_PENDING;
}

static void acquire_drop(qn_future *f) {
  acquire_future *a = (acquire_future *)f;
  int was_first = a->w.linked && qn__wait_first(&a->s->waiters) == &a->w;
  qn__wait_unlink(&a->w);
  if (a->granted && !a->taken) qn_sema_release(a->s, a->k);
  else if (was_first) qn_sema_release(a->s, 0);   /* a smaller request behind may fit now */
  qn__free(a->rt, a);
}

static const qn_future_vt acquire_vt = { acquire_poll, acquire_drop };

qn_future *qn_sema_acquire_new(qn_runtime *rt, qn_sema *s, size_t k) {
  acquire_future *a = qn__calloc(rt, 1, sizeof *a);
  if (a == NULL) return NULL;
  a->base.vt = &acquire_vt;
  a->rt = rt;
  a->s = s;
  a->k = k;
  qn__wait_init(&a->w);
  return &a->base;
}

int qn_sema_acquire_take(qn_future *f) {
  acquire_future *a = (acquire_future *)f;
  if (!a->granted) return a->s->closed ? QN_ECLOSED : QN_EINVAL;
  if (a->taken) return QN_EINVAL;
  a->taken = 1;
  return QN_OK;
}
