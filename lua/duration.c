/*
** Durations and deadlines given as arguments: seconds (a Lua number) to the
** clock's nanoseconds, for every function that waits for a time (sleep,
** timeout, deadline, sleep_op, stop's grace, a server's timeouts). A floor
** file: it calls no other binding file.
*/
#include <math.h>
#include "binding.h"

/* Seconds (a Lua number) to nanoseconds, rounded up so a sleep never ends
   early. Negative is zero. The clock counts nanoseconds in 64 bits (584
   years from the runtime's start): a duration it cannot count, math.huge
   among them, is QN_NEVER, which no deadline computed from it reaches
   either (lq_deadline_after and the core saturate to QN_NEVER), so the
   wait lasts for ever rather than end early. */
uint64_t lq_check_seconds(lua_State *L, int idx) {
  if (lua_isinteger(L, idx)) {             /* whole seconds: no float work */
    lua_Integer i = lua_tointeger(L, idx);
    if (i <= 0) return 0;
    return (uint64_t)i > QN_NEVER / 1000000000u ? QN_NEVER : (uint64_t)i * 1000000000u;
  }
  /* a float (or a numeric string) is converted as one: lua_tointegerx of
     a float such as 5.0 (a timeout of 5000 ms / 1000) costs three times
     lua_isinteger and lua_tonumberx together */
  int isnum;
  lua_Number s = lua_tonumberx(L, idx, &isnum);
  if (!isnum) s = luaL_checknumber(L, idx);
  if (isnan(s)) luaL_argerror(L, idx, "number expected, got NaN");
  if (s <= 0) return 0;
  lua_Number x = s * 1e9;
  if (x >= 18446744073709551616.0) return QN_NEVER;   /* 2^64 */
  uint64_t ns = (uint64_t)x;                           /* rounded up: ceil without libm */
  return (lua_Number)ns < x ? ns + 1 : ns;
}

/* A duration that must not be negative (advance, stop's grace): negative
   or NaN is a mistake to name, not zero. */
uint64_t lq_check_duration(lua_State *L, int idx) {
  lua_Number s = luaL_checknumber(L, idx);
  if (!(s >= 0))
    luaL_argerror(L, idx, lua_pushfstring(L, "seconds must be >= 0, got %s",
                                          luaL_tolstring(L, idx, NULL)));
  return lq_check_seconds(L, idx);
}

uint64_t lq_deadline_after(lq_runtime *rt, uint64_t ns) {
  uint64_t now = qn_now(rt->core);
  return ns >= QN_NEVER - now ? QN_NEVER : now + ns;
}
