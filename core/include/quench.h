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
** - Memory: every block the core allocates (the runtime itself, futures, I/O
**   objects, buffers) comes from its runtime's allocator (qn_alloc_fn) and
**   goes back to it; the runtime counts them (qn_stats). A block that
**   outlives qn_runtime_free (an I/O object or a channel buffer the embedder
**   has not released yet) keeps the runtime's own memory, and so its
**   allocator, in use until the last such block is freed. Exceptions: libuv
**   allocates with its own allocator (uv_replace_allocator is process-wide),
**   getaddrinfo's results come from libc, and qn_fs_read_file grows its
**   buffer with malloc on a pool thread (the allocator is only ever called
**   on the runtime's thread).
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
  uint64_t allocs;        /* calls to the allocator asking for memory (new blocks and
                             resizes, failed ones too), the runtime's own block first */
  uint64_t live_blocks;   /* blocks allocated and not freed yet, the runtime's own aside */
} qn_stats;

/* The allocator, realloc-like: ptr NULL allocates `size` bytes; size 0
   frees ptr (which may be NULL) and returns NULL; otherwise resizes ptr.
   NULL means out of memory (ptr is then left as it was): the core reports
   it as QN_ENOMEM, UV_ENOMEM or a NULL future, and never aborts. Called on
   the runtime's thread only; `ud` is passed back as is. */
typedef void *(*qn_alloc_fn)(void *ud, void *ptr, size_t size);

/* A runtime whose memory comes from alloc (NULL: realloc and free). NULL
   if out of memory or the uv loop cannot be made. alloc and ud must stay
   usable until the runtime's memory is gone (see Memory above). */
qn_runtime *qn_runtime_new_with(qn_clock clock, uint64_t seed, qn_alloc_fn alloc, void *ud);
qn_runtime *qn_runtime_new(qn_clock clock, uint64_t seed);   /* the default allocator */
/* Futures, made and dropped on every await, are small: the runtime keeps
   freed ones for reuse (on by default), so most awaits call no allocator.
   Off, every allocation reaches the allocator: for allocation-failure
   tests that must be able to fail each of them. */
void qn_runtime_cache_small(qn_runtime *rt, int on);
/* Abort every task still alive (their drops run), then close every handle. */
void qn_runtime_shutdown(qn_runtime *rt);
/* Shut down if not yet done, and free what the runtime owns. Its own memory
   goes now, or with the last block still held (live_blocks) by an object
   the embedder has not released yet. */
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
   first polled at the runtime's next turn: spawning never runs it. The task
   keeps no pointer for the embedder (one per task costs): an embedder finds
   its own data from t, or t from its data, as it placed them (qn_task_size
   bytes of its memory). */
void qn_task_init(qn_task *t, qn_runtime *rt, qn_future *fut);
/* Forget a task whose memory is about to be released. */
void qn_task_fini(qn_task *t);

qn_runtime *qn_task_runtime(const qn_task *t);   /* NULL once the runtime is freed */
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

/* A deadline the clock never reaches: a sleep until QN_NEVER waits for
   ever and arms no timer. Deadlines computed past the clock's range (2^64
   ns, 584 years, from the runtime's start) saturate to it, and the virtual
   and manual clocks stop short of it. */
#define QN_NEVER UINT64_MAX

/* Ready when the runtime's clock reaches `deadline` (ns, qn_now scale). */
qn_future *qn_sleep_new(qn_runtime *rt, uint64_t deadline);
/* Ready `ns` after its first poll (timeouts: a branch that is ready at once
   means the clock is never read and no timer armed); never if that is past
   the clock's range. */
qn_future *qn_sleep_after_new(qn_runtime *rt, uint64_t ns);
uint64_t qn_sleep_deadline(const qn_future *sleep);
/* Ready early because no memory was left to arm its timer. */
int qn_sleep_failed(const qn_future *sleep);
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
qn_future *qn_token_cancelled_new(qn_runtime *rt, qn_token *t);


/* ---- signals ---- */

/* Ready at the next delivery of `signum` (or at once if one was counted
   while nobody waited); every waiter sees a delivery. If the signal cannot
   be watched it is ready at once and qn_signal_take fails (QN_EINVAL).
   A delivery never taken (the future dropped first) is counted again. */
qn_future *qn_signal_new(qn_runtime *rt, int signum);
int qn_signal_take(qn_future *signal);

/* ---- channels ---- */

/* A multi-producer multi-consumer FIFO channel of opaque slots. Memory is
   the embedder's (qn_chan_size bytes). capacity SIZE_MAX (or any from
   UINT32_MAX up): unbounded; a channel queues at most 2^31 slots (a commit
   that needs more room fails as out of memory).
   A channel belongs to no runtime: its futures are made in one (rt), and
   its ring buffer is grown by the allocator of the runtime given to the
   commit that needs room (NULL: malloc) and freed through the same one. */
typedef struct qn_chan qn_chan;

size_t qn_chan_size(void);
void qn_chan_init(qn_chan *ch, size_t capacity);
void qn_chan_fini(qn_chan *ch);     /* no future on it may remain; frees the buffer */
size_t qn_chan_len(const qn_chan *ch);    /* queued slots no receive future claims */
int qn_chan_is_closed(const qn_chan *ch);
/* The capacity given at init (SIZE_MAX: unbounded), and the sends that
   would be admitted now without waiting (SIZE_MAX: unbounded). */
size_t qn_chan_capacity(const qn_chan *ch);
size_t qn_chan_room(const qn_chan *ch);
/* Closed, and nothing queued, claimed or reserved: no slot can ever be
   received again. Receivers see "closed" (QN_ECLOSED) only then; until
   then a permit given before the close may still commit. */
int qn_chan_ended(const qn_chan *ch);
/* Take a permit at once: QN_OK, QN_EFULL (or senders already wait) or QN_ECLOSED. */
int qn_chan_reserve(qn_chan *ch);
void qn_chan_unreserve(qn_chan *ch);
/* Spend a permit on `slot` (also after a close, for a permit given
   before it): queued, and claimed by the first waiting receiver.
   QN_ENOMEM if the buffer cannot grow: the permit is still held (spend it
   again or qn_chan_unreserve it). */
int qn_chan_commit(qn_runtime *rt, qn_chan *ch, uint64_t slot);
/* QN_OK with *slot (the oldest not taken, so values leave in commit order),
   QN_EEMPTY or QN_ECLOSED (ended). */
int qn_chan_try_recv(qn_chan *ch, uint64_t *slot);
void qn_chan_close(qn_chan *ch);
/* Ready with a permit (then qn_chan_reserve_commit) or when closed (QN_ECLOSED
   from commit). Dropped holding an unspent permit: it goes to the next sender. */
qn_future *qn_chan_reserve_new(qn_runtime *rt, qn_chan *ch);
/* QN_OK, QN_ECLOSED (no permit) or QN_ENOMEM (the permit stays with the
   future: dropping it passes the permit on). */
int qn_chan_reserve_commit(qn_future *reserve, uint64_t slot);
/* Ready with a claim on a slot (qn_chan_recv_take gives the oldest slot not
   taken yet) or once the channel ended (QN_ECLOSED). Dropped before taking:
   the claim goes to the next waiting receiver, the order is kept. */
qn_future *qn_chan_recv_new(qn_runtime *rt, qn_chan *ch);
int qn_chan_recv_take(qn_future *recv, uint64_t *slot);

/* ---- synchronisation ----

   Like channels, these objects are the embedder's memory and belong to no
   runtime; a future on one is made in a runtime (rt), whose allocator it
   uses. */

/* FIFO semaphore (mutex = 1 permit; rwlock: a reader takes 1 of N, a
   writer all N). A dropped waiter never keeps a permit. */
typedef struct qn_sema qn_sema;
size_t qn_sema_size(void);
void qn_sema_init(qn_sema *s, size_t permits);
size_t qn_sema_available(const qn_sema *s);
int qn_sema_has_waiters(const qn_sema *s);
int qn_sema_try_acquire(qn_sema *s, size_t k);   /* QN_OK, QN_EFULL or QN_ECLOSED */
void qn_sema_close(qn_sema *s);                  /* waiters and later acquires fail */
int qn_sema_is_closed(const qn_sema *s);
size_t qn_sema_forget(qn_sema *s, size_t k);     /* removes up to k available permits */
void qn_sema_release(qn_sema *s, size_t k);
qn_future *qn_sema_acquire_new(qn_runtime *rt, qn_sema *s, size_t k);
/* QN_OK: the caller now holds the permits; QN_ECLOSED: the semaphore was
   closed first (nothing held). A closed semaphore makes its acquires ready. */
int qn_sema_acquire_take(qn_future *acquire);

typedef struct qn_notify qn_notify;
size_t qn_notify_size(void);
void qn_notify_init(qn_notify *n);
void qn_notify_one(qn_notify *n);
void qn_notify_all(qn_notify *n);
void qn_notify_last(qn_notify *n);   /* as qn_notify_one, to the newest waiter */
qn_future *qn_notify_notified_new(qn_runtime *rt, qn_notify *n);
void qn_notify_notified_take(qn_future *notified);

typedef struct qn_barrier qn_barrier;
size_t qn_barrier_size(void);
void qn_barrier_init(qn_barrier *b, size_t n);
qn_future *qn_barrier_wait_new(qn_runtime *rt, qn_barrier *b);
int qn_barrier_is_leader(const qn_future *wait);

typedef struct qn_watch qn_watch;
size_t qn_watch_size(void);
void qn_watch_init(qn_watch *w);
uint64_t qn_watch_version(const qn_watch *w);
int qn_watch_is_closed(const qn_watch *w);
void qn_watch_bump(qn_watch *w);
void qn_watch_close(qn_watch *w);
qn_future *qn_watch_changed_new(qn_runtime *rt, qn_watch *w, uint64_t seen);

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
qn_future *qn_bcast_wait_new(qn_runtime *rt, qn_bcast *b, const uint64_t *next);

/* ---- I/O objects: processes, streams, UDP (process.c, stream.c, udp.c) ----

   I/O calls return 0 or a negative libuv error code (UV_E*; uv_err_name
   names it), never the QN_E* codes. An I/O object is the core's: it is
   allocated by its runtime with its libuv handles and requests, and its
   embedder holds a pointer and calls the object's release exactly once
   when it lets go.
   The memory is freed when the embedder has released it, no future refers
   to it, and its handles are closed (a close by qn_runtime_shutdown counts:
   the object then reports closed, and release frees it). Core callbacks
   only update state and wake. */

/* ---- UDP ---- */

enum { QN_UDP_QUEUE_DEFAULT = 64 };

typedef struct qn_udp qn_udp;

/* A received datagram, or a receive error (err < 0, data NULL). The
   taker frees data with qn_udp_dgram_free. */
typedef struct qn_udp_dgram {
  char *data;
  qn_runtime *rt;         /* whose allocator holds data */
  size_t len;
  int err;
  int truncated;          /* longer than 64 KiB: the rest was lost */
  struct sockaddr_storage from;
} qn_udp_dgram;

/* Bind a socket (flags: UV_UDP_IPV6ONLY, UV_UDP_REUSEADDR). Reading starts
   at the first receive and pauses while queue_max datagrams (0: the
   default) are queued; the kernel's buffer holds or drops what comes next. */
int qn_udp_bind(qn_runtime *rt, const struct sockaddr *addr, unsigned flags, size_t queue_max,
                qn_udp **out);
int qn_udp_getsockname(const qn_udp *u, struct sockaddr_storage *ss);
int qn_udp_is_closed(const qn_udp *u);
size_t qn_udp_queued(const qn_udp *u);
/* Close (idempotent): waiting receives become ready with nothing. */
void qn_udp_close(qn_udp *u);
void qn_udp_release(qn_udp *u);
/* 0 with *d, UV_EAGAIN (nothing queued) or UV_EBADF (closed). */
int qn_udp_try_recv(qn_udp *u, qn_udp_dgram *d);
/* Ready with a datagram or when the socket is closed. Dropped before the
   datagram was taken: it goes back to the front of the queue. */
qn_future *qn_udp_recv_new(qn_udp *u);
int qn_udp_recv_take(qn_future *recv, qn_udp_dgram *d);   /* 0, or UV_EBADF: closed */
/* Free a taken datagram's data (through d->rt). */
void qn_udp_dgram_free(qn_udp_dgram *d);
/* Send now if the socket can take it: 0, UV_EAGAIN (use a future) or an error. */
int qn_udp_try_send(qn_udp *u, const char *data, size_t len, const struct sockaddr *to);
qn_future *qn_udp_send_new(qn_udp *u, const char *data, size_t len, const struct sockaddr *to);
int qn_udp_send_status(const qn_future *send);

/* ---- processes ---- */

typedef struct qn_process qn_process;

enum { QN_STDIO_INHERIT, QN_STDIO_IGNORE, QN_STDIO_PIPE };

typedef struct qn_process_opts {
  const char *file;
  char **args;            /* argv, NULL-terminated; args[0] is the program's name */
  char **env;             /* "K=v" strings, NULL-terminated; NULL: the parent's */
  const char *cwd;        /* NULL: the parent's */
  int stdio[3];           /* QN_STDIO_* for fds 0, 1, 2 */
  int kill_on_drop;       /* see qn_process_release */
} qn_process_opts;

/* Spawn a child (errors of exec, such as UV_ENOENT, are reported here).
   For each QN_STDIO_PIPE, fds[i] is our end of a socket pair connected to
   the child's fd i (non-blocking, close-on-exec; the caller owns it, e.g.
   for qn_pipe_open), else -1. */
int qn_process_spawn(qn_runtime *rt, const qn_process_opts *o, qn_process **out, int fds[3]);
int qn_process_pid(const qn_process *p);
/* 1 once the child has exited (and was reaped), with its status or signal. */
int qn_process_exited(const qn_process *p, int64_t *status, int *signal);
/* Closed (released, or by the runtime's end): the child is no longer watched. */
int qn_process_is_closed(const qn_process *p);
/* 0, UV_ESRCH once the child has exited (its pid is never signalled after
   it was reaped), UV_ECANCELED once closed, or an error. */
int qn_process_kill(qn_process *p, int signum);
/* Ready when the child has exited (or the handle closed); takes nothing,
   so dropping it is harmless. */
qn_future *qn_process_wait_new(qn_process *p);
/* The embedder lets go. now (a close): with kill_on_drop a running child is
   sent SIGKILL and reaped at once (for at most 100 ms: one stuck in the
   kernel is reaped when it exits); otherwise it runs on, and is reaped at
   its exit while the runtime lives. Not now (garbage collection): a running
   child is left alone until it exits or the runtime ends, which does what a
   close does. */
void qn_process_release(qn_process *p, int now);

/* ---- blocking work (libuv's thread pool) ---- */

/* Runs on a pool thread; `self` is the future, for qn_work_is_cancelled. */
typedef void (*qn_work_fn)(qn_future *self, void *arg);
/* Ready once run(self, arg) has run on libuv's thread pool (queued at the
   first poll). The future owns arg from here on (not on failure: NULL) and
   calls release(arg) on the loop thread exactly once, when it is freed.
   Dropped while queued or running, it never waits: the flag is set, the
   request is uv_cancel'ed, and libuv's callback frees it later; the
   runtime's shutdown waits for such work to end. */
qn_future *qn_work_new(qn_runtime *rt, qn_work_fn run, void (*release)(void *arg), void *arg);
/* Set once the future was dropped (cancelled); safe from any thread. */
int qn_work_is_cancelled(const qn_future *work);
/* Once ready: 0 if run ran, else a uv error code (it could not be queued). */
int qn_work_status(const qn_future *work);
void *qn_work_arg(const qn_future *work);

/* ---- files (uv_fs_* on libuv's thread pool) ---- */

/* An open file, owned by the embedder until qn_file_release. It is closed
   by qn_file_close or by the runtime's shutdown; its fd then goes when no
   future on it is left (a dropped read still running keeps it, so it never
   touches a reused fd number). */
typedef struct qn_file qn_file;
qn_file *qn_file_new(qn_runtime *rt, uv_file fd);   /* owns fd; NULL: out of memory */
uv_file qn_file_fd(const qn_file *f);               /* -1 once closed */
int qn_file_is_closed(const qn_file *f);
/* QN_OK or the uv error of close(2) (QN_OK when deferred or already closed). */
int qn_file_close(qn_file *f);
void qn_file_release(qn_file *f);                   /* closes it first if needed */

/* Requests, submitted at the first poll. A dropped request still in flight
   is uv_cancel'ed and freed by its callback; an fd it opened is closed. */
qn_future *qn_fs_open_new(qn_runtime *rt, const char *path, int flags, int mode);
qn_future *qn_fs_read_new(qn_runtime *rt, qn_file *f, size_t len, int64_t offset); /* -1: position */
qn_future *qn_fs_write_new(qn_runtime *rt, qn_file *f, const char *data, size_t len,
                           int64_t offset);   /* copies data; resumes short writes */
qn_future *qn_fs_fstat_new(qn_runtime *rt, qn_file *f);
qn_future *qn_fs_fsync_new(qn_runtime *rt, qn_file *f);
qn_future *qn_fs_stat_new(qn_runtime *rt, const char *path);
qn_future *qn_fs_scandir_new(qn_runtime *rt, const char *path);
qn_future *qn_fs_unlink_new(qn_runtime *rt, const char *path);
qn_future *qn_fs_rmdir_new(qn_runtime *rt, const char *path);
qn_future *qn_fs_mkdir_new(qn_runtime *rt, const char *path, int mode);
qn_future *qn_fs_rename_new(qn_runtime *rt, const char *path, const char *new_path);
/* Once ready: >= 0 (bytes read or written, an fd, 0) or a uv error code. */
ssize_t qn_fs_result(const qn_future *fs);
/* An open's fd as a file the caller owns; NULL if it failed or out of
   memory (the future still closes the fd when dropped). */
qn_file *qn_fs_take_file(qn_future *open);
const char *qn_fs_data(const qn_future *read);             /* qn_fs_result bytes */
const uv_stat_t *qn_fs_statbuf(const qn_future *stat);     /* stat and fstat */
int qn_fs_scandir_next(qn_future *scandir, uv_dirent_t *ent);   /* 0 or UV_EOF */
/* Whole files: open, read or write everything, close, as one piece of pool
   work (qn_work_new): a dropped one leaves nothing open. write_file
   creates or truncates (mode 0666 before umask). */
qn_future *qn_fs_read_file_new(qn_runtime *rt, const char *path);
qn_future *qn_fs_write_file_new(qn_runtime *rt, const char *path, const char *data, size_t len);
/* Once ready: 0 or a uv error code; read_file's bytes in *data, *len. */
int qn_fs_whole_result(const qn_future *whole, const char **data, size_t *len);

/* ---- name resolution ---- */

/* getaddrinfo on libuv's thread pool; copies its arguments (hints: flags,
   family, socktype, protocol). Dropped in flight: uv_cancel, zombie until
   the callback. */
qn_future *qn_getaddrinfo_new(qn_runtime *rt, const char *node, const char *service,
                              const struct addrinfo *hints);
/* Once ready: 0 (*res: the list, owned by the future) or a uv error code. */
int qn_getaddrinfo_result(const qn_future *gai, const struct addrinfo **res);
/* host as a numeric IPv4 or IPv6 address, with port: 0, or UV_EINVAL. */
int qn_addr_numeric(const char *host, int port, struct sockaddr_storage *ss);
/* The address to bind a socket of socktype to: numeric, or host resolved
   now (a blocking getaddrinfo, as binding is done once): 0 or a uv error. */
int qn_addr_for_bind(qn_runtime *rt, const char *host, int port, int socktype,
                     struct sockaddr_storage *ss);

/* ---- streams (stream.c) ----

   A stream is an I/O object (see above) over a TCP connection, a pipe, a
   Unix socket or a terminal. Once started (a TCP stream when connected, a
   pipe at its first read) it reads into its own buffer (reading pauses
   while more than read_limit bytes wait there, or more than a waiting read
   needs) and a read consumes only what it returns, when it returns it: a
   read future only waits for the buffer to satisfy it. A write goes out at
   once when the stream takes it; the rest is copied into a request libuv
   owns until its callback. */

typedef struct qn_stream qn_stream;

enum {
  QN_STREAM_READ_LIMIT = 256 * 1024,   /* defaults of the read and write limits */
  QN_STREAM_WRITE_LIMIT = 256 * 1024
};

/* What a read returns: some bytes (n: at most, 0: no maximum), exactly n
   (fewer only at EOF), a line without or with its "\n", or all until EOF. */
typedef enum {
  QN_STREAM_SOME, QN_STREAM_EXACT, QN_STREAM_LINE, QN_STREAM_LINE_KEEP, QN_STREAM_ALL
} qn_stream_mode;

/* Closed by qn_stream_close (or qn_tcp_reset, or the runtime's end). */
int qn_stream_is_closed(const qn_stream *s);
int qn_stream_is_shut(const qn_stream *s);           /* shutdown started */
int qn_stream_readable(const qn_stream *s);          /* 0: a pipe opened write-only */
int qn_stream_writable(const qn_stream *s);
size_t qn_stream_buffered(const qn_stream *s);       /* read, not yet consumed */
size_t qn_stream_write_queued(const qn_stream *s);   /* queued, not yet written */
int qn_stream_readers(const qn_stream *s);           /* read futures alive */
int qn_stream_writers(const qn_stream *s);           /* writable futures alive */

/* What a read of `mode` returns now: 0 with the bytes to return in
   data[0..len) (consume `used` once they are copied), UV_EAGAIN (not yet:
   wait with a read future), UV_EOF, UV_ECANCELED (closed) or a read error.
   Nothing moves until qn_stream_consume. */
int qn_stream_peek(qn_stream *s, qn_stream_mode mode, size_t n, const char **data, size_t *len,
                   size_t *used);
void qn_stream_consume(qn_stream *s, size_t used);
/* Ready when qn_stream_peek would not say UV_EAGAIN; consumes nothing. */
qn_future *qn_stream_read_new(qn_stream *s, qn_stream_mode mode, size_t n);

/* Write all of data or nothing: 0 (written, or the rest queued), UV_EAGAIN
   (more than write_limit is queued: wait with a writable future), or an
   error (the first write error is reported by every later write). */
int qn_stream_write(qn_stream *s, const char *data, size_t len);
qn_future *qn_stream_writable_new(qn_stream *s);
/* Ready when everything queued is written and the write side is shut down
   (the request is sent at the first poll); status: 0 or a uv error code. */
qn_future *qn_stream_shutdown_new(qn_stream *s);
int qn_stream_shutdown_status(const qn_future *shutdown);

/* Close (idempotent): reading stops, waiting futures become ready, and the
   handle closes once what is queued is written (or at once on error). */
void qn_stream_close(qn_stream *s);
void qn_stream_release(qn_stream *s);

/* ---- TCP (tcp.c) ----

   Connections are streams (above). A server is an I/O object that accepts
   into a queue of streams that nobody has taken yet. */

typedef struct qn_tcp_server qn_tcp_server;

enum { QN_TCP_BACKLOG = 511 };

/* Options of a stream (a server gives them to the streams it accepts). */
typedef struct qn_tcp_opts {
  int nodelay;              /* 1: TCP_NODELAY */
  int keepalive;            /* 1: SO_KEEPALIVE, probes after keepalive_delay s */
  unsigned keepalive_delay;
  size_t read_limit;        /* 0: QN_STREAM_READ_LIMIT */
  size_t write_limit;       /* 0: QN_STREAM_WRITE_LIMIT */
} qn_tcp_opts;

enum { QN_TCP_REUSEADDR = 1, QN_TCP_REUSEPORT = 2, QN_TCP_IPV6ONLY = 4 };

/* Listen on host (numeric, or resolved at once) and port. */
int qn_tcp_listen(qn_runtime *rt, const char *host, int port, int backlog, unsigned flags,
                  const qn_tcp_opts *opts, qn_tcp_server **out);
int qn_tcp_server_sockname(const qn_tcp_server *srv, struct sockaddr_storage *ss);
int qn_tcp_server_is_closed(const qn_tcp_server *srv);
size_t qn_tcp_server_queued(const qn_tcp_server *srv);
/* Close (idempotent): queued streams are closed, waiting accepts become ready. */
void qn_tcp_server_close(qn_tcp_server *srv);
void qn_tcp_server_release(qn_tcp_server *srv);
/* 0 with *out (the caller owns it), UV_EAGAIN (nothing queued), UV_ECANCELED
   (closed) or an error libuv reported while accepting (reported once). */
int qn_tcp_try_accept(qn_tcp_server *srv, qn_stream **out);
/* Ready when qn_tcp_try_accept would not say UV_EAGAIN; takes nothing. */
qn_future *qn_tcp_accept_new(qn_tcp_server *srv);

/* Resolve host (unless numeric), then connect to each address in turn. */
qn_future *qn_tcp_connect_new(qn_runtime *rt, const char *host, int port,
                              const qn_tcp_opts *opts);
/* Once ready: 0 with *out (the caller owns it), or a uv error code. */
int qn_tcp_connect_take(qn_future *connect, qn_stream **out);

/* On a TCP stream (UV_EINVAL on another stream, UV_EBADF once closed). */
int qn_tcp_sockname(const qn_stream *s, struct sockaddr_storage *ss);
int qn_tcp_peername(const qn_stream *s, struct sockaddr_storage *ss);
int qn_tcp_set_nodelay(qn_stream *s, int on);
int qn_tcp_set_keepalive(qn_stream *s, int on, unsigned delay);
/* Close at once with a TCP RST, dropping what is queued (another stream
   just closes). */
void qn_tcp_reset(qn_stream *s);

/* ---- pipes (pipe.c) ----

   Streams (above) over a pipe, a Unix socket or a terminal. */

enum { QN_PIPE_READABLE = 1, QN_PIPE_WRITABLE = 2 };

typedef struct qn_pipe_opts {
  size_t read_limit;        /* 0: QN_STREAM_READ_LIMIT */
  size_t write_limit;       /* 0: QN_STREAM_WRITE_LIMIT */
  unsigned dir;             /* QN_PIPE_READABLE | QN_PIPE_WRITABLE (0: both), within
                               what the fd's access mode allows */
} qn_pipe_opts;

/* A stream on fd (non-blocking from now on), which the stream then owns and
   closes (unless it is 0, 1 or 2); on failure fd stays the caller's. */
int qn_pipe_open(qn_runtime *rt, int fd, const qn_pipe_opts *o, qn_stream **out);
/* A stream on fd 0, 1 or 2, made without putting that fd in the loop: a
   terminal or pipe is reopened (a description of its own), a socket dup()ed
   (its shared description is non-blocking until the stream closes). A
   regular file or character device (/dev/null): UV_ENOTSUP. At the
   runtime's end it first writes out, blocking, what is still queued. */
int qn_pipe_open_stdio(qn_runtime *rt, int fd, const qn_pipe_opts *o, qn_stream **out);

#endif
