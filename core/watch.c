/*
** Watch: a version number that only grows, with waiters for a version newer
** than the one they saw. The value itself lives with the embedder.
*/
#include "internal.h"

struct qn_watch {
  uint64_t version;
  int closed;
  qn__list waiters;
};

typedef struct changed_future {
  qn_future base;
  qn_runtime *rt;
  qn_watch *wt;
  qn__wait w;
  uint64_t seen;
} changed_future;

size_t qn_watch_size(void) { return sizeof(qn_watch); }

void qn_watch_init(qn_watch *wt) {
  wt->version = 1;
  wt->closed = 0;
  qn__list_init(&wt->waiters);
}

uint64_t qn_watch_version(const qn_watch *wt) { return wt->version; }
int qn_watch_is_closed(const qn_watch *wt) { return wt->closed; }

void qn_watch_bump(qn_watch *wt) {
  wt->version++;
  qn__wait_wake_all(&wt->waiters);
}

void qn_watch_close(qn_watch *wt) {
  wt->closed = 1;
  qn__wait_wake_all(&wt->waiters);
}

static int changed_poll(qn_future *f, qn_waker *wk) {
  changed_future *c = (changed_future *)f;
  if (c->wt->version != c->seen || c->wt->closed) return QN_READY;
  qn__wait_link(&c->wt->waiters, &c->w, wk);
  return QN_PENDING;
}

static void changed_drop(qn_future *f) {
  changed_future *c = (changed_future *)f;
  qn__wait_unlink(&c->w);
  qn__free(c->rt, c);
}

static const qn_future_vt changed_vt = { changed_poll, changed_drop };

qn_future *qn_watch_changed_new(qn_runtime *rt, qn_watch *wt, uint64_t seen) {
  changed_future *c = qn__calloc(rt, 1, sizeof *c);
  if (c == NULL) return NULL;
  c->base.vt = &changed_vt;
  c->rt = rt;
  c->wt = wt;
  c->seen = seen;
  qn__wait_init(&c->w);
  return &c->base;
}
