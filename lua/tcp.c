/*
** TCP ("quench.tcp"): quench.tcp.listen and quench.tcp.connect, servers
** ("quench.tcp.server") and streams ("quench.tcp.stream") over core/tcp.c,
** with Lua's io conventions: read(n | "l" | "L" | "a"), write(...) returns
** the stream, an I/O failure returns nil, "ENAME: message", "ENAME", and
** misuse raises an error naming the function.
**
** Ownership: a userdata holds a pointer to the core object and releases it
** in __gc (which closes it: resource release, like luv; it never cancels a
** task: a task waiting on a stream keeps its userdata on its stack). The
** userdata is built closed (NULL) before the core object exists, so no
** error can leak one. An object belongs to the runtime that made it
** (`serial`); once that runtime has ended (its shutdown closed the handle)
** every method but close raises.
**
** Cancel safety (docs/io.md has the table):
** - read, read_some, lines: the bytes are consumed only when the read
**   returns them; a dropped read (select loser, timeout, abort) loses
**   nothing, they stay buffered for the next read.
** - accept: a connection is taken from the server's queue only when accept
**   returns it; a dropped accept leaves it queued.
** - write: all or nothing. A dropped write (it can only wait while the
**   write queue is above its limit) wrote nothing; a returned write is
**   queued whole and goes out even if the task is dropped right after.
** - shutdown: a dropped shutdown may still happen (the request is libuv's).
** - connect: a dropped connect closes its half-made socket; nothing leaks.
*/
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include "binding.h"

#define LQ_STREAM "quench.tcp.stream"
#define LQ_SERVER "quench.tcp.server"

typedef struct lq_stream {
  qn_tcp *s;            /* NULL until made, and after __gc */
  uint64_t serial;      /* of its runtime */
} lq_stream;

typedef struct lq_server {
  qn_tcp_server *srv;
  uint64_t serial;
} lq_server;

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

static void check_runtime(lua_State *L, uint64_t serial, const char *fname, const char *what) {
  if (!alive(L, serial))
    luaL_error(L, "%s: the %s's runtime has ended (a %s belongs to the quench.run that made it)",
               fname, what, what);
}

/* ---- addresses and options ---- */

static int push_addr(lua_State *L, int r, const struct sockaddr_storage *ss) {
  if (r != 0) return push_fail(L, r);
  char host[INET6_ADDRSTRLEN + 1] = "";
  int port;
  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
    uv_ip6_name(a, host, sizeof host);
    port = ntohs(a->sin6_port);
  } else {
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    uv_ip4_name(a, host, sizeof host);
    port = ntohs(a->sin_port);
  }
  lua_pushstring(L, host);
  lua_pushinteger(L, port);
  return 2;
}

static int check_port(lua_State *L, int idx) {
  lua_Integer port = luaL_checkinteger(L, idx);
  luaL_argcheck(L, port >= 0 && port <= 65535, idx, "port must be in 0..65535");
  return (int)port;
}

static size_t opt_size(lua_State *L, int opts, const char *name) {
  lua_Integer v = 0;
  if (lua_getfield(L, opts, name) != LUA_TNIL) {
    int ok;
    v = lua_tointegerx(L, -1, &ok);
    if (!ok || v < 1) luaL_error(L, "opts.%s must be a positive integer", name);
  }
  lua_pop(L, 1);
  return (size_t)v;
}

static int opt_bool(lua_State *L, int opts, const char *name, int dflt) {
  int v = dflt;
  if (lua_getfield(L, opts, name) != LUA_TNIL) {
    if (!lua_isboolean(L, -1)) luaL_error(L, "opts.%s must be a boolean", name);
    v = lua_toboolean(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

static const char *const stream_keys[] = {
  "nodelay", "keepalive", "read_limit", "write_limit", NULL
};
static const char *const listen_keys[] = {
  "nodelay", "keepalive", "read_limit", "write_limit",
  "backlog", "reuseaddr", "reuseport", "ipv6only", NULL
};

/* Raise (naming fname) on a key that is not an option: a typo is not ignored. */
static void check_keys(lua_State *L, int opts, const char *const *keys, const char *fname) {
  lua_pushnil(L);
  while (lua_next(L, opts)) {
    lua_pop(L, 1);
    int known = 0;
    if (lua_type(L, -1) == LUA_TSTRING)
      for (int i = 0; keys[i] && !known; i++) known = strcmp(keys[i], lua_tostring(L, -1)) == 0;
    if (!known) {
      lua_pushfstring(L, "%s: unknown option '%s'", fname, luaL_tolstring(L, -1, NULL));
      lua_error(L);
    }
  }
}

/* Stream options from the table at idx (nil: defaults). */
static qn_tcp_opts check_stream_opts(lua_State *L, int idx, const char *const *keys,
                                     const char *fname) {
  qn_tcp_opts o;
  memset(&o, 0, sizeof o);
  if (lua_isnoneornil(L, idx)) return o;
  luaL_checktype(L, idx, LUA_TTABLE);
  check_keys(L, idx, keys, fname);
  o.nodelay = opt_bool(L, idx, "nodelay", 0);
  int t = lua_getfield(L, idx, "keepalive");
  if (t == LUA_TNUMBER) {
    lua_Number d = lua_tonumber(L, -1);
    if (!(d >= 1 && d <= 86400 * 30)) luaL_error(L, "opts.keepalive: delay must be 1..2592000 s");
    o.keepalive = 1;
    o.keepalive_delay = (unsigned)d;
  } else if (t == LUA_TBOOLEAN) {
    o.keepalive = lua_toboolean(L, -1);
  } else if (t != LUA_TNIL) {
    luaL_error(L, "opts.keepalive must be a boolean or a delay in seconds");
  }
  lua_pop(L, 1);
  o.read_limit = opt_size(L, idx, "read_limit");
  o.write_limit = opt_size(L, idx, "write_limit");
  return o;
}

/* ---- streams ---- */

/* A closed placeholder, filled once the core object exists. */
static lq_stream *new_stream(lua_State *L) {
  lq_stream *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->s = NULL;
  u->serial = 0;
  luaL_setmetatable(L, LQ_STREAM);
  return u;
}

static lq_stream *to_stream(lua_State *L, int idx) {
  return (lq_stream *)luaL_checkudata(L, idx, LQ_STREAM);
}

/* The core stream of a usable stream at idx, or raise naming fname. */
static qn_tcp *live_stream(lua_State *L, int idx, const char *fname) {
  lq_stream *u = to_stream(L, idx);
  if (u->s == NULL) luaL_error(L, "%s: attempt to use a closed stream", fname);
  check_runtime(L, u->serial, fname, "stream");
  if (qn_tcp_is_closed(u->s)) luaL_error(L, "%s: attempt to use a closed stream", fname);
  return u->s;
}

static void check_no_reader(lua_State *L, qn_tcp *s, const char *fname) {
  if (qn_tcp_readers(s) > 0)
    luaL_error(L, "%s: another read is waiting on this stream (one reader at a time)", fname);
}

static void check_writable(lua_State *L, qn_tcp *s, const char *fname) {
  if (qn_tcp_is_shut(s))
    luaL_error(L, "%s: the stream's write side was shut down (no writes after shutdown)", fname);
  if (qn_tcp_writers(s) > 0)
    luaL_error(L, "%s: another write is waiting on this stream (one writer at a time)", fname);
}

/* ---- reading ---- */

/* A read format (io conventions): a count, "l", "L" or "a" (a leading "*"
   is allowed); none: "l". */
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
static int try_read(lua_State *L, qn_tcp *s, lua_KContext ctx) {
  const char *p;
  size_t len, used;
  int r = qn_tcp_peek(s, ctx_mode(ctx), ctx_count(ctx), &p, &len, &used);
  if (r == UV_EAGAIN) return -1;
  if (r == 0) {
    lua_pushlstring(L, p, len);
    qn_tcp_consume(s, used);
    return 1;
  }
  if (ctx & CTX_RAISE) {
    if (r == UV_EOF) {
      lua_pushnil(L);
      return 1;
    }
    return luaL_error(L, "quench.tcp.stream:lines: %s: %s", uv_err_name(r), uv_strerror(r));
  }
  if (r == UV_EOF) {
    lua_pushnil(L);
    return 1;
  }
  return push_fail(L, r);
}

static int read_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  qn_future *f = lq_take_op(L);
  qn_drop(f);
  int n = try_read(L, to_stream(L, 1)->s, ctx);
  return n >= 0 ? n : push_fail(L, UV_EAGAIN);   /* unreachable: ready means readable */
}

/* Read from the stream at 1 (checked), waiting if need be. */
static int do_read(lua_State *L, qn_tcp *s, lua_KContext ctx, const char *fname) {
  lq_coro *c = lq_await_ctx(L, fname);
  check_no_reader(L, s, fname);
  lua_settop(L, 1);
  lq_check_cancel(L, c);
  int n = try_read(L, s, ctx);
  if (n >= 0) return n;
  qn_future *f = qn_tcp_read_new(s, ctx_mode(ctx), ctx_count(ctx));
  if (f == NULL) return luaL_error(L, "%s: out of memory", fname);
  c->what = "tcp read";
  return lq_await(L, c, f, read_k, ctx);
}

static int l_read(lua_State *L) {
  qn_tcp *s = live_stream(L, 1, "quench.tcp.stream:read");
  return do_read(L, s, check_format(L, 2), "quench.tcp.stream:read");
}

static int l_read_some(lua_State *L) {
  qn_tcp *s = live_stream(L, 1, "quench.tcp.stream:read_some");
  return do_read(L, s, check_max(L, 2), "quench.tcp.stream:read_some");
}

/* The iterator of stream:lines(fmt): upvalues module, stream, context. */
static int lines_iter(lua_State *L) {
  lua_settop(L, 0);
  lua_pushvalue(L, lua_upvalueindex(2));
  qn_tcp *s = live_stream(L, 1, "quench.tcp.stream:lines");
  lua_KContext ctx = (lua_KContext)lua_tointeger(L, lua_upvalueindex(3));
  return do_read(L, s, ctx, "quench.tcp.stream:lines");
}

static int l_lines(lua_State *L) {
  live_stream(L, 1, "quench.tcp.stream:lines");
  lua_KContext ctx = check_format(L, 2) | CTX_RAISE;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, 1);
  lua_pushinteger(L, (lua_Integer)ctx);
  lua_pushcclosure(L, lines_iter, 3);
  return 1;
}

/* read_op and read_some_op: user value 1 is the stream, ns the context. */
static lq_stream *op_stream(lua_State *L, int op) {
  lua_getiuservalue(L, op, 1);
  lq_stream *u = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return u;
}

static void op_check_stream(lua_State *L, lq_stream *u, lq_coro *c, const char *fname) {
  if (u->s == NULL) luaL_error(L, "%s: attempt to use a closed stream", fname);
  if (u->serial != c->rt->serial) check_runtime(L, u->serial, fname, "stream");
  if (qn_tcp_is_closed(u->s)) luaL_error(L, "%s: attempt to use a closed stream", fname);
}

static void read_check(lua_State *L, int op, lq_coro *c) {
  lq_stream *u = op_stream(L, op);
  op_check_stream(L, u, c, "quench.tcp.stream:read_op");
  check_no_reader(L, u->s, "quench.tcp.stream:read_op");
}

static qn_future *read_start(lua_State *L, int op, lq_coro *c) {
  (void)c;
  lq_op *o = lua_touserdata(L, op);
  lua_KContext ctx = (lua_KContext)o->ns;
  return qn_tcp_read_new(op_stream(L, op)->s, ctx_mode(ctx), ctx_count(ctx));
}

static int read_finish(lua_State *L, int op, qn_future *f) {
  (void)f;
  lq_op *o = lua_touserdata(L, op);
  int n = try_read(L, op_stream(L, op)->s, (lua_KContext)o->ns);
  return n >= 0 ? n : push_fail(L, UV_EAGAIN);
}

static const lq_op_kind read_kind = { "tcp read", read_check, read_start, read_finish };

static int new_read_op(lua_State *L, lua_KContext ctx) {
  lq_op_new(L, &read_kind, 1)->ns = (uint64_t)ctx;
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

static int l_read_op(lua_State *L) {
  live_stream(L, 1, "quench.tcp.stream:read_op");
  return new_read_op(L, check_format(L, 2));
}

static int l_read_some_op(lua_State *L) {
  live_stream(L, 1, "quench.tcp.stream:read_some_op");
  return new_read_op(L, check_max(L, 2));
}

/* ---- writing ---- */

static int write_k(lua_State *L, int status, lua_KContext ctx);

/* Write the string at 2 to the stream at 1; wait while the queue is full. */
static int write_step(lua_State *L, lq_coro *c) {
  lq_stream *u = lua_touserdata(L, 1);
  size_t len;
  const char *data = lua_tolstring(L, 2, &len);
  int r = qn_tcp_write(u->s, data, len);
  if (r == 0) {
    lua_settop(L, 1);
    return 1;
  }
  if (r != UV_EAGAIN) return push_fail(L, r);
  qn_future *f = qn_tcp_writable_new(u->s);
  if (f == NULL) return luaL_error(L, "quench.tcp.stream:write: out of memory");
  c->what = "tcp write";
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
  const char *fname = "quench.tcp.stream:write";
  qn_tcp *s = live_stream(L, 1, fname);
  int top = lua_gettop(L);
  for (int i = 2; i <= top; i++) luaL_checklstring(L, i, NULL);
  lq_coro *c = lq_await_ctx(L, fname);
  check_writable(L, s, fname);
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
  lq_stream *u = op_stream(L, op);
  op_check_stream(L, u, c, "quench.tcp.stream:write_op");
  check_writable(L, u->s, "quench.tcp.stream:write_op");
}

static qn_future *write_start(lua_State *L, int op, lq_coro *c) {
  (void)c;
  return qn_tcp_writable_new(op_stream(L, op)->s);
}

static int write_finish(lua_State *L, int op, qn_future *f) {
  (void)f;
  lua_getiuservalue(L, op, 1);
  lq_stream *u = lua_touserdata(L, -1);
  size_t len;
  lua_getiuservalue(L, op, 2);
  const char *data = lua_tolstring(L, -1, &len);
  int r = qn_tcp_write(u->s, data, len);
  lua_pop(L, 1);
  if (r == 0) return 1;                       /* the stream */
  lua_pop(L, 1);
  return push_fail(L, r);
}

static const lq_op_kind write_kind = { "tcp write", write_check, write_start, write_finish };

static int l_write_op(lua_State *L) {
  live_stream(L, 1, "quench.tcp.stream:write_op");
  luaL_checklstring(L, 2, NULL);
  lq_op_new(L, &write_kind, 2);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  lua_pushvalue(L, 2);
  if (lua_type(L, -1) == LUA_TNUMBER) lua_tolstring(L, -1, NULL);
  lua_setiuservalue(L, -2, 2);
  return 1;
}

/* ---- shutdown ---- */

static int shutdown_results(lua_State *L, qn_future *f) {
  int r = qn_tcp_shutdown_status(f);
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

/* stream:shutdown(): waits until everything queued is written and the
   write side is shut (the peer reads EOF); true, or nil, msg, code. */
static int l_shutdown(lua_State *L) {
  const char *fname = "quench.tcp.stream:shutdown";
  qn_tcp *s = live_stream(L, 1, fname);
  lq_coro *c = lq_await_ctx(L, fname);
  lua_settop(L, 1);
  if (qn_tcp_is_shut(s))
    return luaL_error(L, "%s: the stream's write side was already shut down", fname);
  lq_check_cancel(L, c);
  qn_future *f = qn_tcp_shutdown_new(s);
  if (f == NULL) return luaL_error(L, "%s: out of memory", fname);
  c->what = "tcp shutdown";
  return lq_await(L, c, f, shutdown_k, 0);
}

static void shutdown_check(lua_State *L, int op, lq_coro *c) {
  lq_stream *u = op_stream(L, op);
  op_check_stream(L, u, c, "quench.tcp.stream:shutdown_op");
  if (qn_tcp_is_shut(u->s))
    luaL_error(L, "quench.tcp.stream:shutdown_op: the stream's write side was already shut down");
}

static qn_future *shutdown_start(lua_State *L, int op, lq_coro *c) {
  (void)c;
  return qn_tcp_shutdown_new(op_stream(L, op)->s);
}

static int shutdown_finish(lua_State *L, int op, qn_future *f) {
  (void)op;
  return shutdown_results(L, f);
}

static const lq_op_kind shutdown_kind = {
  "tcp shutdown", shutdown_check, shutdown_start, shutdown_finish
};

static int l_shutdown_op(lua_State *L) {
  live_stream(L, 1, "quench.tcp.stream:shutdown_op");
  lq_op_new(L, &shutdown_kind, 1);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

/* ---- the rest of a stream ---- */

/* close(): idempotent, never waits; what write queued is still sent. */
static int l_close(lua_State *L) {
  lq_stream *u = to_stream(L, 1);
  if (u->s != NULL && alive(L, u->serial)) qn_tcp_close(u->s);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_close_reset(lua_State *L) {
  qn_tcp *s = live_stream(L, 1, "quench.tcp.stream:close_reset");
  qn_tcp_reset(s);
  lua_pushboolean(L, 1);
  return 1;
}

/* Garbage collection releases (closes) the stream; after its runtime has
   ended the handle is closed already and only the memory goes. */
static int l_gc(lua_State *L) {
  lq_stream *u = luaL_testudata(L, 1, LQ_STREAM);   /* __gc may be called by hand */
  if (u == NULL) return 0;
  if (u->s != NULL) qn_tcp_release(u->s);
  u->s = NULL;
  return 0;
}

static int l_getsockname(lua_State *L) {
  struct sockaddr_storage ss;
  int r = qn_tcp_sockname(live_stream(L, 1, "quench.tcp.stream:getsockname"), &ss);
  return push_addr(L, r, &ss);
}

static int l_getpeername(lua_State *L) {
  struct sockaddr_storage ss;
  int r = qn_tcp_peername(live_stream(L, 1, "quench.tcp.stream:getpeername"), &ss);
  return push_addr(L, r, &ss);
}

static int ok_or_fail(lua_State *L, int r) {
  if (r != 0) return push_fail(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

/* nodelay([on]): on defaults to true. */
static int l_nodelay(lua_State *L) {
  qn_tcp *s = live_stream(L, 1, "quench.tcp.stream:nodelay");
  return ok_or_fail(L, qn_tcp_set_nodelay(s, lua_isnone(L, 2) || lua_toboolean(L, 2)));
}

/* keepalive([on [, delay]]): on defaults to true, delay (s) to 60. */
static int l_keepalive(lua_State *L) {
  qn_tcp *s = live_stream(L, 1, "quench.tcp.stream:keepalive");
  int on = lua_isnone(L, 2) || lua_toboolean(L, 2);
  lua_Integer delay = luaL_optinteger(L, 3, 60);
  luaL_argcheck(L, delay >= 1 && delay <= 86400 * 30, 3, "delay must be 1..2592000 s");
  return ok_or_fail(L, qn_tcp_set_keepalive(s, on, (unsigned)delay));
}

static int l_buffered(lua_State *L) {
  qn_tcp *s = live_stream(L, 1, "quench.tcp.stream:buffered");
  lua_pushinteger(L, (lua_Integer)qn_tcp_buffered(s));
  return 1;
}

static int l_queued(lua_State *L) {
  qn_tcp *s = live_stream(L, 1, "quench.tcp.stream:queued");
  lua_pushinteger(L, (lua_Integer)qn_tcp_write_queued(s));
  return 1;
}

static int l_stream_tostring(lua_State *L) {
  lq_stream *u = to_stream(L, 1);
  int open = u->s != NULL && alive(L, u->serial) && !qn_tcp_is_closed(u->s);
  lua_pushfstring(L, "quench.tcp.stream (%s)", open ? "open" : "closed");
  return 1;
}

/* ---- connecting ---- */

/* Push the stream a finished connect future made, or nil, msg, code. */
static int connect_results(lua_State *L, qn_future *f, uint64_t serial) {
  lq_stream *u = new_stream(L);
  qn_tcp *s;
  int r = qn_tcp_connect_take(f, &s);
  if (r != 0) {
    lua_pop(L, 1);
    return push_fail(L, r);
  }
  u->s = s;
  u->serial = serial;
  return 1;
}

static int connect_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status; (void)ctx;
  lq_runtime *rt = lq_module_of(L)->rt;
  luaL_checkstack(L, 4, NULL);
  qn_future *f = lq_take_op(L);
  int n = connect_results(L, f, rt->serial);
  qn_drop(f);
  return n;
}

/* quench.tcp.connect(host, port [, opts]): a stream, or nil, msg, code. */
static int l_connect(lua_State *L) {
  const char *fname = "quench.tcp.connect";
  const char *host = luaL_checkstring(L, 1);
  int port = check_port(L, 2);
  qn_tcp_opts o = check_stream_opts(L, 3, stream_keys, fname);
  lq_coro *c = lq_await_ctx(L, fname);
  lua_settop(L, 1);
  lq_check_cancel(L, c);
  qn_future *f = qn_tcp_connect_new(c->rt->core, host, port, &o);
  if (f == NULL) return luaL_error(L, "%s: out of memory", fname);
  c->what = "tcp connect";
  return lq_await(L, c, f, connect_k, 0);
}

/* connect_op: user value 1 the host, 2 a userdata holding the options. */
static qn_future *connect_start(lua_State *L, int op, lq_coro *c) {
  lq_op *o = lua_touserdata(L, op);
  lua_getiuservalue(L, op, 1);
  lua_getiuservalue(L, op, 2);
  qn_future *f = qn_tcp_connect_new(c->rt->core, lua_tostring(L, -2), (int)o->ns,
                                    lua_touserdata(L, -1));
  lua_pop(L, 2);
  return f;
}

static int connect_finish(lua_State *L, int op, qn_future *f) {
  (void)op;
  return connect_results(L, f, lq_module_of(L)->rt->serial);
}

static const lq_op_kind connect_kind = { "tcp connect", NULL, connect_start, connect_finish };

static int l_connect_op(lua_State *L) {
  luaL_checkstring(L, 1);
  int port = check_port(L, 2);
  qn_tcp_opts o = check_stream_opts(L, 3, stream_keys, "quench.tcp.connect_op");
  lq_op_new(L, &connect_kind, 2)->ns = (uint64_t)port;
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  qn_tcp_opts *po = lua_newuserdatauv(L, sizeof *po, 0);
  *po = o;
  lua_setiuservalue(L, -2, 2);
  return 1;
}

/* ---- servers ---- */

static lq_server *to_server(lua_State *L, int idx) {
  return (lq_server *)luaL_checkudata(L, idx, LQ_SERVER);
}

static qn_tcp_server *live_server(lua_State *L, int idx, const char *fname) {
  lq_server *u = to_server(L, idx);
  if (u->srv == NULL) luaL_error(L, "%s: attempt to use a closed server", fname);
  check_runtime(L, u->serial, fname, "server");
  if (qn_tcp_server_is_closed(u->srv)) luaL_error(L, "%s: attempt to use a closed server", fname);
  return u->srv;
}

/* quench.tcp.listen(host, port [, opts]): a server, or nil, msg, code.
   host nil or "*": every IPv4 address. */
static int l_listen(lua_State *L) {
  const char *fname = "quench.tcp.listen";
  lq_runtime *rt = lq_runtime_of(L, fname);
  const char *host = luaL_optstring(L, 1, "*");
  if (strcmp(host, "*") == 0) host = "0.0.0.0";
  int port = check_port(L, 2);
  qn_tcp_opts o = check_stream_opts(L, 3, listen_keys, fname);
  int backlog = 0;
  unsigned flags = QN_TCP_REUSEADDR;
  if (lua_istable(L, 3)) {
    size_t b = opt_size(L, 3, "backlog");
    luaL_argcheck(L, b <= 65535, 3, "opts.backlog must be at most 65535");
    backlog = (int)b;
    if (!opt_bool(L, 3, "reuseaddr", 1)) flags &= ~(unsigned)QN_TCP_REUSEADDR;
    if (opt_bool(L, 3, "reuseport", 0)) flags |= QN_TCP_REUSEPORT;
    if (opt_bool(L, 3, "ipv6only", 0)) flags |= QN_TCP_IPV6ONLY;
  }
  lq_server *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->srv = NULL;
  u->serial = rt->serial;
  luaL_setmetatable(L, LQ_SERVER);
  int r = qn_tcp_listen(rt->core, host, port, backlog, flags, &o, &u->srv);
  if (r != 0) return push_fail(L, r);
  return 1;
}

/* Push an accepted stream, or nil, msg, code; -1 (nothing pushed) if none
   is queued. */
static int try_accept(lua_State *L, qn_tcp_server *srv, uint64_t serial) {
  lq_stream *u = new_stream(L);
  qn_tcp *s;
  int r = qn_tcp_try_accept(srv, &s);
  if (r == 0) {
    u->s = s;
    u->serial = serial;
    return 1;
  }
  lua_pop(L, 1);
  if (r == UV_EAGAIN) return -1;
  return push_fail(L, r);
}

static int accept_k(lua_State *L, int status, lua_KContext ctx);

static int accept_step(lua_State *L, lq_coro *c) {
  lq_server *u = lua_touserdata(L, 1);
  int n = try_accept(L, u->srv, u->serial);
  if (n >= 0) return n;
  qn_future *f = qn_tcp_accept_new(u->srv);
  if (f == NULL) return luaL_error(L, "quench.tcp.server:accept: out of memory");
  c->what = "tcp accept";
  return lq_await(L, c, f, accept_k, 0);
}

static int accept_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status; (void)ctx;
  qn_future *f = lq_take_op(L);
  qn_drop(f);
  return accept_step(L, lq_module_of(L)->rt->running);
}

/* server:accept(): the next connection (a stream), or nil, msg, code. */
static int l_accept(lua_State *L) {
  const char *fname = "quench.tcp.server:accept";
  live_server(L, 1, fname);
  lq_coro *c = lq_await_ctx(L, fname);
  lua_settop(L, 1);
  lq_check_cancel(L, c);
  return accept_step(L, c);
}

static lq_server *op_server(lua_State *L, int op) {
  lua_getiuservalue(L, op, 1);
  lq_server *u = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return u;
}

static void accept_check(lua_State *L, int op, lq_coro *c) {
  const char *fname = "quench.tcp.server:accept_op";
  lq_server *u = op_server(L, op);
  if (u->srv == NULL) luaL_error(L, "%s: attempt to use a closed server", fname);
  if (u->serial != c->rt->serial) check_runtime(L, u->serial, fname, "server");
  if (qn_tcp_server_is_closed(u->srv)) luaL_error(L, "%s: attempt to use a closed server", fname);
}

static qn_future *accept_start(lua_State *L, int op, lq_coro *c) {
  (void)c;
  return qn_tcp_accept_new(op_server(L, op)->srv);
}

static int accept_finish(lua_State *L, int op, qn_future *f) {
  (void)f;
  lq_server *u = op_server(L, op);
  int n = try_accept(L, u->srv, u->serial);
  return n >= 0 ? n : push_fail(L, UV_EAGAIN);   /* unreachable: ready means queued */
}

static const lq_op_kind accept_kind = { "tcp accept", accept_check, accept_start, accept_finish };

static int l_accept_op(lua_State *L) {
  live_server(L, 1, "quench.tcp.server:accept_op");
  lq_op_new(L, &accept_kind, 1);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

static int l_server_getsockname(lua_State *L) {
  struct sockaddr_storage ss;
  int r = qn_tcp_server_sockname(live_server(L, 1, "quench.tcp.server:getsockname"), &ss);
  return push_addr(L, r, &ss);
}

static int l_server_close(lua_State *L) {
  lq_server *u = to_server(L, 1);
  if (u->srv != NULL && alive(L, u->serial)) qn_tcp_server_close(u->srv);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_server_gc(lua_State *L) {
  lq_server *u = luaL_testudata(L, 1, LQ_SERVER);   /* __gc may be called by hand */
  if (u == NULL) return 0;
  if (u->srv != NULL) qn_tcp_server_release(u->srv);
  u->srv = NULL;
  return 0;
}

static int l_server_tostring(lua_State *L) {
  lq_server *u = to_server(L, 1);
  int open = u->srv != NULL && alive(L, u->serial) && !qn_tcp_server_is_closed(u->srv);
  lua_pushfstring(L, "quench.tcp.server (%s)", open ? "listening" : "closed");
  return 1;
}

/* ---- registration ---- */

static const luaL_Reg stream_methods[] = {
  {"read", l_read}, {"read_some", l_read_some}, {"lines", l_lines},
  {"write", l_write}, {"shutdown", l_shutdown}, {"close", l_close},
  {"close_reset", l_close_reset}, {"read_op", l_read_op}, {"read_some_op", l_read_some_op},
  {"write_op", l_write_op}, {"shutdown_op", l_shutdown_op},
  {"getsockname", l_getsockname}, {"getpeername", l_getpeername},
  {"nodelay", l_nodelay}, {"keepalive", l_keepalive},
  {"buffered", l_buffered}, {"queued", l_queued}, {NULL, NULL}
};

static const luaL_Reg server_methods[] = {
  {"accept", l_accept}, {"accept_op", l_accept_op}, {"getsockname", l_server_getsockname},
  {"close", l_server_close}, {NULL, NULL}
};

static const luaL_Reg functions[] = {
  {"listen", l_listen}, {"connect", l_connect}, {"connect_op", l_connect_op}, {NULL, NULL}
};

static void new_class(lua_State *L, int mod, const char *name, const luaL_Reg *methods,
                      lua_CFunction close, lua_CFunction gc, lua_CFunction tostring) {
  luaL_newmetatable(L, name);
  lua_newtable(L);
  lua_pushvalue(L, mod);
  luaL_setfuncs(L, methods, 1);
  lua_setfield(L, -2, "__index");
  lua_pushvalue(L, mod);
  lua_pushcclosure(L, close, 1);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, gc);
  lua_setfield(L, -2, "__gc");
  lua_pushvalue(L, mod);
  lua_pushcclosure(L, tostring, 1);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
}

/* quench.tcp = {listen, connect, connect_op}; the module table is on top. */
void lq_tcp_register(lua_State *L, int mod) {
  new_class(L, mod, LQ_STREAM, stream_methods, l_close, l_gc, l_stream_tostring);
  new_class(L, mod, LQ_SERVER, server_methods, l_server_close, l_server_gc, l_server_tostring);
  lua_newtable(L);
  lua_pushvalue(L, mod);
  luaL_setfuncs(L, functions, 1);
  lua_setfield(L, -2, "tcp");
}
