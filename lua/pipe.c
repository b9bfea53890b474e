/*
** Pipe streams ("quench.pipe") over core/pipe.c: a child process's stdin,
** stdout and stderr (lua/process.c), and quench.stdin(), quench.stdout(),
** quench.stderr(). Methods, results and errors are a TCP stream's
** (lua/tcp.c): read(n | "l" | "L" | "a"), read_some([max]), lines(fmt),
** write(...) (returns the stream), shutdown(), close(), their `_op` forms,
** buffered(), queued(); an I/O failure returns nil, "ENAME: message",
** "ENAME", misuse raises naming the function.
**
** Ownership: as TCP streams. The userdata holds the core stream and
** releases (closes) it in __gc; it is built closed before the core object
** exists. A stream belongs to the runtime that made it (`serial`): once that
** runtime has ended (its shutdown closed the handle) every method but close
** raises.
**
** Standard streams are made once per runtime and kept in the registry
** (REG_STDIO: {serial = n, [0] = stdin, [1] = stdout, [2] = stderr}), since
** two streams reading one pipe would split its bytes; a closed one is made
** again on the next call, and the next runtime's first call replaces the
** table.
**
** Cancel safety (docs/io.md has the table):
** - read, read_some, lines: the bytes are consumed only when the read
**   returns them; a dropped read loses nothing, they stay buffered.
** - write: all or nothing. A dropped write (it waits only while the write
**   queue is above its limit) wrote nothing; a returned write is queued
**   whole and goes out even if the task is dropped right after.
** - shutdown: a dropped shutdown may still happen (the request is libuv's).
*/
#include <stdint.h>
#include <string.h>
#include "binding.h"

#define LQ_PIPE "quench.pipe"
#define REG_STDIO "quench.stdio"

typedef struct lq_pipe {
  qn_pipe *p;           /* NULL until made, and after __gc */
  uint64_t serial;      /* of its runtime */
  char what[40];        /* "stdout", "stdin of process 1234", ... */
} lq_pipe;

/* A read's parameters in a lua_KContext: mode, raise-on-error, count. */
enum { CTX_MODE = 7, CTX_RAISE = 8, CTX_SHIFT = 4 };
#define COUNT_MAX ((size_t)(INTPTR_MAX >> CTX_SHIFT))

static int push_fail(lua_State *L, int err) {
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", uv_err_name(err), uv_strerror(err));
  lua_pushstring(L, uv_err_name(err));
  return 3;
}

static int alive(lua_State *L, uint64_t serial) {
  lq_runtime *rt = lq_module_of(L)->rt;
  return rt != NULL && rt->serial == serial;
}

static lq_pipe *to_pipe(lua_State *L, int idx) {
  return (lq_pipe *)luaL_checkudata(L, idx, LQ_PIPE);
}

static void check_usable(lua_State *L, lq_pipe *u, const char *fname) {
  if (u->p == NULL) luaL_error(L, "%s: attempt to use a closed stream", fname);
  if (!alive(L, u->serial))
    luaL_error(L, "%s: the stream's runtime has ended (a stream belongs to the quench.run "
                  "that made it)", fname);
  if (qn_pipe_is_closed(u->p)) luaL_error(L, "%s: attempt to use a closed stream", fname);
}

static qn_pipe *live_pipe(lua_State *L, int idx, const char *fname) {
  lq_pipe *u = to_pipe(L, idx);
  check_usable(L, u, fname);
  return u->p;
}

static void check_reader(lua_State *L, lq_pipe *u, const char *fname) {
  if (!qn_pipe_readable(u->p)) luaL_error(L, "%s: %s is not readable", fname, u->what);
  if (qn_pipe_readers(u->p) > 0)
    luaL_error(L, "%s: another read is waiting on this stream (one reader at a time)", fname);
}

static void check_writer(lua_State *L, lq_pipe *u, const char *fname) {
  if (!qn_pipe_writable(u->p)) luaL_error(L, "%s: %s is not writable", fname, u->what);
  if (qn_pipe_is_shut(u->p))
    luaL_error(L, "%s: the stream's write side was shut down (no writes after shutdown)", fname);
  if (qn_pipe_writers(u->p) > 0)
    luaL_error(L, "%s: another write is waiting on this stream (one writer at a time)", fname);
}

/* Push a stream over p (which it owns from now on). */
void lq_pipe_push(lua_State *L, lq_runtime *rt, qn_pipe *p, const char *what) {
  lq_pipe *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->p = NULL;
  u->serial = rt->serial;
  strncpy(u->what, what, sizeof u->what - 1);
  u->what[sizeof u->what - 1] = '\0';
  luaL_setmetatable(L, LQ_PIPE);
  u->p = p;
}

/* Close the stream at idx if it is one (nil is fine). */
void lq_pipe_close(lua_State *L, int idx) {
  lq_pipe *u = luaL_testudata(L, idx, LQ_PIPE);
  if (u != NULL && u->p != NULL && alive(L, u->serial)) qn_pipe_close(u->p);
}

/* ---- reading ---- */

static lua_KContext check_format(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return QN_TCP_LINE;
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Integer n = luaL_checkinteger(L, idx);
    luaL_argcheck(L, n >= 0, idx, "count must not be negative");
    luaL_argcheck(L, (uint64_t)n <= COUNT_MAX, idx, "count too large");
    return (lua_KContext)(((size_t)n << CTX_SHIFT) | QN_TCP_EXACT);
  }
  const char *p = luaL_checkstring(L, idx);
  if (*p == '*') p++;
  if (strcmp(p, "l") == 0) return QN_TCP_LINE;
  if (strcmp(p, "L") == 0) return QN_TCP_LINE_KEEP;
  if (strcmp(p, "a") == 0) return QN_TCP_ALL;
  return luaL_argerror(L, idx, "invalid format (a byte count, \"l\", \"L\" or \"a\")");
}

static lua_KContext check_max(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return QN_TCP_SOME;
  lua_Integer n = luaL_checkinteger(L, idx);
  luaL_argcheck(L, n >= 1, idx, "max must be at least 1");
  if ((uint64_t)n > COUNT_MAX) n = (lua_Integer)COUNT_MAX;
  return (lua_KContext)(((size_t)n << CTX_SHIFT) | QN_TCP_SOME);
}

static qn_tcp_mode ctx_mode(lua_KContext ctx) { return (qn_tcp_mode)(ctx & CTX_MODE); }
static size_t ctx_count(lua_KContext ctx) { return (size_t)ctx >> CTX_SHIFT; }

/* Push what a read returns now, consuming it: its result count, or -1 if
   the read must wait. */
static int try_read(lua_State *L, qn_pipe *p, lua_KContext ctx) {
  const char *s;
  size_t len, used;
  int r = qn_pipe_peek(p, ctx_mode(ctx), ctx_count(ctx), &s, &len, &used);
  if (r == UV_EAGAIN) return -1;
  if (r == 0) {
    lua_pushlstring(L, s, len);
    qn_pipe_consume(p, used);
    return 1;
  }
  if (r == UV_EOF) {
    lua_pushnil(L);
    return 1;
  }
  if (ctx & CTX_RAISE)
    return luaL_error(L, "quench.pipe:lines: %s: %s", uv_err_name(r), uv_strerror(r));
  return push_fail(L, r);
}

static int read_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  qn_future *f = lq_take_op(L);
  qn_drop(f);
  int n = try_read(L, to_pipe(L, 1)->p, ctx);
  return n >= 0 ? n : push_fail(L, UV_EAGAIN);   /* unreachable: ready means readable */
}

static int do_read(lua_State *L, lua_KContext ctx, const char *fname) {
  lq_pipe *u = to_pipe(L, 1);
  lq_coro *c = lq_await_ctx(L, fname);
  check_reader(L, u, fname);
  lua_settop(L, 1);
  lq_check_cancel(L, c);
  int n = try_read(L, u->p, ctx);
  if (n >= 0) return n;
  qn_future *f = qn_pipe_read_new(u->p, ctx_mode(ctx), ctx_count(ctx));
  if (f == NULL) return luaL_error(L, "%s: out of memory", fname);
  c->what = "pipe read";
  return lq_await(L, c, f, read_k, ctx);
}

static int l_read(lua_State *L) {
  live_pipe(L, 1, "quench.pipe:read");
  return do_read(L, check_format(L, 2), "quench.pipe:read");
}

static int l_read_some(lua_State *L) {
  live_pipe(L, 1, "quench.pipe:read_some");
  return do_read(L, check_max(L, 2), "quench.pipe:read_some");
}

/* The iterator of stream:lines(fmt): upvalues module, stream, context. */
static int lines_iter(lua_State *L) {
  lua_settop(L, 0);
  lua_pushvalue(L, lua_upvalueindex(2));
  live_pipe(L, 1, "quench.pipe:lines");
  return do_read(L, (lua_KContext)lua_tointeger(L, lua_upvalueindex(3)), "quench.pipe:lines");
}

static int l_lines(lua_State *L) {
  live_pipe(L, 1, "quench.pipe:lines");
  lua_KContext ctx = check_format(L, 2) | CTX_RAISE;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, 1);
  lua_pushinteger(L, (lua_Integer)ctx);
  lua_pushcclosure(L, lines_iter, 3);
  return 1;
}

/* Ops: user value 1 is the stream; a read op's ns is its context. */
static lq_pipe *op_pipe(lua_State *L, int op) {
  lua_getiuservalue(L, op, 1);
  lq_pipe *u = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return u;
}

static void read_check(lua_State *L, int op, lq_coro *c) {
  (void)c;
  lq_pipe *u = op_pipe(L, op);
  check_usable(L, u, "quench.pipe:read_op");
  check_reader(L, u, "quench.pipe:read_op");
}

static qn_future *read_start(lua_State *L, int op, lq_coro *c) {
  (void)c;
  lq_op *o = lua_touserdata(L, op);
  lua_KContext ctx = (lua_KContext)o->ns;
  return qn_pipe_read_new(op_pipe(L, op)->p, ctx_mode(ctx), ctx_count(ctx));
}

static int read_finish(lua_State *L, int op, qn_future *f) {
  (void)f;
  lq_op *o = lua_touserdata(L, op);
  int n = try_read(L, op_pipe(L, op)->p, (lua_KContext)o->ns);
  return n >= 0 ? n : push_fail(L, UV_EAGAIN);
}

static const lq_op_kind read_kind = { "pipe read", read_check, read_start, read_finish };

static int new_op(lua_State *L, const lq_op_kind *kind, uint64_t ns, int nuv) {
  lq_op_new(L, kind, nuv)->ns = ns;
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

static int l_read_op(lua_State *L) {
  live_pipe(L, 1, "quench.pipe:read_op");
  return new_op(L, &read_kind, (uint64_t)check_format(L, 2), 1);
}

static int l_read_some_op(lua_State *L) {
  live_pipe(L, 1, "quench.pipe:read_some_op");
  return new_op(L, &read_kind, (uint64_t)check_max(L, 2), 1);
}

/* ---- writing ---- */

static int write_k(lua_State *L, int status, lua_KContext ctx);

/* Write the string at 2 to the stream at 1; wait while the queue is full. */
static int write_step(lua_State *L, lq_coro *c) {
  lq_pipe *u = lua_touserdata(L, 1);
  size_t len;
  const char *data = lua_tolstring(L, 2, &len);
  int r = qn_pipe_write(u->p, data, len);
  if (r == 0) {
    lua_settop(L, 1);
    return 1;
  }
  if (r != UV_EAGAIN) return push_fail(L, r);
  qn_future *f = qn_pipe_writable_new(u->p);
  if (f == NULL) return luaL_error(L, "quench.pipe:write: out of memory");
  c->what = "pipe write";
  return lq_await(L, c, f, write_k, 0);
}

static int write_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status; (void)ctx;
  qn_future *f = lq_take_op(L);
  qn_drop(f);
  return write_step(L, lq_module_of(L)->rt->running);
}

/* stream:write(...): strings or numbers, written as one; returns the stream. */
static int l_write(lua_State *L) {
  const char *fname = "quench.pipe:write";
  live_pipe(L, 1, fname);
  int top = lua_gettop(L);
  for (int i = 2; i <= top; i++) luaL_checklstring(L, i, NULL);
  lq_coro *c = lq_await_ctx(L, fname);
  check_writer(L, to_pipe(L, 1), fname);
  if (top > 2) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 2; i <= top; i++) {
      lua_pushvalue(L, i);
      luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    lua_replace(L, 2);
  } else if (top < 2) {
    lua_pushliteral(L, "");
  }
  lua_settop(L, 2);
  lq_check_cancel(L, c);
  return write_step(L, c);
}

static void write_check(lua_State *L, int op, lq_coro *c) {
  (void)c;
  lq_pipe *u = op_pipe(L, op);
  check_usable(L, u, "quench.pipe:write_op");
  check_writer(L, u, "quench.pipe:write_op");
}

static qn_future *write_start(lua_State *L, int op, lq_coro *c) {
  (void)c;
  return qn_pipe_writable_new(op_pipe(L, op)->p);
}

static int write_finish(lua_State *L, int op, qn_future *f) {
  (void)f;
  lua_getiuservalue(L, op, 1);
  lq_pipe *u = lua_touserdata(L, -1);
  size_t len;
  lua_getiuservalue(L, op, 2);
  const char *data = lua_tolstring(L, -1, &len);
  int r = qn_pipe_write(u->p, data, len);
  lua_pop(L, 1);
  if (r == 0) return 1;                       /* the stream */
  lua_pop(L, 1);
  return push_fail(L, r);
}

static const lq_op_kind write_kind = { "pipe write", write_check, write_start, write_finish };

static int l_write_op(lua_State *L) {
  live_pipe(L, 1, "quench.pipe:write_op");
  luaL_checklstring(L, 2, NULL);
  new_op(L, &write_kind, 0, 2);
  lua_pushvalue(L, 2);
  if (lua_type(L, -1) == LUA_TNUMBER) lua_tolstring(L, -1, NULL);
  lua_setiuservalue(L, -2, 2);
  return 1;
}

/* ---- shutdown ---- */

static int shutdown_results(lua_State *L, qn_future *f) {
  int r = qn_pipe_shutdown_status(f);
  if (r != 0) return push_fail(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

static int shutdown_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status; (void)ctx;
  qn_future *f = lq_take_op(L);
  int n = shutdown_results(L, f);
  qn_drop(f);
  return n;
}

static void check_not_shut(lua_State *L, lq_pipe *u, const char *fname) {
  if (!qn_pipe_writable(u->p)) luaL_error(L, "%s: %s is not writable", fname, u->what);
  if (qn_pipe_is_shut(u->p))
    luaL_error(L, "%s: the stream's write side was already shut down", fname);
}

/* stream:shutdown(): waits until everything queued is written and the write
   side is shut (the reader sees EOF); true, or nil, msg, code. A pipe that
   is not a socket cannot be half-closed (ENOTSOCK): close it instead. */
static int l_shutdown(lua_State *L) {
  const char *fname = "quench.pipe:shutdown";
  qn_pipe *p = live_pipe(L, 1, fname);
  lq_coro *c = lq_await_ctx(L, fname);
  lua_settop(L, 1);
  check_not_shut(L, to_pipe(L, 1), fname);
  lq_check_cancel(L, c);
  qn_future *f = qn_pipe_shutdown_new(p);
  if (f == NULL) return luaL_error(L, "%s: out of memory", fname);
  c->what = "pipe shutdown";
  return lq_await(L, c, f, shutdown_k, 0);
}

static void shutdown_check(lua_State *L, int op, lq_coro *c) {
  (void)c;
  lq_pipe *u = op_pipe(L, op);
  check_usable(L, u, "quench.pipe:shutdown_op");
  check_not_shut(L, u, "quench.pipe:shutdown_op");
}

static qn_future *shutdown_start(lua_State *L, int op, lq_coro *c) {
  (void)c;
  return qn_pipe_shutdown_new(op_pipe(L, op)->p);
}

static int shutdown_finish(lua_State *L, int op, qn_future *f) {
  (void)op;
  return shutdown_results(L, f);
}

static const lq_op_kind shutdown_kind = {
  "pipe shutdown", shutdown_check, shutdown_start, shutdown_finish
};

static int l_shutdown_op(lua_State *L) {
  live_pipe(L, 1, "quench.pipe:shutdown_op");
  return new_op(L, &shutdown_kind, 0, 1);
}

/* ---- the rest ---- */

/* close(): idempotent, never waits; what write queued is still sent. */
static int l_close(lua_State *L) {
  to_pipe(L, 1);
  lq_pipe_close(L, 1);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_gc(lua_State *L) {
  lq_pipe *u = luaL_testudata(L, 1, LQ_PIPE);   /* __gc may be called by hand */
  if (u == NULL) return 0;
  if (u->p != NULL) qn_pipe_release(u->p);
  u->p = NULL;
  return 0;
}

static int l_buffered(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)qn_pipe_buffered(live_pipe(L, 1, "quench.pipe:buffered")));
  return 1;
}

static int l_queued(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)qn_pipe_write_queued(live_pipe(L, 1, "quench.pipe:queued")));
  return 1;
}

static int l_tostring(lua_State *L) {
  lq_pipe *u = to_pipe(L, 1);
  int open = u->p != NULL && alive(L, u->serial) && !qn_pipe_is_closed(u->p);
  lua_pushfstring(L, "quench.pipe (%s, %s)", u->what, open ? "open" : "closed");
  return 1;
}

/* ---- standard streams ---- */

/* Push this runtime's cache of standard streams. Strong: a stream read
   ahead must not be collected between two quench.stdin() calls, or its
   buffered bytes would go with it. */
static int stdio_cache(lua_State *L, lq_runtime *rt) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, REG_STDIO) == LUA_TTABLE) {
    lua_getfield(L, -1, "serial");
    int same = lua_tointeger(L, -1) == (lua_Integer)rt->serial;
    lua_pop(L, 1);
    if (same) return lua_gettop(L);
  }
  lua_pop(L, 1);                        /* none, or another runtime's: forget it */
  lua_createtable(L, 3, 1);
  lua_pushinteger(L, (lua_Integer)rt->serial);
  lua_setfield(L, -2, "serial");
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, REG_STDIO);
  return lua_gettop(L);
}

static int stdio(lua_State *L, int fd, const char *name) {
  lq_runtime *rt = lq_runtime_of(L, name);
  int cache = stdio_cache(L, rt);
  if (lua_rawgeti(L, cache, fd) == LUA_TUSERDATA) {
    lq_pipe *u = lua_touserdata(L, -1);
    if (u->p != NULL && !qn_pipe_is_closed(u->p)) return 1;
  }
  lua_pop(L, 1);
  qn_pipe *p;
  int r = qn_pipe_open_stdio(rt->core, fd, NULL, &p);
  if (r == UV_ENOTSUP) {
    lua_pushnil(L);
    lua_pushfstring(L, "ENOTSUP: %s is a file or a character device, which a stream cannot "
                       "watch (streams take pipes, sockets and terminals; read a file with "
                       "quench.fs or io)", name + 7);
    lua_pushliteral(L, "ENOTSUP");
    return 3;
  }
  if (r != 0) return push_fail(L, r);
  lq_pipe_push(L, rt, p, name + 7);
  lua_pushvalue(L, -1);
  lua_rawseti(L, cache, fd);
  return 1;
}

static int l_stdin(lua_State *L) { return stdio(L, 0, "quench.stdin"); }
static int l_stdout(lua_State *L) { return stdio(L, 1, "quench.stdout"); }
static int l_stderr(lua_State *L) { return stdio(L, 2, "quench.stderr"); }

static const luaL_Reg methods[] = {
  {"read", l_read}, {"read_some", l_read_some}, {"lines", l_lines},
  {"write", l_write}, {"shutdown", l_shutdown}, {"close", l_close},
  {"read_op", l_read_op}, {"read_some_op", l_read_some_op},
  {"write_op", l_write_op}, {"shutdown_op", l_shutdown_op},
  {"buffered", l_buffered}, {"queued", l_queued}, {NULL, NULL}
};

static const luaL_Reg functions[] = {
  {"stdin", l_stdin}, {"stdout", l_stdout}, {"stderr", l_stderr}, {NULL, NULL}
};

void lq_pipe_register(lua_State *L, int mod) {
  luaL_newmetatable(L, LQ_PIPE);
  lua_newtable(L);
  lua_pushvalue(L, mod);
  luaL_setfuncs(L, methods, 1);
  lua_setfield(L, -2, "__index");
  lua_pushvalue(L, mod);
  lua_pushcclosure(L, l_close, 1);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, l_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushvalue(L, mod);
  lua_pushcclosure(L, l_tostring, 1);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  lua_pushvalue(L, mod);
  luaL_setfuncs(L, functions, 1);
}
