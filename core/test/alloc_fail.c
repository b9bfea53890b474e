/*
** Allocation failure injection for the core, as Lua's test suite does with
** its counting allocator: the runtimes here get a failing allocator
** through qn_runtime_new_with, so every block the core allocates (and only
** those: libuv's own allocations are out of reach) is counted, tracked and
** may be refused.
**
** A scenario drives every core future (sleep, join, select, channel
** reserve/recv, semaphore, notify, barrier, token, watch, broadcast) with
** several tasks on the virtual clock. It runs once to count its
** allocations, then once more for every k, with the k-th allocation
** failing. Each run must: not crash; return from qn_run; leave no block
** but those objects hold after qn_runtime_shutdown (stats.live_blocks 0);
** give every block back, the runtime's own last, once qn_runtime_free
** returns; and never lose a message without an error having been reported
** (QN_ENOMEM or a NULL future).
**
** Then: a runtime whose channel buffer outlives qn_runtime_free stays
** (its memory and allocator in use) until the channel lets go.
**
** ALLOC_FAIL_VERBOSE=1 prints every run.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "quench.h"

/* ---- the counting allocator ---- */

typedef struct heap {
  long n_allocs, fail_at;       /* fail the fail_at-th allocation (1-based) */
  int injected;
  long nlive;                   /* blocks handed out and not freed, the runtime's own too */
} heap;

static heap H;

enum { LIVE_CAP = 1 << 16 };
static void *live[LIVE_CAP];    /* open addressing; (void *)1 marks a deleted slot */

static size_t hash(void *p) { return ((size_t)p >> 4) * 2654435761u % LIVE_CAP; }

static void live_add(void *p) {
  size_t i = hash(p);
  while (live[i] != NULL && live[i] != (void *)1) i = (i + 1) % LIVE_CAP;
  live[i] = p;
  H.nlive++;
}

/* 0 if p was not handed out by this allocator (a bug of the core). */
static int live_del(void *p) {
  for (size_t i = hash(p), k = 0; k < LIVE_CAP && live[i] != NULL; i = (i + 1) % LIVE_CAP, k++) {
    if (live[i] == p) {
      live[i] = (void *)1;
      H.nlive--;
      return 1;
    }
  }
  return 0;
}

static int foreign_frees;

static void *counting_alloc(void *ud, void *p, size_t n) {
  heap *h = ud;
  if (n == 0) {
    if (p == NULL) return NULL;
    if (!live_del(p)) foreign_frees++;
    free(p);
    return NULL;
  }
  if (++h->n_allocs == h->fail_at) {
    h->injected = 1;
    return NULL;
  }
  if (p != NULL && !live_del(p)) foreign_frees++;   /* before realloc: p may go */
  void *q = realloc(p, n);
  if (q != NULL) live_add(q);
  else if (p != NULL) live_add(p);      /* failed: p is still there */
  return q;
}

static qn_runtime *runtime_new(long fail) {
  H.n_allocs = 0;
  H.fail_at = fail;
  H.injected = 0;
  qn_runtime *rt = qn_runtime_new_with(QN_CLOCK_VIRTUAL, 7, counting_alloc, &H);
  if (rt != NULL) qn_runtime_cache_small(rt, 0);   /* every future's allocation can fail */
  return rt;
}

/* ---- the scenario ---- */

static int failures;
#define CHECK(cond, ...) do { if (!(cond)) { \
  fprintf(stderr, "alloc_fail: fail_at=%ld: CHECK(%s) failed: ", H.fail_at, #cond); \
  fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); failures++; } } while (0)

enum { NVALUES = 40, NTASKS = 10 };

/* Embedder memory (qn_*_size bytes) lives outside the counted heap. */
static _Alignas(16) char chan_mem[512], sema_mem[512], notify_mem[512], barrier_mem[512],
                         token_mem[512], child_mem[512], watch_mem[512], bcast_mem[512];

typedef struct world {
  qn_runtime *rt;
  qn_chan *ch;
  qn_sema *sema;
  qn_notify *notify;
  qn_barrier *barrier;
  qn_token *token, *child;
  qn_watch *watch;
  qn_bcast *bcast;
  int sent[NVALUES + 1], received[NVALUES + 1];
  int errors;                   /* NULL futures and QN_ENOMEM seen */
  int holders;
} world;

static world W;

/* A task is a script: a role run as steps; each step makes one future,
   polls it to completion and drops it. A NULL future or an ENOMEM ends the
   script (counted as a reported error). */
typedef struct script {
  qn_future base;
  int role, step, id;
  qn_future *cur;
  uint64_t seen;                /* watch version / broadcast position */
  qn_task *target;              /* what a joiner joins */
} script;

static qn_future *sleep_ms(uint64_t ms) { return qn_sleep_after_new(W.rt, ms * 1000000); }

/* The future of a step, or NULL with *end = 1 when the role is over. */
static qn_future *make_step(script *s, int *end) {
  *end = 0;
  int st = s->step;
  switch (s->role) {
  case 0:   /* producer: 20 values, every 3rd after a short sleep */
    if (st >= 2 * (NVALUES / 2)) break;
    if (st % 2 == 1) return sleep_ms(s->id % 3);
    return qn_chan_reserve_new(W.rt, W.ch);
  case 1: { /* consumer: recv against a timeout, then sometimes drop a recv */
    if (st >= 30) break;
    qn_future *kids[2] = { qn_chan_recv_new(W.rt, W.ch), sleep_ms(st % 4) };
    if (kids[0] == NULL || kids[1] == NULL) {
      if (kids[0]) qn_drop(kids[0]);
      if (kids[1]) qn_drop(kids[1]);
      return NULL;
    }
    return qn_select_new(W.rt, 2, kids, st % 2);
  }
  case 2:   /* locker: acquire 1 of 2 permits, hold for a while */
    if (st >= 12) break;
    if (st % 2 == 1) return sleep_ms(1 + st % 3);
    return qn_sema_acquire_new(W.rt, W.sema, 1);
  case 3:   /* notifier / waiter pairs */
    if (st >= 6) break;
    if (s->id % 2) return qn_notify_notified_new(W.rt, W.notify);
    qn_notify_one(W.notify);
    return sleep_ms(1);
  case 4:   /* barrier of 2 */
    if (st >= 3) break;
    return qn_barrier_wait_new(W.rt, W.barrier);
  case 5:   /* token: waits for the child token, cancelled by role 6 */
    if (st >= 1) break;
    return qn_token_cancelled_new(W.rt, W.child);
  case 6:   /* watch and broadcast sender, token canceller */
    if (st >= 8) break;
    qn_watch_bump(W.watch);
    qn_bcast_send(W.bcast);
    if (st == 7) qn_token_cancel(W.token);
    return sleep_ms(2);
  case 7:   /* watch and broadcast receiver */
    if (st >= 8) break;
    if (st % 2) return qn_watch_changed_new(W.rt, W.watch, s->seen);
    return qn_bcast_wait_new(W.rt, W.bcast, &s->seen);
  case 8:   /* joiner, and a growing timer heap (100 sleeps in one select) */
    if (st == 0 && s->target) return qn_join_new(s->target);
    if (st == 1) {
      qn_future *kids[100];
      for (int i = 0; i < 100; i++) {
        if ((kids[i] = sleep_ms(5 + i)) == NULL) {
          while (--i >= 0) qn_drop(kids[i]);
          return NULL;
        }
      }
      return qn_select_new(W.rt, 100, kids, 0);
    }
    break;
  }
  *end = 1;
  return NULL;
}

/* The step's future is ready: take what it gives before dropping it. */
static void finish_step(script *s, qn_future *f) {
  switch (s->role) {
  case 0:
    if (s->step % 2 == 0) {
      int v = s->id * 100 + s->step / 2 + 1;
      v = (v % NVALUES) + 1;
      if (W.sent[v]) v = 0;
      int r = qn_chan_reserve_commit(f, (uint64_t)v);
      if (r == QN_OK) W.sent[v]++;
      else if (r == QN_ENOMEM) W.errors++;
    }
    break;
  case 1:
    if (qn_select_winner(f) == 0) {
      uint64_t slot;
      if (qn_chan_recv_take(qn_select_child(f, 0), &slot) == QN_OK) W.received[slot]++;
    }
    break;
  case 2:
    if (s->step % 2 == 0) {
      qn_sema_acquire_take(f);
      W.holders++;
      CHECK(W.holders <= 2, "%d holders of a 2-permit semaphore", W.holders);
    } else {
      W.holders--;
      qn_sema_release(W.sema, 1);
    }
    break;
  case 3:
    if (s->id % 2) qn_notify_notified_take(f);
    break;
  case 7:
    if (s->step % 2) s->seen = qn_watch_version(W.watch);
    else {
      uint64_t seq, lagged;
      qn_bcast_try_recv(W.bcast, &s->seen, &seq, &lagged);
    }
    break;
  }
}

static int script_poll(qn_future *f, qn_waker *w) {
  script *s = (script *)f;
  for (;;) {
    if (s->cur == NULL) {
      int end;
      s->cur = make_step(s, &end);
      if (s->cur == NULL) {
        if (!end) W.errors++;
        return QN_READY;
      }
    }
    if (qn_poll(s->cur, w) == QN_PENDING) return QN_PENDING;
    finish_step(s, s->cur);
    qn_drop(s->cur);
    s->cur = NULL;
    s->step++;
  }
}

static void script_drop(qn_future *f) {
  script *s = (script *)f;
  if (s->cur) qn_drop(s->cur);
  if (s->role == 2 && s->step % 2 == 1) {   /* aborted while holding a permit */
    W.holders--;
    qn_sema_release(W.sema, 1);
  }
  free(s);
}

static const qn_future_vt script_vt = { script_poll, script_drop };

static void *embedder(char *mem, size_t need) {
  if (need > 512) {
    fprintf(stderr, "alloc_fail: an object of %zu bytes does not fit\n", need);
    exit(2);
  }
  memset(mem, 0, 512);
  return mem;
}

/* One run. Returns the number of allocations it made. */
static long run_once(long fail) {
  memset(&W, 0, sizeof W);
  static _Alignas(16) char task_mem[NTASKS + 1][512];
  W.rt = runtime_new(fail);
  if (W.rt == NULL) {
    W.errors++;
  } else {
    W.ch = embedder(chan_mem, qn_chan_size());
    qn_chan_init(W.ch, 3);
    qn_sema_init(W.sema = embedder(sema_mem, qn_sema_size()), 2);
    qn_notify_init(W.notify = embedder(notify_mem, qn_notify_size()));
    qn_barrier_init(W.barrier = embedder(barrier_mem, qn_barrier_size()), 2);
    qn_token_init(W.token = embedder(token_mem, qn_token_size()), NULL);
    qn_token_init(W.child = embedder(child_mem, qn_token_size()), W.token);
    qn_watch_init(W.watch = embedder(watch_mem, qn_watch_size()));
    qn_bcast_init(W.bcast = embedder(bcast_mem, qn_bcast_size()), 2);
    static const int roles[NTASKS] = { 0, 0, 1, 1, 2, 2, 2, 3, 3, 4 };
    qn_task *tasks[NTASKS + 3];
    int nt = 0;
    for (int i = 0; i < NTASKS + 3; i++) {
      script *s = calloc(1, sizeof *s);
      s->base.vt = &script_vt;
      s->id = i;
      s->role = i < NTASKS ? roles[i] : (i == NTASKS ? 4 : i == NTASKS + 1 ? 5 : 6);
      if (i == NTASKS + 2) s->role = 6;
      qn_task *t = i < NTASKS ? (qn_task *)task_mem[i] : calloc(1, qn_task_size());
      qn_task_init(t, W.rt, &s->base);
      tasks[nt++] = t;
    }
    /* a watcher and the main task, which joins the first producer */
    script *watcher = calloc(1, sizeof *watcher);
    watcher->base.vt = &script_vt;
    watcher->role = 7;
    qn_task *wt = (qn_task *)task_mem[NTASKS];
    qn_task_init(wt, W.rt, &watcher->base);
    script *main = calloc(1, sizeof *main);
    main->base.vt = &script_vt;
    main->role = 8;
    main->target = tasks[0];
    qn_task *mt = calloc(1, qn_task_size());
    qn_task_init(mt, W.rt, &main->base);
    int r = qn_run(W.rt, mt);
    CHECK(r == QN_OK || r == QN_EDEADLOCK, "qn_run returned %d", r);
    qn_runtime_shutdown(W.rt);  /* aborts what is left: drops run */
    /* the channel is the embedder's: its buffer may still be held */
    const qn_stats *st = qn_runtime_stats(W.rt);
    CHECK(st->live_blocks <= 1, "%llu block(s) left after shutdown",
          (unsigned long long)st->live_blocks);
    CHECK((long)st->allocs == H.n_allocs, "the runtime counted %llu allocations, the allocator %ld",
          (unsigned long long)st->allocs, H.n_allocs);
    qn_runtime_free(W.rt);
    /* every value committed was received once or is still queued */
    uint64_t slot;
    while (qn_chan_try_recv(W.ch, &slot) == QN_OK) W.received[slot]++;
    int lost = 0;
    for (int v = 0; v <= NVALUES; v++) {
      CHECK(W.received[v] <= W.sent[v], "value %d received %d times, sent %d", v, W.received[v], W.sent[v]);
      if (W.sent[v] > W.received[v]) lost++;
    }
    CHECK(lost == 0 || W.errors > 0,
          "%d committed value(s) lost although no allocation failure was reported", lost);
    if (lost && getenv("ALLOC_FAIL_VERBOSE"))
      printf("fail_at=%ld: %d value(s) lost after a reported failure\n", fail, lost);
    CHECK(W.holders == 0, "%d permits still counted as held", W.holders);
    qn_chan_fini(W.ch);         /* the runtime's memory goes with the buffer, if any */
    qn_token_fini(W.child);
    qn_token_fini(W.token);
    for (int i = NTASKS; i < nt; i++) free(tasks[i]);
    free(mt);
  }
  CHECK(H.nlive == 0, "%ld allocation(s) not freed", H.nlive);
  if (H.nlive) {   /* forget them, so that the next run starts clean */
    memset(live, 0, sizeof live);
    H.nlive = 0;
  }
  return H.n_allocs;
}

static void noop_wake(qn_waker *w) { (void)w; }

/* A slot handed to a receive future that is dropped before it was taken
   goes back to the front of the queue (S14), also when the ring is full:
   the ring keeps room for every handed slot, so this needs no memory (it
   used to, and lost the slot when the allocation failed). Returns the
   number of slots lost. */
static int recv_drop_needs_room(void) {
  static qn_waker wk = { noop_wake };
  qn_runtime *rt = runtime_new(0);
  qn_chan *ch = embedder(chan_mem, qn_chan_size());
  qn_chan_init(ch, SIZE_MAX);
  qn_future *r = qn_chan_recv_new(rt, ch);
  qn_poll(r, &wk);                       /* waits */
  qn_chan_reserve(ch);
  qn_chan_commit(rt, ch, 100);           /* handed straight to r */
  for (uint64_t i = 0; i < 8; i++) {     /* fill the ring */
    qn_chan_reserve(ch);
    qn_chan_commit(rt, ch, i);
  }
  H.fail_at = H.n_allocs + 1;            /* the next allocation of the core fails */
  qn_drop(r);                            /* 100 must go back to the front */
  int n = 0, first = -1;
  uint64_t slot;
  while (qn_chan_try_recv(ch, &slot) == QN_OK) {
    if (first < 0) first = (int)slot;
    n++;
  }
  CHECK(first == 100, "the slot given back is not first (%d)", first);
  qn_chan_fini(ch);
  qn_runtime_free(rt);
  if (getenv("ALLOC_FAIL_VERBOSE")) printf("recv_drop_needs_room: %d slots left, first %d\n", n, first);
  return 9 - n;
}

/* A commit that cannot grow the buffer keeps its permit: the channel's
   capacity is not lost (it used to be, when the permit came from a
   reserve future: the future counted it as spent). */
static void commit_enomem_keeps_permit(void) {
  static qn_waker wk = { noop_wake };
  qn_runtime *rt = runtime_new(0);
  qn_chan *ch = embedder(chan_mem, qn_chan_size());
  qn_chan_init(ch, 1);
  qn_future *f = qn_chan_reserve_new(rt, ch);
  CHECK(qn_poll(f, &wk) == QN_READY, "a reserve on an empty channel waits");
  H.fail_at = H.n_allocs + 1;            /* the buffer's first allocation */
  CHECK(qn_chan_reserve_commit(f, 1) == QN_ENOMEM, "commit did not fail");
  CHECK(qn_chan_reserve(ch) == QN_EFULL, "the failed commit gave its permit away early");
  qn_drop(f);                            /* the permit goes back */
  CHECK(qn_chan_reserve(ch) == QN_OK, "the permit of the failed commit was lost");
  CHECK(qn_chan_commit(rt, ch, 2) == QN_OK, "commit failed twice");
  qn_chan_fini(ch);
  qn_runtime_free(rt);
}

/* A channel buffer (an embedder's object) outlives its runtime's
   qn_runtime_free: the runtime's memory stays, and the allocator is still
   called, until the buffer goes. A buffer grown outside any runtime (rt
   NULL) uses malloc. */
static void buffer_outlives_runtime(void) {
  qn_runtime *rt = runtime_new(0);
  qn_chan *ch = embedder(chan_mem, qn_chan_size());
  qn_chan_init(ch, SIZE_MAX);
  for (uint64_t i = 0; i < 3; i++) {
    qn_chan_reserve(ch);
    CHECK(qn_chan_commit(rt, ch, i) == QN_OK, "commit %d", (int)i);
  }
  CHECK(qn_runtime_stats(rt)->live_blocks == 1, "the buffer is not counted");
  qn_runtime_free(rt);
  CHECK(H.nlive == 2, "%ld blocks live, want the buffer and the runtime", H.nlive);
  for (uint64_t i = 3; i < 20; i++) {    /* grows: the old buffer goes back to rt */
    qn_chan_reserve(ch);
    CHECK(qn_chan_commit(NULL, ch, i) == QN_OK, "commit %d", (int)i);
  }
  CHECK(H.nlive == 0, "%ld blocks live once the buffer moved to malloc", H.nlive);
  uint64_t slot;
  for (uint64_t i = 0; i < 20; i++)
    CHECK(qn_chan_try_recv(ch, &slot) == QN_OK && slot == i, "slot %d", (int)i);
  qn_chan_fini(ch);
}

int main(void) {
  int verbose = getenv("ALLOC_FAIL_VERBOSE") != NULL;
  int lost = recv_drop_needs_room();
  CHECK(lost == 0, "a dropped receive lost %d slot(s) when the ring was full", lost);
  commit_enomem_keeps_permit();
  buffer_outlives_runtime();
  CHECK(H.nlive == 0 && foreign_frees == 0, "%ld block(s) left, %d foreign free(s)", H.nlive,
        foreign_frees);
  long total = run_once(0);
  CHECK(W.errors == 0, "the reference run saw %d errors", W.errors);
  int ref_failures = failures;
  long silent = 0;
  for (long k = 1; k <= total; k++) {
    int before = failures;
    run_once(k);
    if (!W.errors) silent++;    /* the failure was absorbed (e.g. a sleep woke early) */
    if (verbose || failures > before)
      printf("fail_at=%ld/%ld: errors reported %d%s\n", k, total, W.errors,
             failures > before ? "  <- FAILED" : "");
  }
  CHECK(foreign_frees == 0, "the core freed %d block(s) its allocator never gave", foreign_frees);
  printf("alloc_fail: %ld allocations in the scenario, each failed once: %d check(s) failed; "
         "%ld failure(s) absorbed without an error\n", total, failures, silent);
  return (failures || ref_failures) ? 1 : 0;
}
