/*
** Unix domain sockets: listening on a path, connecting, names and the
** peer's credentials. A connection is a stream (stream.c) over a uv_pipe_t,
** a server is tcp.c's (qn__server_open); this file makes the sockets.
**
** Names. A path is a file in the file system; "@name" (Linux) is the
** abstract name "\0name", which has no file and vanishes with its last
** socket. The address length given to bind and connect counts only the
** name's bytes, so an abstract name has no trailing NULs.
**
** A stale file. bind() fails with EADDRINUSE when the path exists, also
** when the process that made it died without removing it, which is the
** common case after a crash. Listening then tries to connect to it: refused
** (ECONNREFUSED) means nobody listens, and the file is removed and bind
** tried once more; anything else (connected, or a full backlog: EAGAIN)
** means a live server, and EADDRINUSE is the answer (the live server sees
** one connection that closes at once). Only a socket file is
** ever removed, never a regular file at a mistyped path. Two processes
** replacing the same stale file at once: one binds, the other gets
** EADDRINUSE.
**
** Connecting never waits: the kernel connects a Unix socket at once, or
** refuses (ECONNREFUSED, ENOENT), or, for a listener whose backlog is full,
** says EAGAIN (a blocking connect would wait there; we report it, as libuv
** does).
*/
#define _GNU_SOURCE                    /* struct ucred, SO_PEERCRED */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "internal.h"

/* The address of name in *a; its length in *len. 0, UV_EINVAL (empty) or
   UV_ENAMETOOLONG. */
int qn__unix_addr(const char *name, struct sockaddr_un *a, socklen_t *len) {
  size_t n = strlen(name);
  if (n == 0 || (name[0] == '@' && n == 1)) return UV_EINVAL;
  if (n > QN_UNIX_PATH_MAX) return UV_ENAMETOOLONG;
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  memcpy(a->sun_path, name, n);
  if (name[0] == '@') a->sun_path[0] = '\0';
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (name[0] == '@' ? 0 : 1));
  return 0;
}

/* A non-blocking, close-on-exec socket of type (SOCK_STREAM, SOCK_DGRAM),
   or -errno. */
static int new_socket_of(int type) {
  int fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  return fd < 0 ? -errno : fd;
}
static int new_socket(void) { return new_socket_of(SOCK_STREAM); }

static int connect_fd(int fd, const struct sockaddr_un *a, socklen_t len) {
  int r;
  do r = connect(fd, (const struct sockaddr *)a, len);
  while (r != 0 && errno == EINTR);
  return r == 0 ? 0 : -errno;
}

/* Whether a socket file at a (a path) has nobody listening on it (or, for
   SOCK_DGRAM, bound to it): a connection to it is refused. */
int qn__unix_is_stale(const struct sockaddr_un *a, socklen_t len, int type) {
  struct stat st;
  if (lstat(a->sun_path, &st) != 0 || !S_ISSOCK(st.st_mode)) return 0;
  int fd = new_socket_of(type);
  if (fd < 0) return 0;
  int r = connect_fd(fd, a, len);
  close(fd);
  return r == UV_ECONNREFUSED;
}

void qn__unix_unlink_if_same(const char *path, uint64_t dev, uint64_t ino) {
  struct stat st;
  if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && (uint64_t)st.st_dev == dev &&
      (uint64_t)st.st_ino == ino)
    unlink(path);
}

int qn_unix_listen(qn_runtime *rt, const char *path, int backlog, int mode,
                   const qn_tcp_opts *opts, qn_tcp_server **out) {
  *out = NULL;
  if (rt->closed) return UV_ECANCELED;
  struct sockaddr_un a;
  socklen_t len;
  int r = qn__unix_addr(path, &a, &len);
  if (r != 0) return r;
  int fd = new_socket();
  if (fd < 0) return fd;
  int abstract = path[0] == '@';
  r = bind(fd, (const struct sockaddr *)&a, len) == 0 ? 0 : -errno;
  if (r == UV_EADDRINUSE && !abstract && qn__unix_is_stale(&a, len, SOCK_STREAM) && unlink(path) == 0)
    r = bind(fd, (const struct sockaddr *)&a, len) == 0 ? 0 : -errno;
  int bound = r == 0 && !abstract;          /* the file is ours: remove it on failure */
  struct stat st = {0};
  if (r == 0 && !abstract && mode > 0 && chmod(path, (mode_t)mode) != 0) r = -errno;
  if (r == 0 && !abstract && lstat(path, &st) != 0) r = -errno;
  if (r != 0) {
    if (bound) unlink(path);
    close(fd);
    return r;
  }
  if ((r = qn__server_open(rt, UV_NAMED_PIPE, fd, backlog, opts, out)) != 0) {
    if (!abstract) qn__unix_unlink_if_same(path, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
    return r;
  }
  if (!abstract &&
      (r = qn__server_remove_at_close(*out, path, (uint64_t)st.st_dev, (uint64_t)st.st_ino)) != 0) {
    qn_tcp_server_release(*out);    /* ENOMEM: without the record the file would be left */
    *out = NULL;
    qn__unix_unlink_if_same(path, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
  }
  return r;
}

int qn_unix_connect(qn_runtime *rt, const char *path, const qn_tcp_opts *opts, qn_stream **out) {
  *out = NULL;
  if (rt->closed) return UV_ECANCELED;
  struct sockaddr_un a;
  socklen_t len;
  int r = qn__unix_addr(path, &a, &len);
  if (r != 0) return r;
  int fd = new_socket();
  if (fd < 0) return fd;
  if ((r = connect_fd(fd, &a, len)) != 0) {
    close(fd);
    return r;
  }
  qn_stream *s;
  r = qn__stream_new(rt, UV_NAMED_PIPE, opts ? opts->read_limit : 0, opts ? opts->write_limit : 0,
                     &s);
  if (r != 0) {
    close(fd);
    return r;
  }
  if ((r = uv_pipe_open(&s->h.pipe, fd)) != 0) {
    close(fd);
    qn_stream_release(s);
    return r;
  }
  qn__stream_start(s);
  *out = s;
  return 0;
}

int qn_unix_is_unix(const qn_stream *s) { return s->h.handle.type == UV_NAMED_PIPE; }

/* The text of a Unix socket address of len bytes (see qn_unix_sockname). */
static void name_text(const struct sockaddr_un *a, socklen_t len, char *name, size_t *n) {
  size_t off = offsetof(struct sockaddr_un, sun_path);
  size_t k = len > off ? (size_t)len - off : 0;
  if (k > sizeof a->sun_path) k = sizeof a->sun_path;
  if (k > 0 && a->sun_path[0] == '\0') {      /* abstract: every byte counts */
    name[0] = '@';
    memcpy(name + 1, a->sun_path + 1, k - 1);
    *n = k;
    return;
  }
  size_t m = strnlen(a->sun_path, k);
  memcpy(name, a->sun_path, m);
  *n = m;
}

static int fd_name(int fd, int peer, char *name, size_t *n) {
  struct sockaddr_un a;
  socklen_t len = sizeof a;
  memset(&a, 0, sizeof a);
  int r = peer ? getpeername(fd, (struct sockaddr *)&a, &len)
               : getsockname(fd, (struct sockaddr *)&a, &len);
  if (r != 0) return -errno;
  if (a.sun_family != AF_UNIX) return UV_EINVAL;
  name_text(&a, len, name, n);
  return 0;
}

static int stream_fd(const qn_stream *s, int *fd) {
  if (!qn_unix_is_unix(s)) return UV_EINVAL;
  if (qn_stream_is_closed(s)) return UV_EBADF;
  uv_os_fd_t f;
  int r = uv_fileno(&s->h.handle, &f);
  *fd = f;
  return r;
}

int qn_unix_sockname(const qn_stream *s, char *name, size_t *len) {
  int fd, r = stream_fd(s, &fd);
  return r != 0 ? r : fd_name(fd, 0, name, len);
}

int qn_unix_peername(const qn_stream *s, char *name, size_t *len) {
  int fd, r = stream_fd(s, &fd);
  return r != 0 ? r : fd_name(fd, 1, name, len);
}

int qn_unix_server_sockname(const qn_tcp_server *srv, char *name, size_t *len) {
  if (!qn_tcp_server_is_unix(srv)) return UV_EINVAL;
  int fd, r = qn__server_fd(srv, &fd);
  return r != 0 ? r : fd_name(fd, 0, name, len);
}

int qn_unix_peercred(const qn_stream *s, int64_t *pid, int64_t *uid, int64_t *gid) {
  int fd, r = stream_fd(s, &fd);
  if (r != 0) return r;
#ifdef SO_PEERCRED
  struct ucred c;
  socklen_t len = sizeof c;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &len) != 0) return -errno;
  *pid = c.pid;
  *uid = c.uid;
  *gid = c.gid;
  return 0;
#else
  (void)pid; (void)uid; (void)gid;
  return UV_ENOTSUP;
#endif
}
