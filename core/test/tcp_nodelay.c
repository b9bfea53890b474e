/* core/tcp.c's deferred TCP_NODELAY, no Lua: a server listening with
   nodelay gives its accepted streams TCP_NODELAY at their second write
   (Nagle never holds a connection's first small write), or before a first
   write longer than one segment, and never against the embedder's own
   qn_tcp_set_nodelay; a connecting stream gets it at once. Read with
   getsockopt on each stream's descriptor, over loopback, in one runtime
   driven by a script future. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "quench.h"

typedef struct checks {
  int failures;
} checks;

#define CHECK(ck, cond) \
  do { if (!(cond)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
                      (ck)->failures++; } } while (0)

static int nodelay_of(const qn_stream *s) {
  int v = -1;
  socklen_t n = sizeof v;
  if (getsockopt(qn_stream_fileno(s), IPPROTO_TCP, TCP_NODELAY, &v, &n) != 0) return -1;
  return v != 0;
}

enum { CASE_SMALL, CASE_LONG_FIRST, CASE_EMBEDDER_OFF };

typedef struct script {
  qn_future base;
  qn_runtime *rt;
  checks *ck;
  int which, state;
  qn_tcp_server *srv;
  qn_future *a, *b;         /* connect, accept */
  qn_stream *cli, *acc;
} script;

static int script_poll(qn_future *f, qn_waker *w) {
  script *sc = (script *)f;
  checks *ck = sc->ck;
  if (sc->state == 0) {
    qn_tcp_opts o;
    memset(&o, 0, sizeof o);
    o.nodelay = 1;
    CHECK(ck, qn_tcp_listen(sc->rt, "127.0.0.1", 0, 16, QN_TCP_REUSEADDR, &o, &sc->srv) == 0);
    struct sockaddr_storage ss;
    CHECK(ck, qn_tcp_server_sockname(sc->srv, &ss) == 0);
    sc->a = qn_tcp_connect_new(sc->rt, "127.0.0.1", ntohs(((struct sockaddr_in *)&ss)->sin_port), &o);
    sc->b = qn_tcp_accept_new(sc->srv);
    sc->state = 1;
  }
  if (sc->a && qn_poll(sc->a, w) == QN_READY) {
    CHECK(ck, qn_tcp_connect_take(sc->a, &sc->cli) == 0);
    qn_drop(sc->a);
    sc->a = NULL;
  }
  if (sc->b && qn_poll(sc->b, w) == QN_READY) {
    qn_drop(sc->b);
    sc->b = NULL;
    CHECK(ck, qn_tcp_try_accept(sc->srv, &sc->acc) == 0);
  }
  if (sc->a || sc->b) return QN_PENDING;
  if (sc->cli == NULL || sc->acc == NULL) return QN_READY;   /* failed: checked above */

  CHECK(ck, nodelay_of(sc->cli) == 1);        /* a connecting stream: at once */
  CHECK(ck, nodelay_of(sc->acc) == 0);        /* accepted: not yet */
  char longer[2048];
  switch (sc->which) {
  case CASE_SMALL:
    CHECK(ck, qn_stream_write(sc->acc, "first", 5) == 0);
    CHECK(ck, nodelay_of(sc->acc) == 0);      /* one small write: never needed */
    CHECK(ck, qn_stream_write(sc->acc, "second", 6) == 0);
    CHECK(ck, nodelay_of(sc->acc) == 1);      /* set before the second went out */
    break;
  case CASE_LONG_FIRST:
    memset(longer, 'x', sizeof longer);
    CHECK(ck, qn_stream_write(sc->acc, longer, sizeof longer) == 0);
    CHECK(ck, nodelay_of(sc->acc) == 1);      /* more than one segment: set first */
    break;
  case CASE_EMBEDDER_OFF:
    CHECK(ck, qn_tcp_set_nodelay(sc->acc, 0) == 0);
    CHECK(ck, qn_stream_write(sc->acc, "first", 5) == 0);
    CHECK(ck, qn_stream_write(sc->acc, "second", 6) == 0);
    CHECK(ck, nodelay_of(sc->acc) == 0);      /* the embedder's word stands */
    break;
  }
  qn_stream_close(sc->cli);
  qn_stream_close(sc->acc);
  qn_tcp_server_close(sc->srv);
  return QN_READY;
}

static void script_drop(qn_future *f) {
  script *sc = (script *)f;
  if (sc->a) qn_drop(sc->a);
  if (sc->b) qn_drop(sc->b);
  if (sc->cli) qn_stream_release(sc->cli);
  if (sc->acc) qn_stream_release(sc->acc);
  if (sc->srv) qn_tcp_server_release(sc->srv);
  sc->a = sc->b = NULL;
  sc->cli = sc->acc = NULL;
  sc->srv = NULL;
}

static const qn_future_vt script_vt = { script_poll, script_drop };

static void run_case(checks *ck, int which) {
  script sc;
  memset(&sc, 0, sizeof sc);
  sc.base.vt = &script_vt;
  sc.ck = ck;
  sc.which = which;
  sc.rt = qn_runtime_new(QN_CLOCK_REAL, 1);
  CHECK(ck, sc.rt != NULL);
  if (sc.rt == NULL) return;
  qn_task *t = malloc(qn_task_size());
  CHECK(ck, t != NULL);
  if (t == NULL) {
    qn_runtime_free(sc.rt);
    return;
  }
  qn_task_init(t, sc.rt, &sc.base);
  CHECK(ck, qn_run(sc.rt, t) == QN_OK);
  CHECK(ck, qn_task_get_outcome(t) == QN_TASK_OK);
  qn_task_fini(t);
  free(t);
  qn_runtime_free(sc.rt);
}

int main(void) {
  checks ck = { 0 };
  run_case(&ck, CASE_SMALL);
  run_case(&ck, CASE_LONG_FIRST);
  run_case(&ck, CASE_EMBEDDER_OFF);
  if (ck.failures) {
    fprintf(stderr, "tcp_nodelay: %d failure(s)\n", ck.failures);
    return 1;
  }
  printf("tcp_nodelay: ok\n");
  return 0;
}
