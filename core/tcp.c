/*
** TCP: servers and streams.
**
** Reading. A stream reads all the time: libuv reads into the stream's own
** buffer, buf[off .. off+len), and reading pauses (uv_read_stop) while more
** than `read_limit` bytes wait there, or more than a waiting read needs (a
** read of n bytes needs n; a line or "everything" needs no limit). A read
** future only waits until the buffer can satisfy it; the bytes a read
** returns are consumed when the embedder has copied them (qn_tcp_consume),
** so a dropped read loses nothing. EOF and read errors are sticky and come
** after the buffered bytes.
**
** Writing. qn_tcp_write tries at once (uv_try_write); what the socket does
** not take is copied into a write request, which libuv owns until its
** callback whether or not anyone still cares. A writer waits (writable
** future) only while more than `write_limit` bytes are queued. The first
** write error is sticky.
**
** Accepting. The connection callback accepts into a queue of streams that
** nobody has taken (reading already). With queue_max of them queued it
** leaves the next connection to libuv, which then stops accepting (the
** kernel's backlog holds the rest) until a stream is taken.
**
** Lifetime (the I/O object rules of quench.h). An object is freed when
** `refs` (its embedder, each future on it) is zero and its handle is closed.
** libuv calls every request's callback (write, shutdown, connect) before the
** handle's close callback, so the close callback is the last one, and a
** request never outlives its stream. While its handle is open an object is
** on the runtime's closers, so qn_runtime_shutdown closes it with our own
** close callback. Closing a stream with writes still queued "lingers": the
** handle stays open until they are written (or fail), so what write accepted
** is delivered, as the kernel does with its own send buffer; a lingering
** stream still belongs to the closers until its handle closes.
**
** Re-entrancy: callbacks only change state and wake, and qn_wake only
** queues a task: no future is polled or dropped inside a callback. Waiter
** lists are walked with the next node saved, since a wake may unlink.
**
** Unix: listen makes its socket itself (for SO_REUSEPORT and a choice of
** SO_REUSEADDR); libuv error codes there are -errno. The first stream made
** sets SIGPIPE to SIG_IGN unless the program handles it, as Node does: a
** write to a reset connection must fail with EPIPE, not kill the process.
*/
#define _DEFAULT_SOURCE                /* glibc: SO_REUSEPORT */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>
#include "internal.h"

enum {
  BUF_MIN_READ = 16 * 1024,   /* a read offers libuv at least this much room */
  BUF_INIT = 64 * 1024,
  BUF_KEEP = 64 * 1024,       /* an emptied buffer larger than this is freed */
  REQ_MAX = 1 << 30           /* bytes per write request (uv_buf_t takes unsigned) */
};

struct qn_tcp {
  uv_tcp_t handle;
  qn_runtime *rt;
  qn__closer closer;
  qn__list qnode;           /* in a server's queue until taken */
  char *buf;
  size_t off, len, cap;
  size_t read_limit, write_limit;
  size_t need;              /* what the waiting reads need buffered */
  size_t nwrites;           /* write requests in flight */
  qn__list readers;         /* waiting read futures */
  qn__list writers;         /* waiting writable futures */
  int nreaders, nwriters;   /* futures alive */
  int refs;
  int read_err;             /* 0, UV_EOF or a read error */
  int write_err;
  uint8_t connected, reading, registered, closing, lingering, handle_closing, closed;
  uint8_t released, shut;
};

struct qn_tcp_server {
  uv_tcp_t handle;
  qn_runtime *rt;
  qn__closer closer;
  qn_tcp_opts opts;
  qn__list queue;           /* accepted streams nobody took */
  size_t nqueued, queue_max;
  qn__list acceptors;       /* waiting accept futures */
  int err;                  /* an accept error, reported once */
  int refs;
  uint8_t pending;          /* libuv holds a connection we left (queue full) */
  uint8_t registered, closing, handle_closing, closed, released;
};

static void on_read(uv_stream_t *h, ssize_t n, const uv_buf_t *b);

/* ---- stream lifetime ---- */

static void maybe_free(qn_tcp *s) {
  if (s->refs > 0 || !s->closed) return;
  free(s->buf);
  free(s);
}

static void unref(qn_tcp *s) {
  s->refs--;
  maybe_free(s);
}

static void on_close(uv_handle_t *h) {
  qn_tcp *s = h->data;
  s->closed = 1;
  maybe_free(s);
}

static void stop_reading(qn_tcp *s) {
  if (!s->reading) return;
  uv_read_stop((uv_stream_t *)&s->handle);
  s->reading = 0;
}

/* Close the handle now, once. A handle closed by qn_runtime_shutdown's walk
   has finished closing by the time anyone can call us. */
static void close_handle(qn_tcp *s) {
  s->lingering = 0;
  if (s->handle_closing) return;
  s->handle_closing = 1;
  if (s->registered) {
    qn__closer_remove(&s->closer);
    s->registered = 0;
  }
  if (uv_is_closing((uv_handle_t *)&s->handle)) s->closed = 1;
  else uv_close((uv_handle_t *)&s->handle, on_close);
}

/* Closed for the embedder: reading stops, every waiting future is ready. */
static void mark_closed(qn_tcp *s) {
  if (s->closing) return;
  s->closing = 1;
  stop_reading(s);
  qn__wait_wake_all(&s->readers);
  qn__wait_wake_all(&s->writers);
}

static void close_at_shutdown(qn__closer *c) {
  qn_tcp *s = qn__container_of(c, qn_tcp, closer);
  s->registered = 0;            /* the runtime unlinked it */
  mark_closed(s);
  close_handle(s);
}

static void ignore_sigpipe(void) {
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) != 0 || sa.sa_handler != SIG_DFL) return;
  sa.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &sa, NULL);
}

static size_t pick(size_t v, size_t dflt) { return v ? v : dflt; }

static int stream_new(qn_runtime *rt, const qn_tcp_opts *o, qn_tcp **out) {
  *out = NULL;
  if (rt->closed) return UV_ECANCELED;
  qn_tcp *s = calloc(1, sizeof *s);
  if (s == NULL) return UV_ENOMEM;
  int r = uv_tcp_init(&rt->loop, &s->handle);
  if (r != 0) {
    free(s);
    return r;
  }
  s->handle.data = s;
  s->rt = rt;
  s->refs = 1;
  s->read_limit = pick(o ? o->read_limit : 0, QN_TCP_READ_LIMIT);
  s->write_limit = pick(o ? o->write_limit : 0, QN_TCP_WRITE_LIMIT);
  qn__list_init(&s->qnode);
  qn__list_init(&s->readers);
  qn__list_init(&s->writers);
  s->closer.close = close_at_shutdown;
  qn__closer_add(rt, &s->closer);
  s->registered = 1;
  ignore_sigpipe();
  *out = s;
  return 0;
}

static void apply_opts(qn_tcp *s, const qn_tcp_opts *o) {
  if (o == NULL) return;
  if (o->nodelay) uv_tcp_nodelay(&s->handle, 1);
  if (o->keepalive) uv_tcp_keepalive(&s->handle, 1, o->keepalive_delay ? o->keepalive_delay : 60);
}

int qn_tcp_is_closed(const qn_tcp *s) {
  return s->closing || uv_is_closing((const uv_handle_t *)&s->handle);
}

int qn_tcp_is_shut(const qn_tcp *s) { return s->shut; }

void qn_tcp_close(qn_tcp *s) {
  if (s->closing) return;
  mark_closed(s);
  if (s->nwrites > 0 && s->write_err == 0 && !s->handle_closing) s->lingering = 1;
  else close_handle(s);
}

void qn_tcp_reset(qn_tcp *s) {
  mark_closed(s);
  s->lingering = 0;
  if (s->handle_closing) return;
  if (s->registered) {
    qn__closer_remove(&s->closer);
    s->registered = 0;
  }
  s->handle_closing = 1;
  if (uv_is_closing((uv_handle_t *)&s->handle)) {
    s->closed = 1;
  } else if (uv_tcp_close_reset(&s->handle, on_close) != 0) {   /* e.g. shutting down */
    uv_close((uv_handle_t *)&s->handle, on_close);
  }
}

void qn_tcp_release(qn_tcp *s) {
  if (s->released) return;
  s->released = 1;
  qn_tcp_close(s);
  unref(s);
}

static int name_of(const qn_tcp *s, struct sockaddr_storage *ss, int peer) {
  if (qn_tcp_is_closed(s)) return UV_EBADF;
  int len = (int)sizeof *ss;
  memset(ss, 0, sizeof *ss);
  return peer ? uv_tcp_getpeername(&s->handle, (struct sockaddr *)ss, &len)
              : uv_tcp_getsockname(&s->handle, (struct sockaddr *)ss, &len);
}

int qn_tcp_sockname(const qn_tcp *s, struct sockaddr_storage *ss) { return name_of(s, ss, 0); }
int qn_tcp_peername(const qn_tcp *s, struct sockaddr_storage *ss) { return name_of(s, ss, 1); }

int qn_tcp_set_nodelay(qn_tcp *s, int on) {
  if (qn_tcp_is_closed(s)) return UV_EBADF;
  return uv_tcp_nodelay(&s->handle, on);
}

int qn_tcp_set_keepalive(qn_tcp *s, int on, unsigned delay) {
  if (qn_tcp_is_closed(s)) return UV_EBADF;
  return uv_tcp_keepalive(&s->handle, on, delay ? delay : 60);
}

size_t qn_tcp_buffered(const qn_tcp *s) { return s->len; }

size_t qn_tcp_write_queued(const qn_tcp *s) {
  return uv_stream_get_write_queue_size((const uv_stream_t *)&s->handle);
}

int qn_tcp_readers(const qn_tcp *s) { return s->nreaders; }
int qn_tcp_writers(const qn_tcp *s) { return s->nwriters; }

/* ---- reading ---- */

static size_t read_limit(const qn_tcp *s) {
  return s->need > s->read_limit ? s->need : s->read_limit;
}

/* Make room for `want` more bytes after the buffered ones. */
static int reserve(qn_tcp *s, size_t want) {
  if (s->len == 0) s->off = 0;
  if (s->cap - s->off - s->len >= want) return 0;
  if (s->cap - s->len >= want) {             /* moving the bytes down is enough */
    memmove(s->buf, s->buf + s->off, s->len);
    s->off = 0;
    return 0;
  }
  size_t cap = s->cap ? s->cap : BUF_INIT;
  while (cap - s->len < want) {
    if (cap > SIZE_MAX / 2) return UV_ENOBUFS;
    cap *= 2;
  }
  char *b = malloc(cap);
  if (b == NULL) return UV_ENOBUFS;
  if (s->len) memcpy(b, s->buf + s->off, s->len);
  free(s->buf);
  s->buf = b;
  s->cap = cap;
  s->off = 0;
  return 0;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  (void)hint;
  qn_tcp *s = h->data;
  if (reserve(s, BUF_MIN_READ) != 0) {
    *b = uv_buf_init(NULL, 0);                /* libuv reports UV_ENOBUFS */
    return;
  }
  /* offer no more than the limit leaves (at least BUF_MIN_READ): a paused
     buffer holds at most read_limit + BUF_MIN_READ bytes */
  size_t room = s->cap - s->off - s->len, lim = read_limit(s);
  size_t left = lim > s->len ? lim - s->len : 0;
  if (left < BUF_MIN_READ) left = BUF_MIN_READ;
  if (room > left) room = left;
  if (room > REQ_MAX) room = REQ_MAX;
  *b = uv_buf_init(s->buf + s->off + s->len, (unsigned)room);
}

static void start_reading(qn_tcp *s) {
  if (s->reading || !s->connected || s->closing || s->read_err || s->len >= read_limit(s)) return;
  int r = uv_read_start((uv_stream_t *)&s->handle, on_alloc, on_read);
  if (r != 0) s->read_err = r;
  else s->reading = 1;
}

typedef struct read_future {
  qn_future base;
  qn_tcp *s;
  qn__wait w;
  qn_tcp_mode mode;
  size_t n;
  size_t scanned;           /* a line read: bytes already seen without "\n" */
} read_future;

/* Whether qn_tcp_peek would return something other than UV_EAGAIN. */
static int satisfiable(read_future *r) {
  qn_tcp *s = r->s;
  if (s->closing || s->read_err) return 1;
  switch (r->mode) {
  case QN_TCP_SOME:
    return s->len > 0;
  case QN_TCP_EXACT:
    return s->len >= r->n;
  case QN_TCP_LINE:
  case QN_TCP_LINE_KEEP: {
    size_t from = r->scanned <= s->len ? r->scanned : 0;
    if (from < s->len && memchr(s->buf + s->off + from, '\n', s->len - from) != NULL) return 1;
    r->scanned = s->len;
    return 0;
  }
  default:
    return 0;
  }
}

static void wake_readers(qn_tcp *s) {
  qn__list *n, *next;
  for (n = s->readers.next; n != &s->readers; n = next) {
    next = n->next;
    read_future *r = qn__container_of(n, read_future, w.node);
    if (!satisfiable(r)) continue;
    qn__wait_unlink(&r->w);
    qn_wake(r->w.waker);
  }
}

static void on_read(uv_stream_t *h, ssize_t n, const uv_buf_t *b) {
  (void)b;
  qn_tcp *s = h->data;
  if (n > 0) {
    s->len += (size_t)n;
    if (s->len >= read_limit(s)) stop_reading(s);
  } else if (n < 0) {
    s->read_err = (int)n;
    stop_reading(s);
  } else {
    return;                                   /* EAGAIN: nothing */
  }
  wake_readers(s);
}

int qn_tcp_peek(qn_tcp *s, qn_tcp_mode mode, size_t n, const char **data, size_t *len,
                size_t *used) {
  const char *p = s->buf ? s->buf + s->off : "";
  int eof = s->read_err == UV_EOF;
  *data = p;
  *len = *used = 0;
  if (s->closing) return UV_ECANCELED;
  switch (mode) {
  case QN_TCP_SOME:
    if (s->len > 0) {
      *len = *used = (n > 0 && n < s->len) ? n : s->len;
      return 0;
    }
    break;
  case QN_TCP_EXACT:
    if (s->len >= n && (n > 0 || s->len > 0 || !s->read_err)) {
      *len = *used = n;
      return 0;
    }
    if (eof && s->len > 0) {                  /* fewer only at EOF */
      *len = *used = s->len;
      return 0;
    }
    break;
  case QN_TCP_LINE:
  case QN_TCP_LINE_KEEP: {
    const char *nl = s->len ? memchr(p, '\n', s->len) : NULL;
    if (nl != NULL) {
      size_t k = (size_t)(nl - p);
      *len = k + (mode == QN_TCP_LINE_KEEP);
      *used = k + 1;
      return 0;
    }
    if (eof && s->len > 0) {                  /* the last line has no "\n" */
      *len = *used = s->len;
      return 0;
    }
    break;
  }
  case QN_TCP_ALL:
    if (eof) {
      *len = *used = s->len;
      return 0;
    }
    break;
  }
  return s->read_err ? s->read_err : UV_EAGAIN;
}

void qn_tcp_consume(qn_tcp *s, size_t used) {
  if (used > s->len) used = s->len;
  s->off += used;
  s->len -= used;
  if (s->len == 0) {
    s->off = 0;
    if (s->cap > BUF_KEEP) {                  /* give back what a burst made grow */
      free(s->buf);
      s->buf = NULL;
      s->cap = 0;
    }
  }
  start_reading(s);
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
  qn_tcp *s = r->s;
  if (satisfiable(r)) {
    qn__wait_unlink(&r->w);
    return QN_READY;
  }
  qn__wait_link(&s->readers, &r->w, wk);
  size_t need = need_of(r);
  if (need > s->need) s->need = need;
  start_reading(s);
  if (satisfiable(r)) {                       /* reading could not start */
    qn__wait_unlink(&r->w);
    return QN_READY;
  }
  return QN_PENDING;
}

static void read_drop(qn_future *f) {
  read_future *r = (read_future *)f;
  qn_tcp *s = r->s;
  qn__wait_unlink(&r->w);
  if (--s->nreaders == 0) {
    s->need = 0;
    if (s->len >= read_limit(s)) stop_reading(s);
  }
  free(r);
  unref(s);
}

static const qn_future_vt read_vt = { read_poll, read_drop };

qn_future *qn_tcp_read_new(qn_tcp *s, qn_tcp_mode mode, size_t n) {
  read_future *r = calloc(1, sizeof *r);
  if (r == NULL) return NULL;
  r->base.vt = &read_vt;
  r->s = s;
  r->mode = mode;
  r->n = n;
  qn__wait_init(&r->w);
  s->refs++;
  s->nreaders++;
  return &r->base;
}

/* ---- writing ---- */

typedef struct write_req {
  uv_write_t req;
  qn_tcp *s;
  char data[];
} write_req;

static void on_write(uv_write_t *req, int status) {
  write_req *w = qn__container_of(req, write_req, req);
  qn_tcp *s = w->s;
  free(w);
  s->nwrites--;
  if (status < 0 && status != UV_ECANCELED && s->write_err == 0) s->write_err = status;
  if (s->lingering) {
    if (s->nwrites == 0 || s->write_err != 0) close_handle(s);
    return;
  }
  if (s->write_err != 0 || qn_tcp_write_queued(s) <= s->write_limit)
    qn__wait_wake_all(&s->writers);
}

static int queue_write(qn_tcp *s, const char *data, size_t len) {
  while (len > 0) {
    size_t k = len > REQ_MAX ? REQ_MAX : len;
    write_req *w = malloc(sizeof *w + k);
    if (w == NULL) return UV_ENOMEM;
    memcpy(w->data, data, k);
    w->s = s;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)k);
    int r = uv_write(&w->req, (uv_stream_t *)&s->handle, &b, 1, on_write);
    if (r != 0) {
      free(w);
      return r;
    }
    s->nwrites++;
    data += k;
    len -= k;
  }
  return 0;
}

int qn_tcp_write(qn_tcp *s, const char *data, size_t len) {
  if (s->closing) return UV_ECANCELED;
  if (s->shut) return UV_EPIPE;
  if (s->write_err) return s->write_err;
  if (qn_tcp_write_queued(s) > s->write_limit) return UV_EAGAIN;
  size_t done = 0;
  while (s->nwrites == 0 && done < len) {     /* nothing queued: the socket may take it now */
    size_t k = len - done > REQ_MAX ? REQ_MAX : len - done;
    uv_buf_t b = uv_buf_init((char *)data + done, (unsigned)k);
    int r = uv_try_write((uv_stream_t *)&s->handle, &b, 1);
    if (r == UV_EAGAIN) break;
    if (r < 0) {
      s->write_err = r;
      return r;
    }
    done += (size_t)r;
    if ((size_t)r < k) break;
  }
  if (done == len) return 0;
  int r = queue_write(s, data + done, len - done);
  if (r != 0) s->write_err = r;               /* part may be gone already: the stream is broken */
  return r;
}

typedef struct writable_future {
  qn_future base;
  qn_tcp *s;
  qn__wait w;
} writable_future;

static int writable_poll(qn_future *f, qn_waker *wk) {
  writable_future *wf = (writable_future *)f;
  qn_tcp *s = wf->s;
  if (s->closing || s->shut || s->write_err || qn_tcp_write_queued(s) <= s->write_limit) {
    qn__wait_unlink(&wf->w);
    return QN_READY;
  }
  qn__wait_link(&s->writers, &wf->w, wk);
  return QN_PENDING;
}

static void writable_drop(qn_future *f) {
  writable_future *wf = (writable_future *)f;
  qn_tcp *s = wf->s;
  qn__wait_unlink(&wf->w);
  s->nwriters--;
  free(wf);
  unref(s);
}

static const qn_future_vt writable_vt = { writable_poll, writable_drop };

qn_future *qn_tcp_writable_new(qn_tcp *s) {
  writable_future *wf = calloc(1, sizeof *wf);
  if (wf == NULL) return NULL;
  wf->base.vt = &writable_vt;
  wf->s = s;
  qn__wait_init(&wf->w);
  s->refs++;
  s->nwriters++;
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
  qn_tcp *s;
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
  qn_tcp *s = f->s;
  shutdown_req *q = NULL;
  int r = s->closing ? UV_ECANCELED : 0;
  if (r == 0 && (q = malloc(sizeof *q)) == NULL) r = UV_ENOMEM;
  if (r == 0) {
    q->f = f;
    r = uv_shutdown(&q->req, (uv_stream_t *)&s->handle, on_shutdown);
  }
  if (r != 0) {
    free(q);
    f->status = r;
    f->done = 1;
    return QN_READY;
  }
  f->req = q;
  s->shut = 1;
  qn__wait_wake_all(&s->writers);
  return QN_PENDING;
}

static void shutdown_drop(qn_future *fut) {
  shutdown_future *f = (shutdown_future *)fut;
  if (f->req != NULL) f->req->f = NULL;      /* a zombie: its callback frees it */
  qn_tcp *s = f->s;
  free(f);
  unref(s);
}

static const qn_future_vt shutdown_vt = { shutdown_poll, shutdown_drop };

qn_future *qn_tcp_shutdown_new(qn_tcp *s) {
  shutdown_future *f = calloc(1, sizeof *f);
  if (f == NULL) return NULL;
  f->base.vt = &shutdown_vt;
  f->s = s;
  s->refs++;
  return &f->base;
}

int qn_tcp_shutdown_status(const qn_future *f) { return ((const shutdown_future *)f)->status; }

/* ---- connecting ---- */

typedef struct connect_future connect_future;

typedef struct connect_req {
  uv_connect_t req;
  connect_future *f;        /* NULL once the future was dropped */
} connect_req;

enum { C_NEW, C_RESOLVING, C_CONNECTING, C_DONE };

struct connect_future {
  qn_future base;
  qn_runtime *rt;
  qn_tcp_opts opts;
  qn_future *dns;           /* NULL for a numeric host */
  const struct addrinfo *next;   /* the next address to try (owned by dns) */
  struct sockaddr_storage numeric;
  connect_req *req;         /* in flight */
  qn_tcp *s;                /* being connected, then connected until taken */
  qn_waker *waker;
  int status;
  uint8_t state;
};

static void on_connect(uv_connect_t *req, int status);

static int try_connect(connect_future *f, const struct sockaddr *addr) {
  qn_tcp *s;
  int r = stream_new(f->rt, &f->opts, &s);
  if (r != 0) return r;
  connect_req *q = malloc(sizeof *q);
  if (q == NULL) {
    qn_tcp_release(s);
    return UV_ENOMEM;
  }
  q->f = f;
  r = uv_tcp_connect(&q->req, &s->handle, addr, on_connect);
  if (r != 0) {
    free(q);
    qn_tcp_release(s);
    return r;
  }
  f->s = s;
  f->req = q;
  return 0;
}

/* Try the remaining addresses; `err` is the last failure. */
static void try_next(connect_future *f, int err) {
  while (f->next != NULL) {
    const struct addrinfo *a = f->next;
    f->next = a->ai_next;
    if (a->ai_family != AF_INET && a->ai_family != AF_INET6) continue;
    if ((err = try_connect(f, a->ai_addr)) == 0) return;
  }
  f->status = err;
  f->state = C_DONE;
}

static void on_connect(uv_connect_t *req, int status) {
  connect_req *q = qn__container_of(req, connect_req, req);
  connect_future *f = q->f;
  free(q);
  if (f == NULL) return;                      /* dropped: its stream was released */
  f->req = NULL;
  if (status == 0) {
    qn_tcp *s = f->s;
    s->connected = 1;
    apply_opts(s, &f->opts);
    start_reading(s);
    f->status = 0;
    f->state = C_DONE;
  } else {
    qn_tcp_release(f->s);
    f->s = NULL;
    try_next(f, status);
  }
  if (f->state == C_DONE && f->waker) qn_wake(f->waker);
}

static int connect_poll(qn_future *fut, qn_waker *wk) {
  connect_future *f = (connect_future *)fut;
  f->waker = wk;
  if (f->state == C_NEW) {
    if (f->dns != NULL) {
      f->state = C_RESOLVING;
    } else {
      f->state = C_CONNECTING;
      int r = try_connect(f, (const struct sockaddr *)&f->numeric);
      if (r != 0) {
        f->status = r;
        f->state = C_DONE;
      }
    }
  }
  if (f->state == C_RESOLVING) {
    if (qn_poll(f->dns, wk) == QN_PENDING) return QN_PENDING;
    const struct addrinfo *res = NULL;
    int r = qn_getaddrinfo_result(f->dns, &res);
    f->state = C_CONNECTING;
    if (r != 0) {
      f->status = r;
      f->state = C_DONE;
    } else {
      f->next = res;
      try_next(f, UV_EAI_NONAME);
    }
  }
  return f->state == C_DONE ? QN_READY : QN_PENDING;
}

static void connect_drop(qn_future *fut) {
  connect_future *f = (connect_future *)fut;
  if (f->req != NULL) f->req->f = NULL;      /* its callback (UV_ECANCELED) frees it */
  if (f->s != NULL) qn_tcp_release(f->s);    /* closing cancels the connect */
  if (f->dns != NULL) qn_drop(f->dns);
  free(f);
}

static const qn_future_vt connect_vt = { connect_poll, connect_drop };

/* A numeric address in *ss, or nonzero. */
static int numeric_addr(const char *host, int port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0) return 0;
  memset(ss, 0, sizeof *ss);
  return uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss);
}

qn_future *qn_tcp_connect_new(qn_runtime *rt, const char *host, int port,
                              const qn_tcp_opts *opts) {
  connect_future *f = calloc(1, sizeof *f);
  if (f == NULL) return NULL;
  f->base.vt = &connect_vt;
  f->rt = rt;
  if (opts) f->opts = *opts;
  if (numeric_addr(host, port, &f->numeric) != 0) {
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    if ((f->dns = qn_getaddrinfo_new(rt, host, service, &hints)) == NULL) {
      free(f);
      return NULL;
    }
  }
  return &f->base;
}

int qn_tcp_connect_take(qn_future *fut, qn_tcp **out) {
  connect_future *f = (connect_future *)fut;
  *out = NULL;
  if (f->state != C_DONE) return UV_EINVAL;
  if (f->status != 0 || f->s == NULL) return f->status ? f->status : UV_EINVAL;
  *out = f->s;
  f->s = NULL;
  return 0;
}

/* ---- servers ---- */

static void server_maybe_free(qn_tcp_server *srv) {
  if (srv->refs > 0 || !srv->closed) return;
  free(srv);
}

static void server_unref(qn_tcp_server *srv) {
  srv->refs--;
  server_maybe_free(srv);
}

static void server_on_close(uv_handle_t *h) {
  qn_tcp_server *srv = h->data;
  srv->closed = 1;
  server_maybe_free(srv);
}

static void server_close_handle(qn_tcp_server *srv) {
  if (srv->handle_closing) return;
  srv->handle_closing = 1;
  if (srv->registered) {
    qn__closer_remove(&srv->closer);
    srv->registered = 0;
  }
  if (uv_is_closing((uv_handle_t *)&srv->handle)) srv->closed = 1;
  else uv_close((uv_handle_t *)&srv->handle, server_on_close);
}

void qn_tcp_server_close(qn_tcp_server *srv) {
  if (srv->closing) return;
  srv->closing = 1;
  while (!qn__list_empty(&srv->queue)) {
    qn_tcp *s = qn__container_of(srv->queue.next, qn_tcp, qnode);
    qn__list_remove(&s->qnode);
    srv->nqueued--;
    qn_tcp_release(s);
  }
  server_close_handle(srv);
  qn__wait_wake_all(&srv->acceptors);
}

static void server_close_at_shutdown(qn__closer *c) {
  qn_tcp_server *srv = qn__container_of(c, qn_tcp_server, closer);
  srv->registered = 0;
  qn_tcp_server_close(srv);
}

void qn_tcp_server_release(qn_tcp_server *srv) {
  if (srv->released) return;
  srv->released = 1;
  qn_tcp_server_close(srv);
  server_unref(srv);
}

int qn_tcp_server_is_closed(const qn_tcp_server *srv) {
  return srv->closing || uv_is_closing((const uv_handle_t *)&srv->handle);
}

size_t qn_tcp_server_queued(const qn_tcp_server *srv) { return srv->nqueued; }

int qn_tcp_server_sockname(const qn_tcp_server *srv, struct sockaddr_storage *ss) {
  if (qn_tcp_server_is_closed(srv)) return UV_EBADF;
  int len = (int)sizeof *ss;
  memset(ss, 0, sizeof *ss);
  return uv_tcp_getsockname(&srv->handle, (struct sockaddr *)ss, &len);
}

/* Take the connection libuv holds into the queue. */
static void accept_one(qn_tcp_server *srv) {
  srv->pending = 0;
  qn_tcp *s;
  int r = stream_new(srv->rt, &srv->opts, &s);
  if (r != 0) {
    srv->pending = 1;                         /* retried at the next take */
  } else if ((r = uv_accept((uv_stream_t *)&srv->handle, (uv_stream_t *)&s->handle)) != 0) {
    qn_tcp_release(s);
  } else {
    s->connected = 1;
    apply_opts(s, &srv->opts);
    start_reading(s);
    qn__list_push(&srv->queue, &s->qnode);
    srv->nqueued++;
  }
  if (r != 0) srv->err = r;
  qn__wait_wake_all(&srv->acceptors);
}

static void on_connection(uv_stream_t *h, int status) {
  qn_tcp_server *srv = h->data;
  if (status < 0) {
    srv->err = status;
    qn__wait_wake_all(&srv->acceptors);
  } else if (srv->nqueued >= srv->queue_max) {
    srv->pending = 1;                         /* libuv stops accepting until we take it */
  } else {
    accept_one(srv);
  }
}

int qn_tcp_try_accept(qn_tcp_server *srv, qn_tcp **out) {
  *out = NULL;
  if (srv->closing) return UV_ECANCELED;
  if (!qn__list_empty(&srv->queue)) {
    qn_tcp *s = qn__container_of(srv->queue.next, qn_tcp, qnode);
    qn__list_remove(&s->qnode);
    srv->nqueued--;
    if (srv->pending) accept_one(srv);
    *out = s;
    return 0;
  }
  if (srv->pending) {
    accept_one(srv);
    if (!qn__list_empty(&srv->queue)) return qn_tcp_try_accept(srv, out);
  }
  if (srv->err != 0) {
    int r = srv->err;
    srv->err = 0;
    return r;
  }
  return UV_EAGAIN;
}

typedef struct accept_future {
  qn_future base;
  qn_tcp_server *srv;
  qn__wait w;
} accept_future;

static int accept_poll(qn_future *f, qn_waker *wk) {
  accept_future *a = (accept_future *)f;
  qn_tcp_server *srv = a->srv;
  if (srv->closing || srv->nqueued > 0 || srv->err != 0 || srv->pending) {
    qn__wait_unlink(&a->w);
    return QN_READY;
  }
  qn__wait_link(&srv->acceptors, &a->w, wk);
  return QN_PENDING;
}

static void accept_drop(qn_future *f) {
  accept_future *a = (accept_future *)f;
  qn_tcp_server *srv = a->srv;
  qn__wait_unlink(&a->w);
  free(a);
  server_unref(srv);
}

static const qn_future_vt accept_vt = { accept_poll, accept_drop };

qn_future *qn_tcp_accept_new(qn_tcp_server *srv) {
  accept_future *a = calloc(1, sizeof *a);
  if (a == NULL) return NULL;
  a->base.vt = &accept_vt;
  a->srv = srv;
  qn__wait_init(&a->w);
  srv->refs++;
  return &a->base;
}

/* Resolve host for binding, now (a numeric host needs no lookup). */
static int resolve_now(uv_loop_t *loop, const char *host, int port, struct sockaddr_storage *ss) {
  if (numeric_addr(host, port, ss) == 0) return 0;
  char service[16];
  snprintf(service, sizeof service, "%d", port);
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  uv_getaddrinfo_t req;
  int r = uv_getaddrinfo(loop, &req, NULL, host, service, &hints);   /* no callback: synchronous */
  if (r != 0) return r;
  r = UV_EAI_NONAME;
  for (const struct addrinfo *a = req.addrinfo; a != NULL; a = a->ai_next) {
    if (a->ai_family != AF_INET && a->ai_family != AF_INET6) continue;
    memset(ss, 0, sizeof *ss);
    memcpy(ss, a->ai_addr, a->ai_addrlen);
    r = 0;
    break;
  }
  uv_freeaddrinfo(req.addrinfo);
  return r;
}

/* A bound socket for ss, with the options asked for: an fd, or -errno. */
static int bound_socket(const struct sockaddr_storage *ss, unsigned flags) {
  int fd = socket(ss->ss_family, SOCK_STREAM, 0);
  if (fd < 0) return -errno;
  int on = 1, r = 0;
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  if ((flags & QN_TCP_REUSEADDR) && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0)
    r = -errno;
#ifdef SO_REUSEPORT
  if (r == 0 && (flags & QN_TCP_REUSEPORT) &&
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0)
    r = -errno;
#else
  if (r == 0 && (flags & QN_TCP_REUSEPORT)) r = UV_ENOTSUP;
#endif
  if (r == 0 && ss->ss_family == AF_INET6) {
    int v6only = (flags & QN_TCP_IPV6ONLY) != 0;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) != 0) r = -errno;
  }
  socklen_t len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                             : sizeof(struct sockaddr_in);
  if (r == 0 && bind(fd, (const struct sockaddr *)ss, len) != 0) r = -errno;
  if (r != 0) {
    close(fd);
    return r;
  }
  return fd;
}

int qn_tcp_listen(qn_runtime *rt, const char *host, int port, int backlog, unsigned flags,
                  const qn_tcp_opts *opts, qn_tcp_server **out) {
  *out = NULL;
  if (rt->closed) return UV_ECANCELED;
  struct sockaddr_storage ss;
  int r = resolve_now(&rt->loop, host, port, &ss);
  if (r != 0) return r;
  int fd = bound_socket(&ss, flags);
  if (fd < 0) return fd;
  qn_tcp_server *srv = calloc(1, sizeof *srv);
  if (srv == NULL) {
    close(fd);
    return UV_ENOMEM;
  }
  if ((r = uv_tcp_init(&rt->loop, &srv->handle)) != 0) {
    close(fd);
    free(srv);
    return r;
  }
  srv->handle.data = srv;
  srv->rt = rt;
  srv->refs = 1;
  if (opts) srv->opts = *opts;
  if (backlog <= 0) backlog = QN_TCP_BACKLOG;
  srv->queue_max = (size_t)backlog;
  qn__list_init(&srv->queue);
  qn__list_init(&srv->acceptors);
  srv->closer.close = server_close_at_shutdown;
  qn__closer_add(rt, &srv->closer);
  srv->registered = 1;
  r = uv_tcp_open(&srv->handle, fd);
  if (r != 0) close(fd);
  if (r == 0) r = uv_listen((uv_stream_t *)&srv->handle, backlog, on_connection);
  if (r != 0) {
    qn_tcp_server_release(srv);
    return r;
  }
  ignore_sigpipe();
  *out = srv;
  return 0;
}
