/*
** Broadcast ("quench.broadcast"): every subscriber sees every message sent
** after it subscribed; one that falls more than `capacity` messages behind
** gets nil, "lagged", n once and continues from the oldest message kept.
** The last `capacity` values live in the sender's user value 1 (a ring).
**
** User value 3 counts the open receivers (subscribe adds one; rx:close or
** the receiver's collection takes it away): send returns that count.
**
** Cancel safety: recv moves the subscriber on only when it returns a
** value, so a dropped recv loses nothing.
*/
#include "binding.h"

#define LQ_BCAST_TX "quench.broadcast"
#define LQ_BCAST_RX "quench.broadcast.receiver"

typedef struct bcast_rx {
  uint64_t next;
  int closed;
} bcast_rx;

static lua_Integer receivers_of(lua_State *L, int tx) {
  lua_getiuservalue(L, tx, 3);
  lua_Integer n = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return n;
}

static void add_receivers(lua_State *L, int tx, lua_Integer d) {
  tx = lua_absindex(L, tx);
  lua_pushinteger(L, receivers_of(L, tx) + d);
  lua_setiuservalue(L, tx, 3);
}

static qn_bcast *check_tx(lua_State *L, int idx) {
  return (qn_bcast *)luaL_checkudata(L, idx, LQ_BCAST_TX);
}

static lua_Integer capacity_of(lua_State *L, int tx) {
  lua_getiuservalue(L, tx, 2);
  lua_Integer cap = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return cap;
}

static int l_broadcast(lua_State *L) {
  lua_Integer cap = luaL_checkinteger(L, 1);
  luaL_argcheck(L, cap >= 1, 1, "capacity must be at least 1");
  qn_bcast *b = lua_newuserdatauv(L, qn_bcast_size(), 3);
  qn_bcast_init(b, (size_t)cap);
  lua_createtable(L, (int)(cap < 1024 ? cap : 1024), 0);
  lua_setiuservalue(L, -2, 1);
  lua_pushinteger(L, cap);
  lua_setiuservalue(L, -2, 2);
  lua_pushinteger(L, 0);
  lua_setiuservalue(L, -2, 3);
  luaL_setmetatable(L, LQ_BCAST_TX);
  return 1;
}

static int l_send(lua_State *L) {
  qn_bcast *b = check_tx(L, 1);
  if (lua_isnoneornil(L, 2)) return luaL_argerror(L, 2, "nil cannot be sent");
  if (qn_bcast_is_closed(b)) {
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    return 2;
  }
  lua_Integer cap = capacity_of(L, 1);
  lua_getiuservalue(L, 1, 1);
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, (lua_Integer)(qn_bcast_tail(b) % (uint64_t)cap) + 1);
  qn_bcast_send(b);
  lua_pushinteger(L, receivers_of(L, 1));   /* how many will see it (truthy even at 0) */
  return 1;
}

/* tx:receiver_count(): receivers subscribed and not closed (or collected). */
static int l_receiver_count(lua_State *L) {
  check_tx(L, 1);
  lua_pushinteger(L, receivers_of(L, 1));
  return 1;
}

static int l_close(lua_State *L) {
  qn_bcast_close(check_tx(L, 1));
  return 0;
}

static int l_subscribe(lua_State *L) {
  qn_bcast *b = check_tx(L, 1);
  bcast_rx *rx = lua_newuserdatauv(L, sizeof *rx, 1);
  rx->next = qn_bcast_tail(b);
  rx->closed = 0;
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, LQ_BCAST_RX);
  add_receivers(L, 1, 1);
  return 1;
}

/* rx:close() (also __close, __gc): it stops counting as a receiver. Only a
   count changes, so running as a finalizer is safe. */
static int l_rx_close(lua_State *L) {
  bcast_rx *rx = luaL_checkudata(L, 1, LQ_BCAST_RX);
  if (rx->closed) return 0;
  rx->closed = 1;
  if (lua_getiuservalue(L, 1, 1) == LUA_TUSERDATA) add_receivers(L, -1, -1);
  lua_pop(L, 1);
  return 0;
}

/* rx:len(): messages sent that this receiver has not received yet (at
   most the capacity: older ones are lost to it). */
static int l_rx_len(lua_State *L) {
  bcast_rx *rx = luaL_checkudata(L, 1, LQ_BCAST_RX);
  lua_getiuservalue(L, 1, 1);
  uint64_t tail = qn_bcast_tail(lua_touserdata(L, -1));
  uint64_t cap = (uint64_t)capacity_of(L, lua_gettop(L));
  uint64_t n = tail > rx->next ? tail - rx->next : 0;
  lua_pushinteger(L, (lua_Integer)(n < cap ? n : cap));
  return 1;
}

/* Take what the subscriber at rx_idx can have now: 1 or 2-3 results, or 0
   when nothing is there yet. */
static int take(lua_State *L, int rx_idx) {
  bcast_rx *rx = lua_touserdata(L, rx_idx);
  lua_getiuservalue(L, rx_idx, 1);
  int tx = lua_gettop(L);
  qn_bcast *b = lua_touserdata(L, tx);
  uint64_t seq, lagged;
  int n;
  switch (qn_bcast_try_recv(b, &rx->next, &seq, &lagged)) {
  case QN_OK:
    lua_getiuservalue(L, tx, 1);
    lua_rawgeti(L, -1, (lua_Integer)(seq % (uint64_t)capacity_of(L, tx)) + 1);
    lua_remove(L, -2);
    n = 1;
    break;
  case QN_ELAGGED:
    lua_pushnil(L);
    lua_pushliteral(L, "lagged");
    lua_pushinteger(L, (lua_Integer)lagged);
    n = 3;
    break;
  case QN_ECLOSED:
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    n = 2;
    break;
  default:
    n = 0;
  }
  lua_remove(L, tx);
  return n;
}

/* recv is one lq_obj_kind (lua/binding.h) given the receiver: the direct
   form's operand is the receiver at 1; an op keeps it in user value 1. */
static int rx_idx(lua_State *L, int op) {
  if (op == 0) return 1;
  lua_getiuservalue(L, op, 1);
  return lua_gettop(L);
}

/* take for the receiver of the wait, in place of what the op form pushed. */
static int take_for(lua_State *L, int op) {
  int rx = rx_idx(L, op);
  int n = take(L, rx);
  if (op != 0) lua_remove(L, rx);
  return n;
}

static int recv_now(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)c;
  int n = take_for(L, op);
  if (n > 0) return n;
  if (op == 0 && ((bcast_rx *)obj)->closed)
    return luaL_error(L, "quench.broadcast.receiver:recv: the receiver was closed");
  return -1;
}

static qn_future *recv_start(lua_State *L, void *obj, int op, lq_coro *c) {
  int rx = rx_idx(L, op);
  lua_getiuservalue(L, rx, 1);          /* its sender */
  qn_future *f = qn_bcast_wait_new(c->rt->core, lua_touserdata(L, -1), &((bcast_rx *)obj)->next);
  lua_settop(L, op != 0 ? rx - 1 : rx);
  return f;
}

static int recv_finish(lua_State *L, void *obj, int op, qn_future *f) {
  (void)obj, (void)f;
  return take_for(L, op);
}

static const lq_obj_kind recv_kind =
  LQ_OBJ_KIND("broadcast recv", NULL, recv_start, recv_finish, recv_now);
LQ_OBJ_PERFORM_K(recv_k, recv_kind)

static int l_recv(lua_State *L) {
  bcast_rx *rx = luaL_checkudata(L, 1, LQ_BCAST_RX);
  lq_coro *c = lq_await_ctx(L, "quench.broadcast.receiver:recv");
  lua_settop(L, 1);
  return lq_obj_perform(L, c, &recv_kind, rx, "quench.broadcast.receiver:recv", NULL, recv_k);
}

static int l_try_recv(lua_State *L) {
  luaL_checkudata(L, 1, LQ_BCAST_RX);
  int n = take(L, 1);
  if (n > 0) return n;
  lua_pushnil(L);
  lua_pushliteral(L, "empty");
  return 2;
}

static int l_recv_op(lua_State *L) {
  luaL_checkudata(L, 1, LQ_BCAST_RX);
  return lq_op_for(L, &recv_kind.base, 1);
}

static const luaL_Reg tx_methods[] = {
  {"send", l_send}, {"close", l_close}, {"subscribe", l_subscribe},
  {"receiver_count", l_receiver_count}, {NULL, NULL}
};

static const luaL_Reg rx_methods[] = {
  {"recv", l_recv}, {"try_recv", l_try_recv}, {"recv_op", l_recv_op}, {"close", l_rx_close},
  {"len", l_rx_len}, {NULL, NULL}
};

static const luaL_Reg tx_metamethods[] = { {"__close", l_close}, {NULL, NULL} };
static const luaL_Reg rx_metamethods[] = {
  {"__close", l_rx_close}, {"__gc", l_rx_close}, {NULL, NULL}
};

void lq_broadcast_register(lua_State *L, int mod) {
  lq_class(L, mod, LQ_BCAST_TX, tx_methods, tx_metamethods);
  lq_class(L, mod, LQ_BCAST_RX, rx_methods, rx_metamethods);
  lua_pushcfunction(L, l_broadcast);
  lua_setfield(L, -2, "broadcast");
}
