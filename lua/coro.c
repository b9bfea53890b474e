/*
** A Lua coroutine as a core future. Polling resumes the coroutine; a quench
** function that waits builds an op (a core future), polls it once in place
** (a ready op completes without suspending) and otherwise stores it in the
** coroutine's context and yields (lua_yieldk). When the op's waker fires,
** the next poll polls the op again and, once ready, resumes the coroutine,
** whose continuation reads and drops the op.
**
** Dropping the future is cancelling it: the op is dropped, then the thread is
** closed (lua_resetthread), which runs its pending <close> variables, then
** the task's defers. Cleanup cannot wait: `closing` makes every await raise.
**
** Threads are reused from a pool, but a thread closed while suspended only
** when no C function's frame lies under the one that waits (see
** poolable_suspended): Lua 5.4.4's lua_resetthread leaves the thread's
** message handler index as it was, so a thread suspended inside xpcall
** would make every later error on it "error in error handling".
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "binding.h"

/* ---- thread pool ---- */

/* Pooled threads sit on the anchor thread's stack, above the alive table:
   taking one is a move from A's top, giving one back a move onto it. */
static lua_State *pool_take(lq_runtime *rt) {
  lua_State *S = lq_scratch(rt);
  if (rt->npool > 0) {
    rt->npool--;
    lua_xmove(rt->A, S, 1);
  } else {
    lua_newthread(S);
  }
  return lua_tothread(S, -1);   /* left on S: the caller anchors it */
}

/* Move the thread on top of S into the pool. */
static void pool_push(lq_runtime *rt) {
  if (!lua_checkstack(rt->A, 1)) {      /* no room: the thread is just not kept */
    lua_pop(rt->S, 1);
    return;
  }
  lua_xmove(rt->S, rt->A, 1);
  rt->npool++;
}

/* `co` is dead-or-finished with status OK. Keep it for a later task unless
   the pool is full; a recycled thread carries no hook and no stack values. */
void lq_pool_release(lq_runtime *rt, lua_State *co) {
  if (rt->npool >= POOL_MAX || lua_status(co) != LUA_OK || !lua_checkstack(rt->A, 1)) return;
  lua_settop(co, 0);
  lua_sethook(co, NULL, 0, 0);
  lua_pushthread(co);
  lua_xmove(co, rt->A, 1);
  rt->npool++;
}

/* Whether a thread suspended in a wait may go to the pool once closed. In
   5.4.4 a thread's message handler index (L->errfunc) is non-zero only
   while a lua_pcallk given a handler (xpcall, or a C library's) has not
   returned, and lua_resetthread does not clear it. Such a call is the frame
   of the C function that made it, under the frame that yielded (level 0,
   the quench function that waits). So with only Lua functions below level
   0 the index is 0, as in a new thread. Any C frame there (pcall too)
   makes us keep out of the pool, as does a deep stack. */
enum { POOL_MAX_LEVELS = 16 };
static int poolable_suspended(lq_runtime *rt, lua_State *co) {
  if (rt->npool >= POOL_MAX || !lua_checkstack(co, 1)) return 0;
  lua_Debug ar;
  for (int level = 1; lua_getstack(co, level, &ar); level++) {
    if (level > POOL_MAX_LEVELS) return 0;
    lua_getinfo(co, "f", &ar);
    int cfn = lua_iscfunction(co, -1);
    lua_pop(co, 1);
    if (cfn) return 0;
  }
  return 1;
}

void lq_coro_init(lq_coro *c, lq_runtime *rt, int kind) {
  memset(c, 0, sizeof *c);
  c->base.vt = &lq_coro_vt;
  c->rt = rt;
  c->kind = (unsigned)kind;
  c->slot = LUA_NOREF;
}

/* Push the userdata of a coroutine in use (a task's handle, a branch). */
int lq_push_coro(lua_State *L, lq_runtime *rt, lq_coro *c) {
  int t = lua_rawgeti(rt->A, LQ_A_ALIVE, c->slot);
  lua_xmove(rt->A, L, 1);
  return t;
}

/* Anchor the value on top of L (popped) in the alive table: its slot.
   Slots are reused through a C free list, so the table stays an array. */
int lq_anchor(lua_State *L, lq_runtime *rt) {
  int slot = rt->anchor_nfree > 0 ? rt->anchor_free[--rt->anchor_nfree] : ++rt->anchor_max;
  lua_xmove(L, rt->A, 1);
  lua_rawseti(rt->A, LQ_A_ALIVE, slot);
  return slot;
}

void lq_unanchor(lq_runtime *rt, int slot) {
  if (slot <= 0) return;                /* LUA_NOREF: not anchored */
  lua_pushnil(rt->A);
  lua_rawseti(rt->A, LQ_A_ALIVE, slot);
  lq_slot_free(&rt->anchor_free, &rt->anchor_nfree, &rt->anchor_cap, slot);
}

static lua_State *running_thread(lq_runtime *rt) {
  return rt->running ? rt->running->co : rt->L;
}

int lq_shielded(const lq_coro *c) {
  for (; c != NULL; c = lq_coro_parent(c))
    if (c->shield > 0) return 1;
  return 0;
}

static int cancel_due(lq_coro *c) {
  return qn_task_cancel_requested(lq_core_task(lq_coro_task(c))) && !c->parked && !lq_shielded(c);
}

/* ---- awaiting (called from Lua, on the coroutine's own thread) ---- */

static int coop_done_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status; (void)ctx;
  return lua_gettop(L);
}

/* The cooperative budget: the task has made LQ_COOP_BUDGET awaits in this
   poll, all ready at once, and is at one more. lq_await_ctx yields (as
   quench.yield does: to the back of the run queue) with this continuation,
   which starts the waiting function over: every waiting function calls
   lq_await_ctx before it changes its stack or anything else, so calling it
   again with the arguments still on the stack is the same call made later.
   The function is the one running at level 0, a continuation running in
   its frame; it is found here, not before the yield, to keep the debug
   record off the hot path's stack. Raises Cancelled if that came meanwhile. */
static int coop_retry_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status; (void)ctx;
  lq_resume_error(L, lq_module_of(L)->rt->running);
  lua_Debug ar;
  if (!lua_getstack(L, 0, &ar) || !lua_getinfo(L, "f", &ar))
    return luaL_error(L, "quench: internal error: no function to resume after yielding");
  lua_insert(L, 1);
  lua_callk(L, lua_gettop(L) - 1, LUA_MULTRET, 0, coop_done_k);
  return coop_done_k(L, LUA_OK, 0);
}

lq_coro *lq_await_ctx(lua_State *L, const char *fname) {
  lq_module *m = lq_module_of(L);
  lq_runtime *rt = m->rt;
  if (rt == NULL)
    luaL_error(L, "%s: not inside quench.run (waiting needs a running task)", fname);
  lq_coro *c = rt->running;
  if (c == NULL || c->co != L)
    luaL_error(L, "%s: called from a coroutine that is not a quench task or select branch "
                  "(a plain coroutine inside a task cannot wait)", fname);
  if (c->closing)
    luaL_error(L, "%s: cannot wait in drop-time cleanup (a <close> variable or defer "
                  "running while its task is dropped or finishing)", fname);
  if (!lua_isyieldable(L))   /* checked before any op exists: nothing to undo */
    luaL_error(L, "%s: cannot wait here: called through a C function that cannot "
                  "yield (string.gsub, table.sort, a metamethod, ...)", fname);
  if (--rt->coop < 0) {           /* the budget is spent: give way once */
    c->yielding = 1;
    lua_yieldk(L, 0, 0, coop_retry_k);
  }
  return c;
}

static int park_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status; (void)ctx;
  return luaL_error(L, "quench: a parked task was resumed");   /* unreachable: it is dropped */
}

static int cancel_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status; (void)ctx;
  lq_coro *c = lq_module_of(L)->rt->running;
  lq_resume_error(L, c);
  return luaL_error(L, "quench: internal error: a cancellation point resumed without its error");
}

/* The cancellation point of every await: a self-aborted task parks (the
   await never returns); a cancelled, unshielded one raises Cancelled. It
   raises after one trip through the scheduler, as trio's checkpoints do,
   so a task that swallows Cancelled in a loop still lets the others run
   (and the escalation to abort can reach it). */
int lq_check_cancel_slow(lua_State *L, lq_coro *c) {
  qn_task *t = lq_core_task(lq_coro_task(c));
  if (qn_task_abort_requested(t)) {
    c->parked = 1;
    return lua_yieldk(L, 0, 0, park_k);
  }
  if (cancel_due(c)) {
    c->yielding = 1;                  /* coro_poll delivers the error on resume */
    return lua_yieldk(L, 0, 0, cancel_k);
  }
  return 0;
}

int lq_resume_error(lua_State *L, lq_coro *c) {
  if (!c->resume_error) return 0;
  c->resume_error = 0;
  return lua_error(L);   /* the error value the driver pushed */
}

/* In a continuation: raise the error the driver resumed with, if any;
   else detach the completed op from the coroutine and return it. */
qn_future *lq_take_op(lua_State *L) {
  return lq_take_op_of(L, lq_module_of(L)->rt->running);
}

/* The same, for a continuation that was given its coroutine as context
   (an upvalue look-up less on the hottest awaits). */
qn_future *lq_take_op_of(lua_State *L, lq_coro *c) {
  lq_resume_error(L, c);
  qn_future *f = c->op;
  c->op = NULL;
  c->what = NULL;
  return f;
}

int lq_await(lua_State *L, lq_coro *c, qn_future *op, lua_KFunction k, lua_KContext ctx) {
  c->op = op;
  if (qn_poll(op, lq_coro_waker(c)) == QN_READY) return k(L, LUA_OK, ctx);
  return lua_yieldk(L, 0, ctx, k);
}

/* ---- driving ---- */

static int tostring_protected(lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  return 1;
}

/* Take the traceback of a failed coroutine, before closing it, into extras. */
static void save_traceback(lq_runtime *rt, lua_State *co, int ud) {
  lua_State *S = lq_scratch(rt);
  lua_pushcfunction(S, tostring_protected);
  lua_pushvalue(S, ud + 1);
  if (lua_pcall(S, 1, 1, 0) != LUA_OK || !lua_isstring(S, -1)) {
    lua_pop(S, 1);
    lua_pushliteral(S, "(error object is not a string)");
  }
  luaL_traceback(S, co, lua_tostring(S, -1), 0);
  lua_remove(S, -2);
  lq_push_extras(S, ud);
  lua_insert(S, -2);
  lua_setfield(S, -2, "traceback");
  lua_pop(S, 1);
}

/* Run the task's defers, last first, on `co` (a thread with status OK).
   Returns 1 when one raised: the first error is then on top of S. The
   others still run. */
static int run_defers(lq_runtime *rt, lq_task *h, int ud, lua_State *co) {
  if (!h->coro.has_extras) return 0;         /* the common case: no defers */
  lua_State *S = lq_scratch(rt);
  int base = lua_gettop(S), failed = 0;
  if (lq_get_extras(S, ud) != LUA_TTABLE ||
      lua_getfield(S, base + 1, "defers") != LUA_TTABLE) {
    lua_settop(S, base);
    return 0;
  }
  lua_pushnil(S);
  lua_setfield(S, base + 1, "defers");
  lua_pushnil(S);                       /* base + 3: the first error */
  lq_coro *c = &h->coro, *prev = rt->running;
  rt->running = c;
  c->closing = 1;
  for (lua_Integer i = luaL_len(S, base + 2); i >= 1; i--) {
    lua_rawgeti(S, base + 2, i);
    lua_xmove(S, co, 1);
    if (lua_pcall(co, 0, 0, 0) != LUA_OK) {
      if (!failed) {
        lua_xmove(co, S, 1);
        lua_replace(S, base + 3);
        failed = 1;
      } else {
        lua_pop(co, 1);
      }
    }
  }
  rt->running = prev;
  if (failed) lua_copy(S, base + 3, base + 1);
  lua_settop(S, base + failed);
  return failed;
}

/* The coroutine returned normally with `nres` values on its stack. */
static void task_finished(lq_coro *c, int nres) {
  lq_runtime *rt = c->rt;
  lua_State *S = lq_scratch(rt), *co = c->co;
  lq_task *h = lq_coro_task(c);
  lq_push_handle(S, rt, h);
  int ud = lua_gettop(S);
  if (nres == 1) {
    lua_xmove(co, S, 1);
  } else if (nres > 1) {
    lua_createtable(S, nres, 0);
    lua_xmove(co, S, nres);
    for (int i = nres; i >= 1; i--) lua_rawseti(S, ud + 1, i);
  } else {
    lua_pushnil(S);
  }
  c->nres = nres;
  c->finished = 1;
  int failed = run_defers(rt, h, ud, co);
  if (failed) lua_remove(S, -2);        /* the defer's error replaces the results */
  c->co = NULL;
  lq_pool_release(rt, co);              /* the pool anchors co before uv 1 forgets it */
  lua_setiuservalue(S, ud, 1);
  if (failed) qn_task_set_outcome(lq_core_task(h), QN_TASK_FAILED);
  lua_settop(S, ud - 1);
}

/* The coroutine stopped with an error on top (or a bare yield, reported as
   one). Record the traceback, close it (its <close> variables see the
   error), run the defers, and keep the last error. */
static void task_failed(lq_coro *c) {
  lq_runtime *rt = c->rt;
  lua_State *S = lq_scratch(rt), *co = c->co;
  lq_task *h = lq_coro_task(c);
  lq_push_handle(S, rt, h);
  int ud = lua_gettop(S);
  lua_pushvalue(co, -1);
  lua_xmove(co, S, 1);                  /* ud + 1: the error; co keeps it on top for the closes */
  if (!lq_is_kind(S, ud + 1, "cancelled")) save_traceback(rt, co, ud);
  lq_coro *prev = rt->running;
  rt->running = c;
  c->closing = 1;
  c->finished = 1;
  int suspended = lua_status(co) == LUA_YIELD;   /* a bare yield: not pooled */
  if (lua_resetthread(co) != LUA_OK) {  /* the last error is at co's index 1 */
    lua_xmove(co, S, 1);
    lua_replace(S, ud + 1);
  }
  rt->running = prev;
  lua_settop(co, 0);
  if (run_defers(rt, h, ud, co)) lua_pop(S, 1);   /* the first error wins: the task's own */
  int cancelled = lq_is_kind(S, ud + 1, "cancelled");
  c->co = NULL;
  if (!suspended) lq_pool_release(rt, co);
  lua_setiuservalue(S, ud, 1);
  qn_task_set_outcome(lq_core_task(h), cancelled ? QN_TASK_CANCELLED : QN_TASK_FAILED);
  lua_settop(S, ud - 1);
}

/* A branch raised: close it now (its <close> variables see the error, and
   run before the select drops the other branches); the last error stays on
   its thread for the select to raise. */
static void branch_failed(lq_coro *c) {
  lq_runtime *rt = c->rt;
  lq_coro *prev = rt->running;
  rt->running = c;
  c->closing = 1;
  int st = lua_resetthread(c->co);   /* the error is at index 1 afterwards */
  rt->running = prev;
  if (st == LUA_OK)                     /* a bare yield: nothing was raised */
    lua_pushliteral(c->co, "quench: coroutine.yield() called directly in a select branch; "
                           "use quench.yield(), or resume your own coroutine");
  c->failed = 1;
}

/* Move a finished branch's results onto L and return their count; for a
   branch that raised, move its error and return -1. */
int lq_branch_results(lua_State *L, lq_coro *b) {
  if (b->failed) {
    lua_xmove(b->co, L, 1);
    return -1;
  }
  int n = b->nres;
  luaL_checkstack(L, n + LUA_MINSTACK, "quench: too many results");
  lua_xmove(b->co, L, n);
  b->nres = 0;
  return n;
}

/* A new branch running fn(args...) (nargs values after fn) for `parent`,
   pushed as a "quench.branch" userdata and anchored until its drop. */
lq_coro *lq_branch_new(lua_State *L, lq_coro *parent, int fn, int nargs) {
  lq_runtime *rt = parent->rt;
  fn = lua_absindex(L, fn);
  lq_branch *br = lua_newuserdatauv(L, sizeof *br, 1);
  lq_coro *b = &br->coro;
  lq_coro_init(b, rt, CORO_BRANCH);
  br->task = lq_coro_task(parent);
  br->parent = parent;
  br->waker = NULL;
  luaL_setmetatable(L, LQ_BRANCH);
  if (nargs == 0) {
    lua_pushvalue(L, fn);               /* a lone function needs no table */
  } else {
    lua_createtable(L, nargs + 1, 0);
    for (int i = 0; i <= nargs; i++) {
      lua_pushvalue(L, fn + i);
      lua_rawseti(L, -2, i + 1);
    }
  }
  lua_setiuservalue(L, -2, 1);
  b->nres = nargs + 1;                  /* until it starts: how many values the pack holds */
  lua_pushvalue(L, -1);
  b->slot = lq_anchor(L, rt);
  return b;
}

/* A branch dropped with its task raised in cleanup: keep the first such
   error in the task's extras, where the task's drop finds it. */
static void hand_error_to_task(lq_coro *c) {
  lq_runtime *rt = c->rt;
  lua_State *S = lq_scratch(rt);
  lq_push_handle(S, rt, lq_coro_task(c));
  lq_push_extras(S, lua_gettop(S));
  if (lua_getfield(S, -1, "cleanup_error") == LUA_TNIL) {
    lua_xmove(c->co, S, 1);
    lua_setfield(S, -3, "cleanup_error");
  }
  lua_pop(S, 3);
  c->cleanup_failed = 0;
}

/* Drop a branch: if it never finished, close it (cleanup runs); a cleanup
   error stays on its thread, for the select to raise or __gc to report. */
/* Where does the cleanup error of a dropped branch go? To the branch above
   it when that one is being dropped too (its select then raises it, or it
   goes further up); to the task when the task is dropped or the select was
   the task's own await; else it stays on the branch's thread, for the
   select that dropped it to raise. */
static void pass_error_up(lq_coro *c) {
  lq_coro *p = lq_coro_parent(c);
  if (qn_task_dropping(lq_core_task(lq_coro_task(c))) || (p && p->kind == CORO_TASK && p->dropping)) {
    hand_error_to_task(c);
  } else if (p && p->dropping) {
    lua_State *S = lq_scratch(c->rt);
    if (!p->inherited) {                /* the first one wins */
      lua_xmove(c->co, S, 1);           /* left on S for p's drop, which is below us */
      p->inherited = 1;
    }
    c->cleanup_failed = 0;
  }
}

static void branch_drop(lq_coro *c) {
  lq_runtime *rt = c->rt;
  lua_State *co = c->co;
  c->dropping = 1;
  if (c->op) {
    qn_drop(c->op);
    c->op = NULL;
  }
  int suspended = co != NULL && !c->finished;
  int pool = !suspended || poolable_suspended(rt, co);   /* asked before its frames go */
  if (suspended) {
    lq_coro *prev = rt->running;
    rt->running = c;
    c->closing = 1;
    if (lua_resetthread(co) != LUA_OK) c->cleanup_failed = 1;
    rt->running = prev;
    if (c->inherited) {                 /* an error from below came first */
      lua_settop(co, 0);
      lua_xmove(rt->S, co, 1);
      c->inherited = 0;
      c->cleanup_failed = 1;
    }
    if (c->cleanup_failed) pass_error_up(c);
  } else if (c->inherited) {
    lua_pop(rt->S, 1);                  /* finished: nothing above wants it */
    c->inherited = 0;
  }
  c->finished = 1;
  if (co != NULL && pool && !c->failed && !c->cleanup_failed) {
    c->co = NULL;
    lq_pool_release(rt, co);            /* uv 1 still anchors it; harmless */
  }
  int slot = c->slot;
  c->slot = LUA_NOREF;
  lq_unanchor(rt, slot);
}

/* A branch collected with a cleanup error nobody raised: report it. */
static int l_branch_gc(lua_State *L) {
  lq_coro *b = luaL_testudata(L, 1, LQ_BRANCH);   /* __gc may be called by hand */
  if (b == NULL || b->slot != LUA_NOREF) return 0;   /* still in use: not collectable */
  if (!b->cleanup_failed || b->co == NULL) return 0;
  lua_State *co = b->co;
  b->co = NULL;
  if (lua_gettop(co) == 0) return 0;
  lua_xmove(co, L, 1);
  fprintf(stderr, "quench: cleanup of a dropped select branch raised: %s\n",
          luaL_tolstring(L, -1, NULL));
  fflush(stderr);
  return 0;
}

void lq_branch_register(lua_State *L) {
  luaL_newmetatable(L, LQ_BRANCH);
  lua_pushcfunction(L, l_branch_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
}

/* First poll: take a thread, move the function and arguments onto it. */
static int start(lq_coro *c) {
  lq_runtime *rt = c->rt;
  lua_State *S = lq_scratch(rt);
  lq_push_coro(S, rt, c);
  int ud = lua_gettop(S);
  int n = c->nres;
  lua_getiuservalue(S, ud, 1);          /* the function, or {fn, args...} */
  lua_State *co = pool_take(rt);        /* on S at ud + 2 */
  luaL_checkstack(co, n + LUA_MINSTACK, "quench: too many arguments to spawn");
  int inline_args = c->kind == CORO_TASK && lq_task_args_inline(n);
  if (n == 1 || inline_args) {
    lua_pushvalue(S, ud + 1);
    for (int i = 1; i < n; i++) lua_getiuservalue(S, ud, 1 + i);
  } else {
    for (int i = 1; i <= n; i++) lua_rawgeti(S, ud + 1, i);
  }
  lua_xmove(S, co, n);
  lua_setiuservalue(S, ud, 1);          /* the thread replaces the pack */
  for (int i = 1; inline_args && i < n; i++) {   /* the task holds its arguments no more */
    lua_pushnil(S);
    lua_setiuservalue(S, ud, 1 + i);
  }
  lua_settop(S, ud - 1);
  c->co = co;
  c->nres = 0;
  return n - 1;
}

/* A task ran longer than opts.slow_task without waiting: say which. */
static void warn_slow(lq_coro *c, uint64_t ns) {
  lq_runtime *rt = c->rt;
  lua_State *S = lq_scratch(rt);
  int top = lua_gettop(S);
  lq_push_handle(S, rt, lq_coro_task(c));
  const char *name = NULL;
  if (lq_get_extras(S, -1) == LUA_TTABLE) {
    lua_getfield(S, -1, "name");
    name = lua_tostring(S, -1);
  }
  lua_pushfstring(S, "quench: task %d%s%s%s ran %f s without waiting (slow_task budget %f s)",
                  (int)qn_task_id(lq_core_task(lq_coro_task(c))), name ? " (" : "", name ? name : "",
                  name ? ")" : "", (double)ns / 1e9, (double)rt->slow_ns / 1e9);
  lq_warn(rt, lua_tostring(S, -1));
  lua_settop(S, top);
}

static int resume(lq_coro *c, int nargs) {
  lq_runtime *rt = c->rt;
  lua_State *co = c->co;
  lua_State *from = running_thread(rt);
  lq_coro *prev = rt->running;
  int nres;
  uint64_t t0 = rt->slow_ns ? uv_hrtime() : 0;
  rt->running = c;
  int st = lua_resume(co, from, nargs, &nres);
  rt->running = prev;
  if (rt->slow_ns && uv_hrtime() - t0 > rt->slow_ns) warn_slow(c, uv_hrtime() - t0);
  if (st == LUA_YIELD) {
    if (c->op != NULL || c->parked) return QN_PENDING;
    if (c->yielding) {
      qn_wake(lq_coro_waker(c));
      return QN_PENDING;
    }
    lua_pop(co, nres);
    lua_pushliteral(co, "quench: coroutine.yield() called directly in a task; "
                        "use quench.yield(), or resume your own coroutine");
    st = LUA_ERRRUN;
  }
  if (c->kind == CORO_BRANCH) {
    if (st == LUA_OK) c->nres = nres;
    else branch_failed(c);
    c->finished = 1;
  } else if (st == LUA_OK) {
    task_finished(c, nres);
  } else {
    task_failed(c);
  }
  return QN_READY;
}

static int coro_poll(qn_future *f, qn_waker *w) {
  lq_coro *c = (lq_coro *)f;
  if (c->kind == CORO_BRANCH) ((lq_branch *)c)->waker = w;
  else c->rt->coop = LQ_COOP_BUDGET;    /* only the core polls a task: a new run */
  if (c->co == NULL) return resume(c, start(c));
  if (c->parked) return QN_PENDING;
  if (cancel_due(c)) {
    if (c->op) {
      c->dropping = 1;                  /* branches below hand their cleanup errors up */
      qn_drop(c->op);
      c->op = NULL;
      c->dropping = 0;
    }
    c->yielding = 0;
    lua_State *S = lq_scratch(c->rt);
    lq_push_handle(S, c->rt, lq_coro_task(c));
    int ud = lua_gettop(S);
    if (c->kind == CORO_TASK && c->has_extras && lq_get_extras(S, ud) == LUA_TTABLE &&
        lua_getfield(S, -1, "cleanup_error") != LUA_TNIL) {
      lua_pushnil(S);                   /* a dropped branch's cleanup raised: that, not Cancelled */
      lua_setfield(S, -3, "cleanup_error");
    } else {
      lua_settop(S, ud);
      lq_push_task_cancelled(c->rt, S, lq_coro_task(c), ud);
    }
    lua_xmove(S, c->co, 1);
    lua_settop(S, ud - 1);
    c->resume_error = 1;
    return resume(c, 1);
  }
  if (c->op != NULL) {
    if (qn_poll(c->op, w) == QN_PENDING) return QN_PENDING;
  } else if (c->yielding) {
    c->yielding = 0;
  }
  return resume(c, 0);
}

/* A thread for the defers of a task that never started (h:defer), kept in
   the pool: it is left there with an empty stack. */
static lua_State *pool_take_anchored(lq_runtime *rt) {
  lua_State *co = pool_take(rt);          /* on top of S: back into the pool */
  pool_push(rt);
  return co;
}

/* Cancel a task that has not finished (handle at ud on S): drop its op,
   close its thread (its <close> variables run), run its defers. */
static void cancel_task(lq_coro *c, lua_State *S, int ud) {
  lq_runtime *rt = c->rt;
  lq_task *h = lq_coro_task(c);
  c->finished = 1;
  c->nres = 0;                        /* no results (it may never have started) */
  int failed = 0;
  if (c->op) {
    qn_drop(c->op);
    c->op = NULL;
  }
  if (c->has_extras && lq_get_extras(S, ud) == LUA_TTABLE &&   /* a dropped branch's cleanup raised */
      lua_getfield(S, -1, "cleanup_error") != LUA_TNIL) {
    lua_remove(S, -2);
    failed = 1;
  } else if (c->has_extras) {
    lua_settop(S, ud);
  }
  lua_State *co = c->co;
  int pool = co != NULL && poolable_suspended(rt, co);   /* asked before its frames go */
  if (co != NULL) {
    lq_coro *prev = rt->running;
    rt->running = c;
    c->closing = 1;
    if (lua_resetthread(co) != LUA_OK) {   /* runs the pending <close> variables */
      lua_xmove(co, S, 1);
      if (failed) lua_pop(S, 1);           /* the first cleanup error wins */
      failed = 1;
    }
    rt->running = prev;
    lua_settop(co, 0);
  }
  if (c->has_extras && run_defers(rt, h, ud, co ? co : pool_take_anchored(rt))) {   /* no extras: no defers, no thread for them */
    if (failed) lua_pop(S, 1);     /* the first cleanup error wins */
    failed = 1;
  }
  if (!failed) {                     /* Cancelled: made when asked for (lq_push_result) */
    lua_pushnil(S);
    h->coro.cancel_unmade = 1;
  }
  c->co = NULL;
  if (pool) lq_pool_release(rt, co);   /* the pool anchors co before uv 1 forgets it */
  lua_setiuservalue(S, ud, 1);       /* the thread goes */
  if (failed) qn_task_set_outcome(lq_core_task(h), QN_TASK_FAILED);
}

/* Drop: after completion, only unanchor (and report a failure, unbind
   token:spawn's watch); otherwise cancel and clean up. A task that ended
   well and is not bound needs no Lua value: its handle is not even fetched. */
static void coro_drop(qn_future *f) {
  lq_coro *c = (lq_coro *)f;
  if (c->kind == CORO_BRANCH) {
    branch_drop(c);
    return;
  }
  lq_runtime *rt = c->rt;
  lq_task *h = lq_coro_task(c);
  qn_task *t = lq_core_task(h);
  if (!c->finished || c->bound || qn_task_get_outcome(t) == QN_TASK_FAILED) {
    lua_State *S = lq_scratch(rt);
    lq_push_handle(S, rt, h);
    int ud = lua_gettop(S);
    if (!c->finished) cancel_task(c, S, ud);
    if (qn_task_get_outcome(t) == QN_TASK_FAILED) lq_report_failure(S, rt, h, ud);
    if (c->bound) lq_task_unbind(S, h, ud);
    lua_settop(S, ud - 1);
  }
  int slot = c->slot;
  c->slot = LUA_NOREF;
  lq_unanchor(rt, slot);               /* last: the handle may now be collected */
}

const qn_future_vt lq_coro_vt = { coro_poll, coro_drop };
