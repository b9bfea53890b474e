/*
** Adopting a socket someone else made: a listener inherited from a parent
** (a server that re-executes itself, a supervisor) or passed by systemd's
** socket activation. The kernel says what the descriptor is: its family
** (SO_DOMAIN), its type (SO_TYPE) and whether it listens (SO_ACCEPTCONN);
** a listener becomes a server (tcp.c), a connected socket a stream.
**
** systemd's protocol (sd_listen_fds(3)): LISTEN_PID is the pid the
** descriptors are meant for, LISTEN_FDS how many there are, from fd 3 on,
** LISTEN_FDNAMES their names separated by ':'. A process that is not
** LISTEN_PID (a child that inherited the environment) must not take them.
*/
#define _DEFAULT_SOURCE                /* glibc: SO_DOMAIN */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "internal.h"

static int sockopt(int fd, int name, int *v) {
  socklen_t len = sizeof *v;
  return getsockopt(fd, SOL_SOCKET, name, v, &len) == 0 ? 0 : -errno;
}

int qn_adopt(qn_runtime *rt, int fd, int want, const qn_tcp_opts *opts, int *kind,
             qn_stream **s, qn_tcp_server **srv) {
  *kind = 0;
  *s = NULL;
  *srv = NULL;
  if (rt->closed) return UV_ECANCELED;
  struct stat st;
  if (fstat(fd, &st) != 0) return -errno;
  if (!S_ISSOCK(st.st_mode)) return UV_ENOTSOCK;
  int domain, type, listening, r;
  if ((r = sockopt(fd, SO_DOMAIN, &domain)) != 0 || (r = sockopt(fd, SO_TYPE, &type)) != 0 ||
      (r = sockopt(fd, SO_ACCEPTCONN, &listening)) != 0)
    return r;
  if (type != SOCK_STREAM) return UV_EPROTOTYPE;
  int fam = domain == AF_UNIX ? QN_ADOPT_UNIX
          : domain == AF_INET || domain == AF_INET6 ? QN_ADOPT_TCP : 0;
  if (fam == 0 || (want != 0 && want != fam)) return UV_EINVAL;
  uv_handle_type ht = fam == QN_ADOPT_TCP ? UV_TCP : UV_NAMED_PIPE;
  int flags = fcntl(fd, F_GETFD);
  if (flags == -1 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) == -1) return -errno;
  if (listening) {
    /* qn__server_open closes fd on failure; the caller keeps it: give it a
       duplicate, and close the original only once it succeeded */
    int dup = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (dup < 0) return -errno;
    if ((r = qn__server_open(rt, ht, dup, 0, opts, srv)) != 0) return r;
    close(fd);
    *kind = fam | QN_ADOPT_SERVER;
    return 0;
  }
  struct sockaddr_storage peer;
  socklen_t plen = sizeof peer;
  if (getpeername(fd, (struct sockaddr *)&peer, &plen) != 0) return errno == ENOTCONN ? UV_ENOTCONN : -errno;
  r = qn__stream_new(rt, ht, opts ? opts->read_limit : 0, opts ? opts->write_limit : 0, s);
  if (r != 0) return r;
  r = ht == UV_TCP ? uv_tcp_open(&(*s)->h.tcp, fd) : uv_pipe_open(&(*s)->h.pipe, fd);
  if (r != 0) {              /* the handle is closed without the fd, still the caller's */
    qn_stream_release(*s);
    *s = NULL;
    return r;
  }
  if (ht == UV_TCP && opts != NULL) {
    if (opts->nodelay) uv_tcp_nodelay(&(*s)->h.tcp, 1);
    if (opts->keepalive)
      uv_tcp_keepalive(&(*s)->h.tcp, 1, opts->keepalive_delay ? opts->keepalive_delay : 60);
  }
  qn__stream_start(*s);
  *kind = fam;
  return 0;
}

int qn_listen_fds(int unset) {
  const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
  int r = 0;
  if (pid != NULL && fds != NULL) {
    char *end;
    errno = 0;
    long p = strtol(pid, &end, 10);
    if (errno != 0 || *end != '\0' || p <= 0) {
      r = UV_EINVAL;
    } else if (p == (long)getpid()) {
      long n = strtol(fds, &end, 10);
      if (errno != 0 || *end != '\0' || n < 0 || n > INT_MAX - 3) {
        r = UV_EINVAL;
      } else {
        for (int fd = 3; fd < 3 + n; fd++) {
          int flags = fcntl(fd, F_GETFD);
          if (flags != -1) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
        }
        r = (int)n;
      }
    }
  }
  if (unset) {
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
  }
  return r;
}
