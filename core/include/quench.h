/*
** quench core: a single-threaded async runtime on libuv, with no Lua in it.
**
** Ownership, written once:
** - A future is owned by whoever polls it. The owner calls qn_drop exactly
**   once, whether the future completed or not: dropping is cancelling, and
**   drop also frees the future. A future that returned QN_PENDING has stored
**   the waker and wakes it when progress is possible; drop unregisters it.
** - A task's memory is provided by its embedder (qn_task_size bytes). The
**   embedder keeps it alive while the task is not done, and while any future
**   that refers to the task (a join) is alive; it calls qn_task_fini before
**   releasing it.
** - The runtime owns its uv loop, its one uv timer and its timer heap.
**   qn_runtime_shutdown aborts every task still alive and closes every handle;
**   qn_runtime_free then releases the memory.
*/
#ifndef QUENCH_H
#define QUENCH_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct qn_runtime qn_runtime;
typedef struct qn_task qn_task;
typedef struct qn_future qn_future;
typedef struct qn_waker qn_waker;

enum { QN_PENDING = 0, QN_READY = 1 };

/* A waker is embedded in whoever waits (a task, a select branch). */
struct qn_waker {
  void (*wake)(qn_waker *w);
};

typedef struct qn_future_vt {
  int (*poll)(qn_future *f, qn_waker *w);   /* QN_READY or QN_PENDING; never blocks */
  void (*drop)(qn_future *f);               /* cancel if still pending, then free */
} qn_future_vt;

struct qn_future {
  const qn_future_vt *vt;
};

static inline void qn_wake(qn_waker *w) { w->wake(w); }
static inline int qn_poll(qn_future *f, qn_waker *w) { return f->vt->poll(f, w); }
static inline void qn_drop(qn_future *f) { f->vt->drop(f); }

/* ---- runtime ---- */

typedef enum { QN_CLOCK_REAL, QN_CLOCK_VIRTUAL, QN_CLOCK_MANUAL } qn_clock;

enum {
  QN_OK = 0,
  QN_ENOMEM = -1,
  QN_EDEADLOCK = -2,  /* the awaited task can never finish: nothing runnable, no timer, no I/O */
  QN_ESTALLED = -3,   /* manual clock: only timers are left and nobody advances time */
  QN_EINVAL = -4,
  QN_ECLOSED = -5,
  QN_EFULL = -6,
  QN_EEMPTY = -7,
  QN_ELAGGED = -8
};

typedef struct qn_stats {
  uint64_t spawned, finished, cancelled, failed, polls;
} qn_stats;

qn_runtime *qn_runtime_new(qn_clock clock, uint64_t seed);
/* Abort every task still alive (their drops run), then close every handle. */
void qn_runtime_shutdown(qn_runtime *rt);
void qn_runtime_free(qn_runtime *rt);
uv_loop_t *qn_runtime_loop(qn_runtime *rt);
qn_clock qn_runtime_clock(qn_runtime *rt);
const qn_stats *qn_runtime_stats(qn_runtime *rt);

/* Drive the runtime until `until` is done. QN_OK, QN_EDEADLOCK or QN_ESTALLED. */
int qn_run(qn_runtime *rt, qn_task *until);

/* Nanoseconds since the runtime started, read fresh (never a stale loop time). */
uint64_t qn_now(qn_runtime *rt);
/* Move a virtual or manual clock forward and wake what became due. */
int qn_advance(qn_runtime *rt, uint64_t ns);
/* The runtime's seeded generator (xorshift64*), for fair select. */
uint64_t qn_random(qn_runtime *rt);
/* The task being polled right now, or NULL. */
qn_task *qn_current(qn_runtime *rt);

/* ---- tasks ---- */

typedef enum {
  QN_TASK_PENDING,    /* spawned, never polled */
  QN_TASK_SUSPENDED,
  QN_TASK_RUNNING,
  QN_TASK_DONE
} qn_task_state;

typedef enum { QN_TASK_OK, QN_TASK_FAILED, QN_TASK_CANCELLED } qn_task_outcome;

size_t qn_task_size(void);
/* Start a task over `fut` (owned by the task from now on). It is queued and
   first polled at the runtime's next turn: spawning never runs it. */
void qn_task_init(qn_task *t, qn_runtime *rt, qn_future *fut, void *userdata);
/* Forget a task whose memory is about to be released. */
void qn_task_fini(qn_task *t);

qn_runtime *qn_task_runtime(const qn_task *t);   /* NULL once the runtime is freed */
void *qn_task_userdata(const qn_task *t);
uint64_t qn_task_id(const qn_task *t);
qn_task_state qn_task_get_state(const qn_task *t);
qn_task_outcome qn_task_get_outcome(const qn_task *t);
/* The task's future reports failure before it returns QN_READY (or during drop). */
void qn_task_set_outcome(qn_task *t, qn_task_outcome o);

/* Drop now: a pending or suspended task has its future dropped before this
   returns and is done as cancelled. A running task (self-abort) is dropped
   when its poll returns. Done or already dropping: no effect. */
void qn_task_abort(qn_task *t);
int qn_task_abort_requested(const qn_task *t);
int qn_task_dropping(const qn_task *t);
/* Graceful: set the flag the task's future reads, and wake it. Idempotent. */
void qn_task_cancel(qn_task *t);
int qn_task_cancel_requested(const qn_task *t);
void qn_task_wake(qn_task *t);
qn_waker *qn_task_waker(qn_task *t);

/* Visit every task that is not done, in spawn order. */
void qn_runtime_each_task(qn_runtime *rt, void (*fn)(qn_task *t, void *arg), void *arg);

/* ---- futures the core provides ---- */

/* Ready when the runtime's clock reaches `deadline` (ns, qn_now scale). */
qn_future *qn_sleep_new(qn_runtime *rt, uint64_t deadline);
/* Ready `ns` after its first poll (timeouts: a branch that is ready at once
   means the clock is never read and no timer armed). */
qn_future *qn_sleep_after_new(qn_runtime *rt, uint64_t ns);
uint64_t qn_sleep_deadline(const qn_future *sleep);
/* Ready when `target` is done. */
qn_future *qn_join_new(qn_task *target);


/* Ready when the first child is; every other child is dropped first.
   Takes ownership of the children (also on failure: NULL). Fair selects
   start polling at a random child (the runtime's seeded generator); biased
   ones in argument order. */
qn_future *qn_select_new(qn_runtime *rt, size_t n, qn_future *const *children, int biased);
long qn_select_winner(const qn_future *select);           /* -1 until ready */
qn_future *qn_select_child(const qn_future *select, size_t i);   /* NULL once dropped */

/* ---- cancellation tokens ---- */

/* A token: a flag that, once set, stays set, in a tree: cancelling a token
   cancels every descendant, never an ancestor. Memory is the embedder's
   (qn_token_size bytes); qn_token_fini unlinks it from parent and children. */
typedef struct qn_token qn_token;

/* Called once when the watched token is cancelled (then unlinked). Embedded
   by the watcher; next == NULL while not linked. */
typedef struct qn_token_watch {
  struct qn_token_watch *next, *prev;
  void (*fn)(struct qn_token_watch *w);
} qn_token_watch;

size_t qn_token_size(void);
void qn_token_init(qn_token *t, qn_token *parent);   /* parent may be NULL */
void qn_token_fini(qn_token *t);
int qn_token_is_cancelled(const qn_token *t);
/* Cancel `t` and its descendants, in pre-order, firing their watches.
   Iterative: trees of any depth. Returns 0 if `t` was already cancelled
   (the first cancel wins). */
int qn_token_cancel(qn_token *t);
/* The token whose qn_token_cancel reached `t` (itself or an ancestor). */
qn_token *qn_token_origin(const qn_token *t);
qn_token *qn_token_parent(const qn_token *t);
void qn_token_watch_add(qn_token *t, qn_token_watch *w);
void qn_token_watch_remove(qn_token_watch *w);
/* Ready when the token is cancelled. The token must outlive the future. */
qn_future *qn_token_cancelled_new(qn_token *t);


/* ---- signals ---- */

/* Ready at the next delivery of `signum` (or at once if one was counted
   while nobody waited); every waiter sees a delivery. If the signal cannot
   be watched it is ready at once and qn_signal_take fails (QN_EINVAL).
   A delivery never taken (the future dropped first) is counted again. */
qn_future *qn_signal_new(qn_runtime *rt, int signum);
int qn_signal_take(qn_future *signal);

/* ---- channels ---- */

/* A multi-producer multi-consumer FIFO channel of opaque slots. Memory is
   the embedder's (qn_chan_size bytes). capacity SIZE_MAX: unbounded. */
typedef struct qn_chan qn_chan;

size_t qn_chan_size(void);
void qn_chan_init(qn_chan *ch, size_t capacity);
void qn_chan_fini(qn_chan *ch);     /* no future on it may remain */
size_t qn_chan_len(const qn_chan *ch);
int qn_chan_is_closed(const qn_chan *ch);
/* Take a permit at once: QN_OK, QN_EFULL (or senders already wait) or QN_ECLOSED. */
int qn_chan_reserve(qn_chan *ch);
void qn_chan_unreserve(qn_chan *ch);
/* Spend a permit on `slot`: to the first waiting receiver, else queued. */
int qn_chan_commit(qn_chan *ch, uint64_t slot);
/* QN_OK with *slot, QN_EEMPTY or QN_ECLOSED (closed and drained). */
int qn_chan_try_recv(qn_chan *ch, uint64_t *slot);
void qn_chan_close(qn_chan *ch);
/* Ready with a permit (then qn_chan_reserve_commit) or when closed (QN_ECLOSED
   from commit). Dropped holding an unspent permit: it goes to the next sender. */
qn_future *qn_chan_reserve_new(qn_chan *ch);
int qn_chan_reserve_commit(qn_future *reserve, uint64_t slot);
/* Ready with a slot (qn_chan_recv_take) or closed and drained (QN_ECLOSED).
   Dropped before the slot was taken: the slot goes back to the front. */
qn_future *qn_chan_recv_new(qn_chan *ch);
int qn_chan_recv_take(qn_future *recv, uint64_t *slot);

/* ---- synchronisation ---- */

/* FIFO semaphore (mutex = 1 permit; rwlock: a reader takes 1 of N, a
   writer all N). A dropped waiter never keeps a permit. */
typedef struct qn_sema qn_sema;
size_t qn_sema_size(void);
void qn_sema_init(qn_sema *s, size_t permits);
size_t qn_sema_available(const qn_sema *s);
int qn_sema_has_waiters(const qn_sema *s);
int qn_sema_try_acquire(qn_sema *s, size_t k);   /* QN_OK or QN_EFULL */
void qn_sema_release(qn_sema *s, size_t k);
qn_future *qn_sema_acquire_new(qn_sema *s, size_t k);
int qn_sema_acquire_take(qn_future *acquire);     /* the caller now holds the permits */

typedef struct qn_notify qn_notify;
size_t qn_notify_size(void);
void qn_notify_init(qn_notify *n);
void qn_notify_one(qn_notify *n);
void qn_notify_all(qn_notify *n);
qn_future *qn_notify_notified_new(qn_notify *n);
void qn_notify_notified_take(qn_future *notified);

typedef struct qn_barrier qn_barrier;
size_t qn_barrier_size(void);
void qn_barrier_init(qn_barrier *b, size_t n);
qn_future *qn_barrier_wait_new(qn_barrier *b);
int qn_barrier_is_leader(const qn_future *wait);

typedef struct qn_watch qn_watch;
size_t qn_watch_size(void);
void qn_watch_init(qn_watch *w);
uint64_t qn_watch_version(const qn_watch *w);
int qn_watch_is_closed(const qn_watch *w);
void qn_watch_bump(qn_watch *w);
void qn_watch_close(qn_watch *w);
qn_future *qn_watch_changed_new(qn_watch *w, uint64_t seen);

typedef struct qn_bcast qn_bcast;
size_t qn_bcast_size(void);
void qn_bcast_init(qn_bcast *b, size_t capacity);
uint64_t qn_bcast_tail(const qn_bcast *b);
int qn_bcast_is_closed(const qn_bcast *b);
uint64_t qn_bcast_send(qn_bcast *b);             /* the new message's number */
void qn_bcast_close(qn_bcast *b);
/* QN_OK (*seq to read; *next moved on), QN_ELAGGED (*lagged lost; *next moved
   to the oldest kept), QN_EEMPTY or QN_ECLOSED. */
int qn_bcast_try_recv(const qn_bcast *b, uint64_t *next, uint64_t *seq, uint64_t *lagged);
/* Ready when *next has something (or the channel closed); moves nothing. */
qn_future *qn_bcast_wait_new(qn_bcast *b, const uint64_t *next);

#endif
