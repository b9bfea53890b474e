/*
** Pipe streams: a uv_pipe_t on a pipe, a Unix socket (a child's stdio) or a
** terminal, with the semantics of a TCP stream (core/tcp.c): what this file
** does for reading, writing, shutdown and close is what tcp.c does for a
** uv_tcp_t, and the API mirrors qn_tcp's (it takes qn_tcp_mode), so the
** two can become one stream over uv_stream_t.
**
** Reading. Once the first read asks, the stream reads into its own buffer,
** buf[off .. off+len), and reading pauses (uv_read_stop) while more than
** `read_limit` bytes wait there, or more than a waiting read needs (a read
** of n bytes needs n; a line or "everything" needs no limit). A read future
** only waits until the buffer can satisfy it; the bytes a read returns are
** consumed when the embedder has copied them (qn_pipe_consume), so a
** dropped read loses nothing. EOF and read errors are sticky and come after
** the buffered bytes.
**
** Writing. qn_pipe_write tries at once (uv_try_write); what the pipe does
** not take is copied into a write request, which libuv owns until its
** callback whether or not anyone still cares. A writer waits (writable
** future) only while more than `write_limit` bytes are queued. Closing with
** writes queued lingers until they are written (or fail).
**
** Lifetime: the I/O object rules of quench.h. While its handle is open the
** stream is on the runtime's closers, so qn_runtime_shutdown closes it with
** on_close. libuv calls every request's callback before the close callback.
**
** Standard streams. qn_pipe_open_stdio never puts fd 0, 1 or 2 itself in
** the loop: a terminal is reopened by name and a pipe through /proc (a new
** open file description, whose non-blocking mode touches nobody else); a
** socket, or a pipe that cannot be reopened, is dup()ed, and then the open
** file description it shares with fd 0-2 (and with whoever else holds it)
** is non-blocking while the stream is open: its flags come back at close.
** A regular file or a character device such as /dev/null cannot be watched
** by epoll: UV_ENOTSUP. At the runtime's end a standard stream first writes
** out, blocking, what libuv has not written yet (as exit() flushes stdout);
** other pipes close at once, as TCP sockets do.
*/
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "internal.h"

enum {
  BUF_MIN_READ = 16 * 1024,   /* a read offers libuv at least this much room */
  BUF_INIT = 64 * 1024,
  BUF_KEEP = 64 * 1024,       /* an emptied buffer larger than this is freed */
  REQ_MAX = 1 << 30           /* bytes per write request (uv_buf_t takes unsigned) */
};

struct qn_pipe {
  uv_pipe_t handle;
  qn_runtime *rt;
  qn__closer closer;
  char *buf;
  size_t off, len, cap;
  size_t read_limit, write_limit;
  size_t need;              /* what the waiting reads need buffered */
  size_t nwrites;           /* write requests in flight */
  qn__list readers, writers;
  qn__list wq;              /* write requests in flight, oldest first */
  int nreaders, nwriters;   /* read and writable futures alive */
  int refs;                 /* the embedder, and each future */
  int read_err;             /* 0, UV_EOF or a read error */
  int write_err;
  int restore_fd, restore_flags;   /* a shared description's flags, set back at close */
  uint8_t readable, writable, reading, registered, closing, lingering, handle_closing;
  uint8_t closed, released, shut, started, flush_at_end;
};

typedef struct write_req {
  uv_write_t req;
  qn_pipe *p;
  qn__list node;            /* p->wq */
  size_t len;
  char data[];
} write_req;

static void on_read(uv_stream_t *h, ssize_t n, const uv_buf_t *b);

/* ---- lifetime ---- */

static void maybe_free(qn_pipe *p) {
  if (p->refs > 0 || !p->closed) return;
  free(p->buf);
  free(p);
}

static void unref(qn_pipe *p) {
  p->refs--;
  maybe_free(p);
}

static void on_close(uv_handle_t *h) {
  qn_pipe *p = h->data;
  if (p->restore_fd >= 0) fcntl(p->restore_fd, F_SETFL, p->restore_flags);
  free(p->buf);                 /* nothing reads a closed stream's buffer */
  p->buf = NULL;
  p->len = p->cap = p->off = 0;
  p->closed = 1;
  maybe_free(p);
}

static void stop_reading(qn_pipe *p) {
  if (!p->reading) return;
  uv_read_stop((uv_stream_t *)&p->handle);
  p->reading = 0;
}

static void close_handle(qn_pipe *p) {
  p->lingering = 0;
  if (p->handle_closing) return;
  p->handle_closing = 1;
  if (p->registered) {
    qn__closer_remove(&p->closer);
    p->registered = 0;
  }
  uv_close((uv_handle_t *)&p->handle, on_close);
}

/* Closed for the embedder: reading stops, every waiting future is ready. */
static void mark_closed(qn_pipe *p) {
  if (p->closing) return;
  p->closing = 1;
  stop_reading(p);
  qn__wait_wake_all(&p->readers);
  qn__wait_wake_all(&p->writers);
}

/* Write what libuv has not written yet, blocking: the requests are in
   order and libuv has written the first (total - queued) bytes of them. */
static void flush_now(qn_pipe *p) {
  uv_os_fd_t fd;
  if (p->write_err != 0 || qn__list_empty(&p->wq) ||
      uv_fileno((uv_handle_t *)&p->handle, &fd) != 0) return;
  size_t total = 0, skip;
  for (qn__list *n = p->wq.next; n != &p->wq; n = n->next)
    total += qn__container_of(n, write_req, node)->len;
  skip = total - qn_pipe_write_queued(p);
  int flags = fcntl(fd, F_GETFL);
  if (flags == -1 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == -1) return;
  for (qn__list *n = p->wq.next; n != &p->wq; n = n->next) {
    write_req *w = qn__container_of(n, write_req, node);
    if (skip >= w->len) {
      skip -= w->len;
      continue;
    }
    for (size_t off = skip; off < w->len;) {
      ssize_t k = write(fd, w->data + off, w->len - off);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) goto out;                   /* the reader is gone: nothing more to do */
      off += (size_t)k;
    }
    skip = 0;
  }
out:
  fcntl(fd, F_SETFL, flags);
}

static void close_at_shutdown(qn__closer *c) {
  qn_pipe *p = qn__container_of(c, qn_pipe, closer);
  p->registered = 0;            /* the runtime unlinked it */
  if (p->flush_at_end) flush_now(p);
  mark_closed(p);
  close_handle(p);
}

static void ignore_sigpipe(void) {
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) != 0 || sa.sa_handler != SIG_DFL) return;
  sa.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &sa, NULL);
}

static size_t pick(size_t v, size_t dflt) { return v ? v : dflt; }

int qn_pipe_open(qn_runtime *rt, int fd, const qn_pipe_opts *o, qn_pipe **out) {
  *out = NULL;
  if (rt->closed) return UV_ECANCELED;
  int mode = fcntl(fd, F_GETFL);
  if (mode == -1) return -errno;
  qn_pipe *p = calloc(1, sizeof *p);
  if (p == NULL) return UV_ENOMEM;
  int r = uv_pipe_init(&rt->loop, &p->handle, 0);
  if (r != 0) {
    free(p);
    return r;
  }
  p->handle.data = p;
  p->restore_fd = -1;
  r = uv_pipe_open(&p->handle, fd);
  if (r != 0) {                 /* the handle exists (without the fd, still the caller's) */
    p->closing = p->handle_closing = 1;
    uv_close((uv_handle_t *)&p->handle, on_close);
    return r;
  }
  p->rt = rt;
  p->refs = 1;
  unsigned dir = o && o->dir ? o->dir : QN_PIPE_READABLE | QN_PIPE_WRITABLE;
  p->readable = (mode & O_ACCMODE) != O_WRONLY && (dir & QN_PIPE_READABLE);
  p->writable = (mode & O_ACCMODE) != O_RDONLY && (dir & QN_PIPE_WRITABLE);
  p->read_limit = pick(o ? o->read_limit : 0, QN_TCP_READ_LIMIT);
  p->write_limit = pick(o ? o->write_limit : 0, QN_TCP_WRITE_LIMIT);
  qn__list_init(&p->readers);
  qn__list_init(&p->writers);
  qn__list_init(&p->wq);
  p->closer.close = close_at_shutdown;
  qn__closer_add(rt, &p->closer);
  p->registered = 1;
  ignore_sigpipe();
  *out = p;
  return 0;
}

/* A new open file description for fd (a terminal or a pipe), or -1. */
static int reopen(int fd, int type, int mode) {
  char path[256];
  if (type == UV_TTY) {
    if (ttyname_r(fd, path, sizeof path) != 0) return -1;
  } else {
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  int flags = (mode & O_ACCMODE) | O_NOCTTY | O_CLOEXEC | O_NONBLOCK;
  int r;
  do r = open(path, flags);
  while (r == -1 && errno == EINTR);
  return r;
}

int qn_pipe_open_stdio(qn_runtime *rt, int fd, const qn_pipe_opts *o, qn_pipe **out) {
  *out = NULL;
  uv_handle_type type = uv_guess_handle(fd);
  if (type == UV_FILE) return UV_ENOTSUP;
  if (type != UV_TTY && type != UV_NAMED_PIPE && type != UV_TCP) return UV_EBADF;
  int mode = fcntl(fd, F_GETFL);
  if (mode == -1) return -errno;
  int shared = 0, own = type == UV_TCP ? -1 : reopen(fd, type, mode);
  if (own < 0) {
    own = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (own < 0) return -errno;
    shared = 1;
  }
  int r = qn_pipe_open(rt, own, o, out);
  if (r != 0) {
    close(own);
    if (shared) fcntl(fd, F_SETFL, mode);
    return r;
  }
  if (shared) {
    (*out)->restore_fd = fd;
    (*out)->restore_flags = mode;
  }
  (*out)->flush_at_end = 1;
  return 0;
}

int qn_pipe_is_closed(const qn_pipe *p) { return p->closing; }
int qn_pipe_is_shut(const qn_pipe *p) { return p->shut; }
int qn_pipe_readable(const qn_pipe *p) { return p->readable; }
int qn_pipe_writable(const qn_pipe *p) { return p->writable; }
size_t qn_pipe_buffered(const qn_pipe *p) { return p->len; }
int qn_pipe_readers(const qn_pipe *p) { return p->nreaders; }
int qn_pipe_writers(const qn_pipe *p) { return p->nwriters; }

size_t qn_pipe_write_queued(const qn_pipe *p) {
  return uv_stream_get_write_queue_size((const uv_stream_t *)&p->handle);
}

void qn_pipe_close(qn_pipe *p) {
  if (p->closing) return;
  mark_closed(p);
  if (p->nwrites > 0 && p->write_err == 0) p->lingering = 1;
  else close_handle(p);
}

void qn_pipe_release(qn_pipe *p) {
  if (p->released) return;
  p->released = 1;
  qn_pipe_close(p);
  unref(p);
}

/* ---- reading ---- */

static size_t read_limit(const qn_pipe *p) {
  return p->need > p->read_limit ? p->need : p->read_limit;
}

/* Make room for `want` more bytes after the buffered ones. */
static int reserve(qn_pipe *p, size_t want) {
  if (p->len == 0) p->off = 0;
  if (p->cap - p->off - p->len >= want) return 0;
  if (p->cap - p->len >= want) {
    memmove(p->buf, p->buf + p->off, p->len);
    p->off = 0;
    return 0;
  }
  size_t cap = p->cap ? p->cap : BUF_INIT;
  while (cap - p->len < want) {
    if (cap > SIZE_MAX / 2) return UV_ENOBUFS;
    cap *= 2;
  }
  char *b = malloc(cap);
  if (b == NULL) return UV_ENOBUFS;
  if (p->len) memcpy(b, p->buf + p->off, p->len);
  free(p->buf);
  p->buf = b;
  p->cap = cap;
  p->off = 0;
  return 0;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  (void)hint;
  qn_pipe *p = h->data;
  if (reserve(p, BUF_MIN_READ) != 0) {
    *b = uv_buf_init(NULL, 0);                /* libuv reports UV_ENOBUFS */
    return;
  }
  size_t room = p->cap - p->off - p->len;
  *b = uv_buf_init(p->buf + p->off + p->len, room > REQ_MAX ? REQ_MAX : (unsigned)room);
}

static void start_reading(qn_pipe *p) {
  if (!p->started || p->reading || p->closing || p->read_err || p->len >= read_limit(p)) return;
  int r = uv_read_start((uv_stream_t *)&p->handle, on_alloc, on_read);
  if (r != 0) p->read_err = r;
  else p->reading = 1;
}

typedef struct read_future {
  qn_future base;
  qn_pipe *p;
  qn__wait w;
  qn_tcp_mode mode;
  size_t n;
  size_t scanned;           /* a line read: bytes already seen without "\n" */
} read_future;

/* Whether qn_pipe_peek would return something other than UV_EAGAIN. */
static int satisfiable(read_future *r) {
  qn_pipe *p = r->p;
  if (p->closing || p->read_err) return 1;
  switch (r->mode) {
  case QN_TCP_SOME:
    return p->len > 0;
  case QN_TCP_EXACT:
    return p->len >= r->n;
  case QN_TCP_LINE:
  case QN_TCP_LINE_KEEP: {
    size_t from = r->scanned <= p->len ? r->scanned : 0;
    if (from < p->len && memchr(p->buf + p->off + from, '\n', p->len - from) != NULL) return 1;
    r->scanned = p->len;
    return 0;
  }
  default:
    return 0;
  }
}

static void wake_readers(qn_pipe *p) {
  qn__list *n, *next;
  for (n = p->readers.next; n != &p->readers; n = next) {
    next = n->next;                           /* a wake may unlink */
    read_future *r = qn__container_of(n, read_future, w.node);
    if (!satisfiable(r)) continue;
    qn__wait_unlink(&r->w);
    qn_wake(r->w.waker);
  }
}

static void on_read(uv_stream_t *h, ssize_t n, const uv_buf_t *b) {
  (void)b;
  qn_pipe *p = h->data;
  if (n > 0) {
    p->len += (size_t)n;
    if (p->len >= read_limit(p)) stop_reading(p);
  } else if (n < 0) {
    p->read_err = (int)n;
    stop_reading(p);
  } else {
    return;                                   /* EAGAIN: nothing */
  }
  wake_readers(p);
}

int qn_pipe_peek(qn_pipe *p, qn_tcp_mode mode, size_t n, const char **data, size_t *len,
                 size_t *used) {
  const char *s = p->buf ? p->buf + p->off : "";
  int eof = p->read_err == UV_EOF;
  *data = s;
  *len = *used = 0;
  if (p->closing) return UV_ECANCELED;
  switch (mode) {
  case QN_TCP_SOME:
    if (p->len > 0) {
      *len = *used = (n > 0 && n < p->len) ? n : p->len;
      return 0;
    }
    break;
  case QN_TCP_EXACT:
    if (p->len >= n && (n > 0 || p->len > 0 || !p->read_err)) {
      *len = *used = n;
      return 0;
    }
    if (eof && p->len > 0) {                  /* fewer only at EOF */
      *len = *used = p->len;
      return 0;
    }
    break;
  case QN_TCP_LINE:
  case QN_TCP_LINE_KEEP: {
    const char *nl = p->len ? memchr(s, '\n', p->len) : NULL;
    if (nl != NULL) {
      size_t k = (size_t)(nl - s);
      *len = k + (mode == QN_TCP_LINE_KEEP);
      *used = k + 1;
      return 0;
    }
    if (eof && p->len > 0) {                  /* the last line has no "\n" */
      *len = *used = p->len;
      return 0;
    }
    break;
  }
  case QN_TCP_ALL:
    if (eof) {
      *len = *used = p->len;
      return 0;
    }
    break;
  }
  if (p->read_err) return p->read_err;
  p->started = 1;                             /* the first read starts reading */
  start_reading(p);
  return p->read_err ? p->read_err : UV_EAGAIN;
}

void qn_pipe_consume(qn_pipe *p, size_t used) {
  if (used > p->len) used = p->len;
  p->off += used;
  p->len -= used;
  if (p->len == 0) {
    p->off = 0;
    if (p->cap > BUF_KEEP) {                  /* give back what a burst made grow */
      free(p->buf);
      p->buf = NULL;
      p->cap = 0;
    }
  }
  start_reading(p);
}

static size_t need_of(const read_future *r) {
  switch (r->mode) {
  case QN_TCP_SOME: return 0;
  case QN_TCP_EXACT: return r->n;
  default: return SIZE_MAX;
  }
}

static int read_poll(qn_future *f, qn_waker *wk) {
  read_future *r = (read_future *)f;
  qn_pipe *p = r->p;
  if (satisfiable(r)) {
    qn__wait_unlink(&r->w);
    return QN_READY;
  }
  qn__wait_link(&p->readers, &r->w, wk);
  size_t need = need_of(r);
  if (need > p->need) p->need = need;
  p->started = 1;
  start_reading(p);
  if (satisfiable(r)) {                       /* reading could not start */
    qn__wait_unlink(&r->w);
    return QN_READY;
  }
  return QN_PENDING;
}

static void read_drop(qn_future *f) {
  read_future *r = (read_future *)f;
  qn_pipe *p = r->p;
  qn__wait_unlink(&r->w);
  if (--p->nreaders == 0) {
    p->need = 0;
    if (p->len >= read_limit(p)) stop_reading(p);
  }
  free(r);
  unref(p);
}

static const qn_future_vt read_vt = { read_poll, read_drop };

qn_future *qn_pipe_read_new(qn_pipe *p, qn_tcp_mode mode, size_t n) {
  read_future *r = calloc(1, sizeof *r);
  if (r == NULL) return NULL;
  r->base.vt = &read_vt;
  r->p = p;
  r->mode = mode;
  r->n = n;
  qn__wait_init(&r->w);
  p->refs++;
  p->nreaders++;
  return &r->base;
}

/* ---- writing ---- */

static void on_write(uv_write_t *req, int status) {
  write_req *w = qn__container_of(req, write_req, req);
  qn_pipe *p = w->p;
  qn__list_remove(&w->node);
  free(w);
  p->nwrites--;
  if (status < 0 && status != UV_ECANCELED && p->write_err == 0) p->write_err = status;
  if (p->lingering) {
    if (p->nwrites == 0 || p->write_err != 0) close_handle(p);
    return;
  }
  if (p->write_err != 0 || qn_pipe_write_queued(p) <= p->write_limit)
    qn__wait_wake_all(&p->writers);
}

static int queue_write(qn_pipe *p, const char *data, size_t len) {
  while (len > 0) {
    size_t k = len > REQ_MAX ? REQ_MAX : len;
    write_req *w = malloc(sizeof *w + k);
    if (w == NULL) return UV_ENOMEM;
    memcpy(w->data, data, k);
    w->p = p;
    w->len = k;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)k);
    int r = uv_write(&w->req, (uv_stream_t *)&p->handle, &b, 1, on_write);
    if (r != 0) {
      free(w);
      return r;
    }
    qn__list_push(&p->wq, &w->node);
    p->nwrites++;
    data += k;
    len -= k;
  }
  return 0;
}

int qn_pipe_write(qn_pipe *p, const char *data, size_t len) {
  if (p->closing) return UV_ECANCELED;
  if (p->shut) return UV_EPIPE;
  if (p->write_err) return p->write_err;
  if (qn_pipe_write_queued(p) > p->write_limit) return UV_EAGAIN;
  size_t done = 0;
  while (p->nwrites == 0 && done < len) {     /* nothing queued: the pipe may take it now */
    size_t k = len - done > REQ_MAX ? REQ_MAX : len - done;
    uv_buf_t b = uv_buf_init((char *)data + done, (unsigned)k);
    int r = uv_try_write((uv_stream_t *)&p->handle, &b, 1);
    if (r == UV_EAGAIN) break;
    if (r < 0) {
      p->write_err = r;
      return r;
    }
    done += (size_t)r;
    if ((size_t)r < k) break;
  }
  if (done == len) return 0;
  int r = queue_write(p, data + done, len - done);
  if (r != 0) p->write_err = r;               /* part may be gone already: the stream is broken */
  return r;
}

typedef struct writable_future {
  qn_future base;
  qn_pipe *p;
  qn__wait w;
} writable_future;

static int writable_poll(qn_future *f, qn_waker *wk) {
  writable_future *wf = (writable_future *)f;
  qn_pipe *p = wf->p;
  if (p->closing || p->shut || p->write_err || qn_pipe_write_queued(p) <= p->write_limit) {
    qn__wait_unlink(&wf->w);
    return QN_READY;
  }
  qn__wait_link(&p->writers, &wf->w, wk);
  return QN_PENDING;
}

static void writable_drop(qn_future *f) {
  writable_future *wf = (writable_future *)f;
  qn_pipe *p = wf->p;
  qn__wait_unlink(&wf->w);
  p->nwriters--;
  free(wf);
  unref(p);
}

static const qn_future_vt writable_vt = { writable_poll, writable_drop };

qn_future *qn_pipe_writable_new(qn_pipe *p) {
  writable_future *wf = calloc(1, sizeof *wf);
  if (wf == NULL) return NULL;
  wf->base.vt = &writable_vt;
  wf->p = p;
  qn__wait_init(&wf->w);
  p->refs++;
  p->nwriters++;
  return &wf->base;
}

/* ---- shutdown ---- */

typedef struct shutdown_future shutdown_future;

typedef struct shutdown_req {
  uv_shutdown_t req;
  shutdown_future *f;       /* NULL once the future was dropped */
} shutdown_req;

struct shutdown_future {
  qn_future base;
  qn_pipe *p;
  shutdown_req *req;        /* in flight */
  qn_waker *waker;
  int status;
  uint8_t started, done;
};

static void on_shutdown(uv_shutdown_t *req, int status) {
  shutdown_req *q = qn__container_of(req, shutdown_req, req);
  shutdown_future *f = q->f;
  free(q);
  if (f == NULL) return;
  f->req = NULL;
  f->status = status;
  f->done = 1;
  if (f->waker) qn_wake(f->waker);
}

static int shutdown_poll(qn_future *fut, qn_waker *wk) {
  shutdown_future *f = (shutdown_future *)fut;
  f->waker = wk;
  if (f->done) return QN_READY;
  if (f->started) return QN_PENDING;
  f->started = 1;
  qn_pipe *p = f->p;
  shutdown_req *q = NULL;
  int r = p->closing ? UV_ECANCELED : 0;
  if (r == 0 && (q = malloc(sizeof *q)) == NULL) r = UV_ENOMEM;
  if (r == 0) {
    q->f = f;
    r = uv_shutdown(&q->req, (uv_stream_t *)&p->handle, on_shutdown);
  }
  if (r != 0) {
    free(q);
    f->status = r;
    f->done = 1;
    return QN_READY;
  }
  f->req = q;
  p->shut = 1;
  qn__wait_wake_all(&p->writers);
  return QN_PENDING;
}

static void shutdown_drop(qn_future *fut) {
  shutdown_future *f = (shutdown_future *)fut;
  if (f->req != NULL) f->req->f = NULL;      /* its callback frees the request */
  qn_pipe *p = f->p;
  free(f);
  unref(p);
}

static const qn_future_vt shutdown_vt = { shutdown_poll, shutdown_drop };

qn_future *qn_pipe_shutdown_new(qn_pipe *p) {
  shutdown_future *f = calloc(1, sizeof *f);
  if (f == NULL) return NULL;
  f->base.vt = &shutdown_vt;
  f->p = p;
  p->refs++;
  return &f->base;
}

int qn_pipe_shutdown_status(const qn_future *f) { return ((const shutdown_future *)f)->status; }
