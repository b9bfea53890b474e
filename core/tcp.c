/*
** TCP: connecting, servers, and what only a TCP stream has (socket names,
** options, reset). The stream itself is stream.c's.
**
** Accepting. The connection callback accepts into a queue of streams that
** nobody has taken (reading already). With queue_max of them queued it
** leaves the next connection to libuv, which then stops accepting (the
** kernel's backlog holds the rest) until a stream is taken.
**
** Lifetime (the I/O object rules of quench.h). A server is freed when
** `refs` (its embedder, each accept future) is zero and its handle is
** closed; while its handle is open it is on the runtime's closers. A
** connect future owns the stream it is connecting until it is taken.
**
** Servers serve Unix sockets too (unix.c, adopt.c): the handle is a TCP
** handle or a pipe, and the streams it accepts are of the same kind. A
** server that bound a Unix socket's path removes the file when it closes,
** if the file is still the one it made (path, dev, ino).
**
** Unix: listen makes its socket itself (for SO_REUSEPORT and a choice of
** SO_REUSEADDR); libuv error codes there are -errno. Listening, like making
** a stream, sets SIGPIPE to SIG_IGN unless the program handles it.
*/
#define _DEFAULT_SOURCE                /* glibc: SO_REUSEPORT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>
#include "internal.h"

struct qn_tcp_server {
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } h;
  qn_runtime *rt;
  char *path;               /* unix.c: the socket file to remove at close, or NULL */
  uint64_t dev, ino;        /* ...if it is still this one */
  qn__io io;                /* refs: the embedder, and each accept future */
  qn_tcp_opts opts;
  qn__list queue;           /* accepted streams nobody took */
  size_t nqueued, queue_max;
  qn__list acceptors;       /* waiting accept futures */
  int err;                  /* an accept error, reported once */
  uint8_t pending;          /* libuv holds a connection we left (queue full) */
};

static int is_tcp(const qn_stream *s) { return s->h.handle.type == UV_TCP; }

/* accepted: an accepted stream's TCP_NODELAY waits for its second write
   (qn__stream_nodelay_due): Nagle never holds a connection's first small
   write (nothing is unacknowledged before it), so a connection that writes
   once and closes (an HTTP `Connection: close` answer) saves the
   setsockopt, one system call in eight of such a request, as nginx sets
   tcp_nodelay only on a connection it keeps. */
static void apply_opts(qn_stream *s, const qn_tcp_opts *o, int accepted) {
  if (o == NULL) return;
  if (o->has_linger) qn_stream_set_linger(s, o->linger_ms);
  if (o->nodelay && accepted) s->nodelay_due = 1;
  else if (o->nodelay) uv_tcp_nodelay(&s->h.tcp, 1);
  if (o->keepalive) uv_tcp_keepalive(&s->h.tcp, 1, o->keepalive_delay ? o->keepalive_delay : 60);
}

static int stream_new(qn_runtime *rt, uv_handle_type type, const qn_tcp_opts *o,
                      qn_stream **out) {
  return qn__stream_new(rt, type, o ? o->read_limit : 0, o ? o->write_limit : 0, out);
}

/* ---- what only a TCP stream has ---- */

void qn_tcp_reset(qn_stream *s) {
  qn__stream_mark_closed(s);
  qn__stream_reset(s);
}

static int name_of(const qn_stream *s, struct sockaddr_storage *ss, int peer) {
  if (!is_tcp(s)) return UV_EINVAL;
  if (qn_stream_is_closed(s)) return UV_EBADF;
  int len = (int)sizeof *ss;
  memset(ss, 0, sizeof *ss);
  return peer ? uv_tcp_getpeername(&s->h.tcp, (struct sockaddr *)ss, &len)
              : uv_tcp_getsockname(&s->h.tcp, (struct sockaddr *)ss, &len);
}

int qn_tcp_sockname(const qn_stream *s, struct sockaddr_storage *ss) { return name_of(s, ss, 0); }
int qn_tcp_peername(const qn_stream *s, struct sockaddr_storage *ss) { return name_of(s, ss, 1); }

int qn_tcp_set_nodelay(qn_stream *s, int on) {
  if (!is_tcp(s)) return UV_EINVAL;
  if (qn_stream_is_closed(s)) return UV_EBADF;
  s->nodelay_due = 0;                         /* the embedder's word wins */
  return uv_tcp_nodelay(&s->h.tcp, on);
}

int qn_tcp_set_keepalive(qn_stream *s, int on, unsigned delay) {
  if (!is_tcp(s)) return UV_EINVAL;
  if (qn_stream_is_closed(s)) return UV_EBADF;
  return uv_tcp_keepalive(&s->h.tcp, on, delay ? delay : 60);
}

/* ---- connecting ---- */

typedef struct connect_future connect_future;

typedef struct connect_req {
  uv_connect_t req;
  qn_runtime *rt;
  connect_future *f;        /* NULL once the future was dropped */
} connect_req;

enum { C_NEW, C_RESOLVING, C_CONNECTING, C_DONE };

struct connect_future {
  qn_future base;
  qn_runtime *rt;
  qn_tcp_opts opts;
  qn_future *dns;           /* NULL for a numeric host */
  const struct addrinfo *next;   /* the next address to try (owned by dns) */
  struct sockaddr_storage numeric;
  connect_req *req;         /* in flight */
  qn_stream *s;                /* being connected, then connected until taken */
  qn_waker *waker;
  int status;
  uint8_t state;
};

static void on_connect(uv_connect_t *req, int status);

static int try_connect(connect_future *f, const struct sockaddr *addr) {
  qn_stream *s;
  int r = stream_new(f->rt, UV_TCP, &f->opts, &s);
  if (r != 0) return r;
  connect_req *q = qn__malloc(f->rt, sizeof *q);
  if (q == NULL) {
    qn_stream_release(s);
    return UV_ENOMEM;
  }
  q->rt = f->rt;
  q->f = f;
  r = f->opts.has_local ? uv_tcp_bind(&s->h.tcp, (const struct sockaddr *)&f->opts.local, 0) : 0;
  if (r == 0) r = uv_tcp_connect(&q->req, &s->h.tcp, addr, on_connect);
  if (r != 0) {
    qn__free(f->rt, q);
    qn_stream_release(s);
    return r;
  }
  f->s = s;
  f->req = q;
  return 0;
}

/* Try the remaining addresses; `err` is the last failure. */
static void try_next(connect_future *f, int err) {
  while (f->next != NULL) {
    const struct addrinfo *a = f->next;
    f->next = a->ai_next;
    if (a->ai_family != AF_INET && a->ai_family != AF_INET6) continue;
    if ((err = try_connect(f, a->ai_addr)) == 0) return;
  }
  f->status = err;
  f->state = C_DONE;
}

static void on_connect(uv_connect_t *req, int status) {
  connect_req *q = qn__container_of(req, connect_req, req);
  connect_future *f = q->f;
  qn__free(q->rt, q);
  if (f == NULL) return;                      /* dropped: its stream was released */
  f->req = NULL;
  if (status == 0) {
    qn_stream *s = f->s;
    apply_opts(s, &f->opts, 0);
    qn__stream_start(s);
    f->status = 0;
    f->state = C_DONE;
  } else {
    qn_stream_release(f->s);
    f->s = NULL;
    try_next(f, status);
  }
  if (f->state == C_DONE && f->waker) qn_wake(f->waker);
}

static int connect_poll(qn_future *fut, qn_waker *wk) {
  connect_future *f = (connect_future *)fut;
  f->waker = wk;
  if (f->state == C_NEW) {
    if (f->dns != NULL) {
      f->state = C_RESOLVING;
    } else {
      f->state = C_CONNECTING;
      int r = try_connect(f, (const struct sockaddr *)&f->numeric);
      if (r != 0) {
        f->status = r;
        f->state = C_DONE;
      }
    }
  }
  if (f->state == C_RESOLVING) {
    if (qn_poll(f->dns, wk) == QN_PENDING) return QN_PENDING;
    const struct addrinfo *res = NULL;
    int r = qn_getaddrinfo_result(f->dns, &res);
    f->state = C_CONNECTING;
    if (r != 0) {
      f->status = r;
      f->state = C_DONE;
    } else {
      f->next = res;
      try_next(f, UV_EAI_NONAME);
    }
  }
  return f->state == C_DONE ? QN_READY : QN_PENDING;
}

static void connect_drop(qn_future *fut) {
  connect_future *f = (connect_future *)fut;
  if (f->req != NULL) f->req->f = NULL;      /* its callback (UV_ECANCELED) frees it */
  if (f->s != NULL) qn_stream_release(f->s);    /* closing cancels the connect */
  if (f->dns != NULL) qn_drop(f->dns);
  qn__free(f->rt, f);
}

static const qn_future_vt connect_vt = { connect_poll, connect_drop };

/* A numeric address in *ss, or nonzero. */
qn_future *qn_tcp_connect_new(qn_runtime *rt, const char *host, int port,
                              const qn_tcp_opts *opts) {
  connect_future *f = qn__calloc(rt, 1, sizeof *f);
  if (f == NULL) return NULL;
  f->base.vt = &connect_vt;
  f->rt = rt;
  if (opts) f->opts = *opts;
  if (qn_addr_numeric(host, port, &f->numeric) != 0) {
    char service[16];
    struct addrinfo hints;
    qn__addr_query(port, SOCK_STREAM, AI_ADDRCONFIG, service, &hints);
    if ((f->dns = qn_getaddrinfo_new(rt, host, service, &hints)) == NULL) {
      qn__free(rt, f);
      return NULL;
    }
  }
  return &f->base;
}

int qn_tcp_connect_take(qn_future *fut, qn_stream **out) {
  connect_future *f = (connect_future *)fut;
  *out = NULL;
  if (f->state != C_DONE) return UV_EINVAL;
  if (f->status != 0 || f->s == NULL) return f->status ? f->status : UV_EINVAL;
  *out = f->s;
  f->s = NULL;
  return 0;
}

/* ---- servers ---- */

static void server_free(qn__io *io) {
  qn_tcp_server *srv = qn__container_of(io, qn_tcp_server, io);
  qn__free(srv->rt, srv->path);
  qn__free(srv->rt, srv);
}

static void server_unref(qn_tcp_server *srv) { qn__io_unref(&srv->io); }

static void server_on_close(uv_handle_t *h) {
  qn_tcp_server *srv = h->data;
  qn__io_closed(&srv->io);
}

static void server_close_handle(qn_tcp_server *srv) {
  if (srv->path != NULL) qn__unix_unlink_if_same(srv->path, srv->dev, srv->ino);
  /* closed already by the shutdown's walk: the embedder still holds it
     (refs >= 1), so marking it closed cannot free it under us */
  if (uv_is_closing(&srv->h.handle)) srv->io.closed = 1;
  else uv_close(&srv->h.handle, server_on_close);
}

void qn_tcp_server_close(qn_tcp_server *srv) {
  if (!qn__io_close(&srv->io)) return;
  while (!qn__list_empty(&srv->queue)) {
    qn_stream *s = qn__container_of(srv->queue.next, qn_stream, qnode);
    qn__list_remove(&s->qnode);
    srv->nqueued--;
    qn_stream_release(s);
  }
  server_close_handle(srv);
  qn__wait_wake_all(&srv->acceptors);
}

static void server_close_at_shutdown(qn__closer *c) {
  qn_tcp_server *srv = qn__container_of(c, qn_tcp_server, io.closer);
  qn__io_unlinked(&srv->io);
  qn_tcp_server_close(srv);
}

void qn_tcp_server_release(qn_tcp_server *srv) {
  if (!qn__io_release(&srv->io)) return;
  qn_tcp_server_close(srv);
  server_unref(srv);
}

int qn_tcp_server_is_closed(const qn_tcp_server *srv) {
  return srv->io.closing || uv_is_closing(&srv->h.handle);
}

size_t qn_tcp_server_queued(const qn_tcp_server *srv) { return srv->nqueued; }

int qn_tcp_server_sockname(const qn_tcp_server *srv, struct sockaddr_storage *ss) {
  if (qn_tcp_server_is_closed(srv)) return UV_EBADF;
  int len = (int)sizeof *ss;
  memset(ss, 0, sizeof *ss);
  if (srv->h.handle.type == UV_TCP)
    return uv_tcp_getsockname(&srv->h.tcp, (struct sockaddr *)ss, &len);
  int fd, r = qn__server_fd(srv, &fd);
  socklen_t sl = sizeof *ss;
  if (r == 0 && getsockname(fd, (struct sockaddr *)ss, &sl) != 0) r = -errno;
  return r;
}

int qn__server_fd(const qn_tcp_server *srv, int *fd) {
  uv_os_fd_t f = -1;
  if (qn_tcp_server_is_closed(srv) || uv_fileno(&srv->h.handle, &f) != 0) return UV_EBADF;
  *fd = f;
  return 0;
}

int qn_tcp_server_is_unix(const qn_tcp_server *srv) { return srv->h.handle.type != UV_TCP; }

int qn_tcp_server_fileno(const qn_tcp_server *srv) {
  int fd;
  return qn__server_fd(srv, &fd) == 0 ? fd : -1;
}

/* Take the connection libuv holds into the queue. */
static void accept_one(qn_tcp_server *srv) {
  srv->pending = 0;
  qn_stream *s;
  int r = stream_new(srv->rt, srv->h.handle.type, &srv->opts, &s);
  if (r != 0) {
    srv->pending = 1;                         /* retried at the next take */
  } else if ((r = uv_accept(&srv->h.stream, &s->h.stream)) != 0) {
    qn_stream_release(s);
  } else {
    apply_opts(s, &srv->opts, srv->h.handle.type == UV_TCP);
    qn__stream_start(s);
    qn__list_push(&srv->queue, &s->qnode);
    srv->nqueued++;
  }
  if (r != 0) srv->err = r;
  qn__wait_wake_all(&srv->acceptors);
}

static void on_connection(uv_stream_t *h, int status) {
  qn_tcp_server *srv = h->data;
  if (status < 0) {
    srv->err = status;
    qn__wait_wake_all(&srv->acceptors);
  } else if (srv->nqueued >= srv->queue_max) {
    srv->pending = 1;                         /* libuv stops accepting until we take it */
  } else {
    accept_one(srv);
  }
}

int qn_tcp_try_accept(qn_tcp_server *srv, qn_stream **out) {
  *out = NULL;
  if (srv->io.closing) return UV_ECANCELED;
  if (!qn__list_empty(&srv->queue)) {
    qn_stream *s = qn__container_of(srv->queue.next, qn_stream, qnode);
    qn__list_remove(&s->qnode);
    srv->nqueued--;
    if (srv->pending) accept_one(srv);
    *out = s;
    return 0;
  }
  if (srv->pending) {
    accept_one(srv);
    if (!qn__list_empty(&srv->queue)) return qn_tcp_try_accept(srv, out);
  }
  if (srv->err != 0) {
    int r = srv->err;
    srv->err = 0;
    return r;
  }
  return UV_EAGAIN;
}

typedef struct accept_future {
  qn_future base;
  qn_tcp_server *srv;
  qn__wait w;
} accept_future;

static int accept_poll(qn_future *f, qn_waker *wk) {
  accept_future *a = (accept_future *)f;
  qn_tcp_server *srv = a->srv;
  if (srv->io.closing || srv->nqueued > 0 || srv->err != 0 || srv->pending) {
    qn__wait_unlink(&a->w);
    return QN_READY;
  }
  qn__wait_link(&srv->acceptors, &a->w, wk);
  return QN_PENDING;
}

static void accept_drop(qn_future *f) {
  accept_future *a = (accept_future *)f;
  qn_tcp_server *srv = a->srv;
  qn__wait_unlink(&a->w);
  qn__free(srv->rt, a);
  server_unref(srv);
}

static const qn_future_vt accept_vt = { accept_poll, accept_drop };

qn_future *qn_tcp_accept_new(qn_tcp_server *srv) {
  accept_future *a = qn__calloc(srv->rt, 1, sizeof *a);
  if (a == NULL) return NULL;
  a->base.vt = &accept_vt;
  a->srv = srv;
  qn__wait_init(&a->w);
  qn__io_ref(&srv->io);
  return &a->base;
}

/* A bound socket for ss, with the options asked for: an fd, or -errno. */
static int bound_socket(const struct sockaddr_storage *ss, unsigned flags) {
  int fd = socket(ss->ss_family, SOCK_STREAM, 0);
  if (fd < 0) return -errno;
  int on = 1, r = 0;
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  if ((flags & QN_TCP_REUSEADDR) && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0)
    r = -errno;
#ifdef SO_REUSEPORT
  if (r == 0 && (flags & QN_TCP_REUSEPORT) &&
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0)
    r = -errno;
#else
  if (r == 0 && (flags & QN_TCP_REUSEPORT)) r = UV_ENOTSUP;
#endif
  if (r == 0 && ss->ss_family == AF_INET6) {
    int v6only = (flags & QN_TCP_IPV6ONLY) != 0;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) != 0) r = -errno;
  }
  socklen_t len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                             : sizeof(struct sockaddr_in);
  if (r == 0 && bind(fd, (const struct sockaddr *)ss, len) != 0) r = -errno;
  if (r != 0) {
    close(fd);
    return r;
  }
  return fd;
}

/* A server listening on fd (bound, perhaps listening already), which it owns
   from now on, also on failure. type: UV_TCP or UV_NAMED_PIPE. */
int qn__server_open(qn_runtime *rt, uv_handle_type type, int fd, int backlog,
                    const qn_tcp_opts *opts, qn_tcp_server **out) {
  *out = NULL;
  if (rt->closed) {
    close(fd);
    return UV_ECANCELED;
  }
  qn_tcp_server *srv = qn__calloc(rt, 1, sizeof *srv);
  if (srv == NULL) {
    close(fd);
    return UV_ENOMEM;
  }
  int r = type == UV_TCP ? uv_tcp_init(&rt->loop, &srv->h.tcp)
                         : uv_pipe_init(&rt->loop, &srv->h.pipe, 0);
  if (r != 0) {
    close(fd);
    qn__free(rt, srv);
    return r;
  }
  srv->h.handle.data = srv;
  srv->rt = rt;
  if (opts) srv->opts = *opts;
  if (backlog <= 0) backlog = QN_TCP_BACKLOG;
  srv->queue_max = (size_t)backlog;
  qn__list_init(&srv->queue);
  qn__list_init(&srv->acceptors);
  qn__io_init(&srv->io, rt, server_close_at_shutdown, server_free);
  r = type == UV_TCP ? uv_tcp_open(&srv->h.tcp, fd) : uv_pipe_open(&srv->h.pipe, fd);
  if (r != 0) close(fd);
  if (r == 0) r = uv_listen(&srv->h.stream, backlog, on_connection);
  if (r != 0) {
    qn_tcp_server_release(srv);
    return r;
  }
  qn__ignore_sigpipe(rt);
  *out = srv;
  return 0;
}

int qn__server_remove_at_close(qn_tcp_server *srv, const char *path, uint64_t dev, uint64_t ino) {
  size_t n = strlen(path) + 1;
  if ((srv->path = qn__malloc(srv->rt, n)) == NULL) return UV_ENOMEM;
  memcpy(srv->path, path, n);
  srv->dev = dev;
  srv->ino = ino;
  return 0;
}

int qn_tcp_listen(qn_runtime *rt, const char *host, int port, int backlog, unsigned flags,
                  const qn_tcp_opts *opts, qn_tcp_server **out) {
  *out = NULL;
  if (rt->closed) return UV_ECANCELED;
  struct sockaddr_storage ss;
  int r = qn_addr_for_bind(rt, host, port, SOCK_STREAM, &ss);
  if (r != 0) return r;
  int fd = bound_socket(&ss, flags);
  if (fd < 0) return fd;
  return qn__server_open(rt, UV_TCP, fd, backlog, opts, out);
}
