/*
** Unix domain sockets ("quench.unix"): quench.unix.listen and
** quench.unix.connect over core/unix.c; servers ("quench.unix.server",
** lua/tcp.c's server methods) and streams ("quench.unix.stream", every
** method of lua/stream.c) with what only a Unix socket has: getsockname,
** getpeername (paths) and getpeercred. Names: a path, or "@name" for
** Linux's abstract namespace.
**
** Ownership and cancel safety: as TCP's (lua/tcp.c, lua/stream.c). connect
** never waits (the kernel connects a Unix socket at once), so it is not an
** await and has no op.
*/
#include <string.h>
#include "stream.h"

static const char *const stream_keys[] = { "read_limit", "write_limit", NULL };
static const char *const listen_keys[] = { "read_limit", "write_limit", "backlog", "mode", NULL };

/* A socket name at idx: no NUL inside, at most QN_UNIX_PATH_MAX bytes
   (quench.unix.listen/connect and the datagram sockets of unix_dgram.c). */
const char *lq_check_unix_name(lua_State *L, int idx) {
  size_t len;
  const char *p = luaL_checklstring(L, idx, &len);
  luaL_argcheck(L, len > 0 && strlen(p) == len, idx,
                "a path without \"\\0\" (an abstract name is \"@name\")");
  luaL_argcheck(L, !(len == 1 && p[0] == '@'), idx, "an abstract name needs a name after \"@\"");
  if (len > QN_UNIX_PATH_MAX)
    luaL_argerror(L, idx, lua_pushfstring(L, "name too long (%d bytes at most)", QN_UNIX_PATH_MAX));
  return p;
}

static int push_name(lua_State *L, int r, const char *name, size_t len) {
  if (r != 0) return lq_push_fail(L, r);
  lua_pushlstring(L, name, len);
  return 1;
}

/* quench.unix.listen(path [, opts]): a server, or nil, msg, code. */
static int l_listen(lua_State *L) {
  const char *fname = "quench.unix.listen";
  lq_runtime *rt = lq_runtime_of(L, fname);
  const char *path = lq_check_unix_name(L, 1);
  qn_tcp_opts o = lq_tcp_check_opts(L, 2, listen_keys, fname);
  int backlog = 0, mode = 0;
  if (lua_istable(L, 2)) {
    size_t b = lq_opt_size(L, 2, "backlog");
    luaL_argcheck(L, b <= 65535, 2, "opts.backlog must be at most 65535");
    backlog = (int)b;
    if (lua_getfield(L, 2, "mode") != LUA_TNIL) {
      int ok;
      lua_Integer m = lua_tointegerx(L, -1, &ok);
      if (!ok || m < 1 || m > 07777)
        luaL_error(L, "%s: opts.mode must be permission bits (an integer in 1..4095: "
                      "tonumber(\"660\", 8))", fname);
      mode = (int)m;
    }
    lua_pop(L, 1);
  }
  qn_tcp_server **srv = lq_server_new(L, &lq_unix_server_class, rt->serial, NULL);
  int r = qn_unix_listen(rt->core, path, backlog, mode, &o, srv);
  if (r != 0) return lq_push_fail(L, r);
  return 1;
}

/* quench.unix.connect(path [, opts]): a stream, or nil, msg, code. */
static int l_connect(lua_State *L) {
  const char *fname = "quench.unix.connect";
  lq_runtime *rt = lq_runtime_of(L, fname);
  const char *path = lq_check_unix_name(L, 1);
  qn_tcp_opts o = lq_tcp_check_opts(L, 2, stream_keys, fname);
  lq_stream *u = lq_stream_new(L, &lq_unix_stream_class, "");
  qn_stream *s;
  int r = qn_unix_connect(rt->core, path, &o, &s);
  if (r != 0) return lq_push_fail(L, r);
  u->s = s;
  u->serial = rt->serial;
  return 1;
}

static int l_getsockname(lua_State *L) {
  char name[QN_UNIX_PATH_MAX + 2];
  size_t len = 0;
  int r = qn_unix_sockname(lq_stream_live(L, 1, "quench.unix.stream:getsockname"), name, &len);
  return push_name(L, r, name, len);
}

static int l_getpeername(lua_State *L) {
  char name[QN_UNIX_PATH_MAX + 2];
  size_t len = 0;
  int r = qn_unix_peername(lq_stream_live(L, 1, "quench.unix.stream:getpeername"), name, &len);
  return push_name(L, r, name, len);
}

/* getpeercred(): {pid =, uid =, gid =} of the peer at connect time. */
static int l_getpeercred(lua_State *L) {
  int64_t pid, uid, gid;
  int r = qn_unix_peercred(lq_stream_live(L, 1, "quench.unix.stream:getpeercred"), &pid, &uid,
                           &gid);
  if (r != 0) return lq_push_fail(L, r);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, (lua_Integer)pid);
  lua_setfield(L, -2, "pid");
  lua_pushinteger(L, (lua_Integer)uid);
  lua_setfield(L, -2, "uid");
  lua_pushinteger(L, (lua_Integer)gid);
  lua_setfield(L, -2, "gid");
  return 1;
}

static int l_server_getsockname(lua_State *L) {
  char name[QN_UNIX_PATH_MAX + 2];
  size_t len = 0;
  int r = qn_unix_server_sockname(lq_server_live(L, 1, "quench.unix.server:getsockname"), name,
                                  &len);
  return push_name(L, r, name, len);
}

static const luaL_Reg stream_methods[] = {
  {"getsockname", l_getsockname}, {"getpeername", l_getpeername},
  {"getpeercred", l_getpeercred}, {NULL, NULL}
};

static const luaL_Reg server_methods[] = {
  {"getsockname", l_server_getsockname}, {NULL, NULL}
};

static const luaL_Reg functions[] = {
  {"listen", l_listen}, {"connect", l_connect}, {NULL, NULL}
};

/* quench.unix = {listen, connect}; the module table is on top (mod is the
   module state, every function's upvalue). */
void lq_unix_register(lua_State *L, int mod) {
  lq_stream_register(L, mod, &lq_unix_stream_class, stream_methods);
  lq_server_register(L, mod, &lq_unix_server_class, server_methods);
  lua_newtable(L);
  lua_pushvalue(L, mod);
  luaL_setfuncs(L, functions, 1);
  lua_setfield(L, -2, "unix");
}
