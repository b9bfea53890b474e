/*
** Stream methods over core/stream.c, shared by TCP streams
** ("quench.tcp.stream", lua/tcp.c), TLS streams ("quench.tls.stream",
** lua/tls.c), Unix streams ("quench.unix.stream", lua/unix.c) and pipes
** ("quench.pipe", lua/pipe.c):
** read(n | "l" | "L" | "a"), read_some([max]), lines(fmt), write(...)
** (returns the stream), shutdown(), close(), their `_op` forms, buffered(),
** queued(); and readiness without data moving: peek([max]) (read_some that
** consumes nothing), readable() and writable() (wait until a read_some or
** a write would not wait), with their ops, and try_read([max]) and
** try_write(...), which never wait (nil, "EAGAIN: ...", "EAGAIN" instead). Lua's io conventions: an I/O failure returns nil,
** "ENAME: message", "ENAME", and misuse raises an error naming the function
** ("quench.tcp.stream:read", "quench.pipe:read"): a class (lq_stream_class)
** holds a type's names.
**
** Ownership: a userdata holds a pointer to the core stream and releases it
** in __gc (which closes it: resource release, like luv; it never cancels a
** task: a task waiting on a stream keeps its userdata on its stack). The
** userdata is built closed (NULL) before the core object exists, so no
** error can leak one. A stream belongs to the runtime that made it
** (`serial`); once that runtime has ended (its shutdown closed the handle)
** every method but close raises.
**
** A method's upvalues are the module and its class (a light userdata); an
** op finds its stream's class in the stream.
**
** Cancel safety (docs/io.md has the table):
** - read, read_some, lines: the bytes are consumed only when the read
**   returns them; a dropped read (select loser, timeout, abort) loses
**   nothing, they stay buffered for the next read.
** - write: all or nothing. A dropped write (it can only wait while the
**   write queue is above its limit) wrote nothing; a returned write is
**   queued whole and goes out even if the task is dropped right after.
** - shutdown: a dropped shutdown may still happen (the request is libuv's).
** - peek, readable, writable: nothing moves, ever: dropping one is free.
*/
#include <stdint.h>
#include <string.h>
#include "stream.h"

struct lq_stream_class {
  const char *tname;        /* the metatable's name */
  const char *read, *read_some, *lines, *read_op, *read_some_op;   /* function names */
  const char *write, *write_op, *shutdown, *shutdown_op, *buffered, *queued;
  const char *peek, *peek_op, *readable, *readable_op, *writable, *writable_op;
  const char *try_read, *try_write;
  /* The op forms; their names are what a task waits on (quench.tasks()).
     The functions are the same for every class (the *_wait templates
     below, which the direct forms use). */
  lq_obj_kind read_kind, write_kind, shutdown_kind, writable_kind;
};

/* A read's parameters in a lua_KContext: mode, raise-on-error, consume
   nothing (peek), return true instead of the bytes (readable), count. */
enum { CTX_MODE = 7, CTX_RAISE = 8, CTX_PEEK = 16, CTX_READY = 32, CTX_SHIFT = 6 };
#define COUNT_MAX ((size_t)(INTPTR_MAX >> CTX_SHIFT))

static const lq_stream_class *class_of(lua_State *L) {
  return lua_touserdata(L, lua_upvalueindex(2));
}

/* The stream of this function's class at idx: its class is its tag. */
static lq_stream *to_stream(lua_State *L, int idx) {
  const lq_stream_class *cls = class_of(L);
  lq_stream *u = lq_toudata(L, idx, cls, sizeof(lq_stream));
  if (u == NULL) luaL_typeerror(L, idx, cls->tname);
  return u;
}

lq_stream *lq_stream_new(lua_State *L, const lq_stream_class *cls, const char *what) {
  lq_stream *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->s = NULL;
  u->serial = 0;
  u->cls = cls;
  strncpy(u->what, what, sizeof u->what - 1);
  u->what[sizeof u->what - 1] = '\0';
  luaL_setmetatable(L, cls->tname);
  return u;
}

static void check_usable(lua_State *L, lq_stream *u, const char *fname) {
  if (u->s == NULL) luaL_error(L, "%s: attempt to use a closed stream", fname);
  lq_check_alive(L, u->serial, fname, "stream");
  if (qn_stream_is_closed(u->s)) luaL_error(L, "%s: attempt to use a closed stream", fname);
}

qn_stream *lq_stream_live(lua_State *L, int idx, const char *fname) {
  lq_stream *u = to_stream(L, idx);
  check_usable(L, u, fname);
  return u->s;
}

void lq_stream_close_at(lua_State *L, const lq_stream_class *cls, int idx) {
  lq_stream *u = luaL_testudata(L, idx, cls->tname);
  if (u != NULL && u->s != NULL && lq_alive(L, u->serial)) qn_stream_close(u->s);
}

static void check_reader(lua_State *L, lq_stream *u, const char *fname) {
  if (!qn_stream_readable(u->s)) luaL_error(L, "%s: %s is not readable", fname, u->what);
  if (qn_stream_readers(u->s) > 0)
    luaL_error(L, "%s: another read is waiting on this stream (one reader at a time)", fname);
}

static void check_writer(lua_State *L, lq_stream *u, const char *fname) {
  if (!qn_stream_writable(u->s)) luaL_error(L, "%s: %s is not writable", fname, u->what);
  if (qn_stream_is_shut(u->s))
    luaL_error(L, "%s: the stream's write side was shut down (no writes after shutdown)", fname);
  if (qn_stream_writers(u->s) > 0)
    luaL_error(L, "%s: another write is waiting on this stream (one writer at a time)", fname);
}

static void check_not_shut(lua_State *L, lq_stream *u, const char *fname) {
  if (!qn_stream_writable(u->s)) luaL_error(L, "%s: %s is not writable", fname, u->what);
  if (qn_stream_is_shut(u->s))
    luaL_error(L, "%s: the stream's write side was already shut down", fname);
}

/* Each wait (read, write, writable, shutdown) is one lq_obj_kind
   (lua/binding.h) given the stream: the direct form's operands are the
   stream at 1 and the read's context (an integer) or the string to write
   at 2; an op keeps the stream in user value 1 (and lq_op.obj), the
   read's context in its arg, the string in user value 2. */
static int new_op(lua_State *L, const lq_obj_kind *kind, uint64_t arg, int nuv) {
  lq_op *o = lq_op_new(L, &kind->base, nuv);
  o->arg = arg;
  o->obj = lua_touserdata(L, 1);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

/* ---- reading ---- */

/* A read format (io conventions): a count, "l", "L" or "a" (a leading "*"
   is allowed); none: "l". */
static lua_KContext check_format(lua_State *L, int idx, const char *fname) {
  if (lua_isnoneornil(L, idx)) return QN_STREAM_LINE;
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Integer n = luaL_checkinteger(L, idx);
    luaL_argcheck(L, n >= 0, idx, "count must not be negative");
    luaL_argcheck(L, (uint64_t)n <= COUNT_MAX, idx, "count too large");
    return (lua_KContext)(((size_t)n << CTX_SHIFT) | QN_STREAM_EXACT);
  }
  const char *p = lq_check_cstring(L, idx, fname, "argument #1 (format)");
  if (*p == '*') p++;
  if (strcmp(p, "l") == 0) return QN_STREAM_LINE;
  if (strcmp(p, "L") == 0) return QN_STREAM_LINE_KEEP;
  if (strcmp(p, "a") == 0) return QN_STREAM_ALL;
  return luaL_argerror(L, idx, "invalid format (a byte count, \"l\", \"L\" or \"a\")");
}

static lua_KContext check_max(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return QN_STREAM_SOME;
  lua_Integer n = luaL_checkinteger(L, idx);
  luaL_argcheck(L, n >= 1, idx, "max must be at least 1");
  if ((uint64_t)n > COUNT_MAX) n = (lua_Integer)COUNT_MAX;
  return (lua_KContext)(((size_t)n << CTX_SHIFT) | QN_STREAM_SOME);
}

static qn_stream_mode ctx_mode(lua_KContext ctx) { return (qn_stream_mode)(ctx & CTX_MODE); }
static size_t ctx_count(lua_KContext ctx) { return (size_t)ctx >> CTX_SHIFT; }

/* nil, "ENAME: message", "ENAME": a TLS failure with the stream's own
   message (OpenSSL's reason), else as lq_push_fail. */
int lq_stream_fail(lua_State *L, qn_stream *s, int r) {
  const char *name = qn_tls_err_name(r);
  if (name == NULL) return lq_push_fail(L, r);
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", name, qn_tls_error_message(s));
  lua_pushstring(L, name);
  return 3;
}

/* Push what a read returns now, consuming it: its result count, or -1 if
   the read must wait. For lines (CTX_RAISE) an error is raised: -2, the
   message pushed, for the caller to raise (a finish raises only once its
   future is dropped). */
static int try_read(lua_State *L, lq_stream *u, lua_KContext ctx) {
  const char *p;
  size_t len, used;
  int r = qn_stream_peek(u->s, ctx_mode(ctx), ctx_count(ctx), &p, &len, &used);
  if (r == UV_EAGAIN) return -1;
  if ((ctx & CTX_READY) && r != UV_ECANCELED) {   /* data, EOF or an error: a read would not wait */
    lua_pushboolean(L, 1);
    return 1;
  }
  if (r == 0) {
    lua_pushlstring(L, p, len);
    if (!(ctx & CTX_PEEK)) qn_stream_consume(u->s, used);
    return 1;
  }
  if (r == UV_EOF) {
    lua_pushnil(L);
    return 1;
  }
  if (ctx & CTX_RAISE) {
    lq_stream_fail(L, u->s, r);
    lua_pushfstring(L, "%s: %s", u->cls->lines, lua_tostring(L, -2));
    return -2;
  }
  return lq_stream_fail(L, u->s, r);
}

/* The read's context: operand 2 of the direct form, the op's arg. */
static lua_KContext read_ctx(lua_State *L, int op) {
  if (op == 0) return (lua_KContext)lua_tointeger(L, 2);
  return (lua_KContext)((lq_op *)lua_touserdata(L, op))->arg;
}

static void read_check(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)c;
  lq_stream *u = obj;
  const lq_stream_class *cls = u->cls;
  lua_KContext ctx = read_ctx(L, op);
  const char *fname;
  if (op != 0) {
    fname = (ctx & CTX_PEEK) ? cls->peek_op : (ctx & CTX_READY) ? cls->readable_op : cls->read_op;
    check_usable(L, u, fname);
  } else {                              /* the method checked the stream is usable */
    fname = (ctx & CTX_RAISE) ? cls->lines : (ctx & CTX_PEEK) ? cls->peek
            : (ctx & CTX_READY) ? cls->readable
            : ctx_mode(ctx) == QN_STREAM_SOME ? cls->read_some : cls->read;
  }
  check_reader(L, u, fname);
}

static int read_now(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)c;
  int n = try_read(L, obj, read_ctx(L, op));
  return n == -2 ? lua_error(L) : n;
}

static qn_future *read_start(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)c;
  lua_KContext ctx = read_ctx(L, op);
  return qn_stream_read_new(((lq_stream *)obj)->s, ctx_mode(ctx), ctx_count(ctx));
}

static int read_finish(lua_State *L, void *obj, int op, qn_future *f) {
  (void)f;
  int n = try_read(L, obj, read_ctx(L, op));
  if (n == -2) return -1;                /* raised once the future is dropped */
  return n >= 0 ? n : lq_push_fail(L, UV_EAGAIN);   /* unreachable: ready means readable */
}

static const lq_obj_kind read_wait =
  LQ_OBJ_KIND("read", read_check, read_start, read_finish, read_now);
LQ_OBJ_PERFORM_K(read_k, read_wait)

/* Read from the stream at 1 (checked usable), waiting if need be. */
static int do_read(lua_State *L, lua_KContext ctx, const char *fname) {
  lq_stream *u = lua_touserdata(L, 1);
  lq_coro *c = lq_await_ctx(L, fname);
  lua_settop(L, 1);
  lua_pushinteger(L, (lua_Integer)ctx);
  return lq_obj_perform(L, c, &read_wait, u, fname, u->cls->read_kind.base.name, read_k);
}

static int l_read(lua_State *L) {
  const char *fname = class_of(L)->read;
  lq_stream_live(L, 1, fname);
  return do_read(L, check_format(L, 2, fname), fname);
}

static int l_read_some(lua_State *L) {
  const char *fname = class_of(L)->read_some;
  lq_stream_live(L, 1, fname);
  return do_read(L, check_max(L, 2), fname);
}

/* peek([max]): read_some's bytes, left buffered for the next read. */
static int l_peek(lua_State *L) {
  const char *fname = class_of(L)->peek;
  lq_stream_live(L, 1, fname);
  return do_read(L, check_max(L, 2) | CTX_PEEK, fname);
}

/* readable(): true once a read_some would not wait (bytes, EOF or an
   error are there); nothing is read. */
static int l_readable(lua_State *L) {
  const char *fname = class_of(L)->readable;
  lq_stream_live(L, 1, fname);
  return do_read(L, QN_STREAM_SOME | CTX_READY, fname);
}

/* try_read([max]): read_some that never waits: nil, "EAGAIN: ...",
   "EAGAIN" when nothing is buffered. Needs no task. */
static int l_try_read(lua_State *L) {
  const char *fname = class_of(L)->try_read;
  lq_stream *u = to_stream(L, 1);
  check_usable(L, u, fname);
  lua_KContext ctx = check_max(L, 2);
  check_reader(L, u, fname);
  lua_settop(L, 1);
  int n = try_read(L, u, ctx);
  return n >= 0 ? n : lq_push_fail(L, UV_EAGAIN);
}

/* The iterator of stream:lines(fmt): upvalues module, class, stream, context. */
static int lines_iter(lua_State *L) {
  const char *fname = class_of(L)->lines;
  lua_settop(L, 0);
  lua_pushvalue(L, lua_upvalueindex(3));
  lq_stream_live(L, 1, fname);
  return do_read(L, (lua_KContext)lua_tointeger(L, lua_upvalueindex(4)), fname);
}

static int l_lines(lua_State *L) {
  lq_stream_live(L, 1, class_of(L)->lines);
  lua_KContext ctx = check_format(L, 2, class_of(L)->lines) | CTX_RAISE;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_pushvalue(L, 1);
  lua_pushinteger(L, (lua_Integer)ctx);
  lua_pushcclosure(L, lines_iter, 4);
  return 1;
}

static int l_read_op(lua_State *L) {
  const lq_stream_class *cls = class_of(L);
  lq_stream_live(L, 1, cls->read_op);
  return new_op(L, &cls->read_kind, (uint64_t)check_format(L, 2, cls->read_op), 1);
}

static int l_read_some_op(lua_State *L) {
  const lq_stream_class *cls = class_of(L);
  lq_stream_live(L, 1, cls->read_some_op);
  return new_op(L, &cls->read_kind, (uint64_t)check_max(L, 2), 1);
}

static int l_peek_op(lua_State *L) {
  const lq_stream_class *cls = class_of(L);
  lq_stream_live(L, 1, cls->peek_op);
  return new_op(L, &cls->read_kind, (uint64_t)(check_max(L, 2) | CTX_PEEK), 1);
}

static int l_readable_op(lua_State *L) {
  const lq_stream_class *cls = class_of(L);
  lq_stream_live(L, 1, cls->readable_op);
  return new_op(L, &cls->read_kind, (uint64_t)(QN_STREAM_SOME | CTX_READY), 1);
}

/* ---- writing ---- */

/* The string to write: operand 2 of the direct form, user value 2 of an
   op (pushed: pop it with the results). */
static const char *write_data(lua_State *L, int op, size_t *len) {
  if (op == 0) return lua_tolstring(L, 2, len);
  lua_getiuservalue(L, op, 2);
  return lua_tolstring(L, -1, len);
}

/* Write now: the stream (1 result), an I/O failure (3), or -1 (nothing
   pushed) while more than write_limit is queued. */
static int write_once(lua_State *L, lq_stream *u, int op) {
  size_t len;
  const char *data = write_data(L, op, &len);
  int r = qn_stream_write(u->s, data, len);
  if (op != 0) lua_pop(L, 1);
  if (r == UV_EAGAIN) return -1;
  if (r != 0) return lq_stream_fail(L, u->s, r);
  if (op == 0) lua_settop(L, 1);
  else lua_getiuservalue(L, op, 1);
  return 1;
}

static void write_check(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)c;
  lq_stream *u = obj;
  const char *fname = op != 0 ? u->cls->write_op : u->cls->write;
  if (op != 0) check_usable(L, u, fname);
  check_writer(L, u, fname);
}

static int write_now(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)c;
  return write_once(L, obj, op);
}

static qn_future *write_start(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)L, (void)op, (void)c;
  return qn_stream_writable_new(((lq_stream *)obj)->s);
}

/* Room now, normally (one writer at a time); if not, the direct form
   waits again, an op fails with EAGAIN. */
static int write_finish(lua_State *L, void *obj, int op, qn_future *f) {
  (void)f;
  int n = write_once(L, obj, op);
  if (n >= 0) return n;
  return op == 0 ? LQ_AGAIN : lq_push_fail(L, UV_EAGAIN);
}

static const lq_obj_kind write_wait =
  LQ_OBJ_KIND("write", write_check, write_start, write_finish, write_now);
LQ_OBJ_PERFORM_K(write_k, write_wait)

/* stream:write(...): strings or numbers, written as one; returns the stream. */
static int l_write(lua_State *L) {
  const char *fname = class_of(L)->write;
  lq_stream_live(L, 1, fname);
  int top = lua_gettop(L);
  for (int i = 2; i <= top; i++) luaL_checklstring(L, i, NULL);
  lq_coro *c = lq_await_ctx(L, fname);
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
  lq_stream *u = lua_touserdata(L, 1);
  return lq_obj_perform(L, c, &write_wait, u, fname, u->cls->write_kind.base.name, write_k);
}

/* Concatenate the strings or numbers at 2.. into one at 2 (checked). */
static void one_string(lua_State *L, const char *fname) {
  int top = lua_gettop(L);
  for (int i = 2; i <= top; i++)
    if (lua_type(L, i) != LUA_TSTRING && lua_type(L, i) != LUA_TNUMBER)
      luaL_error(L, "%s: argument #%d must be a string or a number, got %s", fname, i - 1,
                 luaL_typename(L, i));
  if (top > 2) {
    lua_concat(L, top - 1);
  } else if (top < 2) {
    lua_pushliteral(L, "");
  } else {
    lua_tolstring(L, 2, NULL);
  }
}

/* try_write(...): write that never waits: the stream, or nil, "EAGAIN:
   ...", "EAGAIN" while more than write_limit is queued (nothing written).
   Needs no task. */
static int l_try_write(lua_State *L) {
  const char *fname = class_of(L)->try_write;
  lq_stream *u = to_stream(L, 1);
  check_usable(L, u, fname);
  one_string(L, fname);
  check_writer(L, u, fname);
  size_t len;
  const char *data = lua_tolstring(L, 2, &len);
  int r = qn_stream_write(u->s, data, len);
  if (r != 0) return lq_push_fail(L, r);
  lua_settop(L, 1);
  return 1;
}

/* writable(): true once a write would not wait (the queue is at most
   write_limit, or a write would fail at once); nothing is written. */
static int writable_results(lua_State *L, lq_stream *u) {
  if (qn_stream_is_closed(u->s)) return lq_push_fail(L, UV_ECANCELED);
  lua_pushboolean(L, 1);
  return 1;
}

static void writable_check(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)c;
  lq_stream *u = obj;
  const char *fname = op != 0 ? u->cls->writable_op : u->cls->writable;
  if (op != 0) check_usable(L, u, fname);
  check_writer(L, u, fname);
}

static int writable_finish(lua_State *L, void *obj, int op, qn_future *f) {
  (void)op, (void)f;
  return writable_results(L, obj);
}

static const lq_obj_kind writable_wait =
  LQ_OBJ_KIND("writable", writable_check, write_start, writable_finish, NULL);
LQ_OBJ_PERFORM_K(writable_k, writable_wait)

static int l_writable(lua_State *L) {
  const char *fname = class_of(L)->writable;
  lq_stream_live(L, 1, fname);
  lq_coro *c = lq_await_ctx(L, fname);
  lq_stream *u = lua_touserdata(L, 1);
  lua_settop(L, 1);
  return lq_obj_perform(L, c, &writable_wait, u, fname, u->cls->writable_kind.base.name,
                        writable_k);
}

static int l_writable_op(lua_State *L) {
  const lq_stream_class *cls = class_of(L);
  lq_stream_live(L, 1, cls->writable_op);
  return new_op(L, &cls->writable_kind, 0, 1);
}

static int l_write_op(lua_State *L) {
  const lq_stream_class *cls = class_of(L);
  lq_stream_live(L, 1, cls->write_op);
  luaL_checklstring(L, 2, NULL);
  new_op(L, &cls->write_kind, 0, 2);
  lua_pushvalue(L, 2);
  if (lua_type(L, -1) == LUA_TNUMBER) lua_tolstring(L, -1, NULL);
  lua_setiuservalue(L, -2, 2);
  return 1;
}

/* ---- shutdown ---- */

static int shutdown_results(lua_State *L, qn_future *f) {
  int r = qn_stream_shutdown_status(f);
  if (r != 0) return lq_push_fail(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

static void shutdown_check(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)c;
  lq_stream *u = obj;
  const char *fname = op != 0 ? u->cls->shutdown_op : u->cls->shutdown;
  if (op != 0) check_usable(L, u, fname);
  check_not_shut(L, u, fname);
}

static qn_future *shutdown_start(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)L, (void)op, (void)c;
  return qn_stream_shutdown_new(((lq_stream *)obj)->s);
}

static int shutdown_finish(lua_State *L, void *obj, int op, qn_future *f) {
  (void)obj, (void)op;
  return shutdown_results(L, f);
}

static const lq_obj_kind shutdown_wait =
  LQ_OBJ_KIND("shutdown", shutdown_check, shutdown_start, shutdown_finish, NULL);
LQ_OBJ_PERFORM_K(shutdown_k, shutdown_wait)

/* stream:shutdown(): waits until everything queued is written and the write
   side is shut (the peer reads EOF); true, or nil, msg, code. A pipe that
   is not a socket cannot be half-closed (ENOTSOCK): close it instead. */
static int l_shutdown(lua_State *L) {
  const lq_stream_class *cls = class_of(L);
  lq_stream_live(L, 1, cls->shutdown);
  lq_coro *c = lq_await_ctx(L, cls->shutdown);
  lua_settop(L, 1);
  return lq_obj_perform(L, c, &shutdown_wait, lua_touserdata(L, 1), cls->shutdown,
                        cls->shutdown_kind.base.name, shutdown_k);
}

static int l_shutdown_op(lua_State *L) {
  const lq_stream_class *cls = class_of(L);
  lq_stream_live(L, 1, cls->shutdown_op);
  return new_op(L, &cls->shutdown_kind, 0, 1);
}

/* ---- the rest ---- */

/* close(): idempotent, never waits; what write queued is still sent. */
static int l_close(lua_State *L) {
  to_stream(L, 1);
  lq_stream_close_at(L, class_of(L), 1);
  lua_pushboolean(L, 1);
  return 1;
}

/* Garbage collection releases (closes) the stream; after its runtime has
   ended the handle is closed already and only the memory goes. */
static int l_gc(lua_State *L) {
  lq_stream *u = luaL_testudata(L, 1, class_of(L)->tname);   /* __gc may be called by hand */
  if (u == NULL) return 0;
  if (u->s != NULL) qn_stream_release(u->s);
  u->s = NULL;
  return 0;
}

static int l_buffered(lua_State *L) {
  qn_stream *s = lq_stream_live(L, 1, class_of(L)->buffered);
  lua_pushinteger(L, (lua_Integer)qn_stream_buffered(s));
  return 1;
}

static int l_queued(lua_State *L) {
  qn_stream *s = lq_stream_live(L, 1, class_of(L)->queued);
  lua_pushinteger(L, (lua_Integer)qn_stream_write_queued(s));
  return 1;
}

/* "quench.tcp.stream (open)", "quench.pipe (stdout, closed)" */
static int l_tostring(lua_State *L) {
  lq_stream *u = to_stream(L, 1);
  const char *state = u->s != NULL && lq_alive(L, u->serial) && !qn_stream_is_closed(u->s)
                          ? "open" : "closed";
  if (u->what[0] != '\0') lua_pushfstring(L, "%s (%s, %s)", u->cls->tname, u->what, state);
  else lua_pushfstring(L, "%s (%s)", u->cls->tname, state);
  return 1;
}

/* ---- classes ---- */

#define CLASS(T, S) {                                                          \
  T, T ":read", T ":read_some", T ":lines", T ":read_op", T ":read_some_op",   \
  T ":write", T ":write_op", T ":shutdown", T ":shutdown_op",                  \
  T ":buffered", T ":queued",                                                  \
  T ":peek", T ":peek_op", T ":readable", T ":readable_op",                    \
  T ":writable", T ":writable_op", T ":try_read", T ":try_write",              \
  LQ_OBJ_KIND(S " read", read_check, read_start, read_finish, read_now),       \
  LQ_OBJ_KIND(S " write", write_check, write_start, write_finish, write_now),  \
  LQ_OBJ_KIND(S " shutdown", shutdown_check, shutdown_start, shutdown_finish, NULL), \
  LQ_OBJ_KIND(S " writable", writable_check, write_start, writable_finish, NULL) }

const lq_stream_class lq_tcp_stream_class = CLASS("quench.tcp.stream", "tcp");
const lq_stream_class lq_pipe_class = CLASS("quench.pipe", "pipe");
const lq_stream_class lq_tls_stream_class = CLASS("quench.tls.stream", "tls");
const lq_stream_class lq_unix_stream_class = CLASS("quench.unix.stream", "unix");

static const luaL_Reg methods[] = {
  {"read", l_read}, {"read_some", l_read_some}, {"lines", l_lines},
  {"write", l_write}, {"shutdown", l_shutdown}, {"close", l_close},
  {"read_op", l_read_op}, {"read_some_op", l_read_some_op},
  {"write_op", l_write_op}, {"shutdown_op", l_shutdown_op},
  {"buffered", l_buffered}, {"queued", l_queued},
  {"peek", l_peek}, {"peek_op", l_peek_op}, {"readable", l_readable},
  {"readable_op", l_readable_op}, {"writable", l_writable}, {"writable_op", l_writable_op},
  {"try_read", l_try_read}, {"try_write", l_try_write}, {NULL, NULL}
};

/* Push the module and the class: the upvalues of every function here. */
static void push_upvalues(lua_State *L, int mod, const lq_stream_class *cls) {
  lua_pushvalue(L, mod);
  lua_pushlightuserdata(L, (void *)cls);
}

void lq_stream_register(lua_State *L, int mod, const lq_stream_class *cls, const luaL_Reg *extra) {
  luaL_newmetatable(L, cls->tname);
  lua_newtable(L);
  push_upvalues(L, mod, cls);
  luaL_setfuncs(L, methods, 2);
  if (extra != NULL) {
    push_upvalues(L, mod, cls);
    luaL_setfuncs(L, extra, 2);
  }
  lua_setfield(L, -2, "__index");
  const luaL_Reg meta[] = {
    {"__close", l_close}, {"__gc", l_gc}, {"__tostring", l_tostring}, {NULL, NULL}
  };
  push_upvalues(L, mod, cls);
  luaL_setfuncs(L, meta, 2);
  lua_pop(L, 1);
}
