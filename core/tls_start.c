/*
** Starting TLS as one future: the client's TCP connect then its handshake
** (quench.tls.connect), or the handshake of a stream made TLS in place
** (starttls). Before, each was two waits with the binding gluing them; as
** one future each is one op, so a drop at any point follows one rule:
**
** - dropped while connecting: the TCP connect is dropped, nothing is left;
** - dropped during the handshake: the handshake future's drop closes the
**   stream (a handshake is never resumed half done, core/tls.c); a
**   connect's stream, never handed over, is released too;
** - dropped once ready, before the stream was taken (given, not resumed):
**   a connect's stream is closed and released, as if never made; a
**   starttls stream stays with its owner, closed if the handshake failed.
**
** A failure (connect, attach, handshake) closes the stream at once; the
** future keeps it until its drop so that the failure's message can be read
** (qn_tls_error_message of qn_tls_start_stream).
*/
#include <string.h>
#include <openssl/ssl.h>
#include "internal.h"

enum { S_CONNECT, S_HANDSHAKE, S_DONE };

typedef struct tls_start {
  qn_future base;
  qn_runtime *rt;
  qn_future *inner;         /* the TCP connect, then the handshake; NULL otherwise */
  qn_stream *s;             /* NULL until connected, and once taken */
  qn_tls_ctx *ctx;          /* a reference, until the drop */
  SSL_SESSION *session;     /* a reference, until the drop; NULL: none */
  int owned;                /* s is ours (a connect's) until taken, else the caller's */
  int state;
  int status;               /* once S_DONE: 0 or an error code */
  char servername[];        /* empty: none (a server, or no check) */
} tls_start;

static int start_poll(qn_future *f, qn_waker *w);
static void start_drop(qn_future *f);
static const qn_future_vt start_vt = { start_poll, start_drop };

static tls_start *start_new(qn_runtime *rt, qn_tls_ctx *ctx, const char *servername,
                            void *session) {
  size_t n = servername != NULL ? strlen(servername) : 0;
  tls_start *t = qn__calloc(rt, 1, sizeof *t + n + 1);
  if (t == NULL) return NULL;
  if (n > 0) memcpy(t->servername, servername, n);
  t->base.vt = &start_vt;
  t->rt = rt;
  t->ctx = ctx;
  qn_tls_ctx_ref(ctx);
  if (session != NULL && SSL_SESSION_up_ref(session) == 1) t->session = session;
  return t;
}

static int fail(tls_start *t, int r) {
  t->status = r;
  t->state = S_DONE;
  if (t->s != NULL) qn_stream_close(t->s);
  return QN_READY;
}

/* Make the stream TLS and start waiting for its handshake: 0 or an error. */
static int attach(tls_start *t) {
  int r = qn_tls_attach(t->s, t->ctx, t->servername[0] ? t->servername : NULL, t->session);
  if (r != 0) return r;
  t->inner = qn_tls_handshake_new(t->s);
  if (t->inner == NULL) return UV_ENOMEM;
  t->state = S_HANDSHAKE;
  return 0;
}

static int start_poll(qn_future *f, qn_waker *w) {
  tls_start *t = (tls_start *)f;
  if (t->state == S_CONNECT) {
    if (qn_poll(t->inner, w) == QN_PENDING) return QN_PENDING;
    int r = qn_tcp_connect_take(t->inner, &t->s);
    qn_drop(t->inner);
    t->inner = NULL;
    if (r == 0) r = attach(t);
    if (r != 0) return fail(t, r);
  }
  if (t->state == S_HANDSHAKE) {
    if (qn_poll(t->inner, w) == QN_PENDING) return QN_PENDING;
    int r = qn_tls_handshake_status(t->inner);
    qn_drop(t->inner);
    t->inner = NULL;
    if (r != 0) return fail(t, r);
    t->state = S_DONE;
  }
  return QN_READY;
}

static void start_drop(qn_future *f) {
  tls_start *t = (tls_start *)f;
  if (t->inner != NULL) qn_drop(t->inner);   /* a handshake's drop closes the stream */
  if (t->s != NULL) {
    if (t->owned) qn_stream_release(t->s);   /* closes it: never handed over */
    else qn__stream_unref(t->s);
  }
  qn_tls_ctx_unref(t->ctx);
  if (t->session != NULL) SSL_SESSION_free(t->session);
  qn__free(t->rt, t);
}

qn_future *qn_tls_connect_new(qn_runtime *rt, const char *host, int port,
                              const qn_tcp_opts *opts, qn_tls_ctx *ctx,
                              const char *servername, void *session) {
  tls_start *t = start_new(rt, ctx, servername, session);
  if (t == NULL) return NULL;
  t->inner = qn_tcp_connect_new(rt, host, port, opts);
  if (t->inner == NULL) {
    start_drop(&t->base);
    return NULL;
  }
  t->owned = 1;
  t->state = S_CONNECT;
  return &t->base;
}

qn_future *qn_tls_start_new(qn_stream *s, qn_tls_ctx *ctx, const char *servername,
                            void *session) {
  tls_start *t = start_new(s->rt, ctx, servername, session);
  if (t == NULL) return NULL;
  t->s = s;
  qn__stream_ref(s);                        /* the caller's: ours is a reference */
  int r = attach(t);
  if (r != 0) fail(t, r);                   /* ready at once with the failure */
  return &t->base;
}

int qn_tls_start_status(const qn_future *f) {
  const tls_start *t = (const tls_start *)f;
  return t->state == S_DONE ? t->status : UV_EINVAL;
}

qn_stream *qn_tls_start_stream(const qn_future *f) { return ((const tls_start *)f)->s; }

qn_stream *qn_tls_connect_take(qn_future *f) {
  tls_start *t = (tls_start *)f;
  if (t->state != S_DONE || t->status != 0 || !t->owned) return NULL;
  qn_stream *s = t->s;
  t->s = NULL;
  return s;
}
