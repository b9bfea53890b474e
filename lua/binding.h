/*
** What the binding's files share.
**
** Ownership of Lua values (the core never holds one). A Lua value the
** binding holds lives in one of these homes, and nowhere else:
** 1. The keep (lua/keep.h), one per runtime: every value the runtime
**    holds for itself beyond one call, under an integer handle
**    (lq_keep / lq_push_kept / lq_release): the scratch thread S, the tasks
**    and branches in use (their slot: so garbage collection never cancels
**    them, S4; the drop releases it as its very last step), the Cancelled
**    metatable, the weak set of failed handles not yet observed, the
**    on_task_error and on_warning callbacks, the quench._at_exit list; and,
**    on the keep thread's stack above the keep table, the idle threads of
**    the thread pool (coro.c). Made at quench.run, all gone when it ends.
** 2. An object's own user values, its storage for as long as it lives: a
**    task handle's ("quench.task": 1 is its body, the function or a table
**    {fn, args...} while pending, its thread while it runs, then its
**    result: nothing, one value, a table of values, or the error value; 2..
**    hold up to LQ_INLINE_ARGS arguments until it starts); a branch's 1
**    (its function or pack, then its thread); an op's 1.. (its operands:
**    a channel, a task, a path...); a token's (parent, reason); a
**    channel's waiting values (its inline slot holds the single waiting
**    value, then a table once two wait: channel.c); a stream's, socket's,
**    process's (their own files).
** 3. A coroutine's own thread: a finished branch's outcome under the trap,
**    a dropped branch's cleanup error (coro.c, the state machine).
** 4. The module's, for the life of the Lua state (not a runtime's: task
**    handles and other objects outlive quench.run and still reach them):
**    the named metatables (LQ_* names) and the refs made at luaopen
**    (mt_task, mt_op, ref_guard) in the registry; the registry tables
**    keyed by a static address or name: a task's extras (a weak-keyed
**    table handle -> extras, made on demand: defers, cancel reason,
**    traceback, name, a bound token and its watch, a cleanup error handed
**    up between branch drops; few tasks have one, and a user value in
**    every handle cost more), refused resumes by thread (coro.c, weak),
**    quench.context frames by coroutine (context.c), on_cancel
**    registrations by address (token.c, weak), the stdio streams (pipe.c);
**    and the error metatables, keyed by static addresses (error.c).
** The scratch thread S is no home: callbacks from the core (poll, drop),
** which have no lua_State of their own, work on S, and leave its top as
** they found it; nothing is kept there from one call to the next.
*/
#ifndef QUENCH_BINDING_H
#define QUENCH_BINDING_H

#include <stdlib.h>
#include <lua.h>
#include <lauxlib.h>
#include "quench.h"
#include "keep.h"

#if LUA_VERSION_NUM != 504
#error "quench needs Lua 5.4"
#endif

#define LQ_TASK "quench.task"
#define LQ_ERROR "quench.error"
#define LQ_GUARD "quench.guard"
#define LQ_BRANCH "quench.branch"
#define LQ_OP "quench.op"
#define LQ_TOKEN "quench.token"
#define LQ_CHANNEL "quench.channel"

enum { POOL_MAX = 1024 };
/* Cooperative budget (tokio's coop): a task makes at most this many awaits
   in one poll; the next suspends once, even if it is ready (coro.c). */
enum { LQ_COOP_BUDGET = 128 };

typedef struct lq_runtime lq_runtime;
typedef struct lq_coro lq_coro;
typedef struct lq_task lq_task;

/* The core's allocator for every runtime of the module (quench.c): it
   counts blocks and refuses one allocation on request (quench.run's
   fail_alloc). It lives in the module state, which outlives every object
   holding core memory: the registry's metatables reach it through their
   methods' upvalue, and lua_close runs every finalizer before it frees
   anything. A runtime's memory may outlive quench.run (a channel buffer,
   an I/O object not collected yet: see quench.h). */
typedef struct lq_heap {
  uint64_t allocs;      /* allocations asked for by the running (or last) runtime */
  uint64_t fail_at;     /* the one to refuse (opts.fail_alloc); 0: none */
  uint64_t refused;     /* allocations refused so far, injected or not */
  uint64_t live;        /* blocks of every runtime of the module not freed yet */
  struct lq_arena *arena;   /* the state's small-block allocator (arena.c), or NULL */
} lq_heap;

/* Module state: the first upvalue of every function of the module. */
typedef struct lq_module {
  lq_runtime *rt;       /* the runtime inside quench.run, or NULL */
  lq_heap heap;
  uint64_t serial;      /* runtimes made so far: tells a handle's runtime apart */
  int mt_task;          /* registry refs of the task and op metatables (an array */
  int mt_op;            /* look-up: cheaper than by name or by light userdata) */
  int mt_task_failed;   /* a failed task's: mt_task and __gc (task.c, l_gc) */
  int ref_guard;        /* registry ref of the thread guard (coro.c): the to-be-closed
                           value at index 1 of every thread quench runs code on */
  const void *guard;    /* ...and its address, to recognise it */
  struct lq_cancel_reg *cancel_first, *cancel_last;   /* on_cancel callbacks due (token.c) */
} lq_module;

/* Hot-path type check: a full userdata whose first word is `tag` (the
   address of something static to its type); cheaper than luaL_checkudata,
   which compares metatables through the registry by name. */
static inline void *lq_toudata(lua_State *L, int idx, const void *tag, size_t size) {
  void *p = lua_touserdata(L, idx);    /* NULL unless full or light userdata */
  if (p == NULL || lua_rawlen(L, idx) < size) return NULL;   /* rawlen of light: 0 */
  return *(const void *const *)p == tag ? p : NULL;
}

/* Lua aligns a userdata's memory for LUAI_MAXALIGN only (8 bytes on
   x86-64): a core struct placed after a binding header can ask no more,
   and rounding further would only waste bytes in every object. */
typedef union lq_maxalign { LUAI_MAXALIGN; } lq_maxalign;
static inline size_t lq_align(size_t n) {
  return (n + _Alignof(lq_maxalign) - 1) & ~(size_t)(_Alignof(lq_maxalign) - 1);
}

struct lq_runtime {
  qn_runtime *core;
  lq_module *mod;
  lua_State *L;         /* the thread that called quench.run */
  lua_State *S;         /* scratch thread (kept), for the core's callbacks */
  lq_keeper keep;       /* the runtime's one home of Lua values (keep.h) */
  int keep_cancelled;   /* kept: the Cancelled metatable (every abort makes one) */
  int keep_failed;      /* kept: the weak set of failed handles */
  int keep_on_error;    /* kept: opts.on_task_error, or LQ_NOKEEP */
  int keep_on_warning;  /* kept: opts.on_warning, or LQ_NOKEEP (then stderr) */
  int keep_at_exit;     /* kept: quench._at_exit's functions (an array), or LQ_NOKEEP */
  uint64_t slow_ns;     /* opts.slow_task: warn about a poll longer than this */
  uint64_t serial;
  lq_coro *running;     /* the coroutine whose code runs now (resumed or being closed) */
  int coop;             /* awaits the task being polled may still make before one
                           must suspend: LQ_COOP_BUDGET at each poll (coro.c) */
  int depth;            /* lua_resume calls of ours in progress (nested: a select's
                           first poll runs its branches in place) */
  int ctx_used;         /* quench.context.with was called in this run (context.c) */
  int spawn_sites;      /* quench.record_spawn_sites(true): spawns note file:line */
};

enum { CORO_TASK, CORO_BRANCH };
/* quench.shield nests at most 2^LQ_SHIELD_BITS - 1 deep (the flags' word). */
enum { LQ_SHIELD_BITS = 12, LQ_SHIELD_MAX = (1 << LQ_SHIELD_BITS) - 1 };
/* Why a coroutine is suspended, when it waits on no op: the exclusive
   states of the machine at the top of coro.c. */
enum { LQ_SUSPEND_NONE, LQ_SUSPEND_YIELD, LQ_SUSPEND_PARKED };

/* A coroutine as a core future: a task's body, or a select branch (an
   lq_branch). Its states, and who sets and clears each flag: the top of
   coro.c. A task handle is one per task, so its bytes count: what a
   task can compute (its task: itself; its waker: its core task's; no
   parent) is kept by branches only, and the flags are bits. */
struct lq_coro {
  qn_future base;
  lq_runtime *rt;
  lua_State *co;        /* NULL until first polled */
  qn_future *op;        /* the op it awaits (owned), or NULL */
  const char *what;     /* what the pending op is, for quench.tasks() */
  int nres;             /* until it starts: the function and its arguments;
                           while it waits: its stack height at the yield (what a
                           refused resume leaves, lq_refuse_resume);
                           a finished branch's results, left on its thread;
                           a task's number of results once done (ok outcome) */
  int slot;             /* its userdata's handle in the keep while in use */
  unsigned kind : 1;    /* CORO_TASK or CORO_BRANCH */
  unsigned suspend : 2; /* LQ_SUSPEND_*: why it is suspended, if not on op */
  unsigned resume_error : 1;  /* resumed with an error to raise at the await */
  unsigned closing : 1; /* drop-time cleanup or defers running: no awaits */
  unsigned finished : 1;
  unsigned failed : 1;  /* a branch that raised: its error is on its thread */
  unsigned cleanup_failed : 1;  /* a branch whose drop-time cleanup raised */
  unsigned dropping : 1;  /* a branch being dropped */
  unsigned inherited : 1; /* ...that holds (in its task's extras) the cleanup error of a branch below */
  /* a task's (here, where they cost no byte): */
  unsigned detached : 1, observed : 1, reported : 1;
  unsigned reason : 2;  /* REASON_*: where the first cancel/abort came from */
  unsigned bound : 1;   /* token:spawn's watch is linked: it lives in extras.bind
                           (rare, so not in every handle) */
  unsigned has_extras : 1;  /* it has an extras table (see the top of this file) */
  unsigned cancel_unmade : 1;  /* dropped without a cleanup error: its Cancelled is
                                  made when first asked for (lq_push_result);
                                  user value 1 is nil */
  unsigned foreign_closed : 1;  /* its thread was closed by coroutine.close while it
                                   waited: it ends (fails) at its next poll */
  unsigned shield : LQ_SHIELD_BITS;  /* depth of quench.shield calls (cleanup.c bounds it) */
  /* a task's, here where it costs no byte: the low 32 bits of its
     runtime's serial (compare with lq_task_in) */
  uint32_t serial;
};

/* A select branch ("quench.branch"). */
typedef struct lq_branch {
  lq_coro coro;
  lq_task *task;        /* the task it works for */
  lq_coro *parent;      /* the enclosing coroutine */
  qn_waker *waker;      /* the waker of the poll in progress */
  int depth;            /* 1 for a task's own branch, parent's + 1 below */
  uint64_t deadline;    /* the branch of quench.timeout/deadline: when it is
                           dropped (ns, the core clock); QN_NEVER otherwise.
                           Read by quench.current_deadline. */
} lq_branch;

/* Nesting (docs/tasks.md, "Nesting"). A select's first poll runs its
   branches in place, one lua_resume inside another; past LQ_INPLACE_DEPTH
   nested resumes a branch waits for the scheduler's next turn instead, so
   Lua's C-call limit (LUAI_MAXCCALLS, 200) is never reached by nesting.
   The scheduler's polls go down the chain of selects in plain C frames, a
   few hundred bytes a level: LQ_MAX_NESTING bounds that chain. */
enum { LQ_INPLACE_DEPTH = 16, LQ_MAX_NESTING = 5000 };

enum { REASON_NONE, REASON_OWN, REASON_TOKEN };

/* A task's flags are in its coro (detached, observed, reported, reason,
   bound, has_extras, cancel_unmade). */
struct lq_task {
  lq_coro coro;         /* its serial: the runtime's (lq_task_in) */
  uint32_t parent_gap;  /* its id minus the id of the task that spawned it, for
                           quench.tasks(); 0: none, or more than 2^32 spawns back.
                           A gap, not an id, so a handle costs no extra word */
  uint32_t spawned_at;  /* qn_now at spawn >> LQ_SPAWN_TIME_SHIFT, for quench.tasks():
                           32 bits, not 64, make a handle 8 bytes smaller (W7) */
  /* the qn_task follows, at offset lq_task_offset() */
};
/* A spawn time's unit: 2^24 ns (16.8 ms); 32 bits of it tell ages apart
   up to 2.3 years (task.c, quench.tasks()). */
enum { LQ_SPAWN_TIME_SHIFT = 24 };

static inline size_t lq_task_offset(void) { return lq_align(sizeof(lq_task)); }
/* Whether the task belongs to the runtime rt. */
static inline int lq_task_in(const lq_task *h, const lq_runtime *rt) {
  return h->coro.serial == (uint32_t)rt->serial;
}
static inline qn_task *lq_core_task(lq_task *h) {
  return (qn_task *)((char *)h + lq_task_offset());
}
static inline lq_task *lq_task_of(qn_task *t) {
  return (lq_task *)((char *)t - lq_task_offset());
}
/* The task a coroutine works for; the enclosing coroutine (NULL for a
   task); the waker of the poll in progress (a task's is its core task's:
   only the core polls a task). */
static inline lq_task *lq_coro_task(lq_coro *c) {
  return c->kind == CORO_TASK ? (lq_task *)c : ((lq_branch *)c)->task;
}
static inline lq_coro *lq_coro_parent(const lq_coro *c) {
  return c->kind == CORO_TASK ? NULL : ((const lq_branch *)c)->parent;
}
static inline qn_waker *lq_coro_waker(lq_coro *c) {
  return c->kind == CORO_TASK ? qn_task_waker(lq_core_task((lq_task *)c))
                              : ((lq_branch *)c)->waker;
}

/* The scratch thread, with room for a callback's work: callbacks nest
   (a cleanup aborts a task whose cleanup aborts another...), and each
   level pushes a few values. (S runs callbacks, so its absolute indices
   move: what the runtime keeps is on another thread, the keep's.) */
static inline lua_State *lq_scratch(lq_runtime *rt) {
  luaL_checkstack(rt->S, 24, "quench: too many nested cleanups");
  return rt->S;
}

/* task_state.c (floor): a task's handle data, for the driver and the
   files above it. */
lq_task *lq_check_task(lua_State *L, int idx);
void lq_push_extras(lua_State *L, int ud_idx);
int lq_get_extras(lua_State *L, int ud_idx);
void lq_push_reason(lua_State *L, lq_task *h, int ud_idx);
void lq_push_token_reason(lua_State *L, int token_idx);
void lq_push_task_cancelled(lq_runtime *rt, lua_State *L, lq_task *h, int ud);
int lq_push_result(lua_State *L, lq_task *h, int ud_idx);
void lq_report(lua_State *L, lq_runtime *rt, lq_task *h, int ud_idx);
void lq_report_failure(lua_State *L, lq_runtime *rt, lq_task *h, int ud_idx);
void lq_report_unobserved(lq_runtime *rt);
/* token:spawn's link from the token to the task (token.c binds): a
   userdata kept in the task's extras (as "bind"), linked while the task
   is not done; the drop unlinks it (lq_task_unbind, if h->bound). */
typedef struct lq_bind_box {
  qn_token_watch w;
  lq_task *h;
} lq_bind_box;
void lq_task_unbind(lua_State *L, lq_task *h, int ud);
void lq_task_state_register(lua_State *L);

/* task.c */
int lq_spawn_at(lua_State *L, lq_runtime *rt, int fn_idx);
void lq_task_register(lua_State *L, int mod_idx);

/* coro.c */
int lq_push_coro(lua_State *L, lq_runtime *rt, lq_coro *c);
void lq_context_inherit(lua_State *L, lq_runtime *rt, int ud);
void lq_context_internals(lua_State *L, int mod);
/* Keep the coroutine userdata on top of L (popped) in the keep: its slot;
   and release it (the drop's last step). */
int lq_anchor(lua_State *L, lq_runtime *rt);
void lq_unanchor(lq_runtime *rt, int slot);
lq_coro *lq_branch_new(lua_State *L, lq_coro *parent, int fn, int nargs);
int lq_branch_results(lua_State *L, lq_coro *b);
extern const qn_future_vt lq_coro_vt;
void lq_coro_init(lq_coro *c, lq_runtime *rt, int kind);
/* A task's function and up to LQ_INLINE_ARGS arguments are kept in its
   handle's user values 1 and 2.. until it starts; more go in a table at 1. */
enum { LQ_INLINE_ARGS = 3 };
static inline int lq_task_args_inline(int n) { return n - 1 <= LQ_INLINE_ARGS; }
lq_coro *lq_await_ctx(lua_State *L, const char *fname);
int lq_check_cancel_slow(lua_State *L, lq_coro *c);
/* The cancellation point of every await (coro.c): inline, as nearly every
   call finds nothing to do. */
static inline int lq_check_cancel(lua_State *L, lq_coro *c) {
  qn_task *t = lq_core_task(lq_coro_task(c));
  if (!qn_task_cancel_requested(t) && !qn_task_abort_requested(t)) return 0;
  return lq_check_cancel_slow(L, c);
}
int lq_await(lua_State *L, lq_coro *c, qn_future *op, lua_KFunction k, lua_KContext ctx);
/* Suspend c's thread L (nothing yielded) until its driver resumes it. */
int lq_suspend(lua_State *L, lq_coro *c, lua_KContext ctx, lua_KFunction k);
/* A thread waiting in quench is resumed by quench only. LQ_RESUMED is the
   first statement of every continuation of a wait: any other resume
   (coroutine.resume from Lua, a C library) is refused: the thread yields
   again as it was, and the resumer gets an error (docs/tasks.md). */
int lq_refuse_resume(lua_State *L, lua_KContext ctx, lua_KFunction k);
#define LQ_RESUMED(L, ctx, k) do { \
    lq_runtime *rt_ = lq_module_of(L)->rt; \
    if (rt_ == NULL || rt_->running == NULL || rt_->running->co != (L)) \
      return lq_refuse_resume((L), (ctx), (k)); \
  } while (0)
/* The same, for a continuation given its coroutine (ctx is that coroutine). */
#define LQ_RESUMED_OF(L, c, ctx, k) do { \
    if ((c)->rt->running != (c)) return lq_refuse_resume((L), (ctx), (k)); \
  } while (0)
/* The depth of select nesting c is at (0: a task); raise past LQ_MAX_NESTING. */
void lq_check_nesting(lua_State *L, lq_coro *c, const char *fname);
void lq_guard_register(lua_State *L, int mod);
int lq_resume_error(lua_State *L, lq_coro *c);
qn_future *lq_take_op(lua_State *L);
qn_future *lq_take_op_of(lua_State *L, lq_coro *c);
int lq_shielded(const lq_coro *c);
void lq_pool_release(lq_runtime *rt, lua_State *co);
/* Push the handle of a task that is not done (kept in its slot). */
static inline int lq_push_handle(lua_State *L, lq_runtime *rt, lq_task *h) {
  return lq_push_coro(L, rt, &h->coro);
}

/* error.c */
void lq_push_cancelled(lua_State *L, int reason_idx);
void lq_push_cancelled_mt(lua_State *L);
void lq_push_timeout(lua_State *L);
int lq_is_kind(lua_State *L, int idx, const char *kind);
void lq_error_register(lua_State *L, int mod_idx);

/* duration.c (floor) */
uint64_t lq_check_seconds(lua_State *L, int idx);
uint64_t lq_check_duration(lua_State *L, int idx);
uint64_t lq_deadline_after(lq_runtime *rt, uint64_t ns);

/* op.c: an op is a single-use future, built when awaited or selected. An
   lq_op_kind is a wait written once, for both forms: its functions get
   `op`, an op userdata's stack index or 0 for a direct call (see
   lq_op_arg below; docs/design.md §5). */
typedef struct lq_op_kind {
  const char *name;
  /* Raise if the op cannot start in `c` (optional). */
  void (*check)(lua_State *L, int op, lq_coro *c);
  /* Build the core future (NULL: out of memory); never raises. */
  qn_future *(*start)(lua_State *L, int op, lq_coro *c);
  /* Push the results of a ready future; returns how many. Or push an
     error and return -1: the caller drops the future, then raises it. */
  int (*finish)(lua_State *L, int op, qn_future *f);
  /* Optional fast path: if the op can complete at once, complete it as
     start, poll, finish and drop would, push its results and return how
     many; else return -1 having changed nothing. No future is built. */
  int (*now)(lua_State *L, int op);
} lq_op_kind;

extern const char lq_op_tag;

typedef struct lq_op {
  const void *tag;      /* &lq_op_tag */
  const lq_op_kind *kind;
  uint8_t used;
  /* The kind's parameter, set when the op is made: a duration or a time
     in ns (sleep_op, sleep_until_op), open flags and mode, a signal
     number, a permit count, a read's format, a byte limit, a port... */
  uint64_t arg;
  /* An object wait's object (lq_obj_kind), resolved when the op is made
     (lq_op_for), and kept alive by the op's user value 1; else NULL. */
  void *obj;
} lq_op;

lq_op *lq_op_new(lua_State *L, const lq_op_kind *kind, int nuv);
/* An lq_op_kind's functions get `op`: the stack index of an op userdata
   (op:await, select, timeout), or 0 for a direct call (lq_perform), whose
   operands are then at stack indexes 1, 2, ... in the order of the op's
   user values. 0 is never a stack index: telling the forms apart costs a
   comparison, so the direct form of a hot wait pays nearly nothing.
   lq_op_arg pushes operand i either way and returns its type. */
lq_op *lq_test_op(lua_State *L, int idx);
int lq_op_for(lua_State *L, const lq_op_kind *kind, int obj);
void lq_op_check(lua_State *L, int idx, lq_coro *c, const char *fname);
qn_future *lq_op_start(lua_State *L, int idx, lq_coro *c);
int lq_op_arg(lua_State *L, int op, int i);
/* Perform a wait and return its results: the op userdata at stack index
   op (1), or, with op 0, the direct call's operands, with no op userdata
   built. Check, cancellation point, the kind's ready-now path, else start
   and await; one continuation finishes every kind. Call it last, after
   lq_await_ctx, with nothing above the operands or the op. `what` names
   the wait in quench.tasks() (NULL: the kind's name).
   It is inline: called with a constant kind, as every caller does, the
   kind's functions are known at the call, and its ready-now path costs
   what a hand-written one would. */
int lq_perform_k(lua_State *L, int status, lua_KContext ctx);
static inline int lq_perform(lua_State *L, lq_coro *c, const lq_op_kind *kind, int op,
                             const char *fname, const char *what) {
  if (op != 0) lq_op_check(L, op, c, fname);
  else if (kind->check) kind->check(L, 0, c);
  lq_check_cancel(L, c);
  if (kind->now != NULL) {
    int n = kind->now(L, op);
    if (n >= 0) {
      if (op != 0) ((lq_op *)lua_touserdata(L, op))->used = 1;
      return n;
    }
  }
  qn_future *f = op != 0 ? lq_op_start(L, op, c) : kind->start(L, 0, c);
  if (f == NULL) return luaL_error(L, "%s: out of memory", fname);
  c->what = what != NULL ? what : kind->name;
  return lq_await(L, c, f, lq_perform_k, (lua_KContext)kind | (op != 0));
}

/* A wait on one object (a channel, a stream, a socket): an lq_op_kind
   whose functions are also given the object, already resolved. The direct
   form (ch:recv(), s:read(n)) has checked and resolved its object before
   it performs the wait: resolving it again in each function cost the
   channel ping-pong (W2) 9 % more instructions. So an object wait is
   written once as the four functions below, each given `obj` (and `op`
   as in lq_op_kind: 0 for the direct form, whose operands are then at
   stack indexes 1.., the object at 1); `base` is its op form, made by
   LQ_OBJ_KIND: generic functions (op.c) that take the object the op
   resolved when it was made (lq_op.obj, its user value 1) and call these. */
/* For the functions of the hottest waits (a channel's send and recv): the
   direct form calls them through a constant kind, so they can be inlined
   into it, which GCC does not do by itself for a function whose address
   is also taken (the op form's). */
#if defined(__GNUC__)
#define LQ_INLINE __attribute__((always_inline))
#else
#define LQ_INLINE
#endif
typedef struct lq_obj_kind {
  lq_op_kind base;      /* first: an op of this kind has &base as its kind */
  void (*check)(lua_State *L, void *obj, int op, lq_coro *c);          /* optional */
  qn_future *(*start)(lua_State *L, void *obj, int op, lq_coro *c);
  int (*finish)(lua_State *L, void *obj, int op, qn_future *f);
  /* optional; c is the waiting coroutine, or NULL when the caller does not
     have it at hand (the op form: then lq_module_of(L)->rt->running) */
  int (*now)(lua_State *L, void *obj, int op, lq_coro *c);
} lq_obj_kind;
void lq_obj_check(lua_State *L, int op, lq_coro *c);
qn_future *lq_obj_start(lua_State *L, int op, lq_coro *c);
int lq_obj_finish(lua_State *L, int op, qn_future *f);
int lq_obj_now(lua_State *L, int op);
#define LQ_OBJ_KIND(name, check, start, finish, now) { \
    { (name), lq_obj_check, lq_obj_start, lq_obj_finish, lq_obj_now }, \
    (check), (start), (finish), (now) }
/* The direct form of an object wait: lq_perform for the object obj at
   stack index 1 (the operands above it), with the kind's own continuation
   k (LQ_OBJ_PERFORM_K), whose context is the waiting coroutine. Inline, so
   that with a constant kind the ready-now path is a direct call. */
static inline LQ_INLINE int lq_obj_perform(lua_State *L, lq_coro *c, const lq_obj_kind *kind, void *obj,
                                 const char *fname, const char *what, lua_KFunction k) {
  if (kind->check) kind->check(L, obj, 0, c);
  lq_check_cancel(L, c);
  if (kind->now != NULL) {
    int n = kind->now(L, obj, 0, c);
    if (n >= 0) return n;
  }
  qn_future *f = kind->start(L, obj, 0, c);
  if (f == NULL) return luaL_error(L, "%s: out of memory", fname);
  c->what = what != NULL ? what : kind->base.name;
  return lq_await(L, c, f, k, (lua_KContext)c);
}
/* What a direct form's finish returns when the wait must start over (a
   waiter woken for a connection another task accepted first): nothing
   pushed; a new future is started and awaited. An op's finish never
   returns it (an op is one wait). */
enum { LQ_AGAIN = -2 };
int lq_obj_again(lua_State *L, lq_coro *c, const lq_obj_kind *kind, void *obj, const char *what,
                 lua_KFunction self);
static inline LQ_INLINE int lq_obj_perform_finish(lua_State *L, lua_KContext ctx,
                                        const lq_obj_kind *kind, lua_KFunction self) {
  lq_coro *c = (lq_coro *)ctx;
  LQ_RESUMED_OF(L, c, ctx, self);
  const char *what = c->what;
  qn_future *f = lq_take_op_of(L, c);
  void *obj = lua_touserdata(L, 1);
  int n = kind->finish(L, obj, 0, f);
  qn_drop(f);
  if (n >= 0) return n;
  return n == LQ_AGAIN ? lq_obj_again(L, c, kind, obj, what, self) : lua_error(L);
}
/* LQ_OBJ_PERFORM_K(name, kind) defines `static int name(lua_State *, int,
   lua_KContext)`, the continuation of lq_obj_perform(..., &kind, ..., name). */
#define LQ_OBJ_PERFORM_K(name, kind) \
  static int name(lua_State *L, int status, lua_KContext ctx) { \
    (void)status; \
    return lq_obj_perform_finish(L, ctx, &(kind), name); \
  }

/* select.c: the race, the one wait over several futures. select,
   select_biased, timeout, deadline, token:run and task:stop all await a
   core select through lq_race_await; what differs is in an lq_race.

   The continuation's context is the address of the lq_race, nothing else.
   What it needs besides is on the thread's stack, which is as it was at
   the await: stack index i holds the userdata of child i - 1 when that
   child is a branch or an op (a select branch's cleanup error is looked
   for there), or anything else (a token, a task handle, the children
   array of a select, which is above the branches). */
typedef struct lq_race {
  const char *fname;    /* for "out of memory" and "cannot arm a timer" */
  const char *what;     /* the wait, for quench.tasks() */
  int stop;             /* the child whose win stops the race (a timer or a
                           token): -1 for a plain select */
  unsigned timed : 1;   /* the stop child is a sleep, which may have failed to
                           arm its timer: then raise instead of stopped() */
  /* A child other than `stop` (number w) won: push the results, the
     select `sel` still holding the winner; return how many, or -1 with
     an error on top (raised once the select is dropped). */
  int (*won)(lua_State *L, qn_future *sel, long w);
  /* The stop child won; the select is dropped already: push the results. */
  int (*stopped)(lua_State *L);
} lq_race;

/* Await the select over children[0..n-1] (owned: dropped even on error;
   biased: child 0 first, so it wins a tie) as race r describes. */
int lq_race_await(lua_State *L, lq_coro *c, const lq_race *r, qn_future **children, int n,
                  int biased);
/* The results of the op or branch at stack index idx that won select sel
   as child w (as lq_race.won returns them). */
int lq_race_winner(lua_State *L, int idx, qn_future *sel, long w);

/* token.c */
qn_token *lq_check_token(lua_State *L, int idx);
void lq_task_bind(lua_State *L, lq_task *h, int ud, int token_idx);

/* module.c: the floor every binding file stands on (quench.c, the root
   with luaopen_quench and quench.run, is called by none of them) */
void lq_class(lua_State *L, int mod, const char *name, const luaL_Reg *methods,
              const luaL_Reg *metamethods);
void lq_warn(lq_runtime *rt, const char *msg);
/* The descriptor of a UDP (udp.c) or Unix datagram socket (unix_dgram.c)
   at idx, or -1 (closed, another runtime's, another type): quench._fileno. */
int lq_udp_fileno(lua_State *L, int idx);
int lq_udgram_fileno(lua_State *L, int idx);
/* A Unix socket name at idx, checked (lua/unix.c); raises naming idx. */
const char *lq_check_unix_name(lua_State *L, int idx);
lq_module *lq_module_of(lua_State *L);
lq_runtime *lq_runtime_of(lua_State *L, const char *fname);

/* module.c, for I/O objects: push nil, "ENAME: message", "ENAME" (an I/O
   failure; the core's out of memory is "ENOMEM: out of memory"); whether an object of runtime `serial` may be used, and a raise
   naming fname if not (what: "stream", "socket", ...). */
int lq_push_fail(lua_State *L, int err);
int lq_alive(lua_State *L, uint64_t serial);
void lq_check_alive(lua_State *L, uint64_t serial, const char *fname, const char *what);

/* args.c: the string (or number) at idx as a C string for `what` of fname
   ("argument #1 (file)", "opts.cwd"); raises "fname: what must be a string,
   got T" or "fname: what contains a zero byte ...". The opt form: dflt for
   none or nil. A number is converted in place (not during a lua_next). */
const char *lq_check_cstring(lua_State *L, int idx, const char *fname, const char *what);
const char *lq_opt_cstring(lua_State *L, int idx, const char *fname, const char *what,
                           const char *dflt);

/* signal.c: a signal's number by name, 0 if unknown. watchable: only the
   ones quench.signal waits for, by full name ("SIGTERM"); else any, also
   without "SIG" ("TERM"). */
int lq_signal_number(const char *name, int watchable);

#endif
