/*
** UDP sockets ("quench.udp"): quench.udp.bind(host, port [, opts]) ->
** socket; sock:send(data, host, port), sock:recv([max]) -> data, host,
** port, their `_op` forms, sock:getsockname(), sock:close() (also by
** <close> and at garbage collection).
**
** Ownership: as TCP streams (lua/tcp.c). The userdata holds the core
** socket and releases (closes) it in __gc; it is built closed before the
** core object exists. A socket belongs to the runtime that made it
** (`serial`): once that runtime has ended (its shutdown closed the handle)
** every method but close raises.
**
** Addresses: bind resolves a host name at once (as quench.tcp.listen);
** send takes a numeric address or "localhost" (resolve a name once with
** quench.dns.getaddrinfo rather than per datagram).
**
** Cancel safety:
** - recv: a datagram is taken from the socket's queue only when recv
**   returns it; a dropped recv (select loser, timeout, abort) loses none,
**   and one already handed to it goes back to the front of the queue.
** - send: a datagram goes out whole or not at all, never twice; a send
**   dropped while it waits for the socket may still go out.
*/
#include <stdlib.h>
#include <string.h>
#include "binding.h"

#define LQ_UDP "quench.udp"

enum { MAX_DGRAM = 65536 };

typedef struct lq_udp {
  qn_udp *u;              /* NULL until made, and after __gc */
  uint64_t serial;        /* of its runtime */
} lq_udp;

static void check_usable(lua_State *L, lq_udp *s, const char *fname) {
  if (s->u == NULL) luaL_error(L, "%s: attempt to use a closed socket", fname);
  lq_check_alive(L, s->serial, fname, "socket");
  if (qn_udp_is_closed(s->u)) luaL_error(L, "%s: attempt to use a closed socket", fname);
}

static qn_udp *check_open(lua_State *L, int idx, const char *fname) {
  lq_udp *s = luaL_checkudata(L, idx, LQ_UDP);
  check_usable(L, s, fname);
  return s->u;
}

static int check_port(lua_State *L, int idx) {
  lua_Integer port = luaL_checkinteger(L, idx);
  luaL_argcheck(L, port >= 0 && port <= 65535, idx, "port must be in 0..65535");
  return (int)port;
}

/* host ("localhost" or a numeric IPv4 or IPv6 address) and port to an
   address: 0 or a libuv error. */
static int to_addr(lua_State *L, int host_idx, int port_idx, struct sockaddr_storage *ss,
                   const char *fname) {
  const char *host = lq_check_cstring(L, host_idx, fname, "argument #2 (host)");
  int port = check_port(L, port_idx);
  if (strcmp(host, "localhost") == 0) host = "127.0.0.1";
  return qn_addr_numeric(host, port, ss);
}

static int bad_host(lua_State *L, int host_idx) {
  lua_pushnil(L);
  lua_pushfstring(L, "EINVAL: '%s' is not a numeric IP address (resolve it first, e.g. with "
                     "quench.dns.getaddrinfo)", lua_tostring(L, host_idx));
  lua_pushliteral(L, "EINVAL");
  return 3;
}

static void push_addr(lua_State *L, const struct sockaddr_storage *ss) {
  char name[64] = "";
  int port = 0;
  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
    uv_ip6_name(a, name, sizeof name);
    port = ntohs(a->sin6_port);
  } else if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    uv_ip4_name(a, name, sizeof name);
    port = ntohs(a->sin_port);
  }
  lua_pushstring(L, name);
  lua_pushinteger(L, port);
}

/* ---- bind ---- */

static size_t opt_queue(lua_State *L, int opts) {
  if (lua_isnoneornil(L, opts)) return 0;
  lua_getfield(L, opts, "recv_queue");
  size_t q = 0;
  if (!lua_isnil(L, -1)) {
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1)
      luaL_argerror(L, opts, "opts.recv_queue must be a positive integer");
    q = (size_t)lua_tointeger(L, -1);
  }
  lua_pop(L, 1);
  return q;
}

static int opt_flag(lua_State *L, int opts, const char *name) {
  if (lua_isnoneornil(L, opts)) return 0;
  lua_getfield(L, opts, name);
  int on = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return on;
}

/* quench.udp.bind(host, port [, opts]): host nil or "*": every IPv4
   address; opts.reuseaddr, opts.ipv6only, opts.recv_queue (datagrams kept
   before reading pauses; default 64). */
static int l_bind(lua_State *L) {
  lq_runtime *rt = lq_runtime_of(L, "quench.udp.bind");
  const char *host = lq_opt_cstring(L, 1, "quench.udp.bind", "argument #1 (host)", "*");
  if (strcmp(host, "*") == 0) host = "0.0.0.0";
  int port = check_port(L, 2);
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  struct sockaddr_storage ss;
  int r = qn_addr_for_bind(rt->core, host, port, SOCK_DGRAM, &ss);
  if (r != 0) return lq_push_fail(L, r);
  size_t queue = opt_queue(L, 3);
  unsigned flags = 0;
  if (opt_flag(L, 3, "reuseaddr")) flags |= UV_UDP_REUSEADDR;
  if (opt_flag(L, 3, "ipv6only")) flags |= UV_UDP_IPV6ONLY;
  lq_udp *s = lua_newuserdatauv(L, sizeof *s, 0);
  s->u = NULL;                          /* safe before anything can fail */
  s->serial = rt->serial;
  luaL_setmetatable(L, LQ_UDP);
  r = qn_udp_bind(rt->core, (const struct sockaddr *)&ss, flags, queue, &s->u);
  if (r != 0) return lq_push_fail(L, r);
  return 1;
}

/* ---- recv ---- */

static lua_Integer opt_max(lua_State *L, int idx) {
  lua_Integer max = luaL_optinteger(L, idx, MAX_DGRAM);
  luaL_argcheck(L, max >= 1, idx, "max must be at least 1");
  return max;
}

/* Push the results of a taken datagram and free it. */
static int push_dgram(lua_State *L, qn_udp_dgram *d, lua_Integer max) {
  if (d->err != 0) return lq_push_fail(L, d->err);
  size_t len = d->len > (size_t)max ? (size_t)max : d->len;
  lua_pushlstring(L, d->data, len);
  qn_udp_dgram_free(d);
  push_addr(L, &d->from);
  return 3;
}

/* Another task closed the socket while this one waited. */
static int closed_while_waiting(lua_State *L) { return lq_push_fail(L, UV_ECANCELED); }

static int recv_results(lua_State *L, qn_future *f, lua_Integer max) {
  qn_udp_dgram d;
  if (qn_udp_recv_take(f, &d) != 0) return closed_while_waiting(L);
  return push_dgram(L, &d, max);
}

/* recv and send are each one lq_obj_kind (lua/binding.h) given the
   socket's userdata: the direct form's operands are the socket at 1 and
   recv's max, or send's data, host and port at 2..4; an op keeps them in
   its user values 1..4 (recv's max in its arg). */

static lua_Integer recv_max(lua_State *L, int op) {
  if (op == 0) return lua_tointeger(L, 2);
  return (lua_Integer)((lq_op *)lua_touserdata(L, op))->arg;
}

static void recv_check(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)c;
  if (op != 0) check_usable(L, obj, "quench.udp:recv_op");
}

/* A datagram queued now, or the socket closed (while this task waited
   for its turn: the method checked it was open). */
static int recv_now(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)c;
  qn_udp *u = ((lq_udp *)obj)->u;
  if (qn_udp_is_closed(u)) return closed_while_waiting(L);
  qn_udp_dgram d;
  if (qn_udp_try_recv(u, &d) == 0) return push_dgram(L, &d, recv_max(L, op));
  return -1;
}

static qn_future *recv_start(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)L, (void)op, (void)c;
  return qn_udp_recv_new(((lq_udp *)obj)->u);
}

static int recv_finish(lua_State *L, void *obj, int op, qn_future *f) {
  (void)obj;
  return recv_results(L, f, recv_max(L, op));
}

static const lq_obj_kind recv_kind =
  LQ_OBJ_KIND("udp recv", recv_check, recv_start, recv_finish, recv_now);
LQ_OBJ_PERFORM_K(recv_k, recv_kind)

static int l_recv(lua_State *L) {
  check_open(L, 1, "quench.udp:recv");
  lua_Integer max = opt_max(L, 2);
  lq_coro *c = lq_await_ctx(L, "quench.udp:recv");
  lua_settop(L, 1);
  lua_pushinteger(L, max);
  return lq_obj_perform(L, c, &recv_kind, lua_touserdata(L, 1), "quench.udp:recv", NULL, recv_k);
}

static int l_recv_op(lua_State *L) {
  check_open(L, 1, "quench.udp:recv_op");
  lua_Integer max = opt_max(L, 2);
  lq_op *o = lq_op_new(L, &recv_kind.base, 1);
  o->arg = (uint64_t)max;
  o->obj = lua_touserdata(L, 1);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

/* ---- send ---- */

static int send_results(lua_State *L, qn_future *f) {
  int r = qn_udp_send_status(f);
  if (r != 0) return lq_push_fail(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

/* Push send's data, host and port (operands 2..4) on top. */
static void push_send_args(lua_State *L, int op) {
  for (int i = 2; i <= 4; i++) {
    if (op == 0) lua_pushvalue(L, i);
    else lua_getiuservalue(L, op, i);
  }
}

static void send_check(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)c;
  if (op != 0) check_usable(L, obj, "quench.udp:send_op");
}

/* Sent now (or failed), or -1 while the socket's send queue is full. */
static int send_now(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)c;
  push_send_args(L, op);
  struct sockaddr_storage ss;
  to_addr(L, -2, -1, &ss, "quench.udp:send");   /* checked when the call or op was made */
  size_t len;
  const char *data = lua_tolstring(L, -3, &len);
  int r = qn_udp_try_send(((lq_udp *)obj)->u, data, len, (const struct sockaddr *)&ss);
  lua_pop(L, 3);
  if (r == UV_EAGAIN) return -1;
  if (r != 0) return lq_push_fail(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

static qn_future *send_start(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)c;
  push_send_args(L, op);
  struct sockaddr_storage ss;
  to_addr(L, -2, -1, &ss, "quench.udp:send");
  size_t len;
  const char *data = lua_tolstring(L, -3, &len);
  qn_future *f = qn_udp_send_new(((lq_udp *)obj)->u, data, len, (const struct sockaddr *)&ss);
  lua_pop(L, 3);
  return f;
}

static int send_finish(lua_State *L, void *obj, int op, qn_future *f) {
  (void)obj, (void)op;
  return send_results(L, f);
}

static const lq_obj_kind send_kind =
  LQ_OBJ_KIND("udp send", send_check, send_start, send_finish, send_now);
LQ_OBJ_PERFORM_K(send_k, send_kind)

/* sock:send(data, host, port): true, or nil, message, code. */
static int l_send(lua_State *L) {
  check_open(L, 1, "quench.udp:send");
  luaL_checklstring(L, 2, NULL);
  struct sockaddr_storage ss;
  if (to_addr(L, 3, 4, &ss, "quench.udp:send") != 0) return bad_host(L, 3);
  lq_coro *c = lq_await_ctx(L, "quench.udp:send");
  lua_settop(L, 4);
  return lq_obj_perform(L, c, &send_kind, lua_touserdata(L, 1), "quench.udp:send", NULL, send_k);
}

static int l_send_op(lua_State *L) {
  check_open(L, 1, "quench.udp:send_op");
  luaL_checkstring(L, 2);
  struct sockaddr_storage ss;
  if (to_addr(L, 3, 4, &ss, "quench.udp:send_op") != 0) return bad_host(L, 3);
  lq_op_new(L, &send_kind.base, 4)->obj = lua_touserdata(L, 1);
  for (int i = 1; i <= 4; i++) {
    lua_pushvalue(L, i);
    lua_setiuservalue(L, -2, i);
  }
  return 1;
}

/* ---- the rest ---- */

static int l_getsockname(lua_State *L) {
  qn_udp *u = check_open(L, 1, "quench.udp:getsockname");
  struct sockaddr_storage ss;
  int r = qn_udp_getsockname(u, &ss);
  if (r != 0) return lq_push_fail(L, r);
  push_addr(L, &ss);
  return 2;
}

/* close(): idempotent; waiting receives return nil, "ECANCELED: ...", "ECANCELED". */
static int l_close(lua_State *L) {
  lq_udp *s = luaL_checkudata(L, 1, LQ_UDP);
  if (s->u != NULL && lq_alive(L, s->serial)) qn_udp_close(s->u);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_gc(lua_State *L) {
  lq_udp *s = luaL_testudata(L, 1, LQ_UDP);   /* __gc may be called by hand */
  if (s == NULL) return 0;
  if (s->u != NULL) qn_udp_release(s->u);
  s->u = NULL;
  return 0;
}

static int is_closed(lua_State *L, lq_udp *s) {
  return s->u == NULL || !lq_alive(L, s->serial) || qn_udp_is_closed(s->u);
}

static int l_is_closed(lua_State *L) {
  lua_pushboolean(L, is_closed(L, luaL_checkudata(L, 1, LQ_UDP)));
  return 1;
}

int lq_udp_fileno(lua_State *L, int idx) {
  lq_udp *s = luaL_testudata(L, idx, LQ_UDP);
  return s == NULL || is_closed(L, s) ? -1 : qn_udp_fileno(s->u);
}

static int l_tostring(lua_State *L) {
  lq_udp *s = luaL_checkudata(L, 1, LQ_UDP);
  if (is_closed(L, s)) {
    lua_pushliteral(L, "quench.udp (closed)");
    return 1;
  }
  struct sockaddr_storage ss;
  if (qn_udp_getsockname(s->u, &ss) != 0) {
    lua_pushliteral(L, "quench.udp");
    return 1;
  }
  push_addr(L, &ss);
  lua_pushfstring(L, "quench.udp (%s:%d, %d queued)", lua_tostring(L, -2),
                  (int)lua_tointeger(L, -1), (int)qn_udp_queued(s->u));
  return 1;
}

static const luaL_Reg methods[] = {
  {"send", l_send}, {"send_op", l_send_op}, {"recv", l_recv}, {"recv_op", l_recv_op},
  {"getsockname", l_getsockname}, {"close", l_close}, {"is_closed", l_is_closed},
  {NULL, NULL}
};

static const luaL_Reg metamethods[] = {
  {"__close", l_close}, {"__gc", l_gc}, {"__tostring", l_tostring}, {NULL, NULL}
};

void lq_udp_register(lua_State *L, int mod) {
  lq_class(L, mod, LQ_UDP, methods, metamethods);
  lua_newtable(L);                      /* quench.udp */
  lua_pushvalue(L, mod);
  lua_pushcclosure(L, l_bind, 1);
  lua_setfield(L, -2, "bind");
  lua_setfield(L, -2, "udp");
}
