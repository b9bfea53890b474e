/* core/tls.c on its own, no Lua: a TLS client and server over loopback TCP
   in one runtime, driven by a script future, with certificates made at
   test time by the `openssl` command (a CA, a certificate for localhost).
   Covers: context configuration failures, the handshake both ways with
   the client verifying chain and name, a line each way, a host name
   mismatch refused with ETLS_HOSTNAME on the client, a handshake future
   dropped mid-handshake closing its stream, SNI registration, and the
   client's side as one TLS start future (core/tls_start.c): connect and
   handshake, or the handshake of a connected stream, a failure closing
   the stream. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include "quench.h"

static int failures;
#define CHECK(cond) \
  do { if (!(cond)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); failures++; } } while (0)

/* The test's certificates, in a directory of its own made by mkdtemp. */
#define PKI_DIR_PREFIX "/tmp/quench-tls-test."
enum { MKDTEMP_SUFFIX = 6 };   /* mkdtemp fills in this many trailing 'X's */

typedef struct pki {
  char dir[sizeof PKI_DIR_PREFIX + MKDTEMP_SUFFIX];
  char ca[128], cert[128], key[128];
} pki;

static int sh(const pki *p, const char *cmd) {
  char full[1024];
  snprintf(full, sizeof full, "cd %s && %s >/dev/null 2>&1", p->dir, cmd);
  return system(full) == 0;
}

static int make_pki(pki *p) {
  memcpy(p->dir, PKI_DIR_PREFIX, sizeof PKI_DIR_PREFIX - 1);
  memset(p->dir + sizeof PKI_DIR_PREFIX - 1, 'X', MKDTEMP_SUFFIX);
  p->dir[sizeof p->dir - 1] = '\0';
  if (mkdtemp(p->dir) == NULL) return 0;
  snprintf(p->ca, sizeof p->ca, "%s/ca.pem", p->dir);
  snprintf(p->cert, sizeof p->cert, "%s/s.pem", p->dir);
  snprintf(p->key, sizeof p->key, "%s/s.key", p->dir);
  return sh(p, "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
               "-keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca") &&
         sh(p, "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
               "-keyout s.key -out s.csr -subj /CN=localhost") &&
         sh(p, "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext && "
               "openssl x509 -req -in s.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
               "-extfile ext -out s.pem");
}

static void remove_pki(const pki *p) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", p->dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", p->dir);
}

static qn_tls_ctx *ctx_or_fail(const qn_tls_config *c) {
  qn_tls_ctx *ctx = NULL;
  char err[300] = "";
  int r = qn_tls_ctx_new(c, &ctx, err, sizeof err);
  if (r != 0) fprintf(stderr, "qn_tls_ctx_new: %d %s\n", r, err);
  CHECK(r == 0 && ctx != NULL);
  return ctx;
}

/* ---- the script: connect, accept, attach TLS, handshake, one line each way ---- */

enum { CLIENT_ATTACH, CLIENT_START, CLIENT_CONNECT };

typedef struct script {
  qn_future base;
  qn_runtime *rt;
  int state, port;
  int drop_mid_handshake;   /* drop the client's handshake future after its first poll */
  int client;               /* how the client starts TLS: CLIENT_* */
  const char *servername;
  qn_tls_ctx *cctx, *sctx;
  qn_future *a, *b;         /* client side, server side */
  qn_stream *cli, *srv_s;
  qn_tcp_server *srv;
  int cli_hs, srv_hs;       /* handshake statuses */
  char got_srv[32], got_cli[32];
  int closed_on_drop;
} script;

/* Poll *f if set; 1 once ready (or unset). */
static int ready(qn_future **f, qn_waker *w) {
  return *f == NULL || qn_poll(*f, w) == QN_READY;
}

static void take_line(qn_stream *s, char *out, size_t cap) {
  const char *data;
  size_t len, used;
  if (qn_stream_peek(s, QN_STREAM_LINE, 0, &data, &len, &used) != 0) return;
  if (len >= cap) len = cap - 1;
  memcpy(out, data, len);
  out[len] = '\0';
  qn_stream_consume(s, used);
}

static int script_poll(qn_future *f, qn_waker *w) {
  script *sc = (script *)f;
  for (;;) {
    switch (sc->state) {
    case 0: {
      qn_tcp_opts o;
      memset(&o, 0, sizeof o);
      CHECK(qn_tcp_listen(sc->rt, "127.0.0.1", 0, 16, QN_TCP_REUSEADDR, &o, &sc->srv) == 0);
      struct sockaddr_storage ss;
      CHECK(qn_tcp_server_sockname(sc->srv, &ss) == 0);
      sc->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
      sc->b = qn_tcp_accept_new(sc->srv);
      if (sc->client == CLIENT_CONNECT) {
        sc->a = qn_tls_connect_new(sc->rt, "127.0.0.1", sc->port, &o, sc->cctx, sc->servername,
                                   NULL);
        sc->state = 5;
        break;
      }
      sc->a = qn_tcp_connect_new(sc->rt, "127.0.0.1", sc->port, &o);
      sc->state = 1;
      break;
    }
    case 5:                 /* the client's one future; the server accepts and attaches */
      if (sc->srv_s == NULL && ready(&sc->b, w)) {
        qn_drop(sc->b);
        sc->b = NULL;
        CHECK(qn_tcp_try_accept(sc->srv, &sc->srv_s) == 0);
        CHECK(qn_tls_attach(sc->srv_s, sc->sctx, NULL, NULL) == 0);
        sc->b = qn_tls_handshake_new(sc->srv_s);
      }
      if (sc->srv_s != NULL && sc->b && ready(&sc->b, w)) {
        sc->srv_hs = qn_tls_handshake_status(sc->b);
        qn_drop(sc->b);
        sc->b = NULL;
      }
      if (sc->a && ready(&sc->a, w)) {
        sc->cli_hs = qn_tls_start_status(sc->a);
        if (sc->cli_hs == 0) sc->cli = qn_tls_connect_take(sc->a);
        else sc->closed_on_drop = qn_stream_is_closed(qn_tls_start_stream(sc->a));
        CHECK((sc->cli != NULL) == (sc->cli_hs == 0));
        CHECK(qn_tls_connect_take(sc->a) == NULL);           /* taken once */
        qn_drop(sc->a);
        sc->a = NULL;
      }
      if (sc->a || sc->b) return QN_PENDING;
      sc->state = 2;
      break;
    case 1:
      if (sc->a && ready(&sc->a, w)) {
        CHECK(qn_tcp_connect_take(sc->a, &sc->cli) == 0);
        qn_drop(sc->a);
        sc->a = NULL;
      }
      if (sc->b && ready(&sc->b, w)) {
        qn_drop(sc->b);
        sc->b = NULL;
        CHECK(qn_tcp_try_accept(sc->srv, &sc->srv_s) == 0);
      }
      if (sc->a || sc->b) return QN_PENDING;
      CHECK(qn_tls_attach(sc->srv_s, sc->sctx, NULL, NULL) == 0);
      sc->b = qn_tls_handshake_new(sc->srv_s);
      if (sc->client == CLIENT_START) {
        sc->a = qn_tls_start_new(sc->cli, sc->cctx, sc->servername, NULL);
        CHECK(sc->a != NULL && qn_stream_is_tls(sc->cli));   /* attached at once */
        sc->state = 2;
        break;
      }
      CHECK(qn_tls_attach(sc->cli, sc->cctx, sc->servername, NULL) == 0);
      CHECK(qn_tls_attach(sc->cli, sc->cctx, sc->servername, NULL) == UV_EINVAL);  /* once */
      CHECK(qn_stream_is_tls(sc->cli) && qn_tls_handshake_state(sc->cli) == 0);
      sc->a = qn_tls_handshake_new(sc->cli);
      if (sc->drop_mid_handshake) {
        CHECK(qn_poll(sc->a, w) == QN_PENDING);     /* the ClientHello is sent */
        qn_drop(sc->a);                              /* a handshake is one op */
        sc->a = NULL;
        sc->closed_on_drop = qn_stream_is_closed(sc->cli);
        sc->state = 9;
        break;
      }
      sc->state = 2;
      break;
    case 2:
      if (sc->a && ready(&sc->a, w)) {
        if (sc->client == CLIENT_START) {
          sc->cli_hs = qn_tls_start_status(sc->a);
          sc->closed_on_drop = qn_stream_is_closed(sc->cli);   /* a failure closes it */
        } else {
          sc->cli_hs = qn_tls_handshake_status(sc->a);
        }
        qn_drop(sc->a);
        sc->a = NULL;
      }
      if (sc->b && ready(&sc->b, w)) {
        sc->srv_hs = qn_tls_handshake_status(sc->b);
        qn_drop(sc->b);
        sc->b = NULL;
      }
      if (sc->a || sc->b) return QN_PENDING;
      if (sc->cli_hs != 0 || sc->srv_hs != 0) {
        sc->state = 9;
        break;
      }
      CHECK(qn_tls_handshake_state(sc->cli) == 1);
      CHECK(qn_stream_write(sc->cli, "hello\n", 6) == 0);
      sc->b = qn_stream_read_new(sc->srv_s, QN_STREAM_LINE, 0);
      sc->state = 3;
      break;
    case 3:
      if (!ready(&sc->b, w)) return QN_PENDING;
      qn_drop(sc->b);
      sc->b = NULL;
      take_line(sc->srv_s, sc->got_srv, sizeof sc->got_srv);
      CHECK(qn_stream_write(sc->srv_s, "world\n", 6) == 0);
      sc->a = qn_stream_read_new(sc->cli, QN_STREAM_LINE, 0);
      sc->state = 4;
      break;
    case 4:
      if (!ready(&sc->a, w)) return QN_PENDING;
      qn_drop(sc->a);
      sc->a = NULL;
      take_line(sc->cli, sc->got_cli, sizeof sc->got_cli);
      sc->state = 9;
      break;
    default:
      if (sc->cli) qn_stream_close(sc->cli);
      if (sc->srv_s) qn_stream_close(sc->srv_s);
      if (sc->srv) qn_tcp_server_close(sc->srv);
      return QN_READY;
    }
  }
}

static void script_drop(qn_future *f) {
  script *sc = (script *)f;
  if (sc->a) qn_drop(sc->a);
  if (sc->b) qn_drop(sc->b);
  if (sc->cli) qn_stream_release(sc->cli);
  if (sc->srv_s) qn_stream_release(sc->srv_s);
  if (sc->srv) qn_tcp_server_release(sc->srv);
  sc->a = sc->b = NULL;
  sc->cli = sc->srv_s = NULL;
  sc->srv = NULL;
}

static const qn_future_vt script_vt = { script_poll, script_drop };

static void run_script(script *sc) {
  sc->base.vt = &script_vt;
  sc->rt = qn_runtime_new(QN_CLOCK_REAL, 1);
  qn_task *t = malloc(qn_task_size());
  qn_task_init(t, sc->rt, &sc->base);
  CHECK(qn_run(sc->rt, t) == QN_OK);
  CHECK(qn_task_get_outcome(t) == QN_TASK_OK);
  qn_task_fini(t);
  free(t);
  qn_runtime_free(sc->rt);
}

static void test_config_errors(void) {
  qn_tls_config c;
  qn_tls_ctx *ctx = NULL;
  char err[300] = "";
  memset(&c, 0, sizeof c);
  c.server = 1;                                     /* a server without a certificate */
  CHECK(qn_tls_ctx_new(&c, &ctx, err, sizeof err) == QN_TLS_ECONFIG && ctx == NULL);
  CHECK(strstr(err, "certificate") != NULL);
  memset(&c, 0, sizeof c);
  c.verify = 1;
  c.cafile = "/nonexistent/ca.pem";
  CHECK(qn_tls_ctx_new(&c, &ctx, err, sizeof err) == QN_TLS_ECONFIG && ctx == NULL);
  CHECK(strstr(err, "/nonexistent/ca.pem") != NULL);
  CHECK(strcmp(qn_tls_err_name(QN_TLS_EHOSTNAME), "ETLS_HOSTNAME") == 0);
  CHECK(qn_tls_err_name(UV_EOF) == NULL);
}

static void test_sni_registration(const pki *p, qn_tls_ctx *server, qn_tls_ctx *client) {
  qn_tls_config c;
  memset(&c, 0, sizeof c);
  c.server = 1;
  c.certificate = p->cert;
  c.key = p->key;
  qn_tls_ctx *other = ctx_or_fail(&c);
  CHECK(qn_tls_ctx_add_sni(server, "Other.Example", other) == 0);
  CHECK(qn_tls_ctx_add_sni(server, "other.example", other) == UV_EEXIST);   /* any case */
  CHECK(qn_tls_ctx_add_sni(client, "x.example", other) == UV_EINVAL);       /* not a server */
  CHECK(qn_tls_ctx_add_sni(server, "", other) == UV_EINVAL);
  CHECK(qn_tls_ctx_add_sni(other, "y.example", server) == UV_EINVAL);      /* no nesting */
  qn_tls_ctx_unref(other);                          /* server still holds it */
}

int main(void) {
  pki p;
  if (!make_pki(&p)) {
    fprintf(stderr, "tls_test: cannot make certificates with the openssl command\n");
    return 1;
  }
  test_config_errors();

  qn_tls_config c;
  memset(&c, 0, sizeof c);
  c.server = 1;
  c.certificate = p.cert;
  c.key = p.key;
  qn_tls_ctx *sctx = ctx_or_fail(&c);
  memset(&c, 0, sizeof c);
  c.verify = 1;
  c.cafile = p.ca;
  qn_tls_ctx *cctx = ctx_or_fail(&c);
  CHECK(qn_tls_ctx_is_server(sctx) && !qn_tls_ctx_is_server(cctx));

  script ok = { .servername = "localhost", .cctx = cctx, .sctx = sctx };
  run_script(&ok);
  CHECK(ok.cli_hs == 0 && ok.srv_hs == 0);
  CHECK(strcmp(ok.got_srv, "hello") == 0);
  CHECK(strcmp(ok.got_cli, "world") == 0);

  script mismatch = { .servername = "other.example", .cctx = cctx, .sctx = sctx };
  run_script(&mismatch);
  CHECK(mismatch.cli_hs == QN_TLS_EHOSTNAME);
  CHECK(mismatch.srv_hs != 0);                      /* the client's alert, or its EOF */

  script dropped = { .servername = "localhost", .cctx = cctx, .sctx = sctx,
                     .drop_mid_handshake = 1 };
  run_script(&dropped);
  CHECK(dropped.closed_on_drop);

  for (int client = CLIENT_START; client <= CLIENT_CONNECT; client++) {
    script one = { .servername = "localhost", .cctx = cctx, .sctx = sctx, .client = client };
    run_script(&one);
    CHECK(one.cli_hs == 0 && one.srv_hs == 0);
    CHECK(strcmp(one.got_srv, "hello") == 0);
    CHECK(strcmp(one.got_cli, "world") == 0);
    script bad = { .servername = "other.example", .cctx = cctx, .sctx = sctx, .client = client };
    run_script(&bad);
    CHECK(bad.cli_hs == QN_TLS_EHOSTNAME);
    CHECK(bad.closed_on_drop);                      /* the failure closed the stream */
  }

  test_sni_registration(&p, sctx, cctx);
  qn_tls_ctx_unref(sctx);
  qn_tls_ctx_unref(cctx);
  remove_pki(&p);
  printf("tls_test: %s\n", failures ? "FAILED" : "ok");
  return failures != 0;
}
