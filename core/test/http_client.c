/*
** core/http_client.c on its own (no Lua): transfers against a small HTTP
** server on a thread of this test (127.0.0.1, a free port), answering each
** connection with the reply the case chose:
**
** - a good reply: the head, the body, result 0;
** - malformed replies (not HTTP, a bad status line, a body cut short by
**   the server closing, a bad chunk size): each ends the transfer with
**   libcurl's error and a message, delivers nothing it should not, and
**   leaves nothing behind;
** - a transfer stopped after its head while the server holds the rest: it
**   ends at once with -1, nothing is delivered afterwards, and the server
**   sees its connection closed (not kept for reuse);
** - an upload whose body the client feeds piece by piece (the transfer
**   asks with QN_HTTPX_NEED, the embedder answers with qn_http_xfer_feed,
**   length 0 ending it): sent chunked, the server echoes every byte back;
** - redirects: a 302 to another path, followed (the head and body seen
**   are the final ones, the 302's never delivered) or not (the 302 is the
**   answer);
** - allocation failure: the good case is run once to count the core's
**   allocations, then once for every k with the k-th failing. Each run
**   must not crash, must report the failure (a NULL transfer or future,
**   QN_ENOMEM) or finish the transfer whole, and must leave no core block
**   after qn_runtime_shutdown. libcurl's own allocations are its own.
**
** The runtime runs on the real clock: the point is real I/O.
*/
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include "quench.h"

static int failures;
#define CHECK(cond, ...) do { if (!(cond)) { \
  fprintf(stderr, "http_client: %s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
  fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); failures++; } } while (0)

/* ---- the server thread ---- */

enum { MODE_GOOD, MODE_NOT_HTTP, MODE_BAD_STATUS, MODE_SHORT_BODY, MODE_BAD_CHUNK, MODE_HOLD,
       MODE_ECHO, MODE_REDIRECT, MODE_QUIT };

static const char *const replies[] = {
  [MODE_GOOD] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Case: good\r\n\r\nhello",
  [MODE_NOT_HTTP] = "this is not an HTTP reply\r\n\r\n",
  [MODE_BAD_STATUS] = "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
  [MODE_SHORT_BODY] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
  [MODE_BAD_CHUNK] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
  [MODE_HOLD] = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nabc",
  [MODE_REDIRECT] = "HTTP/1.1 302 Found\r\nLocation: /final\r\nX-Case: redirect\r\n"
                    "Content-Length: 8\r\nConnection: close\r\n\r\nredirect",
};
static const char final_reply[] =
  "HTTP/1.1 200 OK\r\nX-Case: final\r\nContent-Length: 5\r\nConnection: close\r\n\r\nfinal";

typedef struct server {
  int fd, port;
  atomic_int mode;
  atomic_int held_eof;      /* MODE_HOLD: the client closed its connection */
  atomic_int chunked;       /* MODE_ECHO: the last upload came chunked */
  atomic_int requests;      /* requests read since the case began */
  pthread_t thread;
} server;

static server S;

/* MODE_ECHO: read a chunked body after the head in buf[0..got) (more from
   c as needed) and answer with the decoded bytes as a Content-Length body.
   A malformed body gets a 400. */
static void echo_chunked(int c, char *buf, size_t got, size_t cap) {
  char *p = strstr(buf, "\r\n\r\n") + 4;
  size_t at = (size_t)(p - buf);
  char body[8192];
  size_t blen = 0;
  for (;;) {
    char *nl;
    while ((nl = memchr(buf + at, '\n', got - at)) == NULL) {   /* a chunk-size line */
      ssize_t k = got < cap - 1 ? read(c, buf + got, cap - 1 - got) : -1;
      if (k <= 0) goto bad;
      got += (size_t)k;
    }
    size_t size = strtoul(buf + at, NULL, 16);
    at = (size_t)(nl - buf) + 1;
    while (got - at < size + 2) {                              /* the data and its CRLF */
      ssize_t k = got < cap - 1 ? read(c, buf + got, cap - 1 - got) : -1;
      if (k <= 0) goto bad;
      got += (size_t)k;
    }
    if (size == 0) break;
    if (blen + size > sizeof body) goto bad;
    memcpy(body + blen, buf + at, size);
    blen += size;
    at += size + 2;
  }
  char head[128];
  int n = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n"
                   "Connection: close\r\n\r\n", blen);
  if (write(c, head, (size_t)n) != n || write(c, body, blen) != (ssize_t)blen) return;
  return;
bad:;
  static const char r400[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
  ssize_t w = write(c, r400, sizeof r400 - 1);
  (void)w;
}

static void *serve(void *arg) {
  (void)arg;
  for (;;) {
    int c = accept(S.fd, NULL, NULL);
    if (c < 0) continue;
    int mode = atomic_load(&S.mode);
    if (mode == MODE_QUIT) {
      close(c);
      return NULL;
    }
    char buf[16384];
    size_t got = 0;
    while (got < sizeof buf - 1) {         /* the request head */
      ssize_t k = read(c, buf + got, sizeof buf - 1 - got);
      if (k <= 0) break;
      got += (size_t)k;
      buf[got] = 0;
      if (strstr(buf, "\r\n\r\n")) break;
    }
    atomic_fetch_add(&S.requests, 1);
    if (mode == MODE_ECHO) {
      if (strstr(buf, "\r\n\r\n") == NULL) {
        close(c);
        continue;
      }
      /* libcurl asks before an upload of unknown size: let it go on */
      if (strstr(buf, "Expect: 100-continue")) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        ssize_t w = write(c, cont, sizeof cont - 1);
        (void)w;
      }
      atomic_store(&S.chunked, strstr(buf, "Transfer-Encoding: chunked\r\n") != NULL);
      echo_chunked(c, buf, got, sizeof buf);
      close(c);
      continue;
    }
    const char *r = replies[mode];
    if (mode == MODE_REDIRECT && strncmp(buf, "GET /final ", 11) == 0) r = final_reply;
    ssize_t w = write(c, r, strlen(r));
    (void)w;
    if (mode == MODE_HOLD) {               /* hold the rest until the client leaves */
      while (read(c, buf, sizeof buf) > 0) {}
      atomic_store(&S.held_eof, 1);
    }
    close(c);
  }
}

static void server_start(void) {
  S.fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(S.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  if (bind(S.fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(S.fd, 64) != 0) {
    perror("http_client: bind/listen");
    exit(2);
  }
  socklen_t al = sizeof a;
  getsockname(S.fd, (struct sockaddr *)&a, &al);
  S.port = ntohs(a.sin_port);
  pthread_create(&S.thread, NULL, serve, NULL);
}

static void server_stop(void) {
  atomic_store(&S.mode, MODE_QUIT);
  int c = socket(AF_INET, SOCK_STREAM, 0);    /* wake the accept */
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)S.port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  if (connect(c, (struct sockaddr *)&a, sizeof a) == 0) pthread_join(S.thread, NULL);
  close(c);
  close(S.fd);
}

/* ---- the counting allocator (as alloc_fail.c's, without the live set) ---- */

typedef struct heap {
  long n_allocs, fail_at;
  int injected;
} heap;

static heap H;

static void *counting_alloc(void *ud, void *p, size_t n) {
  heap *h = ud;
  if (n == 0) {
    free(p);
    return NULL;
  }
  if (++h->n_allocs == h->fail_at) {
    h->injected = 1;
    return NULL;
  }
  return realloc(p, n);
}

/* ---- a fetch: one transfer, as the binding drives it ---- */

typedef struct fetch {
  qn_future base;
  qn_runtime *rt;
  qn_http_xfer *x;
  qn_future *wait;
  const char *const *pieces;  /* an upload fed piece by piece, NULL-terminated; or NULL */
  int npieces_fed;          /* pieces fed so far (and the end, once fed, counts one more) */
  int needs;                /* QN_HTTPX_NEED seen */
  int follow;               /* follow redirects */
  int stop_after_head;
  int got_head;             /* QN_HTTPX_HEAD seen (and the head copied) */
  int started;
  int errors;               /* failures reported: NULL, QN_ENOMEM */
  int stopped;
  int result;
  int done;
  char head[1024];
  size_t head_len;
  char body[4096];
  size_t body_len;
  size_t body_at_stop;
} fetch;

static int fetch_poll(qn_future *f, qn_waker *wk) {
  fetch *F = (fetch *)f;
  if (!F->started) {
    F->started = 1;
    F->x = qn_http_xfer_new(F->rt);
    if (F->x == NULL) {
      F->errors++;
      return QN_READY;
    }
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", S.port);
    CURL *e = qn_http_xfer_easy(F->x);
    curl_easy_setopt(e, CURLOPT_URL, url);
    if (F->pieces) {                       /* as lua/http_client.c sets a reader body */
      qn_http_xfer_use_feed(F->x);
      curl_easy_setopt(e, CURLOPT_POST, 1L);
    }
    if (F->follow) {
      curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
      curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
      qn_http_xfer_set_follow(F->x, 1);
    }
    int r = qn_http_xfer_start(F->x);
    if (r != 0) {
      CHECK(r == QN_ENOMEM, "start: %d", r);
      F->errors++;
      return QN_READY;
    }
  }
  for (;;) {
    if (F->wait == NULL) {
      /* HEAD stays set once the head is in: waiting for it again would be
         ready at once, and the loop would spin without letting the body
         (or the end) in */
      unsigned want = (F->got_head ? 0 : QN_HTTPX_HEAD) | QN_HTTPX_DATA | QN_HTTPX_DONE;
      if (F->pieces) want |= QN_HTTPX_NEED;
      F->wait = qn_http_xfer_wait_new(F->x, want);
      if (F->wait == NULL) {
        F->errors++;
        return QN_READY;
      }
    }
    if (qn_poll(F->wait, wk) == QN_PENDING) return QN_PENDING;
    qn_drop(F->wait);
    F->wait = NULL;
    unsigned ev = qn_http_xfer_events(F->x);
    if (ev & QN_HTTPX_NEED) {              /* the upload wants bytes: the next piece, or the end */
      CHECK(F->pieces != NULL, "QN_HTTPX_NEED without an upload");
      F->needs++;
      /* never asked again once the end (length 0) was fed */
      int ended = F->pieces == NULL || (F->npieces_fed > 0 && F->pieces[F->npieces_fed - 1] == NULL);
      CHECK(!ended, "QN_HTTPX_NEED after the upload's end");
      const char *p = ended ? NULL : F->pieces[F->npieces_fed];
      int r = qn_http_xfer_feed(F->x, p, p ? strlen(p) : 0);
      if (r != 0) {
        CHECK(r == QN_ENOMEM, "feed: %d", r);
        F->errors++;
      }
      if (!ended) F->npieces_fed++;
      CHECK(!(qn_http_xfer_events(F->x) & QN_HTTPX_NEED), "QN_HTTPX_NEED still set after a feed");
    }
    if ((ev & QN_HTTPX_HEAD) && !F->got_head) {
      F->got_head = 1;
      size_t n;
      const char *h = qn_http_xfer_head(F->x, &n);
      if (n > sizeof F->head - 1) n = sizeof F->head - 1;
      memcpy(F->head, h, n);
      F->head_len = n;
      F->head[n] = 0;
    }
    if (ev & QN_HTTPX_DATA) {
      size_t n;
      const char *d = qn_http_xfer_peek(F->x, &n);
      size_t room = sizeof F->body - F->body_len;
      size_t k = n < room ? n : room;
      memcpy(F->body + F->body_len, d, k);
      F->body_len += k;
      qn_http_xfer_consume(F->x, n);
    }
    if (F->stop_after_head && F->head_len > 0 && !F->stopped) {
      qn_http_xfer_stop(F->x);
      F->stopped = 1;
      F->body_at_stop = F->body_len;
    }
    if ((qn_http_xfer_events(F->x) & (QN_HTTPX_DONE | QN_HTTPX_DATA)) == QN_HTTPX_DONE) {
      const char *msg;
      F->result = qn_http_xfer_result(F->x, &msg);
      CHECK(F->result == 0 || (msg != NULL && msg[0] != 0), "result %d without a message", F->result);
      F->done = 1;
      return QN_READY;
    }
  }
}

static void fetch_drop(qn_future *f) {
  fetch *F = (fetch *)f;
  if (F->wait) qn_drop(F->wait);
  if (F->x) qn_http_xfer_free(F->x);
  F->wait = NULL;
  F->x = NULL;
}

static const qn_future_vt fetch_vt = { fetch_poll, fetch_drop };

/* Fetches one after the other in one task (a failed one does not stop
   the next: the client must still serve it). */
typedef struct seq {
  qn_future base;
  fetch *f;
  int n, i;
} seq;

static int seq_poll(qn_future *f, qn_waker *wk) {
  seq *q = (seq *)f;
  while (q->i < q->n) {
    if (qn_poll(&q->f[q->i].base, wk) == QN_PENDING) return QN_PENDING;
    qn_drop(&q->f[q->i].base);              /* frees the transfer, keeps the results */
    q->i++;
  }
  return QN_READY;
}

static void seq_drop(qn_future *f) {
  seq *q = (seq *)f;
  for (int i = q->i; i < q->n; i++) qn_drop(&q->f[i].base);
}

static const qn_future_vt seq_vt = { seq_poll, seq_drop };

/* Run n fetches in a fresh runtime: 0 or the k-th allocation failing. */
static void run_prepared(fetch *F, int n, int mode, long fail_at);

static void run_fetches(fetch *F, int n, int mode, long fail_at, int stop_after_head) {
  for (int i = 0; i < n; i++) {
    memset(&F[i], 0, sizeof F[i]);
    F[i].base.vt = &fetch_vt;
    F[i].stop_after_head = stop_after_head;
  }
  run_prepared(F, n, mode, fail_at);
}

/* Run n fetches already set up (base.vt and the case's fields). */
static void run_prepared(fetch *F, int n, int mode, long fail_at) {
  seq q = { { &seq_vt }, F, n, 0 };
  atomic_store(&S.mode, mode);
  atomic_store(&S.requests, 0);
  H.n_allocs = 0;
  H.fail_at = fail_at;
  H.injected = 0;
  qn_runtime *rt = qn_runtime_new_with(QN_CLOCK_REAL, 7, counting_alloc, &H);
  if (rt == NULL) {                         /* its own block failed: nothing runs */
    for (int i = 0; i < n; i++) F[i].errors++;
    return;
  }
  qn_runtime_cache_small(rt, 0);
  for (int i = 0; i < n; i++) F[i].rt = rt;
  static _Alignas(16) char task_mem[1024];
  if (qn_task_size() > sizeof task_mem) {
    fprintf(stderr, "http_client: qn_task_size %zu\n", qn_task_size());
    exit(2);
  }
  qn_task *t = (qn_task *)task_mem;
  memset(task_mem, 0, sizeof task_mem);
  qn_task_init(t, rt, &q.base);
  int r = qn_run(rt, t);
  CHECK(r == QN_OK || fail_at > 0, "qn_run: %d (mode %d)", r, mode);
  qn_runtime_shutdown(rt);
  const qn_stats *st = qn_runtime_stats(rt);
  CHECK(st->live_blocks == 0, "%llu core block(s) left after shutdown (mode %d, fail_at %ld)",
        (unsigned long long)st->live_blocks, mode, fail_at);
  qn_runtime_free(rt);
}

static void run_fetch(fetch *F, int mode, long fail_at, int stop_after_head) {
  run_fetches(F, 1, mode, fail_at, stop_after_head);
}

static void test_good(void) {
  fetch F;
  run_fetch(&F, MODE_GOOD, 0, 0);
  CHECK(F.done && F.errors == 0, "done %d errors %d", F.done, F.errors);
  CHECK(F.result == 0, "result %d", F.result);
  CHECK(strncmp(F.head, "HTTP/1.1 200 OK\r\n", 17) == 0, "head: %s", F.head);
  CHECK(strstr(F.head, "X-Case: good\r\n") != NULL, "head: %s", F.head);
  CHECK(F.body_len == 5 && memcmp(F.body, "hello", 5) == 0, "body: %.*s", (int)F.body_len, F.body);
}

static void test_malformed(void) {
  static const struct { int mode; const char *name; int want; } cases[] = {
    { MODE_NOT_HTTP, "not HTTP", -1 },
    { MODE_BAD_STATUS, "a bad status line", -1 },
    { MODE_SHORT_BODY, "a body cut short", CURLE_PARTIAL_FILE },
    { MODE_BAD_CHUNK, "a bad chunk size", -1 },
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    fetch F;
    run_fetch(&F, cases[i].mode, 0, 0);
    CHECK(F.done && F.errors == 0, "%s: done %d errors %d", cases[i].name, F.done, F.errors);
    CHECK(F.result > 0, "%s: result %d (an error expected)", cases[i].name, F.result);
    if (cases[i].want > 0)
      CHECK(F.result == cases[i].want, "%s: result %d, not %d", cases[i].name, F.result, cases[i].want);
    /* a reply that is not HTTP delivers no body as if it were one */
    if (cases[i].mode == MODE_NOT_HTTP || cases[i].mode == MODE_BAD_STATUS)
      CHECK(F.body_len == 0, "%s: %zu body bytes delivered", cases[i].name, F.body_len);
    /* a cut body delivers what came, never more */
    if (cases[i].mode == MODE_SHORT_BODY)
      CHECK(F.body_len <= 3, "%s: %zu body bytes", cases[i].name, F.body_len);
  }
}

static void test_stop(void) {
  atomic_store(&S.held_eof, 0);
  fetch F;
  run_fetch(&F, MODE_HOLD, 0, 1);
  CHECK(F.stopped && F.done, "stopped %d done %d", F.stopped, F.done);
  CHECK(F.result == -1, "result %d (-1: stopped)", F.result);
  CHECK(F.body_len == F.body_at_stop, "%zu bytes delivered after the stop",
        F.body_len - F.body_at_stop);
  /* its connection was closed (not pooled): the server reads EOF */
  for (int i = 0; i < 500 && !atomic_load(&S.held_eof); i++)
    nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
  CHECK(atomic_load(&S.held_eof), "the server's connection was not closed within 5 s");
}

/* An upload fed in pieces from the embedder's side: each asked for with
   QN_HTTPX_NEED, sent chunked (the size is not known up front), every
   byte in order at the server (which echoes them), the end fed as length 0. */
static void test_upload_fed(void) {
  static const char *const pieces[] = { "first piece, ", "second piece, ", "and the last", NULL };
  fetch F;
  memset(&F, 0, sizeof F);
  F.base.vt = &fetch_vt;
  F.pieces = pieces;
  atomic_store(&S.chunked, 0);
  run_prepared(&F, 1, MODE_ECHO, 0);
  static const char want[] = "first piece, second piece, and the last";
  CHECK(F.done && F.errors == 0, "done %d errors %d", F.done, F.errors);
  CHECK(F.result == 0, "result %d", F.result);
  CHECK(strncmp(F.head, "HTTP/1.1 200 OK\r\n", 17) == 0, "head: %s", F.head);
  CHECK(F.body_len == sizeof want - 1 && memcmp(F.body, want, sizeof want - 1) == 0,
        "echoed body: %.*s", (int)F.body_len, F.body);
  CHECK(atomic_load(&S.chunked), "the upload was not sent chunked");
  /* asked once for each piece and once more for the end (length 0) */
  CHECK(F.npieces_fed == 4, "%d feeds (3 pieces and the end expected)", F.npieces_fed);
  CHECK(F.needs == 4, "%d QN_HTTPX_NEED events (4 expected)", F.needs);
}

/* A 302 to /final: followed, the transfer reports only the final head and
   body (two requests reached the server); not followed, the 302 is the
   answer, with its own body (one request). */
static void test_redirect(void) {
  fetch F;
  memset(&F, 0, sizeof F);
  F.base.vt = &fetch_vt;
  F.follow = 1;
  run_prepared(&F, 1, MODE_REDIRECT, 0);
  CHECK(F.done && F.errors == 0 && F.result == 0, "followed: done %d errors %d result %d",
        F.done, F.errors, F.result);
  CHECK(strncmp(F.head, "HTTP/1.1 200 OK\r\n", 17) == 0, "followed: head: %s", F.head);
  CHECK(strstr(F.head, "X-Case: final\r\n") != NULL, "followed: head: %s", F.head);
  CHECK(strstr(F.head, "302") == NULL && strstr(F.head, "Location") == NULL,
        "followed: the redirect's head was delivered: %s", F.head);
  CHECK(F.body_len == 5 && memcmp(F.body, "final", 5) == 0, "followed: body: %.*s",
        (int)F.body_len, F.body);
  CHECK(atomic_load(&S.requests) == 2, "followed: %d requests (2 expected)",
        atomic_load(&S.requests));

  memset(&F, 0, sizeof F);
  F.base.vt = &fetch_vt;
  run_prepared(&F, 1, MODE_REDIRECT, 0);
  CHECK(F.done && F.errors == 0 && F.result == 0, "not followed: done %d errors %d result %d",
        F.done, F.errors, F.result);
  CHECK(strncmp(F.head, "HTTP/1.1 302 Found\r\n", 20) == 0, "not followed: head: %s", F.head);
  CHECK(strstr(F.head, "Location: /final\r\n") != NULL, "not followed: head: %s", F.head);
  CHECK(F.body_len == 8 && memcmp(F.body, "redirect", 8) == 0, "not followed: body: %.*s",
        (int)F.body_len, F.body);
  CHECK(atomic_load(&S.requests) == 1, "not followed: %d requests (1 expected)",
        atomic_load(&S.requests));
}

static int whole(const fetch *F) {
  return F->done && F->result == 0 && F->body_len == 5 && memcmp(F->body, "hello", 5) == 0;
}

/* Two fetches in one runtime, the k-th allocation failing: the failing
   one reports it, and the other is whole (after a failure the client is
   still usable: a fresh multi handle where libcurl gave up on the old). */
static void test_alloc_failure(void) {
  fetch F[2];
  run_fetches(F, 2, MODE_GOOD, 0, 0);
  CHECK(whole(&F[0]) && whole(&F[1]), "without failures: %d %d", whole(&F[0]), whole(&F[1]));
  long total = H.n_allocs;
  CHECK(total > 0, "no allocation counted");
  int reported = 0;
  for (long k = 1; k <= total + 1; k++) {
    run_fetches(F, 2, MODE_GOOD, k, 0);
    int bad = 0;
    for (int i = 0; i < 2; i++) {
      int failed = F[i].errors > 0 || (F[i].done && F[i].result != 0);
      CHECK(whole(&F[i]) || failed, "fail_at %ld, fetch %d: neither whole nor a reported failure",
            k, i);
      bad += failed;
    }
    /* one allocation fails: at most one fetch may (the runtime's own
       allocations fail both: no fetch starts) */
    CHECK(bad <= 1 || (F[0].errors && F[1].errors), "fail_at %ld: both fetches failed", k);
    if (H.injected && bad) reported++;
    if (getenv("HTTP_CLIENT_VERBOSE"))
      fprintf(stderr, "fail_at %ld/%ld: injected %d: [errors %d done %d result %d] "
              "[errors %d done %d result %d]\n", k, total, H.injected, F[0].errors, F[0].done,
              F[0].result, F[1].errors, F[1].done, F[1].result);
  }
  CHECK(reported > 0, "no injected failure was reported");
}

int main(void) {
  server_start();
  test_good();
  test_malformed();
  test_stop();
  test_upload_fed();
  test_redirect();
  test_alloc_failure();
  server_stop();
  if (failures) {
    fprintf(stderr, "http_client: %d failure(s)\n", failures);
    return 1;
  }
  printf("http_client: ok\n");
  return 0;
}
