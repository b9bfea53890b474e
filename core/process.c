/*
** Child processes. A process is an I/O object (see quench.h) around one
** uv_process_t. libuv reaps the child (waitpid on SIGCHLD) and calls the
** exit callback, which records the status and wakes every wait future;
** waiting takes nothing, so a dropped wait loses nothing and any number of
** waits see the same status.
**
** Release now (the embedder closes it), and the runtime's end (the process
** is on the runtime's closers while its handle is open):
** - exited: the handle closes now;
** - running, kill_on_drop: SIGKILL, then the child is reaped here (waitpid,
**   for at most REAP_NS) and the handle closes, so no zombie and no orphan
**   is left behind; a child that does not die in time (stuck in the kernel)
**   is left to the exit callback, as below;
** - running, not kill_on_drop: the child runs on (detached). On release the
**   handle stays open until the exit callback reaps the child, then closes;
**   at the runtime's end the handle closes at once, and a child still
**   running is no longer watched (its exit leaves a zombie until this
**   process exits).
** A release that is not "now" (garbage collection) leaves a running child
** alone: the exit callback, or the runtime's end, deals with it.
** Never waitpid a child libuv still tracks: libuv would never see its exit.
** Here the handle is closed (which untracks it) right after we reaped it,
** and nothing else runs on the loop thread in between.
*/
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "internal.h"

enum { REAP_NS = 100 * 1000 * 1000, REAP_STEP_NS = 100 * 1000 };

struct qn_process {
  uv_process_t handle;
  qn__io io;              /* rt, refs, closers, closing, closed, released (io.c) */
  qn__list waiters;       /* wait futures, woken at exit */
  int64_t exit_status;
  int term_signal;
  int pid;
  uint8_t exited, kill_on_drop;
};

typedef struct wait_future {
  qn_future base;
  qn_process *p;
  qn__wait w;
} wait_future;

static void process_free(qn__io *io) {
  qn_process *p = qn__container_of(io, qn_process, io);
  qn__free(io->rt, p);
}

static void unref(qn_process *p) { qn__io_unref(&p->io); }

static void on_close(uv_handle_t *h) {
  qn_process *p = h->data;
  qn__io_closed(&p->io);
}

static void close_handle(qn_process *p) {
  qn__io_close_handle(&p->io, (uv_handle_t *)&p->handle, on_close);
}

static void exited(qn_process *p, int64_t status, int signal) {
  p->exited = 1;
  p->exit_status = status;
  p->term_signal = signal;
  qn__wait_wake_all(&p->waiters);
}

static void on_exit(uv_process_t *h, int64_t status, int signal) {
  qn_process *p = h->data;
  exited(p, status, signal);
  if (p->io.released) close_handle(p);
}

/* Reap a child we just killed, waiting at most REAP_NS. 1 if reaped. */
static int reap(qn_process *p) {
  struct timespec step = { 0, REAP_STEP_NS };
  for (long waited = 0; waited <= REAP_NS; waited += REAP_STEP_NS) {
    int st;
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == p->pid) {
      exited(p, WIFEXITED(st) ? WEXITSTATUS(st) : 0, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
      return 1;
    }
    if (r < 0 && errno != EINTR) return 0;
    if (r == 0) nanosleep(&step, NULL);
  }
  return 0;
}

/* Drop a running child: SIGKILL and reap it, or leave it running. 1 when
   the handle may close now. */
static int stop(qn_process *p) {
  if (p->exited) return 1;
  return p->kill_on_drop && uv_process_kill(&p->handle, SIGKILL) == 0 && reap(p);
}

static void close_at_shutdown(qn__io *io) {
  qn_process *p = qn__container_of(io, qn_process, io);
  stop(p);
  close_handle(p);
}

static const qn__io_ops process_ops = { process_free, close_at_shutdown };

int qn_process_spawn(qn_runtime *rt, const qn_process_opts *o, qn_process **out, int fds[3]) {
  *out = NULL;
  int child[3] = { -1, -1, -1 };
  for (int i = 0; i < 3; i++) fds[i] = -1;
  if (rt->closed) return UV_ECANCELED;
  qn_process *p = qn__calloc(rt, 1, sizeof *p);
  if (p == NULL) return UV_ENOMEM;
  p->io.rt = rt;                /* no ref until it runs: a failure frees it at its close */
  p->io.ops = &process_ops;
  uv_stdio_container_t stdio[3];
  int r = 0;
  for (int i = 0; i < 3 && r == 0; i++) {
    switch (o->stdio[i]) {
    case QN_STDIO_IGNORE:
      stdio[i].flags = UV_IGNORE;
      break;
    case QN_STDIO_PIPE: {
      int pair[2];   /* a socket pair, as libuv's own pipes: shutdown works on it */
      r = uv_socketpair(SOCK_STREAM, 0, pair, 0, UV_NONBLOCK_PIPE);
      if (r != 0) break;
      child[i] = pair[0];
      fds[i] = pair[1];
      stdio[i].flags = UV_INHERIT_FD;
      stdio[i].data.fd = child[i];
      break;
    }
    default:
      stdio[i].flags = UV_INHERIT_FD;
      stdio[i].data.fd = i;
      break;
    }
  }
  if (r == 0) {
    uv_process_options_t po;
    memset(&po, 0, sizeof po);
    po.exit_cb = on_exit;
    po.file = o->file;
    po.args = o->args;
    po.env = o->env;
    po.cwd = o->cwd;
    po.stdio_count = 3;
    po.stdio = stdio;
    p->handle.data = p;
    r = uv_spawn(&rt->loop, &p->handle, &po);
    if (r != 0) {   /* the handle was initialised all the same */
      p->io.released = 1;
      p->io.handle_closing = 1;
      uv_close((uv_handle_t *)&p->handle, on_close);
    }
  } else {
    p->io.closed = 1;   /* no handle was made */
  }
  for (int i = 0; i < 3; i++)
    if (child[i] >= 0) close(child[i]);
  if (r != 0) {
    for (int i = 0; i < 3; i++) {
      if (fds[i] >= 0) close(fds[i]);
      fds[i] = -1;
    }
    if (p->io.closed) process_free(&p->io);   /* else its close callback frees it */
    return r;
  }
  p->pid = p->handle.pid;
  p->kill_on_drop = o->kill_on_drop != 0;
  qn__list_init(&p->waiters);
  qn__io_init(&p->io, rt, &process_ops);
  *out = p;
  return 0;
}

int qn_process_pid(const qn_process *p) { return p->pid; }

int qn_process_exited(const qn_process *p, int64_t *status, int *signal) {
  if (!p->exited) return 0;
  if (status) *status = p->exit_status;
  if (signal) *signal = p->term_signal;
  return 1;
}

int qn_process_is_closed(const qn_process *p) { return p->io.handle_closing; }

int qn_process_kill(qn_process *p, int signum) {
  if (p->exited) return UV_ESRCH;          /* reaped: the pid may be someone else's now */
  if (p->io.handle_closing) return UV_ECANCELED;     /* no longer watched */
  return uv_process_kill(&p->handle, signum);
}

void qn_process_release(qn_process *p, int now) {
  if (!qn__io_release(&p->io)) return;
  if (!p->io.handle_closing && (p->exited || (now && stop(p)))) close_handle(p);   /* else on_exit does */
  unref(p);
}

/* ---- wait ---- */

static int wait_poll(qn_future *f, qn_waker *wk) {
  wait_future *w = (wait_future *)f;
  qn_process *p = w->p;
  if (p->exited || p->io.handle_closing) {            /* no exit can come after a close */
    qn__wait_unlink(&w->w);
    return QN_READY;
  }
  qn__wait_link(&p->waiters, &w->w, wk);
  return QN_PENDING;
}

static void wait_drop(qn_future *f) {
  wait_future *w = (wait_future *)f;
  qn_process *p = w->p;
  qn__wait_unlink(&w->w);
  qn__free(p->io.rt, w);
  unref(p);
}

static const qn_future_vt wait_vt = { wait_poll, wait_drop };

qn_future *qn_process_wait_new(qn_process *p) {
  wait_future *w = qn__calloc(p->io.rt, 1, sizeof *w);
  if (w == NULL) return NULL;
  w->base.vt = &wait_vt;
  w->p = p;
  qn__wait_init(&w->w);
  qn__io_ref(&p->io);
  return &w->base;
}
