/*
** Cancellation tokens ("quench.token"): a flag in a tree. cancel is
** idempotent (the first reason is kept), a child is cancelled with its
** parent and never the reverse, is_cancelled is a field read. A child keeps
** its parent alive (user value 1); a parent does not keep its children, so
** dropping a child releases it. The reason lives on the token where the
** cancel started (user value 2).
*/
#include <stddef.h>
#include "binding.h"

static qn_token *token_of(lua_State *L, int idx) {
  return (qn_token *)luaL_checkudata(L, idx, LQ_TOKEN);
}

qn_token *lq_check_token(lua_State *L, int idx) { return token_of(L, idx); }

static void new_token(lua_State *L, int parent) {
  qn_token *t = lua_newuserdatauv(L, qn_token_size(), 2);
  qn_token_init(t, parent ? lua_touserdata(L, parent) : NULL);
  luaL_setmetatable(L, LQ_TOKEN);
  if (parent) {
    lua_pushvalue(L, parent);
    lua_setiuservalue(L, -2, 1);
  }
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

static int l_token(lua_State *L) {
  new_token(L, 0);
  return 1;
}

static int l_child(lua_State *L) {
  token_of(L, 1);
  new_token(L, 1);
  return 1;
}

/* t:cancel([reason]): true if this call cancelled it. */
static int l_cancel(lua_State *L) {
  qn_token *t = token_of(L, 1);
  int first = qn_token_cancel(t);
  if (first && !lua_isnoneornil(L, 2)) {
    lua_pushvalue(L, 2);
    lua_setiuservalue(L, 1, 2);
  }
  lua_pushboolean(L, first);
  return 1;
}

static int l_is_cancelled(lua_State *L) {
  lua_pushboolean(L, qn_token_is_cancelled(token_of(L, 1)));
  return 1;
}

static int l_reason(lua_State *L) {
  token_of(L, 1);
  lq_push_token_reason(L, 1);
  return 1;
}

/* t:cancelled() and t:cancelled_op(): wait until cancelled; the reason.
   Operand 1 is the token (lq_op_arg). */
static qn_token *op_token(lua_State *L, int op) {
  lq_op_arg(L, op, 1);
  qn_token *t = lua_touserdata(L, -1);
  lua_pop(L, 1);                        /* the op or the caller keeps it */
  return t;
}

static qn_future *cancelled_start(lua_State *L, int op, lq_coro *c) {
  return qn_token_cancelled_new(c->rt->core, op_token(L, op));
}

static int cancelled_finish(lua_State *L, int op, qn_future *f) {
  (void)f;
  lq_op_arg(L, op, 1);
  lq_push_token_reason(L, -1);
  lua_remove(L, -2);
  return 1;
}

static int cancelled_now(lua_State *L, int op) {
  if (!qn_token_is_cancelled(op_token(L, op))) return -1;
  return cancelled_finish(L, op, NULL);
}

static const lq_op_kind cancelled_kind = { "cancelled", NULL, cancelled_start, cancelled_finish,
                                           cancelled_now };

static int l_cancelled(lua_State *L) {
  token_of(L, 1);
  lq_coro *c = lq_await_ctx(L, "quench.token:cancelled");
  lua_settop(L, 1);
  return lq_perform(L, c, &cancelled_kind, 0, "quench.token:cancelled",
                    "token cancelled");
}

static int l_cancelled_op(lua_State *L) {
  token_of(L, 1);
  return lq_op_for(L, &cancelled_kind, 1);
}

/* token:run's race: the token's cancelled (child 0, so it wins a tie)
   against the branch (child 1, at stack index 2; the token is at 1). */
static int run_won(lua_State *L, qn_future *sel, long w) {
  (void)sel;
  (void)w;
  lua_pushboolean(L, 1);
  int n = lq_branch_results(L, lua_touserdata(L, 2));
  return n < 0 ? n : n + 1;
}

static int run_stopped(lua_State *L) {
  lua_pushboolean(L, 0);
  lq_push_token_reason(L, 1);
  lq_push_cancelled(L, -1);
  lua_remove(L, -2);
  return 2;
}

static const lq_race run_race = { "quench.token:run", "select", 0, 0, run_won, run_stopped };

/* t:run(fn, ...): true, fn's results; or false, Cancelled once the token is
   cancelled (fn is then dropped). A cancelled token does not start fn. */
static int l_run(lua_State *L) {
  qn_token *t = token_of(L, 1);
  lq_coro *c = lq_await_ctx(L, "quench.token:run");
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lq_check_cancel(L, c);
  lq_check_nesting(L, c, "quench.token:run");
  qn_future *children[2];
  lq_coro *b = lq_branch_new(L, c, 2, lua_gettop(L) - 2);
  lua_replace(L, 2);
  lua_settop(L, 2);
  children[1] = &b->base;
  children[0] = qn_token_cancelled_new(c->rt->core, t);
  if (children[0] == NULL) {
    qn_drop(children[1]);
    return luaL_error(L, "quench.token:run: out of memory");
  }
  return lq_race_await(L, c, &run_race, children, 2, 1);
}

static int cancel_upvalue(lua_State *L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_settop(L, 1);
  qn_token_cancel(lua_touserdata(L, 1));
  return 0;
}

/* t:guard(): a <close> value that cancels the token at scope exit. */
static int l_guard(lua_State *L) {
  token_of(L, 1);
  lua_settop(L, 1);
  lua_pushcclosure(L, cancel_upvalue, 1);
  lua_newuserdatauv(L, 0, 1);
  lua_insert(L, -2);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, LQ_GUARD);
  return 1;
}

/* token:spawn's link from the token to the task: a userdata kept in the
   task's extras (as "bind"), linked while the task is not done. */
typedef struct bind_box {
  qn_token_watch w;
  lq_task *h;
} bind_box;

static void on_token_cancel(qn_token_watch *w) {
  lq_task *h = ((bind_box *)w)->h;
  if (h->coro.reason == REASON_NONE) h->coro.reason = REASON_TOKEN;
  qn_task_cancel(lq_core_task(h));
}

/* Bind the task `h` (handle at ud) to the token at token_idx. */
void lq_task_bind(lua_State *L, lq_task *h, int ud, int token_idx) {
  qn_token *t = token_of(L, token_idx);
  lq_push_extras(L, ud);
  lua_pushvalue(L, token_idx);
  lua_setfield(L, -2, "token");         /* keeps the token alive with the task */
  bind_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  lua_setfield(L, -2, "bind");
  lua_pop(L, 1);
  b->h = h;
  b->w.fn = on_token_cancel;
  b->w.next = b->w.prev = NULL;
  if (qn_token_is_cancelled(t)) {
    on_token_cancel(&b->w);
  } else {
    qn_token_watch_add(t, &b->w);
    h->coro.bound = 1;
  }
}

/* At the task's drop: the token cancels it no more. */
void lq_task_unbind(lua_State *L, lq_task *h, int ud) {
  h->coro.bound = 0;
  lq_get_extras(L, ud);
  lua_getfield(L, -1, "bind");
  bind_box *b = lua_touserdata(L, -1);
  if (b->w.next != NULL) qn_token_watch_remove(&b->w);
  lua_pop(L, 2);
}

/* t:spawn(fn, ...): a task that is cancelled (gracefully) with the token. */
static int l_spawn(lua_State *L) {
  token_of(L, 1);
  lq_runtime *rt = lq_runtime_of(L, "quench.token:spawn");
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lq_spawn_at(L, rt, 2);
  lq_task_bind(L, lua_touserdata(L, -1), lua_gettop(L), 1);
  return 1;
}

static int l_gc(lua_State *L) {
  qn_token *t = luaL_testudata(L, 1, LQ_TOKEN);   /* __gc may be called by hand */
  if (t != NULL) qn_token_fini(t);      /* idempotent: the token becomes a root */
  return 0;
}

static int l_tostring(lua_State *L) {
  qn_token *t = token_of(L, 1);
  lua_pushfstring(L, "quench.token (%s)", qn_token_is_cancelled(t) ? "cancelled" : "active");
  return 1;
}

static const luaL_Reg methods[] = {
  {"cancel", l_cancel}, {"is_cancelled", l_is_cancelled}, {"reason", l_reason},
  {"cancelled", l_cancelled}, {"cancelled_op", l_cancelled_op}, {"child", l_child},
  {"guard", l_guard}, {"run", l_run}, {"spawn", l_spawn}, {NULL, NULL}
};

static const luaL_Reg metamethods[] = {
  {"__gc", l_gc}, {"__tostring", l_tostring}, {NULL, NULL}
};

void lq_token_register(lua_State *L, int mod) {
  lq_class(L, mod, LQ_TOKEN, methods, metamethods);
  lua_pushvalue(L, mod);
  lua_pushcclosure(L, l_token, 1);
  lua_setfield(L, -2, "token");
}
