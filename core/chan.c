/*
** The mpmc channel. The core holds opaque slots (the binding maps them to
** Lua values). Sending is two steps, so no dropped send can lose or leak a
** value: reserve a permit (at once, or by a reserve future that waits in
** FIFO order), then commit the slot, which queues it and hands it on to
** the first waiting receiver. A permit given to a waiter that is dropped
** before committing goes to the next waiting sender.
**
** Receivers hold claims, not slots. The ring keeps every slot not taken
** yet, in commit order: first the `handed` ones, each claimed by a receive
** future that is ready but was not taken from yet, then the `len` queued
** ones. Taking (qn_chan_recv_take, qn_chan_try_recv) always removes the
** oldest slot of the ring; a claim given up (its future dropped) makes the
** newest handed slot the first queued one again. So values leave the
** channel in exactly the order they were committed, whichever of several
** ready receivers is taken from first (two receive futures in one select:
** the winner gets the older value) and whichever are dropped.
**
** Close stops new reservations and wakes the senders still waiting for a
** permit (they fail). What is queued, what is handed, and what the permits
** already given will commit is still delivered: a receiver sees "closed"
** only once the channel has ended (closed, nothing queued, handed or
** reserved), so no value ever arrives after a receiver was told "closed".
*/
#include <string.h>
#include "internal.h"

/* In a future: 24 bytes, so that a channel future is 48 (one per task
   waiting on a channel: docs/performance.md, W7). Linked is the node not
   pointing at itself (qn__list_remove leaves it so); the three flags sit in
   the low bits of the waker's address, which is pointer-aligned. */
enum { W_HAS = 1, W_GRANTED = 2, W_COMMITTED = 4, W_FLAGS = 7 };   /* has: a claim on a handed slot */
_Static_assert(_Alignof(qn_waker) > W_FLAGS, "a waker's address has 3 free low bits");
typedef struct waiter {
  qn__list node;        /* self-linked while in no list */
  uintptr_t bits;       /* the waker | W_* */
} waiter;

static inline int linked(const waiter *w) { return !qn__list_empty(&w->node); }
static inline int flag(const waiter *w, unsigned f) { return (w->bits & f) != 0; }
static inline void set_flag(waiter *w, unsigned f) { w->bits |= f; }
static inline qn_waker *waker_of(const waiter *w) {
  return (qn_waker *)(w->bits & ~(uintptr_t)W_FLAGS);
}
static inline void set_waker(waiter *w, qn_waker *wk) {
  w->bits = (uintptr_t)wk | (w->bits & W_FLAGS);
}

/* Counts are 32-bit (a channel is one per idle task in many programs:
   its bytes count): the ring stops growing at RING_MAX slots (16 GB), a
   commit that would need more fails as out of memory, and a capacity of
   UINT32_MAX or more is unbounded. Sums are taken in 64 bits. */
enum { RING_MAX = 1u << 31 };

struct qn_chan {
  uint64_t *buf;          /* ring buffer of slots, after its block's header; its size
                             (cap_of) is 0 or a power of 2 (indexes wrap with a mask) */
  qn__list receivers, senders;
  uint8_t ring_log2;      /* the ring's size is 2^ring_log2; 0: no ring yet */
  uint8_t user;           /* the embedder's (qn_chan_user): the core never touches it */
  uint32_t head : 31;     /* < ring size <= RING_MAX = 2^31 */
  uint32_t closed : 1;    /* a bit beside head: the channel is 64 bytes, not 72 */
  uint32_t handed;        /* slots at the ring's front claimed by ready receive futures */
  uint32_t len;           /* slots queued after them, claimed by nobody */
  uint32_t capacity;      /* admission limit: len + reserved < capacity */
  uint32_t reserved;      /* permits given and not yet committed */
};

/* The ring's block starts with the runtime whose allocator holds it (NULL:
   malloc): kept there, not in every channel (and with glibc the block's
   chunk is no bigger for it: 8 slots take 72 bytes of an 80-byte chunk). */
typedef struct buf_block {
  qn_runtime *rt;
  uint64_t slots[];
} buf_block;

static void free_buf(uint64_t *buf) {
  if (buf == NULL) return;
  buf_block *b = qn__container_of(buf, buf_block, slots);
  qn__free(b->rt, b);
}

size_t qn_chan_size(void) { return sizeof(qn_chan); }
unsigned char *qn_chan_user(qn_chan *ch) { return &ch->user; }

/* The ring's size (0: none), and the mask that wraps an index into it. */
static inline uint64_t cap_of(const qn_chan *ch) {
  return ch->ring_log2 ? (uint64_t)1 << ch->ring_log2 : 0;
}
static inline uint32_t mask_of(const qn_chan *ch) {
  return (uint32_t)(((uint64_t)1 << ch->ring_log2) - 1);
}

void qn_chan_init(qn_chan *ch, size_t capacity) {
  ch->buf = NULL;
  ch->ring_log2 = 0;
  ch->user = 0;
  ch->head = ch->len = ch->handed = 0;
  ch->capacity = capacity >= UINT32_MAX ? UINT32_MAX : (uint32_t)capacity;
  ch->reserved = 0;
  qn__list_init(&ch->receivers);
  qn__list_init(&ch->senders);
  ch->closed = 0;
}

void qn_chan_fini(qn_chan *ch) {
  free_buf(ch->buf);
  ch->buf = NULL;
  ch->len = ch->handed = ch->ring_log2 = 0;
}

size_t qn_chan_len(const qn_chan *ch) { return ch->len; }

size_t qn_chan_capacity(const qn_chan *ch) {
  return ch->capacity == UINT32_MAX ? SIZE_MAX : ch->capacity;
}

/* Sends that could be admitted now without waiting (as qn_chan_reserve
   admits: none while senders wait, none once closed). */
size_t qn_chan_room(const qn_chan *ch) {
  if (ch->closed || !qn__list_empty(&ch->senders)) return 0;
  if (ch->capacity == UINT32_MAX) return SIZE_MAX;
  uint64_t used = (uint64_t)ch->len + ch->reserved;
  return used >= ch->capacity ? 0 : (size_t)(ch->capacity - used);
}
int qn_chan_is_closed(const qn_chan *ch) { return ch->closed; }

/* Closed, and nothing left that could still be received. */
static int ended(const qn_chan *ch) {
  return ch->closed && ch->len == 0 && ch->handed == 0 && ch->reserved == 0;
}

int qn_chan_ended(const qn_chan *ch) { return ended(ch); }

/* The new buffer comes from rt; the old one goes back where it came from. */
static int grow(qn_chan *ch, qn_runtime *rt) {
  unsigned log2 = ch->ring_log2 ? ch->ring_log2 + 1u : 3u;   /* 8 slots, then doubling */
  size_t cap = (size_t)1 << log2;
  buf_block *b = cap <= RING_MAX && cap < SIZE_MAX / sizeof b->slots[0]
                 ? qn__malloc(rt, sizeof *b + cap * sizeof b->slots[0]) : NULL;
  if (b == NULL) return QN_ENOMEM;
  b->rt = rt;
  uint64_t *buf = b->slots;
  size_t n = (size_t)ch->handed + ch->len;
  for (size_t i = 0; i < n; i++) buf[i] = ch->buf[(ch->head + i) & mask_of(ch)];
  free_buf(ch->buf);
  ch->buf = buf;
  ch->ring_log2 = (uint8_t)log2;
  ch->head = 0;
  return QN_OK;
}

static int make_room(qn_chan *ch, qn_runtime *rt) {
  return (uint64_t)ch->len + ch->handed < cap_of(ch) ? QN_OK : grow(ch, rt);
}

/* The caller made room. */
static void push_back(qn_chan *ch, uint64_t slot) {
  ch->buf[(ch->head + ch->handed + ch->len++) & mask_of(ch)] = slot;
}

/* The oldest slot of the ring, handed or queued; the caller gives up the
   claim or the queued place it counted on. */
static uint64_t take_front(qn_chan *ch) {
  uint64_t slot = ch->buf[ch->head];
  ch->head = (ch->head + 1) & mask_of(ch);
  return slot;
}

static waiter *first(qn__list *l) {
  return qn__list_empty(l) ? NULL : qn__container_of(l->next, waiter, node);
}

static void unlink_waiter(waiter *w) {
  qn__list_remove(&w->node);           /* a no-op on a node in no list */
}

/* The channel has just ended: every waiting receiver sees "closed". */
static void wake_if_ended(qn_chan *ch) {
  if (!ended(ch)) return;
  waiter *w;
  while ((w = first(&ch->receivers))) {
    unlink_waiter(w);
    qn_wake(waker_of(w));
  }
}

/* Give permits to waiting senders while there is room, in FIFO order.
   Asked after every change of room: mostly nobody waits, looked at first. */
static void grant_senders(qn_chan *ch) {
  waiter *w;
  while ((w = first(&ch->senders)) && !ch->closed &&
         (uint64_t)ch->len + ch->reserved < ch->capacity) {
    unlink_waiter(w);
    set_flag(w, W_GRANTED);
    ch->reserved++;
    qn_wake(waker_of(w));
  }
}

/* A queued slot becomes a claim of w. */
static void hand(qn_chan *ch, waiter *w) {
  ch->len--;
  ch->handed++;
  set_flag(w, W_HAS);
}

/* Give claims on queued slots to waiting receivers, in FIFO order. */
static void dispatch(qn_chan *ch) {
  waiter *w;
  while (ch->len > 0 && (w = first(&ch->receivers))) {
    unlink_waiter(w);
    hand(ch, w);
    qn_wake(waker_of(w));
  }
  grant_senders(ch);
}

int qn_chan_reserve(qn_chan *ch) {
  if (ch->closed) return QN_ECLOSED;
  if (!qn__list_empty(&ch->senders) || (uint64_t)ch->len + ch->reserved >= ch->capacity)
    return QN_EFULL;
  ch->reserved++;
  return QN_OK;
}

void qn_chan_unreserve(qn_chan *ch) {
  ch->reserved--;
  grant_senders(ch);
  wake_if_ended(ch);    /* the last permit after a close was given up */
}

/* A permit given before a close is still spent here: a receiver waits for
   it rather than see "closed" (see the top of this file). */
int qn_chan_commit(qn_runtime *rt, qn_chan *ch, uint64_t slot) {
  if (make_room(ch, rt) != QN_OK) return QN_ENOMEM;   /* the permit stays held */
  ch->reserved--;
  push_back(ch, slot);
  waiter *w = first(&ch->receivers);
  if (w != NULL) {        /* receivers wait only while nothing is queued: w gets this slot */
    unlink_waiter(w);
    hand(ch, w);
    qn_wake(waker_of(w));
  }
  grant_senders(ch);      /* the permit spent here frees room */
  return QN_OK;
}

int qn_chan_try_recv(qn_chan *ch, uint64_t *slot) {
  if (ch->len > 0) {
    *slot = take_front(ch);   /* the oldest: a handed slot's claim moves on to the next */
    ch->len--;
    grant_senders(ch);
    wake_if_ended(ch);
    return QN_OK;
  }
  return ended(ch) ? QN_ECLOSED : QN_EEMPTY;
}

void qn_chan_close(qn_chan *ch) {
  if (ch->closed) return;
  ch->closed = 1;
  waiter *w;
  while ((w = first(&ch->senders))) {   /* no permit will come: their sends fail */
    unlink_waiter(w);
    qn_wake(waker_of(w));
  }
  wake_if_ended(ch);
}

/* ---- futures ---- */

typedef struct chan_future {
  qn_future base;
  qn_runtime *rt;
  qn_chan *ch;
  waiter w;
} chan_future;

static int reserve_poll(qn_future *f, qn_waker *wk) {
  chan_future *c = (chan_future *)f;
  if (flag(&c->w, W_GRANTED)) return QN_READY;
  if (c->ch->closed) return QN_READY;
  if (!linked(&c->w)) {
    if (qn_chan_reserve(c->ch) == QN_OK) {
      set_flag(&c->w, W_GRANTED);
      return QN_READY;
    }
    qn__list_push(&c->ch->senders, &c->w.node);
  }
  set_waker(&c->w, wk);
  return QN_PENDING;
}

static void reserve_drop(qn_future *f) {
  chan_future *c = (chan_future *)f;
  unlink_waiter(&c->w);
  if (flag(&c->w, W_GRANTED) && !flag(&c->w, W_COMMITTED)) qn_chan_unreserve(c->ch);   /* the permit goes on */
  qn__small_free(c->rt, c, sizeof *c);
}

static int recv_poll(qn_future *f, qn_waker *wk) {
  chan_future *c = (chan_future *)f;
  if (flag(&c->w, W_HAS)) return QN_READY;
  if (!linked(&c->w)) {
    if (c->ch->len > 0 && qn__list_empty(&c->ch->receivers)) {
      hand(c->ch, &c->w);
      grant_senders(c->ch);
      return QN_READY;
    }
    if (ended(c->ch)) return QN_READY;
    qn__list_push(&c->ch->receivers, &c->w.node);
  }
  set_waker(&c->w, wk);
  return QN_PENDING;
}

static void recv_drop(qn_future *f) {
  chan_future *c = (chan_future *)f;
  unlink_waiter(&c->w);
  if (flag(&c->w, W_HAS) && !flag(&c->w, W_COMMITTED)) {   /* a claim never used: the newest handed slot is queued again */
    c->ch->handed--;
    c->ch->len++;
    dispatch(c->ch);
  }
  qn__small_free(c->rt, c, sizeof *c);
}

static const qn_future_vt reserve_vt = { reserve_poll, reserve_drop };
static const qn_future_vt recv_vt = { recv_poll, recv_drop };

static qn_future *chan_future_new(qn_runtime *rt, qn_chan *ch, const qn_future_vt *vt) {
  chan_future *c = qn__small_alloc(rt, sizeof *c);
  if (c == NULL) return NULL;
  memset(c, 0, sizeof *c);
  c->base.vt = vt;
  c->rt = rt;
  c->ch = ch;
  qn__list_init(&c->w.node);
  return &c->base;
}

qn_future *qn_chan_reserve_new(qn_runtime *rt, qn_chan *ch) {
  return chan_future_new(rt, ch, &reserve_vt);
}
qn_future *qn_chan_recv_new(qn_runtime *rt, qn_chan *ch) {
  return chan_future_new(rt, ch, &recv_vt);
}

int qn_chan_reserve_commit(qn_future *f, uint64_t slot) {
  chan_future *c = (chan_future *)f;
  if (!flag(&c->w, W_GRANTED) || flag(&c->w, W_COMMITTED)) return QN_ECLOSED;
  int r = qn_chan_commit(c->rt, c->ch, slot);
  if (r == QN_OK) set_flag(&c->w, W_COMMITTED);   /* else the permit is still the future's */
  return r;
}

int qn_chan_recv_take(qn_future *f, uint64_t *slot) {
  chan_future *c = (chan_future *)f;
  if (!flag(&c->w, W_HAS) || flag(&c->w, W_COMMITTED)) return QN_ECLOSED;
  set_flag(&c->w, W_COMMITTED);
  *slot = take_front(c->ch);   /* the oldest, whichever claim this future holds */
  c->ch->handed--;
  wake_if_ended(c->ch);
  return QN_OK;
}
