/*
** Cleanup helpers: quench.defer (runs at task end on every outcome, last
** first), quench.guard (a <close> value running its function once: a
** scopeguard), quench.shield (runs a function that cancellation cannot
** interrupt, so it may await async cleanup; abort still drops it).
*/
#include "binding.h"

static int l_defer(lua_State *L) {
  lq_runtime *rt = lq_runtime_of(L, "quench.defer");
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lq_coro *c = rt->running;
  if (c == NULL || c->co != L)
    return luaL_error(L, "quench.defer: must be called from a task (or a select branch)");
  if (c->closing)
    return luaL_error(L, "quench.defer: the task is already running its cleanup");
  lq_push_handle(L, rt, lq_coro_task(c));
  lq_push_extras(L, lua_gettop(L));
  if (lua_getfield(L, -1, "defers") != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "defers");
  }
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  return 0;
}

static int l_guard(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_newuserdatauv(L, 0, 1);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, LQ_GUARD);
  return 1;
}

static int guard_k(lua_State *L, int status, lua_KContext ctx) {
  (void)L; (void)status; (void)ctx;
  return 0;
}

static int l_guard_close(lua_State *L) {
  luaL_checkudata(L, 1, LQ_GUARD);
  if (lua_getiuservalue(L, 1, 1) != LUA_TFUNCTION) return 0;
  lua_pushnil(L);
  lua_setiuservalue(L, 1, 1);           /* once */
  lua_pushvalue(L, 2);                  /* the error, if the scope ended by one */
  lua_callk(L, 1, 0, 0, guard_k);       /* yieldable: a guard may wait at a normal block end */
  return 0;
}

static int l_guard_dismiss(lua_State *L) {
  luaL_checkudata(L, 1, LQ_GUARD);
  lua_pushnil(L);
  lua_setiuservalue(L, 1, 1);
  return 0;
}

static int shield_k(lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  lq_coro *c = lq_module_of(L)->rt->running;
  c->shield--;
  if (status != LUA_OK && status != LUA_YIELD) return lua_error(L);
  return lua_gettop(L);
}

static int l_shield(lua_State *L) {
  lq_coro *c = lq_await_ctx(L, "quench.shield");
  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (c->shield == LQ_SHIELD_MAX)   /* Lua's C-call limit (200) comes first */
    return luaL_error(L, "quench.shield: nested more than %d deep", LQ_SHIELD_MAX);
  c->shield++;
  int status = lua_pcallk(L, lua_gettop(L) - 1, LUA_MULTRET, 0, 0, shield_k);
  return shield_k(L, status, 0);
}

static const luaL_Reg functions[] = {
  {"defer", l_defer}, {"guard", l_guard}, {"shield", l_shield}, {NULL, NULL}
};

void lq_cleanup_register(lua_State *L, int mod) {
  luaL_newmetatable(L, LQ_GUARD);
  lua_pushcfunction(L, l_guard_close);
  lua_setfield(L, -2, "__close");
  lua_newtable(L);
  lua_pushcfunction(L, l_guard_dismiss);
  lua_setfield(L, -2, "dismiss");
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_pushvalue(L, mod);
  luaL_setfuncs(L, functions, 1);
}
