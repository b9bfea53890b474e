/*
** HTTP/1.x parsing for quench.http (lua/quench/http.lua), over core/http.c:
** the request head ("quench.http.head"), the body reads and the response
** head's writer, all on a TCP, TLS, Unix stream or a pipe. The server's
** lot of connections, which takes the heads, is lua/http_lot.c.
**
** A head userdata holds a copy of the head's bytes and the offsets of its
** fields; a Lua string is made only for what is asked for (method, target,
** one header...). The body's framing state (bytes left, the chunked
** decoder) lives in the head too, and its trailers, once read, in its user
** value 1.
**
** The wait: `head:body_op(stream, max)` is an op, for quench.timeout,
** and `head:body_some` its no-wait fast path.
**
** Cancel safety: nothing is consumed until a wait's results are made (in
** the step its task resumes in), so a dropped body read loses no byte.
*/
#include <stdint.h>
#include <string.h>
#include <time.h>
#include "http.h"

/* Not "quench.*": the head is the server's, never handed to a user. */
#define LQ_HEAD "quench_internal.http_head"

enum { PHASE_BODY, PHASE_TRAILERS, PHASE_DONE };

const char lq_http_head_tag = 0;

static lq_head *check_head(lua_State *L, int idx) {
  lq_head *u = lq_toudata(L, idx, &lq_http_head_tag, sizeof(lq_head));
  if (u == NULL) luaL_typeerror(L, idx, LQ_HEAD);
  return u;
}

/* The core stream of a TCP, TLS, Unix or pipe stream at idx, open, or raise. */
qn_stream *lq_http_check_stream(lua_State *L, int idx, const char *fname) {
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
uint64_t lq_http_pack_limits(size_t max_line, size_t max_head, size_t max_fields) {
  return (uint64_t)max_head | ((uint64_t)max_line << 32) | ((uint64_t)max_fields << 52);
}
size_t lq_http_lim_head(uint64_t ns) { return (size_t)(ns & 0xffffffffu); }
size_t lq_http_lim_line(uint64_t ns) { return (size_t)((ns >> 32) & 0xfffffu); }
static size_t lim_fields(uint64_t ns) { return (size_t)(ns >> 52); }

static int push_framing(lua_State *L, const lq_head *u);

/* Parse what the stream holds: push a head and its framing (consuming its bytes),
   false, status, msg, or nil, msg, code; -1 if it must wait. */
int lq_http_take_head(lua_State *L, qn_stream *s, uint64_t ns, int64_t max_body, int lot_idx,
                      size_t known_end) {
  const char *d;
  size_t len, used, end = known_end;
  int r = qn_stream_peek(s, QN_STREAM_SOME, 0, &d, &len, &used);
  if (r == UV_EAGAIN) return -1;
  if (r != 0) return lq_push_fail(L, r);
  if (known_end == 0 || known_end > len)      /* not found by the watch: scan */
    r = qn_http_head_scan(d, len, 0, lq_http_lim_line(ns), lq_http_lim_head(ns), &end);
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
  u->tag = &lq_http_head_tag;
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
  lq_http_check_stream(L, -1, "quench.http.request:body");
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
  lq_http_check_stream(L, 2, "quench.http.head:body_op");
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
  qn_stream *s = lq_http_check_stream(L, 2, "quench.http.head:body_some");
  lua_Integer max = luaL_checkinteger(L, 3);
  luaL_argcheck(L, max >= 1, 3, "must be at least 1");
  lua_settop(L, 3);
  int n = body_step(L, 1, s, (size_t)max);
  if (n >= 0) return n;
  lua_pushboolean(L, 0);
  return 1;
}

/* ---- the response head ---- */

static void date_now(lq_http_date *d) {
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

int lq_http_send_head(lua_State *L, qn_stream *s, lq_http_date *d, const lq_http_head_out *o) {
  const char *date = o->date;
  size_t date_len = o->date_len;
  if (date == NULL) {
    date_now(d);
    date = d->text;
    date_len = d->len;
  }
  char stack[HEAD_STACK];
  head_buf b = { stack, 0, sizeof stack, NULL };
  luaL_Buffer lb;
  /* everything but the body is bounded by what Lua passed plus ~100 */
  size_t fixed = o->status_len + date_len + o->fields_len + 128;
  if (fixed + o->first_len > sizeof stack) hb_spill(L, &b, &lb, fixed + o->first_len);
  char num[48];
  hb_add(L, &b, o->status_line, o->status_len);
  hb_add(L, &b, date, date_len);
  hb_add(L, &b, "\r\n", 2);
  if (o->fields) hb_add(L, &b, o->fields, o->fields_len);
  if (o->length >= 0) {
    hb_add(L, &b, "Content-Length: ", 16);
    hb_add(L, &b, num, fmt_uint(num, (uint64_t)o->length, 0));
    hb_add(L, &b, "\r\n", 2);
  } else if (o->length == -1) {
    hb_add(L, &b, "Transfer-Encoding: chunked\r\n", 28);
  }
  if (o->conn == 1) hb_add(L, &b, "Connection: close\r\n", 19);
  else if (o->conn == 2) hb_add(L, &b, "Connection: keep-alive\r\n", 24);
  hb_add(L, &b, "\r\n", 2);
  if (o->first != NULL && o->first_len > 0) {
    if (o->chunked) {
      size_t k = fmt_uint(num, o->first_len, 1);
      num[k++] = '\r';
      num[k++] = '\n';
      hb_add(L, &b, num, k);
    }
    hb_add(L, &b, o->first, o->first_len);
    if (o->chunked) hb_add(L, &b, "\r\n", 2);
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

/* _send_head(stream, status_line, date, fields, length, conn, first, chunked):
   write a response head and the first piece of body with one write,
   assembled here rather than by Lua concatenation (lq_http_send_head).
   status_line is "HTTP/1.1 200 OK\r\nDate: "; date a string or false (the
   server's, cached per second, in the closure's upvalue 2); fields
   "Name: value\r\n"... or false; length >= 0 gives Content-Length, -1
   Transfer-Encoding: chunked, -2 neither; conn 1 adds "Connection: close",
   2 "Connection: keep-alive"; first (or false) is sent as a chunk when
   chunked. Returns true; false and the whole string when the stream's
   queue is full (the caller waits with stream:write); or nil, msg, code.
   Never waits, so never raises Cancelled. */
static int l_send_head(lua_State *L) {
  lq_http_head_out o;
  qn_stream *s = lq_http_check_stream(L, 1, "quench.http._send_head");
  o.status_line = luaL_checklstring(L, 2, &o.status_len);
  o.date_len = o.fields_len = o.first_len = 0;
  o.date = lua_isstring(L, 3) ? lua_tolstring(L, 3, &o.date_len) : NULL;
  o.fields = lua_isstring(L, 4) ? lua_tolstring(L, 4, &o.fields_len) : NULL;
  o.length = luaL_checkinteger(L, 5);
  o.conn = (int)luaL_checkinteger(L, 6);
  o.first = lua_isstring(L, 7) ? lua_tolstring(L, 7, &o.first_len) : NULL;
  o.chunked = lua_toboolean(L, 8);
  lua_settop(L, 8);                           /* a spilled head's buffer goes above */
  return lq_http_send_head(L, s, lua_touserdata(L, lua_upvalueindex(2)), &o);
}

/* ---- the request's fields ---- */

/* Request.__index(req, k), in C: a method of the Request table (upvalue
   1); the fields made from the head (method, path, query, target) pushed
   from its bytes and cached in req (path and query together, as one
   split of the target); any other field from the Lua getters (upvalue 2),
   cached but for trailers (they come once the body is read). In Lua this
   was a call of __index, one of the getter, one of the head's method and
   one of rawset: ~1,000 instructions a field a handler reads. */
static int request_index(lua_State *L) {
  lua_settop(L, 2);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;   /* a method */
  lua_pop(L, 1);
  size_t n = 0;
  const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &n) : NULL;
  if (k != NULL && lua_istable(L, 1) && (n == 4 || n == 5 || n == 6)) {
    int is_method = n == 6 && memcmp(k, "method", 6) == 0;
    int is_target = n == 6 && memcmp(k, "target", 6) == 0;
    int is_path = n == 4 && memcmp(k, "path", 4) == 0;
    int is_query = n == 5 && memcmp(k, "query", 5) == 0;
    if (is_method || is_target || is_path || is_query) {
      lua_rawgeti(L, 1, REQ_HEAD);
      lq_head *u = check_head(L, 3);
      const char *t = u->bytes + u->h.target_off;
      if (is_method) {
        lua_pushlstring(L, u->bytes + u->h.method_off, u->h.method_len);
      } else if (is_target) {
        lua_pushlstring(L, t, u->h.target_len);
      } else {
        const char *q = memchr(t, '?', u->h.target_len);
        size_t plen = q ? (size_t)(q - t) : u->h.target_len;
        lua_pushliteral(L, "path");
        lua_pushlstring(L, t, plen);
        lua_rawset(L, 1);
        lua_pushliteral(L, "query");
        if (q) lua_pushlstring(L, q + 1, u->h.target_len - plen - 1);
        else lua_pushliteral(L, "");
        lua_rawset(L, 1);
        lua_pushvalue(L, 2);
        lua_rawget(L, 1);
        return 1;
      }
      lua_pushvalue(L, 2);
      lua_pushvalue(L, -2);
      lua_rawset(L, 1);
      return 1;
    }
  }
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(2)) == LUA_TNIL) return 1;   /* no such field: nil */
  lua_pushvalue(L, 1);
  lua_call(L, 1, 1);
  if (k != NULL && !(n == 8 && memcmp(k, "trailers", 8) == 0)) {
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -2);
    lua_rawset(L, 1);
  }
  return 1;
}

/* _request_index(Request, getters) -> Request.__index. */
static int l_request_index(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  lua_pushcclosure(L, request_index, 2);
  return 1;
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

static const luaL_Reg functions[] = {
  {"_field", l_resp_field},
  {"_request_index", l_request_index},
  {NULL, NULL}
};

void lq_http_register(lua_State *L, int mod) {
  lq_class(L, mod, LQ_HEAD, head_methods, NULL);
  luaL_getmetatable(L, LQ_HEAD);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &lq_http_head_tag);
  lua_newtable(L);
  lua_pushvalue(L, mod);
  luaL_setfuncs(L, functions, 1);
  lua_pushvalue(L, mod);                      /* upvalue 1: the module, as every binding function */
  lq_http_date *d = lua_newuserdatauv(L, sizeof *d, 0);
  memset(d, 0, sizeof *d);
  lua_pushcclosure(L, l_send_head, 2);
  lua_setfield(L, -2, "_send_head");
  lua_setfield(L, -2, "http");
}
