/*
** Task state: what a task's handle holds besides its coroutine, read and
** written by the driver (coro.c) and the Lua-facing files alike: the
** extras table (binding.h), the reason of a cancel (given, or a token's),
** the task's Cancelled and its result, the report of a failure nobody
** observed, and the unbinding of a token at the drop. A floor file: it
** calls only module.c and error.c, never the driver or a Lua-facing file.
*/
#include <stdio.h>
#include <string.h>
#include "binding.h"

lq_task *lq_check_task(lua_State *L, int idx) {
  lq_task *h = lq_toudata(L, idx, &lq_coro_vt, sizeof(lq_task));
  if (h == NULL || h->coro.kind != CORO_TASK) luaL_typeerror(L, idx, LQ_TASK);
  return h;
}

/* The registry key of the weak-keyed table handle -> extras. */
static const char extras_key = 0;

/* Push the extras of the handle at ud, made if it has none. */
void lq_push_extras(lua_State *L, int ud) {
  ud = lua_absindex(L, ud);
  lq_task *h = lua_touserdata(L, ud);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &extras_key);
  if (h->coro.has_extras) {
    lua_pushvalue(L, ud);
    lua_rawget(L, -2);
  } else {
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, ud);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
    h->coro.has_extras = 1;
  }
  lua_remove(L, -2);
}

/* Push the extras of the handle at ud, or nil if it has none; the type. */
int lq_get_extras(lua_State *L, int ud) {
  lq_task *h = lua_touserdata(L, ud);
  if (!h->coro.has_extras) {
    lua_pushnil(L);
    return LUA_TNIL;
  }
  ud = lua_absindex(L, ud);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &extras_key);
  lua_pushvalue(L, ud);
  int t = lua_rawget(L, -2);
  lua_remove(L, -2);
  return t;
}

/* The reason of the first cancel or abort: given to it, or the reason of
   the bound token's cancel. */
void lq_push_reason(lua_State *L, lq_task *h, int ud) {
  if (h->coro.reason == REASON_NONE || !h->coro.has_extras) {   /* no extras: no reason given */
    lua_pushnil(L);
    return;
  }
  if (lq_get_extras(L, ud) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_pushnil(L);
    return;
  }
  if (h->coro.reason == REASON_OWN) {
    lua_getfield(L, -1, "reason");
  } else {
    lua_getfield(L, -1, "token");
    lq_push_token_reason(L, lua_gettop(L));
    lua_remove(L, -2);
  }
  lua_remove(L, -2);
}

/* Push the reason given where the cancel that reached the token started. */
void lq_push_token_reason(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  qn_token *t = lua_touserdata(L, idx);
  qn_token *origin = t ? qn_token_origin(t) : NULL;
  if (origin == NULL) {
    lua_pushnil(L);
    return;
  }
  lua_pushvalue(L, idx);
  while (lua_touserdata(L, -1) != origin) {   /* ancestors are kept alive by their children */
    if (lua_getiuservalue(L, -1, 1) != LUA_TUSERDATA) {
      lua_pop(L, 2);
      lua_pushnil(L);
      return;
    }
    lua_remove(L, -2);
  }
  lua_getiuservalue(L, -1, 2);
  lua_remove(L, -2);
}

/* The Cancelled of a task's drop or cancellation point, with the task's
   reason if it has one (h's handle at ud). Every abort makes one, so the
   metatable comes out of rt's keep: an array look-up on the keep thread
   instead of a registry look-up by address. */
void lq_push_task_cancelled(lq_runtime *rt, lua_State *L, lq_task *h, int ud) {
  int has_reason = 0;
  if (h->coro.reason != REASON_NONE && h->coro.has_extras) {   /* else: no reason was given */
    lq_push_reason(L, h, ud);
    has_reason = !lua_isnil(L, -1);
    if (!has_reason) lua_pop(L, 1);
  }
  lua_createtable(L, 0, has_reason);
  lq_push_kept(L, &rt->keep, rt->keep_cancelled);
  lua_setmetatable(L, -2);
  if (has_reason) {
    lua_insert(L, -2);
    lua_setfield(L, -2, "reason");
  }
}

/* The Cancelled of a dropped task, made once, on first demand: a task
   aborted and never joined (a scope's leftovers, a loser) costs no table.
   Its reason cannot change once the task is done (set_reason, tokens). */
static void make_cancelled(lua_State *L, lq_task *h, int ud) {
  lq_runtime *rt = lq_module_of(L)->rt;   /* callers are the module's functions */
  if (rt != NULL) {
    lq_push_task_cancelled(rt, L, h, ud);   /* the metatable out of the keep */
  } else {                                  /* quench.run's main task, after the run */
    lq_push_reason(L, h, ud);
    lq_push_cancelled(L, -1);
    lua_remove(L, -2);
  }
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, ud, 1);
  h->coro.cancel_unmade = 0;
}

/* Push true, results... or false, err for a done task. */
int lq_push_result(lua_State *L, lq_task *h, int ud) {
  h->coro.observed = 1;
  qn_task *t = lq_core_task(h);
  if (qn_task_get_outcome(t) != QN_TASK_OK) {
    lua_pushboolean(L, 0);
    if (h->coro.cancel_unmade) make_cancelled(L, h, ud);
    else lua_getiuservalue(L, ud, 1);
    return 2;
  }
  lua_pushboolean(L, 1);
  int nres = h->coro.nres;
  if (nres == 0) return 1;
  luaL_checkstack(L, nres + 1, "quench: too many results");
  lua_getiuservalue(L, ud, 1);
  if (nres == 1) return 2;
  int tbl = lua_gettop(L);
  for (int i = 1; i <= nres; i++) lua_rawgeti(L, tbl, i);
  lua_remove(L, tbl);
  return 1 + nres;
}

static void write_report(lua_State *L, lq_task *h, int ud) {
  lq_get_extras(L, ud);
  const char *tb = NULL;
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "traceback");
    tb = lua_tostring(L, -1);
  }
  if (tb == NULL) {
    lua_getiuservalue(L, ud, 1);
    tb = luaL_tolstring(L, -1, NULL);
  }
  fprintf(stderr, "quench: task %llu failed and nobody joined it: %s\n",
          (unsigned long long)qn_task_id(lq_core_task(h)), tb);
  fflush(stderr);
}

/* S13: a failure nobody observes is reported once, with its traceback:
   at once for a detached task, else when its handle is collected or the
   runtime ends. opts.on_task_error(err, traceback, handle) can take it. */
void lq_report(lua_State *L, lq_runtime *rt, lq_task *h, int ud) {
  if (h->coro.observed || h->coro.reported) return;
  h->coro.reported = 1;
  int top = lua_gettop(L);
  if (rt != NULL && rt->keep_on_error != LQ_NOKEEP) {
    lq_push_kept(L, &rt->keep, rt->keep_on_error);
    lua_getiuservalue(L, ud, 1);
    lq_get_extras(L, ud);
    if (lua_istable(L, -1)) lua_getfield(L, -1, "traceback");
    else lua_pushnil(L);
    lua_remove(L, -2);
    lua_pushvalue(L, ud);
    if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
      fprintf(stderr, "quench: on_task_error raised: %s\n", luaL_tolstring(L, -1, NULL));
      write_report(L, h, ud);
    }
  } else {
    write_report(L, h, ud);
  }
  lua_settop(L, top);
}

void lq_report_failure(lua_State *L, lq_runtime *rt, lq_task *h, int ud) {
  if (h->coro.detached) {
    lq_report(L, rt, h, ud);
    return;
  }
  lq_push_kept(L, &rt->keep, rt->keep_failed);       /* remembered (weakly) until the run ends */
  lua_pushvalue(L, ud);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

/* At the end of a run: every failed, unobserved task whose handle lives on. */
void lq_report_unobserved(lq_runtime *rt) {
  lua_State *S = lq_scratch(rt);
  lq_push_kept(S, &rt->keep, rt->keep_failed);
  int t = lua_gettop(S);
  lua_pushnil(S);
  while (lua_next(S, t)) {
    lua_pop(S, 1);
    lq_report(S, rt, lua_touserdata(S, -1), lua_gettop(S));
  }
  lua_pop(S, 1);
}

/* At the task's drop: the token cancels it no more. */
void lq_task_unbind(lua_State *L, lq_task *h, int ud) {
  h->coro.bound = 0;
  lq_get_extras(L, ud);
  lua_getfield(L, -1, "bind");
  lq_bind_box *b = lua_touserdata(L, -1);
  if (b->w.next != NULL) qn_token_watch_remove(&b->w);
  lua_pop(L, 2);
}

/* The weak-keyed table handle -> extras, in the registry. */
void lq_task_state_register(lua_State *L) {
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &extras_key);
}
