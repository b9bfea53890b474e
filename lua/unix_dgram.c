/*
** Unix datagram sockets ("quench.unix.dgram"), over core/unix_dgram.c:
** quench.unix.dgram([name [, opts]]) -> socket; sock:send(data [, name]),
** sock:recv([max]) -> data, from, their `_op` forms, sock:bind(name),
** sock:connect([name]), sock:getsockname(), sock:getpeername(),
** sock:close() (also by <close> and at garbage collection). Names: a path,
** "@name" (Linux's abstract names), "" (an unnamed sender).
**
** Ownership: as quench.udp's (lua/udp.c): the userdata holds the core
** socket and releases it in __gc; a socket belongs to the runtime that
** made it.
**
** Cancel safety:
** - recv: a datagram is taken from the socket's queue only when recv
**   returns it; one handed to a dropped recv goes back to the front.
** - send: ready the moment the datagram is sent; dropped while it waits,
**   it has sent nothing (a datagram goes out once or never).
*/
#include <string.h>
#include "binding.h"

#define LQ_UDGRAM "quench.unix.dgram"

enum { MAX_DGRAM = 65536 };

typedef struct lq_udgram {
  qn_udgram *u;           /* NULL until made, and after __gc */
  uint64_t serial;
} lq_udgram;

static void check_usable(lua_State *L, lq_udgram *s, const char *fname) {
  if (s->u == NULL) luaL_error(L, "%s: attempt to use a closed socket", fname);
  lq_check_alive(L, s->serial, fname, "socket");
  if (qn_udgram_is_closed(s->u)) luaL_error(L, "%s: attempt to use a closed socket", fname);
}

static qn_udgram *check_open(lua_State *L, int idx, const char *fname) {
  lq_udgram *s = luaL_checkudata(L, idx, LQ_UDGRAM);
  check_usable(L, s, fname);
  return s->u;
}

/* A socket name at idx (as quench.unix.listen's); nil when optional. */
static const char *check_name(lua_State *L, int idx, int optional) {
  if (optional && lua_isnoneornil(L, idx)) return NULL;
  return lq_check_unix_name(L, idx);
}

/* quench.unix.dgram([name [, opts]]): opts.recv_queue (datagrams kept
   before reading pauses; default 64). */
static int l_dgram(lua_State *L) {
  const char *fname = "quench.unix.dgram";
  lq_runtime *rt = lq_runtime_of(L, fname);
  const char *name = check_name(L, 1, 1);
  size_t queue = 0;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      lua_pop(L, 1);
      if (lua_type(L, -1) != LUA_TSTRING || strcmp(lua_tostring(L, -1), "recv_queue") != 0)
        luaL_argerror(L, 2, lua_pushfstring(L, "unknown option '%s'", luaL_tolstring(L, -1, NULL)));
    }
    lua_getfield(L, 2, "recv_queue");
    if (!lua_isnil(L, -1)) {
      if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1)
        luaL_argerror(L, 2, "opts.recv_queue must be a positive integer");
      queue = (size_t)lua_tointeger(L, -1);
    }
    lua_pop(L, 1);
  }
  lq_udgram *s = lua_newuserdatauv(L, sizeof *s, 0);
  s->u = NULL;
  s->serial = rt->serial;
  luaL_setmetatable(L, LQ_UDGRAM);
  int r = qn_udgram_open(rt->core, name, queue, &s->u);
  if (r != 0) return lq_push_fail(L, r);
  return 1;
}

/* ---- recv ---- */

static lua_Integer opt_max(lua_State *L, int idx) {
  lua_Integer max = luaL_optinteger(L, idx, MAX_DGRAM);
  luaL_argcheck(L, max >= 1, idx, "max must be at least 1");
  return max;
}

static int push_msg(lua_State *L, qn_udgram_msg *d, lua_Integer max) {
  if (d->err != 0) return lq_push_fail(L, d->err);
  size_t len = d->len > (size_t)max ? (size_t)max : d->len;
  lua_pushlstring(L, d->data, len);
  qn_udgram_msg_free(d);
  lua_pushlstring(L, d->from, d->fromlen);
  return 2;
}

static int closed_while_waiting(lua_State *L) { return lq_push_fail(L, UV_ECANCELED); }

static lua_Integer recv_max(lua_State *L, int op) {
  if (op == 0) return lua_tointeger(L, 2);
  return (lua_Integer)((lq_op *)lua_touserdata(L, op))->arg;
}

static void recv_check(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)c;
  if (op != 0) check_usable(L, obj, "quench.unix.dgram:recv_op");
}

static int recv_now(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)c;
  qn_udgram *u = ((lq_udgram *)obj)->u;
  if (qn_udgram_is_closed(u)) return closed_while_waiting(L);
  qn_udgram_msg d;
  if (qn_udgram_try_recv(u, &d) == 0) return push_msg(L, &d, recv_max(L, op));
  return -1;
}

static qn_future *recv_start(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)L, (void)op, (void)c;
  return qn_udgram_recv_new(((lq_udgram *)obj)->u);
}

static int recv_finish(lua_State *L, void *obj, int op, qn_future *f) {
  (void)obj;
  qn_udgram_msg d;
  if (qn_udgram_recv_take(f, &d) != 0) return closed_while_waiting(L);
  return push_msg(L, &d, recv_max(L, op));
}

static const lq_obj_kind recv_kind =
  LQ_OBJ_KIND("unix dgram recv", recv_check, recv_start, recv_finish, recv_now);
LQ_OBJ_PERFORM_K(recv_k, recv_kind)

static int l_recv(lua_State *L) {
  check_open(L, 1, "quench.unix.dgram:recv");
  lua_Integer max = opt_max(L, 2);
  lq_coro *c = lq_await_ctx(L, "quench.unix.dgram:recv");
  lua_settop(L, 1);
  lua_pushinteger(L, max);
  return lq_obj_perform(L, c, &recv_kind, lua_touserdata(L, 1), "quench.unix.dgram:recv", NULL,
                        recv_k);
}

static int l_recv_op(lua_State *L) {
  check_open(L, 1, "quench.unix.dgram:recv_op");
  lua_Integer max = opt_max(L, 2);
  lq_op *o = lq_op_new(L, &recv_kind.base, 1);
  o->arg = (uint64_t)max;
  o->obj = lua_touserdata(L, 1);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

/* ---- send ---- */

/* Push send's data and name (operands 2, 3) on top. */
static void push_send_args(lua_State *L, int op) {
  for (int i = 2; i <= 3; i++) {
    if (op == 0) lua_pushvalue(L, i);
    else lua_getiuservalue(L, op, i);
  }
}

static void send_check(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)c;
  if (op != 0) check_usable(L, obj, "quench.unix.dgram:send_op");
}

static int send_now(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)c;
  push_send_args(L, op);
  size_t len;
  const char *data = lua_tolstring(L, -2, &len);
  const char *to = lua_isnil(L, -1) ? NULL : lua_tostring(L, -1);
  int r = qn_udgram_try_send(((lq_udgram *)obj)->u, data, len, to);
  lua_pop(L, 2);
  if (r == UV_EAGAIN) return -1;
  if (r != 0) return lq_push_fail(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

static qn_future *send_start(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)c;
  push_send_args(L, op);
  size_t len;
  const char *data = lua_tolstring(L, -2, &len);
  const char *to = lua_isnil(L, -1) ? NULL : lua_tostring(L, -1);
  qn_future *f = qn_udgram_send_new(((lq_udgram *)obj)->u, data, len, to);
  lua_pop(L, 2);
  return f;
}

static int send_finish(lua_State *L, void *obj, int op, qn_future *f) {
  (void)obj, (void)op;
  int r = qn_udgram_send_status(f);
  if (r != 0) return lq_push_fail(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

static const lq_obj_kind send_kind =
  LQ_OBJ_KIND("unix dgram send", send_check, send_start, send_finish, send_now);
LQ_OBJ_PERFORM_K(send_k, send_kind)

/* sock:send(data [, name]): true, or nil, message, code. */
static int l_send(lua_State *L) {
  check_open(L, 1, "quench.unix.dgram:send");
  luaL_checklstring(L, 2, NULL);
  check_name(L, 3, 1);
  lq_coro *c = lq_await_ctx(L, "quench.unix.dgram:send");
  lua_settop(L, 3);
  return lq_obj_perform(L, c, &send_kind, lua_touserdata(L, 1), "quench.unix.dgram:send", NULL,
                        send_k);
}

static int l_send_op(lua_State *L) {
  check_open(L, 1, "quench.unix.dgram:send_op");
  luaL_checklstring(L, 2, NULL);
  check_name(L, 3, 1);
  lua_settop(L, 3);
  lq_op_new(L, &send_kind.base, 3)->obj = lua_touserdata(L, 1);
  for (int i = 1; i <= 3; i++) {
    lua_pushvalue(L, i);
    lua_setiuservalue(L, -2, i);
  }
  return 1;
}

/* ---- the rest ---- */

static int ok_or_fail(lua_State *L, int r) {
  if (r != 0) return lq_push_fail(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_bind(lua_State *L) {
  qn_udgram *u = check_open(L, 1, "quench.unix.dgram:bind");
  return ok_or_fail(L, qn_udgram_bind(u, check_name(L, 2, 0)));
}

/* connect([name]): the default destination of send, and the only sender
   recv hears; nil dissolves it. */
static int l_connect(lua_State *L) {
  qn_udgram *u = check_open(L, 1, "quench.unix.dgram:connect");
  return ok_or_fail(L, qn_udgram_connect(u, check_name(L, 2, 1)));
}

static int name_of(lua_State *L, int peer, const char *fname) {
  qn_udgram *u = check_open(L, 1, fname);
  char name[QN_UNIX_PATH_MAX + 2];
  size_t len = 0;
  int r = qn_udgram_name(u, peer, name, &len);
  if (r != 0) return lq_push_fail(L, r);
  lua_pushlstring(L, name, len);
  return 1;
}

static int l_getsockname(lua_State *L) { return name_of(L, 0, "quench.unix.dgram:getsockname"); }
static int l_getpeername(lua_State *L) { return name_of(L, 1, "quench.unix.dgram:getpeername"); }

static int l_close(lua_State *L) {
  lq_udgram *s = luaL_checkudata(L, 1, LQ_UDGRAM);
  if (s->u != NULL && lq_alive(L, s->serial)) qn_udgram_close(s->u);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_gc(lua_State *L) {
  lq_udgram *s = luaL_testudata(L, 1, LQ_UDGRAM);
  if (s == NULL) return 0;
  if (s->u != NULL) qn_udgram_release(s->u);
  s->u = NULL;
  return 0;
}

static int is_closed(lua_State *L, lq_udgram *s) {
  return s->u == NULL || !lq_alive(L, s->serial) || qn_udgram_is_closed(s->u);
}

static int l_is_closed(lua_State *L) {
  lua_pushboolean(L, is_closed(L, luaL_checkudata(L, 1, LQ_UDGRAM)));
  return 1;
}

/* The descriptor of the socket at idx (still quench's: for getsockopt
   and the like), or -1: closed, another runtime's, not a Unix datagram
   socket. For quench._fileno (lua/adopt.c). */
int lq_udgram_fileno(lua_State *L, int idx) {
  lq_udgram *s = luaL_testudata(L, idx, LQ_UDGRAM);
  return s == NULL || is_closed(L, s) ? -1 : qn_udgram_fileno(s->u);
}

static int l_tostring(lua_State *L) {
  lq_udgram *s = luaL_checkudata(L, 1, LQ_UDGRAM);
  if (is_closed(L, s)) {
    lua_pushliteral(L, "quench.unix.dgram (closed)");
    return 1;
  }
  char name[QN_UNIX_PATH_MAX + 2];
  size_t len = 0;
  if (qn_udgram_name(s->u, 0, name, &len) != 0 || len == 0) lua_pushliteral(L, "unnamed");
  else lua_pushlstring(L, name, len);
  lua_pushfstring(L, "quench.unix.dgram (%s, %d queued)", lua_tostring(L, -1),
                  (int)qn_udgram_queued(s->u));
  return 1;
}

static const luaL_Reg methods[] = {
  {"send", l_send}, {"send_op", l_send_op}, {"recv", l_recv}, {"recv_op", l_recv_op},
  {"bind", l_bind}, {"connect", l_connect}, {"getsockname", l_getsockname},
  {"getpeername", l_getpeername}, {"close", l_close}, {"is_closed", l_is_closed},
  {NULL, NULL}
};

static const luaL_Reg metamethods[] = {
  {"__close", l_close}, {"__gc", l_gc}, {"__tostring", l_tostring}, {NULL, NULL}
};

/* quench.unix.dgram; the module table is on top, with quench.unix in it
   (lq_unix_register first). */
void lq_unix_dgram_register(lua_State *L, int mod) {
  lq_class(L, mod, LQ_UDGRAM, methods, metamethods);
  lua_getfield(L, -1, "unix");
  lua_pushvalue(L, mod);
  lua_pushcclosure(L, l_dgram, 1);
  lua_setfield(L, -2, "dgram");
  lua_pop(L, 1);
}
