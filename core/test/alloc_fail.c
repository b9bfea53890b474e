/*
** Allocation failure injection for the core, as Lua's test suite does with
** its counting allocator. The core has no allocator hook, so this test
** defines malloc, calloc, realloc and free itself (the executable's
** definitions win over libc's for the whole process, libuv included) and
** forwards to glibc's __libc_* functions.
**
** A scenario drives every core future (sleep, join, select, channel
** reserve/recv, semaphore, notify, barrier, token, watch, broadcast) with
** several tasks on the virtual clock. It runs once to count its
** allocations, then once more for every k, with the k-th allocation
** failing. Each run must: not crash; return from qn_run; free everything it
** allocated once qn_runtime_free returns; and never lose a message without
** an error having been reported (QN_ENOMEM or a NULL future).
**
** Only allocations made by the core itself (code of this executable) are
** failed: libuv abort()s when some of its own allocations fail (its watcher
** array in uv__io_start), which quench cannot change.
**
** Skipped under AddressSanitizer, which owns malloc. ALLOC_FAIL_VERBOSE=1
** prints every run.
*/
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "quench.h"

#if defined(__SANITIZE_ADDRESS__)
int main(void) {
  puts("alloc_fail: skipped under AddressSanitizer (it provides malloc)");
  return 0;
}
#else

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);

/* ---- the counting allocator ---- */

static int tracking;            /* count, fail and remember allocations */
static long n_allocs, fail_at;  /* fail the fail_at-th allocation (1-based) */
static int injected;

enum { LIVE_CAP = 1 << 16 };
static void *live[LIVE_CAP];    /* open addressing; (void *)1 marks a deleted slot */
static long nlive;

static size_t hash(void *p) { return ((size_t)p >> 4) * 2654435761u % LIVE_CAP; }

static void live_add(void *p) {
  size_t i = hash(p);
  while (live[i] != NULL && live[i] != (void *)1) i = (i + 1) % LIVE_CAP;
  live[i] = p;
  nlive++;
}

static void live_del(void *p) {
  if (nlive == 0) return;
  for (size_t i = hash(p), k = 0; k < LIVE_CAP && live[i] != NULL; i = (i + 1) % LIVE_CAP, k++) {
    if (live[i] == p) {
      live[i] = (void *)1;
      nlive--;
      return;
    }
  }
}

/* Is `ret` (a return address) in this executable, i.e. in the core? */
static int from_core(void *ret) {
  static void *exe_base;
  Dl_info info;
  if (exe_base == NULL) {
    if (dladdr((void *)from_core, &info) == 0) return 0;
    exe_base = info.dli_fbase;
  }
  return dladdr(ret, &info) != 0 && info.dli_fbase == exe_base;
}

static int fail_now(void *caller) {
  if (!tracking || !from_core(caller)) return 0;
  if (++n_allocs == fail_at) {
    injected = 1;
    return 1;
  }
  return 0;
}

void *malloc(size_t n) {
  if (fail_now(__builtin_return_address(0))) return NULL;
  void *p = __libc_malloc(n);
  if (p && tracking) live_add(p);
  return p;
}

void *calloc(size_t n, size_t size) {
  if (fail_now(__builtin_return_address(0))) return NULL;
  void *p = __libc_calloc(n, size);
  if (p && tracking) live_add(p);
  return p;
}

void *realloc(void *q, size_t n) {
  if (q == NULL) {
    if (fail_now(__builtin_return_address(0))) return NULL;
    void *p = __libc_malloc(n);
    if (p && tracking) live_add(p);
    return p;
  }
  if (n == 0) {
    free(q);
    return NULL;
  }
  if (fail_now(__builtin_return_address(0))) return NULL;
  void *p = __libc_realloc(q, n);
  if (p) {
    live_del(q);
    if (tracking) live_add(p);
  }
  return p;
}

void free(void *p) {
  if (p == NULL) return;
  live_del(p);
  __libc_free(p);
}

/* ---- the scenario ---- */

static int failures;
#define CHECK(cond, ...) do { if (!(cond)) { \
  fprintf(stderr, "alloc_fail: fail_at=%ld: CHECK(%s) failed: ", fail_at, #cond); \
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
    return qn_chan_reserve_new(W.ch);
  case 1: { /* consumer: recv against a timeout, then sometimes drop a recv */
    if (st >= 30) break;
    qn_future *kids[2] = { qn_chan_recv_new(W.ch), sleep_ms(st % 4) };
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
    return qn_sema_acquire_new(W.sema, 1);
  case 3:   /* notifier / waiter pairs */
    if (st >= 6) break;
    if (s->id % 2) return qn_notify_notified_new(W.notify);
    qn_notify_one(W.notify);
    return sleep_ms(1);
  case 4:   /* barrier of 2 */
    if (st >= 3) break;
    return qn_barrier_wait_new(W.barrier);
  case 5:   /* token: waits for the child token, cancelled by role 6 */
    if (st >= 1) break;
    return qn_token_cancelled_new(W.child);
  case 6:   /* watch and broadcast sender, token canceller */
    if (st >= 8) break;
    qn_watch_bump(W.watch);
    qn_bcast_send(W.bcast);
    if (st == 7) qn_token_cancel(W.token);
    return sleep_ms(2);
  case 7:   /* watch and broadcast receiver */
    if (st >= 8) break;
    if (st % 2) return qn_watch_changed_new(W.watch, s->seen);
    return qn_bcast_wait_new(W.bcast, &s->seen);
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
  __libc_free(s);
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
  fail_at = fail;
  n_allocs = 0;
  injected = 0;
  tracking = 1;
  static _Alignas(16) char task_mem[NTASKS + 1][512];
  W.rt = qn_runtime_new(QN_CLOCK_VIRTUAL, 7);
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
      script *s = __libc_calloc(1, sizeof *s);
      s->base.vt = &script_vt;
      s->id = i;
      s->role = i < NTASKS ? roles[i] : (i == NTASKS ? 4 : i == NTASKS + 1 ? 5 : 6);
      if (i == NTASKS + 2) s->role = 6;
      qn_task *t = i < NTASKS ? (qn_task *)task_mem[i] : __libc_calloc(1, qn_task_size());
      qn_task_init(t, W.rt, &s->base, NULL);
      tasks[nt++] = t;
    }
    /* a watcher and the main task, which joins the first producer */
    script *watcher = __libc_calloc(1, sizeof *watcher);
    watcher->base.vt = &script_vt;
    watcher->role = 7;
    qn_task *wt = (qn_task *)task_mem[NTASKS];
    qn_task_init(wt, W.rt, &watcher->base, NULL);
    script *main = __libc_calloc(1, sizeof *main);
    main->base.vt = &script_vt;
    main->role = 8;
    main->target = tasks[0];
    qn_task *mt = __libc_calloc(1, qn_task_size());
    qn_task_init(mt, W.rt, &main->base, NULL);
    int r = qn_run(W.rt, mt);
    CHECK(r == QN_OK || r == QN_EDEADLOCK, "qn_run returned %d", r);
    qn_runtime_free(W.rt);      /* aborts what is left: drops run */
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
    qn_chan_fini(W.ch);
    qn_token_fini(W.child);
    qn_token_fini(W.token);
    for (int i = NTASKS; i < nt; i++) __libc_free(tasks[i]);
    __libc_free(mt);
  }
  tracking = 0;
  CHECK(nlive == 0, "%ld allocation(s) not freed", nlive);
  if (nlive) {   /* forget them, so that the next run starts clean */
    memset(live, 0, sizeof live);
    nlive = 0;
  }
  return n_allocs;
}

static void noop_wake(qn_waker *w) { (void)w; }

/* A slot handed to a receive future that is dropped before it was taken
   goes back to the front of the queue (S14), also when the ring must grow
   for it? Known bug: if that allocation fails, the slot is lost and nobody
   is told (recv_drop ignores push_front's QN_ENOMEM). Returns the number
   of slots lost. */
static int recv_drop_needs_room(void) {
  static qn_waker wk = { noop_wake };
  qn_runtime *rt = qn_runtime_new(QN_CLOCK_VIRTUAL, 1);
  qn_chan *ch = embedder(chan_mem, qn_chan_size());
  qn_chan_init(ch, SIZE_MAX);
  qn_future *r = qn_chan_recv_new(ch);
  qn_poll(r, &wk);                       /* waits */
  qn_chan_reserve(ch);
  qn_chan_commit(ch, 100);               /* handed straight to r */
  for (uint64_t i = 0; i < 8; i++) {     /* fill the ring (8 slots) */
    qn_chan_reserve(ch);
    qn_chan_commit(ch, i);
  }
  tracking = 1;
  n_allocs = 0;
  fail_at = 1;                           /* the next allocation of the core fails */
  qn_drop(r);                            /* 100 must go back to the front */
  tracking = 0;
  int n = 0, first = -1;
  uint64_t slot;
  while (qn_chan_try_recv(ch, &slot) == QN_OK) {
    if (first < 0) first = (int)slot;
    n++;
  }
  qn_chan_fini(ch);
  qn_runtime_free(rt);
  if (getenv("ALLOC_FAIL_VERBOSE")) printf("recv_drop_needs_room: %d slots left, first %d\n", n, first);
  return 9 - n;
}

int main(void) {
  int verbose = getenv("ALLOC_FAIL_VERBOSE") != NULL;
  int lost = recv_drop_needs_room();
  if (lost) {
    printf("alloc_fail: KNOWN BUG (docs/testing.md): a received slot given back by a dropped "
           "receive is lost when the ring cannot grow (%d lost, no error reported)\n", lost);
    if (getenv("ALLOC_FAIL_STRICT")) failures++;
  }
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
  printf("alloc_fail: %ld allocations in the scenario, each failed once: %d check(s) failed; "
         "%ld failure(s) absorbed without an error\n", total, failures, silent);
  return (failures || ref_failures) ? 1 : 0;
}
#endif
