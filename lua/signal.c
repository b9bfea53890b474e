/*
** quench.signal(name) waits for the next delivery of a signal ("SIGINT",
** "SIGTERM", "SIGHUP", ...) and returns its name; signal_op(name) is its
** op. The first wait installs the runtime's watcher for that signal, which
** stays until the runtime ends: from then on the signal's default action
** (such as terminating on SIGINT) no longer happens.
**
** Cancel safety: a dropped wait loses nothing: a delivery with nobody
** waiting is counted for the next wait, and so is one that woke a wait
** dropped before it returned.
*/
#include <signal.h>
#include <string.h>
#include "binding.h"

/* The signals quench knows by name (process kill, quench.signal); `watch`:
   quench.signal may wait for it (not those that cannot be caught, nor
   those whose watcher would change how the runtime itself behaves). */
static const struct { const char *name; int num; int watch; } signals[] = {
  {"SIGINT", SIGINT, 1}, {"SIGTERM", SIGTERM, 1}, {"SIGHUP", SIGHUP, 1},
  {"SIGQUIT", SIGQUIT, 1}, {"SIGUSR1", SIGUSR1, 1}, {"SIGUSR2", SIGUSR2, 1},
  {"SIGWINCH", SIGWINCH, 1}, {"SIGKILL", SIGKILL, 0}, {"SIGSTOP", SIGSTOP, 0},
  {"SIGCONT", SIGCONT, 0}, {"SIGALRM", SIGALRM, 0}, {"SIGPIPE", SIGPIPE, 0}, {NULL, 0, 0}
};

int lq_signal_number(const char *name, int watchable) {
  for (int i = 0; signals[i].name; i++) {
    if (watchable && !signals[i].watch) continue;
    if (strcmp(signals[i].name, name) == 0) return signals[i].num;
    if (!watchable && strcmp(signals[i].name + 3, name) == 0) return signals[i].num;
  }
  return 0;
}

static int check_signal(lua_State *L, int idx, const char *fname) {
  const char *name = lq_check_cstring(L, idx, fname, "argument #1 (signal)");
  int sig = lq_signal_number(name, 1);
  if (sig != 0) return sig;
  return luaL_argerror(L, idx, lua_pushfstring(L, "unknown signal '%s' (SIGINT, SIGTERM, "
                       "SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 or SIGWINCH)", name));
}

static int finish(lua_State *L, int name_idx, qn_future *f) {
  if (qn_signal_take(f) != QN_OK) {
    lua_pushnil(L);
    lua_pushfstring(L, "cannot watch %s", lua_tostring(L, name_idx));
    return 2;
  }
  lua_pushvalue(L, name_idx);
  return 1;
}

/* signal is one lq_op_kind (lua/binding.h) for both forms; its operand
   is the signal's name (the direct call's argument 1, an op's user value
   1), which a received signal returns. The number was checked from it. */
static qn_future *signal_start(lua_State *L, int op, lq_coro *c) {
  int signum = op != 0 ? (int)((lq_op *)lua_touserdata(L, op))->arg
                       : lq_signal_number(lua_tostring(L, 1), 1);
  return qn_signal_new(c->rt->core, signum);
}

static int signal_finish(lua_State *L, int op, qn_future *f) {
  lq_op_arg(L, op, 1);
  int n = finish(L, lua_gettop(L), f);
  lua_remove(L, -1 - n);
  return n;
}

static const lq_op_kind signal_kind = { "signal", NULL, signal_start, signal_finish, NULL };

static int l_signal(lua_State *L) {
  check_signal(L, 1, "quench.signal");
  lq_coro *c = lq_await_ctx(L, "quench.signal");
  lua_settop(L, 1);
  return lq_perform(L, c, &signal_kind, 0, "quench.signal", NULL);
}

static int l_signal_op(lua_State *L) {
  int signum = check_signal(L, 1, "quench.signal_op");
  lq_op_new(L, &signal_kind, 1)->arg = (uint64_t)signum;
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

static const luaL_Reg functions[] = {
  {"signal", l_signal}, {"signal_op", l_signal_op}, {NULL, NULL}
};

void lq_signal_register(lua_State *L, int mod) {
  lua_pushvalue(L, mod);
  luaL_setfuncs(L, functions, 1);
}
