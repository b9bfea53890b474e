/*
** Name resolution: quench.dns.getaddrinfo(host[, opts]) over core/dns.c,
** and its op form getaddrinfo_op. Results: a list of
** {addr =, family = "inet"|"inet6", port =, socktype =, protocol =}
** (canonname on the first entry when asked for), or nil, message, code with
** libuv's names ("EAI_NONAME: unknown node or service", "EAI_NONAME").
**
** opts: family ("inet", "inet6"; default either), socktype ("stream",
** the default, "dgram" or "any"), port (a number or a service name: fills
** in `port`), numeric (the host must be an address: no lookup), canonname,
** addrconfig.
**
** Cancel safety: safe (a lookup changes nothing). A dropped lookup still
** queued is uv_cancel'ed; one already running finishes on its pool thread
** and its result is freed by libuv's callback.
*/
#include <string.h>
#include "binding.h"

/* hints packed in the op's ns: family | socktype << 8 | flags << 16 */
static uint64_t check_opts(lua_State *L, int idx, const char *fname) {
  int family = AF_UNSPEC, socktype = SOCK_STREAM, flags = 0;
  if (lua_isnoneornil(L, idx)) return (uint64_t)family | (uint64_t)socktype << 8;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_getfield(L, idx, "family");
  if (!lua_isnil(L, -1)) {
    const char *f = lq_check_cstring(L, -1, fname, "opts.family");
    if (strcmp(f, "inet") == 0) family = AF_INET;
    else if (strcmp(f, "inet6") == 0) family = AF_INET6;
    else luaL_argerror(L, idx, "opts.family must be \"inet\" or \"inet6\"");
  }
  lua_getfield(L, idx, "socktype");
  if (!lua_isnil(L, -1)) {
    const char *t = lq_check_cstring(L, -1, fname, "opts.socktype");
    if (strcmp(t, "stream") == 0) socktype = SOCK_STREAM;
    else if (strcmp(t, "dgram") == 0) socktype = SOCK_DGRAM;
    else if (strcmp(t, "any") == 0) socktype = 0;
    else luaL_argerror(L, idx, "opts.socktype must be \"stream\", \"dgram\" or \"any\"");
  }
  lua_getfield(L, idx, "numeric");
  if (lua_toboolean(L, -1)) flags |= AI_NUMERICHOST;
  lua_getfield(L, idx, "canonname");
  if (lua_toboolean(L, -1)) flags |= AI_CANONNAME;
  lua_getfield(L, idx, "addrconfig");
  if (lua_toboolean(L, -1)) flags |= AI_ADDRCONFIG;
  lua_pop(L, 5);
  return (uint64_t)family | (uint64_t)socktype << 8 | (uint64_t)flags << 16;
}

/* opts.port as a service string (or nil), pushed. */
static void push_service(lua_State *L, int idx, const char *fname) {
  if (!lua_istable(L, idx) || lua_getfield(L, idx, "port") == LUA_TNIL) {
    if (lua_istable(L, idx)) lua_pop(L, 1);
    lua_pushnil(L);
    return;
  }
  if (lua_isinteger(L, -1)) {
    lua_Integer p = lua_tointeger(L, -1);
    luaL_argcheck(L, p >= 0 && p <= 65535, idx, "opts.port must be in 0..65535");
    lua_pushfstring(L, "%d", (int)p);
  } else if (lua_type(L, -1) == LUA_TSTRING) {
    lq_check_cstring(L, -1, fname, "opts.port");
    lua_pushvalue(L, -1);
  } else {
    luaL_argerror(L, idx, "opts.port must be an integer or a service name");
  }
  lua_remove(L, -2);
}

/* getaddrinfo is one lq_op_kind (lua/binding.h) for both forms. Its
   operands: the host (1), the service (2: a string or nil) and, for the
   direct form, the packed hints at stack index 3 (an op keeps them in its
   arg). */
static qn_future *gai_start(lua_State *L, int op, lq_coro *c) {
  uint64_t packed = op != 0 ? lq_test_op(L, op)->arg : (uint64_t)lua_tointeger(L, 3);
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = (int)(packed & 0xff);
  hints.ai_socktype = (int)((packed >> 8) & 0xff);
  hints.ai_flags = (int)(packed >> 16);
  lq_op_arg(L, op, 1);
  lq_op_arg(L, op, 2);
  qn_future *f = qn_getaddrinfo_new(c->rt->core, lua_tostring(L, -2), lua_tostring(L, -1), &hints);
  lua_pop(L, 2);
  return f;
}

static const char *socktype_name(int t) {
  return t == SOCK_STREAM ? "stream" : t == SOCK_DGRAM ? "dgram" : t == SOCK_RAW ? "raw" : "other";
}

static void push_protocol(lua_State *L, int p) {
  if (p == IPPROTO_TCP) lua_pushliteral(L, "tcp");
  else if (p == IPPROTO_UDP) lua_pushliteral(L, "udp");
  else lua_pushinteger(L, p);
}

static int gai_finish(lua_State *L, int op, qn_future *f) {
  (void)op;
  const struct addrinfo *res;
  int r = qn_getaddrinfo_result(f, &res);
  if (r != 0) return lq_push_fail(L, r);
  lua_newtable(L);
  lua_Integer i = 0;
  for (const struct addrinfo *a = res; a != NULL; a = a->ai_next) {
    char addr[64];
    int port;
    if (a->ai_family == AF_INET) {
      const struct sockaddr_in *sa = (const struct sockaddr_in *)(const void *)a->ai_addr;
      uv_ip4_name(sa, addr, sizeof addr);
      port = ntohs(sa->sin_port);
    } else if (a->ai_family == AF_INET6) {
      const struct sockaddr_in6 *sa = (const struct sockaddr_in6 *)(const void *)a->ai_addr;
      uv_ip6_name(sa, addr, sizeof addr);
      port = ntohs(sa->sin6_port);
    } else {
      continue;
    }
    lua_createtable(L, 0, 6);
    lua_pushstring(L, addr);
    lua_setfield(L, -2, "addr");
    lua_pushstring(L, a->ai_family == AF_INET ? "inet" : "inet6");
    lua_setfield(L, -2, "family");
    lua_pushinteger(L, port);
    lua_setfield(L, -2, "port");
    lua_pushstring(L, socktype_name(a->ai_socktype));
    lua_setfield(L, -2, "socktype");
    push_protocol(L, a->ai_protocol);
    lua_setfield(L, -2, "protocol");
    if (a->ai_canonname) {
      lua_pushstring(L, a->ai_canonname);
      lua_setfield(L, -2, "canonname");
    }
    lua_rawseti(L, -2, ++i);
  }
  return 1;
}

static const lq_op_kind gai_kind = { "getaddrinfo", NULL, gai_start, gai_finish, NULL };

/* Check the arguments and leave the operands: the host at 1, the
   service at 2; returns the packed hints. */
static uint64_t gai_operands(lua_State *L, const char *fname) {
  lq_check_cstring(L, 1, fname, "argument #1 (host)");
  lua_settop(L, 2);
  uint64_t hints = check_opts(L, 2, fname);
  push_service(L, 2, fname);
  lua_replace(L, 2);
  lua_settop(L, 2);
  return hints;
}

static int l_getaddrinfo_op(lua_State *L) {
  uint64_t hints = gai_operands(L, "quench.dns.getaddrinfo_op");
  lq_op_new(L, &gai_kind, 2)->arg = hints;
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, 2);
  return 1;
}

static int l_getaddrinfo(lua_State *L) {
  const char *fname = "quench.dns.getaddrinfo";
  lq_coro *c = lq_await_ctx(L, fname);
  lua_pushinteger(L, (lua_Integer)gai_operands(L, fname));   /* 3: the hints */
  return lq_perform(L, c, &gai_kind, 0, fname, NULL);
}

static const luaL_Reg functions[] = {
  {"getaddrinfo", l_getaddrinfo}, {"getaddrinfo_op", l_getaddrinfo_op}, {NULL, NULL}
};

void lq_dns_register(lua_State *L, int mod) {
  lua_newtable(L);
  lua_pushvalue(L, mod);
  luaL_setfuncs(L, functions, 1);
  lua_setfield(L, -2, "dns");
}
