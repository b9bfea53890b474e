/*
** Pipes: streams (stream.c) over a uv_pipe_t on a pipe, a Unix socket (a
** child's stdio) or a terminal. A pipe starts reading at its first read, and
** may be one-way (by its fd's access mode, or as asked).
**
** Standard streams. qn_pipe_open_stdio never puts fd 0, 1 or 2 itself in
** the loop: a terminal is reopened by name and a pipe through /proc (a new
** open file description, whose non-blocking mode touches nobody else); a
** socket, or a pipe that cannot be reopened, is dup()ed, and then the open
** file description it shares with fd 0-2 (and with whoever else holds it)
** is non-blocking while the stream is open: its flags come back at close.
** A regular file or a character device such as /dev/null cannot be watched
** by epoll: UV_ENOTSUP. At the runtime's end a standard stream first writes
** out, blocking, what libuv has not written yet (as exit() flushes stdout).
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include "internal.h"

int qn_pipe_open(qn_runtime *rt, int fd, const qn_pipe_opts *o, qn_stream **out) {
  *out = NULL;
  qn_stream *s;
  int r = qn__stream_new(rt, UV_NAMED_PIPE, o ? o->read_limit : 0, o ? o->write_limit : 0, &s);
  if (r != 0) return r;
  int mode = fcntl(fd, F_GETFL);
  r = mode == -1 ? -errno : uv_pipe_open(&s->h.pipe, fd);
  if (r != 0) {                 /* the handle is closed without the fd, still the caller's */
    qn_stream_release(s);
    return r;
  }
  unsigned dir = o && o->dir ? o->dir : QN_PIPE_READABLE | QN_PIPE_WRITABLE;
  s->readable = (mode & O_ACCMODE) != O_WRONLY && (dir & QN_PIPE_READABLE);
  s->writable = (mode & O_ACCMODE) != O_RDONLY && (dir & QN_PIPE_WRITABLE);
  *out = s;
  return 0;
}

/* A new open file description for fd (a terminal or a pipe), or -1. */
static int reopen(int fd, int type, int mode) {
  char path[256];
  if (type == UV_TTY) {
    if (ttyname_r(fd, path, sizeof path) != 0) return -1;
  } else {
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  int flags = (mode & O_ACCMODE) | O_NOCTTY | O_CLOEXEC | O_NONBLOCK;
  int r;
  do r = open(path, flags);
  while (r == -1 && errno == EINTR);
  return r;
}

int qn_pipe_open_stdio(qn_runtime *rt, int fd, const qn_pipe_opts *o, qn_stream **out) {
  *out = NULL;
  uv_handle_type type = uv_guess_handle(fd);
  if (type == UV_FILE) return UV_ENOTSUP;
  if (type != UV_TTY && type != UV_NAMED_PIPE && type != UV_TCP) return UV_EBADF;
  int mode = fcntl(fd, F_GETFL);
  if (mode == -1) return -errno;
  int shared = 0, own = type == UV_TCP ? -1 : reopen(fd, type, mode);
  if (own < 0) {
    own = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (own < 0) return -errno;
    shared = 1;
  }
  int r = qn_pipe_open(rt, own, o, out);
  if (r != 0) {
    close(own);
    if (shared) fcntl(fd, F_SETFL, mode);
    return r;
  }
  if (shared) {
    (*out)->restore_fd = fd;
    (*out)->restore_flags = mode;
  }
  (*out)->flush_at_end = 1;
  return 0;
}
