/*
** Child processes ("quench.process") over core/process.c:
** quench.process.spawn(file [, opts]) -> process, or nil, msg, code;
** p:wait() -> exit_status, term_signal; p:wait_op(); p:kill([sig]);
** p:pid(); p.stdin, p.stdout, p.stderr (pipe streams, lua/pipe.c, for
** "pipe" stdio, else nil); p:close() (also by <close>).
**
** Kill on drop (default on): closing a process (p:close(), a <close>
** variable leaving its scope, also when its task is aborted, and the end of
** the runtime for a process still open) sends SIGKILL to a child still
** running and reaps it before returning. With kill_on_drop = false the child
** outlives its object. Garbage collection is never a drop (as S4 says for
** task handles): a collected process object leaves its child running until
** it exits or the runtime ends. Closing a process closes its pipes.
**
** Ownership: the userdata holds the core process (NULL once closed or
** collected) and releases it; its user value 1 is the table of its pipe
** streams. A process belongs to the runtime that made it (`serial`): once
** that runtime has ended every method but close raises.
**
** Cancel safety: wait takes nothing (the exit status stays with the
** process), so a dropped wait loses nothing and never kills the child.
*/
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "stream.h"

#define LQ_PROCESS "quench.process"

extern char **environ;

typedef struct lq_process {
  qn_process *p;        /* NULL until spawned, and once closed or collected */
  uint64_t serial;      /* of its runtime */
  int pid;
} lq_process;

static lq_process *to_process(lua_State *L, int idx) {
  return (lq_process *)luaL_checkudata(L, idx, LQ_PROCESS);
}

static void check_usable(lua_State *L, lq_process *u, const char *fname) {
  if (u->p == NULL) luaL_error(L, "%s: attempt to use a closed process", fname);
  lq_check_alive(L, u->serial, fname, "process");
}

static qn_process *live_process(lua_State *L, int idx, const char *fname) {
  lq_process *u = to_process(L, idx);
  check_usable(L, u, fname);
  return u->p;
}

/* ---- spawn ---- */

static const char *const spawn_keys[] = {
  "args", "env", "cwd", "stdin", "stdout", "stderr", "kill_on_drop", NULL
};

static void check_keys(lua_State *L, int opts) {
  lua_pushnil(L);
  while (lua_next(L, opts)) {
    lua_pop(L, 1);
    int known = 0;
    if (lua_type(L, -1) == LUA_TSTRING)          /* by length too: "env\0x" is no key */
      for (int i = 0; spawn_keys[i] && !known; i++)
        known = strcmp(spawn_keys[i], lua_tostring(L, -1)) == 0 &&
                strlen(spawn_keys[i]) == lua_rawlen(L, -1);
    if (!known) {
      size_t n;
      const char *k = luaL_tolstring(L, -1, &n);
      luaL_error(L, "quench.process.spawn: unknown option '%s'%s", k,
                 strlen(k) != n ? " (with a zero byte after that)" : "");
    }
  }
}

static int check_stdio(lua_State *L, int opts, const char *name) {
  static const char *const kinds[] = { "inherit", "ignore", "pipe", NULL };
  static const int values[] = { QN_STDIO_INHERIT, QN_STDIO_IGNORE, QN_STDIO_PIPE };
  int v = QN_STDIO_INHERIT;
  if (lua_getfield(L, opts, name) != LUA_TNIL) {
    const char *k = lua_tostring(L, -1);
    int i = 0;
    if (k != NULL && strlen(k) != lua_rawlen(L, -1)) k = NULL;   /* a zero byte: no kind */
    while (k && kinds[i] && strcmp(kinds[i], k) != 0) i++;
    if (k == NULL || kinds[i] == NULL || lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "quench.process.spawn: opts.%s must be \"pipe\", \"inherit\" or \"ignore\"",
                 name);
    v = values[i];
  }
  lua_pop(L, 1);
  return v;
}

/* A NULL-terminated array of the strings in the table at `list` (1..n),
   as a userdata pushed on the stack (the strings stay in the table). */
static char **string_array(lua_State *L, int list) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, list);
  char **a = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *a, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, list, i);
    a[i - 1] = (char *)lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  a[n] = NULL;
  return a;
}

/* argv (file, args...) into a new table, pushed. */
static void build_args(lua_State *L, int file, int opts) {
  lua_newtable(L);
  int t = lua_gettop(L);
  lua_pushvalue(L, file);
  lua_rawseti(L, t, 1);
  if (opts == 0 || lua_getfield(L, opts, "args") == LUA_TNIL) {
    if (opts != 0) lua_pop(L, 1);
    return;
  }
  if (!lua_istable(L, -1)) luaL_error(L, "quench.process.spawn: opts.args must be a list");
  lua_Integer n = luaL_len(L, -1);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, -1, i);
    char what[40];
    snprintf(what, sizeof what, "opts.args[%d]", (int)i);
    lq_check_cstring(L, -1, "quench.process.spawn", what);
    lua_rawseti(L, t, i + 1);
  }
  lua_pop(L, 1);
}

/* The environment into a new table of "K=v" strings, pushed; nothing (0)
   when opts.env is absent. A sequence (even empty) is the whole
   environment; string keys override the inherited one (false removes). */
static int build_env(lua_State *L, int opts) {
  if (opts == 0 || lua_getfield(L, opts, "env") == LUA_TNIL) {
    if (opts != 0) lua_pop(L, 1);
    return 0;
  }
  if (!lua_istable(L, -1)) luaL_error(L, "quench.process.spawn: opts.env must be a table");
  int env = lua_gettop(L);
  lua_newtable(L);
  int t = env + 1, n = 0, keyed = 0;
  lua_Integer len = (lua_Integer)lua_rawlen(L, env);
  lua_pushnil(L);
  while (lua_next(L, env)) {
    if (lua_type(L, -2) == LUA_TSTRING) {
      keyed = 1;
      size_t kn;
      const char *k = lua_tolstring(L, -2, &kn);     /* a string key: no conversion */
      if (strlen(k) != kn)
        luaL_error(L, "quench.process.spawn: an opts.env name contains a zero byte "
                      "(a C string would end there)");
      if (lua_type(L, -1) == LUA_TSTRING && strlen(lua_tostring(L, -1)) != lua_rawlen(L, -1))
        luaL_error(L, "quench.process.spawn: opts.env.%s contains a zero byte "
                      "(a C string would end there)", k);
      if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER &&
          !(lua_isboolean(L, -1) && !lua_toboolean(L, -1)))
        luaL_error(L, "quench.process.spawn: opts.env.%s must be a string (or false)",
                   lua_tostring(L, -2));
      if (strchr(lua_tostring(L, -2), '=') != NULL)
        luaL_error(L, "quench.process.spawn: opts.env key '%s' contains '='",
                   lua_tostring(L, -2));
    } else if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < 1 ||
               lua_tointeger(L, -2) > len || lua_type(L, -1) != LUA_TSTRING ||
               strchr(lua_tostring(L, -1), '=') == NULL) {
      luaL_error(L, "quench.process.spawn: opts.env must map names to values, or list "
                    "\"NAME=value\" strings");
    } else if (strlen(lua_tostring(L, -1)) != lua_rawlen(L, -1)) {
      luaL_error(L, "quench.process.spawn: opts.env[%d] contains a zero byte "
                    "(a C string would end there)", (int)lua_tointeger(L, -2));
    }
    lua_pop(L, 1);
  }
  if (keyed && len > 0)
    luaL_error(L, "quench.process.spawn: opts.env mixes a list and names");
  if (!keyed) {
    for (lua_Integer i = 1; i <= len; i++) {
      lua_rawgeti(L, env, i);
      lua_rawseti(L, t, ++n);
    }
  } else {
    for (char **e = environ; e != NULL && *e != NULL; e++) {
      const char *eq = strchr(*e, '=');
      if (eq == NULL) continue;
      lua_pushlstring(L, *e, (size_t)(eq - *e));
      int overridden = lua_rawget(L, env) != LUA_TNIL;
      lua_pop(L, 1);
      if (overridden) continue;
      lua_pushstring(L, *e);
      lua_rawseti(L, t, ++n);
    }
    lua_pushnil(L);
    while (lua_next(L, env)) {
      if (lua_toboolean(L, -1)) {
        lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
        lua_rawseti(L, t, ++n);
      }
      lua_pop(L, 1);
    }
  }
  lua_remove(L, env);
  return 1;
}

static const char *const stdio_names[] = { "stdin", "stdout", "stderr" };

/* quench.process.spawn(file [, opts]) */
static int l_spawn(lua_State *L) {
  const char *fname = "quench.process.spawn";
  lq_runtime *rt = lq_runtime_of(L, fname);
  lq_check_cstring(L, 1, fname, "argument #1 (file)");
  int opts = 0;
  if (!lua_isnoneornil(L, 2)) {
    if (!lua_istable(L, 2))
      luaL_error(L, "%s: argument #2 (opts) must be a table, got %s", fname, luaL_typename(L, 2));
    opts = 2;
    check_keys(L, opts);
  }
  lua_settop(L, 2);
  qn_process_opts o;
  memset(&o, 0, sizeof o);
  o.file = lua_tostring(L, 1);
  o.kill_on_drop = 1;
  if (opts) {
    for (int i = 0; i < 3; i++) o.stdio[i] = check_stdio(L, opts, stdio_names[i]);
    if (lua_getfield(L, opts, "cwd") != LUA_TNIL) {
      if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "%s: opts.cwd must be a string", fname);
      o.cwd = lq_check_cstring(L, -1, fname, "opts.cwd");
    }                                     /* stays on the stack (3) */
    if (lua_getfield(L, opts, "kill_on_drop") != LUA_TNIL) {
      if (!lua_isboolean(L, -1)) luaL_error(L, "%s: opts.kill_on_drop must be a boolean", fname);
      o.kill_on_drop = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
  }
  build_args(L, 1, opts);
  o.args = string_array(L, lua_gettop(L));
  if (build_env(L, opts)) o.env = string_array(L, lua_gettop(L));
  lq_process *u = lua_newuserdatauv(L, sizeof *u, 1);
  u->p = NULL;                          /* closed until spawned */
  u->serial = rt->serial;
  u->pid = 0;
  luaL_setmetatable(L, LQ_PROCESS);
  int ud = lua_gettop(L);
  lua_createtable(L, 0, 3);
  lua_setiuservalue(L, ud, 1);
  int fds[3];
  qn_process *p;
  int r = qn_process_spawn(rt->core, &o, &p, fds);
  if (r != 0) return lq_push_fail(L, r);
  u->p = p;
  u->pid = qn_process_pid(p);
  lua_getiuservalue(L, ud, 1);
  for (int i = 0; i < 3; i++) {
    if (fds[i] < 0) continue;
    qn_stream *s;
    qn_pipe_opts po;
    memset(&po, 0, sizeof po);
    po.dir = i == 0 ? QN_PIPE_WRITABLE : QN_PIPE_READABLE;
    r = qn_pipe_open(rt->core, fds[i], &po, &s);
    if (r != 0) {                       /* very unlikely (out of memory): undo it all */
      for (int j = i; j < 3; j++)
        if (fds[j] >= 0) close(fds[j]);
      lq_pipe_close(L, -1);
      for (int j = 0; j < i; j++) {
        lua_getfield(L, -1, stdio_names[j]);
        lq_pipe_close(L, -1);
        lua_pop(L, 1);
      }
      qn_process_release(p, 1);
      u->p = NULL;
      return lq_push_fail(L, r);
    }
    char what[40];
    snprintf(what, sizeof what, "%s of process %d", stdio_names[i], u->pid);
    lq_pipe_push(L, rt, s, what);
    lua_setfield(L, -2, stdio_names[i]);
  }
  lua_settop(L, ud);
  return 1;
}

/* ---- wait ---- */

static int push_status(lua_State *L, qn_process *p) {
  int64_t status;
  int sig;
  if (!qn_process_exited(p, &status, &sig)) return lq_push_fail(L, UV_ECANCELED);
  lua_pushinteger(L, (lua_Integer)status);
  lua_pushinteger(L, sig);
  return 2;
}

/* wait is one lq_obj_kind (lua/binding.h) given the lq_process. The core
   process the future keeps is kept beside it for finish (a close while
   waiting clears u->p): at stack index 2 for the direct form, in user
   value 2 for an op (h:wait_op(), whose user value 1 is the process). */
static void wait_check(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)c;
  /* the direct form checked before it asked for its task, as it always did */
  if (op != 0) check_usable(L, obj, "quench.process:wait_op");
}

static int wait_now(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)op, (void)c;
  qn_process *p = ((lq_process *)obj)->p;
  if (!qn_process_exited(p, NULL, NULL)) return -1;
  return push_status(L, p);
}

static qn_future *wait_start(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)c;
  qn_process *p = ((lq_process *)obj)->p;
  lua_pushlightuserdata(L, p);
  if (op != 0) lua_setiuservalue(L, op, 2);
  return qn_process_wait_new(p);
}

static int wait_finish(lua_State *L, void *obj, int op, qn_future *f) {
  (void)obj, (void)f;
  if (op == 0) return push_status(L, (qn_process *)lua_touserdata(L, 2));
  lua_getiuservalue(L, op, 2);
  qn_process *p = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return push_status(L, p);
}

static const lq_obj_kind wait_kind =
  LQ_OBJ_KIND("process wait", wait_check, wait_start, wait_finish, wait_now);
LQ_OBJ_PERFORM_K(wait_k, wait_kind)

/* p:wait(): exit_status, term_signal (0 when none) once the child exited. */
static int l_wait(lua_State *L) {
  const char *fname = "quench.process:wait";
  live_process(L, 1, fname);
  lq_coro *c = lq_await_ctx(L, fname);
  lua_settop(L, 1);
  return lq_obj_perform(L, c, &wait_kind, lua_touserdata(L, 1), fname, NULL, wait_k);
}

static int l_wait_op(lua_State *L) {
  live_process(L, 1, "quench.process:wait_op");
  lq_op_new(L, &wait_kind.base, 2)->obj = lua_touserdata(L, 1);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

/* ---- the rest ---- */

static int check_signal(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return SIGTERM;
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Integer n = luaL_checkinteger(L, idx);
    luaL_argcheck(L, n >= 0 && n < 65, idx, "signal number out of range");
    return (int)n;
  }
  const char *name = lq_check_cstring(L, idx, "quench.process:kill", "argument #1 (signal)");
  int sig = lq_signal_number(name, 0);
  if (sig != 0) return sig;
  return luaL_argerror(L, idx, lua_pushfstring(L, "unknown signal '%s'", name));
}

/* p:kill([sig]): sig a name ("SIGTERM", the default, or "TERM") or a number.
   true, or nil, "ESRCH: no such process", "ESRCH" once the child exited. */
static int l_kill(lua_State *L) {
  qn_process *p = live_process(L, 1, "quench.process:kill");
  int r = qn_process_kill(p, check_signal(L, 2));
  if (r != 0) return lq_push_fail(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_pid(lua_State *L) {
  lq_process *u = to_process(L, 1);
  live_process(L, 1, "quench.process:pid");
  lua_pushinteger(L, u->pid);
  return 1;
}

/* close(): idempotent; kill_on_drop kills a running child; closes the pipes. */
static int l_close(lua_State *L) {
  lq_process *u = to_process(L, 1);
  if (u->p != NULL) {
    qn_process *p = u->p;
    u->p = NULL;
    if (lq_alive(L, u->serial)) {
      lua_getiuservalue(L, 1, 1);
      for (int i = 0; i < 3; i++) {
        lua_getfield(L, -1, stdio_names[i]);
        lq_pipe_close(L, -1);
        lua_pop(L, 1);
      }
    }
    qn_process_release(p, 1);
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int l_gc(lua_State *L) {
  lq_process *u = luaL_testudata(L, 1, LQ_PROCESS);   /* __gc may be called by hand */
  if (u == NULL) return 0;
  if (u->p != NULL) qn_process_release(u->p, 0);
  u->p = NULL;
  return 0;
}

/* p.stdin, p.stdout, p.stderr, then the methods (upvalue 2). */
static int l_index(lua_State *L) {
  const char *k = lua_tostring(L, 2);
  if (k != NULL && (strcmp(k, "stdin") == 0 || strcmp(k, "stdout") == 0 ||
                    strcmp(k, "stderr") == 0)) {
    lua_getiuservalue(L, 1, 1);
    lua_getfield(L, -1, k);
    return 1;
  }
  lua_pushvalue(L, 2);
  lua_gettable(L, lua_upvalueindex(2));
  return 1;
}

static int l_tostring(lua_State *L) {
  lq_process *u = to_process(L, 1);
  int64_t status;
  int sig;
  if (u->p == NULL || !lq_alive(L, u->serial)) {
    lua_pushfstring(L, "quench.process (pid %d, closed)", u->pid);
  } else if (!qn_process_exited(u->p, &status, &sig)) {
    lua_pushfstring(L, "quench.process (pid %d, running)", u->pid);
  } else if (sig != 0) {
    lua_pushfstring(L, "quench.process (pid %d, killed by signal %d)", u->pid, sig);
  } else {
    lua_pushfstring(L, "quench.process (pid %d, exited with %d)", u->pid, (int)status);
  }
  return 1;
}

static const luaL_Reg methods[] = {
  {"wait", l_wait}, {"wait_op", l_wait_op}, {"kill", l_kill}, {"pid", l_pid},
  {"close", l_close}, {NULL, NULL}
};

void lq_process_register(lua_State *L, int mod) {
  luaL_newmetatable(L, LQ_PROCESS);
  lua_pushvalue(L, mod);
  lua_newtable(L);
  lua_pushvalue(L, mod);
  luaL_setfuncs(L, methods, 1);
  lua_pushcclosure(L, l_index, 2);
  lua_setfield(L, -2, "__index");
  lua_pushvalue(L, mod);
  lua_pushcclosure(L, l_close, 1);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, l_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushvalue(L, mod);
  lua_pushcclosure(L, l_tostring, 1);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  lua_newtable(L);                      /* quench.process */
  lua_pushvalue(L, mod);
  lua_pushcclosure(L, l_spawn, 1);
  lua_setfield(L, -2, "spawn");
  lua_setfield(L, -2, "process");
}
