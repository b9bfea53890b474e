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

/* changed is one lq_obj_kind (lua/binding.h) given the receiver: the
   direct form's operand is the receiver at 1; an op keeps it in user
   value 1. */
static qn_watch *watch_of(lua_State *L, int rx_idx) {
  lua_getiuservalue(L, rx_idx, 1);
  qn_watch *w = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return w;
}

/* The receiver's stack index: 1 (direct), or pushed from the op. */
static int rx_idx(lua_State *L, int op) {
  if (op == 0) return 1;
  lua_getiuservalue(L, op, 1);
  return lua_gettop(L);
}

/* The results of the receiver at rx, in place of what the op form pushed. */
static int changed_at(lua_State *L, int op, int rx) {
  int n = changed_results(L, rx);
  if (op != 0) lua_remove(L, rx);
  return n;
}

static int changed_now(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)c;
  int rx = rx_idx(L, op);
  qn_watch *w = watch_of(L, rx);
  if (qn_watch_version(w) != ((watch_rx *)obj)->seen || qn_watch_is_closed(w))
    return changed_at(L, op, rx);
  if (op != 0) lua_pop(L, 1);
  return -1;
}

static qn_future *changed_start(lua_State *L, void *obj, int op, lq_coro *c) {
  int rx = rx_idx(L, op);
  qn_future *f = qn_watch_changed_new(c->rt->core, watch_of(L, rx), ((watch_rx *)obj)->seen);
  if (op != 0) lua_pop(L, 1);
  return f;
}

static int changed_finish(lua_State *L, void *obj, int op, qn_future *f) {
  (void)obj, (void)f;
  return changed_at(L, op, rx_idx(L, op));
}

static const lq_obj_kind changed_kind =
  LQ_OBJ_KIND("watch changed", NULL, changed_start, changed_finish, changed_now);
LQ_OBJ_PERFORM_K(changed_k, changed_kind)

static int l_changed(lua_State *L) {
  watch_rx *rx = luaL_checkudata(L, 1, LQ_WATCH_RX);
  lq_coro *c = lq_await_ctx(L, "quench.watch.receiver:changed");
  lua_settop(L, 1);
  return lq_obj_perform(L, c, &changed_kind, rx, "quench.watch.receiver:changed", NULL,
                        changed_k);
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

static int l_changed_op(lua_State *L) {
  luaL_checkudata(L, 1, LQ_WATCH_RX);
  return lq_op_for(L, &changed_kind.base, 1);
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
