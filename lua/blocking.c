/*
** The blocking pool: quench.blocking(fn, ...) runs fn(...) in a separate Lua
** state on libuv's thread pool (core/work.c) and waits for its results.
**
** A job is one call: a fresh state W (luaL_newstate; the standard libraries
** are opened on the pool thread, so the loop pays only for the state and
** the copies), fn moved into it by lua_dump/lua_load (upvalues are not
** carried: a function with an upvalue other than _ENV, or the quench module
** itself, which becomes the worker's quench, is refused), and the
** arguments deep-copied into it. Copies (arguments in, results out) take
** nil, booleans, numbers (integers stay integers), strings and tables of
** those without metatables; a cycle, or anything else, is an error naming
** the argument and where in it. Shared subtables are copied once per
** occurrence.
**
** Ownership: a job belongs to its box ("quench.blocking.job", a userdata
** whose __gc frees an unstarted job) until the work future takes it; the
** future then frees it (lua_close(W)) on the loop thread when it is
** dropped, or, dropped while the worker runs, when libuv reports the end
** (the future is a zombie meanwhile: nothing waits for the thread). A
** dropped job's state is closed by the pool thread as soon as fn returns.
**
** Threads: W is built on the loop thread, used only by the pool thread
** while the work runs, and read back (results) or closed on the loop
** thread afterwards; libuv's queue orders those hand-offs. Inside the
** worker, quench.blocking_cancelled() reads the future's atomic flag: the
** one thing both threads touch at once. C modules a worker requires run
** on pool threads, several at a time: they must be thread-safe.
**
** Cancel safety: none needed for the caller (nothing is lost that the
** caller had); the worker is told through blocking_cancelled() and its
** results, if it finishes anyway, are discarded.
*/
#include <stdlib.h>
#include <string.h>
#include <lualib.h>
#include "binding.h"

#define LQ_JOB "quench.blocking.job"

enum { MAX_DEPTH = 100 };

typedef struct job {
  lua_State *W;
  qn_future *work;      /* set on the pool thread, for blocking_cancelled */
  int nres;             /* after a run that returned: results on W after the flag */
  uint8_t ran_ok;       /* the worker's pcall returned normally (W[1] is the ok flag) */
  uint8_t raised;       /* it raised (out of memory, a __tostring): the error on top */
} job;

typedef struct job_box {
  job *j;               /* NULL once a work future took it */
} job_box;

static void job_free(job *j) {
  if (j->W) lua_close(j->W);
  free(j);
}

static void job_release(void *arg) { job_free(arg); }

/* ---- deep copy between two states ---- */

/* A step into a table, for error messages: the key is at `key` on the
   source stack; `iskey` when the key itself is what is being copied. */
typedef struct step {
  const struct step *up;
  int key, iskey;
} step;

typedef struct copier {
  lua_State *from, *to; /* errors are raised in `to` (under a pcall) */
  int seen;             /* in `to`: the set of source tables being copied */
  const char *what;     /* "argument" or "result" */
  const char *dir;      /* "to the worker", "back from the worker" */
  int index;
} copier;

static int is_name(const char *s, size_t n) {
  if (n == 0 || n > 40 || (s[0] >= '0' && s[0] <= '9')) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!(c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
      return 0;
  }
  return 1;
}

/* Where in the argument, as Lua would index it: ".a[3]". */
static void describe(const copier *cp, const step *s, char *buf, size_t size) {
  const step *chain[MAX_DEPTH + 2];
  int n = 0;
  for (; s != NULL && n < MAX_DEPTH + 2; s = s->up) chain[n++] = s;
  size_t len = 0;
  buf[0] = '\0';
  for (int i = n - 1; i >= 0 && len + 1 < size; i--) {
    lua_State *L = cp->from;
    int k = chain[i]->key;
    const char *fmt = chain[i]->iskey ? " (a key)" : "";
    int w;
    if (lua_type(L, k) == LUA_TSTRING) {
      size_t kl;
      const char *ks = lua_tolstring(L, k, &kl);
      w = is_name(ks, kl) ? snprintf(buf + len, size - len, ".%s%s", ks, fmt)
                          : snprintf(buf + len, size - len, "[\"%.20s\"]%s", ks, fmt);
    } else if (lua_isinteger(L, k)) {
      w = snprintf(buf + len, size - len, "[%lld]%s", (long long)lua_tointeger(L, k), fmt);
    } else if (lua_type(L, k) == LUA_TNUMBER) {
      w = snprintf(buf + len, size - len, "[%g]%s", (double)lua_tonumber(L, k), fmt);
    } else if (lua_type(L, k) == LUA_TBOOLEAN) {
      w = snprintf(buf + len, size - len, "[%s]%s", lua_toboolean(L, k) ? "true" : "false", fmt);
    } else {
      w = snprintf(buf + len, size - len, "[<%s>]%s", lua_typename(L, lua_type(L, k)), fmt);
    }
    if (w < 0) break;
    len += (size_t)w;
  }
}

static int copy_fail(const copier *cp, const step *s, const char *why) {
  char where[160];
  describe(cp, s, where, sizeof where);
  return luaL_error(cp->to, "quench.blocking: %s #%d%s%s%s: %s", cp->what, cp->index,
                    where[0] ? " (at " : "", where, where[0] ? ")" : "", why);
}

static void copy_value(const copier *cp, int idx, int depth, const step *s);

static void copy_table(const copier *cp, int idx, int depth, const step *s) {
  lua_State *from = cp->from, *to = cp->to;
  char why[96];
  if (depth >= MAX_DEPTH) copy_fail(cp, s, "tables nested more than 100 levels deep");
  if (lua_getmetatable(from, idx)) {
    lua_pop(from, 1);
    snprintf(why, sizeof why, "cannot copy a table with a metatable %s", cp->dir);
    copy_fail(cp, s, why);
  }
  void *id = (void *)lua_topointer(from, idx);
  lua_pushlightuserdata(to, id);
  if (lua_rawget(to, cp->seen) != LUA_TNIL)
    copy_fail(cp, s, "the table contains itself (a cycle cannot be copied)");
  lua_pop(to, 1);
  lua_pushlightuserdata(to, id);
  lua_pushboolean(to, 1);
  lua_rawset(to, cp->seen);
  lua_newtable(to);
  int t = lua_gettop(to);
  if (!lua_checkstack(from, 4)) copy_fail(cp, s, "out of stack space");
  lua_pushnil(from);
  while (lua_next(from, idx)) {
    int k = lua_gettop(from) - 1;
    step key = { s, k, 1 }, val = { s, k, 0 };
    copy_value(cp, k, depth + 1, &key);
    copy_value(cp, k + 1, depth + 1, &val);
    lua_rawset(to, t);
    lua_pop(from, 1);
  }
  lua_pushlightuserdata(to, id);      /* done: the same table may occur again, not inside itself */
  lua_pushnil(to);
  lua_rawset(to, cp->seen);
}

static void copy_value(const copier *cp, int idx, int depth, const step *s) {
  lua_State *from = cp->from, *to = cp->to;
  if (!lua_checkstack(to, 6)) copy_fail(cp, s, "out of stack space");
  int type = lua_type(from, idx);
  switch (type) {
  case LUA_TNIL: lua_pushnil(to); break;
  case LUA_TBOOLEAN: lua_pushboolean(to, lua_toboolean(from, idx)); break;
  case LUA_TNUMBER:
    if (lua_isinteger(from, idx)) lua_pushinteger(to, lua_tointeger(from, idx));
    else lua_pushnumber(to, lua_tonumber(from, idx));
    break;
  case LUA_TSTRING: {
    size_t n;
    const char *str = lua_tolstring(from, idx, &n);
    lua_pushlstring(to, str, n);
    break;
  }
  case LUA_TTABLE: copy_table(cp, lua_absindex(from, idx), depth, s); break;
  default: {
    char why[160];
    snprintf(why, sizeof why, "cannot copy a %s %s (only nil, booleans, numbers, strings "
             "and tables of them)", lua_typename(from, type), cp->dir);
    copy_fail(cp, s, why);
  }
  }
}

/* ---- building a job (loop thread) ---- */

typedef struct dump_buf {
  char *p;
  size_t n, cap;
} dump_buf;

static int dump_writer(lua_State *L, const void *b, size_t size, void *ud) {
  dump_buf *d = ud;
  (void)L;
  if (d->n + size > d->cap) {
    size_t cap = d->cap ? d->cap : 1024;
    while (cap < d->n + size) cap *= 2;
    char *p = realloc(d->p, cap);
    if (p == NULL) return 1;
    d->p = p;
    d->cap = cap;
  }
  memcpy(d->p + d->n, b, size);
  d->n += size;
  return 0;
}

static const char *dump_reader(lua_State *L, void *ud, size_t *size) {
  dump_buf *d = ud;
  (void)L;
  *size = d->n;
  d->n = 0;
  return *size ? d->p : NULL;
}

typedef struct args_in {
  lua_State *L;
  int first, n;         /* the arguments on L */
} args_in;

/* Runs in W (protected): push copies of the arguments. */
static int copy_in(lua_State *W) {
  args_in *a = lua_touserdata(W, 1);
  lua_newtable(W);
  copier cp = { a->L, W, 2, "argument", "to the worker", 0 };
  if (!lua_checkstack(W, a->n + LUA_MINSTACK))
    return luaL_error(W, "quench.blocking: too many arguments");
  for (int i = 0; i < a->n; i++) {
    cp.index = i + 2;                   /* as the caller counts them: fn is #1 */
    copy_value(&cp, a->first + i, 0, NULL);
  }
  return a->n;
}

/* Raise unless the value at fn can be moved to a worker: a Lua function
   whose upvalues are _ENV or the quench module (package.loaded.quench). */
static void check_function(lua_State *L, int fn, const char *fname) {
  luaL_checktype(L, fn, LUA_TFUNCTION);
  if (lua_iscfunction(L, fn))
    luaL_error(L, "%s: bad argument #1 (a C function cannot be moved to a worker; "
                  "pass a Lua function)", fname);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, "quench");
  const char *name;
  for (int i = 1; (name = lua_getupvalue(L, fn, i)) != NULL; i++) {
    int module = lua_istable(L, -1) && lua_rawequal(L, -1, -2);
    lua_pop(L, 1);
    if (strcmp(name, "_ENV") != 0 && !module)
      luaL_error(L, "%s: bad argument #1 (the function uses the upvalue '%s'; upvalues are "
                    "not carried to the worker: pass values as arguments, and require "
                    "modules inside the function)", fname, name);
  }
  lua_pop(L, 2);
}

/* Push a box holding a new job: fn (checked) and nargs arguments after it,
   moved into a fresh state. Raises (freeing the job) if one cannot cross. */
static job_box *job_new(lua_State *L, int fn, int nargs, const char *fname) {
  job_box *box = lua_newuserdatauv(L, sizeof *box, 0);
  box->j = NULL;
  luaL_setmetatable(L, LQ_JOB);
  int b = lua_gettop(L);
  job *j = calloc(1, sizeof *j);
  if (j == NULL || (j->W = luaL_newstate()) == NULL) {
    free(j);
    luaL_error(L, "%s: out of memory", fname);
  }
  box->j = j;
  dump_buf d = { NULL, 0, 0 };
  lua_pushvalue(L, fn);
  int dumped = lua_dump(L, dump_writer, &d, 0) == 0;
  lua_pop(L, 1);
  int st = dumped ? lua_load(j->W, dump_reader, &d, "=quench.blocking", "b") : LUA_ERRMEM;
  free(d.p);
  if (st != LUA_OK) {
    box->j = NULL;
    job_free(j);
    luaL_error(L, "%s: cannot move the function to the worker (%s)", fname,
               st == LUA_ERRMEM ? "out of memory" : "load failed");
  }
  args_in a = { L, fn + 1, nargs };
  lua_pushcfunction(j->W, copy_in);
  lua_pushlightuserdata(j->W, &a);
  st = lua_pcall(j->W, 1, nargs, 0);
  lua_settop(L, b);                     /* a failed copy leaves its walk on L */
  if (st != LUA_OK) {                   /* the message, a string, is on W */
    lua_pushstring(L, lua_tostring(j->W, -1));
    box->j = NULL;
    job_free(j);
    lua_error(L);
  }
  return box;
}

static int l_job_gc(lua_State *L) {
  job_box *box = luaL_testudata(L, 1, LQ_JOB);   /* __gc may be called by hand */
  if (box == NULL) return 0;
  if (box->j) job_free(box->j);
  box->j = NULL;
  return 0;
}

/* ---- the worker (pool thread) ---- */

static int w_cancelled(lua_State *W) {
  job *j = lua_touserdata(W, lua_upvalueindex(1));
  lua_pushboolean(W, qn_work_is_cancelled(j->work));
  return 1;
}

/* The worker's `quench`: a global, and what require "quench" returns there. */
static void open_worker_module(lua_State *W, job *j) {
  lua_createtable(W, 0, 1);
  lua_pushlightuserdata(W, j);
  lua_pushcclosure(W, w_cancelled, 1);
  lua_setfield(W, -2, "blocking_cancelled");
  luaL_getsubtable(W, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushvalue(W, -2);
  lua_setfield(W, -2, "quench");
  lua_pop(W, 1);
  lua_setglobal(W, "quench");
}

/* Bind fn's upvalues (at 1): _ENV to the globals, any other (the caller's
   quench module, as check_function allowed) to the worker's quench. */
static void bind_upvalues(lua_State *W) {
  const char *name;
  for (int i = 1; (name = lua_getupvalue(W, 1, i)) != NULL; i++) {
    lua_pop(W, 1);
    if (strcmp(name, "_ENV") == 0) lua_pushglobaltable(W);
    else lua_getglobal(W, "quench");
    lua_setupvalue(W, 1, i);
  }
}

/* W: job, fn, args... -> true, results... | false, message */
static int worker_main(lua_State *W) {
  job *j = lua_touserdata(W, 1);
  lua_remove(W, 1);
  int nargs = lua_gettop(W) - 1;
  luaL_openlibs(W);
  open_worker_module(W, j);
  bind_upvalues(W);
  if (lua_pcall(W, nargs, LUA_MULTRET, 0) != LUA_OK) {
    if (lua_type(W, -1) != LUA_TSTRING) {
      if (lua_type(W, -1) == LUA_TNUMBER || luaL_getmetafield(W, -1, "__tostring") != LUA_TNIL) {
        lua_settop(W, 1);
        luaL_tolstring(W, 1, NULL);
      } else {
        lua_pushfstring(W, "(error object is a %s value)", luaL_typename(W, -1));
      }
    }
    lua_pushboolean(W, 0);
    lua_insert(W, -2);
    return 2;
  }
  lua_pushboolean(W, 1);
  lua_insert(W, 1);
  return lua_gettop(W);
}

static void job_run(qn_future *self, void *arg) {
  job *j = arg;
  lua_State *W = j->W;
  j->work = self;
  int n = lua_gettop(W);
  if (!lua_checkstack(W, 2)) return;    /* ran_ok stays 0: "out of memory" */
  lua_pushcfunction(W, worker_main);
  lua_insert(W, 1);
  lua_pushlightuserdata(W, j);
  lua_insert(W, 2);
  if (lua_pcall(W, n + 1, LUA_MULTRET, 0) != LUA_OK) {
    j->raised = 1;
    return;
  }
  j->ran_ok = 1;
  j->nres = lua_gettop(W) - 1;
  /* Spare the loop thread what can be done here: a dropped job's results
     are never read (the flag is only set by a drop), so its state closes
     now; a big one is collected down to its results first. */
  if (qn_work_is_cancelled(self)) {
    lua_close(W);
    j->W = NULL;
  } else if (lua_gc(W, LUA_GCCOUNT) > 1024) {
    lua_gc(W, LUA_GCCOLLECT);
  }
}

/* ---- results (loop thread) ---- */

/* Runs in L (protected): push copies of the worker's results. */
static int copy_out(lua_State *L) {
  job *j = lua_touserdata(L, 1);
  lua_newtable(L);
  copier cp = { j->W, L, 2, "result", "back from the worker", 0 };
  luaL_checkstack(L, j->nres + LUA_MINSTACK, "quench.blocking: too many results");
  for (int i = 1; i <= j->nres; i++) {
    cp.index = i;
    copy_value(&cp, 1 + i, 0, NULL);
  }
  return j->nres;
}

/* Push true, results... or false, message; returns how many. */
static int results(lua_State *L, qn_future *f) {
  job *j = qn_work_arg(f);
  int top = lua_gettop(L), st = qn_work_status(f);
  lua_pushboolean(L, 0);
  if (st != 0) {
    lua_pushfstring(L, "quench.blocking: cannot queue the work: %s", uv_strerror(st));
    return 2;
  }
  lua_State *W = j->W;
  if (!j->ran_ok || !lua_toboolean(W, 1)) {   /* the message is W's top, if a string */
    const char *msg = (j->ran_ok || j->raised) && lua_type(W, -1) == LUA_TSTRING
                      ? lua_tostring(W, -1) : NULL;
    lua_pushstring(L, msg ? msg : "quench.blocking: the worker failed (out of memory)");
    return 2;
  }
  lua_pushcfunction(L, copy_out);
  lua_pushlightuserdata(L, j);
  if (lua_pcall(L, 1, LUA_MULTRET, 0) != LUA_OK) return 2;   /* false, the copy error */
  lua_pushboolean(L, 1);
  lua_replace(L, top + 1);
  return lua_gettop(L) - top;
}

/* ---- Lua API ---- */

/* blocking is one lq_op_kind (lua/binding.h) for both forms; its operand
   is the job, built (and its arguments copied) before the wait: the
   direct form's at stack index 1, an op's user value 1. The op completes
   with true, results... or false, message (an op's completion never
   raises); the direct form returns the results or raises the message. */
static qn_future *blocking_start(lua_State *L, int op, lq_coro *c) {
  lq_op_arg(L, op, 1);
  job_box *box = lua_touserdata(L, -1);
  lua_pop(L, 1);
  qn_future *f = qn_work_new(c->rt->core, job_run, job_release, box->j);
  if (f != NULL) box->j = NULL;
  return f;
}

static int blocking_finish(lua_State *L, int op, qn_future *f) {
  if (op != 0) return results(L, f);
  int top = lua_gettop(L);
  int n = results(L, f);
  if (!lua_toboolean(L, top + 1)) return -1;   /* the message on top is raised */
  lua_remove(L, top + 1);
  return n - 1;
}

static const lq_op_kind blocking_kind = { "blocking", NULL, blocking_start, blocking_finish, NULL };

/* quench.blocking(fn, ...): fn(...)'s results, copied back; its error raised. */
static int l_blocking(lua_State *L) {
  lq_coro *c = lq_await_ctx(L, "quench.blocking");
  check_function(L, 1, "quench.blocking");
  lq_check_cancel(L, c);                /* before the copy, which may raise */
  job_new(L, 1, lua_gettop(L) - 1, "quench.blocking");
  lua_replace(L, 1);                    /* the job, blocking_start's operand */
  lua_settop(L, 1);
  return lq_perform(L, c, &blocking_kind, 0, "quench.blocking", NULL);
}

/* quench.blocking_op(fn, ...): the job is built (and its arguments copied)
   now; it runs when the op is awaited or selected, and completes with
   true, results... or false, message (an op's completion never raises). */
static int l_blocking_op(lua_State *L) {
  check_function(L, 1, "quench.blocking_op");
  int nargs = lua_gettop(L) - 1;
  job_new(L, 1, nargs, "quench.blocking_op");
  lq_op_new(L, &blocking_kind, 1);
  lua_insert(L, -2);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

static int l_blocking_cancelled(lua_State *L) {
  return luaL_error(L, "quench.blocking_cancelled: only inside a function run by quench.blocking");
}

static const luaL_Reg functions[] = {
  {"blocking", l_blocking}, {"blocking_op", l_blocking_op},
  {"blocking_cancelled", l_blocking_cancelled}, {NULL, NULL}
};

void lq_blocking_register(lua_State *L, int mod) {
  luaL_newmetatable(L, LQ_JOB);
  lua_pushcfunction(L, l_job_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lua_pushvalue(L, mod);
  luaL_setfuncs(L, functions, 1);
}
