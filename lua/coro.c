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
**
** The threads belong to quench, though Lua code can reach them
** (coroutine.running): every thread holds at its index 1, below everything
** it runs, the guard, a to-be-closed value. A resume by anyone but the
** driver is refused by the wait's continuation (LQ_RESUMED: the thread
** yields again as it was and the resumer gets an error); a coroutine.close
** from Lua closes the guard last, which ends the task (or fails the branch)
** at its next poll instead of leaving it waiting with no stack. A finished
** branch's outcome waits on its thread under a second copy of the guard,
** which a resume would call: its __call raises. (docs/tasks.md)
**
** The state machine of an lq_coro (fields in binding.h). Life:
**
**            first poll            an await that is pending
**   NEW ------------------> RUN ---------------------------> WAIT
**   (co NULL: the            ^  <---------------------------  |
**    function and args       |   the op ready, or woken from  | its task aborted
**    in user value 1..)      |   a yield: the continuation    | at a cancellation
**                            |   runs                         v point
**                            |                              PARKED (until dropped)
**                            | returned or raised
**                            v
**                         FINISHED  <--- dropped before it finished: CLOSING
**                                        (op dropped, thread reset: its <close>
**                                        variables run, then a task's defers)
**
** RUN is "rt->running == c", set by resume around lua_resume (and by the
** drop paths around the closes they run). While suspended, exactly one of
** these says why (`suspend`, an exclusive state, and `op`):
** - op != NULL, suspend NONE: waiting on the op. lq_await sets op; the
**   continuation takes it (lq_take_op: op and what cleared), or a drop
**   drops it (coro_poll delivering Cancelled, end_foreign_closed,
**   cancel_task, branch_drop).
** - suspend YIELD: quench.yield, the cooperative budget's yield
**   (lq_await_ctx) or a cancellation point that will raise Cancelled
**   (lq_check_cancel_slow). Set by the coroutine on its own thread just
**   before lq_suspend; cleared by coro_poll before it resumes.
** - suspend PARKED: its task was aborted while it ran; it never runs again
**   (the core drops a self-aborted task when its poll returns). Never cleared.
** op is never set with suspend != NONE.
**
** The other flags are bits because their combinations are legal:
** - resume_error: set by coro_poll with the error on top of co, for one
**   resume only; the continuation's lq_resume_error clears it and raises.
** - closing: set when drop-time code runs on the thread (a reset's <close>
**   variables, defers, a failing branch's closes); never cleared: every
**   await raises from then on. closing and finished together are legal
**   (a failed task's closes, a finished task's defers).
** - finished: the body is over (returned, raised, or closed at its drop);
**   set once. A task then has co NULL and its result in user value 1; a
**   branch keeps co, its outcome on it under the trap (a copy of the
**   guard), until lq_branch_results takes it or its drop pools the thread.
** - failed (branch): that outcome is an error. Only with finished.
** - cleanup_failed (branch): its drop-time cleanup raised; the error is on
**   its thread (not pooled), until the select raises it (loser_error),
**   pass_error_up hands it on, or __gc reports it; whoever takes it clears it.
** - dropping: a branch inside branch_drop (never cleared: it is over), or
**   any coroutine while coro_poll or end_foreign_closed drops its op (set
**   and cleared around that drop). Branches below read it in pass_error_up.
** - inherited: set on a dropping branch when a branch below handed it its
**   cleanup error (the first wins); cleared by its own branch_drop, which
**   takes the error.
** - foreign_closed: coroutine.close from Lua closed the thread while it
**   waited (l_guard_close); the next poll ends it (end_foreign_closed,
**   which clears it), and no drop pools that thread.
** - a task's own: detached (h:detach, never cleared), observed and
**   reported (its failure seen / told: set once), reason (the first
**   cancel's origin, set once), bound (token:spawn's watch linked: set by
**   lq_task_bind, cleared at the drop), has_extras (set when its extras
**   table is made, never cleared), cancel_unmade (dropped cleanly: its
**   Cancelled is made when first asked for; set once at the drop).
**
** Fields: co is valid from the first poll (see FINISHED for after); what
** names the wait while suspended on an op (quench.tasks()); nres is
** described where it is declared; slot is valid from the anchor (spawn,
** lq_branch_new: its handle in the keep) to the drop's lq_unanchor,
** LUA_NOREF after.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "binding.h"

/* ---- thread pool ---- */

/* Pooled threads are the keep's idle threads (keep.h): taking one is a
   move from the keep thread's top, giving one back a move onto it. */
static int is_guard(lq_runtime *rt, lua_State *co, int idx) {
  return lua_touserdata(co, idx) == rt->mod->guard;
}

/* Mark a new or reset thread (empty stack) with the guard at index 1. */
static void guard_thread(lq_runtime *rt, lua_State *co) {
  lua_rawgeti(co, LUA_REGISTRYINDEX, rt->mod->ref_guard);
  lua_toclose(co, 1);
}

/* A pooled thread is ready when it holds its guard at index 1 (a finished
   task's thread) or nothing (a reset one: guarded again). Any other thread
   was resumed or closed from Lua while in the pool, and is let go. The pool
   holds only [guard] and [] (lq_pool_release); a resume from Lua calls the
   guard, whose __call raises (a dead thread), a close leaves []: so a
   thread of status OK and one value holds its guard. */
static int pooled_ready(lq_runtime *rt, lua_State *co) {
  if (lua_status(co) != LUA_OK) return 0;
  int top = lua_gettop(co);
  if (top == 1) return 1;               /* the common case: a finished task's */
  if (top == 0) {
    guard_thread(rt, co);
    return 1;
  }
  if (!is_guard(rt, co, 1)) return 0;
  lua_settop(co, 1);                    /* what a refused resume left */
  return 1;
}

static lua_State *pool_take(lq_runtime *rt) {
  lua_State *S = lq_scratch(rt);
  while (rt->keep.nthreads > 0) {
    lua_State *co = lq_take_thread(&rt->keep, S);
    if (pooled_ready(rt, co)) return co;   /* left on S: the caller anchors it */
    lua_pop(S, 1);
  }
  lua_State *co = lua_newthread(S);
  guard_thread(rt, co);
  return co;
}

/* Move the thread on top of S into the pool. */
static void pool_push(lq_runtime *rt) {
  if (!lq_keep_thread(&rt->keep, rt->S)) lua_pop(rt->S, 1);   /* no room: not kept */
}

/* `co` is dead-or-finished with status OK. Keep it for a later task unless
   the pool is full; a recycled thread carries no hook and no stack values. */
void lq_pool_release(lq_runtime *rt, lua_State *co) {
  if (rt->keep.nthreads >= POOL_MAX || lua_status(co) != LUA_OK) return;
  int top = lua_gettop(co);
  if (top >= 1 && is_guard(rt, co, 1)) {   /* the guard stays (see pooled_ready) */
    if (top > 1) lua_settop(co, 1);
  } else if (top > 0) {
    lua_settop(co, 0);
  }
  lua_sethook(co, NULL, 0, 0);
  lua_pushthread(co);
  if (!lq_keep_thread(&rt->keep, co)) lua_pop(co, 1);
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
  if (rt->keep.nthreads >= POOL_MAX || !lua_checkstack(co, 1)) return 0;
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
  return lq_push_kept(L, &rt->keep, c->slot);
}

/* A coroutine in use is kept (keep.h), so garbage collection never
   cancels it (S4); its slot names it in the keep. */
int lq_anchor(lua_State *L, lq_runtime *rt) {
  return lq_keep(L, &rt->keep);
}

void lq_unanchor(lq_runtime *rt, int slot) {
  lq_release(&rt->keep, slot);          /* LUA_NOREF: not kept, nothing to do */
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
  return qn_task_cancel_requested(lq_core_task(lq_coro_task(c))) &&
         c->suspend != LQ_SUSPEND_PARKED && !lq_shielded(c);
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
  (void)status;
  LQ_RESUMED(L, ctx, coop_retry_k);
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
    c->suspend = LQ_SUSPEND_YIELD;
    lq_suspend(L, c, 0, coop_retry_k);
  }
  return c;
}

static int park_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  LQ_RESUMED(L, ctx, park_k);
  return luaL_error(L, "quench: a parked task was resumed");   /* unreachable: it is dropped */
}

static int cancel_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  LQ_RESUMED(L, ctx, cancel_k);
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
    c->suspend = LQ_SUSPEND_PARKED;
    return lq_suspend(L, c, 0, park_k);
  }
  if (cancel_due(c)) {
    c->suspend = LQ_SUSPEND_YIELD;      /* coro_poll delivers the error on resume */
    return lq_suspend(L, c, 0, cancel_k);
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
  c->nres = lua_gettop(L);
  return lua_yieldk(L, 0, ctx, k);
}

int lq_suspend(lua_State *L, lq_coro *c, lua_KContext ctx, lua_KFunction k) {
  c->nres = lua_gettop(L);              /* for lq_refuse_resume */
  return lua_yieldk(L, 0, ctx, k);
}

/* ---- the threads are quench's: resumes and closes from Lua ---- */

/* The coroutine (task or branch in use) whose thread is co, or NULL. Only
   asked when Lua code touched a thread of ours: a walk of the keep. */
static lq_coro *owner_of(lq_runtime *rt, lua_State *co) {
  lua_State *S = lq_scratch(rt);
  for (int i = 1; i <= rt->keep.max; i++) {
    lq_push_kept(S, &rt->keep, i);
    lq_coro *c = lq_toudata(S, -1, &lq_coro_vt, sizeof(lq_coro));
    lua_pop(S, 1);
    if (c != NULL && c->co == co) return c;
  }
  return NULL;
}

/* Push what c is, for messages: "task 3" or "a select branch of task 3". */
static void push_owner_name(lua_State *L, lq_coro *c) {
  int id = (int)qn_task_id(lq_core_task(lq_coro_task(c)));
  if (c->kind == CORO_TASK) lua_pushfstring(L, "task %d", id);
  else lua_pushfstring(L, "a select branch of task %d", id);
}

/* The registry key of the weak-keyed table thread -> refusal: a resumer
   that gets an error when its resume returns. */
static const char refusals_key = 0;

typedef struct refusal {
  lua_Hook hook;        /* the resumer's own hook, put back first */
  int mask, count;
} refusal;

/* A return hook on the resumer: the first return after the refused resume
   is the resume's own (coroutine.resume, a wrap function, a C library's
   call): raise there, as if the resume had raised. */
static void refusal_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &refusals_key);
  lua_pushthread(L);
  lua_rawget(L, -2);
  refusal *r = lua_touserdata(L, -1);
  if (r == NULL) {                      /* not ours any more */
    lua_sethook(L, NULL, 0, 0);
    lua_pop(L, 2);
    return;
  }
  lua_sethook(L, r->hook, r->mask, r->count);
  lua_getiuservalue(L, -1, 1);          /* the message */
  lua_pushthread(L);
  lua_pushnil(L);
  lua_rawset(L, -5);
  luaL_where(L, 1);                     /* the resume's caller */
  lua_insert(L, -2);
  lua_concat(L, 2);
  lua_error(L);
}

/* The thread that resumed co: follow the resumes from the running
   coroutine's thread (a thread in a resume has the resuming C function at
   level 0: coroutine.resume's argument 1, a wrap function's upvalue 1). */
static lua_State *resumer_of(lq_runtime *rt, lua_State *co) {
  lua_State *X = rt->running ? rt->running->co : NULL;
  for (int n = 0; X != NULL && n < 100; n++) {
    lua_Debug ar;
    if (!lua_checkstack(X, 3) || !lua_getstack(X, 0, &ar) || !lua_getinfo(X, "f", &ar)) return NULL;
    lua_State *next = NULL;
    if (lua_iscfunction(X, -1)) {
      if (lua_getlocal(X, &ar, 1) != NULL) {
        next = lua_tothread(X, -1);
        lua_pop(X, 1);
      }
      if (next == NULL && lua_getupvalue(X, -1, 1) != NULL) {
        next = lua_tothread(X, -1);
        lua_pop(X, 1);
      }
    }
    lua_pop(X, 1);
    if (next == co) return X;
    X = next;
  }
  return NULL;
}

/* A resume of c's thread was refused: make it an error in the resumer (a
   hook raises it as the resume returns), or a warning if the resumer is not
   found (a C library's resume outside any task). */
static void refuse(lq_runtime *rt, lq_coro *c, lua_State *L) {
  lua_pushliteral(L, "coroutine.resume: the thread of ");
  push_owner_name(L, c);
  lua_pushfstring(L, " is waiting in quench (%s) and only quench resumes it; "
                     "wake a task through quench (a channel, a notify, h:cancel())",
                  c->what ? c->what : "a wait");
  lua_concat(L, 3);
  lua_State *X = resumer_of(rt, L);
  if (X == NULL) {
    lq_warn(rt, lua_tostring(L, -1));
    lua_pop(L, 1);
    return;
  }
  lua_rawgetp(L, LUA_REGISTRYINDEX, &refusals_key);
  lua_pushthread(X);
  lua_xmove(X, L, 1);
  lua_rawget(L, -2);
  if (!lua_isnil(L, -1) && lua_gethook(X) == refusal_hook) {   /* one error is enough */
    lua_pop(L, 3);
    return;
  }
  lua_pop(L, 1);
  refusal *r = lua_newuserdatauv(L, sizeof *r, 1);
  r->hook = lua_gethook(X);
  r->mask = lua_gethookmask(X);
  r->count = lua_gethookcount(X);
  lua_rotate(L, -3, -1);                /* table, refusal, message */
  lua_setiuservalue(L, -2, 1);
  lua_pushthread(X);
  lua_xmove(X, L, 1);
  lua_insert(L, -2);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  lua_sethook(X, refusal_hook, LUA_MASKRET, 0);
}

int lq_refuse_resume(lua_State *L, lua_KContext ctx, lua_KFunction k) {
  lq_runtime *rt = lq_module_of(L)->rt;
  lq_coro *c = rt != NULL ? owner_of(rt, L) : NULL;
  if (c == NULL)                        /* no thread of ours waits without a coroutine */
    return luaL_error(L, "quench: a wait was resumed after its task ended");
  lua_settop(L, c->nres);               /* what the resumer passed goes */
  luaL_checkstack(L, 8, "quench: no room to refuse a resume");
  refuse(rt, c, L);
  return lua_yieldk(L, 0, ctx, k);      /* as it was: still waiting */
}

/* The guard's __close: nothing when the driver closes the thread (the
   running coroutine's own); else coroutine.close from Lua closed a waiting
   thread, whose <close> variables have run: its coroutine ends at its next
   poll (failed, with an error saying so). */
static int l_guard_close(lua_State *L) {
  lq_runtime *rt = (*(lq_module **)lua_touserdata(L, 1))->rt;   /* the guard holds the module */
  if (rt == NULL || (rt->running != NULL && rt->running->co == L)) return 0;
  lq_coro *c = owner_of(rt, L);
  if (c == NULL || c->finished || c->closing) return 0;   /* pooled, or a branch's outcome */
  c->foreign_closed = 1;
  if (c->kind == CORO_TASK) qn_task_wake(lq_core_task((lq_task *)c));
  else if (((lq_branch *)c)->waker) qn_wake(((lq_branch *)c)->waker);
  return 0;
}

/* The guard's __call: a resume of a thread with no wait in progress (a
   pooled thread, a finished branch's) calls the guard. */
static int l_guard_call(lua_State *L) {
  return luaL_error(L, "quench: this thread belongs to quench (a select branch that has "
                       "finished, or a task that has ended): it cannot be resumed");
}

void lq_guard_register(lua_State *L, int mod) {
  lq_module *m = lua_touserdata(L, mod);
  *(lq_module **)lua_newuserdatauv(L, sizeof m, 0) = m;   /* the module outlives it (registry) */
  lua_createtable(L, 0, 3);
  lua_pushcfunction(L, l_guard_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, l_guard_call);
  lua_setfield(L, -2, "__call");
  lua_pushliteral(L, "quench.thread_guard");
  lua_setfield(L, -2, "__name");
  lua_setmetatable(L, -2);
  m->guard = lua_touserdata(L, -1);
  m->ref_guard = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);                      /* resumer thread -> refusal, weak keys */
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &refusals_key);
}

/* ---- nesting ---- */

static int nesting_of(lq_coro *c) {
  return c->kind == CORO_TASK ? 0 : ((lq_branch *)c)->depth;
}

void lq_check_nesting(lua_State *L, lq_coro *c, const char *fname) {
  if (nesting_of(c) >= LQ_MAX_NESTING)
    luaL_error(L, "%s: nesting limit reached: %d nested select branches (each select, "
                  "timeout or deadline of a function, token:run and scope is one level)",
               fname, LQ_MAX_NESTING);
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
    /* One value at a time: S has room for a few values only, and a task
       may return thousands (a deep select returns one more each level). */
    lua_createtable(S, nres, 0);
    for (int i = nres; i >= 1; i--) {
      lua_xmove(co, S, 1);
      lua_rawseti(S, ud + 1, i);
    }
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
  if (!suspended && !c->foreign_closed) lq_pool_release(rt, co);   /* see poolable_suspended */
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
  lua_rawgeti(c->co, LUA_REGISTRYINDEX, rt->mod->ref_guard);   /* the outcome's trap */
  c->failed = 1;
}

/* A branch returned (nres values on its thread): cover them with the trap. */
static void branch_finished(lq_coro *c, int nres) {
  lua_State *co = c->co;
  if (!lua_checkstack(co, 1)) {         /* no room: its last value makes room for an error */
    lua_settop(co, lua_gettop(co) - 1);
    lua_pushliteral(co, "quench: out of memory (a select branch's results)");
    lua_rawgeti(co, LUA_REGISTRYINDEX, c->rt->mod->ref_guard);
    c->failed = 1;
    return;
  }
  lua_rawgeti(co, LUA_REGISTRYINDEX, c->rt->mod->ref_guard);
  c->nres = nres;
}

/* Move a finished branch's results onto L and return their count; for a
   branch that raised, move its error and return -1. */
int lq_branch_results(lua_State *L, lq_coro *b) {
  lua_State *co = b->co;
  int need = b->failed ? 1 : b->nres;
  if (b->foreign_closed || lua_status(co) != LUA_OK || lua_gettop(co) < need + 1 ||
      !is_guard(b->rt, co, -1)) {       /* resumed or closed from Lua since it finished */
    lua_pushliteral(L, "quench.select: the thread of the branch that won was resumed or "
                       "closed from Lua before the select returned: its results are lost");
    b->failed = 1;
    b->nres = 0;
    return -1;
  }
  lua_pop(co, 1);                       /* the trap */
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
  br->depth = nesting_of(parent) + 1;
  br->deadline = QN_NEVER;
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

/* The cleanup error a branch below handed to the dropping branch p (see
   `inherited`) waits in p's task's extras, keyed by p's address, until p's
   own drop, which is below on the C stack, takes it: no value is left on
   the scratch thread between calls. */
static void keep_inherited(lq_coro *p, lua_State *from) {
  lq_runtime *rt = p->rt;
  lua_State *S = lq_scratch(rt);
  lq_push_handle(S, rt, lq_coro_task(p));
  lq_push_extras(S, -1);
  lua_xmove(from, S, 1);
  lua_rawsetp(S, -2, p);
  lua_pop(S, 2);
}

/* Take p's inherited error: push it on `to`, or forget it if `to` is NULL. */
static void take_inherited(lq_coro *p, lua_State *to) {
  lq_runtime *rt = p->rt;
  lua_State *S = lq_scratch(rt);
  lq_push_handle(S, rt, lq_coro_task(p));
  lq_get_extras(S, -1);                 /* made by keep_inherited */
  lua_rawgetp(S, -1, p);
  lua_pushnil(S);
  lua_rawsetp(S, -3, p);
  if (to != NULL) lua_xmove(S, to, 1);
  else lua_pop(S, 1);
  lua_pop(S, 2);
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
    if (!p->inherited) {                /* the first one wins */
      keep_inherited(p, c->co);
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
  int pool = !suspended || (!c->foreign_closed && poolable_suspended(rt, co));   /* as cancel_task */
  if (suspended) {
    lq_coro *prev = rt->running;
    rt->running = c;
    c->closing = 1;
    if (lua_resetthread(co) != LUA_OK) c->cleanup_failed = 1;
    rt->running = prev;
    if (c->inherited) {                 /* an error from below came first */
      lua_settop(co, 0);
      take_inherited(c, co);
      c->inherited = 0;
      c->cleanup_failed = 1;
    }
    if (c->cleanup_failed) pass_error_up(c);
  } else if (c->inherited) {
    take_inherited(c, NULL);            /* finished: nothing above wants it */
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
    lua_xmove(S, co, n);
  } else {
    for (int i = 1; i <= n; i++) {      /* one at a time: S has room for a few only */
      lua_rawgeti(S, ud + 1, i);
      lua_xmove(S, co, 1);
    }
  }
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
  rt->depth++;
  int st = lua_resume(co, from, nargs, &nres);
  rt->depth--;
  rt->running = prev;
  if (rt->slow_ns && uv_hrtime() - t0 > rt->slow_ns) warn_slow(c, uv_hrtime() - t0);
  if (st == LUA_OK) nres--;             /* lua_resume counts the guard below the results */
  if (st == LUA_YIELD) {
    if (c->op != NULL || c->suspend == LQ_SUSPEND_PARKED) return QN_PENDING;
    if (c->suspend == LQ_SUSPEND_YIELD) {
      qn_wake(lq_coro_waker(c));
      return QN_PENDING;
    }
    lua_pop(co, nres);
    lua_pushliteral(co, "quench: coroutine.yield() called directly in a task; "
                        "use quench.yield(), or resume your own coroutine");
    st = LUA_ERRRUN;
  }
  if (c->kind == CORO_BRANCH) {
    if (st == LUA_OK) branch_finished(c, nres);
    else branch_failed(c);
    c->finished = 1;
  } else if (st == LUA_OK) {
    task_finished(c, nres);
  } else {
    task_failed(c);
  }
  return QN_READY;
}

/* The thread was closed by coroutine.close while it waited (l_guard_close):
   drop what it waited for, and end it as failed, saying so. Its thread is
   not pooled: it may have waited inside xpcall, whose message handler Lua
   5.4.4's reset leaves behind (see poolable_suspended). */
static int end_foreign_closed(lq_coro *c) {
  if (c->op) {
    c->dropping = 1;
    qn_drop(c->op);
    c->op = NULL;
    c->dropping = 0;
  }
  lua_State *co = c->co;
  lua_settop(co, 0);                    /* closed: nothing to close any more */
  push_owner_name(co, c);
  lua_pushfstring(co, "quench: the thread of %s was closed by coroutine.close() while it "
                      "waited (%s); end a task with h:cancel() or h:abort()",
                  lua_tostring(co, -1), c->what ? c->what : "a wait");
  lua_remove(co, -2);
  if (c->kind == CORO_TASK) {
    task_failed(c);
  } else {
    lua_rawgeti(co, LUA_REGISTRYINDEX, c->rt->mod->ref_guard);
    c->failed = 1;
    c->closing = 1;
    c->finished = 1;
  }
  c->foreign_closed = 0;                /* handled: the outcome says it */
  return QN_READY;
}

static int coro_poll(qn_future *f, qn_waker *w) {
  lq_coro *c = (lq_coro *)f;
  if (c->kind == CORO_BRANCH) {
    ((lq_branch *)c)->waker = w;
    if (c->rt->depth >= LQ_INPLACE_DEPTH) {   /* nested too deep: at the next turn */
      qn_wake(w);
      return QN_PENDING;
    }
  } else {
    c->rt->coop = LQ_COOP_BUDGET;       /* only the core polls a task: a new run */
  }
  if (c->co == NULL) return resume(c, start(c));
  if (c->suspend == LQ_SUSPEND_PARKED) return QN_PENDING;
  if (c->foreign_closed) return end_foreign_closed(c);
  if (cancel_due(c)) {
    if (c->op) {
      c->dropping = 1;                  /* branches below hand their cleanup errors up */
      qn_drop(c->op);
      c->op = NULL;
      c->dropping = 0;
    }
    c->suspend = LQ_SUSPEND_NONE;
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
  } else if (c->suspend == LQ_SUSPEND_YIELD) {
    c->suspend = LQ_SUSPEND_NONE;
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
  /* asked before its frames go; a thread closed from Lua has none left to
     ask about (it may have waited inside xpcall): it is not pooled */
  int pool = co != NULL && !c->foreign_closed && poolable_suspended(rt, co);
  if (co != NULL) {
    lq_coro *prev = rt->running;
    rt->running = c;
    c->closing = 1;
    if (lua_resetthread(co) != LUA_OK) {   /* runs the pending <close> variables */
      lua_xmove(co, S, 1);                 /* leaves co empty, as a good reset does */
      if (failed) lua_pop(S, 1);           /* the first cleanup error wins */
      failed = 1;
    }
    rt->running = prev;
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
   well and is not bound needs no Lua value: its handle is not even fetched.
   The core is done with the task once its future is dropped, so a task
   that did not fail is finalised here (qn_task_fini: out of the runtime's
   list of done tasks): its handle has no __gc, so the collector runs no
   finalizer per task (~500 instructions). A failed one gets its __gc now. */
static void coro_drop(qn_future *f) {
  lq_coro *c = (lq_coro *)f;
  if (c->kind == CORO_BRANCH) {
    branch_drop(c);
    return;
  }
  lq_runtime *rt = c->rt;
  lq_task *h = lq_coro_task(c);
  qn_task *t = lq_core_task(h);
  int failed = 0;
  if (!c->finished || c->bound || qn_task_get_outcome(t) == QN_TASK_FAILED) {
    lua_State *S = lq_scratch(rt);
    lq_push_handle(S, rt, h);
    int ud = lua_gettop(S);
    if (!c->finished) cancel_task(c, S, ud);
    failed = qn_task_get_outcome(t) == QN_TASK_FAILED;
    if (failed) {
      lq_report_failure(S, rt, h, ud);
      /* the only handle with a finalizer (task.c): its failure may still
         have to be reported when it is collected */
      lua_rawgeti(S, LUA_REGISTRYINDEX, rt->mod->mt_task_failed);
      lua_setmetatable(S, ud);
    }
    if (c->bound) lq_task_unbind(S, h, ud);
    lua_settop(S, ud - 1);
  }
  if (!failed) qn_task_fini(t);         /* nothing is left for a collection to do */
  int slot = c->slot;
  c->slot = LUA_NOREF;
  lq_unanchor(rt, slot);               /* last: the handle may now be collected */
}

const qn_future_vt lq_coro_vt = { coro_poll, coro_drop };
