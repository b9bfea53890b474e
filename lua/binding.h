/*
** What the binding's files share.
**
** Ownership of Lua values (the core never holds one):
** - A task's Lua data hangs off its handle userdata ("quench.task"):
**   user value 1 is its body (a table {fn, args...} while pending, its thread
**   while it runs, then its result: nothing, one value, a table of values, or
**   the error value); user value 2 is an "extras" table made on demand
**   (defers, cancel reason, traceback, name).
** - While a task is not done its handle is anchored in the runtime's `alive`
**   table (slot), so garbage collection never cancels it (S4). The binding
**   unanchors it as the very last step of its future's drop.
** - The runtime keeps a private thread S, never resumed, whose stack holds the
**   alive table (index 1), the thread pool (index 2) and a weak set of
**   failed handles not yet observed (index 3); callbacks from the
**   core (poll, drop), which have no lua_State of their own, work on S.
*/
#ifndef QUENCH_BINDING_H
#define QUENCH_BINDING_H

#include <lua.h>
#include <lauxlib.h>
#include "quench.h"

#if LUA_VERSION_NUM != 504
#error "quench needs Lua 5.4"
#endif

#define LQ_TASK "quench.task"
#define LQ_ERROR "quench.error"
#define LQ_GUARD "quench.guard"

enum { S_ALIVE = 1, S_POOL = 2, S_FAILED = 3 };
enum { POOL_MAX = 1024 };

typedef struct lq_runtime lq_runtime;
typedef struct lq_coro lq_coro;
typedef struct lq_task lq_task;

/* Module state: the first upvalue of every function of the module. */
typedef struct lq_module {
  lq_runtime *rt;       /* the runtime inside quench.run, or NULL */
  uint64_t serial;      /* runtimes made so far: tells a handle's runtime apart */
} lq_module;

struct lq_runtime {
  qn_runtime *core;
  lq_module *mod;
  lua_State *L;         /* the thread that called quench.run */
  lua_State *S;         /* private scratch thread (see above) */
  int ref_S;
  int ref_on_error;     /* opts.on_task_error, or LUA_NOREF */
  uint64_t serial;
  lq_coro *running;     /* the coroutine whose code runs now (resumed or being closed) */
  int npool;
};

enum { CORO_TASK, CORO_BRANCH };

/* A coroutine as a core future: a task's body, or a select branch. */
struct lq_coro {
  qn_future base;
  lq_runtime *rt;
  lua_State *co;        /* NULL until first polled */
  qn_future *op;        /* the op it awaits (owned), or NULL */
  qn_waker *waker;      /* the waker of the poll in progress */
  lq_coro *parent;      /* enclosing coroutine of a branch */
  lq_task *task;        /* the task this coroutine works for */
  int shield;           /* depth of quench.shield calls */
  uint8_t kind;
  uint8_t yielding;     /* suspended in quench.yield */
  uint8_t parked;       /* self-aborted: waits for the drop */
  uint8_t resume_error; /* resumed with an error to raise at the await */
  uint8_t closing;      /* drop-time cleanup or defers running: no awaits */
  uint8_t finished;
};

struct lq_task {
  lq_coro coro;
  uint64_t serial;      /* of its runtime */
  int slot;             /* in the alive table while not done, else LUA_NOREF */
  int nres;             /* number of results once done (ok outcome) */
  uint8_t detached, observed, reported, has_reason, closed;
  /* the qn_task follows, at offset task_offset() */
};

/* task.c */
qn_task *lq_core_task(lq_task *h);
lq_task *lq_check_task(lua_State *L, int idx);
int lq_spawn_at(lua_State *L, lq_runtime *rt, int fn_idx);
void lq_push_extras(lua_State *L, int ud_idx);
void lq_push_reason(lua_State *L, lq_task *h, int ud_idx);
int lq_push_result(lua_State *L, lq_task *h, int ud_idx);
void lq_report_failure(lua_State *L, lq_runtime *rt, lq_task *h, int ud_idx);
void lq_report_unobserved(lq_runtime *rt);
int lq_push_handle(lua_State *L, lq_runtime *rt, lq_task *h);
void lq_task_register(lua_State *L, int mod_idx);

/* coro.c */
extern const qn_future_vt lq_coro_vt;
void lq_coro_init(lq_coro *c, lq_runtime *rt, lq_task *task, int kind);
lq_coro *lq_await_ctx(lua_State *L, const char *fname);
int lq_check_cancel(lua_State *L, lq_coro *c);
int lq_await(lua_State *L, lq_coro *c, qn_future *op, lua_KFunction k);
int lq_resume_error(lua_State *L, lq_coro *c);
int lq_shielded(const lq_coro *c);
void lq_pool_release(lq_runtime *rt, lua_State *co);

/* error.c */
void lq_push_cancelled(lua_State *L, int reason_idx);
void lq_push_timeout(lua_State *L);
int lq_is_kind(lua_State *L, int idx, const char *kind);
void lq_error_register(lua_State *L, int mod_idx);

/* quench.c */
lq_module *lq_module_of(lua_State *L);
lq_runtime *lq_runtime_of(lua_State *L, const char *fname);

#endif
