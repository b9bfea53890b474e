/*
** The receive side of a datagram socket (udp.c, unix_dgram.c): a ring of
** received datagrams, the receive futures waiting in FIFO order, and the
** rules both sockets share.
**
** A datagram that arrives goes to the first waiting future, else to the
** back of the ring (qn__dgq_deliver); the owner pauses reading while the
** ring holds `max`. A future given a datagram but dropped before its
** taker took it puts it back at the front: a dropped receive loses
** nothing. Datagrams are the owner's structs, `size` bytes each, copied
** in and out whole; `msg_free` frees what one holds. The owner's I/O
** object gives the rest: `closing` (receives end), and a reference held
** by each receive future.
*/
#include <stddef.h>
#include <string.h>
#include "internal.h"

typedef struct recv_future {
  qn_future base;
  qn__dgq *q;
  qn__wait w;
  uint8_t has, taken;
  max_align_t msg[];      /* the datagram handed to it: q->size bytes */
} recv_future;

void qn__dgq_init(qn__dgq *q, qn_runtime *rt, qn__io *io, size_t size, size_t max,
                  void (*start_reading)(qn__dgq *q), void (*msg_free)(void *msg)) {
  memset(q, 0, sizeof *q);
  q->rt = rt;
  q->io = io;
  q->size = size;
  q->max = max;
  q->start_reading = start_reading;
  q->msg_free = msg_free;
  qn__list_init(&q->receivers);
}

static void *slot(const qn__dgq *q, size_t i) {
  return q->ring + ((q->head + i) % q->cap) * q->size;
}

void qn__dgq_free(qn__dgq *q) {
  for (size_t i = 0; i < q->len; i++) q->msg_free(slot(q, i));
  qn__free(q->rt, q->ring);
  q->ring = NULL;
  q->len = 0;
}

static int grow(qn__dgq *q) {
  size_t cap = q->cap ? q->cap * 2 : 8;
  char *ring = qn__malloc(q->rt, cap * q->size);
  if (ring == NULL) return UV_ENOMEM;
  for (size_t i = 0; i < q->len; i++) memcpy(ring + i * q->size, slot(q, i), q->size);
  qn__free(q->rt, q->ring);
  q->ring = ring;
  q->cap = cap;
  q->head = 0;
  return 0;
}

static int push_back(qn__dgq *q, const void *msg) {
  if (q->len == q->cap && grow(q) != 0) return UV_ENOMEM;
  memcpy(slot(q, q->len++), msg, q->size);
  return 0;
}

static int push_front(qn__dgq *q, const void *msg) {
  if (q->len == q->cap && grow(q) != 0) return UV_ENOMEM;
  q->head = (q->head + q->cap - 1) % q->cap;
  q->len++;
  memcpy(slot(q, 0), msg, q->size);
  return 0;
}

static void pop_front(qn__dgq *q, void *out) {
  memcpy(out, slot(q, 0), q->size);
  q->head = (q->head + 1) % q->cap;
  q->len--;
}

/* Wake the first waiting future with the datagram at msg (copied). */
static void hand_first(qn__dgq *q, qn__wait *w, const void *msg) {
  recv_future *r = qn__container_of(w, recv_future, w);
  qn__wait_unlink(w);
  memcpy(r->msg, msg, q->size);
  r->has = 1;
  qn_wake(w->waker);
}

int qn__dgq_deliver(qn__dgq *q, const void *msg) {
  qn__wait *w = qn__wait_first(&q->receivers);
  if (w == NULL) return push_back(q, msg);
  hand_first(q, w, msg);
  return 0;
}

/* Hand queued datagrams to waiting futures, in FIFO order. */
static void dispatch(qn__dgq *q) {
  qn__wait *w;
  while (q->len > 0 && (w = qn__wait_first(&q->receivers)) != NULL) {
    recv_future *r = qn__container_of(w, recv_future, w);
    qn__wait_unlink(w);
    pop_front(q, r->msg);
    r->has = 1;
    qn_wake(w->waker);
  }
  q->start_reading(q);
}

int qn__dgq_try_recv(qn__dgq *q, void *out) {
  if (q->io->closing) return UV_EBADF;
  int r = UV_EAGAIN;
  if (q->len > 0 && qn__list_empty(&q->receivers)) {
    pop_front(q, out);
    r = 0;
  }
  q->start_reading(q);
  return r;
}

static int recv_poll(qn_future *f, qn_waker *wk) {
  recv_future *r = (recv_future *)f;
  qn__dgq *q = r->q;
  if (r->has) return QN_READY;
  if (!r->w.linked) {
    if (q->io->closing) return QN_READY;
    if (q->len > 0 && qn__list_empty(&q->receivers)) {
      pop_front(q, r->msg);
      r->has = 1;
      q->start_reading(q);
      return QN_READY;
    }
    q->start_reading(q);
  }
  qn__wait_link(&q->receivers, &r->w, wk);
  return QN_PENDING;
}

static void recv_drop(qn_future *f) {
  recv_future *r = (recv_future *)f;
  qn__dgq *q = r->q;
  qn__io *io = q->io;
  qn__wait_unlink(&r->w);
  if (r->has && !r->taken) {                /* handed but never taken: back to the front */
    if (io->closing || push_front(q, r->msg) != 0) q->msg_free(r->msg);
    else dispatch(q);
  }
  qn__free(q->rt, r);
  qn__io_unref(io);                         /* last: it may free the owner, q with it */
}

static const qn_future_vt recv_vt = { recv_poll, recv_drop };

qn_future *qn__dgq_recv_new(qn__dgq *q) {
  recv_future *r = qn__calloc(q->rt, 1, sizeof *r + q->size);
  if (r == NULL) return NULL;
  r->base.vt = &recv_vt;
  r->q = q;
  qn__wait_init(&r->w);
  qn__io_ref(q->io);
  return &r->base;
}

int qn__dgq_recv_take(qn_future *f, void *out) {
  recv_future *r = (recv_future *)f;
  if (!r->has || r->taken) return UV_EBADF;
  r->taken = 1;
  memcpy(out, r->msg, r->q->size);
  return 0;
}
