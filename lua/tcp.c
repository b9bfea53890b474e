/*
** TCP ("quench.tcp"): quench.tcp.listen and quench.tcp.connect, servers
** ("quench.tcp.server") and streams ("quench.tcp.stream") over core/tcp.c.
** A stream's read, write, shutdown, close and their ops are lua/stream.c's;
** here are what only a TCP stream has (getsockname, getpeername, nodelay,
** keepalive, close_reset). Lua's io conventions: an I/O failure returns
** nil, "ENAME: message", "ENAME", and misuse raises an error naming the
** function.
**
** Servers: the methods here serve Unix servers too (lua/unix.c), through
** a class (lq_server_class) as streams have.
**
** Ownership: as streams (lua/stream.c). A server's userdata holds a pointer
** to the core server and releases it in __gc; it is built closed (NULL)
** before the core object exists, so no error can leak one. An object
** belongs to the runtime that made it (`serial`); once that runtime has
** ended (its shutdown closed the handle) every method but close raises.
**
** Cancel safety (docs/io.md has the table; streams: lua/stream.c):
** - accept: a connection is taken from the server's queue only when accept
**   returns it; a dropped accept leaves it queued.
** - connect: a dropped connect closes its half-made socket; nothing leaks.
*/
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include "stream.h"

/* ---- addresses and options ---- */

static int push_addr(lua_State *L, int r, const struct sockaddr_storage *ss) {
  if (r != 0) return lq_push_fail(L, r);
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

static const char *const connect_keys[] = {
  "nodelay", "keepalive", "read_limit", "write_limit", "linger", "local_host", "local_port", NULL
};
static const char *const listen_keys[] = {
  "nodelay", "keepalive", "read_limit", "write_limit", "linger",
  "backlog", "reuseaddr", "reuseport", "ipv6only", NULL
};

/* A linger in seconds at idx as ms (0..1 day, rounded up to 1 ms): 0 if it
   is not one. */
static int linger_ms(lua_State *L, int idx, uint64_t *ms) {
  if (lua_type(L, idx) != LUA_TNUMBER) return 0;
  lua_Number secs = lua_tonumber(L, idx);
  if (!(secs >= 0 && secs <= 86400)) return 0;     /* NaN fails too */
  *ms = (uint64_t)(secs * 1000);
  if (secs > 0 && *ms == 0) *ms = 1;
  return 1;
}

/* Raise (naming fname) on a key that is not an option: a typo is not ignored. */
static void check_keys(lua_State *L, int opts, const char *const *keys, const char *fname) {
  lua_pushnil(L);
  while (lua_next(L, opts)) {
    lua_pop(L, 1);
    int known = 0;
    if (lua_type(L, -1) == LUA_TSTRING)          /* by length too: "nodelay\0x" is no key */
      for (int i = 0; keys[i] && !known; i++)
        known = strcmp(keys[i], lua_tostring(L, -1)) == 0 && strlen(keys[i]) == lua_rawlen(L, -1);
    if (!known) {
      size_t n;
      const char *k = luaL_tolstring(L, -1, &n);
      lua_pushfstring(L, "%s: unknown option '%s'%s", fname, k,
                      strlen(k) != n ? " (with a zero byte after that)" : "");
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
  if (lua_getfield(L, idx, "linger") != LUA_TNIL) {
    if (!linger_ms(L, -1, &o.linger_ms))
      luaL_error(L, "%s: opts.linger must be a number of seconds in 0..86400", fname);
    o.has_linger = 1;
  }
  lua_pop(L, 1);
  /* connect's local address: numeric (nothing is resolved), port 0: any */
  int th = lua_getfield(L, idx, "local_host"), tp = lua_getfield(L, idx, "local_port");
  if (th != LUA_TNIL || tp != LUA_TNIL) {
    const char *h = th == LUA_TNIL ? "0.0.0.0" : lua_tostring(L, -2);
    if (th != LUA_TNIL && th != LUA_TSTRING)
      luaL_error(L, "%s: opts.local_host must be a numeric IP address string", fname);
    lua_Integer lp = 0;
    if (tp != LUA_TNIL) {
      int isint;
      lp = lua_tointegerx(L, -1, &isint);
      if (!isint || lp < 0 || lp > 65535)
        luaL_error(L, "%s: opts.local_port must be an integer in 0..65535", fname);
    }
    if (uv_ip4_addr(h, (int)lp, (struct sockaddr_in *)&o.local) != 0 &&
        uv_ip6_addr(h, (int)lp, (struct sockaddr_in6 *)&o.local) != 0)
      luaL_error(L, "%s: opts.local_host must be a numeric IP address, got '%s'", fname, h);
    o.has_local = 1;
  }
  lua_pop(L, 2);
  return o;
}

qn_tcp_opts lq_tcp_check_opts(lua_State *L, int idx, const char *const *keys, const char *fname) {
  return check_stream_opts(L, idx, keys, fname);
}

size_t lq_opt_size(lua_State *L, int opts, const char *name) { return opt_size(L, opts, name); }

/* ---- what only a TCP stream has ---- */

static int l_close_reset(lua_State *L) {
  qn_stream *s = lq_stream_live(L, 1, "quench.tcp.stream:close_reset");
  qn_tcp_reset(s);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_getsockname(lua_State *L) {
  struct sockaddr_storage ss;
  int r = qn_tcp_sockname(lq_stream_live(L, 1, "quench.tcp.stream:getsockname"), &ss);
  return push_addr(L, r, &ss);
}

static int l_getpeername(lua_State *L) {
  struct sockaddr_storage ss;
  int r = qn_tcp_peername(lq_stream_live(L, 1, "quench.tcp.stream:getpeername"), &ss);
  return push_addr(L, r, &ss);
}

static int ok_or_fail(lua_State *L, int r) {
  if (r != 0) return lq_push_fail(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

/* nodelay([on]): on defaults to true. */
static int l_nodelay(lua_State *L) {
  qn_stream *s = lq_stream_live(L, 1, "quench.tcp.stream:nodelay");
  return ok_or_fail(L, qn_tcp_set_nodelay(s, lua_isnone(L, 2) || lua_toboolean(L, 2)));
}

/* keepalive([on [, delay]]): on defaults to true, delay (s) to 60. */
static int l_keepalive(lua_State *L) {
  qn_stream *s = lq_stream_live(L, 1, "quench.tcp.stream:keepalive");
  int on = lua_isnone(L, 2) || lua_toboolean(L, 2);
  lua_Integer delay = luaL_optinteger(L, 3, 60);
  luaL_argcheck(L, delay >= 1 && delay <= 86400 * 30, 3, "delay must be 1..2592000 s");
  return ok_or_fail(L, qn_tcp_set_keepalive(s, on, (unsigned)delay));
}

/* linger(seconds): how long a close with writes queued waits for the
   peer to take some before it drops them (0: at once). */
static int l_linger(lua_State *L) {
  qn_stream *s = lq_stream_live(L, 1, "quench.tcp.stream:linger");
  uint64_t ms;
  if (!linger_ms(L, 2, &ms))
    luaL_error(L, "quench.tcp.stream:linger: seconds must be a number in 0..86400, got %s",
               lua_isnumber(L, 2) ? lua_tostring(L, 2) : luaL_typename(L, 2));
  qn_stream_set_linger(s, ms);
  lua_pushboolean(L, 1);
  return 1;
}

/* ---- connecting ---- */

/* Push the stream a finished connect future made, or nil, msg, code. */
static int connect_results(lua_State *L, qn_future *f, uint64_t serial) {
  lq_stream *u = lq_stream_new(L, &lq_tcp_stream_class, "");
  qn_stream *s;
  int r = qn_tcp_connect_take(f, &s);
  if (r != 0) {
    lua_pop(L, 1);
    return lq_push_fail(L, r);
  }
  u->s = s;
  u->serial = serial;
  return 1;
}

/* connect is one lq_op_kind: the direct form's operands are host, port
   and opts at 1..3 (the options read again from the table, checked
   already); an op keeps the host in user value 1, the options, read when
   it was made, in a userdata at 2, and the port in its arg. */
static qn_future *connect_start(lua_State *L, int op, lq_coro *c) {
  if (op == 0) {
    qn_tcp_opts o = check_stream_opts(L, 3, connect_keys, "quench.tcp.connect");
    return qn_tcp_connect_new(c->rt->core, lua_tostring(L, 1), (int)lua_tointeger(L, 2), &o);
  }
  lq_op *o = lua_touserdata(L, op);
  lua_getiuservalue(L, op, 1);
  lua_getiuservalue(L, op, 2);
  qn_future *f = qn_tcp_connect_new(c->rt->core, lua_tostring(L, -2), (int)o->arg,
                                    lua_touserdata(L, -1));
  lua_pop(L, 2);
  return f;
}

static int connect_finish(lua_State *L, int op, qn_future *f) {
  (void)op;
  luaL_checkstack(L, 4, NULL);
  return connect_results(L, f, lq_module_of(L)->rt->serial);
}

static const lq_op_kind connect_kind = { "tcp connect", NULL, connect_start, connect_finish, NULL };

/* quench.tcp.connect(host, port [, opts]): a stream, or nil, msg, code. */
static int l_connect(lua_State *L) {
  const char *fname = "quench.tcp.connect";
  lq_check_cstring(L, 1, fname, "argument #1 (host)");
  check_port(L, 2);
  check_stream_opts(L, 3, connect_keys, fname);
  lq_coro *c = lq_await_ctx(L, fname);
  lua_settop(L, 3);
  return lq_perform(L, c, &connect_kind, 0, fname, NULL);
}

static int l_connect_op(lua_State *L) {
  lq_check_cstring(L, 1, "quench.tcp.connect_op", "argument #1 (host)");
  int port = check_port(L, 2);
  qn_tcp_opts o = check_stream_opts(L, 3, connect_keys, "quench.tcp.connect_op");
  lq_op_new(L, &connect_kind, 2)->arg = (uint64_t)port;
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  qn_tcp_opts *po = lua_newuserdatauv(L, sizeof *po, 0);
  *po = o;
  lua_setiuservalue(L, -2, 2);
  return 1;
}

/* ---- servers ----

   TCP, Unix and TLS servers ("quench.tcp.server", "quench.unix.server",
   "quench.tls.server") share these methods; a method's upvalues are the
   module and its class, as a stream's; a server's class is its tag. */

typedef struct lq_server {
  const lq_server_class *cls;   /* first: the tag lq_toudata checks */
  qn_tcp_server *srv;
  void *ctx;                    /* the class's (a TLS server's context), or NULL */
  uint64_t serial;
} lq_server;

static const lq_server_class *server_class_of(lua_State *L) {
  return lua_touserdata(L, lua_upvalueindex(2));
}

static lq_server *to_server(lua_State *L, int idx) {
  const lq_server_class *cls = server_class_of(L);
  lq_server *u = lq_toudata(L, idx, cls, sizeof(lq_server));
  if (u == NULL) luaL_typeerror(L, idx, cls->tname);
  return u;
}

static qn_tcp_server *check_server(lua_State *L, lq_server *u, const char *fname) {
  if (u->srv == NULL) luaL_error(L, "%s: attempt to use a closed server", fname);
  lq_check_alive(L, u->serial, fname, "server");
  if (qn_tcp_server_is_closed(u->srv)) luaL_error(L, "%s: attempt to use a closed server", fname);
  return u->srv;
}

static qn_tcp_server *live_server(lua_State *L, int idx, const char *fname) {
  return check_server(L, to_server(L, idx), fname);
}

qn_tcp_server *lq_server_live(lua_State *L, int idx, const char *fname) {
  return live_server(L, idx, fname);
}

int lq_server_fileno(lua_State *L, int idx) {
  lq_server *u = lq_toudata(L, idx, &lq_tcp_server_class, sizeof(lq_server));
  if (u == NULL) u = lq_toudata(L, idx, &lq_unix_server_class, sizeof(lq_server));
  if (u == NULL || u->srv == NULL || !lq_alive(L, u->serial)) return -1;
  return qn_tcp_server_fileno(u->srv);
}

qn_tcp_server **lq_server_new(lua_State *L, const lq_server_class *cls, uint64_t serial,
                              void *ctx) {
  lq_server *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->cls = cls;
  u->srv = NULL;
  u->ctx = NULL;
  u->serial = serial;
  luaL_setmetatable(L, cls->tname);
  u->ctx = ctx;                         /* owned from here: its __gc releases it */
  return &u->srv;
}

/* quench.tcp.listen(host, port [, opts]): a server, or nil, msg, code.
   host nil or "*": every IPv4 address. */
static int l_listen(lua_State *L) {
  const char *fname = "quench.tcp.listen";
  lq_runtime *rt = lq_runtime_of(L, fname);
  const char *host = lq_opt_cstring(L, 1, fname, "argument #1 (host)", "*");
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
  qn_tcp_server **srv = lq_server_new(L, &lq_tcp_server_class, rt->serial, NULL);
  int r = qn_tcp_listen(rt->core, host, port, backlog, flags, &o, srv);
  if (r != 0) return lq_push_fail(L, r);
  return 1;
}

/* Push an accepted stream (attached by the class's hook), or nil, msg,
   code; -1 (nothing pushed) if none is queued. */
static int try_accept(lua_State *L, lq_server *srv) {
  lq_stream *u = lq_stream_new(L, srv->cls->stream, "");
  qn_stream *s;
  int r = qn_tcp_try_accept(srv->srv, &s);
  if (r == 0) {
    u->s = s;
    u->serial = srv->serial;
    if (srv->cls->attach == NULL) return 1;
    r = srv->cls->attach(s, srv->ctx);
    if (r == 0) return 1;
  }
  lua_pop(L, 1);                        /* its __gc releases an accepted stream */
  if (r == UV_EAGAIN) return -1;
  return lq_push_fail(L, r);
}

/* accept is one lq_obj_kind given the server: the direct form's operand
   is the server at 1; an op keeps it in user value 1. */
void lq_server_accept_check(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)c;
  lq_server *u = obj;
  if (op != 0) check_server(L, u, u->cls->accept_op);
}

int lq_server_accept_now(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)op, (void)c;
  return try_accept(L, obj);
}

qn_future *lq_server_accept_start(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)L, (void)op, (void)c;
  return qn_tcp_accept_new(((lq_server *)obj)->srv);
}

/* Woken, but another task may have taken the connection first: the
   direct form waits again, an op fails with EAGAIN. */
int lq_server_accept_finish(lua_State *L, void *obj, int op, qn_future *f) {
  (void)f;
  int n = try_accept(L, obj);
  if (n >= 0) return n;
  return op == 0 ? LQ_AGAIN : lq_push_fail(L, UV_EAGAIN);
}

/* One continuation for every class: the kind's functions are the same,
   only its name differs. */
static const lq_obj_kind accept_wait = LQ_OBJ_KIND("accept", lq_server_accept_check,
                                                   lq_server_accept_start,
                                                   lq_server_accept_finish,
                                                   lq_server_accept_now);
LQ_OBJ_PERFORM_K(accept_k, accept_wait)

/* server:accept(): the next connection (a stream), or nil, msg, code. */
static int l_accept(lua_State *L) {
  const char *fname = server_class_of(L)->accept;
  live_server(L, 1, fname);
  lq_coro *c = lq_await_ctx(L, fname);
  lua_settop(L, 1);
  lq_server *u = lua_touserdata(L, 1);
  return lq_obj_perform(L, c, &accept_wait, u, fname, u->cls->accept_kind.base.name, accept_k);
}

static int l_accept_op(lua_State *L) {
  const lq_server_class *cls = server_class_of(L);
  live_server(L, 1, cls->accept_op);
  return lq_op_for(L, &cls->accept_kind.base, 1);
}

static int l_server_getsockname(lua_State *L) {
  struct sockaddr_storage ss;
  int r = qn_tcp_server_sockname(live_server(L, 1, server_class_of(L)->getsockname), &ss);
  return push_addr(L, r, &ss);
}

static int l_server_close(lua_State *L) {
  lq_server *u = to_server(L, 1);
  if (u->srv != NULL && lq_alive(L, u->serial)) qn_tcp_server_close(u->srv);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_server_gc(lua_State *L) {
  lq_server *u = luaL_testudata(L, 1, server_class_of(L)->tname);   /* __gc may be called by hand */
  if (u == NULL) return 0;
  if (u->srv != NULL) qn_tcp_server_release(u->srv);
  u->srv = NULL;
  if (u->ctx != NULL && u->cls->release != NULL) u->cls->release(u->ctx);
  u->ctx = NULL;
  return 0;
}

static int l_server_tostring(lua_State *L) {
  lq_server *u = to_server(L, 1);
  int open = u->srv != NULL && lq_alive(L, u->serial) && !qn_tcp_server_is_closed(u->srv);
  lua_pushfstring(L, "%s (%s)", u->cls->tname, open ? "listening" : "closed");
  return 1;
}

const lq_server_class lq_tcp_server_class =
  LQ_SERVER_CLASS("quench.tcp.server", "tcp", &lq_tcp_stream_class, NULL, NULL);
const lq_server_class lq_unix_server_class =
  LQ_SERVER_CLASS("quench.unix.server", "unix", &lq_unix_stream_class, NULL, NULL);

static const luaL_Reg server_methods[] = {
  {"accept", l_accept}, {"accept_op", l_accept_op}, {"close", l_server_close}, {NULL, NULL}
};

static const luaL_Reg server_metamethods[] = {
  {"__close", l_server_close}, {"__gc", l_server_gc}, {"__tostring", l_server_tostring},
  {NULL, NULL}
};

void lq_server_register(lua_State *L, int mod, const lq_server_class *cls, const luaL_Reg *extra) {
  luaL_newmetatable(L, cls->tname);
  lua_newtable(L);
  lua_pushvalue(L, mod);
  lua_pushlightuserdata(L, (void *)cls);
  luaL_setfuncs(L, server_methods, 2);
  lua_pushvalue(L, mod);
  lua_pushlightuserdata(L, (void *)cls);
  luaL_setfuncs(L, extra, 2);
  lua_setfield(L, -2, "__index");
  lua_pushvalue(L, mod);
  lua_pushlightuserdata(L, (void *)cls);
  luaL_setfuncs(L, server_metamethods, 2);
  lua_pop(L, 1);
}

/* ---- registration ---- */

const luaL_Reg lq_tcp_stream_methods[] = {
  {"close_reset", l_close_reset}, {"getsockname", l_getsockname}, {"getpeername", l_getpeername},
  {"nodelay", l_nodelay}, {"keepalive", l_keepalive}, {"linger", l_linger}, {NULL, NULL}
};

const luaL_Reg lq_tcp_server_methods[] = {
  {"getsockname", l_server_getsockname}, {NULL, NULL}
};

static const luaL_Reg functions[] = {
  {"listen", l_listen}, {"connect", l_connect}, {"connect_op", l_connect_op}, {NULL, NULL}
};

/* quench.tcp = {listen, connect, connect_op}; the module table is on top. */
void lq_tcp_register(lua_State *L, int mod) {
  lq_stream_register(L, mod, &lq_tcp_stream_class, lq_tcp_stream_methods);
  lq_server_register(L, mod, &lq_tcp_server_class, lq_tcp_server_methods);
  lua_newtable(L);
  lua_pushvalue(L, mod);
  luaL_setfuncs(L, functions, 1);
  lua_setfield(L, -2, "tcp");
}
