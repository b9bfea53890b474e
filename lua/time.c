/* Time: quench.sleep, quench.sleep_op, quench.now, quench.advance, and quench.yield. */
#include <math.h>
#include "binding.h"

static int yield_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  LQ_RESUMED(L, ctx, yield_k);
  lq_resume_error(L, lq_module_of(L)->rt->running);
  return 0;
}

static int do_yield(lua_State *L, lq_coro *c) {
  c->suspend = LQ_SUSPEND_YIELD;
  return lq_suspend(L, c, 0, yield_k);
}

/* sleep and sleep_until are each one lq_op_kind (lua/binding.h) for the
   direct and op forms. The kind's parameter is a duration (sleep) or a
   time (sleep_until) in ns: the op's arg, or, for the direct form, the
   integer it leaves at stack index 1. A sleep that could not arm its
   timer is ready at once: finish says so, rather than return early (or
   win a select early). */
static uint64_t time_arg(lua_State *L, int op) {
  if (op != 0) return ((lq_op *)lua_touserdata(L, op))->arg;
  return (uint64_t)lua_tointeger(L, 1);
}

static qn_future *sleep_start(lua_State *L, int op, lq_coro *c) {
  uint64_t ns = time_arg(L, op);
  /* the direct form's deadline is taken now, the op's when it is polled
     first (an op may be made long before it is awaited) */
  if (op == 0) return qn_sleep_new(c->rt->core, lq_deadline_after(c->rt, ns));
  return qn_sleep_after_new(c->rt->core, ns);
}

static int sleep_finish(lua_State *L, int op, qn_future *f) {
  if (!qn_sleep_failed(f)) return 0;
  if (op == 0) lua_pushliteral(L, "quench.sleep: out of memory (cannot arm a timer)");
  else lua_pushliteral(L, "quench.sleep_op: out of memory (cannot arm a timer)");
  return -1;
}

static const lq_op_kind sleep_kind = { "sleep", NULL, sleep_start, sleep_finish, NULL };

/* quench.sleep(s): s <= 0 lets the others run once, like quench.yield
   (sleep_op(0) is ready at once instead: in a select it must not give
   way to the other branches' tasks). */
static int l_sleep(lua_State *L) {
  lq_coro *c = lq_await_ctx(L, "quench.sleep");
  uint64_t ns = lq_check_seconds(L, 1);
  if (ns == 0) {
    lq_check_cancel(L, c);
    return do_yield(L, c);
  }
  lua_settop(L, 0);
  lua_pushinteger(L, (lua_Integer)ns);  /* the operand sleep_start reads */
  return lq_perform(L, c, &sleep_kind, 0, "quench.sleep", NULL);
}

/* quench.sleep_op(s): the op of sleep; s is counted from the op's start. */
static int l_sleep_op(lua_State *L) {
  uint64_t ns = lq_check_seconds(L, 1);
  lq_op_new(L, &sleep_kind, 0)->arg = ns;
  return 1;
}

static qn_future *sleep_until_start(lua_State *L, int op, lq_coro *c) {
  return qn_sleep_new(c->rt->core, time_arg(L, op));
}

static int sleep_until_finish(lua_State *L, int op, qn_future *f) {
  if (!qn_sleep_failed(f)) return 0;
  if (op == 0) lua_pushliteral(L, "quench.sleep_until: out of memory (cannot arm a timer)");
  else lua_pushliteral(L, "quench.sleep_until_op: out of memory (cannot arm a timer)");
  return -1;
}

static const lq_op_kind sleep_until_kind = {
  "sleep_until", NULL, sleep_until_start, sleep_until_finish, NULL
};

/* quench.sleep_until(t): sleep until quench.now() >= t; a t already past
   yields once, like sleep(0). The absolute deadline is kept, so a loop of
   sleep_until(t + k * period) does not drift. */
static int l_sleep_until(lua_State *L) {
  lq_coro *c = lq_await_ctx(L, "quench.sleep_until");
  uint64_t at = lq_check_seconds(L, 1);
  if (at <= qn_now(c->rt->core)) {
    lq_check_cancel(L, c);
    return do_yield(L, c);
  }
  lua_settop(L, 0);
  lua_pushinteger(L, (lua_Integer)at);
  return lq_perform(L, c, &sleep_until_kind, 0, "quench.sleep_until", "sleep");
}

/* quench.sleep_until_op(t): the op of sleep_until; the deadline is t
   whenever the op starts (a t already past: ready at once). */
static int l_sleep_until_op(lua_State *L) {
  uint64_t at = lq_check_seconds(L, 1);
  lq_op_new(L, &sleep_until_kind, 0)->arg = at;
  return 1;
}

static int l_yield(lua_State *L) {
  lq_coro *c = lq_await_ctx(L, "quench.yield");
  lq_check_cancel(L, c);
  return do_yield(L, c);
}

static int l_now(lua_State *L) {
  lq_runtime *rt = lq_runtime_of(L, "quench.now");
  lua_pushnumber(L, (lua_Number)qn_now(rt->core) / 1e9);
  return 1;
}

/* Manual (and virtual) clocks: move time forward and wake what is due; the
   woken tasks run at the caller's next await. */
static int l_advance(lua_State *L) {
  lq_runtime *rt = lq_runtime_of(L, "quench.advance");
  uint64_t ns = lq_check_duration(L, 1);
  if (qn_runtime_clock(rt->core) == QN_CLOCK_REAL)
    return luaL_error(L, "quench.advance: the runtime's clock is real "
                         "(run with {clock = \"manual\"} or \"virtual\")");
  qn_advance(rt->core, ns);
  return 0;
}

static const luaL_Reg functions[] = {
  {"sleep", l_sleep}, {"yield", l_yield}, {"now", l_now}, {"advance", l_advance},
  {"sleep_until", l_sleep_until}, {"sleep_until_op", l_sleep_until_op},
  {"sleep_op", l_sleep_op}, {NULL, NULL}
};

void lq_time_register(lua_State *L, int mod) {
  lua_pushvalue(L, mod);
  luaL_setfuncs(L, functions, 1);
}
