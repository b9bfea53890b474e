/*
** UDP sockets. A socket keeps a queue of received datagrams: libuv reads
** into one scratch buffer and each datagram is copied out at its size.
** Reading starts with the first receive and pauses while the queue holds
** `queue_max` datagrams; the kernel's socket buffer holds what comes next,
** and drops what does not fit there (that is UDP). A datagram is handed
** straight to the first waiting receive future, else queued; one handed to
** a future that is dropped before it was taken goes back to the front, so
** a dropped receive loses nothing.
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

typedef struct recv_future recv_future;

struct qn_udp {
  uv_udp_t handle;
  qn_runtime *rt;
  qn__io io;              /* refs: the embedder, and each future */
  char *scratch;          /* libuv reads here; SCRATCH bytes */
  qn_udp_dgram *q;        /* ring of received datagrams */
  size_t qcap, qhead, qlen;
  size_t queue_max;       /* reading pauses at this many */
  qn__list receivers;     /* recv futures waiting, FIFO */
  uint8_t reading;
};

struct recv_future {
  qn_future base;
  qn_udp *u;
  qn__wait w;
  qn_udp_dgram d;
  uint8_t has, taken;
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
  for (size_t i = 0; i < u->qlen; i++) qn_udp_dgram_free(&u->q[(u->qhead + i) % u->qcap]);
  qn__free(u->rt, u->q);
  qn__free(u->rt, u->scratch);
  qn__free(u->rt, u);
}

static void unref(qn_udp *u) { qn__io_unref(&u->io); }

static void on_close(uv_handle_t *h) {
  qn_udp *u = h->data;
  qn__io_closed(&u->io);
}

/* ---- the queue ---- */

static int grow(qn_udp *u) {
  size_t cap = u->qcap ? u->qcap * 2 : 8;
  qn_udp_dgram *q = qn__malloc(u->rt, cap * sizeof *q);
  if (q == NULL) return UV_ENOMEM;
  for (size_t i = 0; i < u->qlen; i++) q[i] = u->q[(u->qhead + i) % u->qcap];
  qn__free(u->rt, u->q);
  u->q = q;
  u->qcap = cap;
  u->qhead = 0;
  return 0;
}

static int push_back(qn_udp *u, const qn_udp_dgram *d) {
  if (u->qlen == u->qcap && grow(u) != 0) return UV_ENOMEM;
  u->q[(u->qhead + u->qlen++) % u->qcap] = *d;
  return 0;
}

static int push_front(qn_udp *u, const qn_udp_dgram *d) {
  if (u->qlen == u->qcap && grow(u) != 0) return UV_ENOMEM;
  u->qhead = (u->qhead + u->qcap - 1) % u->qcap;
  u->q[u->qhead] = *d;
  u->qlen++;
  return 0;
}

static qn_udp_dgram pop_front(qn_udp *u) {
  qn_udp_dgram d = u->q[u->qhead];
  u->qhead = (u->qhead + 1) % u->qcap;
  u->qlen--;
  return d;
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
  qn__wait *w = qn__wait_first(&u->receivers);
  if (w != NULL) {                          /* hand it to the first waiter */
    recv_future *r = qn__container_of(w, recv_future, w);
    qn__wait_unlink(w);
    r->d = d;
    r->has = 1;
    qn_wake(w->waker);
    return;
  }
  if (push_back(u, &d) != 0) {
    qn_udp_dgram_free(&d);                  /* out of memory: as if the kernel dropped it */
    return;
  }
  if (u->qlen >= u->queue_max) pause_reading(u);
}

static void start_reading(qn_udp *u) {
  if (u->reading || u->io.closing || u->qlen >= u->queue_max) return;
  if (uv_udp_recv_start(&u->handle, on_alloc, on_recv) == 0) u->reading = 1;
}

/* Hand queued datagrams to waiting futures, in FIFO order. */
static void dispatch(qn_udp *u) {
  qn__wait *w;
  while (u->qlen > 0 && (w = qn__wait_first(&u->receivers)) != NULL) {
    recv_future *r = qn__container_of(w, recv_future, w);
    qn__wait_unlink(w);
    r->d = pop_front(u);
    r->has = 1;
    qn_wake(w->waker);
  }
  start_reading(u);
}

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
  u->queue_max = queue_max ? queue_max : QN_UDP_QUEUE_DEFAULT;
  qn__list_init(&u->receivers);
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

size_t qn_udp_queued(const qn_udp *u) { return u->qlen; }

void qn_udp_close(qn_udp *u) {
  if (!qn__io_close(&u->io)) return;
  u->reading = 0;
  uv_close((uv_handle_t *)&u->handle, on_close);
  qn__wait_wake_all(&u->receivers);
}

void qn_udp_release(qn_udp *u) {
  if (!qn__io_release(&u->io)) return;
  qn_udp_close(u);
  unref(u);
}

/* ---- receiving ---- */

int qn_udp_try_recv(qn_udp *u, qn_udp_dgram *d) {
  if (qn_udp_is_closed(u)) return UV_EBADF;
  if (u->qlen > 0 && qn__list_empty(&u->receivers)) {
    *d = pop_front(u);
    start_reading(u);
    return 0;
  }
  start_reading(u);
  return UV_EAGAIN;
}

static int recv_poll(qn_future *f, qn_waker *wk) {
  recv_future *r = (recv_future *)f;
  qn_udp *u = r->u;
  if (r->has) return QN_READY;
  if (!r->w.linked) {
    if (qn_udp_is_closed(u)) return QN_READY;
    if (u->qlen > 0 && qn__list_empty(&u->receivers)) {
      r->d = pop_front(u);
      r->has = 1;
      start_reading(u);
      return QN_READY;
    }
    start_reading(u);
  }
  qn__wait_link(&u->receivers, &r->w, wk);
  return QN_PENDING;
}

static void recv_drop(qn_future *f) {
  recv_future *r = (recv_future *)f;
  qn_udp *u = r->u;
  qn__wait_unlink(&r->w);
  if (r->has && !r->taken) {                /* handed but never taken: back to the front */
    if (u->io.closing || push_front(u, &r->d) != 0) qn_udp_dgram_free(&r->d);
    else dispatch(u);
  }
  qn__free(u->rt, r);
  unref(u);
}

static const qn_future_vt recv_vt = { recv_poll, recv_drop };

qn_future *qn_udp_recv_new(qn_udp *u) {
  recv_future *r = qn__calloc(u->rt, 1, sizeof *r);
  if (r == NULL) return NULL;
  r->base.vt = &recv_vt;
  r->u = u;
  qn__wait_init(&r->w);
  qn__io_ref(&u->io);
  return &r->base;
}

int qn_udp_recv_take(qn_future *f, qn_udp_dgram *d) {
  recv_future *r = (recv_future *)f;
  if (!r->has || r->taken) return UV_EBADF;
  r->taken = 1;
  *d = r->d;
  return 0;
}

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
