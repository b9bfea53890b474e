/*
** Signals: one uv_signal_t per signal number and runtime, made on the first
** wait and kept until the runtime ends (so a second Ctrl-C between two
** waits is counted, not lost to the default action). A delivery wakes every
** current waiter; with nobody waiting it is counted for the next one. The
** handle is referenced (keeps the loop alive) only while someone waits.
*/
#include "internal.h"

typedef struct sigwatch {
  uv_signal_t handle;
  qn__closer closer;      /* closed (and freed) at shutdown */
  qn_runtime *rt;
  qn__list node;          /* rt->signals */
  qn__list waiters;
  uint64_t pending, delivered;
  int signum;
} sigwatch;

typedef struct signal_future {
  qn_future base;
  qn_runtime *rt;
  sigwatch *sw;
  qn__wait w;
  int signum, ready, taken;
} signal_future;

static void on_signal(uv_signal_t *h, int signum) {
  (void)signum;
  sigwatch *sw = h->data;
  sw->delivered++;
  if (qn__list_empty(&sw->waiters)) sw->pending++;
  qn__wait *w;
  while ((w = qn__wait_first(&sw->waiters)) != NULL) {
    qn__wait_unlink(w);
    qn__container_of(w, signal_future, w)->ready = 1;
    qn_wake(w->waker);
  }
  uv_unref((uv_handle_t *)h);
}

static void on_close(uv_handle_t *h) {
  sigwatch *sw = h->data;
  qn__list_remove(&sw->node);
  qn__free(sw->rt, sw);
}

static void close_watch(qn__closer *c) {
  sigwatch *sw = qn__container_of(c, sigwatch, closer);
  uv_close((uv_handle_t *)&sw->handle, on_close);
}

static sigwatch *watch_for(qn_runtime *rt, int signum) {
  for (qn__list *n = rt->signals.next; n != &rt->signals; n = n->next) {
    sigwatch *sw = qn__container_of(n, sigwatch, node);
    if (sw->signum == signum) return sw;
  }
  if (rt->closed) return NULL;
  sigwatch *sw = qn__calloc(rt, 1, sizeof *sw);
  if (sw == NULL) return NULL;
  if (uv_signal_init(&rt->loop, &sw->handle) != 0) {
    qn__free(rt, sw);
    return NULL;
  }
  sw->handle.data = sw;
  sw->rt = rt;
  sw->signum = signum;
  qn__list_init(&sw->waiters);
  qn__list_push(&rt->signals, &sw->node);
  if (uv_signal_start(&sw->handle, on_signal, signum) != 0) {
    uv_close((uv_handle_t *)&sw->handle, on_close);
    return NULL;
  }
  sw->closer.close = close_watch;
  qn__closer_add(rt, &sw->closer);
  uv_unref((uv_handle_t *)&sw->handle);
  return sw;
}

static int signal_poll(qn_future *f, qn_waker *wk) {
  signal_future *s = (signal_future *)f;
  if (s->ready) return QN_READY;
  if (s->sw == NULL) {
    s->sw = watch_for(s->rt, s->signum);
    if (s->sw == NULL) return QN_READY;   /* cannot watch: qn_signal_failed says so */
    if (s->sw->pending > 0) {
      s->sw->pending--;
      s->ready = 1;
      return QN_READY;
    }
  }
  qn__wait_link(&s->sw->waiters, &s->w, wk);
  uv_ref((uv_handle_t *)&s->sw->handle);
  return QN_PENDING;
}

static void signal_drop(qn_future *f) {
  signal_future *s = (signal_future *)f;
  qn__wait_unlink(&s->w);
  if (s->ready && !s->taken && s->sw) s->sw->pending++;   /* woken, never seen: give it back */
  if (s->sw && qn__list_empty(&s->sw->waiters)) uv_unref((uv_handle_t *)&s->sw->handle);
  qn__free(s->rt, s);
}

static const qn_future_vt signal_vt = { signal_poll, signal_drop };

qn_future *qn_signal_new(qn_runtime *rt, int signum) {
  signal_future *s = qn__calloc(rt, 1, sizeof *s);
  if (s == NULL) return NULL;
  s->base.vt = &signal_vt;
  s->rt = rt;
  s->signum = signum;
  qn__wait_init(&s->w);
  return &s->base;
}

int qn_signal_take(qn_future *f) {
  signal_future *s = (signal_future *)f;
  if (!s->ready) return QN_EINVAL;
  s->taken = 1;
  return QN_OK;
}
