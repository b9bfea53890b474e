/*
** HTTP/1.x parsing for quench.http (lua/quench/http.lua), over core/http.c:
** the request head ("quench.http.head"), the body reads, the server's lot
** of connections (each watched from C between requests and while one is
** handled), and the response head's writer, all on a TCP, TLS, Unix
** stream or a pipe.
**
** A head userdata holds a copy of the head's bytes and the offsets of its
** fields; a Lua string is made only for what is asked for (method, target,
** one header...). The body's framing state (bytes left, the chunked
** decoder) lives in the head too, and its trailers, once read, in its user
** value 1.
**
** The waits: `lot:next()` awaits directly (an lq_obj_kind with a direct
** form only: the server's per-request path); `head:body_op(stream, max)`
** is an op, for quench.timeout, and `head:body_some` its no-wait fast path.
**
** Cancel safety: nothing is consumed until a wait's results are made (in
** the step its task resumes in), so a dropped body read loses no byte; a
** dropped lot:next loses no connection (they stay ready in the lot).
*/
#include <stdint.h>
#include <string.h>
#include <time.h>
#include "stream.h"

/* Not "quench.*": the head is the server's, never handed to a user. */
#define LQ_HEAD "quench_internal.http_head"

enum { PHASE_BODY, PHASE_TRAILERS, PHASE_DONE };

/* The head's tag (its first word, for lq_toudata) and, as a light
   userdata, the registry key of its metatable: no look-up by name on the
   per-request path. */
static const char head_tag = 0;

typedef struct lq_head {
  const void *tag;          /* &head_tag */
  qn_http_head h;
  int64_t left;             /* Content-Length body: bytes still to read */
  int64_t taken;            /* body bytes returned so far */
  int64_t max_body;         /* over this: EMSGSIZE */
  size_t max_fields;
  qn_http_chunked *dec;     /* a chunked body's decoder, after the struct; NULL otherwise */
  int phase;
  uint8_t continue_due;     /* Expect: 100-continue on a request with a body */
  qn_http_field *fields;    /* h.nfields of them, after the struct */
  char *bytes;              /* h.len bytes, after the fields */
} lq_head;

static lq_head *check_head(lua_State *L, int idx) {
  lq_head *u = lq_toudata(L, idx, &head_tag, sizeof(lq_head));
  if (u == NULL) luaL_typeerror(L, idx, LQ_HEAD);
  return u;
}

/* The core stream of a TCP, TLS, Unix or pipe stream at idx, open, or raise. */
static qn_stream *check_stream(lua_State *L, int idx, const char *fname) {
  lq_stream *u = lq_toudata(L, idx, &lq_tcp_stream_class, sizeof(lq_stream));
  if (u == NULL) u = lq_toudata(L, idx, &lq_tls_stream_class, sizeof(lq_stream));
  if (u == NULL) u = lq_toudata(L, idx, &lq_unix_stream_class, sizeof(lq_stream));
  if (u == NULL) u = lq_toudata(L, idx, &lq_pipe_class, sizeof(lq_stream));
  if (u == NULL) luaL_typeerror(L, idx, "a quench stream (TCP, TLS, Unix, pipe)");
  if (u->s == NULL) luaL_error(L, "%s: attempt to use a closed stream", fname);
  lq_check_alive(L, u->serial, fname, "stream");
  if (qn_stream_is_closed(u->s)) luaL_error(L, "%s: attempt to use a closed stream", fname);
  return u->s;
}

static qn_stream *op_stream(lua_State *L, int op, int uv) {
  lua_getiuservalue(L, op, uv);
  lq_stream *u = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return u->s;
}

/* A status for a QN_HTTP_E_* code. */
static int status_of(int e) {
  switch (e) {
  case QN_HTTP_E_URI_TOO_LONG: return 414;
  case QN_HTTP_E_HEAD_TOO_LARGE: return 431;
  case QN_HTTP_E_TOO_MANY_FIELDS: return 431;
  case QN_HTTP_E_NOT_IMPLEMENTED: return 501;
  default: return 400;
  }
}

static const char *reason_of(int e) {
  switch (e) {
  case QN_HTTP_E_URI_TOO_LONG: return "request line over its limit";
  case QN_HTTP_E_HEAD_TOO_LARGE: return "request head over its limit";
  case QN_HTTP_E_TOO_MANY_FIELDS: return "too many header fields";
  case QN_HTTP_E_NOT_IMPLEMENTED: return "unknown transfer coding (only chunked is understood)";
  case QN_HTTP_E_PARTIAL: return "the connection ended inside a request head";
  default: return "malformed request";
  }
}

/* Push the result of a protocol error: false, status, message. */
static int push_bad(lua_State *L, int e) {
  lua_pushboolean(L, 0);
  lua_pushinteger(L, status_of(e));
  lua_pushstring(L, reason_of(e));
  return 3;
}

/* ---- reading a head ---- */

/* The limits of a head op, packed into its ns. */
static uint64_t pack_limits(size_t max_line, size_t max_head, size_t max_fields) {
  return (uint64_t)max_head | ((uint64_t)max_line << 32) | ((uint64_t)max_fields << 52);
}
static size_t lim_head(uint64_t ns) { return (size_t)(ns & 0xffffffffu); }
static size_t lim_line(uint64_t ns) { return (size_t)((ns >> 32) & 0xfffffu); }
static size_t lim_fields(uint64_t ns) { return (size_t)(ns >> 52); }

static int push_framing(lua_State *L, const lq_head *u);

/* Parse what the stream holds: push a head and its framing (consuming its bytes),
   false, status, msg, or nil, msg, code; -1 if it must wait. */
static int take_head(lua_State *L, qn_stream *s, uint64_t ns, int64_t max_body, int lot_idx) {
  const char *d;
  size_t len, used, end;
  int r = qn_stream_peek(s, QN_STREAM_SOME, 0, &d, &len, &used);
  if (r == UV_EAGAIN) return -1;
  if (r != 0) return lq_push_fail(L, r);
  r = qn_http_head_scan(d, len, 0, lim_line(ns), lim_head(ns), &end);
  if (r == QN_HTTP_E_PARTIAL) {
    const char *d2;
    size_t l2, u2;
    int e = qn_stream_peek(s, QN_STREAM_ALL, 0, &d2, &l2, &u2);
    if (e == 0) return push_bad(L, QN_HTTP_E_PARTIAL);   /* EOF inside the head */
    if (e != UV_EAGAIN) return lq_push_fail(L, e);
    return -1;
  }
  if (r != 0) return push_bad(L, r);
  size_t maxf = lim_fields(ns);
  qn_http_field fields[QN_HTTP_FIELDS_MAX];
  qn_http_head h;
  r = qn_http_parse_request(d, end, &h, fields, maxf);
  if (r == QN_HTTP_E_PARTIAL) r = QN_HTTP_E_BAD;       /* the scan found its end */
  if (r != 0) return push_bad(L, r);
  size_t fbytes = h.nfields * sizeof(qn_http_field);
  int chunked = (h.flags & QN_HTTP_CHUNKED) != 0;
  /* the decoder (64 bytes) and a user value (its trailers) only for a
     chunked body: a head is allocated per request, and the collector's
     work grows with the bytes allocated */
  size_t dbytes = chunked ? sizeof(qn_http_chunked) : 0;
  lq_head *u = lua_newuserdatauv(L, lq_align(sizeof *u) + dbytes + fbytes + h.len, chunked);
  memset(u, 0, sizeof *u);
  u->tag = &head_tag;
  u->h = h;
  if (chunked) u->dec = (qn_http_chunked *)((char *)u + lq_align(sizeof *u));
  u->fields = (qn_http_field *)((char *)u + lq_align(sizeof *u) + dbytes);
  u->bytes = (char *)u->fields + fbytes;
  memcpy(u->fields, fields, fbytes);
  memcpy(u->bytes, d, h.len);
  u->max_fields = maxf;
  u->max_body = max_body;
  if (h.flags & QN_HTTP_CHUNKED) {
    qn_http_chunked_init(u->dec);
    u->left = -1;
  } else {
    u->left = h.content_length > 0 ? h.content_length : 0;
    if (u->left == 0) u->phase = PHASE_DONE;
  }
  u->continue_due = (h.flags & QN_HTTP_EXPECT_CONTINUE) && h.minor == 1 && u->phase != PHASE_DONE;
  lua_getiuservalue(L, lot_idx, 2);           /* the head's metatable: a registry lookup by */
  lua_setmetatable(L, -2);                    /* pointer cost ~140 instructions a request */
  qn_stream_consume(s, h.len);
  return 1 + push_framing(L, u);
}

static size_t check_size(lua_State *L, int idx, lua_Integer lo, lua_Integer hi) {
  lua_Integer v = luaL_checkinteger(L, idx);
  luaL_argcheck(L, v >= lo && v <= hi, idx, "out of range");
  return (size_t)v;
}

/* ---- the head's fields ---- */

static int l_method(lua_State *L) {
  lq_head *u = check_head(L, 1);
  lua_pushlstring(L, u->bytes + u->h.method_off, u->h.method_len);
  return 1;
}

/* target() -> path, query (nil without "?") */
static int l_target(lua_State *L) {
  lq_head *u = check_head(L, 1);
  const char *t = u->bytes + u->h.target_off;
  const char *q = memchr(t, '?', u->h.target_len);
  if (q == NULL) {
    lua_pushlstring(L, t, u->h.target_len);
    return 1;
  }
  lua_pushlstring(L, t, (size_t)(q - t));
  lua_pushlstring(L, q + 1, u->h.target_len - (size_t)(q - t) - 1);
  return 2;
}

static int l_raw_target(lua_State *L) {
  lq_head *u = check_head(L, 1);
  lua_pushlstring(L, u->bytes + u->h.target_off, u->h.target_len);
  return 1;
}

/* Push minor, keep_alive, content_length (-1: none), chunked,
   expect_continue, is_head: what lot:next returns after the head. */
static int push_framing(lua_State *L, const lq_head *u) {
  unsigned f = u->h.flags;
  int keep = u->h.minor == 1 ? !(f & QN_HTTP_CLOSE) : ((f & QN_HTTP_KEEP_ALIVE) && !(f & QN_HTTP_CLOSE));
  lua_pushinteger(L, u->h.minor);
  lua_pushboolean(L, keep);
  lua_pushinteger(L, u->h.content_length);
  lua_pushboolean(L, (f & QN_HTTP_CHUNKED) != 0);
  lua_pushboolean(L, u->continue_due);
  lua_pushboolean(L, u->h.method_len == 4 && memcmp(u->bytes + u->h.method_off, "HEAD", 4) == 0);
  return 6;
}

static int name_eq(const char *a, size_t n, const char *b, size_t bn) {
  if (n != bn) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
    if (x >= 'A' && x <= 'Z') x = (unsigned char)(x + 32);
    if (y >= 'A' && y <= 'Z') y = (unsigned char)(y + 32);
    if (x != y) return 0;
  }
  return 1;
}

/* Push the values of fields named `name` in fs[0..n) of bytes b: joined
   with ", " (RFC 9110 5.3), or as a list; nil if none. */
static int push_values(lua_State *L, const qn_http_field *fs, size_t n, const char *b,
                       const char *name, size_t nlen, int list) {
  int count = 0;
  luaL_Buffer buf;
  if (list) lua_newtable(L);
  for (size_t i = 0; i < n; i++) {
    if (!name_eq(b + fs[i].name_off, fs[i].name_len, name, nlen)) continue;
    if (list) {
      lua_pushlstring(L, b + fs[i].value_off, fs[i].value_len);
      lua_rawseti(L, -2, ++count);
      continue;
    }
    if (count == 0) {
      luaL_buffinit(L, &buf);
    } else {
      luaL_addlstring(&buf, ", ", 2);
    }
    luaL_addlstring(&buf, b + fs[i].value_off, fs[i].value_len);
    count++;
  }
  if (list) return 1;
  if (count == 0) lua_pushnil(L);
  else luaL_pushresult(&buf);
  return 1;
}

/* header(name [, all]) -> the values joined, or a list with `all` */
static int l_header(lua_State *L) {
  lq_head *u = check_head(L, 1);
  size_t nlen;
  const char *name = luaL_checklstring(L, 2, &nlen);
  return push_values(L, u->fields, u->h.nfields, u->bytes, name, nlen, lua_toboolean(L, 3));
}

/* field(i) -> name (as sent), value; nothing past the last */
static int l_field(lua_State *L) {
  lq_head *u = check_head(L, 1);
  lua_Integer i = luaL_checkinteger(L, 2);
  if (i < 1 || (size_t)i > u->h.nfields) return 0;
  const qn_http_field *f = &u->fields[i - 1];
  lua_pushlstring(L, u->bytes + f->name_off, f->name_len);
  lua_pushlstring(L, u->bytes + f->value_off, f->value_len);
  return 2;
}

static int l_nfields(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check_head(L, 1)->h.nfields);
  return 1;
}

static int l_body_done(lua_State *L) {
  lua_pushboolean(L, check_head(L, 1)->phase == PHASE_DONE);
  return 1;
}

/* trailers() -> a table lower-case name -> value (joined), or nil */
static int l_trailers(lua_State *L) {
  check_head(L, 1);
  lua_getiuservalue(L, 1, 1);
  return 1;
}

/* ---- reading the body ---- */

/* The trailer section after the last chunk: 1 once taken (and stored), 0
   to wait, or a failure pushed (returns its count, negated, minus one). */
static int take_trailers(lua_State *L, lq_head *u, int head_idx, qn_stream *s, const char *d,
                         size_t len) {
  qn_http_field fs[QN_HTTP_FIELDS_MAX];
  size_t n, used;
  int r = qn_http_parse_trailers(d, len, fs, u->max_fields, &n, &used);
  if (r == QN_HTTP_E_PARTIAL) return len > 64 * 1024 ? -2 : 0;
  if (r != 0) return -2;
  if (n > 0) {
    lua_createtable(L, 0, (int)n);
    for (size_t i = 0; i < n; i++) {
      luaL_Buffer b;
      luaL_buffinit(L, &b);
      for (size_t k = 0; k < fs[i].name_len; k++) {
        char c = d[fs[i].name_off + k];
        luaL_addchar(&b, (char)(c >= 'A' && c <= 'Z' ? c + 32 : c));
      }
      luaL_pushresult(&b);
      lua_pushlstring(L, d + fs[i].value_off, fs[i].value_len);
      lua_rawset(L, -3);
    }
    lua_setiuservalue(L, head_idx, 1);
  }
  qn_stream_consume(s, used);
  u->phase = PHASE_DONE;
  return 1;
}

static int push_body_fail(lua_State *L, const char *msg, const char *code) {
  lua_pushnil(L);
  lua_pushstring(L, msg);
  lua_pushstring(L, code);
  return 3;
}

/* One step of reading the body of the head at head_idx from s: push the
   next bytes (a string, maybe "" when only framing was read), nil at its
   end, or nil, msg, code; -1 to wait for more bytes. */
static int body_step(lua_State *L, int head_idx, qn_stream *s, size_t max) {
  lq_head *u = lua_touserdata(L, head_idx);
  const char *d;
  size_t len, used;
  if (u->phase == PHASE_DONE) {
    lua_pushnil(L);
    return 1;
  }
  int r = qn_stream_peek(s, QN_STREAM_SOME, 0, &d, &len, &used);
  if (r == UV_EAGAIN) return -1;
  if (r == UV_EOF) return push_body_fail(L, "EOF: the connection ended inside the body", "EOF");
  if (r != 0) return lq_push_fail(L, r);
  if (u->phase == PHASE_TRAILERS) {
    int t = take_trailers(L, u, head_idx, s, d, len);
    if (t == 0) return -1;
    if (t < 0) return push_body_fail(L, "EPROTO: malformed or oversized trailers", "EPROTO");
    lua_pushnil(L);
    return 1;
  }
  if (u->left >= 0) {                         /* Content-Length */
    size_t k = len < max ? len : max;
    if ((uint64_t)k > (uint64_t)u->left) k = (size_t)u->left;
    if (u->taken + (int64_t)k > u->max_body)
      return push_body_fail(L, "EMSGSIZE: the request body is over its limit", "EMSGSIZE");
    lua_pushlstring(L, d, k);
    qn_stream_consume(s, k);
    u->left -= (int64_t)k;
    u->taken += (int64_t)k;
    if (u->left == 0) u->phase = PHASE_DONE;
    return 1;
  }
  /* chunked: decode a copy (the decoder works in place), take what it used */
  size_t in = len < max ? len : max, out = in, left = 0;
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, in);
  memcpy(p, d, in);
  r = qn_http_chunked_decode(u->dec, p, &out, &left);
  if (r == QN_HTTP_E_BAD) {
    luaL_pushresultsize(&b, 0);
    lua_pop(L, 1);
    return push_body_fail(L, "EPROTO: malformed chunked body", "EPROTO");
  }
  if (u->taken + (int64_t)out > u->max_body) {
    luaL_pushresultsize(&b, 0);
    lua_pop(L, 1);
    return push_body_fail(L, "EMSGSIZE: the request body is over its limit", "EMSGSIZE");
  }
  luaL_pushresultsize(&b, out);
  u->taken += (int64_t)out;
  qn_stream_consume(s, in - left);
  if (r == 0) {
    u->phase = PHASE_TRAILERS;
    if (out == 0) {                           /* nothing to return: go on with the trailers */
      lua_pop(L, 1);
      return body_step(L, head_idx, s, max);
    }
  }
  return 1;
}

static void body_check(lua_State *L, int op, lq_coro *c) {
  (void)c;
  lua_getiuservalue(L, op, 2);
  check_stream(L, -1, "quench.http.request:body");
  lua_pop(L, 1);
}

static qn_future *body_start(lua_State *L, int op, lq_coro *c) {
  (void)c;
  qn_stream *s = op_stream(L, op, 2);
  lua_getiuservalue(L, op, 1);
  lq_head *u = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (u->phase == PHASE_TRAILERS)             /* a trailer section needs more than any byte */
    return qn_stream_read_new(s, QN_STREAM_EXACT, qn_stream_buffered(s) + 1);
  return qn_stream_read_new(s, QN_STREAM_SOME, 0);
}

static int body_finish(lua_State *L, int op, qn_future *f) {
  (void)f;
  lq_op *o = lua_touserdata(L, op);
  qn_stream *s = op_stream(L, op, 2);
  lua_getiuservalue(L, op, 1);
  int h = lua_gettop(L);
  int n = body_step(L, h, s, (size_t)o->arg);
  if (n < 0) {                                /* framing only: say so with "" */
    lua_pushliteral(L, "");
    n = 1;
  }
  lua_rotate(L, h, n);
  lua_pop(L, 1);
  return n;
}

static const lq_op_kind body_kind = { "http body", body_check, body_start, body_finish, NULL };

/* head:body_op(stream, max) */
static int l_body_op(lua_State *L) {
  check_head(L, 1);
  check_stream(L, 2, "quench.http.head:body_op");
  lua_Integer max = luaL_checkinteger(L, 3);
  luaL_argcheck(L, max >= 1, 3, "must be at least 1");
  lq_op *o = lq_op_new(L, &body_kind, 2);
  o->arg = (uint64_t)max;
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, 2);
  return 1;
}

/* head:body_some(stream, max): what body_op gives, if it can without
   waiting; else false. The loop of a handler that reads a buffered
   body pays no op. */
static int l_body_some(lua_State *L) {
  check_head(L, 1);
  qn_stream *s = check_stream(L, 2, "quench.http.head:body_some");
  lua_Integer max = luaL_checkinteger(L, 3);
  luaL_argcheck(L, max >= 1, 3, "must be at least 1");
  lua_settop(L, 3);
  int n = body_step(L, 1, s, (size_t)max);
  if (n >= 0) return n;
  lua_pushboolean(L, 0);
  return 1;
}

/* ---- connections between requests, watched from C ---- */

/* Every connection of a server has an entry in the server's lot for its
   whole life, and no task of its own: between requests the entry's watch
   (a core head future, lua/http.c's one per connection) waits for a whole
   head, a limit, the end or the deadline (header_timeout for a new
   connection or a pipelined head, keepalive_timeout for an idle one);
   while a request is handled the same watch, switched in place, waits for
   the client to go away. The lot's one waiter, a task of the server
   (lot:next), is woken only when an entry's watch is ready, and is handed
   the connection with what happened: a head (taken here, with its framing,
   so the waiter spawns the handler's task at once), a bad head, a head cut
   short by the deadline, the end, or the client gone while its request is
   handled. So a request costs its handler's task and nothing more, and an
   idle connection costs the stream, its watch and this entry, as nginx
   parks one.

   The lot's user value 1 is a table of references (luaL_ref: integer keys
   reused, no rehash as connections come and go) to the connections'
   tables, each of which holds its stream: what keeps the stream alive.
   Its user value 2 is the heads' metatable. Lua knows an entry as a light userdata. A method given an entry checks it maps
   to the connection given with it, so a stale entry is never used. */
#define LQ_LOT "quench_internal.http_lot"

enum { AT_PARKED, AT_WOKEN, AT_READY, AT_HELD, AT_FRESH, AT_LISTS };

/* What lot:next hands back, with the connection. */
enum { NEXT_CLOSE, NEXT_HEAD, NEXT_LATE, NEXT_BAD, NEXT_GONE };

typedef struct lot_entry {
  qn_waker waker;           /* first: what the watch wakes */
  struct lot_entry *prev, *next;
  struct lq_lot *lot;
  qn_future *watch;         /* the head or gone watch; NULL once not needed */
  qn_stream *s;
  int result;               /* the watch's result, once ready */
  int ref;                  /* the connection's reference in the lot's user value */
  lua_Integer served;       /* requests whose head was taken (max_requests) */
  uint64_t deadline;        /* while in a deadline queue: when its head is late */
  struct lot_entry *dprev, *dnext;  /* its deadline queue's links, or NULL */
  uint8_t at, rewoken, busy;  /* busy: a request is being handled (a gone watch) */
  /* what the connection's minor, keep, is_head and continue_due fields
     hold as start_request last set them (at first as lua/quench/http.lua
     makes the table: 1, true, false, false): a field is set only when a
     head changes it (~150 instructions a field). Lua only ever sets keep
     (then the connection is closed, never parked) and continue_due to
     false, so continue_due is set again whenever either value is true */
  uint8_t minor, keep, is_head, continue_due;
} lot_entry;

typedef struct lq_lot {
  qn_future wait;           /* what lot:next awaits: the lot's own, dropping it drops nothing */
  qn_waker *waiter;         /* lot:next's task while it waits */
  lot_entry lists[AT_LISTS];  /* sentinels: watching, woken, ready, held (no watch),
                                 fresh (a gone watch not polled yet) */
  size_t n;
  int closed, waiting;
  int defer;                /* the wait's first poll: leave the fresh entries to the next */
  lq_runtime *rt;           /* the runtime of its entries' futures */
  lua_Alloc alloc;
  void *alloc_ud;
  uint64_t limits;          /* pack_limits of the server's max_line, max_head, max_headers */
  int64_t max_body;
  uint64_t header_ns, keepalive_ns;
  lua_Integer max_requests; /* per connection, 0: no limit */
  /* The heads' deadlines: two queues, header_timeout's and
     keepalive_timeout's, each in deadline order by construction (an entry
     joins at the tail with now + the queue's constant), and one timer for
     the earliest, armed only while lot:next waits: no timer per waiting
     head, and nothing to do per request but link and unlink. */
  lot_entry dq[2];          /* sentinels */
  qn_future *timer;         /* a sleep until timer_at, polled with the waiter's waker */
  uint64_t timer_at;
} lq_lot;

static void le_unlink(lot_entry *e) {
  e->prev->next = e->next;
  e->next->prev = e->prev;
}

static void le_push(lq_lot *lot, lot_entry *e, int at) {
  lot_entry *h = &lot->lists[at];
  e->prev = h->prev;
  e->next = h;
  h->prev->next = e;
  h->prev = e;
  e->at = (uint8_t)at;
}

static void le_move(lq_lot *lot, lot_entry *e, int at) {
  le_unlink(e);
  le_push(lot, e, at);
}

/* Leave the deadline queue (if in one). */
static void dq_unlink(lot_entry *e) {
  if (e->dnext == NULL) return;
  e->dprev->dnext = e->dnext;
  e->dnext->dprev = e->dprev;
  e->dprev = e->dnext = NULL;
}

static int dq_empty(const lq_lot *lot, int q) { return lot->dq[q].dnext == &lot->dq[q]; }

static void timer_drop(lq_lot *lot) {
  if (lot->timer == NULL) return;
  qn_drop(lot->timer);
  lot->timer = NULL;
}

/* Whether the earliest deadline is armed: a timer at it, polled with the
   waiter's waker (while lot:next waits); 1 if it has passed already. */
static int timer_arm(lq_lot *lot) {
  uint64_t at = QN_NEVER;
  for (int q = 0; q < 2; q++)
    if (!dq_empty(lot, q) && lot->dq[q].dnext->deadline < at) at = lot->dq[q].dnext->deadline;
  if (at == QN_NEVER || lot->waiter == NULL) {
    timer_drop(lot);
    return 0;
  }
  if (lot->timer != NULL && lot->timer_at == at) return 0;   /* polled when armed */
  timer_drop(lot);
  lot->timer = qn_sleep_new(lot->rt->core, at);
  if (lot->timer == NULL) return 1;           /* out of memory: look again at once */
  lot->timer_at = at;
  return qn_poll(lot->timer, lot->waiter) == QN_READY;
}

/* Join queue q (0: header_timeout, 1: keepalive_timeout) with deadline
   now + ns; a new earliest deadline re-arms the timer of a waiting lot. */
static void dq_push(lq_lot *lot, lot_entry *e, int q, uint64_t ns) {
  dq_unlink(e);
  e->deadline = lq_deadline_after(lot->rt, ns);
  lot_entry *h = &lot->dq[q];
  e->dprev = h->dprev;
  e->dnext = h;
  h->dprev->dnext = e;
  h->dprev = e;
  if (lot->waiter && (lot->timer == NULL || e->deadline < lot->timer_at) && timer_arm(lot))
    qn_wake(lot->waiter);
}

/* An entry whose connection a task answers and closes: no watch (its
   inner read would stand in the way of the task's reads). */
static void entry_hold(lq_lot *lot, lot_entry *e) {
  qn_drop(e->watch);
  e->watch = NULL;
  dq_unlink(e);
  le_move(lot, e, AT_HELD);
}

static int le_empty(const lq_lot *lot, int at) { return lot->lists[at].next == &lot->lists[at]; }

static void entry_wake(qn_waker *w) {
  lot_entry *e = (lot_entry *)w;
  lq_lot *lot = e->lot;
  if (e->at != AT_PARKED) {                   /* being polled: poll it again after */
    if (e->at == AT_WOKEN) e->rewoken = 1;
    return;
  }
  le_move(lot, e, AT_WOKEN);
  if (lot->waiter) qn_wake(lot->waiter);
}

/* Poll a woken entry's watch: ready, it moves to the ready list; pending,
   back to the watching one, unless its waker fired inside the poll
   (rewoken: it stays in the woken list, to be polled again). */
static void entry_repoll(lq_lot *lot, lot_entry *e) {
  e->rewoken = 0;
  if (qn_poll(e->watch, &e->waker) == QN_READY) {
    e->result = qn_http_head_result(e->watch);
    dq_unlink(e);
    le_move(lot, e, AT_READY);
  } else if (!e->rewoken) {
    le_move(lot, e, AT_PARKED);
  }
}

/* Poll the woken entries' watches. */
static void lot_sweep(lq_lot *lot) {
  while (!le_empty(lot, AT_WOKEN)) entry_repoll(lot, lot->lists[AT_WOKEN].next);
}

/* The entries whose head is late: ready, with ETIMEDOUT (their watch is
   left as it is: it is switched or dropped when the connection is taken). */
static void lot_expire(lq_lot *lot) {
  uint64_t now = 0;
  for (int q = 0; q < 2; q++) {
    while (!dq_empty(lot, q)) {
      lot_entry *e = lot->dq[q].dnext;
      if (now == 0) now = qn_now(lot->rt->core);
      if (e->deadline > now) break;
      dq_unlink(e);
      if (e->at == AT_PARKED || e->at == AT_WOKEN) {
        e->result = UV_ETIMEDOUT;
        le_move(lot, e, AT_READY);
      }
    }
  }
}

/* Poll one entry's watch now (a watch just set up or switched): ready, it
   goes to the ready list and the lot's waiter is woken (unless `quiet`:
   the waiter is the caller); else it waits in the watching list. No
   resume of the waiter just to register a watch. */
static void entry_poll(lq_lot *lot, lot_entry *e, int quiet) {
  le_move(lot, e, AT_WOKEN);
  entry_repoll(lot, e);
  if (e->at == AT_PARKED) return;             /* pending: nothing for the waiter yet */
  if (!quiet && lot->waiter) qn_wake(lot->waiter);
}

/* A request's gone watch is first polled after its handler's task has had
   its first turn: the wait's first poll (as lot:next starts to wait, the
   handlers just spawned not run yet) wakes the waiter again instead, so
   the next poll comes after them (the run queue is FIFO). A handler that
   answers without waiting hands its connection back before then, and its
   gone watch is never polled: two polls of a watch fewer per request. */
static void lot_poll_fresh(lq_lot *lot, qn_waker *wk) {
  if (le_empty(lot, AT_FRESH)) return;
  if (lot->defer) {
    lot->defer = 0;
    qn_wake(wk);
    return;
  }
  while (!le_empty(lot, AT_FRESH)) entry_poll(lot, lot->lists[AT_FRESH].next, 1);
}

static int lot_poll(qn_future *f, qn_waker *wk) {
  lq_lot *lot = (lq_lot *)f;
  if (lot->waiter != wk) timer_drop(lot);     /* armed with another waker */
  lot->waiter = wk;
  do {
    lot_poll_fresh(lot, wk);
    lot_sweep(lot);
    lot_expire(lot);
    if (lot->closed || !le_empty(lot, AT_READY)) return QN_READY;
  } while (timer_arm(lot));
  return QN_PENDING;
}

/* The timer is polled with the waiter's waker: it goes with the wait. */
static void lot_wait_drop(qn_future *f) {
  lq_lot *lot = (lq_lot *)f;
  timer_drop(lot);
  lot->waiter = NULL;
  lot->waiting = 0;
}

static const qn_future_vt lot_vt = { lot_poll, lot_wait_drop };

/* A lot's first word is its wait's vtable: its tag (no look-up by name
   on the per-request path). */
static lq_lot *check_lot(lua_State *L, int idx) {
  lq_lot *lot = lq_toudata(L, idx, &lot_vt, sizeof(lq_lot));
  if (lot == NULL) luaL_typeerror(L, idx, LQ_LOT);
  return lot;
}

static void entry_free(lq_lot *lot, lot_entry *e) {
  if (e->watch) qn_drop(e->watch);
  dq_unlink(e);
  le_unlink(e);
  lot->n--;
  lot->alloc(lot->alloc_ud, e, sizeof *e, 0);
}

/* Forget entry e (its reference in the table at t, the lot's user value). */
static void entry_forget(lua_State *L, lq_lot *lot, int t, lot_entry *e) {
  luaL_unref(L, t, e->ref);
  entry_free(lot, e);
}

/* Watch for the next head, in deadline queue q: 0 (header_timeout) if
   bytes of it are buffered already (a pipelined head), 1
   (keepalive_timeout) if the connection is idle. */
static void entry_watch_head(lq_lot *lot, lot_entry *e, int q) {
  qn_stream_shrink(e->s);                     /* idle: hold no read buffer meanwhile */
  qn_http_watch_head(e->watch, lim_line(lot->limits), lim_head(lot->limits), 0);
  e->busy = 0;
  dq_push(lot, e, q, q ? lot->keepalive_ns : lot->header_ns);
  entry_poll(lot, e, 0);
}

/* _lot(max_line, max_head, max_headers, max_body, header_timeout,
   keepalive_timeout, max_requests, run, Request, Response) -> a lot with
   the server's limits, which spawns run(req) for each head (start_request) */
static int l_lot(lua_State *L) {
  size_t max_line = check_size(L, 1, 16, 0xfffff);
  size_t max_head = check_size(L, 2, 16, 0xffffffff);
  size_t max_fields = check_size(L, 3, 1, QN_HTTP_FIELDS_MAX);
  lua_Integer max_body = luaL_checkinteger(L, 4);
  luaL_argcheck(L, max_body >= 0, 4, "must not be negative");
  uint64_t header_ns = lq_check_seconds(L, 5), keepalive_ns = lq_check_seconds(L, 6);
  lua_Integer max_requests = luaL_checkinteger(L, 7);
  luaL_argcheck(L, max_requests >= 0, 7, "must not be negative");
  luaL_checktype(L, 8, LUA_TFUNCTION);
  luaL_checktype(L, 9, LUA_TTABLE);
  luaL_checktype(L, 10, LUA_TTABLE);
  lq_lot *lot = lua_newuserdatauv(L, sizeof *lot, 5);
  memset(lot, 0, sizeof *lot);
  lot->wait.vt = &lot_vt;
  for (int i = 0; i < AT_LISTS; i++) lot->lists[i].prev = lot->lists[i].next = &lot->lists[i];
  for (int q = 0; q < 2; q++) lot->dq[q].dprev = lot->dq[q].dnext = &lot->dq[q];
  lot->alloc = lua_getallocf(L, &lot->alloc_ud);
  lot->limits = pack_limits(max_line, max_head, max_fields);
  lot->max_body = max_body;
  lot->header_ns = header_ns;
  lot->keepalive_ns = keepalive_ns;
  lot->max_requests = max_requests;
  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &head_tag);
  lua_setiuservalue(L, -2, 2);                /* the heads' metatable, at hand for take_head */
  for (int i = 8; i <= 10; i++) {             /* the request's task, its two metatables */
    lua_pushvalue(L, i);
    lua_setiuservalue(L, -2, i - 5);
  }
  luaL_setmetatable(L, LQ_LOT);
  return 1;
}

/* lot:add(conn, stream) -> entry (a light userdata), or nil, msg, code
   (out of memory; the stream is still the caller's). The connection's
   first head is watched for, within header_timeout. */
static int l_add(lua_State *L) {
  lq_lot *lot = check_lot(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  qn_stream *s = check_stream(L, 3, "quench.http._lot:add");
  lq_runtime *rt = lq_module_of(L)->rt;
  if (rt == NULL) return luaL_error(L, "quench.http._lot:add: outside quench.run");
  if (lot->closed) return luaL_error(L, "quench.http._lot:add: the lot is closed");
  if (lot->rt != NULL && lot->rt != rt)
    return luaL_error(L, "quench.http._lot:add: the lot belongs to another runtime");
  lot->rt = rt;
  lot_entry *e = lot->alloc(lot->alloc_ud, NULL, 0, sizeof *e);
  if (e == NULL) return lq_push_fail(L, UV_ENOMEM);
  memset(e, 0, sizeof *e);
  e->minor = e->keep = 1;                     /* as the connection's table is made */
  e->waker.wake = entry_wake;
  e->lot = lot;
  e->s = s;
  e->watch = qn_http_head_new(s, lim_line(lot->limits), lim_head(lot->limits), 0);
  if (e->watch == NULL) {
    lot->alloc(lot->alloc_ud, e, sizeof *e, 0);
    return lq_push_fail(L, UV_ENOMEM);
  }
  lua_getiuservalue(L, 1, 1);
  lua_pushvalue(L, 2);
  e->ref = luaL_ref(L, -2);
  lot->n++;
  le_push(lot, e, AT_PARKED);
  dq_push(lot, e, 0, lot->header_ns);
  entry_poll(lot, e, 0);
  lua_pushlightuserdata(L, e);
  return 1;
}

/* The entry at idx, or NULL for false (a connection the lot gave back).
   An entry lives until lot:remove, lot:close_idle or lot:close frees it,
   and the Lua side (lua/quench/http.lua, the lot's one user) sets a
   connection's entry to false as those return, so an entry it passes is
   alive: no look-up to check it on the per-request path. */
static lot_entry *check_entry(lua_State *L, int idx) {
  lot_entry *e = lua_touserdata(L, idx);
  if (e == NULL && lua_toboolean(L, idx)) luaL_typeerror(L, idx, "a connection's entry or false");
  return e;
}

/* lot:park(entry) -> true: the connection's request is done and it stays
   open: watch for its next head. false if the lot is closed or the entry
   false (the caller closes the connection). */
static int l_park(lua_State *L) {
  lq_lot *lot = check_lot(L, 1);
  lot_entry *e = check_entry(L, 2);
  if (e == NULL || lot->closed || e->watch == NULL) {
    lua_pushboolean(L, 0);
    return 1;
  }
  entry_watch_head(lot, e, qn_stream_buffered(e->s) > 0 ? 0 : 1);
  lua_pushboolean(L, 1);
  return 1;
}

/* lot:remove(entry): forget a connection being closed (its stream is the
   caller's to close); nothing for false. */
static int l_remove(lua_State *L) {
  lq_lot *lot = check_lot(L, 1);
  lot_entry *e = check_entry(L, 2);
  if (e != NULL) {
    lua_getiuservalue(L, 1, 1);
    entry_forget(L, lot, lua_gettop(L), e);
  }
  return 0;
}

/* A head is ready for connection t (at t+1: NEXT_HEAD, then the head and
   its framing as push_framing: minor, keep, content_length, chunked,
   expect_continue, is_head): set the connection's fields, make the
   request and the response and spawn the request's task, run(req), as
   the server's dispatcher did in Lua: no return to it, no eleven results,
   no Lua loop per head. The request's table has room for eight fields:
   its three and what a handler caches in it (path, query, method...)
   without a rehash (~1,300 instructions); the response's for four: its
   two and a header's two. Its fields are set before its metatable. */
static void start_request(lua_State *L, lq_lot *lot, lot_entry *e, int lot_idx, int t) {
  uint8_t minor = (uint8_t)lua_tointeger(L, t + 3), keep = (uint8_t)lua_toboolean(L, t + 4);
  uint8_t is_head = (uint8_t)lua_toboolean(L, t + 8), cont = (uint8_t)lua_toboolean(L, t + 7);
  if (minor != e->minor) {
    lua_pushvalue(L, t + 3);
    lua_setfield(L, t, "minor");
    e->minor = minor;
  }
  if (keep != e->keep) {
    lua_pushvalue(L, t + 4);
    lua_setfield(L, t, "keep");
    e->keep = keep;
  }
  if (is_head != e->is_head) {
    lua_pushvalue(L, t + 8);
    lua_setfield(L, t, "is_head");
    e->is_head = is_head;
  }
  if (cont || e->continue_due) {
    lua_pushvalue(L, t + 7);
    lua_setfield(L, t, "continue_due");
    e->continue_due = cont;
  }
  int drain = lua_tointeger(L, t + 5) > 0 || lua_toboolean(L, t + 6);
  lua_getiuservalue(L, lot_idx, 3);           /* run, at t + 9 */
  lua_createtable(L, 0, 8);                   /* the request, at t + 10 */
  lua_createtable(L, 0, 4);                   /* the response */
  lua_pushvalue(L, t);
  lua_setfield(L, -2, "_conn");
  lua_pushinteger(L, 0);
  lua_setfield(L, -2, "_hs");
  lua_getiuservalue(L, lot_idx, 5);
  lua_setmetatable(L, -2);
  lua_setfield(L, t + 10, "_res");
  lua_pushvalue(L, t + 2);
  lua_setfield(L, t + 10, "_head");
  lua_pushboolean(L, drain);
  lua_setfield(L, t + 10, "_drain");
  lua_getiuservalue(L, lot_idx, 4);
  lua_setmetatable(L, t + 10);
  lq_spawn_at(L, lot->rt, t + 9);             /* the task's handle */
  lua_setfield(L, t, "task");
}

/* Push what the first ready entry says, the connection first (see
   lot:next), after starting the request of each ready head; false when
   no entry is left, nil once the lot is closed. */
static int take_ready(lua_State *L, lq_lot *lot, int lot_idx) {
  for (;;) {
  if (le_empty(lot, AT_READY)) {              /* closed, or every head was started */
    if (lot->closed) lua_pushnil(L);
    else lua_pushboolean(L, 0);
    return 1;
  }
  lot_entry *e = lot->lists[AT_READY].next;
  lua_getiuservalue(L, lot_idx, 1);
  lua_rawgeti(L, -1, e->ref);                 /* the connection */
  lua_remove(L, -2);                          /* the table, now: nothing above it to move */
  int t = lua_gettop(L);                      /* the connection's index */
  int r = e->result;
  if (e->busy) {                              /* its client left while its request is handled */
    le_move(lot, e, AT_HELD);
    lua_pushinteger(L, NEXT_GONE);
    return 2;
  }
  if (r == 0 || qn_http_is_error(r)) {
    lua_pushinteger(L, NEXT_HEAD);
    int n = take_head(L, e->s, lot->limits, lot->max_body, lot_idx);
    if (n == 7 && ((lq_head *)lua_touserdata(L, -7))->h.content_length > lot->max_body) {
      lua_settop(L, t);                       /* a body over max_body: 413 */
      lua_pushinteger(L, NEXT_BAD);
      lua_pushinteger(L, 413);
      lua_pushliteral(L, "request body over the limit");
      entry_hold(lot, e);
      return 4;
    }
    if (n == 7) {                             /* a head: watch for the client leaving meanwhile */
      if (lot->max_requests > 0 && ++e->served >= lot->max_requests) {
        lua_pushboolean(L, 0);                /* the last one: keep is false */
        lua_replace(L, -6);
      }
      qn_http_watch_gone(e->watch, lim_head(lot->limits));
      e->busy = 1;
      le_move(lot, e, AT_FRESH);              /* polled once its handler has run (lot_poll) */
      start_request(L, lot, e, lot_idx, t);
      lua_settop(L, t - 1);
      continue;                               /* the next ready entry, without a return to Lua */
    }
    if (n == 3 && lua_type(L, -3) == LUA_TBOOLEAN) {   /* false, status, msg */
      lua_pushinteger(L, NEXT_BAD);
      lua_replace(L, -5);
      lua_remove(L, -3);                      /* conn, 3, status, msg */
      entry_hold(lot, e);
      return 4;
    }
    lua_pop(L, n < 0 ? 1 : n + 1);            /* a failure, or no head after all: close */
  } else if (r == UV_ETIMEDOUT && qn_stream_buffered(e->s) > 0) {
    entry_hold(lot, e);                       /* keepalive_timeout inside a head: 408 */
    lua_pushinteger(L, NEXT_LATE);
    return 2;
  }
  entry_hold(lot, e);                         /* EOF, an error, idle too long: the caller closes */
  lua_pushinteger(L, NEXT_CLOSE);
  return 2;
  }
}

static void lot_check(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)op, (void)c;
  if (((lq_lot *)obj)->waiting) luaL_error(L, "quench.http._lot:next: another task waits on it");
}

static int lot_now(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)op, (void)c;
  lq_lot *lot = obj;
  lot_sweep(lot);
  lot_expire(lot);
  if (lot->closed || !le_empty(lot, AT_READY)) return take_ready(L, lot, 1);
  return -1;
}

static qn_future *lot_start(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)L, (void)op, (void)c;
  lq_lot *lot = obj;
  lot->waiting = 1;
  lot->defer = 1;
  return &lot->wait;
}

static int lot_finish(lua_State *L, void *obj, int op, qn_future *f) {
  (void)op, (void)f;
  return take_ready(L, obj, 1);
}

static const lq_obj_kind lot_kind = LQ_OBJ_KIND("http connections", lot_check, lot_start,
                                                lot_finish, lot_now);
LQ_OBJ_PERFORM_K(lot_next_k, lot_kind)

/* lot:next() -> conn, what: the next connection whose watch is ready,
   once each ready head has its request's task (start_request: a head is
   never returned). what: 2 (keepalive_timeout inside a head: answer 408),
   3 (a bad head: then status, message), 4 (the client left while its
   request is handled), 0 (EOF, an error, idle past keepalive_timeout:
   close it). false when only heads were ready (call it again to wait);
   nil once the lot is closed. */
static int l_lot_next(lua_State *L) {
  lq_lot *lot = check_lot(L, 1);
  lq_coro *c = lq_await_ctx(L, "quench.http._lot:next");
  lua_settop(L, 1);
  return lq_obj_perform(L, c, &lot_kind, lot, "quench.http._lot:next", NULL, lot_next_k);
}

/* lot:close_idle() -> the connections with no request being handled (the
   caller sets their entries to false and closes them); the lot frees their
   entries. */
static int l_close_idle(lua_State *L) {
  lq_lot *lot = check_lot(L, 1);
  lua_settop(L, 1);
  lua_newtable(L);
  lua_getiuservalue(L, 1, 1);
  int k = 0;
  for (int i = 0; i < AT_LISTS; i++)
    for (lot_entry *e = lot->lists[i].next, *nx; e != &lot->lists[i]; e = nx) {
      nx = e->next;
      if (e->busy || i == AT_HELD) continue;
      lua_rawgeti(L, 3, e->ref);
      lua_rawseti(L, 2, ++k);
      entry_forget(L, lot, 3, e);
    }
  lua_pop(L, 1);
  return 1;
}

/* Drop every entry and the timer; push nothing. */
static void lot_clear(lq_lot *lot) {
  timer_drop(lot);
  for (int i = 0; i < AT_LISTS; i++)
    while (!le_empty(lot, i)) entry_free(lot, lot->lists[i].next);
}

/* lot:close() -> the connections it held (the caller sets their entries
   to false and closes them); a waiting lot:next returns nil. */
static int l_lot_close(lua_State *L) {
  lq_lot *lot = check_lot(L, 1);
  lua_createtable(L, (int)lot->n, 0);
  int k = 0;
  lua_getiuservalue(L, 1, 1);
  for (int i = 0; i < AT_LISTS; i++)
    for (lot_entry *e = lot->lists[i].next; e != &lot->lists[i]; e = e->next) {
      lua_rawgeti(L, -1, e->ref);
      lua_rawseti(L, -3, ++k);
    }
  lua_pop(L, 1);
  lot_clear(lot);
  lua_newtable(L);
  lua_setiuservalue(L, 1, 1);
  lot->closed = 1;
  if (lot->waiter) qn_wake(lot->waiter);
  return 1;
}

/* lot:count() -> connections it holds */
static int l_lot_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check_lot(L, 1)->n);
  return 1;
}

/* The server closes its lot before quench.run returns (serve's guard);
   this is for a lot dropped without it, which then holds no entry. */
static int l_lot_gc(lua_State *L) {
  lq_lot *lot = check_lot(L, 1);
  if (lq_module_of(L)->rt == lot->rt) lot_clear(lot);
  return 0;
}

/* ---- the response head ---- */

/* The Date field's value, made at most once a second: a per-module cache
   (the upvalue of _send_head), not a global. */
typedef struct lq_date {
  time_t sec;
  char text[40];
  size_t len;
} lq_date;

static void date_now(lq_date *d) {
  time_t now = time(NULL);
  if (now == d->sec && d->len > 0) return;
  struct tm tm;
  gmtime_r(&now, &tm);
  d->len = strftime(d->text, sizeof d->text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  d->sec = now;
}

/* A growing response head: on the C stack up to its size, then in a Lua
   buffer (a long body passed with it). */
typedef struct head_buf {
  char *p;
  size_t len, cap;
  luaL_Buffer *lb;          /* set once spilled */
} head_buf;

static void hb_add(lua_State *L, head_buf *b, const char *s, size_t n) {
  if (b->lb == NULL && b->len + n <= b->cap) {
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return;
  }
  (void)L;
  luaL_addlstring(b->lb, s, n);
}

static void hb_spill(lua_State *L, head_buf *b, luaL_Buffer *lb, size_t need) {
  luaL_buffinitsize(L, lb, b->len + need);
  luaL_addlstring(lb, b->p, b->len);
  b->lb = lb;
}

static size_t fmt_uint(char *out, uint64_t v, int hex) {
  char tmp[24];
  size_t n = 0;
  unsigned base = hex ? 16 : 10;
  do {
    tmp[n++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v > 0);
  for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
  return n;
}

enum { HEAD_STACK = 16 * 1024 };

/* _send_head(stream, status_line, date, fields, length, conn, first, chunked):
   write a response head and the first piece of body with one write,
   assembled here rather than by Lua concatenation. status_line is
   "HTTP/1.1 200 OK\r\nDate: "; date a string or false (the server's, cached
   per second, in the closure's upvalue 2); fields "Name: value\r\n"... or false; length >= 0 gives
   Content-Length, -1 Transfer-Encoding: chunked, -2 neither; conn 1 adds
   "Connection: close", 2 "Connection: keep-alive"; first (or false) is
   sent as a chunk when chunked. Returns true; false and the whole string
   when the stream's queue is full (the caller waits with stream:write);
   or nil, msg, code. Never waits, so never raises Cancelled. */
static int l_send_head(lua_State *L) {
  qn_stream *s = check_stream(L, 1, "quench.http._send_head");
  size_t sl_len, date_len = 0, fields_len = 0, first_len = 0;
  const char *sl = luaL_checklstring(L, 2, &sl_len);
  const char *date = lua_isstring(L, 3) ? lua_tolstring(L, 3, &date_len) : NULL;
  const char *fields = lua_isstring(L, 4) ? lua_tolstring(L, 4, &fields_len) : NULL;
  lua_Integer length = luaL_checkinteger(L, 5);
  lua_Integer conn = luaL_checkinteger(L, 6);
  const char *first = lua_isstring(L, 7) ? lua_tolstring(L, 7, &first_len) : NULL;
  int chunked = lua_toboolean(L, 8);
  if (date == NULL) {
    lq_date *d = lua_touserdata(L, lua_upvalueindex(2));
    date_now(d);
    date = d->text;
    date_len = d->len;
  }
  char stack[HEAD_STACK];
  head_buf b = { stack, 0, sizeof stack, NULL };
  luaL_Buffer lb;
  /* everything but the body is bounded by what Lua passed plus ~100 */
  size_t fixed = sl_len + date_len + fields_len + 128;
  if (fixed + first_len > sizeof stack) {
    lua_settop(L, 8);
    hb_spill(L, &b, &lb, fixed + first_len);
  }
  char num[48];
  hb_add(L, &b, sl, sl_len);
  hb_add(L, &b, date, date_len);
  hb_add(L, &b, "\r\n", 2);
  if (fields) hb_add(L, &b, fields, fields_len);
  if (length >= 0) {
    hb_add(L, &b, "Content-Length: ", 16);
    hb_add(L, &b, num, fmt_uint(num, (uint64_t)length, 0));
    hb_add(L, &b, "\r\n", 2);
  } else if (length == -1) {
    hb_add(L, &b, "Transfer-Encoding: chunked\r\n", 28);
  }
  if (conn == 1) hb_add(L, &b, "Connection: close\r\n", 19);
  else if (conn == 2) hb_add(L, &b, "Connection: keep-alive\r\n", 24);
  hb_add(L, &b, "\r\n", 2);
  if (first != NULL && first_len > 0) {
    if (chunked) {
      size_t k = fmt_uint(num, first_len, 1);
      num[k++] = '\r';
      num[k++] = '\n';
      hb_add(L, &b, num, k);
    }
    hb_add(L, &b, first, first_len);
    if (chunked) hb_add(L, &b, "\r\n", 2);
  }
  const char *data = b.p;
  size_t len = b.len;
  if (b.lb != NULL) {
    luaL_pushresult(&lb);
    data = lua_tolstring(L, -1, &len);
  }
  int r = qn_stream_write(s, data, len);
  if (r == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (r != UV_EAGAIN) return lq_stream_fail(L, s, r);
  if (b.lb == NULL) lua_pushlstring(L, data, len);
  lua_pushboolean(L, 0);
  lua_insert(L, -2);
  return 2;
}

/* _field(name, value) -> kind[, line]: Response:header's check of a field
   and its line, in C: Lua patterns over the name and the value cost ~6,700
   instructions a field. nil: name is not a token (a string of tchar,
   RFC 9110); false: value is not a string, or holds CR, LF or NUL; else
   kind 0 and "name: value\r\n", or the kind of a field the server handles
   itself: 1 Content-Length, 2 Transfer-Encoding, 3 Connection, 4 Date. */
static int is_tchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return 1;
  return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int name_is(const char *n, size_t len, const char *lower) {
  if (strlen(lower) != len) return 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)n[i];
    if (c >= 'A' && c <= 'Z') c = (unsigned char)(c + ('a' - 'A'));
    if (c != (unsigned char)lower[i]) return 0;
  }
  return 1;
}

static int l_resp_field(lua_State *L) {
  size_t nlen, vlen;
  if (lua_type(L, 1) != LUA_TSTRING) {
    lua_pushnil(L);
    return 1;
  }
  const char *name = lua_tolstring(L, 1, &nlen);
  for (size_t i = 0; i < nlen; i++)
    if (!is_tchar((unsigned char)name[i])) nlen = 0;
  if (nlen == 0) {
    lua_pushnil(L);
    return 1;
  }
  if (lua_type(L, 2) != LUA_TSTRING) {
    lua_pushboolean(L, 0);
    return 1;
  }
  const char *value = lua_tolstring(L, 2, &vlen);
  if (memchr(value, '\r', vlen) || memchr(value, '\n', vlen) || memchr(value, '\0', vlen)) {
    lua_pushboolean(L, 0);
    return 1;
  }
  int kind = name_is(name, nlen, "content-length") ? 1
           : name_is(name, nlen, "transfer-encoding") ? 2
           : name_is(name, nlen, "connection") ? 3
           : name_is(name, nlen, "date") ? 4 : 0;
  lua_pushinteger(L, kind);
  if (kind != 0) return 1;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, name, nlen);
  luaL_addlstring(&b, ": ", 2);
  luaL_addlstring(&b, value, vlen);
  luaL_addlstring(&b, "\r\n", 2);
  luaL_pushresult(&b);
  return 2;
}

/* ---- registration ---- */

static const luaL_Reg head_methods[] = {
  {"method", l_method}, {"target", l_target}, {"raw_target", l_raw_target},
  {"header", l_header}, {"field", l_field}, {"nfields", l_nfields},

  {"body_done", l_body_done}, {"trailers", l_trailers}, {"body_op", l_body_op},
  {"body_some", l_body_some}, {NULL, NULL}
};

static const luaL_Reg lot_methods[] = {
  {"add", l_add}, {"park", l_park}, {"remove", l_remove}, {"next", l_lot_next},
  {"close_idle", l_close_idle}, {"close", l_lot_close}, {"count", l_lot_count}, {NULL, NULL}
};

static const luaL_Reg lot_meta[] = { {"__gc", l_lot_gc}, {NULL, NULL} };

static const luaL_Reg functions[] = {
  {"_lot", l_lot}, {"_field", l_resp_field},
  {NULL, NULL}
};

void lq_http_register(lua_State *L, int mod) {
  lq_class(L, mod, LQ_HEAD, head_methods, NULL);
  luaL_getmetatable(L, LQ_HEAD);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &head_tag);
  lq_class(L, mod, LQ_LOT, lot_methods, lot_meta);
  lua_newtable(L);
  lua_pushvalue(L, mod);
  luaL_setfuncs(L, functions, 1);
  lua_pushvalue(L, mod);                      /* upvalue 1: the module, as every binding function */
  lq_date *d = lua_newuserdatauv(L, sizeof *d, 0);
  memset(d, 0, sizeof *d);
  lua_pushcclosure(L, l_send_head, 2);
  lua_setfield(L, -2, "_send_head");
  lua_setfield(L, -2, "http");
}
