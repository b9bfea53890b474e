/*
** The keep: the one home of the Lua values a runtime holds for itself.
**
** Each runtime (quench.run) has one keep thread K, made at quench.run and
** referenced from the registry by one ref (its root); K runs no code, so
** its stack indices never move. At K's index 1 is the keep table: every
** value the runtime holds beyond one call lives in one of its slots, an
** integer handle:
**
**   int h = lq_keep(L, k);        pops the value on top of L, keeps it
**   lq_push_kept(L, k, h);        pushes it (as many times as wanted)
**   lq_release(k, h);             forgets it; h may be reused at once
**
** What is kept: the scratch thread S, the tasks and branches in use (so
** garbage collection never cancels them: S4), the Cancelled metatable, the
** weak set of failed handles, opts.on_task_error and opts.on_warning, the
** quench._at_exit list. Invariants:
** - A handle is > 0 and valid from lq_keep to its lq_release; LQ_NOKEEP
**   (0) and LUA_NOREF mean "nothing kept" (lq_release ignores them).
**   Releasing a handle twice, or pushing a released one, is a bug.
** - Handles are reused through a C free list, so the keep table stays an
**   array (a slot costs one array entry; luaL_ref's registry free list
**   costs more per call).
** - Nothing else is ever left on K: the only other values on its stack,
**   above the keep table, are the runtime's idle threads (the thread
**   pool), moved on and off by lq_keep_thread and lq_take_thread only: a
**   move is the cheapest way to keep and take a thread, and a task takes
**   one each time it starts.
** - The whole keep goes when quench.run ends (lq_keep_free): nothing kept
**   survives the run.
** - The scratch thread S (lq_scratch) is not a home: a callback of the
**   core leaves S's top as it found it.
*/
#ifndef QUENCH_KEEP_H
#define QUENCH_KEEP_H

#include <lua.h>

enum { LQ_NOKEEP = 0 };
enum { LQ_KEEP_TABLE = 1 };   /* the keep table's index on K */

typedef struct lq_keeper {
  lua_State *K;         /* the keep thread: the keep table at LQ_KEEP_TABLE,
                           then the idle threads */
  int ref;              /* K's registry ref, the keep's root */
  int max;              /* the highest handle given so far */
  int nfree, cap;       /* the free list: handles released, to reuse */
  int *free;
  int nthreads;         /* idle threads on K above the table */
} lq_keeper;

/* Make the keep (at quench.run); raises on out of memory, as Lua does. */
void lq_keep_init(lua_State *L, lq_keeper *k);
/* Forget everything kept (at the end of quench.run). */
void lq_keep_free(lua_State *L, lq_keeper *k);
void lq_release(lq_keeper *k, int h);

/* Keep the value on top of L (popped): its handle. */
static inline int lq_keep(lua_State *L, lq_keeper *k) {
  int h = k->nfree > 0 ? k->free[--k->nfree] : ++k->max;
  lua_xmove(L, k->K, 1);
  lua_rawseti(k->K, LQ_KEEP_TABLE, h);
  return h;
}

/* Push the value kept as h on L; returns its type. */
static inline int lq_push_kept(lua_State *L, const lq_keeper *k, int h) {
  int t = lua_rawgeti(k->K, LQ_KEEP_TABLE, h);
  lua_xmove(k->K, L, 1);
  return t;
}

/* The thread pool's two moves. Keep the thread on top of `from` (popped)
   as an idle thread: 0 if there is no room (it is then left on `from`). */
int lq_keep_thread(lq_keeper *k, lua_State *from);
/* Move the most recently kept idle thread onto `to` (k->nthreads > 0). */
static inline lua_State *lq_take_thread(lq_keeper *k, lua_State *to) {
  k->nthreads--;
  lua_xmove(k->K, to, 1);
  return lua_tothread(to, -1);
}

#endif
