/*
** Adopting a socket descriptor (core/adopt.c): quench.adopt(fd [, opts]),
** quench.tcp.adopt and quench.unix.adopt (the same, checking the family),
** and quench.listen_fds() for systemd socket activation. A listening
** socket becomes a server, a connected one a stream, of the matching kind
** (quench.tcp.* or quench.unix.*). On success quench owns the descriptor
** (it closes it); on failure it is still the caller's.
*/
#include <stdlib.h>
#include <string.h>
#include "stream.h"

static const char *const adopt_keys[] = {
  "nodelay", "keepalive", "read_limit", "write_limit", NULL
};

static int adopt(lua_State *L, int want, const char *fname) {
  lq_runtime *rt = lq_runtime_of(L, fname);
  lua_Integer fd = luaL_checkinteger(L, 1);
  luaL_argcheck(L, fd >= 0 && fd <= 0x7fffffff, 1, "not a descriptor");
  luaL_argcheck(L, fd > 2, 1, "0, 1 and 2 are standard streams (quench.stdin() and co.)");
  qn_tcp_opts o = lq_tcp_check_opts(L, 2, adopt_keys, fname);
  /* both userdata first (closed), so no error can leak a core object */
  lq_stream *u = lq_stream_new(L, &lq_tcp_stream_class, "");
  int su = lua_gettop(L);
  qn_tcp_server **tsrv = lq_server_new(L, &lq_tcp_server_class, rt->serial, NULL);
  qn_tcp_server **usrv = lq_server_new(L, &lq_unix_server_class, rt->serial, NULL);
  lq_stream_new(L, &lq_unix_stream_class, "");
  lq_stream *uu = lua_touserdata(L, -1);
  int kind;
  qn_stream *s;
  qn_tcp_server *srv;
  int r = qn_adopt(rt->core, (int)fd, want, &o, &kind, &s, &srv);
  if (r != 0) {
    if (r == UV_EINVAL && want != 0)
      return luaL_error(L, "%s: descriptor %d is not a %s socket", fname, (int)fd,
                        want == QN_ADOPT_TCP ? "TCP" : "Unix");
    return lq_push_fail(L, r);
  }
  if (kind & QN_ADOPT_SERVER) {
    if (kind & QN_ADOPT_TCP) {
      *tsrv = srv;
      lua_pushvalue(L, su + 1);
    } else {
      *usrv = srv;
      lua_pushvalue(L, su + 2);
    }
    return 1;
  }
  lq_stream *to = (kind & QN_ADOPT_TCP) ? u : uu;
  to->s = s;
  to->serial = rt->serial;
  lua_pushvalue(L, (kind & QN_ADOPT_TCP) ? su : su + 3);
  return 1;
}

static int l_adopt(lua_State *L) { return adopt(L, 0, "quench.adopt"); }
static int l_tcp_adopt(lua_State *L) { return adopt(L, QN_ADOPT_TCP, "quench.tcp.adopt"); }
static int l_unix_adopt(lua_State *L) { return adopt(L, QN_ADOPT_UNIX, "quench.unix.adopt"); }

/* quench.listen_fds([keep_env]): the descriptors systemd passed (a list
   of integers from 3 on, empty if none) and their names (LISTEN_FDNAMES,
   a list, names missing when not given). The environment variables are
   removed unless keep_env. */
static int l_listen_fds(lua_State *L) {
  int keep = lua_toboolean(L, 1);
  const char *names = getenv("LISTEN_FDNAMES");
  lua_pushstring(L, names ? names : "");
  int n = qn_listen_fds(!keep);
  if (n < 0) return luaL_error(L, "quench.listen_fds: malformed LISTEN_PID or LISTEN_FDS");
  lua_createtable(L, n, 0);
  lua_createtable(L, n, 0);
  const char *p = lua_tostring(L, -3);
  for (int i = 0; i < n; i++) {
    lua_pushinteger(L, 3 + i);
    lua_rawseti(L, -3, i + 1);
    const char *e = strchr(p, ':');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len > 0) {
      lua_pushlstring(L, p, len);
      lua_rawseti(L, -2, i + 1);
    }
    p += len + (e ? 1 : 0);
  }
  return 2;
}

/* After lq_tcp_register and lq_unix_register: quench.tcp.adopt,
   quench.unix.adopt, quench.adopt, quench.listen_fds; the module table is
   on top (mod is the module state). */
/* quench._fileno(obj): the descriptor of a TCP or Unix stream, a TCP or
   Unix server, a UDP or a Unix datagram socket of this runtime, or -1
   (closed, another runtime's, anything else). Internal: LuaSocket's getfd
   (quench.socket). The descriptor stays quench's. */
static int l_fileno(lua_State *L) {
  lq_stream *u = lq_toudata(L, 1, &lq_tcp_stream_class, sizeof(lq_stream));
  if (u == NULL) u = lq_toudata(L, 1, &lq_unix_stream_class, sizeof(lq_stream));
  int fd = -1;
  if (u != NULL) {
    if (u->s != NULL && lq_alive(L, u->serial)) fd = qn_stream_fileno(u->s);
  } else if (lua_type(L, 1) == LUA_TUSERDATA) {
    fd = lq_server_fileno(L, 1);
    if (fd < 0) fd = lq_udp_fileno(L, 1);
    if (fd < 0) fd = lq_udgram_fileno(L, 1);
  }
  lua_pushinteger(L, fd);
  return 1;
}

void lq_adopt_register(lua_State *L, int mod) {
  const luaL_Reg top[] = { {"adopt", l_adopt}, {"listen_fds", l_listen_fds},
                           {"_fileno", l_fileno}, {NULL, NULL} };
  lua_pushvalue(L, mod);
  luaL_setfuncs(L, top, 1);
  lua_getfield(L, -1, "tcp");
  lua_pushvalue(L, mod);
  lua_pushcclosure(L, l_tcp_adopt, 1);
  lua_setfield(L, -2, "adopt");
  lua_getfield(L, -2, "unix");
  lua_pushvalue(L, mod);
  lua_pushcclosure(L, l_unix_adopt, 1);
  lua_setfield(L, -2, "adopt");
  lua_pop(L, 2);
}
