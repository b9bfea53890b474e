/*
** Broadcast: a ring of the last `capacity` messages, numbered. Every
** receiver keeps the number of the next message it wants; one that fell
** more than `capacity` behind is told how many it lost and moves to the
** oldest kept. The messages live with the embedder at index seq % capacity.
** A receive future only waits: the receiver's position moves when the
** embedder takes the message, so a dropped receive loses nothing.
*/
#include "internal.h"

struct qn_bcast {
  size_t capacity;
  uint64_t tail;          /* number of the next message sent */
  int closed;
  qn__list waiters;
};

typedef struct bcast_future {
  qn_future base;
  qn_runtime *rt;
  qn_bcast *b;
  const uint64_t *next;
  qn__wait w;
} bcast_future;

size_t qn_bcast_size(void) { return sizeof(qn_bcast); }

void qn_bcast_init(qn_bcast *b, size_t capacity) {
  b->capacity = capacity;
  b->tail = 0;
  b->closed = 0;
  qn__list_init(&b->waiters);
}

uint64_t qn_bcast_tail(const qn_bcast *b) { return b->tail; }
int qn_bcast_is_closed(const qn_bcast *b) { return b->closed; }

uint64_t qn_bcast_send(qn_bcast *b) {
  uint64_t seq = b->tail++;
  qn__wait_wake_all(&b->waiters);
  return seq;
}

void qn_bcast_close(qn_bcast *b) {
  b->closed = 1;
  qn__wait_wake_all(&b->waiters);
}

int qn_bcast_try_recv(const qn_bcast *b, uint64_t *next, uint64_t *seq, uint64_t *lagged) {
  uint64_t oldest = b->tail > b->capacity ? b->tail - b->capacity : 0;
  if (*next < oldest) {
    *lagged = oldest - *next;
    *next = oldest;
    return QN_ELAGGED;
  }
  if (*next < b->tail) {
    *seq = (*next)++;
    return QN_OK;
  }
  return b->closed ? QN_ECLOSED : QN_EEMPTY;
}

static int bcast_poll(qn_future *f, qn_waker *wk) {
  bcast_future *bf = (bcast_future *)f;
  if (*bf->next < bf->b->tail || bf->b->closed) return QN_READY;
  qn__wait_link(&bf->b->waiters, &bf->w, wk);
  return QN_PENDING;
}

static void bcast_drop(qn_future *f) {
  bcast_future *bf = (bcast_future *)f;
  qn__wait_unlink(&bf->w);
  qn__free(bf->rt, bf);
}

static const qn_future_vt bcast_vt = { bcast_poll, bcast_drop };

qn_future *qn_bcast_wait_new(qn_runtime *rt, qn_bcast *b, const uint64_t *next) {
  bcast_future *bf = qn__calloc(rt, 1, sizeof *bf);
  if (bf == NULL) return NULL;
  bf->base.vt = &bcast_vt;
  bf->rt = rt;
  bf->b = b;
  bf->next = next;
  qn__wait_init(&bf->w);
  return &bf->base;
}
