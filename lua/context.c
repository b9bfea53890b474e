/*
** Task-local context: the C half of quench.context (lua/quench/context.lua).
** A context is an immutable chain of Lua frames {key, value, parent}; the
** Lua side builds frames, this file only says which frame is current.
**
** Where the current frame lives: a coroutine that entered context.with has
** its frame in the module's frame table, keyed by its lq_coro (a light
** pointer); with restores the previous entry when it ends, however it ends
** (a <close> variable), so an entry never outlives the coroutine that made
** it. A select branch without an entry sees its enclosing coroutine's; a
** task without one sees the frame it inherited at spawn (extras.ctx). A
** spawn copies the reference to the spawner's current frame: O(1), and a
** child's later with never reaches its parent.
**
** Cost when no context is used: rt->ctx_used is 0, and spawn only tests it.
*/
#include <math.h>
#include "binding.h"

static const char frames_key = 0;       /* registry: light lq_coro -> frame */

/* Push the current frame of coroutine c (nil if none). */
static void push_frame_of(lua_State *L, lq_coro *c) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &frames_key);
  for (; c != NULL; c = lq_coro_parent(c)) {
    if (lua_rawgetp(L, -1, c) != LUA_TNIL) {
      lua_remove(L, -2);
      return;
    }
    lua_pop(L, 1);
    if (c->kind == CORO_TASK) break;
  }
  lua_pop(L, 1);
  lq_task *h = lq_coro_task(c);
  if (!h->coro.has_extras) {
    lua_pushnil(L);
    return;
  }
  lq_push_coro(L, c->rt, &h->coro);
  lq_get_extras(L, -1);
  lua_getfield(L, -1, "ctx");
  lua_replace(L, -3);
  lua_pop(L, 1);
}

/* At spawn (the new handle at ud): inherit the spawner's current frame. */
void lq_context_inherit(lua_State *L, lq_runtime *rt, int ud) {
  if (!rt->ctx_used || rt->running == NULL) return;
  ud = lua_absindex(L, ud);
  push_frame_of(L, rt->running);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  lq_push_extras(L, ud);
  lua_insert(L, -2);
  lua_setfield(L, -2, "ctx");
  lua_pop(L, 1);
}

/* internal.ctx_get(): the current frame, or nil (also outside a task). */
static int l_ctx_get(lua_State *L) {
  lq_runtime *rt = lq_module_of(L)->rt;
  if (rt == NULL || rt->running == NULL) return 0;
  push_frame_of(L, rt->running);
  return 1;
}

/* internal.ctx_set(frame): make frame (nil: none) the running coroutine's
   own; returns its previous own frame. */
static int l_ctx_set(lua_State *L) {
  lq_runtime *rt = lq_module_of(L)->rt;
  if (rt == NULL || rt->running == NULL)
    return luaL_error(L, "quench.context.with: not inside a task");
  lua_settop(L, 1);
  rt->ctx_used = 1;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &frames_key);
  lua_rawgetp(L, -1, rt->running);      /* the previous own frame */
  lua_pushvalue(L, 1);
  lua_rawsetp(L, 2, rt->running);
  return 1;
}

/* internal.branch_deadline(): the earliest deadline of the quench.timeout
   and quench.deadline branches the running code is inside, in quench.now()
   seconds (math.huge if none). The walk stops at the task: a task spawned
   inside a timeout is not dropped with it (scopes carry the bound to their
   children, lua/quench/structured.lua). */
static int l_branch_deadline(lua_State *L) {
  lq_runtime *rt = lq_module_of(L)->rt;
  uint64_t d = QN_NEVER;
  for (lq_coro *c = rt != NULL ? rt->running : NULL; c != NULL && c->kind == CORO_BRANCH;
       c = lq_coro_parent(c)) {
    uint64_t bd = ((lq_branch *)c)->deadline;
    if (bd < d) d = bd;
  }
  lua_pushnumber(L, d == QN_NEVER ? HUGE_VAL : (lua_Number)d / 1e9);
  return 1;
}

static const luaL_Reg internals[] = {
  {"ctx_get", l_ctx_get}, {"ctx_set", l_ctx_set}, {"branch_deadline", l_branch_deadline},
  {NULL, NULL}
};

/* Add the context internals to the internals table at -1. */
void lq_context_internals(lua_State *L, int mod) {
  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &frames_key);
  lua_pushvalue(L, mod);
  luaL_setfuncs(L, internals, 1);
}
