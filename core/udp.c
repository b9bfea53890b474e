/*
** UDP sockets. A socket keeps a queue of received datagrams: libuv reads
** into one scratch buffer and each datagram is copied out at its size.
** Reading starts with the first receive and pauses while the queue holds
** `queue_max` datagrams; the kernel's socket buffer holds what comes next,
** and drops what does not fit there (that is UDP). A datagram is handed
** straight to the first waiting receive future, else queued; one handed to
** a future that is dropped before it was taken goes back to the front, so
** a dropped receive loses nothing (the queue: core/dgram_queue.c).
**
** Sending tries at once (uv_udp_try_send); when the socket cannot take the
** datagram now, a send request carries a copy of it, and the request owns
** that memory until its callback, even if the send future was dropped.
**
** Lifetime (the I/O object rules of quench.h): the socket is freed when its
** embedder has released it, no future refers to it and its handle is
** closed. libuv calls every send callback before the close callback, so the
** close callback is the last one. While its handle is open the socket is on
** the runtime's closers, so qn_runtime_shutdown closes it with on_close.
*/
#include <stdlib.h>
#include <string.h>
#include "internal.h"

enum { SCRATCH = 65536 };

struct qn_udp {
  uv_udp_t handle;
  qn_runtime *rt;
  qn__io io;              /* refs: the embedder, and each future */
  char *scratch;          /* libuv reads here; SCRATCH bytes */
  qn__dgq queue;          /* received datagrams, receive futures (reading
                             pauses at queue.max) */
  uint8_t reading;
};

typedef struct send_future send_future;

/* A copy of the datagram: the future's until submitted, then the request's
   until its callback (even if the future is dropped meanwhile). */
typedef struct send_req {
  uv_udp_send_t req;
  qn_runtime *rt;
  send_future *f;         /* NULL once the future was dropped */
  struct sockaddr_storage to;
  size_t len;
  char data[];
} send_req;

struct send_future {
  qn_future base;
  qn_udp *u;
  send_req *req;
  qn_waker *waker;
  int status;
  uint8_t submitted, done;
};

void qn_udp_dgram_free(qn_udp_dgram *d) {
  qn__free(d->rt, d->data);
  d->data = NULL;
}

static void udp_free(qn__io *io) {
  qn_udp *u = qn__container_of(io, qn_udp, io);
  qn__dgq_free(&u->queue);
  qn__free(u->rt, u->scratch);
  qn__free(u->rt, u);
}

static void unref(qn_udp *u) { qn__io_unref(&u->io); }

static void on_close(uv_handle_t *h) {
  qn_udp *u = h->data;
  qn__io_closed(&u->io);
}

/* ---- reading ---- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  qn_udp *u = h->data;
  *buf = uv_buf_init(u->scratch, SCRATCH);
}

static void pause_reading(qn_udp *u) {
  if (!u->reading) return;
  uv_udp_recv_stop(&u->handle);
  u->reading = 0;
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *from,
                    unsigned flags) {
  (void)buf;
  qn_udp *u = h->data;
  if (nread == 0 && from == NULL) return;   /* nothing more to read now */
  qn_udp_dgram d;
  memset(&d, 0, sizeof d);
  if (nread < 0) {
    d.err = (int)nread;
  } else {
    d.len = (size_t)nread;
    d.rt = u->rt;
    d.data = qn__malloc(u->rt, d.len);
    if (d.data == NULL) {
      d.err = UV_ENOMEM;
      d.len = 0;
    } else {
      memcpy(d.data, u->scratch, d.len);
    }
    d.truncated = (flags & UV_UDP_PARTIAL) != 0;
    if (from != NULL)
      memcpy(&d.from, from, from->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                         : sizeof(struct sockaddr_in));
  }
  if (qn__dgq_deliver(&u->queue, &d) != 0) {
    qn_udp_dgram_free(&d);                  /* out of memory: as if the kernel dropped it */
    return;
  }
  if (u->queue.len >= u->queue.max) pause_reading(u);
}

static void start_reading(qn__dgq *q) {
  qn_udp *u = qn__container_of(q, qn_udp, queue);
  if (u->reading || u->io.closing || q->len >= q->max) return;
  if (uv_udp_recv_start(&u->handle, on_alloc, on_recv) == 0) u->reading = 1;
}

static void dgram_free(void *d) { qn_udp_dgram_free(d); }

/* ---- the socket ---- */

static void close_at_shutdown(qn__closer *c) {
  qn_udp *u = qn__container_of(c, qn_udp, io.closer);
  qn__io_unlinked(&u->io);
  qn_udp_close(u);
}

int qn_udp_bind(qn_runtime *rt, const struct sockaddr *addr, unsigned flags, size_t queue_max,
                qn_udp **out) {
  *out = NULL;
  if (rt->closed) return UV_ECANCELED;
  qn_udp *u = qn__calloc(rt, 1, sizeof *u);
  if (u == NULL) return UV_ENOMEM;
  u->rt = rt;
  u->scratch = qn__malloc(rt, SCRATCH);
  if (u->scratch == NULL) {
    qn__free(rt, u);
    return UV_ENOMEM;
  }
  int r = uv_udp_init(&rt->loop, &u->handle);
  if (r != 0) {
    qn__free(rt, u->scratch);
    qn__free(rt, u);
    return r;
  }
  u->handle.data = u;
  qn__dgq_init(&u->queue, rt, &u->io, sizeof(qn_udp_dgram),
               queue_max ? queue_max : QN_UDP_QUEUE_DEFAULT, start_reading, dgram_free);
  qn__io_init(&u->io, rt, close_at_shutdown, udp_free);
  r = uv_udp_bind(&u->handle, addr, flags);
  if (r != 0) {
    qn__io_release(&u->io);
    qn_udp_close(u);
    unref(u);
    return r;
  }
  *out = u;
  return 0;
}

int qn_udp_getsockname(const qn_udp *u, struct sockaddr_storage *ss) {
  if (qn_udp_is_closed(u)) return UV_EBADF;
  int len = (int)sizeof *ss;
  return uv_udp_getsockname(&u->handle, (struct sockaddr *)ss, &len);
}

int qn_udp_is_closed(const qn_udp *u) { return u->io.closing; }

int qn_udp_fileno(const qn_udp *u) {
  uv_os_fd_t fd;
  if (qn_udp_is_closed(u) || uv_fileno((const uv_handle_t *)&u->handle, &fd) != 0) return -1;
  return fd;
}

size_t qn_udp_queued(const qn_udp *u) { return u->queue.len; }

void qn_udp_close(qn_udp *u) {
  if (!qn__io_close(&u->io)) return;
  u->reading = 0;
  uv_close((uv_handle_t *)&u->handle, on_close);
  qn__wait_wake_all(&u->queue.receivers);
}

void qn_udp_release(qn_udp *u) {
  if (!qn__io_release(&u->io)) return;
  qn_udp_close(u);
  unref(u);
}

/* ---- receiving ---- */

int qn_udp_try_recv(qn_udp *u, qn_udp_dgram *d) { return qn__dgq_try_recv(&u->queue, d); }

qn_future *qn_udp_recv_new(qn_udp *u) { return qn__dgq_recv_new(&u->queue); }

int qn_udp_recv_take(qn_future *f, qn_udp_dgram *d) { return qn__dgq_recv_take(f, d); }

/* ---- sending ---- */

static socklen_t addr_len(const struct sockaddr *a) {
  return a->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

int qn_udp_try_send(qn_udp *u, const char *data, size_t len, const struct sockaddr *to) {
  if (qn_udp_is_closed(u)) return UV_EBADF;
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  int r = uv_udp_try_send(&u->handle, &b, 1, to);
  if (r >= 0) return 0;
  return r;
}

static void on_send(uv_udp_send_t *req, int status) {
  send_req *s = qn__container_of(req, send_req, req);
  send_future *f = s->f;
  if (f != NULL) {
    f->req = NULL;
    f->status = status;
    f->done = 1;
    if (f->waker) qn_wake(f->waker);
  }
  qn__free(s->rt, s);
}

static int send_poll(qn_future *fut, qn_waker *wk) {
  send_future *f = (send_future *)fut;
  if (f->done) return QN_READY;
  f->waker = wk;
  if (f->submitted) return QN_PENDING;
  send_req *s = f->req;
  if (qn_udp_is_closed(f->u)) {
    f->status = UV_EBADF;
  } else {
    uv_buf_t b = uv_buf_init(s->data, (unsigned)s->len);
    f->status = uv_udp_send(&s->req, &f->u->handle, &b, 1, (const struct sockaddr *)&s->to,
                            on_send);
    if (f->status == 0) {
      f->submitted = 1;
      return QN_PENDING;
    }
  }
  qn__free(s->rt, s);
  f->req = NULL;
  f->done = 1;
  return QN_READY;
}

static void send_drop(qn_future *fut) {
  send_future *f = (send_future *)fut;
  if (f->submitted && f->req != NULL) f->req->f = NULL;   /* the request frees itself */
  else qn__free(f->u->rt, f->req);
  qn_udp *u = f->u;
  qn__free(u->rt, f);
  unref(u);
}

static const qn_future_vt send_vt = { send_poll, send_drop };

/* Ready when the datagram was handed to the kernel (or failed); the data
   is copied. A dropped send may still go out, once and whole. */
qn_future *qn_udp_send_new(qn_udp *u, const char *data, size_t len, const struct sockaddr *to) {
  send_future *f = qn__calloc(u->rt, 1, sizeof *f);
  send_req *s = f && len <= SIZE_MAX - sizeof *s ? qn__malloc(u->rt, sizeof *s + len) : NULL;
  if (s == NULL) {
    qn__free(u->rt, f);
    return NULL;
  }
  s->rt = u->rt;
  memcpy(s->data, data, len);
  s->len = len;
  memcpy(&s->to, to, addr_len(to));
  s->f = f;
  f->base.vt = &send_vt;
  f->u = u;
  f->req = s;
  qn__io_ref(&u->io);
  return &f->base;
}

int qn_udp_send_status(const qn_future *f) { return ((const send_future *)f)->status; }
