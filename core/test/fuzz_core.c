/*
** libFuzzer harness over the core's C API (no Lua). Built only with
** -DQUENCH_FUZZ=ON (clang): see docs/how-quench-is-tested.md, "libFuzzer harness".
**
** An input is a small program run against one fresh runtime on the virtual
** clock. Bytes 0-2: the seed, the channel's capacity (0-3, or unbounded),
** the semaphore's permits (1-3). Then up to MAX_OPS operations, one opcode
** byte and its argument bytes each (a missing byte reads as 0):
**
**   spawn KIND A B    a task running one script (K_* below) on A and B
**   abort K, cancel K qn_task_abort / qn_task_cancel of task K % ntasks
**   advance MS        qn_advance by MS milliseconds
**   run K             qn_run until task K is done
**   lnew SLOT KIND A  a "loose" core future, polled once by the harness
**                     itself (no task): recv, reserve, sleep, acquire,
**                     token cancelled, join
**   lpoll SLOT        poll it again; if ready, take what it gives, drop it
**   ldrop SLOT        drop it, pending or not
**   close             close the channel
**   try_send, try_recv  qn_chan_reserve+commit, qn_chan_try_recv
**   tcancel A         cancel the root token (A odd) or its child
**
** Tasks' scripts make core futures (sleep, join, select, channel reserve and
** recv, semaphore acquire, token cancelled), poll them to completion and
** drop them; some abort, cancel or spawn other tasks, or abort themselves,
** from inside their poll, and some spawn from their drop.
**
** Invariants (abort() with a message when one breaks):
** - qn_run returns QN_OK (and the task is done) or QN_EDEADLOCK; a virtual
**   clock never stalls;
** - a sleep is never ready before its deadline, a select's winner is a
**   ready child, a join sees its target done, a cancelled-token future its
**   token cancelled;
** - a semaphore never hands out more than its permits; all are back at the
**   end, with no waiter;
** - every value committed to the channel is received exactly once, by a
**   task, a loose future, try_recv, or the drain after shutdown; a value
**   never committed never arrives; no permit of a bounded channel is lost;
** - values are received in the order they were committed, whichever of
**   several ready receive futures (one select's, or two tasks') is taken
**   from first; a receive says "closed" only once the channel has ended,
**   and no value is committed after one did (none is stranded);
** - after qn_runtime_shutdown every task is done and at most the channel's
**   buffer is still allocated; after qn_runtime_free and qn_chan_fini
**   nothing is (LeakSanitizer checks the rest).
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "quench.h"

enum { MAX_OPS = 64, MAX_TASKS = 16, MAX_LOOSE = 6, MAX_VALUES = 1024 };
static const uint64_t MS = 1000000;

#define FAIL(...) do { \
  fprintf(stderr, "fuzz_core: invariant violated: "); \
  fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); abort(); } while (0)
#define CHECK(cond, ...) do { if (!(cond)) { \
  fprintf(stderr, "fuzz_core: CHECK(%s) failed\n", #cond); FAIL(__VA_ARGS__); } } while (0)

/* ---- the world of one input ---- */

static _Alignas(16) unsigned char chan_mem[256], sema_mem[256], root_mem[256], child_mem[256];

typedef struct world {
  const uint8_t *data;
  size_t size, pos;
  qn_runtime *rt;
  qn_chan *ch;
  size_t capacity;
  qn_sema *sema;
  size_t permits, held;         /* permits held by scripts */
  qn_token *root, *child;
  qn_task *tasks[MAX_TASKS];
  int ntasks;
  qn_future *loose[MAX_LOOSE];
  int loose_kind[MAX_LOOSE];
  qn_task *loose_target[MAX_LOOSE];   /* a loose join's */
  uint64_t next_value;          /* values are 1..next_value, each committed at most once */
  uint8_t committed[MAX_VALUES + 1], received[MAX_VALUES + 1];
  uint64_t last_received;       /* values leave in commit order: each is above the last */
  int saw_closed;               /* a receive said "closed" */
} world;

static world W;

static uint8_t next_byte(void) { return W.pos < W.size ? W.data[W.pos++] : 0; }

static void noop_wake(qn_waker *w) { (void)w; }
static qn_waker loose_waker = { noop_wake };

/* A value for a commit: unique, or 0 when there are too many already. */
static uint64_t new_value(void) { return W.next_value < MAX_VALUES ? ++W.next_value : 0; }

static void value_committed(uint64_t v) {
  CHECK(!W.saw_closed, "value %llu committed after a receiver was told closed",
        (unsigned long long)v);
  if (v == 0) return;
  CHECK(!W.committed[v], "value %llu committed twice", (unsigned long long)v);
  W.committed[v] = 1;
}

static void value_received(uint64_t v) {
  if (v == 0) return;
  CHECK(v <= W.next_value && W.committed[v], "value %llu received but never committed",
        (unsigned long long)v);
  CHECK(!W.received[v], "value %llu received twice", (unsigned long long)v);
  CHECK(v > W.last_received, "value %llu received after %llu", (unsigned long long)v,
        (unsigned long long)W.last_received);
  W.received[v] = 1;
  W.last_received = v;
}

/* A receive said "closed": only an ended channel may say so. */
static void saw_closed(void) {
  CHECK(qn_chan_ended(W.ch), "a receive said closed before the channel ended "
        "(closed %d, %zu queued)", qn_chan_is_closed(W.ch), qn_chan_len(W.ch));
  W.saw_closed = 1;
}

/* A reserve future is ready: commit a value (or find the channel closed). */
static void finish_reserve(qn_future *f) {
  uint64_t v = new_value();
  int r = qn_chan_reserve_commit(f, v);
  CHECK(r == QN_OK || r == QN_ECLOSED, "reserve_commit returned %d", r);
  if (r == QN_OK) value_committed(v);
  else CHECK(qn_chan_is_closed(W.ch), "reserve ready without a permit on an open channel");
}

static void finish_recv(qn_future *f) {
  uint64_t v;
  int r = qn_chan_recv_take(f, &v);
  CHECK(r == QN_OK || r == QN_ECLOSED, "recv_take returned %d", r);
  if (r == QN_OK) value_received(v);
  else saw_closed();
}

static void check_sleep_ready(qn_future *f) {
  CHECK(qn_sleep_failed(f) || qn_now(W.rt) >= qn_sleep_deadline(f),
        "sleep ready at %llu before its deadline %llu", (unsigned long long)qn_now(W.rt),
        (unsigned long long)qn_sleep_deadline(f));
}

static void hold(size_t k) {
  W.held += k;
  CHECK(W.held <= W.permits, "%zu permits held of a %zu-permit semaphore", W.held, W.permits);
}

static void unhold(size_t k) {
  W.held -= k;
  qn_sema_release(W.sema, k);
}

static qn_task *task_at(uint8_t k) { return W.ntasks ? W.tasks[k % W.ntasks] : NULL; }

/* ---- task scripts ---- */

enum {
  K_SLEEP, K_JOIN, K_SEL_SLEEPS, K_SEL_RECV, K_SEND, K_RECV, K_SEMA, K_TOKEN, K_SEL_SEND,
  K_SEL_ALL, K_MEDDLE, NKINDS
};

/* select children of K_SEL_ALL, in this order */
enum { A_RECV, A_RESERVE, A_ACQUIRE, A_TOKEN, A_SLEEP, NALL };

typedef struct script {
  qn_future base;
  int kind, step;
  uint8_t a, b;
  qn_future *cur;
  qn_task *target;              /* K_JOIN's, chosen at its first step */
  size_t holding;               /* semaphore permits this script holds */
} script;

static int spawn(int kind, uint8_t a, uint8_t b);

static qn_future *sleep_ms(uint8_t ms) { return qn_sleep_after_new(W.rt, (uint64_t)(ms % 32) * MS); }

static qn_future *select2(qn_future *x, qn_future *y, int biased) {
  qn_future *kids[2] = { x, y };
  return qn_select_new(W.rt, 2, kids, biased);
}

/* Inside a task's poll: act on the runtime (K_MEDDLE). */
static void meddle(script *s) {
  qn_task *t = task_at(s->b), *me = qn_current(W.rt);
  switch (s->a % 7) {
  case 0: if (t) qn_task_abort(t); break;        /* may be itself: aborted when it yields */
  case 1: if (t) qn_task_cancel(t); break;
  case 2: qn_task_abort(me); break;
  case 3: qn_chan_close(W.ch); break;
  case 4: qn_token_cancel(s->b & 1 ? W.root : W.child); break;
  case 5: spawn(s->b % NKINDS, (uint8_t)(s->b * 7), s->a); break;
  case 6: qn_task_cancel(me); break;
  }
}

/* The future of the script's current step, or NULL when it is over. */
static qn_future *make_step(script *s) {
  switch (s->kind) {
  case K_SLEEP: return s->step < 1 + s->b % 3 ? sleep_ms(s->a) : NULL;
  case K_JOIN:
    if (s->step > 0 || (s->target = task_at(s->a)) == NULL) return NULL;
    return qn_join_new(s->target);
  case K_SEL_SLEEPS:
    return s->step == 0 ? select2(sleep_ms(s->a), sleep_ms(s->b), s->a & 1) : NULL;
  case K_SEL_RECV:
    return s->step < 1 + (s->a & 1) ? select2(qn_chan_recv_new(W.rt, W.ch), sleep_ms(s->b), s->a & 2)
                                    : NULL;
  case K_SEND: return s->step < 1 + s->a % 4 ? qn_chan_reserve_new(W.rt, W.ch) : NULL;
  case K_RECV: return s->step < 1 + s->a % 4 ? qn_chan_recv_new(W.rt, W.ch) : NULL;
  case K_SEMA:
    if (s->step == 0) return qn_sema_acquire_new(W.rt, W.sema, 1 + s->a % W.permits);
    if (s->step == 1) return sleep_ms(s->b);
    return NULL;
  case K_TOKEN: return s->step == 0 ? qn_token_cancelled_new(W.rt, s->a & 1 ? W.root : W.child) : NULL;
  case K_SEL_SEND:
    return s->step == 0 ? select2(qn_chan_reserve_new(W.rt, W.ch), sleep_ms(s->b), s->a & 1) : NULL;
  case K_SEL_ALL:
    if (s->step == 0) {
      qn_future *kids[NALL] = {
        qn_chan_recv_new(W.rt, W.ch), qn_chan_reserve_new(W.rt, W.ch),
        qn_sema_acquire_new(W.rt, W.sema, 1), qn_token_cancelled_new(W.rt, W.child),
        sleep_ms(s->b) };
      return qn_select_new(W.rt, NALL, kids, s->a & 1);
    }
    return NULL;
  case K_MEDDLE:
    if (s->step == 0) {
      meddle(s);
      return sleep_ms(s->b & 3);
    }
    return NULL;
  }
  return NULL;
}

/* The step's future is ready: take what it gives, check what it says. */
static void finish_step(script *s, qn_future *f) {
  switch (s->kind) {
  case K_SLEEP: case K_MEDDLE: check_sleep_ready(f); break;
  case K_JOIN:
    CHECK(qn_task_get_state(s->target) == QN_TASK_DONE, "join ready, target not done");
    break;
  case K_SEL_SLEEPS: {
    long w = qn_select_winner(f);
    CHECK(w == 0 || w == 1, "select winner %ld", w);
    check_sleep_ready(qn_select_child(f, (size_t)w));
    CHECK(qn_select_child(f, (size_t)(1 - w)) == NULL, "a loser was not dropped");
    break;
  }
  case K_SEL_RECV: case K_SEL_SEND: {
    long w = qn_select_winner(f);
    CHECK(w == 0 || w == 1, "select winner %ld", w);
    if (w == 1) check_sleep_ready(qn_select_child(f, 1));
    else if (s->kind == K_SEL_RECV) finish_recv(qn_select_child(f, 0));
    else finish_reserve(qn_select_child(f, 0));
    break;
  }
  case K_SEND: finish_reserve(f); break;
  case K_RECV: finish_recv(f); break;
  case K_SEMA:
    if (s->step == 0) {
      size_t k = 1 + s->a % W.permits;
      CHECK(qn_sema_acquire_take(f) == QN_OK, "acquire ready but not granted");
      s->holding = k;
      hold(k);
    } else {
      check_sleep_ready(f);
      unhold(s->holding);
      s->holding = 0;
    }
    break;
  case K_TOKEN:
    CHECK(qn_token_is_cancelled(s->a & 1 ? W.root : W.child), "token future ready, not cancelled");
    break;
  case K_SEL_ALL: {
    long w = qn_select_winner(f);
    CHECK(w >= 0 && w < NALL, "select winner %ld", w);
    for (long i = 0; i < NALL; i++)
      CHECK((qn_select_child(f, (size_t)i) != NULL) == (i == w), "child %ld after select", i);
    qn_future *c = qn_select_child(f, (size_t)w);
    switch (w) {
    case A_RECV: finish_recv(c); break;
    case A_RESERVE: finish_reserve(c); break;
    case A_ACQUIRE:
      CHECK(qn_sema_acquire_take(c) == QN_OK, "acquire ready but not granted");
      hold(1);
      unhold(1);
      break;
    case A_TOKEN: CHECK(qn_token_is_cancelled(W.child), "token future ready, not cancelled"); break;
    case A_SLEEP: check_sleep_ready(c); break;
    }
    break;
  }
  }
}

static int script_poll(qn_future *f, qn_waker *w) {
  script *s = (script *)f;
  qn_task *me = qn_current(W.rt);
  CHECK(me != NULL && qn_task_get_state(me) == QN_TASK_RUNNING, "a script polled outside its task");
  /* Graceful cancellation, as the binding does: unless b's top bit says
     to ignore it, a script asked to stop ends cancelled at its next poll. */
  if (qn_task_cancel_requested(me) && !(s->b & 0x80)) {
    if (s->holding) {
      unhold(s->holding);
      s->holding = 0;
    }
    qn_task_set_outcome(me, QN_TASK_CANCELLED);
    return QN_READY;
  }
  for (;;) {
    if (s->cur == NULL) {
      s->cur = make_step(s);
      if (s->cur == NULL) return QN_READY;
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
  if (s->holding) unhold(s->holding);
  /* a cleanup that spawns (even while the runtime shuts down) */
  if (s->kind == K_MEDDLE && (s->a & 0x40)) spawn(K_SLEEP, s->b, 0);
  free(s);
}

static const qn_future_vt script_vt = { script_poll, script_drop };

/* 1 if spawned, 0 if the task table is full. */
static int spawn(int kind, uint8_t a, uint8_t b) {
  if (W.ntasks == MAX_TASKS) return 0;
  script *s = calloc(1, sizeof *s);
  qn_task *t = malloc(qn_task_size());
  if (s == NULL || t == NULL) abort();
  s->base.vt = &script_vt;
  s->kind = kind;
  s->a = a;
  s->b = b;
  W.tasks[W.ntasks++] = t;
  qn_task_init(t, W.rt, &s->base);
  CHECK(qn_task_get_state(t) == QN_TASK_PENDING, "spawning ran the task");
  return 1;
}

/* ---- loose futures: polled by the harness, not by a task ---- */

enum { L_RECV, L_RESERVE, L_SLEEP, L_ACQUIRE, L_TOKEN, L_JOIN, NLOOSE_KINDS };

static void loose_new(uint8_t slot, uint8_t kind, uint8_t a) {
  int i = slot % MAX_LOOSE, k = kind % NLOOSE_KINDS;
  if (W.loose[i]) return;
  qn_future *f = NULL;
  switch (k) {
  case L_RECV: f = qn_chan_recv_new(W.rt, W.ch); break;
  case L_RESERVE: f = qn_chan_reserve_new(W.rt, W.ch); break;
  case L_SLEEP: f = sleep_ms(a); break;
  case L_ACQUIRE: f = qn_sema_acquire_new(W.rt, W.sema, 1); break;
  case L_TOKEN: f = qn_token_cancelled_new(W.rt, a & 1 ? W.root : W.child); break;
  case L_JOIN: if ((W.loose_target[i] = task_at(a)) != NULL) f = qn_join_new(W.loose_target[i]); break;
  }
  if (f == NULL) return;
  W.loose[i] = f;
  W.loose_kind[i] = k;
}

static void loose_drop(uint8_t slot) {
  int i = slot % MAX_LOOSE;
  if (W.loose[i] == NULL) return;
  qn_drop(W.loose[i]);
  W.loose[i] = NULL;
}

static void loose_poll(uint8_t slot) {
  int i = slot % MAX_LOOSE;
  qn_future *f = W.loose[i];
  if (f == NULL || qn_poll(f, &loose_waker) == QN_PENDING) return;
  switch (W.loose_kind[i]) {
  case L_RECV: finish_recv(f); break;
  case L_RESERVE: finish_reserve(f); break;
  case L_SLEEP: check_sleep_ready(f); break;
  case L_ACQUIRE:
    CHECK(qn_sema_acquire_take(f) == QN_OK, "acquire ready but not granted");
    hold(1);
    unhold(1);
    break;
  case L_TOKEN: break;   /* which token it watches is not kept: nothing to check */
  case L_JOIN:
    CHECK(qn_task_get_state(W.loose_target[i]) == QN_TASK_DONE, "join ready, target not done");
    break;
  }
  loose_drop(slot);
}

/* ---- the program ---- */

enum {
  OP_SPAWN, OP_ABORT, OP_CANCEL, OP_ADVANCE, OP_RUN, OP_LNEW, OP_LPOLL, OP_LDROP, OP_CLOSE,
  OP_TRY_SEND, OP_TRY_RECV, OP_TCANCEL, NOPS
};

static void run_task(qn_task *t) {
  if (t == NULL) return;
  int r = qn_run(W.rt, t);
  CHECK(r == QN_OK || r == QN_EDEADLOCK, "qn_run returned %d", r);
  if (r == QN_OK) CHECK(qn_task_get_state(t) == QN_TASK_DONE, "qn_run: QN_OK, task not done");
}

static void op(uint8_t code) {
  switch (code % NOPS) {
  case OP_SPAWN: {
    uint8_t kind = next_byte(), a = next_byte(), b = next_byte();
    spawn(kind % NKINDS, a, b);
    break;
  }
  case OP_ABORT: {
    qn_task *t = task_at(next_byte());
    if (t) {
      qn_task_abort(t);
      CHECK(qn_task_get_state(t) == QN_TASK_DONE, "abort returned, task not done");
    }
    break;
  }
  case OP_CANCEL: {
    qn_task *t = task_at(next_byte());
    if (t) qn_task_cancel(t);
    break;
  }
  case OP_ADVANCE: {
    uint64_t before = qn_now(W.rt);
    CHECK(qn_advance(W.rt, (uint64_t)(next_byte() % 64) * MS) == QN_OK, "qn_advance failed");
    CHECK(qn_now(W.rt) >= before, "the clock went backwards");
    break;
  }
  case OP_RUN: run_task(task_at(next_byte())); break;
  case OP_LNEW: {
    uint8_t slot = next_byte(), kind = next_byte(), a = next_byte();
    loose_new(slot, kind, a);
    loose_poll(slot);
    break;
  }
  case OP_LPOLL: loose_poll(next_byte()); break;
  case OP_LDROP: loose_drop(next_byte()); break;
  case OP_CLOSE: qn_chan_close(W.ch); break;
  case OP_TRY_SEND: {
    int r = qn_chan_reserve(W.ch);
    CHECK(r == QN_OK || r == QN_EFULL || r == QN_ECLOSED, "qn_chan_reserve returned %d", r);
    if (r == QN_OK) {
      uint64_t v = new_value();
      CHECK(qn_chan_commit(W.rt, W.ch, v) == QN_OK, "qn_chan_commit failed");
      value_committed(v);
    }
    break;
  }
  case OP_TRY_RECV: {
    uint64_t v;
    int r = qn_chan_try_recv(W.ch, &v);
    CHECK(r == QN_OK || r == QN_EEMPTY || r == QN_ECLOSED, "qn_chan_try_recv returned %d", r);
    if (r == QN_OK) value_received(v);
    else if (r == QN_ECLOSED) saw_closed();
    break;
  }
  case OP_TCANCEL: qn_token_cancel(next_byte() & 1 ? W.root : W.child); break;
  }
}

static void *embedder(unsigned char *mem, size_t need) {
  if (need > 256) FAIL("an object of %zu bytes does not fit", need);
  memset(mem, 0, 256);
  return mem;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  memset(&W, 0, sizeof W);
  W.data = data;
  W.size = size;
  uint64_t seed = next_byte() + 1;
  uint8_t cap = next_byte() % 5;
  W.capacity = cap == 4 ? SIZE_MAX : cap;
  W.permits = 1 + next_byte() % 3;
  W.rt = qn_runtime_new(QN_CLOCK_VIRTUAL, seed);
  if (W.rt == NULL) FAIL("qn_runtime_new failed");
  W.ch = embedder(chan_mem, qn_chan_size());
  qn_chan_init(W.ch, W.capacity);
  W.sema = embedder(sema_mem, qn_sema_size());
  qn_sema_init(W.sema, W.permits);
  W.root = embedder(root_mem, qn_token_size());
  W.child = embedder(child_mem, qn_token_size());
  qn_token_init(W.root, NULL);
  qn_token_init(W.child, W.root);

  for (int n = 0; n < MAX_OPS && W.pos < W.size; n++) op(next_byte());

  /* The end: loose futures go first (the embedder's), then every task. */
  for (int i = 0; i < MAX_LOOSE; i++) loose_drop((uint8_t)i);
  qn_runtime_shutdown(W.rt);
  const qn_stats *st = qn_runtime_stats(W.rt);
  for (int i = 0; i < W.ntasks; i++) {
    CHECK(qn_task_get_state(W.tasks[i]) == QN_TASK_DONE, "task %d alive after shutdown", i);
    CHECK(qn_task_runtime(W.tasks[i]) == NULL, "task %d still in the runtime", i);
  }
  CHECK(st->spawned == (uint64_t)W.ntasks && st->finished == st->spawned,
        "spawned %llu, finished %llu, %d tasks", (unsigned long long)st->spawned,
        (unsigned long long)st->finished, W.ntasks);
  CHECK(st->live_blocks <= 1, "%llu blocks left after shutdown (the channel's buffer aside)",
        (unsigned long long)st->live_blocks);
  CHECK(W.held == 0 && qn_sema_available(W.sema) == W.permits && !qn_sema_has_waiters(W.sema),
        "semaphore: %zu held, %zu of %zu available, waiters %d", W.held,
        qn_sema_available(W.sema), W.permits, qn_sema_has_waiters(W.sema));

  /* Every committed value is received once: by now, or from the queue. */
  uint64_t v;
  while (qn_chan_try_recv(W.ch, &v) == QN_OK) value_received(v);
  for (uint64_t i = 1; i <= W.next_value; i++)
    CHECK(W.committed[i] == W.received[i], "value %llu: committed %d, received %d",
          (unsigned long long)i, W.committed[i], W.received[i]);
  if (!qn_chan_is_closed(W.ch) && W.capacity != SIZE_MAX) {   /* no permit lost */
    size_t n = 0;
    while (n <= W.capacity && qn_chan_reserve(W.ch) == QN_OK) n++;
    CHECK(n == W.capacity, "%zu permits of a %zu-capacity channel", n, W.capacity);
    while (n--) qn_chan_unreserve(W.ch);
  }

  qn_runtime_free(W.rt);        /* its memory stays while the channel's buffer does */
  qn_chan_fini(W.ch);
  qn_token_fini(W.child);
  qn_token_fini(W.root);
  for (int i = 0; i < W.ntasks; i++) {
    qn_task_fini(W.tasks[i]);   /* a no-op after shutdown; kept for the pattern */
    free(W.tasks[i]);
  }
  return 0;
}
