/*
** The I/O objects' shared lifecycle (internal.h, qn__io): references,
** closing the handle once, closed, and the free that waits for both.
** stream.c and fs.c keep their own for now (a stream's lingering close and
** a file's requests do more than this).
*/
#include "internal.h"

static void at_shutdown(qn__closer *c) {
  qn__io *io = qn__container_of(c, qn__io, closer);
  io->registered = 0;                   /* the runtime unlinked it */
  io->ops->shutdown(io);
}

void qn__io_init(qn__io *io, qn_runtime *rt, const qn__io_ops *ops) {
  io->rt = rt;
  io->ops = ops;
  io->refs = 1;
  io->closer.close = at_shutdown;
  qn__closer_add(rt, &io->closer);
  io->registered = 1;
}

static void maybe_free(qn__io *io) {
  if (io->refs > 0 || !io->closed) return;
  io->ops->free(io);
}

void qn__io_unref(qn__io *io) {
  io->refs--;
  maybe_free(io);
}

int qn__io_close_handle(qn__io *io, uv_handle_t *h, uv_close_cb cb) {
  if (io->handle_closing) return 0;
  io->handle_closing = 1;
  if (io->registered) {
    qn__closer_remove(&io->closer);
    io->registered = 0;
  }
  if (uv_is_closing(h)) io->closed = 1;
  else uv_close(h, cb);
  return 1;
}

void qn__io_closed(qn__io *io) {
  io->closed = 1;
  maybe_free(io);
}
