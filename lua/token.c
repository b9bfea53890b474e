/*
** Cancellation tokens ("quench.token"): a flag in a tree. cancel is
** idempotent (the first reason is kept), a child is cancelled with its
** parent and never the reverse, is_cancelled is a field read. A child keeps
** its parent alive (user value 1); a parent does not keep its children, so
** dropping a child releases it. The reason lives on the token where the
** cancel started (user value 2). User value 3 holds the token's armed
** on_cancel registrations (a set, made on the first one).
**
** on_cancel callbacks run synchronously, but never inside the core's walk
** over the tree (a callback is user code and may cancel, register or drop
** tokens): the walk only moves each fired registration onto the module's
** list of due callbacks, and t:cancel (or a token guard) runs that list
** before it returns. A due registration stays reachable through its
** token's set until it has run, so the list never points at freed memory.
*/
#include <stddef.h>
#include <stdio.h>
#include "binding.h"

#define LQ_CANCEL_REG "quench.cancel_registration"
#define REG_MAP "quench.cancel_regs"    /* registry: light pointer -> registration (weak) */

enum { REG_ARMED, REG_DUE, REG_DONE };

typedef struct lq_cancel_reg {
  qn_token_watch w;                      /* first: the watch is the registration */
  struct lq_cancel_reg *next, *prev;     /* the module's due list, while REG_DUE */
  lq_module *m;
  int state;
} lq_cancel_reg;

static qn_token *token_of(lua_State *L, int idx) {
  return (qn_token *)luaL_checkudata(L, idx, LQ_TOKEN);
}

qn_token *lq_check_token(lua_State *L, int idx) { return token_of(L, idx); }

static void new_token(lua_State *L, int parent) {
  qn_token *t = lua_newuserdatauv(L, qn_token_size(), 3);
  qn_token_init(t, parent ? lua_touserdata(L, parent) : NULL);
  luaL_setmetatable(L, LQ_TOKEN);
  if (parent) {
    lua_pushvalue(L, parent);
    lua_setiuservalue(L, -2, 1);
  }
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

/* ---- on_cancel registrations ---- */

static void due_unlink(lq_cancel_reg *r) {
  lq_module *m = r->m;
  if (r->prev) r->prev->next = r->next;
  else m->cancel_first = r->next;
  if (r->next) r->next->prev = r->prev;
  else m->cancel_last = r->prev;
  r->next = r->prev = NULL;
}

/* The watch fired (inside the core's walk): only queue the callback. */
static void on_reg_fire(qn_token_watch *w) {
  lq_cancel_reg *r = (lq_cancel_reg *)w;
  lq_module *m = r->m;
  r->state = REG_DUE;
  r->next = NULL;
  r->prev = m->cancel_last;
  if (m->cancel_last) m->cancel_last->next = r;
  else m->cancel_first = r;
  m->cancel_last = r;
}

/* The registration at idx is spent: out of its token's set, its function
   released. */
static void reg_forget(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  int top = lua_gettop(L);
  lq_cancel_reg *r = lua_touserdata(L, idx);
  r->state = REG_DONE;
  if (lua_getiuservalue(L, idx, 2) == LUA_TUSERDATA
      && lua_getiuservalue(L, -1, 3) == LUA_TTABLE) {
    lua_pushvalue(L, idx);
    lua_pushnil(L);
    lua_rawset(L, -3);
  }
  lua_settop(L, top);
  lua_pushnil(L);
  lua_setiuservalue(L, idx, 1);
}

/* A callback raised: it does not stop the cancel nor the other callbacks;
   the error is reported as a warning (opts.on_warning, or stderr). */
static void report_callback_error(lua_State *L, lq_module *m) {
  const char *msg = luaL_tolstring(L, -1, NULL);
  lua_pushfstring(L, "quench.token:on_cancel: a callback raised: %s", msg);
  if (m->rt != NULL) {
    lq_warn(m->rt, lua_tostring(L, -1));
  } else {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    fflush(stderr);
  }
  lua_pop(L, 3);
}

/* Run the callbacks the last cancels made due, in the order they fired. A
   callback that cancels another token adds to the list; this loop runs
   those too. */
static void run_due(lua_State *L, lq_module *m) {
  while (m->cancel_first != NULL) {
    lq_cancel_reg *r = m->cancel_first;
    due_unlink(r);
    lua_getfield(L, LUA_REGISTRYINDEX, REG_MAP);
    lua_rawgetp(L, -1, r);
    lua_remove(L, -2);
    if (lua_touserdata(L, -1) != r) {   /* being collected with its token */
      r->state = REG_DONE;
      lua_pop(L, 1);
      continue;
    }
    int reg = lua_gettop(L);
    lua_getiuservalue(L, reg, 1);       /* fn */
    lua_getiuservalue(L, reg, 2);
    lq_push_token_reason(L, -1);
    lua_remove(L, -2);
    reg_forget(L, reg);                 /* at most once, even if fn cancels again */
    lua_rotate(L, reg, -1);
    lua_pop(L, 1);                      /* fn, reason */
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) report_callback_error(L, m);
  }
}

static int l_reg_remove(lua_State *L) {
  lq_cancel_reg *r = luaL_checkudata(L, 1, LQ_CANCEL_REG);
  if (r->state == REG_DONE) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (r->state == REG_DUE) due_unlink(r);
  else qn_token_watch_remove(&r->w);
  reg_forget(L, 1);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_reg_close(lua_State *L) {
  l_reg_remove(L);
  return 0;
}

/* Collected only with its token (the token's set holds it while armed). */
static int l_reg_gc(lua_State *L) {
  lq_cancel_reg *r = luaL_testudata(L, 1, LQ_CANCEL_REG);
  if (r == NULL || r->state == REG_DONE) return 0;
  if (r->state == REG_DUE) due_unlink(r);
  else qn_token_watch_remove(&r->w);
  r->state = REG_DONE;
  return 0;
}

static int l_reg_tostring(lua_State *L) {
  lq_cancel_reg *r = luaL_checkudata(L, 1, LQ_CANCEL_REG);
  lua_pushfstring(L, "quench.cancel_registration (%s)",
                  r->state == REG_DONE ? "spent" : "armed");
  return 1;
}

/* t:on_cancel(fn): fn(reason) runs when the token is cancelled, at once if
   it already is; at most once. Returns the registration. */
static int l_on_cancel(lua_State *L) {
  qn_token *t = token_of(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  lq_cancel_reg *r = lua_newuserdatauv(L, sizeof *r, 2);
  r->w.fn = on_reg_fire;
  r->w.next = r->w.prev = NULL;
  r->next = r->prev = NULL;
  r->m = lq_module_of(L);
  r->state = REG_DONE;
  luaL_setmetatable(L, LQ_CANCEL_REG);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, 3, 2);
  if (qn_token_is_cancelled(t)) {       /* at once, in the caller: its error is the caller's */
    lua_pushvalue(L, 2);
    lq_push_token_reason(L, 1);
    lua_call(L, 1, 0);
    return 1;
  }
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, 3, 1);
  if (lua_getiuservalue(L, 1, 3) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, 1, 3);
  }
  lua_pushvalue(L, 3);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, REG_MAP);
  lua_pushvalue(L, 3);
  lua_rawsetp(L, -2, r);
  lua_pop(L, 1);
  r->state = REG_ARMED;
  qn_token_watch_add(t, &r->w);
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
  lua_settop(L, 1);
  run_due(L, lq_module_of(L));
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
  run_due(L, lua_touserdata(L, lua_upvalueindex(2)));
  return 0;
}

/* t:guard(): a <close> value that cancels the token at scope exit. */
static int l_guard(lua_State *L) {
  token_of(L, 1);
  lua_settop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushcclosure(L, cancel_upvalue, 2);
  lua_newuserdatauv(L, 0, 1);
  lua_insert(L, -2);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, LQ_GUARD);
  return 1;
}

static void on_token_cancel(qn_token_watch *w) {
  lq_task *h = ((lq_bind_box *)w)->h;
  if (h->coro.reason == REASON_NONE) h->coro.reason = REASON_TOKEN;
  qn_task_cancel(lq_core_task(h));
}

/* Bind the task `h` (handle at ud) to the token at token_idx. */
void lq_task_bind(lua_State *L, lq_task *h, int ud, int token_idx) {
  qn_token *t = token_of(L, token_idx);
  lq_push_extras(L, ud);
  lua_pushvalue(L, token_idx);
  lua_setfield(L, -2, "token");         /* keeps the token alive with the task */
  lq_bind_box *b = lua_newuserdatauv(L, sizeof *b, 0);
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
  {"guard", l_guard}, {"run", l_run}, {"spawn", l_spawn}, {"on_cancel", l_on_cancel},
  {NULL, NULL}
};

static const luaL_Reg reg_methods[] = { {"remove", l_reg_remove}, {NULL, NULL} };

static const luaL_Reg reg_metamethods[] = {
  {"__close", l_reg_close}, {"__gc", l_reg_gc}, {"__tostring", l_reg_tostring}, {NULL, NULL}
};

static const luaL_Reg metamethods[] = {
  {"__gc", l_gc}, {"__tostring", l_tostring}, {NULL, NULL}
};

void lq_token_register(lua_State *L, int mod) {
  lq_class(L, mod, LQ_TOKEN, methods, metamethods);
  lq_class(L, mod, LQ_CANCEL_REG, reg_methods, reg_metamethods);
  lua_newtable(L);                      /* REG_MAP: weak values, so it keeps nothing */
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "v");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, REG_MAP);
  lua_pushvalue(L, mod);
  lua_pushcclosure(L, l_token, 1);
  lua_setfield(L, -2, "token");
}
