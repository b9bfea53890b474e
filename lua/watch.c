/*
** Watch ("quench.watch"): a cell holding the latest value; subscribers
** wait for a value newer than the last one they saw.
**
** Cancel safety: changed() marks the value seen only when it returns it,
** so a dropped changed() loses nothing: the next call sees the change.
*/
#include "binding.h"

#define LQ_WATCH "quench.watch"
#define LQ_WATCH_RX "quench.watch.receiver"

typedef struct watch_rx {
  uint64_t seen;
} watch_rx;

static qn_watch *check_tx(lua_State *L, int idx) {
  return (qn_watch *)luaL_checkudata(L, idx, LQ_WATCH);
}

static int l_watch(lua_State *L) {
  lua_settop(L, 1);
  qn_watch *w = lua_newuserdatauv(L, qn_watch_size(), 1);
  qn_watch_init(w);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, LQ_WATCH);
  return 1;
}

static int l_send(lua_State *L) {
  qn_watch *w = check_tx(L, 1);
  if (qn_watch_is_closed(w)) {
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    return 2;
  }
  lua_settop(L, 2);
  lua_setiuservalue(L, 1, 1);
  qn_watch_bump(w);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_get(lua_State *L) {
  check_tx(L, 1);
  lua_getiuservalue(L, 1, 1);
  return 1;
}

static int l_close(lua_State *L) {
  qn_watch_close(check_tx(L, 1));
  return 0;
}

static int l_subscribe(lua_State *L) {
  qn_watch *w = check_tx(L, 1);
  watch_rx *rx = lua_newuserdatauv(L, sizeof *rx, 1);
  rx->seen = qn_watch_version(w);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, LQ_WATCH_RX);
  return 1;
}

/* rx:get(): the current value, now seen. */
static int rx_get(lua_State *L, int rx_idx) {
  watch_rx *rx = lua_touserdata(L, rx_idx);
  lua_getiuservalue(L, rx_idx, 1);
  rx->seen = qn_watch_version(lua_touserdata(L, -1));
  lua_getiuservalue(L, -1, 1);
  lua_remove(L, -2);
  return 1;
}

static int l_rx_get(lua_State *L) {
  luaL_checkudata(L, 1, LQ_WATCH_RX);
  return rx_get(L, 1);
}

/* After a change: the new value; after close with nothing new: nil, "closed". */
static int changed_results(lua_State *L, int rx_idx) {
  watch_rx *rx = lua_touserdata(L, rx_idx);
  lua_getiuservalue(L, rx_idx, 1);
  qn_watch *w = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (qn_watch_version(w) == rx->seen) {
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    return 2;
  }
  return rx_get(L, rx_idx);
}

static int changed_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  LQ_RESUMED(L, ctx, changed_k);
  qn_drop(lq_take_op(L));
  return changed_results(L, 1);
}

static int l_changed(lua_State *L) {
  watch_rx *rx = luaL_checkudata(L, 1, LQ_WATCH_RX);
  lq_coro *c = lq_await_ctx(L, "quench.watch.receiver:changed");
  lua_settop(L, 1);
  lq_check_cancel(L, c);
  lua_getiuservalue(L, 1, 1);
  qn_watch *w = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (qn_watch_version(w) != rx->seen || qn_watch_is_closed(w)) return changed_results(L, 1);
  qn_future *f = qn_watch_changed_new(c->rt->core, w, rx->seen);
  if (f == NULL) return luaL_error(L, "quench.watch.receiver:changed: out of memory");
  c->what = "watch changed";
  return lq_await(L, c, f, changed_k, 0);
}

/* rx:mark_changed(): the current value counts as unseen. */
static int l_mark_changed(lua_State *L) {
  watch_rx *rx = luaL_checkudata(L, 1, LQ_WATCH_RX);
  lua_getiuservalue(L, 1, 1);
  rx->seen = qn_watch_version(lua_touserdata(L, -1)) - 1;   /* wraps at 0: still differs */
  return 0;
}

/* rx:mark_unchanged(): the current value counts as seen. */
static int l_mark_unchanged(lua_State *L) {
  watch_rx *rx = luaL_checkudata(L, 1, LQ_WATCH_RX);
  lua_getiuservalue(L, 1, 1);
  rx->seen = qn_watch_version(lua_touserdata(L, -1));
  return 0;
}

static int l_is_closed(lua_State *L) {
  lua_pushboolean(L, qn_watch_is_closed(check_tx(L, 1)));
  return 1;
}

static int l_has_changed(lua_State *L) {
  watch_rx *rx = luaL_checkudata(L, 1, LQ_WATCH_RX);
  lua_getiuservalue(L, 1, 1);
  lua_pushboolean(L, qn_watch_version(lua_touserdata(L, -1)) != rx->seen);
  return 1;
}

static qn_future *changed_start(lua_State *L, int op, lq_coro *c) {
  lua_getiuservalue(L, op, 1);
  watch_rx *rx = lua_touserdata(L, -1);
  lua_getiuservalue(L, -1, 1);
  qn_future *f = qn_watch_changed_new(c->rt->core, lua_touserdata(L, -1), rx->seen);
  lua_pop(L, 2);
  return f;
}

static int changed_finish(lua_State *L, int op, qn_future *f) {
  (void)f;
  lua_getiuservalue(L, op, 1);
  int rx = lua_gettop(L);
  int n = changed_results(L, rx);
  lua_remove(L, rx);
  return n;
}

static const lq_op_kind changed_kind = { "watch changed", NULL, changed_start, changed_finish, NULL };

static int l_changed_op(lua_State *L) {
  luaL_checkudata(L, 1, LQ_WATCH_RX);
  return lq_op_for(L, &changed_kind, 1);
}

static const luaL_Reg tx_methods[] = {
  {"send", l_send}, {"get", l_get}, {"close", l_close}, {"subscribe", l_subscribe},
  {"is_closed", l_is_closed}, {NULL, NULL}
};

static const luaL_Reg rx_methods[] = {
  {"get", l_rx_get}, {"changed", l_changed}, {"changed_op", l_changed_op},
  {"has_changed", l_has_changed}, {"mark_changed", l_mark_changed},
  {"mark_unchanged", l_mark_unchanged}, {NULL, NULL}
};

static const luaL_Reg tx_metamethods[] = { {"__close", l_close}, {NULL, NULL} };

void lq_watch_register(lua_State *L, int mod) {
  lq_class(L, mod, LQ_WATCH, tx_methods, tx_metamethods);
  lq_class(L, mod, LQ_WATCH_RX, rx_methods, NULL);
  lua_pushcfunction(L, l_watch);
  lua_setfield(L, -2, "watch");
}
