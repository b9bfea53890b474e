/*
** Unix datagram sockets (AF_UNIX, SOCK_DGRAM). libuv has no handle for
** them (uv_udp_t is IP only, uv_pipe_t a stream), so the socket is ours
** and a uv_poll_t watches it; the rest is core/udp.c's design (the
** receive queue is the same code, core/dgram_queue.c):
**
** Receiving. Reading starts with the first receive and pauses while the
** queue holds `queue_max` datagrams (the kernel's socket buffer holds what
** comes next; for a Unix socket the sender then waits or gets EAGAIN:
** nothing is lost). On readability every datagram the socket has is read
** (recvmsg into one scratch buffer, copied out at its size) and handed to
** the first waiting receive future, else queued. One handed to a future
** that is dropped before it was taken goes back to the front: a dropped
** receive loses nothing.
**
** Sending. sendto at once; when the receiver's queue is full (EAGAIN) the
** send future tries again on a timer, 1 ms doubling to 50 ms: poll's
** writability says nothing about the receiver of an unconnected socket, so
** it cannot be waited for. A send future is ready the moment its datagram
** is sent, so one dropped while pending has sent nothing: a datagram goes
** out once or never.
**
** Names: a path (its file made by bind; removed at close if it is still
** ours, as a Unix listener's), "@name" (Linux's abstract names: no file),
** or unnamed (an unbound sender: the receiver sees "" and cannot answer).
** A stale file at the path (nobody bound to it: a datagram to it is
** refused) is replaced, as qn_unix_listen does; a live one is EADDRINUSE.
**
** Lifetime: the I/O object rules of quench.h. The poll handle's close
** close callback is the last callback; the descriptor is closed (and the
** file removed) by qn_udgram_close itself.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "internal.h"

enum { SCRATCH = 65536 };
#define RETRY_FIRST_NS 1000000ull      /* 1 ms */
#define RETRY_MAX_NS 50000000ull       /* 50 ms */

struct qn_udgram {
  uv_poll_t poll;
  int fd;
  qn_runtime *rt;
  qn__io io;
  char *scratch;
  qn__dgq queue;          /* received datagrams, receive futures (reading
                             pauses at queue.max) */
  uint8_t reading;
  char *path;             /* the file bind made, removed at close if still ours */
  uint64_t dev, ino;
};

typedef struct send_future {
  qn_future base;
  qn_udgram *u;
  qn_future *sleep;       /* the retry timer, while one is armed */
  uint64_t backoff;
  int status;
  uint8_t done, has_to;
  struct sockaddr_un to;
  socklen_t tolen;
  size_t len;
  char data[];
} send_future;

void qn_udgram_msg_free(qn_udgram_msg *d) {
  if (d->data) qn__free(d->rt, d->data);
  d->data = NULL;
}

static void udgram_free(qn__io *io) {
  qn_udgram *u = qn__container_of(io, qn_udgram, io);
  qn__dgq_free(&u->queue);
  qn__free(u->rt, u->scratch);
  qn__free(u->rt, u->path);
  qn__free(u->rt, u);
}

static void unref(qn_udgram *u) { qn__io_unref(&u->io); }

static void on_close(uv_handle_t *h) {
  qn_udgram *u = h->data;
  qn__io_closed(&u->io);
}

/* ---- names ---- */

/* The text of the address a (len bytes) in name (QN_UNIX_PATH_MAX + 2
   bytes): a path, "@" and an abstract name, or "" (unnamed). */
static size_t name_text(const struct sockaddr_un *a, socklen_t len, char *name) {
  size_t off = offsetof(struct sockaddr_un, sun_path);
  size_t k = len > off ? (size_t)len - off : 0;
  if (k > sizeof a->sun_path) k = sizeof a->sun_path;
  if (k > 0 && a->sun_path[0] == '\0') {
    name[0] = '@';
    memcpy(name + 1, a->sun_path + 1, k - 1);
    return k;
  }
  size_t m = strnlen(a->sun_path, k);
  memcpy(name, a->sun_path, m);
  return m;
}

/* ---- reading ---- */

static void pause_reading(qn_udgram *u) {
  if (!u->reading) return;
  uv_poll_stop(&u->poll);
  u->reading = 0;
}

/* Read one datagram: 1 (delivered or dropped for want of memory), 0 (none
   now), or after an error delivered as a message, 1 as well. */
static int read_one(qn_udgram *u) {
  struct sockaddr_un from;
  struct iovec iov = { u->scratch, SCRATCH };
  struct msghdr m;
  memset(&m, 0, sizeof m);
  memset(&from, 0, sizeof from);
  m.msg_name = &from;
  m.msg_namelen = sizeof from;
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  ssize_t n;
  do n = recvmsg(u->fd, &m, MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
  qn_udgram_msg d;
  memset(&d, 0, sizeof d);
  d.rt = u->rt;
  if (n < 0) {
    d.err = -errno;
  } else {
    d.len = (size_t)n;
    d.truncated = (m.msg_flags & MSG_TRUNC) != 0;
    d.data = qn__malloc(u->rt, d.len ? d.len : 1);
    if (d.data == NULL) return 1;             /* out of memory: as if it was dropped */
    memcpy(d.data, u->scratch, d.len);
    d.fromlen = name_text(&from, m.msg_namelen, d.from);
  }
  if (qn__dgq_deliver(&u->queue, &d) != 0) qn_udgram_msg_free(&d);
  return 1;
}

static void on_poll(uv_poll_t *h, int status, int events) {
  (void)events;
  qn_udgram *u = h->data;
  if (status < 0) {                           /* the descriptor failed: say so once */
    qn_udgram_msg d;
    memset(&d, 0, sizeof d);
    d.rt = u->rt;
    d.err = status;
    pause_reading(u);
    qn__dgq_deliver(&u->queue, &d);         /* no data: nothing to free if it fails */
    return;
  }
  while (u->reading && u->queue.len < u->queue.max && read_one(u)) {
  }
  if (u->queue.len >= u->queue.max) pause_reading(u);
}

static void start_reading(qn__dgq *q) {
  qn_udgram *u = qn__container_of(q, qn_udgram, queue);
  if (u->reading || u->io.closing || q->len >= q->max) return;
  if (uv_poll_start(&u->poll, UV_READABLE, on_poll) == 0) u->reading = 1;
}

static void msg_free(void *d) { qn_udgram_msg_free(d); }

/* ---- the socket ---- */

static void close_at_shutdown(qn__closer *c) {
  qn_udgram *u = qn__container_of(c, qn_udgram, io.closer);
  qn__io_unlinked(&u->io);
  qn_udgram_close(u);
}

/* Bind fd to name (a path or "@name"), replacing a stale socket file;
   on success a path's file is recorded in u for removal at close. */
static int bind_name(qn_udgram *u, const char *name) {
  struct sockaddr_un a;
  socklen_t len;
  int r = qn__unix_addr(name, &a, &len);
  if (r != 0) return r;
  int abstract = name[0] == '@';
  r = bind(u->fd, (const struct sockaddr *)&a, len) == 0 ? 0 : -errno;
  if (r == UV_EADDRINUSE && !abstract && qn__unix_is_stale(&a, len, SOCK_DGRAM) &&
      unlink(name) == 0)
    r = bind(u->fd, (const struct sockaddr *)&a, len) == 0 ? 0 : -errno;
  if (r != 0 || abstract) return r;
  struct stat st;
  size_t n = strlen(name);
  char *path = qn__malloc(u->rt, n + 1);
  if (path == NULL || lstat(name, &st) != 0) {
    r = path == NULL ? UV_ENOMEM : -errno;
    qn__free(u->rt, path);
    unlink(name);
    return r;
  }
  memcpy(path, name, n + 1);
  u->path = path;
  u->dev = (uint64_t)st.st_dev;
  u->ino = (uint64_t)st.st_ino;
  return 0;
}

int qn_udgram_open(qn_runtime *rt, const char *name, size_t queue_max, qn_udgram **out) {
  *out = NULL;
  if (rt->closed) return UV_ECANCELED;
  qn_udgram *u = qn__calloc(rt, 1, sizeof *u);
  if (u == NULL) return UV_ENOMEM;
  u->rt = rt;
  u->fd = -1;
  u->scratch = qn__malloc(rt, SCRATCH);
  if (u->scratch == NULL) {
    qn__free(rt, u);
    return UV_ENOMEM;
  }
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int r = -errno;
    qn__free(rt, u->scratch);
    qn__free(rt, u);
    return r;
  }
  int r = uv_poll_init_socket(&rt->loop, &u->poll, fd);
  if (r != 0) {
    close(fd);
    qn__free(rt, u->scratch);
    qn__free(rt, u);
    return r;
  }
  u->fd = fd;
  u->poll.data = u;
  qn__dgq_init(&u->queue, rt, &u->io, sizeof(qn_udgram_msg),
               queue_max ? queue_max : QN_UDP_QUEUE_DEFAULT, start_reading, msg_free);
  qn__io_init(&u->io, rt, close_at_shutdown, udgram_free);
  if (name != NULL && (r = bind_name(u, name)) != 0) {
    qn_udgram_release(u);
    return r;
  }
  *out = u;
  return 0;
}

int qn_udgram_bind(qn_udgram *u, const char *name) {
  if (qn_udgram_is_closed(u)) return UV_EBADF;
  return bind_name(u, name);
}

int qn_udgram_connect(qn_udgram *u, const char *name) {
  if (qn_udgram_is_closed(u)) return UV_EBADF;
  struct sockaddr_un a;
  socklen_t len;
  if (name == NULL) {                         /* dissolve the association */
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNSPEC;
    len = sizeof(sa_family_t);
  } else {
    int r = qn__unix_addr(name, &a, &len);
    if (r != 0) return r;
  }
  int r;
  do r = connect(u->fd, (const struct sockaddr *)&a, len);
  while (r != 0 && errno == EINTR);
  return r == 0 ? 0 : -errno;
}

int qn_udgram_name(const qn_udgram *u, int peer, char *name, size_t *len) {
  if (qn_udgram_is_closed(u)) return UV_EBADF;
  struct sockaddr_un a;
  socklen_t alen = sizeof a;
  memset(&a, 0, sizeof a);
  int r = peer ? getpeername(u->fd, (struct sockaddr *)&a, &alen)
               : getsockname(u->fd, (struct sockaddr *)&a, &alen);
  if (r != 0) return -errno;
  *len = name_text(&a, alen, name);
  return 0;
}

int qn_udgram_fileno(const qn_udgram *u) { return qn_udgram_is_closed(u) ? -1 : u->fd; }

int qn_udgram_is_closed(const qn_udgram *u) { return u->io.closing; }

size_t qn_udgram_queued(const qn_udgram *u) { return u->queue.len; }

void qn_udgram_close(qn_udgram *u) {
  if (!qn__io_close(&u->io)) return;
  u->reading = 0;
  uv_poll_stop(&u->poll);
  uv_close((uv_handle_t *)&u->poll, on_close);
  /* uv_close took the descriptor out of the loop's epoll set: it can be
     closed now, not in on_close, so that the name is free the moment
     close returns (a new socket may bind the same path at once) */
  close(u->fd);
  u->fd = -1;
  if (u->path) qn__unix_unlink_if_same(u->path, u->dev, u->ino);
  qn__wait_wake_all(&u->queue.receivers);
}

void qn_udgram_release(qn_udgram *u) {
  if (!qn__io_release(&u->io)) return;
  qn_udgram_close(u);
  unref(u);
}

/* ---- receiving ---- */

int qn_udgram_try_recv(qn_udgram *u, qn_udgram_msg *d) { return qn__dgq_try_recv(&u->queue, d); }

qn_future *qn_udgram_recv_new(qn_udgram *u) { return qn__dgq_recv_new(&u->queue); }

int qn_udgram_recv_take(qn_future *f, qn_udgram_msg *d) { return qn__dgq_recv_take(f, d); }

/* ---- sending ---- */

static int send_to(qn_udgram *u, const char *data, size_t len, const struct sockaddr_un *to,
                   socklen_t tolen) {
  ssize_t n;
  do n = to ? sendto(u->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL, (const struct sockaddr *)to,
                     tolen)
            : send(u->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n >= 0) return 0;
  return errno == EWOULDBLOCK ? UV_EAGAIN : -errno;
}

int qn_udgram_try_send(qn_udgram *u, const char *data, size_t len, const char *to) {
  if (qn_udgram_is_closed(u)) return UV_EBADF;
  struct sockaddr_un a;
  socklen_t alen = 0;
  if (to != NULL) {
    int r = qn__unix_addr(to, &a, &alen);
    if (r != 0) return r;
  }
  return send_to(u, data, len, to ? &a : NULL, alen);
}

static int send_poll(qn_future *fut, qn_waker *wk) {
  send_future *f = (send_future *)fut;
  if (f->done) return QN_READY;
  if (f->sleep != NULL) {
    if (qn_poll(f->sleep, wk) == QN_PENDING) return QN_PENDING;
    qn_drop(f->sleep);
    f->sleep = NULL;
  }
  qn_udgram *u = f->u;
  int r = qn_udgram_is_closed(u) ? UV_EBADF
        : send_to(u, f->data, f->len, f->has_to ? &f->to : NULL, f->tolen);
  if (r != UV_EAGAIN) {
    f->status = r;
    f->done = 1;
    return QN_READY;
  }
  f->backoff = f->backoff ? f->backoff * 2 : RETRY_FIRST_NS;
  if (f->backoff > RETRY_MAX_NS) f->backoff = RETRY_MAX_NS;
  f->sleep = qn_sleep_after_new(u->rt, f->backoff);
  if (f->sleep == NULL) {
    f->status = UV_ENOMEM;
    f->done = 1;
    return QN_READY;
  }
  if (qn_poll(f->sleep, wk) == QN_READY) {    /* due already: try again at the next poll */
    qn_drop(f->sleep);
    f->sleep = NULL;
    qn_wake(wk);
  }
  return QN_PENDING;
}

static void send_drop(qn_future *fut) {
  send_future *f = (send_future *)fut;
  qn_udgram *u = f->u;
  if (f->sleep) qn_drop(f->sleep);
  qn__free(u->rt, f);
  unref(u);
}

static const qn_future_vt send_vt = { send_poll, send_drop };

qn_future *qn_udgram_send_new(qn_udgram *u, const char *data, size_t len, const char *to) {
  struct sockaddr_un a;
  socklen_t alen = 0;
  if (to != NULL && qn__unix_addr(to, &a, &alen) != 0) return NULL;   /* checked by the caller */
  if (len > SIZE_MAX - sizeof(send_future)) return NULL;
  send_future *f = qn__calloc(u->rt, 1, sizeof *f + len);
  if (f == NULL) return NULL;
  f->base.vt = &send_vt;
  f->u = u;
  memcpy(f->data, data, len);
  f->len = len;
  if (to != NULL) {
    f->to = a;
    f->tolen = alen;
    f->has_to = 1;
  }
  qn__io_ref(&u->io);
  return &f->base;
}

int qn_udgram_send_status(const qn_future *f) { return ((const send_future *)f)->status; }
