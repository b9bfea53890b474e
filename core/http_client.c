/*
** HTTP client transfers: libcurl's multi-socket API driven by the
** runtime's libuv loop (as curl's docs/examples/multi-uv.c).
**
** One multi handle per runtime (rt->http_client), made at the first
** transfer. libcurl tells which sockets to watch (CURLMOPT_SOCKETFUNCTION:
** one uv_poll_t per socket, its context kept with curl_multi_assign) and
** when to wake it (CURLMOPT_TIMERFUNCTION: one uv_timer_t); both call
** curl_multi_socket_action, after which finished transfers are collected
** (CURLMSG_DONE) and their waiters woken. libcurl's timeouts run on the
** loop's real clock, whatever the runtime's clock.
**
** A transfer buffers what it receives for its embedder: the header lines
** of the final response (1xx heads, and with redirects followed, the heads
** of the redirects, are dropped) and the body bytes. Past `high` buffered
** body bytes the write callback returns CURL_WRITEFUNC_PAUSE (libcurl
** keeps that chunk and stops reading the socket); consuming below half of
** it resumes the transfer. An upload fed by the embedder pauses the same
** way (CURL_READFUNC_PAUSE) until it is fed.
**
** Stopping a transfer that has not finished (qn_http_xfer_stop, the
** runtime's end) sets CURLOPT_FORBID_REUSE and removes it from the multi
** handle: libcurl closes its connection rather than put a half-read one
** back in its pool, and no callback of it runs afterwards.
**
** Every easy handle is on its client's list from creation, so the
** client's shutdown cleans up every one before curl_global_cleanup; the
** transfer's struct stays the embedder's to free.
*/
#include <stdio.h>
#include <string.h>
#include <curl/curl.h>
#include "internal.h"

typedef struct qn__http_client {
  qn_runtime *rt;
  CURLM *multi;
  uv_timer_t timer;
  qn__closer closer;
  qn__list xfers;           /* every transfer with an easy handle */
  qn__list socks;           /* the sockets libcurl asked to watch */
  int open_handles;         /* libuv handles not closed yet (the timer, polls) */
  int closing;
  int dead;                 /* libcurl gave up on `multi` (see client_failed) */
} client;

typedef struct sock {
  uv_poll_t poll;
  client *c;
  curl_socket_t fd;
  qn__list node;
} sock;

typedef struct xwait {
  qn_future base;
  qn_runtime *rt;
  qn_http_xfer *x;
  unsigned mask;
} xwait;

struct qn_http_xfer {
  qn_runtime *rt;
  client *c;                /* NULL once its client shut down */
  CURL *easy;
  struct curl_slist *slist;
  qn__list node;            /* c->xfers */
  xwait *waiter;
  qn_waker *waker;
  char *head;               /* the current response's header lines */
  size_t head_len, head_cap;
  char *buf;                /* body bytes: buf[off..len) */
  size_t off, len, cap, high;
  char *up;                 /* upload bytes: up[up_off..up_len) */
  size_t up_off, up_len, up_cap;
  unsigned events;          /* HEAD, NEED, DONE (DATA is computed) */
  int result;
  char errbuf[CURL_ERROR_SIZE];
  uint8_t added, feed, up_eof, recv_paused, send_paused, follow, location;
};

enum { HEAD_MAX = 256 * 1024, HIGH_DEFAULT = 64 * 1024 };

static void wake(qn_http_xfer *x) {
  qn_waker *w = x->waker;
  if (w == NULL) return;
  x->waker = NULL;
  qn_wake(w);
}

static int grow(qn_runtime *rt, char **p, size_t *cap, size_t need) {
  if (need <= *cap) return 1;
  size_t n = *cap ? *cap : 1024;
  while (n < need) n *= 2;
  char *q = qn__realloc(rt, *p, n);
  if (q == NULL) return 0;
  *p = q;
  *cap = n;
  return 1;
}

/* ---- the multi handle and the loop ---- */

static void check_done(client *c) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
    if (m->msg != CURLMSG_DONE) continue;
    qn_http_xfer *x = NULL;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
    CURLcode r = m->data.result;
    /* a finished transfer leaves the multi: its connection goes back to
       libcurl's pool, whole (m is invalid from here) */
    curl_multi_remove_handle(c->multi, x->easy);
    x->added = 0;
    x->result = (int)r;
    x->events |= QN_HTTPX_DONE;
    wake(x);
  }
}

static void client_failed(client *c, CURLMcode why);

static void on_poll(uv_poll_t *h, int status, int events) {
  sock *s = (sock *)h;
  client *c = s->c;
  int flags = 0;
  if (status < 0) flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  int running;
  CURLMcode r = curl_multi_socket_action(c->multi, s->fd, flags, &running);   /* may close s */
  check_done(c);
  if (r != CURLM_OK) client_failed(c, r);
}

static void on_timer(uv_timer_t *h) {
  client *c = qn__container_of(h, client, timer);
  int running;
  CURLMcode r = curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(c);
  if (r != CURLM_OK) client_failed(c, r);
  /* Timers run before libuv polls for I/O: a task woken here must not
     wait for that poll (as runtime.c's on_timer). */
  uv_stop(h->loop);
}

static void free_client_if_closed(client *c) {
  if (--c->open_handles == 0) qn__free(c->rt, c);
}

static void on_sock_closed(uv_handle_t *h) {
  sock *s = (sock *)h;
  client *c = s->c;
  qn__free(c->rt, s);
  free_client_if_closed(c);
}

static void close_sock(client *c, sock *s) {
  qn__list_remove(&s->node);
  if (!c->closing) curl_multi_assign(c->multi, s->fd, NULL);
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

static int on_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp) {
  (void)e;
  client *c = userp;
  sock *s = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (s) close_sock(c, s);
    return 0;
  }
  if (c->closing) return 0;
  if (s == NULL) {
    s = qn__malloc(c->rt, sizeof *s);
    if (s == NULL) return -1;                   /* libcurl fails the transfer */
    if (uv_poll_init_socket(&c->rt->loop, &s->poll, fd) != 0) {
      qn__free(c->rt, s);
      return -1;
    }
    s->c = c;
    s->fd = fd;
    qn__list_push(&c->socks, &s->node);
    c->open_handles++;
    curl_multi_assign(c->multi, fd, s);
  }
  int ev = 0;
  if (what & CURL_POLL_IN) ev |= UV_READABLE;
  if (what & CURL_POLL_OUT) ev |= UV_WRITABLE;
  uv_poll_start(&s->poll, ev, on_poll);
  return 0;
}

/* libcurl wants socket_action(TIMEOUT) in ms (-1: never); never called
   from here (its documentation forbids it), always from the loop. */
static int on_timer_set(CURLM *m, long ms, void *userp) {
  (void)m;
  client *c = userp;
  if (c->closing) return 0;
  if (ms < 0) uv_timer_stop(&c->timer);
  else uv_timer_start(&c->timer, on_timer, (uint64_t)ms, 0);
  return 0;
}

/* Take a transfer out of libcurl for good: a running one leaves the multi
   with its connection closed; its easy handle is cleaned up. */
static void detach(qn_http_xfer *x) {
  client *c = x->c;
  if (c == NULL) return;
  if (x->added) {
    curl_easy_setopt(x->easy, CURLOPT_FORBID_REUSE, 1L);   /* never pool it half-read */
    curl_multi_remove_handle(c->multi, x->easy);
    x->added = 0;
  }
  curl_easy_cleanup(x->easy);
  x->easy = NULL;
  qn__list_remove(&x->node);
  x->c = NULL;
  if (!(x->events & QN_HTTPX_DONE)) {
    x->events |= QN_HTTPX_DONE;
    x->result = -1;
  }
  wake(x);
}

static void on_timer_closed(uv_handle_t *h) {
  free_client_if_closed(qn__container_of((uv_timer_t *)h, client, timer));
}

/* The runtime ends (qn_runtime_shutdown): stop every transfer, close
   every handle; the client frees itself when the last one is closed. */
static void client_close(qn__closer *cl) {
  client *c = qn__container_of(cl, client, closer);
  c->rt->http_client = NULL;
  while (!qn__list_empty(&c->xfers))
    detach(qn__container_of(c->xfers.next, qn_http_xfer, node));
  c->closing = 1;
  curl_multi_cleanup(c->multi);                 /* closes pooled connections: REMOVEs */
  while (!qn__list_empty(&c->socks))
    close_sock(c, qn__container_of(c->socks.next, sock, node));
  uv_close((uv_handle_t *)&c->timer, on_timer_closed);
  curl_global_cleanup();                        /* balances client_get's init */
}

static client *client_get(qn_runtime *rt) {
  if (rt->http_client) return rt->http_client;
  if (rt->closed) return NULL;
  client *c = qn__calloc(rt, 1, sizeof *c);
  if (c == NULL) return NULL;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {   /* counted by libcurl */
    qn__free(rt, c);
    return NULL;
  }
  c->multi = curl_multi_init();
  if (c->multi == NULL) {
    curl_global_cleanup();
    qn__free(rt, c);
    return NULL;
  }
  c->rt = rt;
  qn__list_init(&c->xfers);
  qn__list_init(&c->socks);
  uv_timer_init(&rt->loop, &c->timer);
  c->open_handles = 1;
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer_set);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
  c->closer.close = client_close;
  qn__closer_add(rt, &c->closer);
  rt->http_client = c;
  return c;
}

/* A fresh multi handle for a client whose multi libcurl gave up on: the
   old one is cleaned up (its pooled connections closed: their REMOVEs
   close our polls; c->closing keeps them from calling back into it), the
   new one gets the same callbacks. QN_ENOMEM if none can be made. */
static int client_renew(client *c) {
  CURLM *m = curl_multi_init();
  if (m == NULL) return QN_ENOMEM;
  c->closing = 1;
  curl_multi_cleanup(c->multi);
  while (!qn__list_empty(&c->socks))
    close_sock(c, qn__container_of(c->socks.next, sock, node));
  c->closing = 0;
  uv_timer_stop(&c->timer);
  c->multi = m;
  c->dead = 0;
  curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(m, CURLMOPT_SOCKETDATA, c);
  curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, on_timer_set);
  curl_multi_setopt(m, CURLMOPT_TIMERDATA, c);
  return 0;
}

/* curl_multi_socket_action failed. The case that matters: our socket
   callback could not watch a socket (out of memory) and returned -1, after
   which libcurl marks the multi handle dead (CURLM_ABORTED_BY_CALLBACK)
   and completes none of its transfers: nothing would wake their waiters
   but a timeout. So end each running transfer here, with the error, its
   connection closed as a stop closes it, and give the client a fresh
   multi handle for the transfers to come (at the next start, if it cannot
   be made now). */
static void client_failed(client *c, CURLMcode why) {
  if (c->closing) return;
  for (qn__list *n = c->xfers.next; n != &c->xfers; n = n->next) {
    qn_http_xfer *x = qn__container_of(n, qn_http_xfer, node);
    if (!x->added) continue;
    curl_easy_setopt(x->easy, CURLOPT_FORBID_REUSE, 1L);
    curl_multi_remove_handle(c->multi, x->easy);
    x->added = 0;
    if (!(x->events & QN_HTTPX_DONE)) {
      x->result = why == CURLM_OUT_OF_MEMORY || why == CURLM_ABORTED_BY_CALLBACK
                      ? CURLE_OUT_OF_MEMORY : CURLE_ABORTED_BY_CALLBACK;
      snprintf(x->errbuf, sizeof x->errbuf,
               "the runtime could not drive the transfer (%s; out of memory watching a socket?)",
               curl_multi_strerror(why));
      x->events |= QN_HTTPX_DONE;
    }
    wake(x);
  }
  c->dead = 1;
  client_renew(c);              /* if it fails, qn_http_xfer_start tries again */
}

/* ---- a transfer's callbacks ---- */

static int is_status_line(const char *p, size_t n) {
  return n >= 5 && memcmp(p, "HTTP/", 5) == 0;
}

static int is_location(const char *p, size_t n) {
  static const char want[] = "location:";
  if (n < sizeof want - 1) return 0;
  for (size_t i = 0; i < sizeof want - 1; i++) {
    char ch = p[i];
    if (ch >= 'A' && ch <= 'Z') ch = (char)(ch - 'A' + 'a');
    if (ch != want[i]) return 0;
  }
  return 1;
}

/* Header lines, one a call, status lines included; a head ends with an
   empty line. Only the final response's head is kept (see the top). */
static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  qn_http_xfer *x = ud;
  size_t len = size * n;
  if (x->events & QN_HTTPX_HEAD) return len;    /* trailers: not kept */
  if (is_status_line(p, len)) {
    x->head_len = 0;
    x->location = 0;
  }
  if ((len == 2 && p[0] == '\r') || (len == 1 && p[0] == '\n')) {
    long code = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
      if (code < 200 && code != 101) return len;            /* 1xx: another head follows */
    if (x->follow && code >= 300 && code < 400 && x->location) return len;   /* followed */
    x->events |= QN_HTTPX_HEAD;
    wake(x);
    return len;
  }
  if (is_location(p, len)) x->location = 1;
  if (x->head_len + len > HEAD_MAX) return 0;   /* CURLE_WRITE_ERROR */
  if (!grow(x->rt, &x->head, &x->head_cap, x->head_len + len)) return 0;
  memcpy(x->head + x->head_len, p, len);
  x->head_len += len;
  return len;
}

static size_t on_write(char *p, size_t size, size_t n, void *ud) {
  qn_http_xfer *x = ud;
  size_t len = size * n;
  if (!(x->events & QN_HTTPX_HEAD)) x->events |= QN_HTTPX_HEAD;   /* body: the head is over */
  if (x->len - x->off >= x->high) {
    x->recv_paused = 1;
    return CURL_WRITEFUNC_PAUSE;                /* libcurl keeps p and stops reading */
  }
  if (x->off > 0 && x->off == x->len) x->off = x->len = 0;
  if (!grow(x->rt, &x->buf, &x->cap, x->len + len)) return 0;
  memcpy(x->buf + x->len, p, len);
  x->len += len;
  wake(x);
  return len;
}

static size_t on_read(char *dst, size_t size, size_t n, void *ud) {
  qn_http_xfer *x = ud;
  size_t room = size * n, have = x->up_len - x->up_off;
  if (have > 0) {
    size_t k = have < room ? have : room;
    memcpy(dst, x->up + x->up_off, k);
    x->up_off += k;
    if (x->up_off == x->up_len) x->up_off = x->up_len = 0;
    return k;
  }
  if (x->up_eof) return 0;
  x->send_paused = 1;
  x->events |= QN_HTTPX_NEED;
  wake(x);
  return CURL_READFUNC_PAUSE;
}

static void apply_pause(qn_http_xfer *x) {
  if (x->easy == NULL || !x->added) return;
  curl_easy_pause(x->easy, (x->recv_paused ? CURLPAUSE_RECV : 0) |
                           (x->send_paused ? CURLPAUSE_SEND : 0));
}

/* ---- the embedder's side ---- */

qn_http_xfer *qn_http_xfer_new(qn_runtime *rt) {
  client *c = client_get(rt);
  if (c == NULL) return NULL;
  qn_http_xfer *x = qn__calloc(rt, 1, sizeof *x);
  if (x == NULL) return NULL;
  x->rt = rt;
  x->easy = curl_easy_init();
  if (x->easy == NULL) {
    qn__free(rt, x);
    return NULL;
  }
  x->c = c;
  x->high = HIGH_DEFAULT;
  qn__list_push(&c->xfers, &x->node);
  CURL *e = x->easy;
  curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)x);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
#if LIBCURL_VERSION_NUM >= 0x075700
  /* a transfer stopped while its name is being resolved does not wait for
     the resolver thread (which finishes, and frees itself, on its own) */
  curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L);
#endif
  return x;
}

void *qn_http_xfer_easy(qn_http_xfer *x) { return x->easy; }

void qn_http_xfer_own_slist(qn_http_xfer *x, void *slist) {
  if (x->slist) curl_slist_free_all(x->slist);
  x->slist = slist;
}

void qn_http_xfer_use_feed(qn_http_xfer *x) {
  x->feed = 1;
  if (x->easy == NULL) return;
  curl_easy_setopt(x->easy, CURLOPT_READFUNCTION, on_read);
  curl_easy_setopt(x->easy, CURLOPT_READDATA, x);
}

void qn_http_xfer_set_follow(qn_http_xfer *x, int follow) { x->follow = follow != 0; }

void qn_http_xfer_set_high_water(qn_http_xfer *x, size_t n) {
  x->high = n ? n : 1;
  if (x->recv_paused && x->len - x->off < x->high) {
    x->recv_paused = 0;
    apply_pause(x);
  }
}

int qn_http_xfer_start(qn_http_xfer *x) {
  if (x->c == NULL || x->easy == NULL) return QN_ECLOSED;
  if (x->added || (x->events & QN_HTTPX_DONE)) return QN_EINVAL;
  if (x->c->dead && client_renew(x->c) != 0) return QN_ENOMEM;
  CURLMcode r = curl_multi_add_handle(x->c->multi, x->easy);
  if (r == CURLM_OUT_OF_MEMORY) return QN_ENOMEM;
  if (r != CURLM_OK) return QN_EINVAL;
  x->added = 1;
  return 0;
}

unsigned qn_http_xfer_events(const qn_http_xfer *x) {
  return x->events | (x->len > x->off ? QN_HTTPX_DATA : 0);
}

static int wait_poll(qn_future *f, qn_waker *wk) {
  xwait *w = (xwait *)f;
  qn_http_xfer *x = w->x;
  if (x == NULL || (qn_http_xfer_events(x) & (w->mask | QN_HTTPX_DONE))) return QN_READY;
  x->waker = wk;
  x->waiter = w;
  return QN_PENDING;
}

static void wait_drop(qn_future *f) {
  xwait *w = (xwait *)f;
  if (w->x && w->x->waiter == w) {
    w->x->waiter = NULL;
    w->x->waker = NULL;
  }
  qn__free(w->rt, w);
}

static const qn_future_vt wait_vt = { wait_poll, wait_drop };

qn_future *qn_http_xfer_wait_new(qn_http_xfer *x, unsigned events) {
  xwait *w = qn__malloc(x->rt, sizeof *w);
  if (w == NULL) return NULL;
  w->base.vt = &wait_vt;
  w->rt = x->rt;
  w->x = x;
  w->mask = events;
  x->waiter = w;                                /* one at a time: qn_http_xfer_waited */
  x->waker = NULL;
  return &w->base;
}

int qn_http_xfer_waited(const qn_http_xfer *x) { return x->waiter != NULL; }

const char *qn_http_xfer_head(const qn_http_xfer *x, size_t *len) {
  *len = x->head_len;
  return x->head ? x->head : "";
}

const char *qn_http_xfer_peek(const qn_http_xfer *x, size_t *len) {
  *len = x->len - x->off;
  return x->buf ? x->buf + x->off : "";
}

void qn_http_xfer_consume(qn_http_xfer *x, size_t n) {
  size_t have = x->len - x->off;
  x->off += n < have ? n : have;
  if (x->off == x->len) x->off = x->len = 0;
  if (x->recv_paused && x->len - x->off <= x->high / 2) {
    if (x->off > 0) {                           /* room at the front for what comes */
      memmove(x->buf, x->buf + x->off, x->len - x->off);
      x->len -= x->off;
      x->off = 0;
    }
    x->recv_paused = 0;
    apply_pause(x);                             /* may deliver the kept chunk at once */
  }
}

int qn_http_xfer_feed(qn_http_xfer *x, const char *data, size_t len) {
  if (len == 0) {
    x->up_eof = 1;
  } else {
    if (!grow(x->rt, &x->up, &x->up_cap, x->up_len + len)) return QN_ENOMEM;
    memcpy(x->up + x->up_len, data, len);
    x->up_len += len;
  }
  x->events &= ~(unsigned)QN_HTTPX_NEED;
  if (x->send_paused) {
    x->send_paused = 0;
    apply_pause(x);
  }
  return 0;
}

int qn_http_xfer_result(const qn_http_xfer *x, const char **msg) {
  if (x->result == -1) {
    *msg = "the transfer was stopped";
  } else if (x->errbuf[0]) {
    *msg = x->errbuf;
  } else {
    *msg = curl_easy_strerror((CURLcode)x->result);
  }
  return x->result;
}

void qn_http_xfer_stop(qn_http_xfer *x) {
  detach(x);
}

void qn_http_xfer_free(qn_http_xfer *x) {
  if (x == NULL) return;
  if (x->c) {
    detach(x);
  } else if (x->easy) {
    curl_easy_cleanup(x->easy);
  }
  if (x->waiter) x->waiter->x = NULL;
  if (x->slist) curl_slist_free_all(x->slist);
  qn_runtime *rt = x->rt;
  qn__free(rt, x->head);
  qn__free(rt, x->buf);
  qn__free(rt, x->up);
  qn__free(rt, x);
}
