/*
** C string arguments. A Lua string may hold zero bytes; a C string ends at
** the first one, so "/bin/true\0/bin/false" would run /bin/true and an
** argument "safe\0; rm -rf /" would reach a child as "safe". Every string
** the binding hands to C as a C string (paths, hosts, argv, environment,
** signal names, flags) goes through lq_check_cstring, which refuses one
** with a zero byte, naming the function and the argument.
*/
#include <string.h>
#include "binding.h"

const char *lq_check_cstring(lua_State *L, int idx, const char *fname, const char *what) {
  int t = lua_type(L, idx);
  if (t != LUA_TSTRING && t != LUA_TNUMBER)
    luaL_error(L, "%s: %s must be a string, got %s", fname, what, luaL_typename(L, idx));
  size_t n;
  const char *s = lua_tolstring(L, idx, &n);   /* a number: converted in place, as luaL_checkstring */
  if (strlen(s) != n)
    luaL_error(L, "%s: %s contains a zero byte (a C string would end there)", fname, what);
  return s;
}

const char *lq_opt_cstring(lua_State *L, int idx, const char *fname, const char *what,
                           const char *dflt) {
  return lua_isnoneornil(L, idx) ? dflt : lq_check_cstring(L, idx, fname, what);
}
