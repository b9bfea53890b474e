/*
** Error values: tables {kind = "cancelled", reason = r} or
** {kind = "timeout", message = m} sharing the metatable "quench.error",
** whose __tostring gives a readable line.
*/
#include <string.h>
#include "binding.h"

/* The metatable is also in the registry under this address: a lookup
   without hashing its name (errors are made on every cancellation). */
static const char error_mt_key = 0;

static void push_error(lua_State *L, const char *kind) {
  lua_createtable(L, 0, 2);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  lua_rawgetp(L, LUA_REGISTRYINDEX, &error_mt_key);
  lua_setmetatable(L, -2);
}

void lq_push_cancelled(lua_State *L, int reason) {
  reason = lua_absindex(L, reason);
  push_error(L, "cancelled");
  lua_pushvalue(L, reason);
  lua_setfield(L, -2, "reason");
}

void lq_push_timeout(lua_State *L) {
  push_error(L, "timeout");
  lua_pushliteral(L, "deadline elapsed");
  lua_setfield(L, -2, "message");
}

int lq_is_kind(lua_State *L, int idx, const char *kind) {
  idx = lua_absindex(L, idx);
  if (!lua_istable(L, idx) || !lua_getmetatable(L, idx)) return 0;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &error_mt_key);
  int ours = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  if (!ours) return 0;
  lua_getfield(L, idx, "kind");
  const char *k = lua_tostring(L, -1);
  int same = k != NULL && strcmp(k, kind) == 0;
  lua_pop(L, 1);
  return same;
}

static int l_tostring(lua_State *L) {
  lua_getfield(L, 1, "kind");
  lua_getfield(L, 1, "reason");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_getfield(L, 1, "message");
  }
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 1;
  }
  const char *detail = luaL_tolstring(L, -1, NULL);
  lua_pushfstring(L, "%s: %s", lua_tostring(L, 2), detail);
  return 1;
}

static int l_is_cancelled(lua_State *L) {
  lua_pushboolean(L, lq_is_kind(L, 1, "cancelled"));
  return 1;
}

static int l_is_timeout(lua_State *L) {
  lua_pushboolean(L, lq_is_kind(L, 1, "timeout"));
  return 1;
}

/* quench.cancelled([reason]): a Cancelled value, e.g. to raise by hand. */
static int l_cancelled_value(lua_State *L) {
  lua_settop(L, 1);
  lq_push_cancelled(L, 1);
  return 1;
}

static const luaL_Reg functions[] = {
  {"is_cancelled", l_is_cancelled}, {"is_timeout", l_is_timeout},
  {"cancelled_error", l_cancelled_value}, {NULL, NULL}
};

void lq_error_register(lua_State *L, int mod) {
  luaL_newmetatable(L, LQ_ERROR);
  lua_pushcfunction(L, l_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &error_mt_key);
  lua_pushvalue(L, mod);
  luaL_setfuncs(L, functions, 1);
}
