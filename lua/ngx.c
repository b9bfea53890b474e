/* The C helpers of quench.ngx (lua/quench/ngx.lua), as quench._ngx:
   the ngx.null sentinel, which only C can make (a light userdata, NULL, as
   OpenResty's and cjson's), the digests OpenResty code calls (md5, sha1)
   from OpenSSL's libcrypto rather than hand-written ones, and the wall
   clock with sub-second precision (ngx.now), which Lua's os.time lacks;
   and the cosocket's methods receive and send, whose fast paths (receive
   from the buffer or one wait with its own deadline, send below the write
   limit) are one C call where the Lua path made a dozen.
   Internal: the underscore keeps it out of the public API. */
#include <string.h>
#include <time.h>
#include <openssl/evp.h>
#include "stream.h"

/* One-shot digest of the string argument; hex when asked for. */
static int digest(lua_State *L, const EVP_MD *md, const char *fname, int hex) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (md == NULL || EVP_Digest(s, len, out, &n, md, NULL) != 1)
    return luaL_error(L, "%s: libcrypto could not compute the digest", fname);
  if (!hex) {
    lua_pushlstring(L, (const char *)out, n);
    return 1;
  }
  static const char digits[] = "0123456789abcdef";
  char buf[2 * EVP_MAX_MD_SIZE];
  for (unsigned int i = 0; i < n; i++) {
    buf[2 * i] = digits[out[i] >> 4];
    buf[2 * i + 1] = digits[out[i] & 15];
  }
  lua_pushlstring(L, buf, 2 * (size_t)n);
  return 1;
}

static int l_md5(lua_State *L) { return digest(L, EVP_md5(), "ngx.md5", 1); }
static int l_md5_bin(lua_State *L) { return digest(L, EVP_md5(), "ngx.md5_bin", 0); }
static int l_sha1_bin(lua_State *L) { return digest(L, EVP_sha1(), "ngx.sha1_bin", 0); }

/* Seconds since the epoch, with the sub-second part (CLOCK_REALTIME). */
static int l_wall(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  return 1;
}


/* table.new(narray, nhash): LuaJIT's preallocated table, which OpenResty
   drivers ask for with pcall(require, "table.new") and otherwise replace
   with {} (growing it one rehash at a time). */
static int l_new_tab(lua_State *L) {
  /* lua_isinteger first: luaL_checkinteger twice was a tenth of the call
     (resty.redis makes a table with it on every command) */
  lua_Integer na = lua_isinteger(L, 1) ? lua_tointeger(L, 1) : luaL_checkinteger(L, 1);
  lua_Integer nh = lua_isinteger(L, 2) ? lua_tointeger(L, 2) : luaL_checkinteger(L, 2);
  luaL_argcheck(L, na >= 0 && na <= (1 << 26), 1, "size out of range");
  luaL_argcheck(L, nh >= 0 && nh <= (1 << 26), 2, "size out of range");
  lua_createtable(L, (int)na, (int)nh);
  return 1;
}

/* ---- the cosocket's fast paths ----
   Each takes the socket table (a Tcp of quench.ngx, whose metatable is
   upvalue 2; upvalue 1 is the module, as for every binding function, 3
   and 4 the names of the fields used: waiting, read_timeout, 5, 6 the Lua
   general path and receive's result maker, 7, 8 the strings "done" and
   "\r\n", and 9 a guard that lets go: see l_fast; `busy` is the socket's
   slot 2)
   and does its whole job when nothing has to wait and nothing is unusual;
   otherwise it returns nothing and changes nothing, and the Lua method
   takes its general path (argument errors, waits, timeouts, EOF, errors,
   the bytes receiveuntil left over, a socket left busy by a dropped wait).
   So they add no behaviour: they only skip work.
   What they read of the socket is one array slot, self[1]: the stream
   while the socket is connected, not in a wait of the Lua path and without
   read-ahead, false otherwise (ngx.lua keeps it so: `idle`, `enter`,
   `drop`). Three hashed reads (busy, pending, s) on every call cost four
   times as much. The C wait (fast_wait) leaves self[1] as it is: while
   its read is pending, the stream has a reader, and both fast paths
   decline on that (the general path then finds `busy` set). */
enum { UP_WAITING = 3, UP_READ_TIMEOUT, UP_SLOW, UP_AFTER, UP_DONE, UP_CRLF, UP_NOCLOSE };

/* The usable core stream in the socket at 1 (its slot 1), or NULL when
   the general path must decide: not a Tcp, not idle and connected, or the
   stream closed or its runtime gone. Called with 2 values on the stack; it
   leaves the socket's metatable at 3 (not popped: a lua_settop call less)
   and, when it gets that far, self[1] at 4. */
static lq_stream *fast_stream(lua_State *L) {
  if (!lua_getmetatable(L, 1)) return NULL;
  /* the same table: compared by address (lua_rawequal costs twice this) */
  if (lua_topointer(L, 3) != lua_topointer(L, lua_upvalueindex(2))) return NULL;
  lua_rawgeti(L, 1, 1);
  lq_stream *u = lq_toudata(L, -1, &lq_tcp_stream_class, sizeof(lq_stream));
  if (u == NULL) u = lq_toudata(L, -1, &lq_unix_stream_class, sizeof(lq_stream));
  if (u == NULL) u = lq_toudata(L, -1, &lq_tls_stream_class, sizeof(lq_stream));
  if (u == NULL || u->s == NULL || !lq_alive(L, u->serial) || qn_stream_is_closed(u->s))
    return NULL;
  return u;
}

static int fast_wait(lua_State *L, lq_stream *u, qn_stream_mode mode, size_t n);

/* (fast_stream leaves the stream it read, self[1], on top: at 4 in
   l_fast_receive, where fast_wait keeps it as FW_STREAM) */

/* receive(self, pattern): a line (nil or "*l", without "\r\n" or "\n") or
   a count (a number or a numeric string, > 0) that is buffered whole. When
   the pattern is one of those and the socket is usable but the bytes have
   not all arrived, it waits for them here (fast_wait, below): the bytes,
   or at the read timeout, on EOF or an error, the results ngx.lua's
   after_receive makes (OpenResty's: nil, "timeout", partial with the
   socket left open; nil, msg, partial with it closed). */
static int l_fast_receive(lua_State *L) {
  qn_stream_mode mode;
  size_t n = 0;
  int t = lua_type(L, 2);
  if (t == LUA_TNONE || t == LUA_TNIL) {
    mode = QN_STREAM_LINE_KEEP;
  } else if (t == LUA_TSTRING && strcmp(lua_tostring(L, 2), "*l") == 0) {
    mode = QN_STREAM_LINE_KEEP;
  } else if (t == LUA_TNUMBER) {
    /* a count as drivers compute it: an integer (or a float with an
       integral value, which is the same count); one call for both the
       test and the value */
    int isint;
    lua_Integer i = lua_tointegerx(L, 2, &isint);
    if (isint) {
      if (i < 1 || i > (lua_Integer)1e15) return 0;
      mode = QN_STREAM_EXACT;
      n = (size_t)i;
    } else {
      lua_Number x = lua_tonumber(L, 2);
      if (!(x >= 1) || x > 1e15) return 0;           /* NaN, 0, negative, huge: Lua's path */
      mode = QN_STREAM_EXACT;
      n = (size_t)x;                                 /* floor, as the Lua path does */
    }
  } else {
    int isnum;
    lua_Number x = lua_tonumberx(L, 2, &isnum);
    if (!isnum || !(x >= 1) || x > 1e15) return 0;   /* NaN, 0, negative, huge: Lua's path */
    mode = QN_STREAM_EXACT;
    n = (size_t)x;                                   /* floor, as the Lua path does */
  }
  lq_stream *u = fast_stream(L);
  if (u == NULL || !qn_stream_readable(u->s) || qn_stream_readers(u->s) > 0) return 0;
  const char *p;
  size_t len, used;
  int r = qn_stream_peek(u->s, mode, n, &p, &len, &used);
  if (r == UV_EAGAIN) return fast_wait(L, u, mode, n);   /* not all here: a plain wait */
  if (r != 0) return 0;
  if (mode == QN_STREAM_EXACT) {
    if (len != n) return 0;                          /* fewer at EOF: Lua's path says closed */
  } else {
    if (len == 0 || p[len - 1] != '\n') return 0;    /* the last line, cut by EOF */
    len--;
    if (len > 0 && p[len - 1] == '\r') len--;
  }
  if (len == 2 && p[0] == '\r' && p[1] == '\n')
    lua_pushvalue(L, lua_upvalueindex(UP_CRLF));     /* the CRLF after a bulk value (redis,
                                                        memcached): kept, not hashed and looked up */
  else
    lua_pushlstring(L, p, len);
  qn_stream_consume(u->s, used);
  return 1;
}

/* send(self, data): a string, or an array of strings and numbers, written
   at once when the write queue is empty (a write then never waits).
   Returns the number of bytes. */
enum { SEND_SMALL = 512 };   /* bytes of a request built on the C stack */
enum { SEND_KEEP = 64 };     /* items of an array left on the stack while read */
/* items kept without lua_checkstack: a C function is called with
   LUA_MINSTACK (20) free slots; two go to fast_stream's values, and up to
   six to a luaL_Buffer that starts after them (its box, the box's
   metatable while it is made, the item being added) */
enum { SEND_FREE = LUA_MINSTACK - 8 };

static int l_fast_send(lua_State *L) {
  int t = lua_type(L, 2);
  if (t != LUA_TSTRING && t != LUA_TTABLE) return 0;
  lq_stream *u = fast_stream(L);
  /* a read waiting on the stream is a receive in a wait, which leaves
     self[1] set (fast_wait): the general path says the socket is busy */
  if (u == NULL || !qn_stream_writable(u->s) || qn_stream_is_shut(u->s) ||
      qn_stream_writers(u->s) > 0 || qn_stream_readers(u->s) > 0 ||
      qn_stream_write_queued(u->s) != 0)
    return 0;
  const char *data;
  size_t len;
  char small[SEND_SMALL];
  if (t == LUA_TSTRING) {
    data = lua_tolstring(L, 2, &len);
  } else {
    /* the array's items, concatenated as table.concat would; anything but
       strings and numbers (nested tables, booleans, holes) is Lua's. Into
       a buffer on the C stack while they fit (a request of a few dozen
       bytes: no Lua string is made, hashed and collected for it; the
       stream copies what it cannot write at once), else a luaL_Buffer. */
    lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
    luaL_Buffer b;
    int boxed = 0;
    /* a short array's items stay on the stack until the return (their
       strings stay valid all the same): one pop per item cost about 20
       instructions each, 200 a resty.redis request of 11 items */
    int keep = n <= SEND_FREE || (n <= SEND_KEEP && lua_checkstack(L, (int)n + LUA_MINSTACK));
    len = 0;
    for (lua_Integer i = 1; i <= n; i++) {
      int it = lua_rawgeti(L, 2, i);
      const char *p;
      size_t k;
      char digits[24];
      if (it == LUA_TSTRING || (it == LUA_TNUMBER && !lua_isinteger(L, -1))) {
        p = lua_tolstring(L, -1, &k);                /* a float: Lua's format */
      } else if (it == LUA_TNUMBER) {
        /* drivers put lengths here ("$", #arg, "\r\n"): digits by hand,
           what Lua's own conversion (snprintf) would write, at a tenth of
           its cost */
        lua_Integer v = lua_tointeger(L, -1);
        int d = (int)sizeof digits;
        lua_Unsigned m = v < 0 ? 0u - (lua_Unsigned)v : (lua_Unsigned)v;
        do digits[--d] = (char)('0' + m % 10); while ((m /= 10) != 0);
        if (v < 0) digits[--d] = '-';
        p = digits + d;
        k = sizeof digits - (size_t)d;
      } else {
        return 0;
      }
      if (!boxed && len + k <= sizeof small) {
        if (k <= 8) {             /* most items are 1 to 4 bytes: no call to memcpy */
          for (size_t j = 0; j < k; j++) small[len + j] = p[j];
        } else {
          memcpy(small + len, p, k);
        }
        len += k;
        if (!keep) lua_pop(L, 1);
        continue;
      }
      if (!boxed) {               /* too long for `small`: a luaL_Buffer from here on */
        lua_pop(L, 1);            /* (its slot goes below the item) */
        luaL_buffinit(L, &b);
        luaL_addlstring(&b, small, len);
        boxed = 1;
        lua_rawgeti(L, 2, i);
      }
      if (it == LUA_TNUMBER && lua_isinteger(L, -1)) {
        lua_pop(L, 1);
        luaL_addlstring(&b, p, k);
      } else {
        luaL_addvalue(&b);                           /* the item on top */
      }
    }
    if (boxed) {
      luaL_pushresult(&b);
      data = lua_tolstring(L, -1, &len);
    } else {
      data = small;
    }
  }
  if (qn_stream_write(u->s, data, len) != 0) return 0;   /* nothing written: Lua's path */
  lua_pushinteger(L, (lua_Integer)len);
  return 1;
}

/* quiet(stream): for quench.pool, whether an idle stream can be handed
   out: open, in this runtime, nothing buffered, and no data, EOF or error
   waiting (a read would wait). Nothing is read. nil for anything but a
   TCP, Unix or TLS stream (the pool then asks with a select). */
static int l_quiet(lua_State *L) {
  lq_stream *u = lq_toudata(L, 1, &lq_tcp_stream_class, sizeof(lq_stream));
  if (u == NULL) u = lq_toudata(L, 1, &lq_unix_stream_class, sizeof(lq_stream));
  if (u == NULL) u = lq_toudata(L, 1, &lq_tls_stream_class, sizeof(lq_stream));
  if (u == NULL) return 0;
  int ok = 0;
  if (u->s != NULL && lq_alive(L, u->serial) && !qn_stream_is_closed(u->s) &&
      qn_stream_readable(u->s) && qn_stream_readers(u->s) == 0 && qn_stream_buffered(u->s) == 0) {
    const char *p;
    size_t len, used;
    ok = qn_stream_peek(u->s, QN_STREAM_SOME, 1, &p, &len, &used) == UV_EAGAIN;
  }
  lua_pushboolean(L, ok);
  return 1;
}

/* ---- the cosocket's wait for a line or a count ----
   receive(stream, n, seconds [, some]): a line (n nil; without "\r\n" or
   "\n"), everything until EOF (n "a"), n bytes, or with `some` what has
   arrived, at least one byte and at most n, from a TCP, Unix or TLS
   stream, waiting at most `seconds` with
   one read future that carries its own deadline (core/stream.c's
   qn_stream_read_deadline_new): no select, no sleep future and no op
   userdata per wait, which quench.timeout over a read op built (3,000
   instructions a reply, docs/performance.md). Returns the bytes; false at
   the deadline (nothing consumed: the caller takes what arrived as the
   partial result); nil, "closed", partial at EOF (what came before it,
   consumed); nil, "ENAME: message", "" on an I/O error. A dropped wait
   consumes nothing (the caller's guard closes the socket). */

/* The stream at 1: a usable TCP, Unix or TLS stream with no reader. */
static lq_stream *receive_stream(lua_State *L) {
  lq_stream *u = lq_toudata(L, 1, &lq_tcp_stream_class, sizeof(lq_stream));
  if (u == NULL) u = lq_toudata(L, 1, &lq_unix_stream_class, sizeof(lq_stream));
  if (u == NULL) u = lq_toudata(L, 1, &lq_tls_stream_class, sizeof(lq_stream));
  if (u == NULL) luaL_typeerror(L, 1, "quench.tcp.stream");
  if (u->s == NULL || qn_stream_is_closed(u->s))
    luaL_error(L, "receive: attempt to use a closed stream");
  lq_check_alive(L, u->serial, "receive", "stream");
  if (!qn_stream_readable(u->s) || qn_stream_readers(u->s) > 0)
    luaL_error(L, "receive: another read is waiting on this stream (one reader at a time)");
  return u;
}

/* Push the results of the read if it need not wait (and consume what they
   hold); -1 if it must wait, having changed nothing. */
static int receive_now(lua_State *L, lq_stream *u, qn_stream_mode mode, size_t n) {
  const char *p;
  size_t len, used;
  int r = qn_stream_peek(u->s, mode, n, &p, &len, &used);
  if (r == UV_EAGAIN) return -1;
  if (r == 0) {
    int line = mode == QN_STREAM_LINE_KEEP;
    int whole = mode == QN_STREAM_EXACT ? len == n : !line || (len > 0 && p[len - 1] == '\n');
    if (whole) {
      if (line) {
        len--;
        if (len > 0 && p[len - 1] == '\r') len--;
      }
      lua_pushlstring(L, p, len);
      qn_stream_consume(u->s, used);
      return 1;
    }
    lua_pushnil(L);                              /* cut by EOF: what came, as partial */
    lua_pushliteral(L, "closed");
    lua_pushlstring(L, p, len);
    qn_stream_consume(u->s, used);
    return 3;
  }
  if (r == UV_EOF) {
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    lua_pushliteral(L, "");
    return 3;
  }
  lq_stream_fail(L, u->s, r);                    /* nil, msg, code: the code becomes "" */
  lua_pop(L, 1);
  lua_pushliteral(L, "");
  return 3;
}

/* The read asked for by the arguments 2 (what) and 4 (some), checked. */
static qn_stream_mode receive_mode(lua_State *L, size_t *n) {
  *n = 0;
  if (lua_isnil(L, 2)) return QN_STREAM_LINE_KEEP;
  if (lua_type(L, 2) == LUA_TSTRING) return QN_STREAM_ALL;
  *n = (size_t)lua_tointeger(L, 2);
  return lua_toboolean(L, 4) ? QN_STREAM_SOME : QN_STREAM_EXACT;
}

static int receive_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  lq_coro *c = (lq_coro *)ctx;
  LQ_RESUMED_OF(L, c, ctx, receive_k);
  qn_future *f = lq_take_op_of(L, c);
  lq_stream *u = lua_touserdata(L, 1);
  size_t n;
  qn_stream_mode mode = receive_mode(L, &n);
  int k = receive_now(L, u, mode, n);
  int expired = k < 0 ? qn_stream_read_expired(f) : 0;
  qn_drop(f);
  if (k >= 0) return k;
  if (expired == QN_ENOMEM) return luaL_error(L, "receive: out of memory (arming the timer)");
  lua_pushboolean(L, 0);                         /* the deadline came first */
  return 1;
}

static int l_receive(lua_State *L) {
  lq_coro *c = lq_await_ctx(L, "receive");      /* first: it may start the call over */
  lq_stream *u = receive_stream(L);
  if (lua_type(L, 2) == LUA_TSTRING) {
    luaL_argcheck(L, strcmp(lua_tostring(L, 2), "a") == 0, 2, "\"a\", a count or nil expected");
  } else if (!lua_isnil(L, 2)) {
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_argcheck(L, n >= 0, 2, "count must not be negative");
    luaL_argcheck(L, n > 0 || !lua_toboolean(L, 4), 2, "a maximum must be positive");
  }
  uint64_t ns = lq_check_seconds(L, 3);
  lua_settop(L, 4);
  size_t n;
  qn_stream_mode mode = receive_mode(L, &n);
  lq_check_cancel(L, c);
  int k = receive_now(L, u, mode, n);
  if (k >= 0) return k;
  lq_runtime *rt = lq_module_of(L)->rt;
  qn_future *f = qn_stream_read_deadline_new(u->s, mode, n, lq_deadline_after(rt, ns));
  if (f == NULL) return luaL_error(L, "receive: out of memory");
  c->what = "receive";
  return lq_await(L, c, f, receive_k, (lua_KContext)c);
}

/* The wait of fast_receive, with what Tcp:receive's Lua wait did around
   it: `busy` set to the waiting task during the wait and cleared after a
   read, and the socket as its own guard (a to-be-closed value: Tcp.__close
   closes the connection unless `waiting` is "done", which it is set to
   after a wait that timed out or failed; so a wait that was dropped or
   raised closes it. `waiting` is false outside any wait, which __close
   takes as the Lua wait's true, so the C wait leaves it false while it
   waits: two rawsets less a reply. After a wait that got its bytes,
   fast_wait_k swaps in upvalue 9, whose __close does nothing). The stack while
   waiting: self, pattern, the metatable fast_stream left, the stream
   userdata (kept alive), the mode and count, self (to be closed). */
enum { FW_STREAM = 4, FW_MODE = 5, FW_GUARD = 6 };

/* self[upvalue up] = the value pushed next: the key goes first, so that
   the rawset needs no lua_insert (two rotates a wait, about 170
   instructions a GET with the pushes around them). */
static void push_key(lua_State *L, int up) { lua_pushvalue(L, lua_upvalueindex(up)); }

static int after_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status, (void)ctx;
  return lua_gettop(L) - FW_GUARD;               /* the results of UP_AFTER */
}

static int fast_wait_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  lq_coro *c = (lq_coro *)ctx;
  LQ_RESUMED_OF(L, c, ctx, fast_wait_k);
  qn_future *f = lq_take_op_of(L, c);
  lq_stream *u = lua_touserdata(L, FW_STREAM);
  lua_Integer m = lua_tointeger(L, FW_MODE);
  qn_stream_mode mode = m < 0 ? QN_STREAM_LINE_KEEP : QN_STREAM_EXACT;
  int k = receive_now(L, u, mode, m < 0 ? 0 : (size_t)m);
  int expired = k < 0 ? qn_stream_read_expired(f) : 0;
  qn_drop(f);
  if (expired == QN_ENOMEM) return luaL_error(L, "receive: out of memory (arming the timer)");
  int got = k == 1;                              /* the bytes asked for */
  if (k < 0) {
    lua_pushboolean(L, 0);                       /* the deadline came first */
    k = 1;
  } else if (got) {
    /* busy = nil: the read is over. self[1] was left as it was (the
       stream, or what a connect made meanwhile set): idle again, with no
       read back of `s` and no rawseti (about 200 instructions a reply) */
    lua_pushnil(L);
    lua_rawseti(L, 1, 2);
  }
  if (got) {
    /* the guard lets go: the slot's value becomes an object whose __close
       does nothing (a Lua __close call less a read, about 200 instructions;
       `waiting` is false still) */
    lua_pushvalue(L, lua_upvalueindex(UP_NOCLOSE));
    lua_replace(L, FW_GUARD);
    return 1;
  }
  push_key(L, UP_WAITING);
  lua_pushvalue(L, lua_upvalueindex(UP_DONE));   /* "done" made once, not interned per wait */
  lua_rawset(L, 1);                              /* waiting = "done": the guard lets go */
  /* false (the read timeout) or nil, msg, partial: OpenResty's results
     are ngx.lua's to make (upvalue UP_AFTER: timed_out or fail), once the
     guard has let go */
  lua_closeslot(L, FW_GUARD);
  lua_pushvalue(L, lua_upvalueindex(UP_AFTER));
  lua_insert(L, -(k + 1));
  lua_pushvalue(L, 1);
  lua_insert(L, -(k + 1));
  lua_callk(L, k + 1, LUA_MULTRET, 0, after_k);  /* it may call stream methods that check */
  return after_k(L, LUA_OK, 0);                  /* they may wait: so a yieldable call */
}

static int fast_wait(lua_State *L, lq_stream *u, qn_stream_mode mode, size_t n) {
  /* first, on the call's own arguments and what fast_stream left (the
     stack is self, pattern, metatable, stream: l_fast_receive pushes
     nothing else): it may start this call over later (Tcp.receive's
     settop drops the two then) */
  lq_coro *c = lq_await_ctx(L, "receive");
  lq_check_cancel(L, c);
  lq_runtime *rt = lq_module_of(L)->rt;
  /* the read timeout: self[3], in nanoseconds, converted here from
     self.read_timeout (seconds) the first time after it changed (ngx.lua
     sets self[3] false then) and kept for the next waits */
  int isint;
  lua_rawgeti(L, 1, 3);
  lua_Integer t = lua_tointegerx(L, -1, &isint);
  uint64_t ns;
  if (isint && t >= 0) {
    ns = (uint64_t)t;
  } else {
    lua_pushvalue(L, lua_upvalueindex(UP_READ_TIMEOUT));
    lua_rawget(L, 1);
    ns = lq_check_seconds(L, -1);
    lua_pop(L, 1);
    if (ns <= (uint64_t)LUA_MAXINTEGER) {        /* QN_NEVER is not kept: converted each time */
      lua_pushinteger(L, (lua_Integer)ns);
      lua_rawseti(L, 1, 3);
    }
  }
  lua_pop(L, 1);
  lua_pushinteger(L, mode == QN_STREAM_EXACT ? (lua_Integer)n : -1);   /* FW_MODE */
  lq_push_handle(L, rt, lq_coro_task(c));
  lua_rawseti(L, 1, 2);                          /* busy (self[2]) = the waiting task */
  lua_pushvalue(L, 1);                           /* the guard (`waiting` false: see above) */
  lua_toclose(L, FW_GUARD);
  qn_future *f = qn_stream_read_deadline_new(u->s, mode, n, lq_deadline_after(rt, ns));
  if (f == NULL) return luaL_error(L, "receive: out of memory");
  c->what = "receive";
  return lq_await(L, c, f, fast_wait_k, (lua_KContext)c);
}

/* ---- the methods themselves ----
   Tcp.receive and Tcp.send are these C functions: the fast path, and
   when it declines, the Lua method's general path (upvalue UP_SLOW) called
   from here with the same two arguments. A Lua method calling the fast
   path cost a Lua call frame more on every call (about 150 instructions,
   four times a GET). The general path raises at its caller's caller (the
   user's code: this function is between them). */
static int slow_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status, (void)ctx;
  return lua_gettop(L);
}

static int call_slow(lua_State *L) {
  lua_settop(L, 2);
  lua_pushvalue(L, lua_upvalueindex(UP_SLOW));
  lua_insert(L, 1);
  lua_callk(L, 2, LUA_MULTRET, 0, slow_k);       /* it may wait */
  return lua_gettop(L);
}

static int l_receive_method(lua_State *L) {
  if (lua_gettop(L) != 2) lua_settop(L, 2);      /* self, pattern: the fast path's frame */
  int n = l_fast_receive(L);                     /* a wait's results are final */
  return n > 0 ? n : call_slow(L);
}

static int l_send_method(lua_State *L) {
  if (lua_gettop(L) != 2) lua_settop(L, 2);
  int n = l_fast_send(L);
  return n > 0 ? n : call_slow(L);
}

/* quench._ngx.fast(Tcp, slow_receive, slow_send, after_receive): the
   methods receive and send, with the module, the Tcp metatable, the field
   names, the general path and receive's result maker as upvalues. */
static void push_method(lua_State *L, lua_CFunction f, int slow) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, 1);
  lua_pushliteral(L, "waiting");                 /* UP_WAITING... */
  lua_pushliteral(L, "read_timeout");
  lua_pushvalue(L, slow);                        /* UP_SLOW */
  lua_pushvalue(L, 4);                           /* UP_AFTER */
  lua_pushliteral(L, "done");                    /* UP_DONE */
  lua_pushliteral(L, "\r\n");                    /* UP_CRLF */
  lua_pushvalue(L, 5);                           /* UP_NOCLOSE */
  lua_pushcclosure(L, f, 9);
}

static int l_noclose(lua_State *L) { (void)L; return 0; }

static int l_fast(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  luaL_checktype(L, 4, LUA_TFUNCTION);
  lua_settop(L, 4);
  lua_newtable(L);                               /* 5: the guard that lets go */
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, l_noclose);
  lua_setfield(L, -2, "__close");
  lua_setmetatable(L, 5);
  push_method(L, l_receive_method, 2);
  push_method(L, l_send_method, 3);
  return 2;
}

/* quench._ngx = {md5, md5_bin, sha1_bin, wall, new_tab, fast, quiet, receive, null}; the module table is
   on top (mod, the module userdata, is the upvalue of `fast`, whose
   closures find the runtime through it). */
void lq_ngx_register(lua_State *L, int mod) {
  static const luaL_Reg fns[] = {
    {"md5", l_md5}, {"md5_bin", l_md5_bin}, {"sha1_bin", l_sha1_bin}, {"wall", l_wall},
    {"new_tab", l_new_tab},
    {NULL, NULL}
  };
  luaL_newlib(L, fns);
  lua_pushvalue(L, mod);
  lua_pushcclosure(L, l_fast, 1);
  lua_setfield(L, -2, "fast");
  lua_pushvalue(L, mod);
  lua_pushcclosure(L, l_quiet, 1);
  lua_setfield(L, -2, "quiet");
  lua_pushvalue(L, mod);
  lua_pushcclosure(L, l_receive, 1);
  lua_setfield(L, -2, "receive");
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  lua_setfield(L, -2, "_ngx");
}
