/*
** Pipe streams ("quench.pipe") over core/pipe.c: a child process's stdin,
** stdout and stderr (lua/process.c), and quench.stdin(), quench.stdout(),
** quench.stderr(). Their methods are lua/stream.c's (as a TCP stream's,
** without the socket ones); a pipe may be one-way, and a method of the
** other direction raises ("stdin of process 1234 is not writable").
**
** Standard streams are made once per runtime and kept in the registry
** (REG_STDIO: {serial = n, [0] = stdin, [1] = stdout, [2] = stderr}), since
** two streams reading one pipe would split its bytes; a closed one is made
** again on the next call, and the next runtime's first call replaces the
** table.
*/
#include "stream.h"

#define REG_STDIO "quench.stdio"

/* Push a stream over s (which it owns from now on). */
void lq_pipe_push(lua_State *L, lq_runtime *rt, qn_stream *s, const char *what) {
  lq_stream *u = lq_stream_new(L, &lq_pipe_class, what);
  u->serial = rt->serial;
  u->s = s;
}

/* Close the stream at idx if it is one (nil is fine). */
void lq_pipe_close(lua_State *L, int idx) {
  lq_stream_close_at(L, &lq_pipe_class, idx);
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
    lq_stream *u = lua_touserdata(L, -1);
    if (u->s != NULL && !qn_stream_is_closed(u->s)) return 1;
  }
  lua_pop(L, 1);
  qn_stream *s;
  int r = qn_pipe_open_stdio(rt->core, fd, NULL, &s);
  if (r == UV_ENOTSUP) {
    lua_pushnil(L);
    lua_pushfstring(L, "ENOTSUP: %s is a file or a character device, which a stream cannot "
                       "watch (streams take pipes, sockets and terminals; read a file with "
                       "quench.fs or io)", name + 7);
    lua_pushliteral(L, "ENOTSUP");
    return 3;
  }
  if (r != 0) return lq_push_fail(L, r);
  lq_pipe_push(L, rt, s, name + 7);
  lua_pushvalue(L, -1);
  lua_rawseti(L, cache, fd);
  return 1;
}

static int l_stdin(lua_State *L) { return stdio(L, 0, "quench.stdin"); }
static int l_stdout(lua_State *L) { return stdio(L, 1, "quench.stdout"); }
static int l_stderr(lua_State *L) { return stdio(L, 2, "quench.stderr"); }

static const luaL_Reg functions[] = {
  {"stdin", l_stdin}, {"stdout", l_stdout}, {"stderr", l_stderr}, {NULL, NULL}
};

void lq_pipe_register(lua_State *L, int mod) {
  lq_stream_register(L, mod, &lq_pipe_class, NULL);
  lua_pushvalue(L, mod);
  luaL_setfuncs(L, functions, 1);
}
