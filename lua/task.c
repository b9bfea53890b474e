/*
** Task handles ("quench.task"): spawn, join, abort, cancel, done, detach.
** A handle in a <close> variable aborts its task at scope exit (S4);
** garbage collection never does: a collected handle leaves its task running.
*/
#include <stdio.h>
#include <string.h>
#include "binding.h"
#include "arena.h"


/* The first reason wins, whether it came with cancel, abort or a token. */
static void set_reason(lua_State *L, lq_task *h, int ud, int reason) {
  if (h->coro.reason != REASON_NONE || qn_task_get_state(lq_core_task(h)) == QN_TASK_DONE) return;
  h->coro.reason = REASON_OWN;
  if (lua_isnoneornil(L, reason)) return;
  lq_push_extras(L, ud);
  lua_pushvalue(L, reason);
  lua_setfield(L, -2, "reason");
  lua_pop(L, 1);
}

static lq_runtime *runtime_of_handle(lua_State *L, lq_task *h) {
  lq_module *m = lq_module_of(L);
  return (m->rt && lq_task_in(h, m->rt)) ? m->rt : NULL;
}

/* ---- spawning ---- */

/* Keep in extras.site the file:line of the user code that spawned the task
   at ud: the first Lua frame up the stack that is not quench's own sugar
   (a scope's spawn is reported where s:spawn was called). */
static void note_site(lua_State *L, int ud) {
  lua_Debug ar;
  for (int level = 1; lua_getstack(L, level, &ar); level++) {
    if (!lua_getinfo(L, "Sl", &ar) || ar.currentline < 0) continue;
    if (strncmp(ar.source, "=quench/", 8) == 0) continue;
    lq_push_extras(L, ud);
    lua_pushfstring(L, "%s:%d", ar.short_src, ar.currentline);
    lua_setfield(L, -2, "site");
    lua_pop(L, 1);
    return;
  }
}

int lq_spawn_at(lua_State *L, lq_runtime *rt, int fn) {
  int n = lua_gettop(L) - fn + 1;       /* the function and its arguments */
  int inline_args = lq_task_args_inline(n) ? n - 1 : 0;
  lq_task *h = lua_newuserdatauv(L, lq_task_offset() + qn_task_size(), 1 + inline_args);
  h->coro.base.vt = NULL;               /* no task for __gc until lq_coro_init (which zeroes the rest) */
  h->spawned_at = (uint32_t)(qn_now(rt->core) >> LQ_SPAWN_TIME_SHIFT);
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->mod->mt_task);
  lua_setmetatable(L, -2);
  int ud = lua_gettop(L);
  if (lq_task_args_inline(n)) {         /* few arguments: user values, no table */
    lua_pushvalue(L, fn);
    for (int i = 1; i < n; i++) {
      lua_pushvalue(L, fn + i);
      lua_setiuservalue(L, ud, 1 + i);
    }
  } else {
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
      lua_pushvalue(L, fn + i);
      lua_rawseti(L, -2, i + 1);
    }
  }
  lua_setiuservalue(L, ud, 1);
  lq_coro_init(&h->coro, rt, CORO_TASK);
  h->coro.serial = (uint32_t)rt->serial;
  h->coro.nres = n;                     /* until it starts */
  lq_context_inherit(L, rt, ud);        /* these may raise: before the core knows the task */
  if (rt->spawn_sites) note_site(L, ud);
  lua_pushvalue(L, ud);
  h->coro.slot = lq_anchor(L, rt);
  qn_task_init(lq_core_task(h), rt->core, &h->coro.base);
  h->parent_gap = 0;                    /* ids exist from qn_task_init on */
  if (rt->running != NULL) {
    uint64_t gap = qn_task_id(lq_core_task(h))
                 - qn_task_id(lq_core_task(lq_coro_task(rt->running)));
    if (gap <= UINT32_MAX) h->parent_gap = (uint32_t)gap;
  }
  return 1;
}

static int l_spawn(lua_State *L) {
  lq_runtime *rt = lq_runtime_of(L, "quench.spawn");
  luaL_checktype(L, 1, LUA_TFUNCTION);
  return lq_spawn_at(L, rt, 1);
}

/* ---- handle methods ---- */

/* join is one lq_obj_kind (lua/binding.h) given the joined task: the
   direct form's operand is its handle at 1; an op (h:join_op()) keeps the
   handle in user value 1. A task already done is joined at once. */
static void join_check(lua_State *L, void *obj, int op, lq_coro *c) {
  lq_task *h = obj;
  if (!lq_task_in(h, c->rt)) {
    if (op == 0) luaL_argerror(L, 1, "the task belongs to another runtime");
    luaL_error(L, "quench.task:join_op: the task belongs to another runtime");
  }
  if (h == lq_coro_task(c))
    luaL_error(L, op == 0 ? "quench.task:join: a task cannot join itself"
                          : "quench.task:join_op: a task cannot join itself");
}

static int join_finish(lua_State *L, void *obj, int op, qn_future *f) {
  (void)f;
  if (op == 0) return lq_push_result(L, obj, 1);
  lua_getiuservalue(L, op, 1);
  int h = lua_gettop(L);
  int n = lq_push_result(L, obj, h);
  lua_remove(L, h);
  return n;
}

static int join_now(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)c;
  if (qn_task_get_state(lq_core_task((lq_task *)obj)) != QN_TASK_DONE) return -1;
  return join_finish(L, obj, op, NULL);
}

static qn_future *join_start(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)L, (void)op, (void)c;
  return qn_join_new(lq_core_task((lq_task *)obj));
}

static const lq_obj_kind join_kind = LQ_OBJ_KIND("join", join_check, join_start, join_finish, join_now);
LQ_OBJ_PERFORM_K(join_k, join_kind)

static int l_join(lua_State *L) {
  lq_task *h = lq_check_task(L, 1);
  lq_coro *c = lq_await_ctx(L, "quench.task:join");
  lua_settop(L, 1);
  return lq_obj_perform(L, c, &join_kind, h, "quench.task:join", NULL, join_k);
}

static int l_join_op(lua_State *L) {
  lq_check_task(L, 1);
  return lq_op_for(L, &join_kind.base, 1);
}

static int l_abort(lua_State *L) {
  lq_task *h = lq_check_task(L, 1);
  if (runtime_of_handle(L, h) == NULL) return 0;   /* its runtime ended: it is done */
  set_reason(L, h, 1, 2);
  qn_task_abort(lq_core_task(h));
  return 0;
}

static int l_cancel(lua_State *L) {
  lq_task *h = lq_check_task(L, 1);
  if (runtime_of_handle(L, h) == NULL) return 0;
  set_reason(L, h, 1, 2);
  qn_task_cancel(lq_core_task(h));
  return 0;
}

/* h:stop's race: the join (child 0) against the grace period's timer
   (child 1); the handle is at stack index 1. */
static int stop_won(lua_State *L, qn_future *sel, long w) {
  (void)sel;
  (void)w;
  return lq_push_result(L, lua_touserdata(L, 1), 1);
}

static int stop_stopped(lua_State *L) {   /* the grace period is over */
  lq_task *h = lua_touserdata(L, 1);
  qn_task_abort(lq_core_task(h));
  return lq_push_result(L, h, 1);
}

static const lq_race stop_race = { "quench.task:stop", "stop", 1, 1, stop_won, stop_stopped };

/* h:stop(grace [, reason]): the escalation of S5 in one call. Cancel
   gracefully, wait up to `grace` seconds for the task to end, then abort it.
   Returns what join returns. */
static int l_stop(lua_State *L) {
  lq_task *h = lq_check_task(L, 1);
  lq_coro *c = lq_await_ctx(L, "quench.task:stop");
  uint64_t grace = lq_check_duration(L, 2);
  if (!lq_task_in(h, c->rt))
    return luaL_argerror(L, 1, "the task belongs to another runtime");
  if (h == lq_coro_task(c)) return luaL_error(L, "quench.task:stop: a task cannot stop itself (use cancel)");
  set_reason(L, h, 1, 3);
  qn_task *t = lq_core_task(h);
  qn_task_cancel(t);
  lua_settop(L, 1);
  lq_check_cancel(L, c);
  if (qn_task_get_state(t) == QN_TASK_DONE) return lq_push_result(L, h, 1);
  qn_future *children[2] = { qn_join_new(t), qn_sleep_new(c->rt->core, lq_deadline_after(c->rt, grace)) };
  if (children[0] == NULL || children[1] == NULL) {
    if (children[0]) qn_drop(children[0]);
    if (children[1]) qn_drop(children[1]);
    return luaL_error(L, "quench.task:stop: out of memory");
  }
  return lq_race_await(L, c, &stop_race, children, 2, 1);
}

static int l_done(lua_State *L) {
  lq_task *h = lq_check_task(L, 1);
  lua_pushboolean(L, qn_task_get_state(lq_core_task(h)) == QN_TASK_DONE);
  return 1;
}

static int l_detach(lua_State *L) {
  lq_task *h = lq_check_task(L, 1);
  h->coro.detached = 1;
  qn_task *t = lq_core_task(h);
  if (qn_task_get_state(t) == QN_TASK_DONE && qn_task_get_outcome(t) == QN_TASK_FAILED)
    lq_report(L, runtime_of_handle(L, h), h, 1);
  return 0;
}

static int l_id(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)qn_task_id(lq_core_task(lq_check_task(L, 1))));
  return 1;
}

static const char *state_name(qn_task *t) {
  static const char *const names[] = { "pending", "suspended", "running", "done" };
  return names[qn_task_get_state(t)];
}

static int l_state(lua_State *L) {
  lua_pushstring(L, state_name(lq_core_task(lq_check_task(L, 1))));
  return 1;
}

/* h:defer(fn): run fn when the task ends, on every outcome, as if the task
   had called quench.defer(fn) first (also when it is aborted before it ran). */
static int l_task_defer(lua_State *L) {
  lq_task *h = lq_check_task(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (qn_task_get_state(lq_core_task(h)) == QN_TASK_DONE)
    return luaL_error(L, "quench.task:defer: the task has ended");
  lq_push_extras(L, 1);
  if (lua_getfield(L, -1, "defers") != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "defers");
  }
  int n = (int)lua_rawlen(L, -1);
  for (int i = n; i >= 1; i--) {       /* first in, so it runs last (LIFO) */
    lua_rawgeti(L, -1, i);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, 1);
  return 0;
}

/* h:name([new]): read or set the task's name (shown by quench.tasks()). */
static int l_name(lua_State *L) {
  lq_check_task(L, 1);
  if (lua_gettop(L) >= 2) {
    if (!lua_isnil(L, 2)) luaL_checktype(L, 2, LUA_TSTRING);
    lq_push_extras(L, 1);
    lua_pushvalue(L, 2);
    lua_setfield(L, -2, "name");
    return 0;
  }
  if (lq_get_extras(L, 1) != LUA_TTABLE) return 0;
  lua_getfield(L, -1, "name");
  return 1;
}

/* h:traceback(): where a suspended task waits (nil if it is not suspended). */
static int l_traceback(lua_State *L) {
  lq_task *h = lq_check_task(L, 1);
  qn_task *t = lq_core_task(h);
  if (qn_task_get_state(t) != QN_TASK_SUSPENDED || h->coro.co == NULL) return 0;
  luaL_traceback(L, h->coro.co, NULL, 0);
  return 1;
}

static int l_close(lua_State *L) {
  lq_task *h = lq_check_task(L, 1);
  if (h->coro.detached || runtime_of_handle(L, h) == NULL) return 0;
  qn_task_abort(lq_core_task(h));
  return 0;
}

/* Collection is never cancellation: the task is done by now (alive tasks
   are anchored), so only report an unobserved failure and forget it. */
static int l_gc(lua_State *L) {
  lq_task *h = lq_toudata(L, 1, &lq_coro_vt, sizeof(lq_task));   /* __gc may be called by hand */
  if (h == NULL || h->coro.kind != CORO_TASK) return 0;
  qn_task *t = lq_core_task(h);
  if (qn_task_get_state(t) != QN_TASK_DONE && qn_task_runtime(t) != NULL)
    return 0;                           /* alive tasks are anchored: only a direct call gets here */
  lq_runtime *rt = runtime_of_handle(L, h);
  if (qn_task_get_outcome(t) == QN_TASK_FAILED && rt != NULL) lq_report(L, rt, h, 1);
  if (rt != NULL) qn_task_fini(t);
  return 0;
}

static int l_tostring(lua_State *L) {
  lq_task *h = lq_check_task(L, 1);
  qn_task *t = lq_core_task(h);
  lua_pushfstring(L, "quench.task #%d (%s)", (int)qn_task_id(t), state_name(t));
  return 1;
}

/* What a task waits for, in words. */
static void push_waiting(lua_State *L, lq_task *h) {
  lq_coro *c = &h->coro;
  if (qn_task_get_state(lq_core_task(h)) != QN_TASK_SUSPENDED) {
    lua_pushnil(L);
  } else if (c->suspend == LQ_SUSPEND_PARKED) {
    lua_pushliteral(L, "aborting");
  } else if (c->suspend == LQ_SUSPEND_YIELD) {
    lua_pushliteral(L, "yield");
  } else if (c->op == NULL) {
    lua_pushliteral(L, "nothing");
  } else if (c->what && strcmp(c->what, "sleep") == 0) {
    lua_pushfstring(L, "sleep until %f", (double)qn_sleep_deadline(c->op) / 1e9);
  } else {
    lua_pushstring(L, c->what ? c->what : "op");
  }
}

/* Push "file:line" where the task's function is defined (nil for a C
   function): free to keep, as it is read from the function itself when
   asked, unlike the spawn site. Before the task starts the function is its
   user value 1 (alone, or first in the arguments' table); once it runs, the
   deepest frame of its thread. */
static void push_body_site(lua_State *L, lq_task *h, int ud) {
  lua_Debug ar;
  lua_State *co = h->coro.co;
  if (co != NULL) {
    int level = 0;
    while (lua_getstack(co, level + 1, &ar)) level++;
    if (!lua_getstack(co, level, &ar) || !lua_getinfo(co, "S", &ar)) {
      lua_pushnil(L);
      return;
    }
  } else {
    if (qn_task_get_state(lq_core_task(h)) == QN_TASK_DONE) {
      lua_pushnil(L);
      return;
    }
    if (lua_getiuservalue(L, ud, 1) == LUA_TTABLE) lua_rawgeti(L, -1, 1);
    if (!lua_isfunction(L, -1)) {
      lua_settop(L, ud);
      lua_pushnil(L);
      return;
    }
    lua_getinfo(L, ">S", &ar);
    lua_settop(L, ud);
  }
  if (ar.linedefined <= 0) lua_pushnil(L);  /* a C function, or a main chunk */
  else lua_pushfstring(L, "%s:%d", ar.short_src, ar.linedefined);
}

typedef struct list_ctx {
  lua_State *L;
  lq_runtime *rt;
  int list, n;
} list_ctx;


/* ns since a spawn time kept as 32 bits of 2^LQ_SPAWN_TIME_SHIFT ns
   (lq_task): exact up to that unit, for ages under 2^32 units. */
static uint64_t spawn_age(uint64_t now, uint32_t spawned_at) {
  uint64_t units = now >> LQ_SPAWN_TIME_SHIFT;
  uint64_t spawned = units - (uint32_t)((uint32_t)units - spawned_at);
  return now - (spawned << LQ_SPAWN_TIME_SHIFT);
}
static void list_one(qn_task *t, void *arg) {
  list_ctx *x = arg;
  lua_State *L = x->L;
  lq_task *h = lq_task_of(t);
  lua_createtable(L, 0, 9);
  int entry = lua_gettop(L);
  lq_push_handle(L, x->rt, h);
  int ud = lua_gettop(L);
  lua_setfield(L, entry, "handle");
  lua_getfield(L, entry, "handle");     /* keep it at ud */
  lua_pushinteger(L, (lua_Integer)qn_task_id(t));
  lua_setfield(L, entry, "id");
  lua_pushstring(L, state_name(t));
  lua_setfield(L, entry, "state");
  if (lq_get_extras(L, ud) == LUA_TTABLE) {
    lua_getfield(L, -1, "name");
    lua_setfield(L, entry, "name");
    lua_getfield(L, -1, "site");
    lua_setfield(L, entry, "site");
  }
  lua_settop(L, ud);
  push_body_site(L, h, ud);
  lua_setfield(L, entry, "defined");
  lua_settop(L, entry);
  push_waiting(L, h);
  lua_setfield(L, entry, "waiting");
  lua_pushnumber(L, (lua_Number)spawn_age(qn_now(x->rt->core), h->spawned_at) / 1e9);
  lua_setfield(L, entry, "age");
  if (h->parent_gap != 0) {
    lua_pushinteger(L, (lua_Integer)(qn_task_id(t) - h->parent_gap));
    lua_setfield(L, entry, "parent");
  }
  lua_rawseti(L, x->list, ++x->n);
}

/* quench.tasks(): every live task: {id, name, state, waiting, age, handle}. */
static int l_tasks(lua_State *L) {
  lq_runtime *rt = lq_runtime_of(L, "quench.tasks");
  lua_newtable(L);
  list_ctx x = { L, rt, lua_gettop(L), 0 };
  qn_runtime_each_task(rt->core, list_one, &x);
  return 1;
}

/* quench.record_spawn_sites([on]): whether spawns note where they were made
   (file:line, in quench.tasks() as `site`); returns the previous setting.
   Off by default: reading the stack costs each spawn a little. */
static int l_record_spawn_sites(lua_State *L) {
  lq_runtime *rt = lq_runtime_of(L, "quench.record_spawn_sites");
  int was = rt->spawn_sites;
  if (!lua_isnone(L, 1)) {
    luaL_checktype(L, 1, LUA_TBOOLEAN);
    rt->spawn_sites = lua_toboolean(L, 1);
  }
  lua_pushboolean(L, was);
  return 1;
}

/* quench.stats(): counters of the running runtime. Outside a runtime: the
   core's memory only, as the last runtime left it. */
static int l_stats(lua_State *L) {
  lq_module *m = lq_module_of(L);
  lq_runtime *rt = m->rt;
  if (rt == NULL) {
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)m->heap.allocs);
    lua_setfield(L, -2, "allocs");
    lua_pushinteger(L, (lua_Integer)m->heap.live);
    lua_setfield(L, -2, "live_blocks");
    lua_pushinteger(L, (lua_Integer)lq_arena_bytes(m->heap.arena));
    lua_setfield(L, -2, "arena_bytes");
    return 1;
  }
  const qn_stats *st = qn_runtime_stats(rt->core);
  lua_createtable(L, 0, 9);
  lua_pushinteger(L, (lua_Integer)lq_arena_bytes(m->heap.arena));
  lua_setfield(L, -2, "arena_bytes");
  lua_pushinteger(L, (lua_Integer)st->allocs);
  lua_setfield(L, -2, "allocs");
  lua_pushinteger(L, (lua_Integer)st->live_blocks);
  lua_setfield(L, -2, "live_blocks");
  lua_pushinteger(L, (lua_Integer)st->spawned);
  lua_setfield(L, -2, "spawned");
  lua_pushinteger(L, (lua_Integer)st->finished);
  lua_setfield(L, -2, "finished");
  lua_pushinteger(L, (lua_Integer)st->cancelled);
  lua_setfield(L, -2, "cancelled");
  lua_pushinteger(L, (lua_Integer)st->failed);
  lua_setfield(L, -2, "failed");
  lua_pushinteger(L, (lua_Integer)st->polls);
  lua_setfield(L, -2, "polls");
  lua_pushinteger(L, (lua_Integer)(st->spawned - st->finished));
  lua_setfield(L, -2, "alive");
  return 1;
}

/* ---- for the Lua sugar (lua/quench/structured.lua), not in the module ---- */

/* outcome(h): how a task of this runtime ended, once that is settled,
   without waiting (not an await, so not a cancellation point) and without
   marking a failure observed: "ok", "cancelled", or "failed" and the error.
   Nothing while the task is not done or still runs its cleanup (an aborted
   task is done before its defers have run, and its outcome is stored after
   them). A scope reads its finished children with it from any context, a
   cleanup included. */
static int l_internal_outcome(lua_State *L) {
  lq_task *h = lq_check_task(L, 1);
  lq_runtime *rt = runtime_of_handle(L, h);
  if (rt == NULL) return luaL_argerror(L, 1, "the task belongs to another runtime");
  qn_task *t = lq_core_task(h);
  if (qn_task_get_state(t) != QN_TASK_DONE || rt->running == &h->coro) return 0;
  switch (qn_task_get_outcome(t)) {
  case QN_TASK_OK: lua_pushliteral(L, "ok"); return 1;
  case QN_TASK_CANCELLED: lua_pushliteral(L, "cancelled"); return 1;
  default:
    lua_pushliteral(L, "failed");
    lua_getiuservalue(L, 1, 1);
    return 2;
  }
}

/* observe(h): mark a done task's failure observed (as a join would), so it
   is not reported as nobody's. */
static int l_internal_observe(lua_State *L) {
  lq_check_task(L, 1)->coro.observed = 1;
  return 0;
}

/* task_of(v): "this" for a task handle of the running runtime, "other" for
   one of another (ended) runtime, nil for anything else. */
static int l_internal_task_of(lua_State *L) {
  lq_task *h = lq_toudata(L, 1, &lq_coro_vt, sizeof(lq_task));
  if (h == NULL || h->coro.kind != CORO_TASK) return 0;
  lua_pushstring(L, runtime_of_handle(L, h) != NULL ? "this" : "other");
  return 1;
}

static const luaL_Reg internals[] = {
  {"outcome", l_internal_outcome}, {"observe", l_internal_observe},
  {"task_of", l_internal_task_of}, {NULL, NULL}
};

/* Push the table of internals the embedded Lua chunks get as their second
   argument (the module is the first). */
void lq_task_internals(lua_State *L, int mod) {
  lua_newtable(L);
  lua_pushvalue(L, mod);
  luaL_setfuncs(L, internals, 1);
  lq_context_internals(L, mod);
}

static const luaL_Reg methods[] = {
  {"join", l_join}, {"join_op", l_join_op}, {"abort", l_abort}, {"cancel", l_cancel}, {"done", l_done},
  {"detach", l_detach}, {"id", l_id}, {"state", l_state}, {"stop", l_stop},
  {"name", l_name}, {"traceback", l_traceback}, {"defer", l_task_defer}, {NULL, NULL}
};

static const luaL_Reg metamethods[] = {
  {"__close", l_close}, {"__tostring", l_tostring}, {NULL, NULL}
};

static const luaL_Reg functions[] = {
  {"spawn", l_spawn}, {"tasks", l_tasks}, {"stats", l_stats},
  {"record_spawn_sites", l_record_spawn_sites}, {NULL, NULL}
};

/* Fill the module table (at -1) and the task metatable; mod_idx is the module state. */
void lq_task_register(lua_State *L, int mod) {
  lq_guard_register(L, mod);            /* the guard of the threads tasks run on (coro.c) */
  lq_task_state_register(L);            /* the weak table handle -> extras */
  lq_module *m = lua_touserdata(L, mod);
  luaL_newmetatable(L, LQ_TASK);
  lua_pushvalue(L, -1);
  m->mt_task = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, mod);
  luaL_setfuncs(L, metamethods, 1);
  lua_newtable(L);
  lua_pushvalue(L, mod);
  luaL_setfuncs(L, methods, 1);
  lua_setfield(L, -2, "__index");
  lua_pushliteral(L, LQ_TASK);
  lua_setfield(L, -2, "__name");
  /* A failed task's handle gets, at its task's drop (coro.c), the same
     metatable with __gc: only a failure has anything left to do when its
     handle is collected. Every other handle is finalised at its task's
     drop and has no finalizer: the collector calls none per task. */
  lua_createtable(L, 0, 5);
  lua_pushnil(L);
  while (lua_next(L, -3)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  lua_pushvalue(L, mod);
  lua_pushcclosure(L, l_gc, 1);
  lua_setfield(L, -2, "__gc");
  m->mt_task_failed = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);
  lua_pushvalue(L, mod);
  luaL_setfuncs(L, functions, 1);
}
