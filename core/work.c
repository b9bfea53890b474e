/*
** Blocking work: a future over uv_queue_work, the core of the blocking pool.
** `run(self, arg)` runs once on one of libuv's pool threads; the future is
** ready when it has (and libuv's after_work callback has run on the loop
** thread).
**
** States: NEW (not submitted: the work is queued at the first poll),
** QUEUED (submitted, after_work not seen yet), DONE.
**
** Dropping is cancelling, without ever waiting for a thread:
** - NEW or DONE: release(arg) and free at once.
** - QUEUED: set the atomic `cancelled` flag (run may poll it with
**   qn_work_is_cancelled and stop early), uv_cancel the request (it succeeds
**   only while the work has not started), and leave the future as a zombie:
**   libuv still owns the request, so its after_work callback, which comes in
**   every case (UV_ECANCELED when the cancel won), releases and frees it.
**   The runtime's shutdown runs the loop until no request is left, so a
**   zombie whose work is still running is waited for there, not abandoned.
**
** Threads: run() touches only `arg` and the flag; everything else happens
** on the loop thread. The pool's queue gives the hand-offs (submit -> run
** -> after_work) their happens-before order.
*/
#include <stdatomic.h>
#include "internal.h"

enum { NEW, QUEUED, DONE };

typedef struct work_future {
  qn_future base;
  uv_work_t req;
  qn_runtime *rt;
  uv_loop_t *loop;
  qn_waker *waker;
  qn_work_fn run;
  void (*release)(void *arg);
  void *arg;
  atomic_int cancelled;
  int status;           /* once DONE: 0 if run ran, else a uv error code */
  uint8_t state, zombie;
} work_future;

static void destroy(work_future *w) {
  w->release(w->arg);
  qn__free(w->rt, w);
}

static void on_work(uv_work_t *req) {
  work_future *w = qn__container_of(req, work_future, req);
  w->run(&w->base, w->arg);
}

static void after_work(uv_work_t *req, int status) {
  work_future *w = qn__container_of(req, work_future, req);
  if (w->zombie) {      /* dropped while queued or running: nobody waits */
    destroy(w);
    return;
  }
  w->status = status;
  w->state = DONE;
  if (w->waker) qn_wake(w->waker);
}

static int work_poll(qn_future *f, qn_waker *wk) {
  work_future *w = (work_future *)f;
  w->waker = wk;
  if (w->state == NEW) {
    int r = uv_queue_work(w->loop, &w->req, on_work, after_work);
    if (r != 0) {
      w->status = r;
      w->state = DONE;
      return QN_READY;
    }
    w->state = QUEUED;
  }
  return w->state == DONE ? QN_READY : QN_PENDING;
}

static void work_drop(qn_future *f) {
  work_future *w = (work_future *)f;
  if (w->state != QUEUED) {
    destroy(w);
    return;
  }
  atomic_store(&w->cancelled, 1);
  w->zombie = 1;
  w->waker = NULL;
  uv_cancel((uv_req_t *)&w->req);   /* 0 if not started; UV_EBUSY if running */
}

static const qn_future_vt work_vt = { work_poll, work_drop };

qn_future *qn_work_new(qn_runtime *rt, qn_work_fn run, void (*release)(void *arg), void *arg) {
  work_future *w = qn__calloc(rt, 1, sizeof *w);
  if (w == NULL) return NULL;
  w->base.vt = &work_vt;
  w->rt = rt;
  w->loop = qn_runtime_loop(rt);
  w->run = run;
  w->release = release;
  w->arg = arg;
  atomic_init(&w->cancelled, 0);
  w->state = NEW;
  return &w->base;
}

int qn_work_is_cancelled(const qn_future *f) {
  work_future *w = (work_future *)f;
  return atomic_load(&w->cancelled);
}

int qn_work_status(const qn_future *f) { return ((const work_future *)f)->status; }

void *qn_work_arg(const qn_future *f) { return ((const work_future *)f)->arg; }
