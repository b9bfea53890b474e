/* The core on its own: C futures driven by the runtime, no Lua anywhere. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include "quench.h"

static int failures;
#define CHECK(cond) \
  do { if (!(cond)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); failures++; } } while (0)

/* A future that sleeps `ns`, then appends its id to a log. */
typedef struct napper {
  qn_future base;
  qn_runtime *rt;
  qn_future *sleep;
  uint64_t ns;
  int id;
  int *log, *nlog, *dropped;
} napper;

static int napper_poll(qn_future *f, qn_waker *w) {
  napper *n = (napper *)f;
  if (n->sleep == NULL) n->sleep = qn_sleep_new(n->rt, qn_now(n->rt) + n->ns);
  if (qn_poll(n->sleep, w) == QN_PENDING) return QN_PENDING;
  n->log[(*n->nlog)++] = n->id;
  return QN_READY;
}

static void napper_drop(qn_future *f) {
  napper *n = (napper *)f;
  if (n->sleep) qn_drop(n->sleep);
  (*n->dropped)++;
  free(n);
}

static const qn_future_vt napper_vt = { napper_poll, napper_drop };

static qn_future *napper_new(qn_runtime *rt, uint64_t ns, int id, int *log, int *nlog, int *dropped) {
  napper *n = calloc(1, sizeof *n);
  n->base.vt = &napper_vt;
  n->rt = rt; n->ns = ns; n->id = id;
  n->log = log; n->nlog = nlog; n->dropped = dropped;
  return &n->base;
}

/* A future that waits for another task, then records what it saw. */
typedef struct joiner {
  qn_future base;
  qn_future *join;
  qn_task *target;
  int seen_outcome;
} joiner;

static int joiner_poll(qn_future *f, qn_waker *w) {
  joiner *j = (joiner *)f;
  if (j->join == NULL) j->join = qn_join_new(j->target);
  if (qn_poll(j->join, w) == QN_PENDING) return QN_PENDING;
  j->seen_outcome = (int)qn_task_get_outcome(j->target);
  return QN_READY;
}

static void joiner_drop(qn_future *f) {
  joiner *j = (joiner *)f;
  if (j->join) qn_drop(j->join);
  /* the joiner struct itself is owned by the test */
}

static const qn_future_vt joiner_vt = { joiner_poll, joiner_drop };

static qn_task *task_new(qn_runtime *rt, qn_future *f) {
  qn_task *t = malloc(qn_task_size());
  qn_task_init(t, rt, f);
  return t;
}

static void task_free(qn_task *t) {
  qn_task_fini(t);
  free(t);
}

static void test_virtual_order(void) {
  int log[8], nlog = 0, dropped = 0;
  qn_runtime *rt = qn_runtime_new(QN_CLOCK_VIRTUAL, 1);
  qn_task *a = task_new(rt, napper_new(rt, 3000000000u, 3, log, &nlog, &dropped));
  qn_task *b = task_new(rt, napper_new(rt, 1000000000u, 1, log, &nlog, &dropped));
  qn_task *c = task_new(rt, napper_new(rt, 2000000000u, 2, log, &nlog, &dropped));
  CHECK(qn_task_get_state(a) == QN_TASK_PENDING);   /* spawning never runs */
  CHECK(qn_run(rt, a) == QN_OK);
  CHECK(nlog == 3 && log[0] == 1 && log[1] == 2 && log[2] == 3);
  CHECK(qn_now(rt) == 3000000000u);                  /* time jumped, no real wait */
  CHECK(dropped == 3);                               /* done futures are dropped */
  CHECK(qn_task_get_outcome(b) == QN_TASK_OK);
  task_free(a); task_free(b); task_free(c);
  qn_runtime_free(rt);
}

static void test_abort_is_drop(void) {
  int log[4], nlog = 0, dropped = 0;
  qn_runtime *rt = qn_runtime_new(QN_CLOCK_VIRTUAL, 1);
  qn_task *sleeper = task_new(rt, napper_new(rt, 3600000000000u, 9, log, &nlog, &dropped));
  joiner j = { { &joiner_vt }, NULL, sleeper, -1 };
  qn_task *watcher = task_new(rt, &j.base);
  qn_task *tick = task_new(rt, napper_new(rt, 1000, 1, log, &nlog, &dropped));
  CHECK(qn_run(rt, tick) == QN_OK);                  /* sleeper and watcher now suspended */
  CHECK(qn_task_get_state(sleeper) == QN_TASK_SUSPENDED);
  qn_task_abort(sleeper);
  CHECK(dropped == 2);                               /* dropped before abort returned */
  CHECK(qn_task_get_state(sleeper) == QN_TASK_DONE);
  CHECK(qn_task_get_outcome(sleeper) == QN_TASK_CANCELLED);
  qn_task_abort(sleeper);                            /* idempotent */
  CHECK(qn_run(rt, watcher) == QN_OK);
  CHECK(j.seen_outcome == QN_TASK_CANCELLED);
  CHECK(nlog == 1);                                  /* the sleeper never logged */
  CHECK(qn_runtime_stats(rt)->cancelled == 1);
  task_free(sleeper); task_free(watcher); task_free(tick);
  qn_runtime_free(rt);
}

static void test_deadlock_and_shutdown(void) {
  int log[4], nlog = 0, dropped = 0;
  qn_runtime *rt = qn_runtime_new(QN_CLOCK_REAL, 1);
  qn_task *never = task_new(rt, napper_new(rt, 1000, 1, log, &nlog, &dropped));
  joiner j = { { &joiner_vt }, NULL, NULL, -1 };
  qn_task *self_join = task_new(rt, &j.base);
  j.target = self_join;                              /* waits for itself: nothing can wake it */
  CHECK(qn_run(rt, self_join) == QN_EDEADLOCK);
  CHECK(nlog == 1);
  qn_task *pending = task_new(rt, napper_new(rt, 1000, 2, log, &nlog, &dropped));
  qn_runtime_shutdown(rt);                           /* aborts the alive ones */
  CHECK(qn_task_get_state(pending) == QN_TASK_DONE);
  CHECK(qn_task_get_outcome(pending) == QN_TASK_CANCELLED);
  CHECK(qn_task_runtime(pending) == NULL);
  CHECK(nlog == 1 && dropped == 2);
  qn_runtime_free(rt);
  free(never); free(self_join); free(pending);
}

static void test_real_sleep_not_early(void) {
  int log[2], nlog = 0, dropped = 0;
  qn_runtime *rt = qn_runtime_new(QN_CLOCK_REAL, 1);
  uint64_t t0 = uv_hrtime();
  qn_task *t = task_new(rt, napper_new(rt, 20000000u, 1, log, &nlog, &dropped));
  CHECK(qn_run(rt, t) == QN_OK);
  CHECK(uv_hrtime() - t0 >= 20000000u);
  task_free(t);
  qn_runtime_free(rt);
}

static void test_manual_clock(void) {
  int log[2], nlog = 0, dropped = 0;
  qn_runtime *rt = qn_runtime_new(QN_CLOCK_MANUAL, 1);
  qn_task *t = task_new(rt, napper_new(rt, 5000, 1, log, &nlog, &dropped));
  CHECK(qn_run(rt, t) == QN_ESTALLED);               /* nobody advances time */
  CHECK(qn_advance(rt, 4999) == QN_OK && nlog == 0);
  CHECK(qn_advance(rt, 1) == QN_OK);
  CHECK(qn_run(rt, t) == QN_OK && nlog == 1);
  task_free(t);
  qn_runtime_free(rt);
}

/* Dropped futures are kept for reuse: the next one of that size costs the
   allocator nothing, and live_blocks counts only what is in use. */
static void test_small_cache(void) {
  qn_runtime *rt = qn_runtime_new(QN_CLOCK_VIRTUAL, 1);
  const qn_stats *st = qn_runtime_stats(rt);
  qn_future *a = qn_sleep_after_new(rt, 10);
  uint64_t allocs = st->allocs, live = st->live_blocks;
  uintptr_t where = (uintptr_t)a;
  qn_drop(a);
  CHECK(st->live_blocks == live - 1);
  qn_future *b = qn_sleep_after_new(rt, 20);
  CHECK((uintptr_t)b == where);                      /* the same block, again */
  CHECK(st->allocs == allocs && st->live_blocks == live);
  qn_drop(b);
  qn_runtime_cache_small(rt, 0);                     /* off: straight to the allocator */
  qn_future *c = qn_sleep_after_new(rt, 30);
  CHECK(st->allocs == allocs + 1);
  qn_drop(c);
  qn_runtime_free(rt);                               /* the cache is emptied (LeakSanitizer) */
}

/* A task that reads a line with qn_stream_read_deadline_new and records
   how it ended: peek's result (0: the line, UV_EAGAIN: nothing), whether
   the deadline came, and when. */
typedef struct dl_reader {
  qn_future base;
  qn_runtime *rt;
  qn_stream *s;
  qn_future *read;
  uint64_t deadline, at;
  int peek, expired, dropped;
} dl_reader;

static int dl_reader_poll(qn_future *f, qn_waker *w) {
  dl_reader *d = (dl_reader *)f;
  if (d->read == NULL) d->read = qn_stream_read_deadline_new(d->s, QN_STREAM_LINE, 0, d->deadline);
  if (qn_poll(d->read, w) == QN_PENDING) return QN_PENDING;
  const char *p;
  size_t len, used;
  d->peek = qn_stream_peek(d->s, QN_STREAM_LINE, 0, &p, &len, &used);
  if (d->peek == 0) qn_stream_consume(d->s, used);
  d->expired = qn_stream_read_expired(d->read);
  d->at = qn_now(d->rt);
  qn_drop(d->read);
  d->read = NULL;
  return QN_READY;
}

static void dl_reader_drop(qn_future *f) {
  dl_reader *d = (dl_reader *)f;
  if (d->read) qn_drop(d->read);
  d->read = NULL;
  d->dropped = 1;
}

static const qn_future_vt dl_reader_vt = { dl_reader_poll, dl_reader_drop };

/* A read with its own deadline (virtual clock, one end of a socketpair):
   nothing comes, it is ready at exactly its deadline, nothing consumed;
   the line comes first, it is the read; dropped while waiting, its timer
   entry leaves the heap (a later timer does not touch the freed block:
   ASan and valgrind run this). */
static void test_read_deadline(void) {
  int fds[2];
  CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
  qn_runtime *rt = qn_runtime_new(QN_CLOCK_VIRTUAL, 1);
  int kind = 0;
  qn_stream *s = NULL;
  qn_tcp_server *srv = NULL;
  CHECK(qn_adopt(rt, fds[0], QN_ADOPT_UNIX, NULL, &kind, &s, &srv) == 0 && s != NULL);

  dl_reader a = { { &dl_reader_vt }, rt, s, NULL, qn_now(rt) + 5000000000u, 0, -1, -1, 0 };
  qn_task *ta = task_new(rt, &a.base);
  CHECK(qn_run(rt, ta) == QN_OK);
  CHECK(a.peek == UV_EAGAIN && a.expired == 1 && a.at == a.deadline);

  CHECK(write(fds[1], "hi\n", 3) == 3);
  dl_reader b = { { &dl_reader_vt }, rt, s, NULL, qn_now(rt) + 5000000000u, 0, -1, -1, 0 };
  qn_task *tb = task_new(rt, &b.base);
  CHECK(qn_run(rt, tb) == QN_OK);
  CHECK(b.peek == 0 && b.expired == 0 && b.at < b.deadline);
  CHECK(qn_stream_buffered(s) == 0);

  int log[4], nlog = 0, dropped = 0;
  dl_reader c = { { &dl_reader_vt }, rt, s, NULL, qn_now(rt) + 5000000000u, 0, -1, -1, 0 };
  qn_task *tc = task_new(rt, &c.base);
  qn_task *tick = task_new(rt, napper_new(rt, 1000000000u, 1, log, &nlog, &dropped));
  CHECK(qn_run(rt, tick) == QN_OK);                  /* c waits on its read */
  qn_task_abort(tc);
  CHECK(c.dropped == 1 && c.peek == -1);
  qn_task *later = task_new(rt, napper_new(rt, 10000000000u, 2, log, &nlog, &dropped));
  CHECK(qn_run(rt, later) == QN_OK);                 /* past c's deadline: nothing fires for it */
  CHECK(nlog == 2 && c.peek == -1);

  qn_stream_release(s);
  qn_runtime_shutdown(rt);
  task_free(ta); task_free(tb); task_free(tc); task_free(tick); task_free(later);
  qn_runtime_free(rt);
  close(fds[1]);
}

int main(void) {
  test_virtual_order();
  test_abort_is_drop();
  test_deadlock_and_shutdown();
  test_real_sleep_not_early();
  test_manual_clock();
  test_small_cache();
  test_read_deadline();
  printf("core_test: %s\n", failures ? "FAILED" : "ok");
  return failures != 0;
}
