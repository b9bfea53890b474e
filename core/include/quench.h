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
/* One byte of the channel that belongs to its embedder (its own flags,
   kept here so that its object needs no word of its own): qn_chan_init
   zeroes it, nothing else in the core reads or writes it. */
unsigned char *qn_chan_user(qn_chan *ch);
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
   only update state and wake. The rule is coded once, in io.c (qn__io in
   internal.h), and every I/O object (UDP sockets, processes, streams,
   servers, files) embeds it. */

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
int qn_udp_fileno(const qn_udp *u);   /* still the socket's; -1 once closed */
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
/* The default linger bound of a close with writes queued (ms): see qn_stream_close. */
#define QN_STREAM_LINGER_MS 30000u

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
size_t qn_stream_buffered(const qn_stream *s);
/* The stream's descriptor (a socket or pipe), or -1 once closed or for a
   handle without one. Still quench's: for getsockopt and the like. */
int qn_stream_fileno(const qn_stream *s);       /* read, not yet consumed */
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
/* Free the read buffer if nothing is buffered (an idle connection then
   holds no buffer; the next read allocates one again). */
void qn_stream_shrink(qn_stream *s);
/* Ready when qn_stream_peek would not say UV_EAGAIN; consumes nothing. */
qn_future *qn_stream_read_new(qn_stream *s, qn_stream_mode mode, size_t n);
/* The same read, ready also at `deadline` (qn_now's clock; QN_NEVER: no
   deadline) if it has not been satisfied by then: one future, no select.
   When it is ready, qn_stream_peek says which came first (the bytes win a
   tie): UV_EAGAIN means the deadline. */
qn_future *qn_stream_read_deadline_new(qn_stream *s, qn_stream_mode mode, size_t n,
                                       uint64_t deadline);
/* For a ready qn_stream_read_deadline_new future: 1 if its deadline came,
   QN_ENOMEM if its timer could not be armed (it was ready at once), else 0. */
int qn_stream_read_expired(const qn_future *f);

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
   handle closes once what is queued is written (or at once on error). It
   lingers so only while the peer takes data: once nothing queued has gone
   out for the stream's linger (QN_STREAM_LINGER_MS unless set; 0: do not
   wait) the queue is dropped and the handle closed, with a TCP RST. The
   bound is on real time, whatever the runtime's clock. */
void qn_stream_close(qn_stream *s);
void qn_stream_set_linger(qn_stream *s, uint64_t ms);
uint64_t qn_stream_linger(const qn_stream *s);
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
  int has_linger;           /* 1: linger_ms is the stream's linger (qn_stream_close) */
  uint64_t linger_ms;
  int has_local;            /* 1: a connect binds to local first (LuaSocket's
                               connect with a local address; port 0: any) */
  struct sockaddr_storage local;
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

/* ---- TLS (tls.c) ----

   TLS over a connected TCP stream, on OpenSSL 3 with a BIO over the
   stream's own buffers: ciphertext read from the socket goes into the TLS
   engine, and records are decrypted on the loop side (in the read
   callback, and when a read consumes plaintext) into the stream's buffer,
   which the stream's read futures wait on as for plain TCP; so a dropped
   read loses nothing. A write encrypts all its bytes into records at once
   and queues them as a plain write does (all or nothing). After every
   read, output the engine made (TLS 1.3 tickets, KeyUpdate, alerts) is
   written; renegotiation is refused.
   The handshake starts at the first poll of a read, writable or handshake
   future (or a peek) and then runs on the loop side. Dropping any of those
   futures while it runs closes the stream: a handshake is one op, never
   resumed. OpenSSL allocates with its own allocator (not qn_alloc_fn). */

typedef struct qn_tls_ctx qn_tls_ctx;

/* Codes of TLS failures, beside libuv's (qn_tls_err_name names them). */
enum {
  QN_TLS_EHANDSHAKE = -7001,    /* the handshake failed (alerts, no shared cipher...) */
  QN_TLS_EVERIFY = -7002,       /* the peer's certificate was refused (other reasons) */
  QN_TLS_EUNKNOWN_CA = -7003,   /* no trusted issuer */
  QN_TLS_EEXPIRED = -7004,      /* expired, or not valid yet */
  QN_TLS_EHOSTNAME = -7005,     /* the certificate is for another name or address */
  QN_TLS_ESELF_SIGNED = -7006,  /* a self-signed certificate, not trusted */
  QN_TLS_ENOT_TLS = -7007,      /* the peer does not speak TLS (plain TCP, garbage) */
  QN_TLS_EVERSION = -7008,      /* no protocol version in common */
  QN_TLS_EPROTOCOL = -7009,     /* a protocol error after the handshake */
  QN_TLS_ETRUNCATED = -7010,    /* the connection ended without close_notify */
  QN_TLS_ECONFIG = -7011        /* a certificate, key or CA file could not be used */
};

typedef struct qn_tls_config {
  int server;
  int verify;               /* client: 1 (chain and name) or 0; server: 1 asks for and
                               requires a client certificate */
  const char *cafile, *capath;          /* NULL both: the system trust store */
  const char *certificate, *key;        /* PEM file paths, or PEM text ("-----BEGIN") */
  const char *password;                 /* of an encrypted key */
  const unsigned char *alpn;            /* protocols in wire format (length-prefixed) */
  size_t alpn_len;
  const char *ciphers;                  /* TLS 1.2 cipher list */
  const char *ciphersuites;             /* TLS 1.3 suites */
  int min_version, max_version;         /* TLS1_2_VERSION... (0: 1.2 and the newest) */
  int ignore_unexpected_eof;            /* an EOF without close_notify is a plain EOF */
} qn_tls_config;

/* A context (client or server): 0, or QN_TLS_ECONFIG with the reason in
   err. Contexts are reference counted (each stream holds one). */
int qn_tls_ctx_new(const qn_tls_config *c, qn_tls_ctx **out, char *err, size_t errlen);
void qn_tls_ctx_ref(qn_tls_ctx *ctx);
void qn_tls_ctx_unref(qn_tls_ctx *ctx);
int qn_tls_ctx_is_server(const qn_tls_ctx *ctx);
/* Server: serve for_name's certificate to clients whose SNI is name
   (exact, case-insensitive, or "*.example.com" for one label; exact names
   win, then the longest wildcard; otherwise ctx's own certificate).
   for_name (a server context without names of its own) is referenced.
   0, UV_EINVAL, UV_EEXIST (name listed already) or UV_ENOMEM. */
int qn_tls_ctx_add_sni(qn_tls_ctx *ctx, const char *name, qn_tls_ctx *for_name);

/* Make a connected TCP stream a TLS one, client or server as ctx is.
   servername (client): SNI and the name verified (an IP address is
   verified as one, and sent no SNI); session (client, may be NULL): an
   SSL_SESSION to resume. Bytes already buffered are taken as ciphertext.
   0, UV_EINVAL (not TCP, already TLS), UV_EBADF (closed) or UV_ENOMEM. */
int qn_tls_attach(qn_stream *s, qn_tls_ctx *ctx, const char *servername, void *session);
int qn_stream_is_tls(const qn_stream *s);
/* 1 once the handshake succeeded, 0 before, or its failure code. */
int qn_tls_handshake_state(const qn_stream *s);
/* Ready when the handshake is done or failed (or the stream closed). */
qn_future *qn_tls_handshake_new(qn_stream *s);
int qn_tls_handshake_status(const qn_future *hs);     /* 0 or an error code */

/* Starting TLS as one future (tls_start.c; its top says what a drop at each
   point leaves). qn_tls_connect_new: connect to host and port as
   qn_tcp_connect_new does, then attach a client over ctx (servername and
   session as qn_tls_attach's) and complete the handshake.
   qn_tls_start_new: attach to the connected TCP stream s (the caller's)
   at once, then complete the handshake; qn_stream_is_tls(s) says at once
   whether the attach was made. A failure at any step closes the stream.
   Both take their own references to ctx and session. */
qn_future *qn_tls_connect_new(qn_runtime *rt, const char *host, int port,
                              const qn_tcp_opts *opts, qn_tls_ctx *ctx,
                              const char *servername, void *session);
qn_future *qn_tls_start_new(qn_stream *s, qn_tls_ctx *ctx, const char *servername,
                            void *session);
/* Once ready: 0 or an error code (a TLS failure's message:
   qn_tls_error_message of the stream). */
int qn_tls_start_status(const qn_future *start);
/* The stream (NULL before a connect connected, and once taken); the
   future's until taken (a connect's) or the caller's (starttls). */
qn_stream *qn_tls_start_stream(const qn_future *start);
/* A connect ready with 0: its stream, now the caller's; else NULL. */
qn_stream *qn_tls_connect_take(qn_future *start);
/* The text of the stream's last TLS failure ("" if none). */
const char *qn_tls_error_message(const qn_stream *s);
/* "ETLS_UNKNOWN_CA", ..., or NULL for a code that is not a TLS one. */
const char *qn_tls_err_name(int code);
/* The SSL object (NULL: not TLS, or closed), for what the embedder reads. */
void *qn_tls_ssl(const qn_stream *s);

/* ---- Unix domain sockets (unix.c) ----

   Stream sockets on a path, or (Linux) in the abstract namespace: a name
   starting with "@" ("@name" is the abstract "\0name"; no file). Streams
   are the streams above, servers the TCP servers' type: every
   qn_tcp_server_* function and qn_tcp_accept_new serve them, the streams
   accepted are Unix streams. qn_tcp_opts' nodelay and keepalive are
   ignored. */

enum { QN_UNIX_PATH_MAX = 107 };   /* bytes of a name (sun_path less its NUL) */

/* Listen on path. A socket file there that nobody listens on (connecting
   to it is refused: a stale file left by a process that died) is replaced;
   a live one gives UV_EADDRINUSE, as does any file that is not a socket.
   mode > 0: the file's permissions (chmod, before anyone can connect).
   The server removes the file when it closes, if it is still its own. */
int qn_unix_listen(qn_runtime *rt, const char *path, int backlog, int mode,
                   const qn_tcp_opts *opts, qn_tcp_server **out);
/* Connect at once (a Unix socket never waits to connect; a listener whose
   backlog is full: UV_EAGAIN). 0 with *out (the caller owns it) or an error. */
int qn_unix_connect(qn_runtime *rt, const char *path, const qn_tcp_opts *opts, qn_stream **out);
/* Whether a stream or server is a Unix socket's. */
int qn_unix_is_unix(const qn_stream *s);
int qn_tcp_server_is_unix(const qn_tcp_server *srv);
/* The listening descriptor (still the server's), or -1 once closed. */
int qn_tcp_server_fileno(const qn_tcp_server *srv);
/* A Unix socket's name: name[0..*len) is its path, "@..." for an abstract
   name, empty for an unnamed socket (a connecting client's). name has
   QN_UNIX_PATH_MAX + 2 bytes. UV_EINVAL on another stream, UV_EBADF closed. */
int qn_unix_sockname(const qn_stream *s, char *name, size_t *len);
int qn_unix_peername(const qn_stream *s, char *name, size_t *len);
int qn_unix_server_sockname(const qn_tcp_server *srv, char *name, size_t *len);
/* The peer's credentials at connect time (Linux SO_PEERCRED); UV_ENOTSUP
   where the system has none. */
int qn_unix_peercred(const qn_stream *s, int64_t *pid, int64_t *uid, int64_t *gid);

/* ---- Unix datagram sockets (unix_dgram.c) ----
   AF_UNIX SOCK_DGRAM over a uv_poll: the UDP socket's queue and its
   receive and send futures, with names (a path, "@name", or "" for an
   unnamed sender) for addresses. */
typedef struct qn_udgram qn_udgram;
typedef struct qn_udgram_msg {
  char *data;             /* the taker frees it: qn_udgram_msg_free */
  qn_runtime *rt;
  size_t len;
  int err;                /* a receive error (data NULL) */
  int truncated;          /* longer than 64 KiB: the rest was lost */
  char from[QN_UNIX_PATH_MAX + 2];
  size_t fromlen;
} qn_udgram_msg;
/* A socket, bound to name when not NULL (a stale socket file there is
   replaced; the file is removed at close if still ours). */
int qn_udgram_open(qn_runtime *rt, const char *name, size_t queue_max, qn_udgram **out);
int qn_udgram_bind(qn_udgram *u, const char *name);
int qn_udgram_connect(qn_udgram *u, const char *name);   /* NULL: dissolve */
/* The socket's (peer 0) or its peer's name into name (QN_UNIX_PATH_MAX + 2). */
int qn_udgram_name(const qn_udgram *u, int peer, char *name, size_t *len);
int qn_udgram_fileno(const qn_udgram *u);
int qn_udgram_is_closed(const qn_udgram *u);
size_t qn_udgram_queued(const qn_udgram *u);
void qn_udgram_close(qn_udgram *u);
void qn_udgram_release(qn_udgram *u);
int qn_udgram_try_recv(qn_udgram *u, qn_udgram_msg *d);    /* 0 or UV_EAGAIN, UV_EBADF */
qn_future *qn_udgram_recv_new(qn_udgram *u);
int qn_udgram_recv_take(qn_future *recv, qn_udgram_msg *d); /* 0, or UV_EBADF: closed */
void qn_udgram_msg_free(qn_udgram_msg *d);
/* to: a name, or NULL for the connected peer. 0, UV_EAGAIN (the receiver
   is full: wait with a send future), or an error. */
int qn_udgram_try_send(qn_udgram *u, const char *data, size_t len, const char *to);
/* Ready once sent (the data copied; tried again every 1 to 50 ms while the
   receiver is full) or failed; dropped while pending, it has sent nothing. */
qn_future *qn_udgram_send_new(qn_udgram *u, const char *data, size_t len, const char *to);
int qn_udgram_send_status(const qn_future *send);

/* ---- adopting a descriptor (adopt.c) ----

   A socket made by someone else (inherited from a parent, passed by systemd
   socket activation) as a stream or a server. */

enum { QN_ADOPT_TCP = 1, QN_ADOPT_UNIX = 2, QN_ADOPT_SERVER = 4 };

/* fd as a quench object: a server if it listens (*srv), else a connected
   stream (*s). *kind: QN_ADOPT_TCP or QN_ADOPT_UNIX, | QN_ADOPT_SERVER.
   want: 0, QN_ADOPT_TCP or QN_ADOPT_UNIX (another family: UV_EINVAL). On
   success quench owns fd (non-blocking, close-on-exec from now on); on
   failure it stays the caller's. Not a stream socket: UV_ENOTSOCK (not a
   socket) or UV_EPROTOTYPE; a socket neither listening nor connected:
   UV_ENOTCONN; a descriptor a handle of this runtime already has: UV_EBUSY. */
int qn_adopt(qn_runtime *rt, int fd, int want, const qn_tcp_opts *opts, int *kind,
             qn_stream **s, qn_tcp_server **srv);
/* systemd's socket activation (sd_listen_fds): the number of descriptors
   passed from 3 on, 0 if none or they are another process's (LISTEN_PID),
   or UV_EINVAL on a malformed LISTEN_FDS. Each is made close-on-exec. With
   unset, LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES are removed from the
   environment (a child must not take them for its own). */
int qn_listen_fds(int unset);

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

/* ---- HTTP/1.x messages (http.c) ----

   The request head parser and chunked decoder (picohttpparser, from
   Debian's libh2o) with RFC 9112's framing rules, and two futures over a
   stream. Nothing is copied: a head is offsets into the parsed buffer. */

enum {
  QN_HTTP_FIELDS_MAX = 1024       /* the most header fields a head may have */
};

/* Why a message cannot be taken (the status to answer): negative, and
   apart from libuv's error codes, which share results with them. */
enum {
  QN_HTTP_E_PARTIAL = -9001,      /* not all there yet (at the end: truncated) */
  QN_HTTP_E_BAD = -9002,          /* 400 */
  QN_HTTP_E_URI_TOO_LONG = -9003, /* 414: the request line is over its limit */
  QN_HTTP_E_HEAD_TOO_LARGE = -9004,  /* 431: the head is over its limit */
  QN_HTTP_E_TOO_MANY_FIELDS = -9005, /* 431 */
  QN_HTTP_E_NOT_IMPLEMENTED = -9006  /* 501: a transfer coding other than chunked */
};
static inline int qn_http_is_error(int r) { return r <= -9001 && r >= -9006; }

/* What a head says about its message. */
enum {
  QN_HTTP_CHUNKED = 1, QN_HTTP_CLOSE = 2, QN_HTTP_KEEP_ALIVE = 4,
  QN_HTTP_EXPECT_CONTINUE = 8, QN_HTTP_UPGRADE = 16
};

typedef struct qn_http_field {
  uint32_t name_off, name_len, value_off, value_len;
} qn_http_field;

typedef struct qn_http_head {
  size_t len;                     /* bytes of the head, its empty line included */
  uint32_t method_off, method_len, target_off, target_len;
  int minor;                      /* HTTP/1.<minor> */
  int64_t content_length;         /* -1: none */
  unsigned flags;                 /* QN_HTTP_CHUNKED ... */
  size_t nfields;
} qn_http_head;

/* Parse the request head at the start of buf[0..len) into h and fields
   (room for max_fields): 0, QN_HTTP_E_PARTIAL, or the error to answer. */
int qn_http_parse_request(const char *buf, size_t len, qn_http_head *h, qn_http_field *fields,
                          size_t max_fields);
/* The trailer section after a chunked body's last chunk (offsets into buf):
   0 with *nfields and *used (its bytes), QN_HTTP_E_PARTIAL or an error. */
int qn_http_parse_trailers(const char *buf, size_t len, qn_http_field *fields,
                           size_t max_fields, size_t *nfields, size_t *used);
/* Where a head ends, scanning from `from` (what an earlier call saw):
   0 with *end, QN_HTTP_E_PARTIAL, URI_TOO_LONG or HEAD_TOO_LARGE. */
int qn_http_head_scan(const char *buf, size_t len, size_t from, size_t max_line,
                      size_t max_head, size_t *end);

/* A chunked body decoder: decode buf[0..*len) in place; 0 at the end of the
   body (*len decoded bytes; the *left input bytes after the last chunk, the
   trailers and what follows, moved to buf[*len..]: of the input, *len_in -
   *left bytes were the body's), QN_HTTP_E_PARTIAL (*len decoded bytes, all
   input taken) or QN_HTTP_E_BAD. */
typedef union qn_http_chunked { size_t align; char bytes[64]; } qn_http_chunked;
void qn_http_chunked_init(qn_http_chunked *d);
int qn_http_chunked_decode(qn_http_chunked *d, char *buf, size_t *len, size_t *left);

/* Ready when the stream holds a whole head (scan it again with
   qn_http_head_scan), a limit is passed, the stream ended, or the deadline
   (qn_now's scale; 0: none) passed: its result is 0, a QN_HTTP_E_*
   (PARTIAL: the stream ended inside a head) or a uv error (UV_EOF: ended
   before a byte; UV_ETIMEDOUT: the deadline). Consumes nothing. */
qn_future *qn_http_head_new(qn_stream *s, size_t max_line, size_t max_head, uint64_t deadline);
int qn_http_head_result(const qn_future *head);
/* Once it found a whole head (result 0): the head's length in bytes, up to
   its blank line, which a scan of the same buffered bytes would find (the
   future consumes nothing, so they are still there); 0 otherwise. */
size_t qn_http_head_end(const qn_future *head);
/* Ready when the peer has gone (EOF or a read error), whatever is still
   buffered; consumes nothing. Past `cap` buffered bytes it stops watching
   (stays pending) rather than buffer a flood. */
qn_future *qn_http_gone_new(qn_stream *s, size_t cap);
/* Turn a head or gone future of these two (ready or not) into a head
   watch with these limits and deadline, or into a gone watch with this
   cap: a connection's one watch, switched between requests and while one
   is handled, without an allocation. */
void qn_http_watch_head(qn_future *f, size_t max_line, size_t max_head, uint64_t deadline);
void qn_http_watch_gone(qn_future *f, size_t cap);

/* ---- HTTP client transfers (http_client.c): libcurl on the runtime's loop ----
   One libcurl multi handle per runtime, made at the first transfer and
   cleaned up (every transfer stopped, every socket and timer closed) by
   qn_runtime_shutdown. A transfer's easy handle is set up by the embedder
   (qn_http_xfer_easy: a CURL *) but for the callbacks and private pointer,
   which are the core's. Events are bits: the final response head is in,
   the upload wants bytes (qn_http_xfer_feed), body bytes are buffered,
   the transfer ended (qn_http_xfer_result). */
typedef struct qn_http_xfer qn_http_xfer;
enum { QN_HTTPX_HEAD = 1, QN_HTTPX_NEED = 2, QN_HTTPX_DATA = 4, QN_HTTPX_DONE = 8 };
/* A new transfer (not started), or NULL when out of memory. */
qn_http_xfer *qn_http_xfer_new(qn_runtime *rt);
void *qn_http_xfer_easy(qn_http_xfer *x);
/* The transfer owns `slist` (a struct curl_slist *) from now on. */
void qn_http_xfer_own_slist(qn_http_xfer *x, void *slist);
/* Upload from qn_http_xfer_feed rather than a fixed body. */
void qn_http_xfer_use_feed(qn_http_xfer *x);
/* Follow redirects (for telling a redirect's head from the final one). */
void qn_http_xfer_set_follow(qn_http_xfer *x, int follow);
/* Body bytes buffered before the transfer pauses (backpressure). */
void qn_http_xfer_set_high_water(qn_http_xfer *x, size_t n);
/* Add it to the runtime's multi handle: 0, QN_ENOMEM, QN_ECLOSED or QN_EINVAL. */
int qn_http_xfer_start(qn_http_xfer *x);
unsigned qn_http_xfer_events(const qn_http_xfer *x);
/* Ready when any of `events` holds (or the transfer was stopped). One
   wait at a time: qn_http_xfer_waited says whether one is alive. */
qn_future *qn_http_xfer_wait_new(qn_http_xfer *x, unsigned events);
int qn_http_xfer_waited(const qn_http_xfer *x);
/* The raw header lines of the final response (after QN_HTTPX_HEAD). */
const char *qn_http_xfer_head(const qn_http_xfer *x, size_t *len);
/* The buffered body bytes; consuming them may resume a paused transfer. */
const char *qn_http_xfer_peek(const qn_http_xfer *x, size_t *len);
void qn_http_xfer_consume(qn_http_xfer *x, size_t n);
/* Bytes for the upload; len 0 ends it. 0 or QN_ENOMEM. */
int qn_http_xfer_feed(qn_http_xfer *x, const char *data, size_t len);
/* After QN_HTTPX_DONE: libcurl's CURLcode (0: complete) and its message,
   or -1 for a transfer stopped by qn_http_xfer_stop or the runtime's end. */
int qn_http_xfer_result(const qn_http_xfer *x, const char **msg);
/* Stop it now if it runs: it leaves the multi handle and its connection
   is closed, not reused; nothing is delivered afterwards. */
void qn_http_xfer_stop(qn_http_xfer *x);
/* Stop it and free it. */
void qn_http_xfer_free(qn_http_xfer *x);

#endif
