/*
** Name resolution: a future over uv_getaddrinfo (libuv's thread pool).
** Submitted at the first poll. Dropped while in flight: uv_cancel (it wins
** only if the lookup has not started) and the future stays a zombie until
** the callback, which comes in every case and frees the result and the
** future. The result list is owned by the future and freed by its drop.
** Also the addresses needed at once: a numeric host, and the address to
** bind to (TCP listeners and UDP sockets resolve it synchronously).
*/
#include <stdio.h>
#include <string.h>
#include "internal.h"

enum { NEW, RUNNING, DONE };

typedef struct dns_future {
  qn_future base;
  uv_getaddrinfo_t req;
  qn_runtime *rt;
  uv_loop_t *loop;
  qn_waker *waker;
  char *node, *service;
  struct addrinfo hints;
  struct addrinfo *res;
  int status;           /* once DONE: 0 or a uv error code (UV_EAI_*) */
  uint8_t state, zombie, has_hints;
} dns_future;

static void destroy(dns_future *d) {
  if (d->res) uv_freeaddrinfo(d->res);
  qn__free(d->rt, d->node);
  qn__free(d->rt, d->service);
  qn__free(d->rt, d);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  dns_future *d = qn__container_of(req, dns_future, req);
  d->res = res;
  d->status = status;
  d->state = DONE;
  if (d->zombie) {
    destroy(d);
    return;
  }
  if (d->waker) qn_wake(d->waker);
}

static int dns_poll(qn_future *f, qn_waker *wk) {
  dns_future *d = (dns_future *)f;
  d->waker = wk;
  if (d->state == NEW) {
    int r = uv_getaddrinfo(d->loop, &d->req, on_resolved, d->node, d->service,
                           d->has_hints ? &d->hints : NULL);
    if (r != 0) {
      d->status = r;
      d->state = DONE;
      return QN_READY;
    }
    d->state = RUNNING;
  }
  return d->state == DONE ? QN_READY : QN_PENDING;
}

static void dns_drop(qn_future *f) {
  dns_future *d = (dns_future *)f;
  if (d->state != RUNNING) {
    destroy(d);
    return;
  }
  d->zombie = 1;
  d->waker = NULL;
  uv_cancel((uv_req_t *)&d->req);
}

static const qn_future_vt dns_vt = { dns_poll, dns_drop };

static int dup_opt(qn_runtime *rt, char **dst, const char *s) {
  if (s == NULL) return 1;
  size_t n = strlen(s) + 1;
  if ((*dst = qn__malloc(rt, n)) == NULL) return 0;
  memcpy(*dst, s, n);
  return 1;
}

qn_future *qn_getaddrinfo_new(qn_runtime *rt, const char *node, const char *service,
                              const struct addrinfo *hints) {
  dns_future *d = qn__calloc(rt, 1, sizeof *d);
  if (d == NULL) return NULL;
  d->base.vt = &dns_vt;
  d->rt = rt;
  d->loop = qn_runtime_loop(rt);
  if (!dup_opt(rt, &d->node, node) || !dup_opt(rt, &d->service, service)) {
    destroy(d);
    return NULL;
  }
  if (hints) {
    d->hints.ai_flags = hints->ai_flags;
    d->hints.ai_family = hints->ai_family;
    d->hints.ai_socktype = hints->ai_socktype;
    d->hints.ai_protocol = hints->ai_protocol;
    d->has_hints = 1;
  }
  return &d->base;
}

int qn_getaddrinfo_result(const qn_future *f, const struct addrinfo **res) {
  const dns_future *d = (const dns_future *)f;
  if (res) *res = d->res;
  return d->status;
}

/* ---- addresses now ---- */

int qn_addr_numeric(const char *host, int port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0) return 0;
  memset(ss, 0, sizeof *ss);
  if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0) return 0;
  return UV_EINVAL;
}

void qn__addr_query(int port, int socktype, int flags, char service[16],
                    struct addrinfo *hints) {
  snprintf(service, 16, "%d", port);
  memset(hints, 0, sizeof *hints);
  hints->ai_family = AF_UNSPEC;
  hints->ai_socktype = socktype;
  hints->ai_flags = flags;
}

int qn_addr_for_bind(qn_runtime *rt, const char *host, int port, int socktype,
                     struct sockaddr_storage *ss) {
  if (qn_addr_numeric(host, port, ss) == 0) return 0;
  char service[16];
  struct addrinfo hints;
  qn__addr_query(port, socktype, AI_PASSIVE, service, &hints);
  uv_getaddrinfo_t req;
  int r = uv_getaddrinfo(&rt->loop, &req, NULL, host, service, &hints);   /* no callback: synchronous */
  if (r != 0) return r;
  r = UV_EAI_NONAME;
  for (const struct addrinfo *a = req.addrinfo; a != NULL; a = a->ai_next) {
    if (a->ai_family != AF_INET && a->ai_family != AF_INET6) continue;
    memset(ss, 0, sizeof *ss);
    memcpy(ss, a->ai_addr, a->ai_addrlen);
    r = 0;
    break;
  }
  uv_freeaddrinfo(req.addrinfo);
  return r;
}
