/* What the core's files share. Nothing here is public. */
#ifndef QUENCH_INTERNAL_H
#define QUENCH_INTERNAL_H

#include "quench.h"

/* Intrusive circular doubly linked list (as libuv's queue.h). */
typedef struct qn__list {
  struct qn__list *next, *prev;
} qn__list;

static inline void qn__list_init(qn__list *h) { h->next = h->prev = h; }
static inline int qn__list_empty(const qn__list *h) { return h->next == h; }
static inline void qn__list_push(qn__list *h, qn__list *n) {
  n->prev = h->prev; n->next = h;
  h->prev->next = n; h->prev = n;
}
static inline void qn__list_remove(qn__list *n) {
  n->prev->next = n->next; n->next->prev = n->prev;
  n->next = n->prev = n;
}
/* tcp.c, stream.c: the largest first write of an accepted stream sent
   before its deferred TCP_NODELAY is set: one segment on any path (536,
   the smallest MSS IPv4 allows), which Nagle never holds; longer ones set
   it first. */
#define QN__NODELAY_FIRST 536

#define qn__container_of(ptr, type, field) \
  ((type *)((char *)(ptr) - offsetof(type, field)))

/* A waiter in a FIFO wait list: embedded in a future. */
typedef struct qn__wait {
  qn__list node;
  qn_waker *waker;
  int linked;
} qn__wait;

static inline void qn__wait_init(qn__wait *w) {
  qn__list_init(&w->node);
  w->waker = NULL;
  w->linked = 0;
}
/* Join the list if not in it yet; in any case remember the newest waker. */
static inline void qn__wait_link(qn__list *l, qn__wait *w, qn_waker *wk) {
  w->waker = wk;
  if (w->linked) return;
  qn__list_push(l, &w->node);
  w->linked = 1;
}
static inline void qn__wait_unlink(qn__wait *w) {
  if (!w->linked) return;
  qn__list_remove(&w->node);
  w->linked = 0;
}
static inline qn__wait *qn__wait_first(qn__list *l) {
  return qn__list_empty(l) ? NULL : (qn__wait *)((char *)l->next - offsetof(qn__wait, node));
}
static inline void qn__wait_wake_all(qn__list *l) {
  qn__wait *w;
  while ((w = qn__wait_first(l)) != NULL) {
    qn__wait_unlink(w);
    qn_wake(w->waker);
  }
}

/* The timer room (timer.c): the runtime's entries in a min-heap ordered by
   (deadline, arming order), and the one libuv timer that makes the loop
   return for the earliest. An entry lives inside whatever waits on it (a
   sleep future today; anything with a waker can be one): the room reads
   and writes only the entry, never what holds it. An entry is
     idle   index == QN__TIMER_IDLE, fired == 0: not in the heap;
     armed  in the heap (qn__timer_start), its waker set by its owner;
     fired  taken out by qn__timers_fire at its deadline, fired == 1, its
            waker woken once.
   qn__timer_stop takes an armed entry out (and does nothing otherwise), so
   an owner stops its entry on drop whatever state it is in. */
enum { QN__TIMER_IDLE = UINT32_MAX };

typedef struct qn__timer {
  uint64_t deadline;
  uint64_t seq;         /* equal deadlines fire in arming order */
  qn_waker *waker;      /* whom firing wakes: set by the owner at each poll */
  uint32_t index;       /* position in the heap, QN__TIMER_IDLE when not armed */
  uint8_t fired;
} qn__timer;

typedef struct qn__timer_heap {
  qn__timer **items;
  uint32_t len, cap;
  uint64_t next_seq;
} qn__timer_heap;

void qn__timer_init(qn__timer *t, uint64_t deadline);
/* Arm t (idle) for t->deadline; QN_ENOMEM if the heap cannot grow. */
int qn__timer_start(qn_runtime *rt, qn__timer *t);
void qn__timer_stop(qn_runtime *rt, qn__timer *t);
/* The earliest armed deadline, QN_NEVER if none. */
uint64_t qn__timers_next(const qn_runtime *rt);
/* Fire every entry due at the current time; returns how many fired. */
size_t qn__timers_fire(qn_runtime *rt);
/* Set the libuv timer for the earliest deadline (stop it if none). */
void qn__timers_wake_loop(qn_runtime *rt);
/* Free the heap's array (no entry may be armed). */
void qn__timers_free(qn_runtime *rt);

/* Memory (alloc.c). Every block of the core is allocated and freed
   through these, with the runtime whose allocator it comes from: the one
   the object belongs to, or for a future the one it was made in. rt NULL
   means the default allocator, uncounted (a channel buffer grown outside
   any runtime). qn__realloc leaves p as it was when it fails; qn__free of
   a runtime's last block after qn_runtime_free frees the runtime too. */
void *qn__malloc(qn_runtime *rt, size_t n);
void *qn__calloc(qn_runtime *rt, size_t n, size_t size);
void *qn__realloc(qn_runtime *rt, void *p, size_t n);
void qn__free(qn_runtime *rt, void *p);
/* The allocator of a runtime made without one: realloc and free. */
void *qn__default_alloc(void *ud, void *p, size_t n);
/* Give the runtime's own block back to its allocator (its last act). */
void qn__release_runtime(qn_runtime *rt);

/* Small blocks that come and go on every await (futures): freed blocks of
   up to QN__SMALL_MAX bytes are kept per size class (8 bytes apart: a
   56-byte future stays a 56-byte block, which glibc serves from a 64-byte
   chunk, not 80), up to QN__SMALL_KEEP each, and reused without calling
   the allocator. They count as allocated
   only while in use (stats.allocs counts allocator calls, so a reused
   block is not an allocation there); the cache is emptied by
   qn_runtime_free. The size given to qn__small_free must be the one
   given to qn__small_alloc. */
enum { QN__SMALL_MAX = 128, QN__SMALL_CLASSES = QN__SMALL_MAX / 8, QN__SMALL_KEEP = 256 };
typedef struct qn__small_cache {
  void *head[QN__SMALL_CLASSES];        /* free blocks, linked through their first word */
  unsigned count[QN__SMALL_CLASSES];
} qn__small_cache;
void *qn__small_alloc(qn_runtime *rt, size_t n);
void qn__small_free(qn_runtime *rt, void *p, size_t n);
/* Give the cached small blocks back to the allocator (qn_runtime_free). */
void qn__small_flush(qn_runtime *rt);
/* Streams' read buffers of the first size (stream.c) that streams gave
   back (closed, or idle and shrunk), kept for the next stream that reads:
   a server's connection takes one per request it reads, and a 64 KiB
   block costs the allocator far more than a small one (about 900
   instructions a request for a keep-alive HTTP connection). At most 64
   (4 MiB, what 64 connections reading at once held; a block freed to the
   allocator would mostly stay in the process too). Not live while kept;
   emptied by qn_runtime_free. */
enum { QN__RBUF_KEEP = 64 };
void qn__stream_bufs_flush(qn_runtime *rt);

/* An object of a core module that owns libuv handles and must close them
   with its own close callback (which frees it) when the runtime shuts down.
   Embed it, register it while the handles are open, remove it when closed. */
typedef struct qn__closer {
  qn__list node;        /* rt->closers */
  void (*close)(struct qn__closer *c);
} qn__closer;

void qn__closer_add(qn_runtime *rt, qn__closer *c);
void qn__closer_remove(qn__closer *c);

/* The I/O object lifecycle of quench.h ("I/O objects"), written once
   (io.c), as libuv writes uv_handle_t's once: UDP sockets, processes,
   streams, servers and files embed a qn__io. Its counts and states:
     refs       the embedder (1 until release) and each future on the
                object; qn__io_ref / qn__io_unref.
     closing    no new operation starts, and the object's resources are
                being let go (qn__io_close sets it, once); it is off the
                runtime's closers from then on.
     closed     the resources are gone (libuv's close callbacks ran, or the
                fd was closed): qn__io_closed.
     released   the embedder let go (qn__io_release, once).
     registered on rt->closers, so qn_runtime_shutdown closes it through
                the closer's function (which the object gives).
   The object is freed (its `free` function) as soon as refs is 0 and it is
   closed, by whichever of qn__io_unref and qn__io_closed comes last. */
typedef struct qn__io {
  qn__closer closer;
  void (*free)(struct qn__io *io);
  int refs;
  uint8_t closing, closed, released, registered;
} qn__io;

/* refs 1 (the embedder), open, on rt's closers. */
void qn__io_init(qn__io *io, qn_runtime *rt, void (*at_shutdown)(qn__closer *c),
                 void (*free_fn)(qn__io *io));
static inline void qn__io_ref(qn__io *io) { io->refs++; }
void qn__io_unref(qn__io *io);
/* Mark closing and leave the closers: 1 the first time, 0 after. */
int qn__io_close(qn__io *io);
void qn__io_closed(qn__io *io);
/* Mark released: 1 the first time, 0 after. The caller closes the object,
   then drops the embedder's reference with qn__io_unref. */
int qn__io_release(qn__io *io);
/* The runtime's shutdown took it off the closers (call from at_shutdown). */
static inline void qn__io_unlinked(qn__io *io) { io->registered = 0; }

/* The receive side of a datagram socket (dgram_queue.c): received
   datagrams (the owner's structs, `size` bytes each) in a ring, and the
   receive futures waiting, FIFO. The owner reads while len < max and
   start_reading says so; closing is io->closing. */
typedef struct qn__dgq {
  qn_runtime *rt;
  qn__io *io;             /* the owner's: each receive future holds a ref */
  char *ring;
  size_t size, cap, head, len, max;
  qn__list receivers;
  void (*start_reading)(struct qn__dgq *q);   /* resume reading if paused */
  void (*msg_free)(void *msg);
} qn__dgq;

void qn__dgq_init(qn__dgq *q, qn_runtime *rt, qn__io *io, size_t size, size_t max,
                  void (*start_reading)(qn__dgq *q), void (*msg_free)(void *msg));
void qn__dgq_free(qn__dgq *q);              /* the queued datagrams and the ring */
/* To the first waiting receive, else queued: 0, or UV_ENOMEM (msg is
   still the caller's). */
int qn__dgq_deliver(qn__dgq *q, const void *msg);
int qn__dgq_try_recv(qn__dgq *q, void *out);         /* 0, UV_EAGAIN, UV_EBADF */
qn_future *qn__dgq_recv_new(qn__dgq *q);
int qn__dgq_recv_take(qn_future *recv, void *out);   /* 0, or UV_EBADF: closed */

/* A stream (stream.c): the handle is one of the union's, made by tcp.c
   or pipe.c. The fields are stream.c's but for the few that the file
   which made the stream sets (marked). */
struct qn_stream {
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
    uv_tty_t tty;
  } h;
  qn_runtime *rt;
  qn__io io;                /* refs: the embedder, and each future; closing: the
                               handle is closing (a lingering close keeps the
                               stream on the closers until then) */
  qn__list qnode;           /* tcp.c: in a server's queue until taken */
  char *buf;
  size_t off, len, cap;
  size_t read_limit, write_limit;
  size_t need;              /* what the waiting reads need buffered */
  size_t nwrites;           /* write requests in flight */
  uint64_t linger_ms;       /* a lingering close resets after this long without progress */
  struct linger_timer *linger;   /* while lingering with a bound */
  qn__list readers;         /* waiting read futures */
  qn__list writers;         /* waiting writable futures */
  qn__list wq;              /* write requests in flight, oldest first */
  int nreaders, nwriters;   /* futures alive */
  struct qn__tls *tls;      /* tls.c: TLS state, or NULL (plain) */
  int read_err;             /* 0, UV_EOF or a read error */
  int write_err;
  int restore_fd, restore_flags;   /* pipe.c: a shared description's flags, set back at close */
  uint8_t readable, writable;      /* pipe.c: the directions the embedder may use */
  uint8_t flush_at_end;     /* pipe.c: a standard stream, written out at the runtime's end */
  uint8_t started;          /* reading may run (connected; or a pipe's first read) */
  uint8_t reading, lingering, shut;
  uint8_t nodelay_due;      /* tcp.c: an accepted stream's TCP_NODELAY, set at its second
                               write (or a first one past QN__NODELAY_FIRST) */
  uint8_t wrote;            /* a write was made */
  uint8_t closing;          /* marked closed: no new operation; the handle may
                               still linger to send what is queued */
};

/* A stream with its handle initialised (type UV_TCP or UV_NAMED_PIPE), on
   the closers; its embedder's reference is the caller's (qn_stream_release). */
int qn__stream_new(qn_runtime *rt, uv_handle_type type, size_t read_limit, size_t write_limit,
                   qn_stream **out);
/* A reference held by a future of another file (http.c): the stream is
   freed only once every reference is gone and its handle is closed
   (qn__stream_unref, below, lets it go). */
void qn__stream_ref(qn_stream *s);
/* Reading may start (it pauses and resumes by itself from now on). */
void qn__stream_start(qn_stream *s);
/* Closed for the embedder: reading stops, every waiting future is ready. */
void qn__stream_mark_closed(qn_stream *s);
/* Close the handle at once, dropping what is queued: with a TCP RST for a
   TCP stream (the peer must not take a cut stream for a whole one). */
void qn__stream_reset(qn_stream *s);
/* Take the handle off the closers for closing, once: 1 if the caller must
   now close it with qn__stream_on_close as its callback. */
int qn__stream_begin_close(qn_stream *s);
void qn__stream_on_close(uv_handle_t *h);
/* For tls.c, which filters a stream's bytes: write bytes to the socket
   (as qn_stream_write does, without its checks); make room for `want`
   more bytes in the plaintext buffer; the read limit now; stop reading;
   wake the readers the buffer satisfies. */
int qn__stream_raw_write(qn_stream *s, const char *data, size_t len);
int qn__stream_raw_write_owned(qn_stream *s, char *buf, size_t cap, size_t len, int *taken);
int qn__stream_reserve(qn_stream *s, size_t want);
size_t qn__stream_read_limit(const qn_stream *s);
void qn__stream_stop_reading(qn_stream *s);
void qn__stream_wake_readers(qn_stream *s);
void qn__stream_unref(qn_stream *s);       /* a future on it is gone */

/* tls.c, called by stream.c where a TLS stream differs from a plain one
   (s->tls != NULL): the buffer libuv reads ciphertext into, and what it
   read (n as on_read's); whether raw reading may run; start the handshake
   if it has not started (any read, writable or handshake future does);
   1 once the handshake is over (done or failed); decrypt what plaintext
   room allows (after a consume); encrypt and queue a write; a future on
   the stream dropped; close_notify before a shutdown (0 or an error);
   best-effort close_notify at close; free the TLS state. */
void qn__tls_alloc(qn_stream *s, uv_buf_t *b);
void qn__tls_on_read(qn_stream *s, ssize_t n);
int qn__tls_can_read(const qn_stream *s);
void qn__tls_kick(qn_stream *s);
int qn__tls_handshake_over(qn_stream *s);
void qn__tls_pump(qn_stream *s);
int qn__tls_write(qn_stream *s, const char *data, size_t len);
void qn__tls_dropped(qn_stream *s);
int qn__tls_shutdown(qn_stream *s);
void qn__tls_close(qn_stream *s);
void qn__tls_free(qn_stream *s);
/* A written output buffer (qn__stream_raw_write_owned) back from libuv:
   kept for the next records while writes are queued, else freed. */
void qn__tls_recycle(qn_stream *s, char *buf, size_t cap);

/* SIGPIPE to SIG_IGN unless the program handles it: looked at once per
   runtime (the first stream or server), not at every accepted stream,
   where the two sigaction calls were a tenth of a short connection's
   system calls. */
void qn__ignore_sigpipe(qn_runtime *rt);

/* tcp.c: a server (TCP or Unix, by type) listening on fd, which it owns
   from now on, also on failure. */
int qn__server_open(qn_runtime *rt, uv_handle_type type, int fd, int backlog,
                    const qn_tcp_opts *opts, qn_tcp_server **out);
/* The server's descriptor: 0, or UV_EBADF once closed. */
int qn__server_fd(const qn_tcp_server *srv, int *fd);
/* The server removes the file at path when it closes, if still (dev, ino). */
int qn__server_remove_at_close(qn_tcp_server *srv, const char *path, uint64_t dev, uint64_t ino);
/* unix.c: remove path if it is still the socket file (dev, ino). */
void qn__unix_unlink_if_same(const char *path, uint64_t dev, uint64_t ino);
/* unix.c, for unix_dgram.c too: the address of a name (a path, or "@name":
   abstract) and its length (0, UV_EINVAL, UV_ENAMETOOLONG); whether a
   socket file at a path is stale (a connection of `type` is refused). */
struct sockaddr_un;
int qn__unix_addr(const char *name, struct sockaddr_un *a, socklen_t *len);
int qn__unix_is_stale(const struct sockaddr_un *a, socklen_t len, int type);

/* dns.c: the service string and hints of a getaddrinfo for host:port
   (any family), shared by binding (synchronous) and connect (async). */
void qn__addr_query(int port, int socktype, int flags, char service[16],
                    struct addrinfo *hints);

struct qn__join_future;

/* An embedder holds one of these per task (a Lua task handle holds it), so
   its bytes count (docs/performance.md, W7): 80 bytes, the id and the flags
   in one word, the joiners behind one pointer. */
struct qn_task {
  qn_future *fut;
  qn_runtime *rt;
  qn_waker waker;
  qn__list node;        /* rt->tasks while not done, then rt->done until finalised */
  qn__list runq;        /* rt->runq while queued */
  struct qn__join_future *joiners;   /* join futures waiting for the end (join.c) */
  /* 2^48 ids a runtime: years of spawning at millions a second */
  uint64_t id : 48;
  uint64_t state : 2;   /* qn_task_state */
  uint64_t outcome : 2; /* qn_task_outcome, meaningful when done */
  uint64_t queued : 1, cancel : 1, abort : 1, dropping : 1;
};

struct qn_runtime {
  uv_loop_t loop;
  uv_timer_t timer;     /* the one libuv timer: armed for the earliest deadline */
  uint64_t wake_at;     /* when (qn_now) it is armed to go off, while active */
  qn__timer_heap timers;
  qn__list tasks;       /* tasks not done, in spawn order */
  qn__list done;        /* done tasks whose memory is still held */
  qn__list runq;
  qn__list signals;     /* signal watchers (signal.c) */
  qn__list closers;     /* qn__closer: closed first at shutdown */
  qn_task *current;
  qn_clock clock;
  uint64_t start;       /* uv_hrtime at creation (real clock) */
  uint64_t vnow;        /* virtual and manual clocks */
  uint64_t rng;
  uint64_t next_id;
  unsigned budget;      /* polls between two I/O turns */
  int closed;
  int freed;            /* qn_runtime_free ran: the last qn__free frees the runtime */
  qn_alloc_fn alloc;
  void *alloc_ud;
  qn_stats stats;       /* stats.allocs and stats.live_blocks: kept by qn__malloc & co */
  qn__small_cache small;
  int small_off;        /* qn_runtime_cache_small(rt, 0) */
  void *rbufs[QN__RBUF_KEEP];  /* stream.c: kept read buffers (qn__stream_bufs_flush) */
  unsigned nrbufs;
  struct qn__http_client *http_client;   /* http_client.c: libcurl's multi, made on demand */
  int sigpipe_checked;  /* qn__ignore_sigpipe ran */
};

void qn__enqueue(qn_task *t);
void qn__wake_joiners(qn_task *t);
void qn__poll_task(qn_task *t);
void qn__abort_for_shutdown(qn_task *t);

#endif
