/*
** What only the stream files share: the stream and server types and
** their methods (stream.c, tcp.c), for the files whose objects are
** streams or make them (tcp.c, unix.c, tls.c, pipe.c, process.c, adopt.c,
** http.c). The rest of the binding does not see them.
*/
#ifndef QUENCH_STREAM_H
#define QUENCH_STREAM_H

#include "binding.h"

/* stream.c: the stream methods TCP streams and pipes share. A stream's
   functions have two upvalues, the module and its class. */
typedef struct lq_stream_class lq_stream_class;
extern const lq_stream_class lq_tcp_stream_class;   /* "quench.tcp.stream" */
extern const lq_stream_class lq_pipe_class;         /* "quench.pipe" */
extern const lq_stream_class lq_tls_stream_class;   /* "quench.tls.stream" */
extern const lq_stream_class lq_unix_stream_class;  /* "quench.unix.stream" */

typedef struct lq_stream {
  const lq_stream_class *cls;   /* first: the tag lq_toudata checks */
  qn_stream *s;         /* NULL until made, and after __gc */
  uint64_t serial;      /* of its runtime */
  char what[40];        /* a pipe's: "stdout", "stdin of process 1234", ...; TCP: "" */
} lq_stream;

/* A closed stream userdata, filled (s, serial) once the core stream exists. */
lq_stream *lq_stream_new(lua_State *L, const lq_stream_class *cls, const char *what);
/* The core stream of a usable stream of this function's class at idx, or
   raise naming fname. */
qn_stream *lq_stream_live(lua_State *L, int idx, const char *fname);
void lq_stream_close_at(lua_State *L, const lq_stream_class *cls, int idx);   /* nil: nothing */
/* nil, msg, code for a failure of stream s (a TLS one with its message). */
int lq_stream_fail(lua_State *L, qn_stream *s, int r);
/* tcp.c: what only a TCP stream has (getsockname, nodelay...), which a TLS
   stream has too. */
extern const luaL_Reg lq_tcp_stream_methods[];
/* The metatable of cls: the shared methods, and `extra` (may be NULL). */
void lq_stream_register(lua_State *L, int mod, const lq_stream_class *cls, const luaL_Reg *extra);

/* tcp.c: servers, TCP ("quench.tcp.server"), Unix ("quench.unix.server")
   and TLS ("quench.tls.server", tls.c); methods accept, accept_op, close,
   and `extra`. A server's class is its tag. What differs for TLS is in
   two hooks: `attach` (optional) is given each accepted stream and the
   server's context (lq_server_new's ctx) and returns 0 or a libuv error
   (the stream is then released and the accept returns the error);
   `release` (optional) frees the context when the server is collected. */
struct lq_server_class {
  const char *tname, *accept, *accept_op, *getsockname;
  const lq_stream_class *stream;        /* of the streams it accepts */
  int (*attach)(qn_stream *s, void *ctx);
  void (*release)(void *ctx);
  lq_obj_kind accept_kind;
};
typedef struct lq_server_class lq_server_class;
extern const lq_server_class lq_tcp_server_class;
extern const lq_server_class lq_unix_server_class;
/* The accept wait every class shares (an lq_obj_kind given the server). */
void lq_server_accept_check(lua_State *L, void *obj, int op, lq_coro *c);
qn_future *lq_server_accept_start(lua_State *L, void *obj, int op, lq_coro *c);
int lq_server_accept_finish(lua_State *L, void *obj, int op, qn_future *f);
int lq_server_accept_now(lua_State *L, void *obj, int op, lq_coro *c);
/* A class T ("quench.tcp.server") whose accept wait is named S " accept". */
#define LQ_SERVER_CLASS(T, S, STREAM, ATTACH, RELEASE) {                        \
  T, T ":accept", T ":accept_op", T ":getsockname", STREAM, ATTACH, RELEASE,    \
  LQ_OBJ_KIND(S " accept", lq_server_accept_check, lq_server_accept_start,      \
              lq_server_accept_finish, lq_server_accept_now) }
/* Push a closed server of cls with context ctx (NULL: none), which
   cls->release drops when the server is collected: the caller takes that
   reference for it right after (nothing between can raise); fill *result
   with the core server. */
/* The descriptor of a TCP or Unix server of this runtime at idx, or -1
   (closed, another runtime's, not a server): quench._fileno. */
int lq_server_fileno(lua_State *L, int idx);
qn_tcp_server **lq_server_new(lua_State *L, const lq_server_class *cls, uint64_t serial,
                              void *ctx);
/* The core server of a usable server of this function's class at idx. */
qn_tcp_server *lq_server_live(lua_State *L, int idx, const char *fname);
/* What only a TCP server has (getsockname), which a TLS server has too. */
extern const luaL_Reg lq_tcp_server_methods[];
void lq_server_register(lua_State *L, int mod, const lq_server_class *cls, const luaL_Reg *extra);
/* tcp.c: options of streams and servers, shared with unix.c and adopt.c. */
qn_tcp_opts lq_tcp_check_opts(lua_State *L, int idx, const char *const *keys, const char *fname);
size_t lq_opt_size(lua_State *L, int opts, const char *name);

/* pipe.c: pipe streams ("quench.pipe"), for process.c */
void lq_pipe_push(lua_State *L, lq_runtime *rt, qn_stream *s, const char *what);
void lq_pipe_close(lua_State *L, int idx);   /* nil or a closed stream: nothing */

#endif
