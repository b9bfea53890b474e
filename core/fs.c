/*
** Files: futures over uv_fs_* requests (run on libuv's thread pool), and a
** reference-counted open file.
**
** A request is submitted at the future's first poll. Memory rule: while
** libuv owns the request (submitted, callback not seen yet) nothing it may
** touch is freed: the uv_fs_t, the buffer a read writes into and the bytes a
** write sends all live in the future. A future dropped while its request is
** in flight asks uv_cancel (it wins only if the work has not started) and
** becomes a zombie: the callback, which comes in every case, frees it, and
** closes the fd of an open that succeeded anyway, so nothing leaks.
**
** A qn_file counts the futures on it: its fd is closed only when it was
** closed (by its owner, or by the runtime's shutdown: it is on the
** runtime's closers while open) AND no future on it is left, so a zombie
** read or write can never reach an fd number that a later open reused. Its
** memory goes when the owner has released it and no future is left.
**
** read_file/write_file are one piece of work each (open, read or write
** everything, close) on the pool via qn_work_new: nothing is left open when
** they are dropped. They use POSIX calls directly, as libuv's own
** synchronous fs functions do on that thread. read_file's buffer grows on
** that thread too, so it comes from malloc, not the runtime's allocator
** (which is only called on the loop thread).
*/
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "internal.h"

/* ---- the open file ---- */

struct qn_file {
  qn__io io;            /* refs: the owner, and each future on the file;
                           closing: closed by the owner or the runtime;
                           closed: the fd is closed */
  qn_runtime *rt;
  uv_file fd;           /* -1 once the fd is closed */
};

static int close_fd(uv_file fd) {
  return close(fd) == 0 || errno == EINTR ? 0 : uv_translate_sys_error(errno);
}

static void file_free(qn__io *io) {
  qn_file *f = qn__container_of(io, qn_file, io);
  qn__free(f->rt, f);
}

/* The rule only files have: the fd is closed once the file is closing and
   no future is left on it (a zombie read must never reach an fd number a
   later open reused), which frees the file if the owner has let go too. */
static int close_when_idle(qn_file *f) {
  int ops = f->io.refs - !f->io.released;
  if (!f->io.closing || ops > 0 || f->fd < 0) return 0;
  int r = close_fd(f->fd);
  f->fd = -1;
  qn__io_closed(&f->io);
  return r;
}

static void close_at_shutdown(qn__closer *c) {
  qn_file *f = qn__container_of(c, qn_file, io.closer);
  qn__io_unlinked(&f->io);
  qn_file_close(f);
}

qn_file *qn_file_new(qn_runtime *rt, uv_file fd) {
  qn_file *f = qn__calloc(rt, 1, sizeof *f);
  if (f == NULL) return NULL;
  f->rt = rt;
  f->fd = fd;
  qn__io_init(&f->io, rt, close_at_shutdown, file_free);
  return f;
}

uv_file qn_file_fd(const qn_file *f) { return f->io.closing ? -1 : f->fd; }
int qn_file_is_closed(const qn_file *f) { return f->io.closing; }

int qn_file_close(qn_file *f) {
  if (!qn__io_close(&f->io)) return QN_OK;
  return close_when_idle(f);            /* the owner still holds it: not freed here */
}

/* The owner's reference goes first, so that refs counts only futures when
   the close below decides whether the fd can go (and the file with it). */
void qn_file_release(qn_file *f) {
  if (!qn__io_release(&f->io)) return;
  int was_closing = f->io.closing;
  qn__io_unref(&f->io);                 /* frees it only if closing and the fd is gone */
  if (!was_closing) qn_file_close(f);
}

static void file_unref(qn_file *f) {
  if (f->io.closed) {                   /* the fd is gone already */
    qn__io_unref(&f->io);
    return;
  }
  f->io.refs--;                         /* then, maybe, the fd goes (and the file) */
  close_when_idle(f);
}

/* ---- request futures ---- */

enum { OPEN, READ, WRITE, STAT, FSTAT, SCANDIR, UNLINK, RENAME, MKDIR, RMDIR, FSYNC };
enum { NEW, RUNNING, DONE };

typedef struct fs_future {
  qn_future base;
  uv_fs_t req;
  qn_runtime *rt;
  uv_loop_t *loop;
  qn_waker *waker;
  qn_file *file;        /* a counted reference, for requests on an open file */
  char *path, *path2;   /* our copies (libuv copies again when submitting) */
  char *buf;            /* read: what libuv writes into; write: the bytes to send */
  size_t len, done;     /* write: bytes sent so far (a short write is resumed) */
  int64_t offset;       /* -1: the file position */
  int flags, mode;
  ssize_t result;       /* once DONE: >= 0, or a uv error code */
  uint8_t kind, state, zombie, has_req, taken;
} fs_future;

static void destroy(fs_future *f) {
  if (f->has_req) uv_fs_req_cleanup(&f->req);
  if (f->kind == OPEN && f->state == DONE && f->result >= 0 && !f->taken)
    close_fd((uv_file)f->result);       /* opened, then dropped before anyone took it */
  if (f->file) file_unref(f->file);
  qn__free(f->rt, f->buf);
  qn__free(f->rt, f->path);
  qn__free(f->rt, f->path2);
  qn__free(f->rt, f);
}

static void on_fs(uv_fs_t *req);

static int submit(fs_future *f) {
  uv_fs_t *r = &f->req;
  uv_file fd = f->file ? f->file->fd : -1;
  uv_buf_t b;
  switch (f->kind) {
  case OPEN: return uv_fs_open(f->loop, r, f->path, f->flags, f->mode, on_fs);
  case READ:
    b = uv_buf_init(f->buf, (unsigned)f->len);
    return uv_fs_read(f->loop, r, fd, &b, 1, f->offset, on_fs);
  case WRITE:
    b = uv_buf_init(f->buf + f->done, (unsigned)(f->len - f->done));
    return uv_fs_write(f->loop, r, fd, &b, 1,
                       f->offset < 0 ? -1 : f->offset + (int64_t)f->done, on_fs);
  case STAT: return uv_fs_stat(f->loop, r, f->path, on_fs);
  case FSTAT: return uv_fs_fstat(f->loop, r, fd, on_fs);
  case SCANDIR: return uv_fs_scandir(f->loop, r, f->path, 0, on_fs);
  case UNLINK: return uv_fs_unlink(f->loop, r, f->path, on_fs);
  case RENAME: return uv_fs_rename(f->loop, r, f->path, f->path2, on_fs);
  case MKDIR: return uv_fs_mkdir(f->loop, r, f->path, f->mode, on_fs);
  case RMDIR: return uv_fs_rmdir(f->loop, r, f->path, on_fs);
  default: return uv_fs_fsync(f->loop, r, fd, on_fs);
  }
}

/* The loop thread, once per submission; libuv is done with the request. */
static void on_fs(uv_fs_t *req) {
  fs_future *f = qn__container_of(req, fs_future, req);
  ssize_t r = req->result;
  if (f->zombie) {
    f->state = DONE;
    f->result = r;                      /* destroy closes a successful open's fd */
    destroy(f);
    return;
  }
  if (f->kind == WRITE && r >= 0) {
    f->done += (size_t)r;
    r = (ssize_t)f->done;
    if (req->result > 0 && f->done < f->len) {   /* a short write: send the rest */
      uv_fs_req_cleanup(req);
      int e = submit(f);
      if (e == 0) return;
      r = e;
    }
  }
  f->result = r;
  f->state = DONE;
  if (f->waker) qn_wake(f->waker);
}

static int fs_poll(qn_future *fut, qn_waker *wk) {
  fs_future *f = (fs_future *)fut;
  f->waker = wk;
  if (f->state == NEW) {
    int e = 0;
    if (!(f->kind == WRITE && f->len == 0)) {   /* an empty write is done at once */
      f->has_req = 1;
      e = submit(f);
      if (e == 0) {
        f->state = RUNNING;
        return QN_PENDING;
      }
    }
    f->result = e;
    f->state = DONE;
  }
  return f->state == DONE ? QN_READY : QN_PENDING;
}

static void fs_drop(qn_future *fut) {
  fs_future *f = (fs_future *)fut;
  if (f->state != RUNNING) {
    destroy(f);
    return;
  }
  f->zombie = 1;
  f->waker = NULL;
  uv_cancel((uv_req_t *)&f->req);      /* the callback frees it, cancelled or not */
}

static const qn_future_vt fs_vt = { fs_poll, fs_drop };

static char *dup_str(qn_runtime *rt, const char *s) {
  size_t n = strlen(s) + 1;
  char *d = qn__malloc(rt, n);
  if (d) memcpy(d, s, n);
  return d;
}

static fs_future *fs_new(qn_runtime *rt, int kind, const char *path, const char *path2) {
  fs_future *f = qn__calloc(rt, 1, sizeof *f);
  if (f == NULL) return NULL;
  f->base.vt = &fs_vt;
  f->rt = rt;
  f->loop = qn_runtime_loop(rt);
  f->kind = (uint8_t)kind;
  f->offset = -1;
  if ((path && !(f->path = dup_str(rt, path))) || (path2 && !(f->path2 = dup_str(rt, path2)))) {
    destroy(f);
    return NULL;
  }
  return f;
}

static qn_future *on_file(fs_future *f, qn_file *file) {
  if (f == NULL) return NULL;
  f->file = file;
  qn__io_ref(&file->io);
  return &f->base;
}

static qn_future *path_op(qn_runtime *rt, int kind, const char *path, const char *path2, int mode) {
  fs_future *f = fs_new(rt, kind, path, path2);
  if (f) f->mode = mode;
  return f ? &f->base : NULL;
}

qn_future *qn_fs_open_new(qn_runtime *rt, const char *path, int flags, int mode) {
  fs_future *f = fs_new(rt, OPEN, path, NULL);
  if (f == NULL) return NULL;
  f->flags = flags;
  f->mode = mode;
  return &f->base;
}

qn_future *qn_fs_read_new(qn_runtime *rt, qn_file *file, size_t len, int64_t offset) {
  if (len > UINT32_MAX) len = UINT32_MAX;   /* one request reads at most this much */
  fs_future *f = fs_new(rt, READ, NULL, NULL);
  if (f == NULL) return NULL;
  if ((f->buf = qn__malloc(rt, len)) == NULL) {
    destroy(f);
    return NULL;
  }
  f->len = len;
  f->offset = offset;
  return on_file(f, file);
}

qn_future *qn_fs_write_new(qn_runtime *rt, qn_file *file, const char *data, size_t len,
                           int64_t offset) {
  fs_future *f = fs_new(rt, WRITE, NULL, NULL);
  if (f == NULL) return NULL;
  if ((f->buf = qn__malloc(rt, len)) == NULL) {
    destroy(f);
    return NULL;
  }
  memcpy(f->buf, data, len);
  f->len = len;
  f->offset = offset;
  return on_file(f, file);
}

qn_future *qn_fs_fstat_new(qn_runtime *rt, qn_file *file) {
  return on_file(fs_new(rt, FSTAT, NULL, NULL), file);
}

qn_future *qn_fs_fsync_new(qn_runtime *rt, qn_file *file) {
  return on_file(fs_new(rt, FSYNC, NULL, NULL), file);
}

qn_future *qn_fs_stat_new(qn_runtime *rt, const char *path) {
  return path_op(rt, STAT, path, NULL, 0);
}
qn_future *qn_fs_scandir_new(qn_runtime *rt, const char *path) {
  return path_op(rt, SCANDIR, path, NULL, 0);
}
qn_future *qn_fs_unlink_new(qn_runtime *rt, const char *path) {
  return path_op(rt, UNLINK, path, NULL, 0);
}
qn_future *qn_fs_rmdir_new(qn_runtime *rt, const char *path) {
  return path_op(rt, RMDIR, path, NULL, 0);
}
qn_future *qn_fs_mkdir_new(qn_runtime *rt, const char *path, int mode) {
  return path_op(rt, MKDIR, path, NULL, mode);
}
qn_future *qn_fs_rename_new(qn_runtime *rt, const char *path, const char *new_path) {
  return path_op(rt, RENAME, path, new_path, 0);
}

ssize_t qn_fs_result(const qn_future *fut) { return ((const fs_future *)fut)->result; }

qn_file *qn_fs_take_file(qn_future *fut) {
  fs_future *f = (fs_future *)fut;
  if (f->kind != OPEN || f->state != DONE || f->result < 0 || f->taken) return NULL;
  qn_file *file = qn_file_new(f->rt, (uv_file)f->result);
  if (file != NULL) f->taken = 1;
  return file;
}

const char *qn_fs_data(const qn_future *fut) { return ((const fs_future *)fut)->buf; }

const uv_stat_t *qn_fs_statbuf(const qn_future *fut) {
  return &((const fs_future *)fut)->req.statbuf;
}

int qn_fs_scandir_next(qn_future *fut, uv_dirent_t *ent) {
  fs_future *f = (fs_future *)fut;
  if (f->kind != SCANDIR || f->state != DONE || f->result < 0) return UV_EOF;
  return uv_fs_scandir_next(&f->req, ent);
}

/* ---- whole files, as one piece of pool work ---- */

typedef struct whole {
  qn_runtime *rt;
  char *path;
  char *data;           /* read_file: from malloc (grown on the pool thread); write_file: rt's */
  size_t len;
  int err;              /* 0 or a uv error code */
  uint8_t reading;
} whole;

static void whole_release(void *arg) {
  whole *w = arg;
  qn__free(w->rt, w->path);
  if (w->reading) free(w->data);
  else qn__free(w->rt, w->data);
  qn__free(w->rt, w);
}

/* Read everything, growing the buffer; stop early once the future is dropped. */
static void read_file_run(qn_future *self, void *arg) {
  whole *w = arg;
  int fd = open(w->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    w->err = uv_translate_sys_error(errno);
    return;
  }
  struct stat st;
  size_t cap = fstat(fd, &st) == 0 && st.st_size > 0 ? (size_t)st.st_size + 1 : 4096;
  while (!qn_work_is_cancelled(self)) {
    if (w->len == cap || w->data == NULL) {
      size_t ncap = w->data == NULL ? cap : cap * 2;
      char *p = realloc(w->data, ncap);   /* a pool thread: not the runtime's allocator */
      if (p == NULL) {
        w->err = UV_ENOMEM;
        break;
      }
      w->data = p;
      cap = ncap;
    }
    ssize_t n = read(fd, w->data + w->len, cap - w->len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      w->err = uv_translate_sys_error(errno);
      break;
    }
    if (n == 0) break;
    w->len += (size_t)n;
  }
  close(fd);
}

static void write_file_run(qn_future *self, void *arg) {
  whole *w = arg;
  int fd = open(w->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) {
    w->err = uv_translate_sys_error(errno);
    return;
  }
  size_t done = 0;
  while (done < w->len && !qn_work_is_cancelled(self)) {
    ssize_t n = write(fd, w->data + done, w->len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      w->err = uv_translate_sys_error(errno);
      break;
    }
    done += (size_t)n;
  }
  if (close(fd) != 0 && errno != EINTR && w->err == 0) w->err = uv_translate_sys_error(errno);
}

static qn_future *whole_new(qn_runtime *rt, const char *path, const char *data, size_t len,
                            qn_work_fn run) {
  whole *w = qn__calloc(rt, 1, sizeof *w);
  if (w == NULL) return NULL;
  w->rt = rt;
  w->reading = data == NULL;
  if ((w->path = dup_str(rt, path)) == NULL || (data && (w->data = qn__malloc(rt, len)) == NULL)) {
    whole_release(w);
    return NULL;
  }
  if (data) memcpy(w->data, data, len);
  w->len = len;
  qn_future *f = qn_work_new(rt, run, whole_release, w);
  if (f == NULL) whole_release(w);
  return f;
}

qn_future *qn_fs_read_file_new(qn_runtime *rt, const char *path) {
  return whole_new(rt, path, NULL, 0, read_file_run);
}

qn_future *qn_fs_write_file_new(qn_runtime *rt, const char *path, const char *data, size_t len) {
  return whole_new(rt, path, data, len, write_file_run);
}

int qn_fs_whole_result(const qn_future *f, const char **data, size_t *len) {
  int st = qn_work_status(f);
  whole *w = qn_work_arg(f);
  if (st == 0) st = w->err;
  if (data) *data = w->data ? w->data : "";
  if (len) *len = w->len;
  return st;
}
