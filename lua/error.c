/*
** Error values: tables with a metatable per kind. A Cancelled error reads
** {kind = "cancelled", reason = r}, a Timeout {kind = "timeout", message =
** "deadline elapsed"}; kind (and the timeout's message) come from the
** metatable's __index, so making one is a bare table and a metatable:
** every abort makes one. Both metatables give a readable __tostring.
*/
#include <string.h>
#include "binding.h"

/* The two metatables, in the registry under these addresses. */
static const char cancelled_mt = 0, timeout_mt = 0;

static const void *mt_of(const char *kind) {
  return strcmp(kind, "cancelled") == 0 ? (const void *)&cancelled_mt : (const void *)&timeout_mt;
}

static void push_error(lua_State *L, const void *mt, int nfields) {
  lua_createtable(L, 0, nfields);
  lua_rawgetp(L, LUA_REGISTRYINDEX, mt);
  lua_setmetatable(L, -2);
}

void lq_push_cancelled(lua_State *L, int reason) {
  reason = lua_absindex(L, reason);
  int has_reason = !lua_isnoneornil(L, reason);
  push_error(L, &cancelled_mt, has_reason);
  if (has_reason) {
    lua_pushvalue(L, reason);
    lua_setfield(L, -2, "reason");
  }
}

/* For the keep of a new runtime (quench.run keeps it). */
void lq_push_cancelled_mt(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &cancelled_mt);
}

void lq_push_timeout(lua_State *L) {
  push_error(L, &timeout_mt, 0);
}

int lq_is_kind(lua_State *L, int idx, const char *kind) {
  if (!lua_getmetatable(L, idx)) return 0;
  lua_rawgetp(L, LUA_REGISTRYINDEX, mt_of(kind));
  int same = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
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

/* quench.timeout_error(): a new Timeout value. */
static int l_timeout_value(lua_State *L) {
  lq_push_timeout(L);
  return 1;
}

static const luaL_Reg functions[] = {
  {"is_cancelled", l_is_cancelled}, {"is_timeout", l_is_timeout},
  {"timeout_error", l_timeout_value},
  {"cancelled_error", l_cancelled_value}, {NULL, NULL}
};

/* A metatable: __index = {kind = kind [, message = message]}, __tostring,
   __name; kept in the registry at key. */
static void new_mt(lua_State *L, const void *key, const char *kind, const char *message) {
  lua_createtable(L, 0, 3);
  lua_createtable(L, 0, 2);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  if (message != NULL) {
    lua_pushstring(L, message);
    lua_setfield(L, -2, "message");
  }
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, LQ_ERROR);
  lua_setfield(L, -2, "__name");
  lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

void lq_error_register(lua_State *L, int mod) {
  new_mt(L, &cancelled_mt, "cancelled", NULL);
  new_mt(L, &timeout_mt, "timeout", "deadline elapsed");
  lua_pushvalue(L, mod);
  luaL_setfuncs(L, functions, 1);
}
