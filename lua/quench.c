/*
** The module: luaopen_quench, quench.run, quench.current, quench.test.
** Every function of the module has the module state as its first upvalue,
** so nothing is global: the running runtime hangs off that state.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "binding.h"
#include "arena.h"
#include "quench_embedded.h"

void lq_task_register(lua_State *L, int mod);
void lq_error_register(lua_State *L, int mod);
void lq_time_register(lua_State *L, int mod);
void lq_cleanup_register(lua_State *L, int mod);
void lq_op_register(lua_State *L, int mod);
void lq_select_register(lua_State *L, int mod);
void lq_token_register(lua_State *L, int mod);
void lq_branch_register(lua_State *L);
void lq_channel_register(lua_State *L, int mod);
void lq_broadcast_register(lua_State *L, int mod);
void lq_watch_register(lua_State *L, int mod);
void lq_sync_register(lua_State *L, int mod);
void lq_blocking_register(lua_State *L, int mod);
void lq_fs_register(lua_State *L, int mod);
void lq_dns_register(lua_State *L, int mod);
void lq_signal_register(lua_State *L, int mod);
void lq_udp_register(lua_State *L, int mod);
void lq_pipe_register(lua_State *L, int mod);
void lq_process_register(lua_State *L, int mod);
void lq_tcp_register(lua_State *L, int mod);
void lq_unix_register(lua_State *L, int mod);
void lq_unix_dgram_register(lua_State *L, int mod);
void lq_adopt_register(lua_State *L, int mod);
void lq_tls_register(lua_State *L, int mod);
void lq_http_register(lua_State *L, int mod);
void lq_http_lot_register(lua_State *L, int mod);
void lq_ngx_register(lua_State *L, int mod);
void lq_task_internals(lua_State *L, int mod);
void lq_http_client_register(lua_State *L, int mod);

typedef struct run_opts {
  qn_clock clock;
  uint64_t seed;
  int on_error;    /* stack index of opts.on_task_error, or 0 */
  int on_warning;  /* stack index of opts.on_warning, or 0 */
  double slow_task;
  uint64_t fail_alloc;   /* refuse the core's allocation number fail_alloc; 0: none */
} run_opts;

static const run_opts default_opts = { QN_CLOCK_REAL, 0, 0, 0, 0, 0 };

/* The core's allocator (see lq_heap): realloc and free, counted. */
static void *core_alloc(void *ud, void *p, size_t n) {
  lq_heap *h = ud;
  if (n == 0) {
    if (p != NULL) {
      h->live--;
      if (h->arena != NULL) lq_arena_core_free(h->arena, p);
      else free(p);
    }
    return NULL;
  }
  if (++h->allocs == h->fail_at) {
    h->refused++;
    return NULL;
  }
  void *q = h->arena != NULL ? lq_arena_core_realloc(h->arena, p, n) : realloc(p, n);
  if (q == NULL) h->refused++;
  else if (p == NULL) h->live++;
  return q;
}

/* The options quench.run reads: any other key is a typo to name. */
static const char *const run_keys[] = {
  "clock", "seed", "on_task_error", "on_warning", "slow_task", "fail_alloc", NULL
};

static void check_run_keys(lua_State *L, int idx) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    int known = 0;
    if (lua_type(L, -1) == LUA_TSTRING)
      for (int i = 0; run_keys[i] && !known; i++) known = strcmp(run_keys[i], lua_tostring(L, -1)) == 0;
    if (!known)
      luaL_argerror(L, idx, lua_pushfstring(L, "unknown option '%s'", luaL_tolstring(L, -1, NULL)));
  }
}

static run_opts check_opts(lua_State *L, int idx) {
  static const char *const clocks[] = { "real", "virtual", "manual", NULL };
  run_opts o = default_opts;
  check_run_keys(L, idx);
  lua_getfield(L, idx, "clock");
  if (!lua_isnil(L, -1)) {
    const char *name = lua_tostring(L, -1);
    int i = 0;
    while (name && clocks[i] && strcmp(clocks[i], name) != 0) i++;
    if (name == NULL || clocks[i] == NULL)
      luaL_argerror(L, idx, "opts.clock must be \"real\", \"virtual\" or \"manual\"");
    o.clock = (qn_clock)i;
  }
  lua_getfield(L, idx, "seed");
  if (!lua_isnil(L, -1)) {
    if (!lua_isinteger(L, -1)) luaL_argerror(L, idx, "opts.seed must be an integer");
    o.seed = (uint64_t)lua_tointeger(L, -1);
  }
  lua_getfield(L, idx, "on_task_error");
  if (!lua_isnil(L, -1)) {
    if (!lua_isfunction(L, -1)) luaL_argerror(L, idx, "opts.on_task_error must be a function");
    o.on_error = lua_gettop(L);
  }
  lua_getfield(L, idx, "on_warning");
  if (!lua_isnil(L, -1)) {
    if (!lua_isfunction(L, -1)) luaL_argerror(L, idx, "opts.on_warning must be a function");
    o.on_warning = lua_gettop(L);
  }
  lua_getfield(L, idx, "slow_task");
  if (!lua_isnil(L, -1)) {
    if (!lua_isnumber(L, -1) || !(lua_tonumber(L, -1) > 0))
      luaL_argerror(L, idx, "opts.slow_task must be a positive number of seconds");
    o.slow_task = lua_tonumber(L, -1);
  }
  lua_getfield(L, idx, "fail_alloc");
  if (!lua_isnil(L, -1)) {
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1)
      luaL_argerror(L, idx, "opts.fail_alloc must be a positive integer (the number of the "
                            "core's allocation to fail)");
    o.fail_alloc = (uint64_t)lua_tointeger(L, -1);
  }
  return o;
}

/* Protected part of run: spawn main (args from index 2) and drive to its end.
   Returns the main handle and the core's status. */
static int drive(lua_State *L) {
  lq_runtime *rt = lua_touserdata(L, 1);
  lq_spawn_at(L, rt, 2);
  lq_task *main = lua_touserdata(L, -1);
  main->coro.observed = 1;                   /* run itself reports main's end */
  int st = qn_run(rt->core, lq_core_task(main));
  lua_pushinteger(L, st);
  return 2;
}

static lq_runtime *runtime_new(lua_State *L, lq_module *m, run_opts o) {
  lq_runtime *rt = calloc(1, sizeof *rt);
  if (rt == NULL) luaL_error(L, "quench.run: out of memory");
  uint64_t seed = o.seed ? o.seed : uv_hrtime();
  uint64_t refused = m->heap.refused;
  m->heap.allocs = 0;                   /* the new runtime's allocations from 1 */
  m->heap.fail_at = o.fail_alloc;
  rt->core = qn_runtime_new_with(o.clock, seed, core_alloc, &m->heap);
  if (rt->core != NULL && o.fail_alloc) qn_runtime_cache_small(rt->core, 0);   /* each can fail */
  if (rt->core == NULL) {
    free(rt);
    m->heap.fail_at = 0;
    if (m->heap.refused != refused)
      luaL_error(L, "quench.run: out of memory (cannot create the runtime)");
    luaL_error(L, "quench.run: cannot create the event loop");
  }
  rt->mod = m;
  rt->L = L;
  lq_keep_init(L, &rt->keep);           /* the runtime's one home of Lua values */
  rt->S = lua_newthread(L);
  lq_keep(L, &rt->keep);
  lq_push_cancelled_mt(L);
  rt->keep_cancelled = lq_keep(L, &rt->keep);
  lua_newtable(L);                      /* failed handles, weak keys */
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  rt->keep_failed = lq_keep(L, &rt->keep);
  rt->keep_on_error = rt->keep_on_warning = rt->keep_at_exit = LQ_NOKEEP;
  if (o.on_error) {
    lua_pushvalue(L, o.on_error);
    rt->keep_on_error = lq_keep(L, &rt->keep);
  }
  if (o.on_warning) {
    lua_pushvalue(L, o.on_warning);
    rt->keep_on_warning = lq_keep(L, &rt->keep);
  }
  rt->slow_ns = (uint64_t)(o.slow_task * 1e9);
  rt->serial = ++m->serial;
  return rt;
}

/* Drive the runtime until the task at 2 is done: an at-exit function's
   task. Under lua_pcall, as drive is. */
static int drain(lua_State *L) {
  lq_runtime *rt = lua_touserdata(L, 1);
  lq_task *h = lua_touserdata(L, 2);
  qn_run(rt->core, lq_core_task(h));    /* a deadlock just ends it: shutdown aborts */
  return 0;
}

/* The quench._at_exit functions, in order, once the main task is done and
   before shutdown aborts the tasks left: plain calls, outside any task (they
   cannot wait); an error is a warning. One registered by another runs too.
   A function may return a task it spawned: the runtime is then driven until
   that task is done, so what it does may wait (quench.ngx's premature
   timers; the task bounds itself: nothing here times it out). */
static void run_at_exit(lua_State *L, lq_runtime *rt) {
  if (rt->keep_at_exit == LQ_NOKEEP) return;
  lq_push_kept(L, &rt->keep, rt->keep_at_exit);
  int t = lua_gettop(L);
  for (lua_Integer i = 1; lua_rawgeti(L, t, i) != LUA_TNIL; i++) {
    if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
      lua_pushfstring(L, "quench: an at-exit function failed: %s",
                      lua_isstring(L, -1) ? lua_tostring(L, -1) : luaL_typename(L, -1));
      lq_warn(rt, lua_tostring(L, -1));
      lua_pop(L, 2);
      continue;
    }
    lq_task *h = lq_toudata(L, -1, &lq_coro_vt, sizeof(lq_task));
    if (h != NULL && h->coro.kind == CORO_TASK) {
      lua_pushcfunction(L, drain);
      lua_pushlightuserdata(L, rt);
      lua_pushvalue(L, -3);             /* the handle stays on the stack meanwhile */
      if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
        lua_pushfstring(L, "quench: an at-exit task failed: %s",
                        lua_isstring(L, -1) ? lua_tostring(L, -1) : luaL_typename(L, -1));
        lq_warn(rt, lua_tostring(L, -1));
        lua_pop(L, 2);
      }
    }
    lua_pop(L, 1);
  }
  lua_settop(L, t - 1);
  lq_release(&rt->keep, rt->keep_at_exit);
  rt->keep_at_exit = LQ_NOKEEP;
}

static void runtime_free(lua_State *L, lq_runtime *rt) {
  run_at_exit(L, rt);
  qn_runtime_shutdown(rt->core);        /* aborts what is alive: cleanups run */
  lq_report_unobserved(rt);
  rt->mod->rt = NULL;
  qn_runtime_free(rt->core);            /* its memory may stay for what is not collected */
  rt->mod->heap.fail_at = 0;
  lq_keep_free(L, &rt->keep);           /* everything the run kept, S included */
  free(rt);
}

/* quench.run([opts,] fn, ...): main's results, or main's error raised. */
static int l_run(lua_State *L) {
  lq_module *m = lq_module_of(L);
  if (m->rt != NULL)
    return luaL_error(L, "quench.run: a runtime is already running here (runtimes do not nest)");
  int fn = 1, top = lua_gettop(L);
  run_opts o = default_opts;
  if (lua_istable(L, 1)) {
    fn = 2;
    o = check_opts(L, 1);               /* pushes the fields it read */
  }
  luaL_checktype(L, fn, LUA_TFUNCTION);
  lq_runtime *rt = runtime_new(L, m, o);
  lua_settop(L, top);
  m->rt = rt;
  int nargs = lua_gettop(L) - fn + 1;
  lua_pushcfunction(L, drive);
  lua_pushlightuserdata(L, rt);
  for (int i = 0; i < nargs; i++) lua_pushvalue(L, fn + i);
  int st = lua_pcall(L, nargs + 1, 2, 0);
  runtime_free(L, rt);
  if (st != LUA_OK) return lua_error(L);
  int core_st = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (core_st == QN_EDEADLOCK)
    return luaL_error(L, "quench.run: deadlock: the main task waits and no task, "
                         "timer or I/O can ever wake it");
  if (core_st == QN_ESTALLED)
    return luaL_error(L, "quench.run: the manual clock stalled: every task waits for a "
                         "timer and nobody calls quench.advance");
  lq_task *main = lua_touserdata(L, -1);
  int main_idx = lua_gettop(L);
  int n = lq_push_result(L, main, main_idx);
  if (!lua_toboolean(L, main_idx + 1)) return lua_error(L);
  return n - 1;
}

/* quench.test(fn [, opts]): a busted body running fn in a fresh runtime,
   on the virtual clock with seed 1 unless opts says otherwise. */
static int test_body(lua_State *L) {
  lua_settop(L, 0);
  lua_newtable(L);
  if (lua_istable(L, lua_upvalueindex(3))) {
    lua_pushnil(L);
    while (lua_next(L, lua_upvalueindex(3))) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, 1);
    }
  }
  if (lua_getfield(L, 1, "clock") == LUA_TNIL) {
    lua_pushliteral(L, "virtual");
    lua_setfield(L, 1, "clock");
  }
  if (lua_getfield(L, 1, "seed") == LUA_TNIL) {   /* reproducible by default */
    lua_pushinteger(L, 1);
    lua_setfield(L, 1, "seed");
  }
  lua_pop(L, 2);
  lua_pushvalue(L, lua_upvalueindex(2));
  return l_run(L);
}

static int l_test(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_pushcclosure(L, test_body, 3);
  return 1;
}

static int l_current(lua_State *L) {
  lq_runtime *rt = lq_module_of(L)->rt;
  if (rt == NULL || rt->running == NULL) return 0;
  lq_push_handle(L, rt, lq_coro_task(rt->running));
  return 1;
}

/* quench._at_exit(fn): fn() when this run ends (run_at_exit); fn may return
   a task to be driven to its end. Internal: quench.ngx calls its pending
   timers with premature = true from there. */
static int l_at_exit(lua_State *L) {
  lq_runtime *rt = lq_runtime_of(L, "quench._at_exit");
  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (rt->keep_at_exit == LQ_NOKEEP) {
    lua_newtable(L);
    rt->keep_at_exit = lq_keep(L, &rt->keep);
  }
  lq_push_kept(L, &rt->keep, rt->keep_at_exit);
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  return 0;
}

static const luaL_Reg functions[] = {
  {"run", l_run}, {"test", l_test}, {"current", l_current}, {"_at_exit", l_at_exit},
  {NULL, NULL}
};

/* An embedded file that starts with "-- module NAME\n" is a module of its
   own, compiled only when first required (package.preload[NAME]): its
   name is copied to name (size bytes), or 0. */
static int lazy_module(const char *code, size_t size, char *name, size_t nsize) {
  static const char tag[] = "-- module ";
  size_t k = sizeof tag - 1;
  if (size <= k || memcmp(code, tag, k) != 0) return 0;
  size_t n = 0;
  while (k + n < size && code[k + n] != '\n' && n + 1 < nsize) n++;
  memcpy(name, code + k, n);
  name[n] = '\0';
  return n > 0;
}

/* Push embedded file i as a function: its bytecode when there is some
   and this interpreter takes it, else its compiled source (the bytecode
   is refused when the interpreter differs from the build's in word size
   or number type: scripts/embed_lua.lua). */
static int load_chunk(lua_State *L, int i) {
  if (lq_embedded[i].bytecode != NULL) {
    if (luaL_loadbufferx(L, (const char *)lq_embedded[i].bytecode, lq_embedded[i].bcsize,
                         lq_embedded[i].name, "b") == LUA_OK)
      return LUA_OK;
    lua_pop(L, 1);
  }
  return luaL_loadbufferx(L, (const char *)lq_embedded[i].code, lq_embedded[i].size,
                          lq_embedded[i].name, "t");
}

/* package.preload's loader of embedded file number upvalue 1. */
static int load_embedded(lua_State *L) {
  lua_Integer i = lua_tointeger(L, lua_upvalueindex(1));
  if (load_chunk(L, (int)i) != LUA_OK)
    return lua_error(L);
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

/* The module's tables (quench.tcp, quench.process, ...) go into
   package.loaded as "quench.tcp", ...: Lua names a function that has no
   name at its call site (called through pcall, or a local) by looking it
   up there, one level deep. Without this, an argument error of
   quench.tcp.connect called so read "bad argument #2 to '?'". */
static void name_tables(lua_State *L, int mod) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushnil(L);
  while (lua_next(L, mod)) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TTABLE) {
      lua_pushfstring(L, "quench.%s", lua_tostring(L, -2));
      if (lua_rawget(L, -4) == LUA_TNIL) {
        lua_pushfstring(L, "quench.%s", lua_tostring(L, -3));
        lua_pushvalue(L, -3);
        lua_rawset(L, -6);
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

int luaopen_quench(lua_State *L) {
  lq_arena *arena = lq_arena_install(L);     /* first: every block after it is served */
  lq_module *m = lua_newuserdatauv(L, sizeof *m, 0);
  memset(m, 0, sizeof *m);
  m->heap.arena = arena;
  int mod = lua_gettop(L);
  lua_newtable(L);
  lua_pushvalue(L, mod);
  luaL_setfuncs(L, functions, 1);
  lq_task_register(L, mod);
  lq_error_register(L, mod);
  lq_time_register(L, mod);
  lq_cleanup_register(L, mod);
  lq_op_register(L, mod);
  lq_select_register(L, mod);
  lq_token_register(L, mod);
  lq_branch_register(L);
  lq_channel_register(L, mod);
  lq_broadcast_register(L, mod);
  lq_watch_register(L, mod);
  lq_sync_register(L, mod);
  lq_blocking_register(L, mod);
  lq_fs_register(L, mod);
  lq_dns_register(L, mod);
  lq_signal_register(L, mod);
  lq_udp_register(L, mod);
  lq_pipe_register(L, mod);
  lq_process_register(L, mod);
  lq_tcp_register(L, mod);
  lq_unix_register(L, mod);
  lq_unix_dgram_register(L, mod);       /* after unix: it adds quench.unix.dgram */
  lq_adopt_register(L, mod);
  lq_tls_register(L, mod);                   /* after tcp: it adds stream:starttls */
  lq_http_register(L, mod);
  lq_http_lot_register(L, mod);           /* after http: it adds quench.http._lot */
  lq_ngx_register(L, mod);
  lq_http_client_register(L, mod);       /* after http: it adds quench.http._xfer */
  lua_pushliteral(L, "0.2.0");
  lua_setfield(L, -2, "_VERSION");
  lq_task_internals(L, mod);            /* what the sugar needs and users do not */
  for (int i = 0; lq_embedded[i].name; i++) {   /* Lua sugar: each chunk extends the module */
    char name[64];
    if (lazy_module((const char *)lq_embedded[i].code, lq_embedded[i].size, name, sizeof name)) {
      luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
      lua_pushinteger(L, i);
      lua_pushcclosure(L, load_embedded, 1);
      lua_setfield(L, -2, name);
      lua_pop(L, 1);
      continue;
    }
    if (load_chunk(L, i) != LUA_OK)
      return lua_error(L);
    lua_pushvalue(L, -3);
    lua_pushvalue(L, -3);
    lua_call(L, 2, 0);
  }
  lua_pop(L, 1);
  name_tables(L, lua_gettop(L));
  return 1;
}
