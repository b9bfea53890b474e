/*
** select, select_biased, timeout, deadline: a core select future over
** branches. A branch is an op (started when the select starts) or a
** function, which runs as a child coroutine of the caller, not a task.
** When one finishes, every other branch is dropped (its cleanup runs)
** before the select returns `index, results...`.
*/
#include <stdlib.h>
#include "binding.h"

/* The race's results ("lq_race" in binding.h). Push the winner's results;
   -1 with its error pushed if it raised. */
int lq_race_winner(lua_State *L, int idx, qn_future *sel, long w) {
  lq_coro *b = lq_toudata(L, idx, &lq_coro_vt, sizeof(lq_coro));
  if (b != NULL && b->kind == CORO_BRANCH) return lq_branch_results(L, b);
  lq_op *op = lq_test_op(L, idx);
  return op->kind->finish(L, idx, qn_select_child(sel, (size_t)w));
}

/* Push the first error raised by a loser's drop-time cleanup, if any. The
   branches are among stack indexes 1..top, index i holding child i - 1. */
static int loser_error(lua_State *L, long w) {
  int found = 0, top = lua_gettop(L);
  for (int i = 1; i <= top; i++) {
    lq_coro *b = lq_toudata(L, i, &lq_coro_vt, sizeof(lq_coro));
    if (b == NULL || b->kind != CORO_BRANCH || i == w + 1 || !b->cleanup_failed || b->co == NULL) continue;
    b->cleanup_failed = 0;
    lua_State *co = b->co;
    b->co = NULL;
    if (!found && lua_gettop(co) > 0) {
      lua_xmove(co, L, 1);
      found = 1;
    }
  }
  return found;
}

static int race_k(lua_State *L, int status, lua_KContext ctx) {
  LQ_RESUMED(L, ctx, race_k);
  (void)status;
  const lq_race *r = (const lq_race *)ctx;
  qn_future *sel = lq_take_op(L);
  long w = qn_select_winner(sel);
  /* A loser's cleanup raised: raise that, and leave the winner unfinished,
     so its drop gives back what it holds (a message, a permit). */
  if (loser_error(L, w)) {
    qn_drop(sel);
    return lua_error(L);
  }
  if (w == r->stop) {
    int failed = r->timed && qn_sleep_failed(qn_select_child(sel, (size_t)w));
    qn_drop(sel);
    if (failed) return luaL_error(L, "%s: out of memory (cannot arm a timer)", r->fname);
    return r->stopped(L);
  }
  int base = lua_gettop(L);
  int n = r->won(L, sel, w);
  if (n < 0) {                          /* the winner raised */
    lua_replace(L, base + 1);
    lua_settop(L, base + 1);
    qn_drop(sel);
    return lua_error(L);
  }
  qn_drop(sel);
  return n;
}

int lq_race_await(lua_State *L, lq_coro *c, const lq_race *r, qn_future **children, int n,
                  int biased) {
  qn_future *sel = qn_select_new(c->rt->core, (size_t)n, children, biased);
  if (sel == NULL) return luaL_error(L, "%s: out of memory", r->fname);
  c->what = r->what;
  return lq_await(L, c, sel, race_k, (lua_KContext)r);
}

/* Fast path for selects over ops only: poll them once, in the order the
   select would, before building anything. The first ready one wins; the
   others (never polled, or pending) are dropped, exactly as the select
   would drop them. Returns the number of results, or -1 if none is ready. */
static int ready_now(lua_State *L, lq_coro *c, qn_future **f, int n, int start) {
  for (int k = 0; k < n; k++) {
    int i = (start + k) % n;
    if (qn_poll(f[i], lq_coro_waker(c)) != QN_READY) continue;
    for (int j = 0; j < n; j++)
      if (j != i) qn_drop(f[j]);
    lua_pushinteger(L, i + 1);
    lq_op *op = lq_test_op(L, i + 1);
    int r = op->kind->finish(L, i + 1, f[i]);
    qn_drop(f[i]);
    return r < 0 ? lua_error(L) : r + 1;
  }
  return -1;
}

/* select: `index, results...` of the first branch to finish. */
static int select_won(lua_State *L, qn_future *sel, long w) {
  lua_pushinteger(L, w + 1);
  int n = lq_race_winner(L, (int)w + 1, sel, w);
  return n < 0 ? n : n + 1;
}

static const lq_race select_race = { "quench.select", "select", -1, 0, select_won, NULL };

/* Check every argument, then build every branch: nothing is started if
   an argument is wrong. */
static int do_select(lua_State *L, int biased, const char *fname) {
  lq_coro *c = lq_await_ctx(L, fname);
  int n = lua_gettop(L);
  if (n == 0) return luaL_error(L, "%s: needs at least one branch", fname);
  int fns = 0;
  for (int i = 1; i <= n; i++) {
    if (lua_isfunction(L, i)) {
      fns++;
      continue;
    }
    if (lq_test_op(L, i) == NULL)
      return luaL_typeerror(L, i, "function or quench.op");
    lq_op_check(L, i, c, fname);
    for (int j = 1; j < i; j++)         /* it would be started twice */
      if (lua_rawequal(L, i, j))
        return luaL_error(L, "bad argument #%d to '%s' (the same op as argument #%d; "
                             "an op is single-use)", i, fname, j);
  }
  lq_check_cancel(L, c);
  if (fns > 0) lq_check_nesting(L, c, fname);
  qn_future **children = lua_newuserdatauv(L, (size_t)n * sizeof *children, 0);
  int all_ops = 1;
  for (int i = 1; i <= n; i++) {
    if (lua_isfunction(L, i)) {
      all_ops = 0;
      lq_coro *b = lq_branch_new(L, c, i, 0);
      lua_replace(L, i);
      children[i - 1] = &b->base;
    } else if ((children[i - 1] = lq_op_start(L, i, c)) == NULL) {
      while (--i >= 1) qn_drop(children[i - 1]);
      return luaL_error(L, "%s: out of memory", fname);
    }
  }
  if (all_ops) {                        /* one of them may be ready now */
    int r = ready_now(L, c, children, n, biased ? 0 : (int)(qn_random(c->rt->core) % (uint64_t)n));
    if (r >= 0) return r;
  }
  /* the children array stays above the branches until the select returns */
  return lq_race_await(L, c, &select_race, children, n, biased);
}

static int l_select(lua_State *L) { return do_select(L, 0, "quench.select"); }
static int l_select_biased(lua_State *L) { return do_select(L, 1, "quench.select_biased"); }

/* timeout and deadline: true and the branch's results, or false and a
   Timeout error once the timer (child 1) fires first. */
static int timeout_won(lua_State *L, qn_future *sel, long w) {
  lua_pushboolean(L, 1);
  int n = lq_race_winner(L, (int)w + 1, sel, w);
  return n < 0 ? n : n + 1;
}

static int timeout_stopped(lua_State *L) {
  lua_pushboolean(L, 0);
  lq_push_timeout(L);
  return 2;
}

static const lq_race timeout_race = { "quench.timeout", "select", 1, 1, timeout_won, timeout_stopped };

/* The branch at idx (a function and its arguments, or an op) under a
   deadline; the branch wins a tie. */
static int timeout_at(lua_State *L, lq_coro *c, uint64_t when, int relative, int idx,
                      const char *fname) {
  int nargs = lua_gettop(L) - idx;
  lq_op *op = NULL;
  if (!lua_isfunction(L, idx)) {
    if ((op = lq_test_op(L, idx)) == NULL) return luaL_typeerror(L, idx, "function or quench.op");
    if (nargs > 0) return luaL_error(L, "%s: an op takes no arguments", fname);
    lq_op_check(L, idx, c, fname);
  }
  lq_check_cancel(L, c);
  if (op != NULL && op->kind->now != NULL) {   /* ready now: the branch wins, nothing built */
    lua_pushboolean(L, 1);
    int r = op->kind->now(L, idx);
    if (r >= 0) {
      op->used = 1;
      return r + 1;
    }
    lua_pop(L, 1);
  }
  qn_future *children[2];
  if (op == NULL) {
    lq_check_nesting(L, c, fname);
    lq_coro *b = lq_branch_new(L, c, idx, nargs);
    uint64_t now = qn_now(c->rt->core);
    ((lq_branch *)b)->deadline = !relative ? when : when >= QN_NEVER - now ? QN_NEVER : now + when;
    children[0] = &b->base;
  } else {
    lua_pushvalue(L, idx);
    if ((children[0] = lq_op_start(L, idx, c)) == NULL)
      return luaL_error(L, "%s: out of memory", fname);
  }
  lua_replace(L, 1);
  lua_settop(L, 1);
  if (op != NULL && qn_poll(children[0], lq_coro_waker(c)) == QN_READY) {
    lua_pushboolean(L, 1);              /* ready now: the branch wins, no timer at all */
    int r = op->kind->finish(L, 1, children[0]);
    qn_drop(children[0]);
    return r < 0 ? lua_error(L) : r + 1;
  }
  children[1] = relative ? qn_sleep_after_new(c->rt->core, when) : qn_sleep_new(c->rt->core, when);
  if (children[1] == NULL) {
    qn_drop(children[0]);
    return luaL_error(L, "%s: out of memory", fname);
  }
  return lq_race_await(L, c, &timeout_race, children, 2, 1);
}

static int l_timeout(lua_State *L) {
  lq_coro *c = lq_await_ctx(L, "quench.timeout");
  uint64_t ns = lq_check_seconds(L, 1);
  return timeout_at(L, c, ns, 1, 2, "quench.timeout");
}

/* quench.deadline(t, branch, ...): t on the quench.now() scale. */
static int l_deadline(lua_State *L) {
  lq_coro *c = lq_await_ctx(L, "quench.deadline");
  uint64_t at = lq_check_seconds(L, 1);
  return timeout_at(L, c, at, 0, 2, "quench.deadline");
}

static const luaL_Reg functions[] = {
  {"select", l_select}, {"select_biased", l_select_biased},
  {"timeout", l_timeout}, {"deadline", l_deadline}, {NULL, NULL}
};

void lq_select_register(lua_State *L, int mod) {
  lua_pushvalue(L, mod);
  luaL_setfuncs(L, functions, 1);
}
