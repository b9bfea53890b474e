/*
** Streams: the buffered, cancel-safe byte stream over a uv_stream_t that
** TCP connections (tcp.c), pipes and standard streams (pipe.c) share.
** tcp.c and pipe.c make the handle and say when reading may start; all the
** rest is here.
**
** Reading. Once started (connected, for TCP; at the first read, for a
** pipe), the stream reads into its own buffer, buf[off .. off+len), and
** reading pauses (uv_read_stop) while more than `read_limit` bytes wait
** there, or more than a waiting read needs (a read of n bytes needs n; a
** line or "everything" needs no limit). A read future only waits until the
** buffer can satisfy it; the bytes a read returns are consumed when the
** embedder has copied them (qn_stream_consume), so a dropped read loses
** nothing. EOF and read errors are sticky and come after the buffered bytes.
**
** Writing. qn_stream_write tries at once (uv_try_write); what the stream
** does not take is copied into a write request, which libuv owns until its
** callback whether or not anyone still cares (TLS hands its records' buffer
** over instead, qn__stream_raw_write_owned: no copy, given back to tls.c
** when written). A writer waits (writable
** future) only while more than `write_limit` bytes are queued. The first
** write error is sticky.
**
** Lifetime (the I/O object rules of quench.h). A stream is freed when
** `refs` (its embedder, each future on it) is zero and its handle is closed.
** libuv calls every request's callback (write, shutdown, connect) before the
** handle's close callback, so the close callback is the last one, and a
** request never outlives its stream. While its handle is open a stream is
** on the runtime's closers, so qn_runtime_shutdown closes it with our own
** close callback. Closing a stream with writes still queued "lingers": the
** handle stays open until they are written (or fail), so what write accepted
** is delivered, as the kernel does with its own send buffer; a lingering
** stream still belongs to the closers until its handle closes. A peer that
** reads nothing would hold the descriptor for ever, so lingering is bounded:
** a repeating uv timer of `linger_ms` (real time: the peer is real) looks at
** what is left to send (our queue and, on Linux, the socket's); if the peer
** took nothing since its last look, the queue is dropped and the handle
** closed with a reset (a FIN would pass the cut stream off as whole). A peer
** still reading slowly keeps it open; one that stopped is cut within two
** periods. At the
** runtime's end a standard stream (flush_at_end) first writes out, blocking,
** what libuv has not written yet (as exit() flushes stdout); other streams
** close at once.
**
** TLS (tls.c) filters a stream's bytes where s->tls is set: the socket is
** read into its cipher buffer and decrypted into buf, writes are encrypted
** and then written by qn__stream_raw_write, and a read, writable or
** shutdown future asks it first. The few lines here that call it say so.
**
** Re-entrancy: callbacks only change state and wake, and qn_wake only
** queues a task: no future is polled or dropped inside a callback. Waiter
** lists are walked with the next node saved, since a wake may unlink.
**
** Unix: the first stream made sets SIGPIPE to SIG_IGN unless the program
** handles it, as Node does: a write to a closed peer must fail with EPIPE,
** not kill the process.
*/
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/sockios.h>            /* SIOCOUTQ */
#endif
#include "internal.h"

enum {
  BUF_MIN_READ = 16 * 1024,   /* a read offers libuv at least this much room */
  BUF_INIT = 64 * 1024,
  BUF_KEEP = 64 * 1024,       /* an emptied buffer larger than this is freed */
  REQ_MAX = 1 << 30           /* bytes per write request (uv_buf_t takes unsigned) */
};

typedef struct write_req {
  uv_write_t req;
  qn_stream *s;
  qn__list node;            /* s->wq */
  size_t len;
  char *data;               /* inl, or within own */
  char *own;                /* a buffer handed over (qn__stream_raw_write_owned), freed here */
  size_t own_cap;           /* its size */
  char inl[];
} write_req;

static void on_read(uv_stream_t *h, ssize_t n, const uv_buf_t *b);

/* A lingering close's bound: a handle of its own, freed by its close
   callback, so it may outlive the stream's handle by one loop turn. */
typedef struct linger_timer {
  uv_timer_t t;
  qn_runtime *rt;
  qn_stream *s;             /* NULL once the stream closed its handle */
  size_t queued;            /* what was left to send at the last look */
} linger_timer;

/* ---- read buffers ---- */

/* A stream's read buffer goes back to the runtime's few kept ones if it
   has the first size (and the runtime caches, qn_runtime_cache_small),
   else to the allocator. */
static void buf_release(qn_stream *s) {
  qn_runtime *rt = s->rt;
  if (s->buf == NULL) return;
  if (s->cap == BUF_INIT && rt != NULL && !rt->small_off && !rt->freed &&
      rt->nrbufs < QN__RBUF_KEEP) {
    rt->rbufs[rt->nrbufs++] = s->buf;
    rt->stats.live_blocks--;                  /* kept by the runtime, not in use */
  } else {
    qn__free(rt, s->buf);
  }
  s->buf = NULL;
  s->cap = s->off = 0;
}

void qn__stream_bufs_flush(qn_runtime *rt) {
  while (rt->nrbufs > 0) rt->alloc(rt->alloc_ud, rt->rbufs[--rt->nrbufs], 0);
}

/* ---- lifetime ---- */

static void stream_free(qn__io *io) {
  qn_stream *s = qn__container_of(io, qn_stream, io);
  if (s->tls) qn__tls_free(s);
  buf_release(s);
  qn__free(s->rt, s);
}

static void unref(qn_stream *s) { qn__io_unref(&s->io); }

void qn__stream_ref(qn_stream *s) { qn__io_ref(&s->io); }
void qn__stream_unref(qn_stream *s) { unref(s); }

void qn__stream_on_close(uv_handle_t *h) {
  qn_stream *s = h->data;
  if (s->restore_fd >= 0) fcntl(s->restore_fd, F_SETFL, s->restore_flags);
  if (s->tls) qn__tls_free(s);
  buf_release(s);               /* nothing reads a closed stream's buffer */
  s->len = 0;
  qn__io_closed(&s->io);
}

static void stop_reading(qn_stream *s) {
  if (!s->reading) return;
  uv_read_stop(&s->h.stream);
  s->reading = 0;
}

static void linger_on_close(uv_handle_t *h) {
  linger_timer *lt = h->data;
  qn__free(lt->rt, lt);
}

static void linger_stop(qn_stream *s) {
  linger_timer *lt = s->linger;
  if (lt == NULL) return;
  s->linger = NULL;
  lt->s = NULL;
  uv_close((uv_handle_t *)&lt->t, linger_on_close);
}

void qn__stream_stop_reading(qn_stream *s) { stop_reading(s); }

int qn__stream_begin_close(qn_stream *s) {
  s->lingering = 0;
  linger_stop(s);               /* every way a handle closes comes here */
  if (!qn__io_close(&s->io)) return 0;
  /* a handle closed by qn_runtime_shutdown's walk has finished closing by
     the time anyone can call us (and the embedder still holds the stream,
     so marking it closed cannot free it under the caller) */
  if (!uv_is_closing(&s->h.handle)) return 1;
  s->io.closed = 1;
  return 0;
}

static void close_handle(qn_stream *s) {
  if (qn__stream_begin_close(s)) uv_close(&s->h.handle, qn__stream_on_close);
}

void qn__stream_reset(qn_stream *s) {
  if (!qn__stream_begin_close(s)) return;
  /* uv_tcp_close_reset refuses while a shutdown is pending: close then */
  if (s->h.handle.type != UV_TCP || uv_tcp_close_reset(&s->h.tcp, qn__stream_on_close) != 0)
    uv_close(&s->h.handle, qn__stream_on_close);
}

/* Bytes this end still has to get to its peer: our queue, plus (Linux) the
   socket's send queue, so a peer that reads while the kernel's send buffer
   is full still counts as taking data. */
static size_t pending_out(qn_stream *s) {
  size_t q = qn_stream_write_queued(s);
#ifdef SIOCOUTQ
  uv_os_fd_t fd;
  int n = 0;
  if (uv_fileno(&s->h.handle, &fd) == 0 && ioctl(fd, SIOCOUTQ, &n) == 0 && n > 0) q += (size_t)n;
#endif
  return q;
}

static void on_linger(uv_timer_t *t) {
  linger_timer *lt = qn__container_of(t, linger_timer, t);
  size_t q = pending_out(lt->s);
  if (q < lt->queued) {
    lt->queued = q;             /* the peer took some: another period */
    return;
  }
  qn__stream_reset(lt->s);      /* closes this timer too */
}

/* Start the bound of a lingering close: 0, or nonzero (then do not linger). */
static int linger_start(qn_stream *s) {
  if (s->linger_ms == 0) return UV_ETIMEDOUT;
  linger_timer *lt = qn__malloc(s->rt, sizeof *lt);
  if (lt == NULL) return UV_ENOMEM;
  int r = uv_timer_init(s->h.handle.loop, &lt->t);
  if (r != 0) {
    qn__free(s->rt, lt);
    return r;
  }
  lt->t.data = lt;
  lt->rt = s->rt;
  lt->s = s;
  lt->queued = pending_out(s);
  uv_update_time(s->h.handle.loop);   /* from now, not from the loop turn's start */
  uv_timer_start(&lt->t, on_linger, s->linger_ms, s->linger_ms);
  s->linger = lt;
  return 0;
}

void qn__stream_mark_closed(qn_stream *s) {
  if (s->closing) return;
  s->closing = 1;
  stop_reading(s);
  qn__wait_wake_all(&s->readers);
  qn__wait_wake_all(&s->writers);
}

/* Write what libuv has not written yet, blocking: the requests are in
   order and libuv has written the first (total - queued) bytes of them. */
static void flush_now(qn_stream *s) {
  uv_os_fd_t fd;
  if (s->write_err != 0 || qn__list_empty(&s->wq) || uv_fileno(&s->h.handle, &fd) != 0) return;
  size_t total = 0, skip;
  for (qn__list *n = s->wq.next; n != &s->wq; n = n->next)
    total += qn__container_of(n, write_req, node)->len;
  skip = total - qn_stream_write_queued(s);
  int flags = fcntl(fd, F_GETFL);
  if (flags == -1 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == -1) return;
  for (qn__list *n = s->wq.next; n != &s->wq; n = n->next) {
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
  qn_stream *s = qn__container_of(c, qn_stream, io.closer);
  qn__io_unlinked(&s->io);
  if (s->flush_at_end) flush_now(s);
  qn__stream_mark_closed(s);
  close_handle(s);
}

void qn__ignore_sigpipe(qn_runtime *rt) {
  if (rt->sigpipe_checked) return;
  rt->sigpipe_checked = 1;
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) != 0 || sa.sa_handler != SIG_DFL) return;
  sa.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &sa, NULL);
}

static size_t pick(size_t v, size_t dflt) { return v ? v : dflt; }

int qn__stream_new(qn_runtime *rt, uv_handle_type type, size_t read_limit, size_t write_limit,
                   qn_stream **out) {
  *out = NULL;
  if (rt->closed) return UV_ECANCELED;
  qn_stream *s = qn__calloc(rt, 1, sizeof *s);
  if (s == NULL) return UV_ENOMEM;
  int r = type == UV_TCP ? uv_tcp_init(&rt->loop, &s->h.tcp) : uv_pipe_init(&rt->loop, &s->h.pipe, 0);
  if (r != 0) {
    qn__free(rt, s);
    return r;
  }
  s->h.handle.data = s;
  s->rt = rt;
  s->readable = s->writable = 1;
  s->restore_fd = -1;
  s->read_limit = pick(read_limit, QN_STREAM_READ_LIMIT);
  s->write_limit = pick(write_limit, QN_STREAM_WRITE_LIMIT);
  s->linger_ms = QN_STREAM_LINGER_MS;
  qn__list_init(&s->qnode);
  qn__list_init(&s->readers);
  qn__list_init(&s->writers);
  qn__list_init(&s->wq);
  qn__io_init(&s->io, rt, close_at_shutdown, stream_free);
  qn__ignore_sigpipe(rt);
  *out = s;
  return 0;
}

int qn_stream_is_closed(const qn_stream *s) {
  return s->closing || uv_is_closing(&s->h.handle);
}

int qn_stream_is_shut(const qn_stream *s) { return s->shut; }
int qn_stream_readable(const qn_stream *s) { return s->readable; }
int qn_stream_writable(const qn_stream *s) { return s->writable; }
size_t qn_stream_buffered(const qn_stream *s) { return s->len; }

int qn_stream_fileno(const qn_stream *s) {
  uv_os_fd_t fd = -1;
  if (s->closing || uv_fileno(&s->h.handle, &fd) != 0) return -1;
  return fd;
}
int qn_stream_readers(const qn_stream *s) { return s->nreaders; }
int qn_stream_writers(const qn_stream *s) { return s->nwriters; }

size_t qn_stream_write_queued(const qn_stream *s) {
  return uv_stream_get_write_queue_size(&s->h.stream);
}

void qn_stream_close(qn_stream *s) {
  if (s->closing) return;
  if (s->tls) qn__tls_close(s);               /* close_notify, best effort */
  qn__stream_mark_closed(s);
  if (s->nwrites == 0 || s->write_err != 0 || s->io.closing) close_handle(s);
  else if (linger_start(s) == 0) s->lingering = 1;
  else qn__stream_reset(s);     /* linger 0 (or no timer): drop the queue now */
}

void qn_stream_set_linger(qn_stream *s, uint64_t ms) { s->linger_ms = ms; }
uint64_t qn_stream_linger(const qn_stream *s) { return s->linger_ms; }

void qn_stream_release(qn_stream *s) {
  if (!qn__io_release(&s->io)) return;
  qn_stream_close(s);
  unref(s);
}

/* ---- reading ---- */

static size_t read_limit(const qn_stream *s) {
  return s->need > s->read_limit ? s->need : s->read_limit;
}

/* Make room for `want` more bytes after the buffered ones. */
static int reserve(qn_stream *s, size_t want) {
  if (s->len == 0) s->off = 0;
  if (s->cap - s->off - s->len >= want) return 0;
  if (s->cap - s->len >= want) {
    memmove(s->buf, s->buf + s->off, s->len);
    s->off = 0;
    return 0;
  }
  if (s->cap == 0 && want <= BUF_INIT && s->rt != NULL && s->rt->nrbufs > 0) {
    s->buf = s->rt->rbufs[--s->rt->nrbufs];   /* a kept one (s->len is 0: no buffer) */
    s->rt->stats.live_blocks++;
    s->cap = BUF_INIT;
    s->off = 0;
    return 0;
  }
  size_t cap = s->cap ? s->cap : BUF_INIT;
  while (cap - s->len < want) {
    if (cap > SIZE_MAX / 2) return UV_ENOBUFS;
    cap *= 2;
  }
  char *b = qn__malloc(s->rt, cap);
  if (b == NULL) return UV_ENOMEM;
  if (s->len) memcpy(b, s->buf + s->off, s->len);
  qn__free(s->rt, s->buf);
  s->buf = b;
  s->cap = cap;
  s->off = 0;
  return 0;
}

int qn__stream_reserve(qn_stream *s, size_t want) { return reserve(s, want); }
size_t qn__stream_read_limit(const qn_stream *s) { return read_limit(s); }

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  (void)hint;
  qn_stream *s = h->data;
  if (s->tls) {                               /* ciphertext goes to the TLS layer */
    qn__tls_alloc(s, b);
    return;
  }
  int r = reserve(s, BUF_MIN_READ);
  if (r != 0) {
    s->read_err = r;                          /* what readers see, not libuv's UV_ENOBUFS */
    *b = uv_buf_init(NULL, 0);
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

static void start_reading(qn_stream *s) {
  if (!s->started || s->reading || s->closing || s->read_err || s->len >= read_limit(s)) return;
  if (s->tls && !qn__tls_can_read(s)) return;
  int r = uv_read_start(&s->h.stream, on_alloc, on_read);
  if (r != 0) s->read_err = r;
  else s->reading = 1;
}

void qn__stream_start(qn_stream *s) {
  s->started = 1;
  if (s->tls) qn__tls_kick(s);                /* a read starts the handshake */
  start_reading(s);
}

typedef struct read_future {
  qn_future base;
  qn_stream *s;
  qn__wait w;
  qn_stream_mode mode;
  size_t n;
  size_t scanned;           /* a line read: bytes already seen without "\n" */
} read_future;

/* Whether qn_stream_peek would return something other than UV_EAGAIN. */
static int satisfiable(read_future *r) {
  qn_stream *s = r->s;
  if (s->closing || s->read_err) return 1;
  switch (r->mode) {
  case QN_STREAM_SOME:
    return s->len > 0;
  case QN_STREAM_EXACT:
    return s->len >= r->n;
  case QN_STREAM_LINE:
  case QN_STREAM_LINE_KEEP: {
    size_t from = r->scanned <= s->len ? r->scanned : 0;
    if (from < s->len && memchr(s->buf + s->off + from, '\n', s->len - from) != NULL) return 1;
    r->scanned = s->len;
    return 0;
  }
  default:
    return 0;
  }
}

static void wake_readers(qn_stream *s) {
  qn__list *n, *next;
  for (n = s->readers.next; n != &s->readers; n = next) {
    next = n->next;                           /* a wake may unlink */
    read_future *r = qn__container_of(n, read_future, w.node);
    if (!satisfiable(r)) continue;
    qn__wait_unlink(&r->w);
    qn_wake(r->w.waker);
  }
}

/* libuv reports EOF when the socket hangs up after a partial read, without
   reading again: a reset that came after data would look like a clean end,
   and a cut stream like a whole one. The socket's pending error tells. */
static int eof_or_reset(qn_stream *s) {
  uv_os_fd_t fd;
  int err = 0;
  socklen_t len = sizeof err;
  if (s->h.handle.type != UV_TCP || uv_fileno(&s->h.handle, &fd) != 0 ||
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err == 0)
    return UV_EOF;
  return -err;
}

void qn__stream_wake_readers(qn_stream *s) { wake_readers(s); }

static void on_read(uv_stream_t *h, ssize_t n, const uv_buf_t *b) {
  (void)b;
  qn_stream *s = h->data;
  if (n == UV_EOF) n = eof_or_reset(s);
  if (s->tls) {                               /* decrypted into buf there, readers woken */
    qn__tls_on_read(s, n);
    return;
  }
  if (n > 0) {
    s->len += (size_t)n;
    if (s->len >= read_limit(s)) stop_reading(s);
  } else if (n < 0) {
    if (s->read_err == 0) s->read_err = (int)n;
    stop_reading(s);
  } else {
    return;                                   /* EAGAIN: nothing */
  }
  wake_readers(s);
}

int qn_stream_peek(qn_stream *s, qn_stream_mode mode, size_t n, const char **data, size_t *len,
                 size_t *used) {
  const char *d = s->buf ? s->buf + s->off : "";
  int eof = s->read_err == UV_EOF;
  *data = d;
  *len = *used = 0;
  if (s->closing) return UV_ECANCELED;
  switch (mode) {
  case QN_STREAM_SOME:
    if (s->len > 0) {
      *len = *used = (n > 0 && n < s->len) ? n : s->len;
      return 0;
    }
    break;
  case QN_STREAM_EXACT:
    if (s->len >= n && (n > 0 || s->len > 0 || !s->read_err)) {
      *len = *used = n;
      return 0;
    }
    if (eof && s->len > 0) {                  /* fewer only at EOF */
      *len = *used = s->len;
      return 0;
    }
    break;
  case QN_STREAM_LINE:
  case QN_STREAM_LINE_KEEP: {
    const char *nl = s->len ? memchr(d, '\n', s->len) : NULL;
    if (nl != NULL) {
      size_t k = (size_t)(nl - d);
      *len = k + (mode == QN_STREAM_LINE_KEEP);
      *used = k + 1;
      return 0;
    }
    if (eof && s->len > 0) {                  /* the last line has no "\n" */
      *len = *used = s->len;
      return 0;
    }
    break;
  }
  case QN_STREAM_ALL:
    if (eof) {
      *len = *used = s->len;
      return 0;
    }
    break;
  }
  if (s->read_err) return s->read_err;
  qn__stream_start(s);                        /* a pipe starts reading at its first read */
  return s->read_err ? s->read_err : UV_EAGAIN;
}

void qn_stream_consume(qn_stream *s, size_t used) {
  if (used > s->len) used = s->len;
  s->off += used;
  s->len -= used;
  if (s->len == 0) {
    s->off = 0;
    if (s->cap > BUF_KEEP) {                  /* give back what a burst made grow */
      qn__free(s->rt, s->buf);
      s->buf = NULL;
      s->cap = 0;
    }
  }
  if (s->tls) qn__tls_pump(s);                /* records left waiting for room */
  start_reading(s);
}

void qn_stream_shrink(qn_stream *s) {
  /* libuv holds no pointer into buf between its alloc and read callbacks */
  if (s->len != 0 || s->buf == NULL) return;
  buf_release(s);
}

static size_t need_of(const read_future *r) {
  switch (r->mode) {
  case QN_STREAM_SOME: return 0;
  case QN_STREAM_EXACT: return r->n;
  default: return SIZE_MAX;
  }
}

static int read_poll(qn_future *f, qn_waker *wk) {
  read_future *r = (read_future *)f;
  qn_stream *s = r->s;
  if (satisfiable(r)) {
    qn__wait_unlink(&r->w);
    return QN_READY;
  }
  qn__wait_link(&s->readers, &r->w, wk);
  size_t need = need_of(r);
  if (need > s->need) s->need = need;
  qn__stream_start(s);
  if (satisfiable(r)) {                       /* reading could not start */
    qn__wait_unlink(&r->w);
    return QN_READY;
  }
  return QN_PENDING;
}

/* What dropping a read undoes, but its memory and its reference. */
static void read_forget(read_future *r) {
  qn_stream *s = r->s;
  qn__wait_unlink(&r->w);
  if (s->tls) qn__tls_dropped(s);             /* mid-handshake: the stream closes */
  if (--s->nreaders == 0) {
    s->need = 0;
    if (s->len >= read_limit(s)) stop_reading(s);
  }
}

static void read_drop(qn_future *f) {
  read_future *r = (read_future *)f;
  qn_stream *s = r->s;
  read_forget(r);
  qn__small_free(s->rt, r, sizeof *r);
  unref(s);
}

static const qn_future_vt read_vt = { read_poll, read_drop };

static void read_init(read_future *r, const qn_future_vt *vt, qn_stream *s, qn_stream_mode mode,
                      size_t n) {
  memset(r, 0, sizeof *r);
  r->base.vt = vt;
  r->s = s;
  r->mode = mode;
  r->n = n;
  qn__wait_init(&r->w);
  qn__io_ref(&s->io);
  s->nreaders++;
}

qn_future *qn_stream_read_new(qn_stream *s, qn_stream_mode mode, size_t n) {
  read_future *r = qn__small_alloc(s->rt, sizeof *r);   /* one per read: reused */
  if (r == NULL) return NULL;
  read_init(r, &read_vt, s, mode, n);
  return &r->base;
}

/* A read with its own deadline: the read future and a timer entry of the
   runtime's timer room in one block, so a read bounded in time needs no
   select, no sleep future and no second waker (the entry and the read
   share the waiting task's). The bytes win a tie: a read whose bytes are
   there when it is polled is ready as a read, whatever the clock says. */
typedef struct deadline_read {
  read_future r;
  qn__timer timer;
  uint8_t failed;           /* the entry could not be armed (out of memory) */
} deadline_read;

static int deadline_poll(qn_future *f, qn_waker *wk) {
  deadline_read *d = (deadline_read *)f;
  if (read_poll(f, wk) == QN_READY) return QN_READY;
  qn_runtime *rt = d->r.s->rt;
  if (!d->timer.fired && d->timer.index == QN__TIMER_IDLE && d->timer.deadline != QN_NEVER) {
    if (qn_now(rt) >= d->timer.deadline) d->timer.fired = 1;
    else if (qn__timer_start(rt, &d->timer) != QN_OK) d->timer.fired = d->failed = 1;
  }
  if (d->timer.fired) {
    qn__wait_unlink(&d->r.w);
    return QN_READY;
  }
  d->timer.waker = wk;
  return QN_PENDING;
}

static void deadline_drop(qn_future *f) {
  deadline_read *d = (deadline_read *)f;
  qn_stream *s = d->r.s;
  qn__timer_stop(s->rt, &d->timer);
  read_forget(&d->r);
  qn__small_free(s->rt, d, sizeof *d);
  unref(s);
}

static const qn_future_vt deadline_vt = { deadline_poll, deadline_drop };

qn_future *qn_stream_read_deadline_new(qn_stream *s, qn_stream_mode mode, size_t n,
                                       uint64_t deadline) {
  deadline_read *d = qn__small_alloc(s->rt, sizeof *d);
  if (d == NULL) return NULL;
  read_init(&d->r, &deadline_vt, s, mode, n);
  qn__timer_init(&d->timer, deadline);
  d->failed = 0;
  return &d->r.base;
}

int qn_stream_read_expired(const qn_future *f) {
  const deadline_read *d = (const deadline_read *)f;
  if (d->failed) return QN_ENOMEM;
  return d->timer.fired;
}

/* ---- writing ---- */

static void on_write(uv_write_t *req, int status) {
  write_req *w = qn__container_of(req, write_req, req);
  qn_stream *s = w->s;
  qn__list_remove(&w->node);
  char *own = w->own;
  size_t own_cap = w->own_cap;
  qn__free(s->rt, w);
  s->nwrites--;
  if (own != NULL && s->tls != NULL) qn__tls_recycle(s, own, own_cap);   /* the next records' */
  else qn__free(s->rt, own);
  if (status < 0 && status != UV_ECANCELED && s->write_err == 0) s->write_err = status;
  if (s->lingering) {
    if (s->nwrites == 0 || s->write_err != 0) close_handle(s);
    return;
  }
  if (s->write_err != 0 || qn_stream_write_queued(s) <= s->write_limit)
    qn__wait_wake_all(&s->writers);
}

static int queue_write(qn_stream *s, const char *data, size_t len) {
  while (len > 0) {
    size_t k = len > REQ_MAX ? REQ_MAX : len;
    write_req *w = qn__malloc(s->rt, sizeof *w + k);
    if (w == NULL) return UV_ENOMEM;
    memcpy(w->inl, data, k);
    w->data = w->inl;
    w->own = NULL;
    w->s = s;
    w->len = k;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)k);
    int r = uv_write(&w->req, &s->h.stream, &b, 1, on_write);
    if (r != 0) {
      qn__free(s->rt, w);
      return r;
    }
    qn__list_push(&s->wq, &w->node);
    s->nwrites++;
    data += k;
    len -= k;
  }
  return 0;
}

int qn_stream_write(qn_stream *s, const char *data, size_t len) {
  if (s->closing) return UV_ECANCELED;
  if (s->shut) return UV_EPIPE;
  if (s->write_err) return s->write_err;
  if (qn_stream_write_queued(s) > s->write_limit) return UV_EAGAIN;
  if (s->tls) return qn__tls_write(s, data, len);   /* encrypted, then raw written */
  return qn__stream_raw_write(s, data, len);
}

/* Write what the socket takes now, without waiting, if nothing is queued
   before it; *done is the count written. */
static int try_write(qn_stream *s, const char *data, size_t len, size_t *done) {
  *done = 0;
  if (s->write_err) return s->write_err;
  if (s->io.closing) return UV_ECANCELED;
  if (s->nodelay_due && (s->wrote || len > QN__NODELAY_FIRST)) {
    /* a second write could be held behind the first one's ACK (or a long
       first one's tail behind its own segments): no delay from now on */
    uv_tcp_nodelay(&s->h.tcp, 1);
    s->nodelay_due = 0;
  }
  s->wrote = 1;
  while (s->nwrites == 0 && *done < len) {    /* nothing queued: the pipe may take it now */
    size_t k = len - *done > REQ_MAX ? REQ_MAX : len - *done;
    uv_buf_t b = uv_buf_init((char *)data + *done, (unsigned)k);
    int r = uv_try_write(&s->h.stream, &b, 1);
    if (r == UV_EAGAIN) break;
    if (r < 0) {
      s->write_err = r;
      return r;
    }
    *done += (size_t)r;
    if ((size_t)r < k) break;
  }
  return 0;
}

int qn__stream_raw_write(qn_stream *s, const char *data, size_t len) {
  size_t done;
  int r = try_write(s, data, len, &done);
  if (r != 0 || done == len) return r;
  r = queue_write(s, data + done, len - done);
  if (r != 0) s->write_err = r;               /* part may be gone already: the stream is broken */
  return r;
}

/* As qn__stream_raw_write, but what the socket does not take now is queued
   without a copy: buf (from qn__malloc) becomes the request's, freed when
   it completes (*taken = 1; given back to a TLS stream by qn__tls_recycle).
   Otherwise buf stays the caller's. cap is buf's size. */
int qn__stream_raw_write_owned(qn_stream *s, char *buf, size_t cap, size_t len, int *taken) {
  size_t done;
  *taken = 0;
  int r = try_write(s, buf, len, &done);
  if (r != 0 || done == len) return r;
  if (len - done > REQ_MAX) {                 /* not one request: copy it in parts */
    r = queue_write(s, buf + done, len - done);
  } else {
    write_req *w = qn__malloc(s->rt, sizeof *w);
    r = UV_ENOMEM;
    if (w != NULL) {
      w->s = s;
      w->len = len - done;
      w->data = buf + done;
      w->own = buf;
      w->own_cap = cap;
      uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
      r = uv_write(&w->req, &s->h.stream, &b, 1, on_write);
      if (r != 0) {
        qn__free(s->rt, w);
      } else {
        qn__list_push(&s->wq, &w->node);
        s->nwrites++;
        *taken = 1;
      }
    }
  }
  if (r != 0) s->write_err = r;               /* part may be gone already: the stream is broken */
  return r;
}

typedef struct writable_future {
  qn_future base;
  qn_stream *s;
  qn__wait w;
} writable_future;

static int writable_poll(qn_future *f, qn_waker *wk) {
  writable_future *wf = (writable_future *)f;
  qn_stream *s = wf->s;
  int ready = s->closing || s->shut || s->write_err;
  if (!ready && s->tls && !qn__tls_handshake_over(s)) ready = -1;   /* waits for the handshake */
  if (ready == 1 || (ready == 0 && qn_stream_write_queued(s) <= s->write_limit)) {
    qn__wait_unlink(&wf->w);
    return QN_READY;
  }
  qn__wait_link(&s->writers, &wf->w, wk);
  return QN_PENDING;
}

static void writable_drop(qn_future *f) {
  writable_future *wf = (writable_future *)f;
  qn_stream *s = wf->s;
  qn__wait_unlink(&wf->w);
  if (s->tls) qn__tls_dropped(s);
  s->nwriters--;
  qn__free(s->rt, wf);
  unref(s);
}

static const qn_future_vt writable_vt = { writable_poll, writable_drop };

qn_future *qn_stream_writable_new(qn_stream *s) {
  writable_future *wf = qn__calloc(s->rt, 1, sizeof *wf);
  if (wf == NULL) return NULL;
  wf->base.vt = &writable_vt;
  wf->s = s;
  qn__wait_init(&wf->w);
  qn__io_ref(&s->io);
  s->nwriters++;
  return &wf->base;
}

/* ---- shutdown ---- */

typedef struct shutdown_future shutdown_future;

typedef struct shutdown_req {
  uv_shutdown_t req;
  qn_runtime *rt;
  shutdown_future *f;       /* NULL once the future was dropped */
} shutdown_req;

struct shutdown_future {
  qn_future base;
  qn_stream *s;
  shutdown_req *req;        /* in flight */
  qn_waker *waker;
  int status;
  uint8_t started, done;
};

/* A shutdown's result. shutdown(2) on a socket the peer has reset says
   ENOTCONN, or succeeds if the reset is still on its way: the result would
   depend on timing. Nothing is left to shut then, so, as tokio does, that
   is success, unless a write the stream had queued failed: then not all
   that was queued was written, and that error is the result. */
static int shutdown_status(const qn_stream *s, int status) {
  if (status == 0 || status == UV_ENOTCONN) return s->write_err;
  return status;
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  shutdown_req *q = qn__container_of(req, shutdown_req, req);
  shutdown_future *f = q->f;
  qn__free(q->rt, q);
  if (f == NULL) return;
  f->req = NULL;
  f->status = shutdown_status(f->s, status);
  f->done = 1;
  if (f->waker) qn_wake(f->waker);
}

static int shutdown_poll(qn_future *fut, qn_waker *wk) {
  shutdown_future *f = (shutdown_future *)fut;
  f->waker = wk;
  if (f->done) return QN_READY;
  if (f->started) return QN_PENDING;
  f->started = 1;
  qn_stream *s = f->s;
  shutdown_req *q = NULL;
  int r = s->closing ? UV_ECANCELED : 0;
  if (r == 0 && s->tls) r = qn__tls_shutdown(s);   /* close_notify first */
  if (r == 0 && (q = qn__malloc(s->rt, sizeof *q)) == NULL) r = UV_ENOMEM;
  if (r == 0) {
    q->rt = s->rt;
    q->f = f;
    r = uv_shutdown(&q->req, &s->h.stream, on_shutdown);
  }
  if (r != 0) {
    qn__free(s->rt, q);
    f->status = r == UV_ENOTCONN ? shutdown_status(s, r) : r;
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
  if (f->req != NULL) f->req->f = NULL;      /* its callback frees the request */
  qn_stream *s = f->s;
  qn__free(s->rt, f);
  unref(s);
}

static const qn_future_vt shutdown_vt = { shutdown_poll, shutdown_drop };

qn_future *qn_stream_shutdown_new(qn_stream *s) {
  shutdown_future *f = qn__calloc(s->rt, 1, sizeof *f);
  if (f == NULL) return NULL;
  f->base.vt = &shutdown_vt;
  f->s = s;
  qn__io_ref(&s->io);
  return &f->base;
}

int qn_stream_shutdown_status(const qn_future *f) { return ((const shutdown_future *)f)->status; }
