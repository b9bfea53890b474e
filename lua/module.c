/*
** The binding's floor: what every Lua-facing file uses to reach the module
** state and the running runtime, register a class, and report failures
** and warnings. It calls nothing above it: lua/quench.c (luaopen_quench,
** quench.run) sits on top and nothing calls back into it.
*/
#include <stdio.h>
#include "binding.h"

/* A metatable `name` whose __index holds `methods`, with `metamethods`
   (__close, __gc, __tostring...; may be NULL) in it; every function has the
   module state as upvalue. */
void lq_class(lua_State *L, int mod, const char *name, const luaL_Reg *methods,
              const luaL_Reg *metamethods) {
  luaL_newmetatable(L, name);
  lua_newtable(L);
  lua_pushvalue(L, mod);
  luaL_setfuncs(L, methods, 1);
  lua_setfield(L, -2, "__index");
  if (metamethods != NULL) {
    lua_pushvalue(L, mod);
    luaL_setfuncs(L, metamethods, 1);
  }
  lua_pop(L, 1);
}

lq_module *lq_module_of(lua_State *L) {
  return (lq_module *)lua_touserdata(L, lua_upvalueindex(1));
}

lq_runtime *lq_runtime_of(lua_State *L, const char *fname) {
  lq_runtime *rt = lq_module_of(L)->rt;
  if (rt == NULL) luaL_error(L, "%s: not inside quench.run", fname);
  return rt;
}

int lq_push_fail(lua_State *L, int err) {
  char name[64], msg[160];      /* the _r forms: an unknown code allocates nothing */
  uv_err_name_r(err, name, sizeof name);
  if (err == UV_ENOMEM)         /* the core's allocations too: say it as every other error does */
    snprintf(msg, sizeof msg, "out of memory");
  else
    uv_strerror_r(err, msg, sizeof msg);
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", name, msg);
  lua_pushstring(L, name);
  return 3;
}

int lq_alive(lua_State *L, uint64_t serial) {
  lq_runtime *rt = lq_module_of(L)->rt;
  return rt != NULL && rt->serial == serial;
}

void lq_check_alive(lua_State *L, uint64_t serial, const char *fname, const char *what) {
  if (!lq_alive(L, serial))
    luaL_error(L, "%s: the %s's runtime has ended (a %s belongs to the quench.run that made it)",
               fname, what, what);
}

/* A warning about the program (not an error of a task): opts.on_warning(msg)
   or stderr. */
void lq_warn(lq_runtime *rt, const char *msg) {
  lua_State *S = lq_scratch(rt);
  if (rt->keep_on_warning != LQ_NOKEEP) {
    lq_push_kept(S, &rt->keep, rt->keep_on_warning);
    lua_pushstring(S, msg);
    if (lua_pcall(S, 1, 0, 0) == LUA_OK) return;
    lua_pop(S, 1);
  }
  fprintf(stderr, "%s\n", msg);
  fflush(stderr);
}
