/*
** Cancellation tokens: a flag in a tree. Cancelling a token cancels its
** whole subtree (pre-order, iteratively, so depth costs no C stack) and
** fires each cancelled token's watches once. An already-cancelled token's
** subtree is already cancelled (a child made under a cancelled parent starts
** cancelled), so the walk skips it. `origin` records where the cancel came
** from, so an embedder can find the reason given there.
**
** Watch callbacks run in the middle of the walk: they must not touch the
** tree (wake a waker, set a flag; nothing that runs user code).
*/
#include "internal.h"

struct qn_token {
  qn_token *parent, *first_child, *next, *prev;   /* siblings: next/prev */
  qn_token *origin;       /* the token whose cancel reached this one */
  qn_token_watch watches; /* list head */
  int cancelled;
};

size_t qn_token_size(void) { return sizeof(qn_token); }

void qn_token_init(qn_token *t, qn_token *parent) {
  t->parent = parent;
  t->first_child = t->next = t->prev = NULL;
  t->origin = NULL;
  t->watches.next = t->watches.prev = &t->watches;
  t->watches.fn = NULL;
  t->cancelled = 0;
  if (parent == NULL) return;
  if (parent->cancelled) {
    t->cancelled = 1;
    t->origin = parent->origin;
  }
  t->next = parent->first_child;
  if (t->next) t->next->prev = t;
  parent->first_child = t;
}

static void unlink_from_parent(qn_token *t) {
  if (t->parent == NULL) return;
  if (t->prev) t->prev->next = t->next;
  else t->parent->first_child = t->next;
  if (t->next) t->next->prev = t->prev;
  t->parent = t->next = t->prev = NULL;
}

void qn_token_fini(qn_token *t) {
  unlink_from_parent(t);
  while (t->first_child) unlink_from_parent(t->first_child);   /* children become roots */
  while (t->watches.next != &t->watches) qn_token_watch_remove(t->watches.next);
}

int qn_token_is_cancelled(const qn_token *t) { return t->cancelled; }
qn_token *qn_token_origin(const qn_token *t) { return t->origin; }
qn_token *qn_token_parent(const qn_token *t) { return t->parent; }

void qn_token_watch_add(qn_token *t, qn_token_watch *w) {
  w->next = &t->watches;
  w->prev = t->watches.prev;
  t->watches.prev->next = w;
  t->watches.prev = w;
}

void qn_token_watch_remove(qn_token_watch *w) {
  if (w->next == NULL) return;
  w->prev->next = w->next;
  w->next->prev = w->prev;
  w->next = w->prev = NULL;
}

static void fire(qn_token *t, qn_token *origin) {
  t->cancelled = 1;
  t->origin = origin;
  while (t->watches.next != &t->watches) {
    qn_token_watch *w = t->watches.next;
    qn_token_watch_remove(w);
    w->fn(w);
  }
}

int qn_token_cancel(qn_token *root) {
  if (root->cancelled) return 0;
  fire(root, root);
  qn_token *t = root->first_child;
  while (t != NULL) {
    int descend = !t->cancelled;
    if (descend) fire(t, root);
    if (descend && t->first_child) {
      t = t->first_child;
      continue;
    }
    while (t != root && t->next == NULL) t = t->parent;
    t = (t == root) ? NULL : t->next;
  }
  return 1;
}

/* ---- the "cancelled" future ---- */

typedef struct cancelled_future {
  qn_future base;
  qn_runtime *rt;
  qn_token *token;
  qn_token_watch watch;
  qn_waker *waker;
} cancelled_future;

static void on_cancel(qn_token_watch *w) {
  cancelled_future *c = qn__container_of(w, cancelled_future, watch);
  qn_wake(c->waker);
}

static int cancelled_poll(qn_future *f, qn_waker *w) {
  cancelled_future *c = (cancelled_future *)f;
  if (c->token->cancelled) return QN_READY;
  c->waker = w;
  if (c->watch.next == NULL) qn_token_watch_add(c->token, &c->watch);
  return QN_PENDING;
}

static void cancelled_drop(qn_future *f) {
  cancelled_future *c = (cancelled_future *)f;
  qn_token_watch_remove(&c->watch);
  qn__free(c->rt, c);
}

static const qn_future_vt cancelled_vt = { cancelled_poll, cancelled_drop };

qn_future *qn_token_cancelled_new(qn_runtime *rt, qn_token *t) {
  cancelled_future *c = qn__malloc(rt, sizeof *c);
  if (c == NULL) return NULL;
  c->base.vt = &cancelled_vt;
  c->rt = rt;
  c->token = t;
  c->watch.next = c->watch.prev = NULL;
  c->watch.fn = on_cancel;
  c->waker = NULL;
  return &c->base;
}
