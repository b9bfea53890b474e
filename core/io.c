/* The I/O object lifecycle (internal.h, "qn__io"): the counts and states
   every I/O object shares, and the one rule for freeing it. */
#include "internal.h"

void qn__io_init(qn__io *io, qn_runtime *rt, void (*at_shutdown)(qn__closer *c),
                 void (*free_fn)(qn__io *io)) {
  io->free = free_fn;
  io->refs = 1;
  io->closing = io->closed = io->released = 0;
  io->closer.close = at_shutdown;
  qn__closer_add(rt, &io->closer);
  io->registered = 1;
}

/* Free once nothing refers to it and its resources are gone. */
static void maybe_free(qn__io *io) {
  if (io->refs == 0 && io->closed) io->free(io);
}

void qn__io_unref(qn__io *io) {
  io->refs--;
  maybe_free(io);
}

int qn__io_close(qn__io *io) {
  if (io->closing) return 0;
  io->closing = 1;
  if (io->registered) {
    qn__closer_remove(&io->closer);
    io->registered = 0;
  }
  return 1;
}

void qn__io_closed(qn__io *io) {
  io->closed = 1;
  maybe_free(io);
}

int qn__io_release(qn__io *io) {
  if (io->released) return 0;
  io->released = 1;
  return 1;
}
