/*
** The server's lot (quench.http._lot): every connection of a server,
** watched from C between requests and while one is handled, so that a
** connection has no task of its own and a request costs its handler's
** task only. The heads it takes are lua/http.c's. Two things that need
** the entry of a request's connection live here with it: the request's
** task (request_task: the handler, then the connection handed back) and
** a plain res:finish (finish_method), both in C on the common path.
**
** The wait: `lot:next()` awaits directly (an lq_obj_kind with a direct
** form only: the server's own task). Cancel safety: a dropped lot:next
** loses no connection (they stay ready in the lot).
*/
#include <string.h>
#include "http.h"

/* ---- connections between requests, watched from C ---- */

static size_t check_size(lua_State *L, int idx, lua_Integer lo, lua_Integer hi) {
  lua_Integer v = luaL_checkinteger(L, idx);
  luaL_argcheck(L, v >= lo && v <= hi, idx, "out of range");
  return (size_t)v;
}

/* Every connection of a server has an entry in the server's lot for its
   whole life, and no task of its own: between requests the entry's watch
   (a core head future, core/http.c's, one per connection) waits for a whole
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

/* The lot's user values. */
enum {
  UV_CONNS = 1,         /* the connections' references (luaL_ref) */
  UV_HEAD_MT,           /* the heads' metatable, at hand for take_head */
  UV_TASK,              /* request_task, a C closure over the lot */
  UV_REQUEST_MT, UV_RESPONSE_MT,
  UV_AFTER,             /* after(req, res, ok, err): a request's uncommon ending, in Lua */
  UV_HANDLER,           /* handler(req, res), from lot:handle */
  UV_COUNT = UV_HANDLER
};

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
  int stopping;             /* close_idle or close was called: the server is not
                               serving any more (its state is not "serving") */
  lq_http_date date;        /* _finish's Date value, made once a second */
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
  qn_http_watch_head(e->watch, lq_http_lim_line(lot->limits), lq_http_lim_head(lot->limits), 0);
  e->busy = 0;
  dq_push(lot, e, q, q ? lot->keepalive_ns : lot->header_ns);
  entry_poll(lot, e, 0);
}

/* _lot(max_line, max_head, max_headers, max_body, header_timeout,
   keepalive_timeout, max_requests, run, Request, Response) -> a lot with
   the server's limits, which spawns run(req) for each head (start_request) */
static int request_task(lua_State *L);

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
  lq_lot *lot = lua_newuserdatauv(L, sizeof *lot, UV_COUNT);
  memset(lot, 0, sizeof *lot);
  lot->wait.vt = &lot_vt;
  for (int i = 0; i < AT_LISTS; i++) lot->lists[i].prev = lot->lists[i].next = &lot->lists[i];
  for (int q = 0; q < 2; q++) lot->dq[q].dprev = lot->dq[q].dnext = &lot->dq[q];
  lot->alloc = lua_getallocf(L, &lot->alloc_ud);
  lot->limits = lq_http_pack_limits(max_line, max_head, max_fields);
  lot->max_body = max_body;
  lot->header_ns = header_ns;
  lot->keepalive_ns = keepalive_ns;
  lot->max_requests = max_requests;
  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &lq_http_head_tag);
  lua_setiuservalue(L, -2, 2);                /* the heads' metatable, at hand for take_head */
  lua_pushvalue(L, -1);
  lua_pushcclosure(L, request_task, 1);       /* a request's task: over the lot */
  lua_setiuservalue(L, -2, UV_TASK);
  lua_pushvalue(L, 8);
  lua_setiuservalue(L, -2, UV_AFTER);
  lua_pushvalue(L, 9);
  lua_setiuservalue(L, -2, UV_REQUEST_MT);
  lua_pushvalue(L, 10);
  lua_setiuservalue(L, -2, UV_RESPONSE_MT);
  luaL_setmetatable(L, LQ_LOT);
  return 1;
}

/* lot:add(conn, stream) -> entry (a light userdata), or nil, msg, code
   (out of memory; the stream is still the caller's). The connection's
   first head is watched for, within header_timeout. */
static int l_add(lua_State *L) {
  lq_lot *lot = check_lot(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  qn_stream *s = lq_http_check_stream(L, 3, "quench.http._lot:add");
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
  e->watch = qn_http_head_new(s, lq_http_lim_line(lot->limits), lq_http_lim_head(lot->limits), 0);
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

/* ---- a request's task ---- */

/* The message handler of a handler's call: a string error gets its
   traceback; a Cancelled or another value goes on as it is. */
static int handler_traceback(lua_State *L) {
  if (lua_type(L, 1) == LUA_TSTRING && !lq_is_kind(L, 1, "cancelled"))
    luaL_traceback(L, L, lua_tostring(L, 1), 1);
  return 1;
}

static int request_end(lua_State *L, int status, lua_KContext ctx) {
  (void)L, (void)status, (void)ctx;
  return 0;
}

/* After the handler (status: its call's): the common ending here, in C:
   the response finished, the connection kept alive, no body left to read
   (nothing said the body may need draining), the server serving and the
   entry watching: give the connection back to the lot for its next head
   (the next pipelined one may be buffered already). Any other ending
   (the handler raised, left the response unfinished, or the connection
   closes) is after(req, res, ok, err), in Lua (lua/quench/http.lua). */
static int request_done(lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  lq_lot *lot = lua_touserdata(L, lua_upvalueindex(1));
  int ok = status == LUA_OK || status == LUA_YIELD;
  if (ok) {
    lua_settop(L, 4);
    int isint;
    lot_entry *e;
    if (lua_rawgeti(L, 2, RES_HS) == LUA_TNUMBER && lua_tointegerx(L, 5, &isint) == 3 && isint &&
        lua_rawgeti(L, 1, REQ_DRAIN) == LUA_TNIL &&
        lua_getfield(L, 3, "e") == LUA_TLIGHTUSERDATA && (e = lua_touserdata(L, 7)) != NULL &&
        !lot->stopping && !lot->closed && e->watch != NULL &&
        lua_getfield(L, 3, "keep") == LUA_TBOOLEAN && lua_toboolean(L, 8)) {
      lua_pushboolean(L, 0);
      lua_rawseti(L, 3, CONN_TASK);             /* handed back: its <close> leaves it open */
      entry_watch_head(lot, e, qn_stream_buffered(e->s) > 0 ? 0 : 1);
      return 0;
    }
    lua_settop(L, 4);
    lua_pushnil(L);                             /* no error */
  }
  lua_getiuservalue(L, lua_upvalueindex(1), UV_AFTER);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_pushboolean(L, ok);
  lua_pushvalue(L, -5);                         /* the error, or nil */
  lua_callk(L, 4, 0, 0, request_end);
  return 0;
}

/* A request's task (started by start_request with its request): the
   handler, handler(req, res), under a message handler, then
   request_done. The connection is its to-be-closed value: however the
   task ends (aborted at an await included), the connection is closed,
   unless the task gave it back to the lot first (CONN_TASK false). A C
   frame, not Lua's run_request, xpcall and <close>: ~1,000 instructions a
   request. */
static int request_task(lua_State *L) {
  lua_settop(L, 1);
  lua_rawgeti(L, 1, REQ_RES);                   /* 2: the response */
  lua_rawgeti(L, 2, RES_CONN);                  /* 3: the connection */
  lua_toclose(L, 3);
  lua_pushcfunction(L, handler_traceback);      /* 4 */
  lua_getiuservalue(L, lua_upvalueindex(1), UV_HANDLER);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  return request_done(L, lua_pcallk(L, 2, 0, 4, 0, request_done), 0);
}

static int l_finish(lua_State *L);

static int finish_k(lua_State *L, int status, lua_KContext base) {
  (void)status;
  return lua_gettop(L) - (int)base;
}

/* Response.finish, in C: _finish's fast path, and for the rest one of
   the two Lua functions it closes over: upvalue 2, wait(res, bytes),
   when the stream's queue is full; upvalue 1, the Lua finish(res, body),
   for any other response (it raises its errors at level 3, the caller of
   this). As a method in C, a plain finish costs no Lua frame. */
static int finish_method(lua_State *L) {
  int n = l_finish(L);
  if (n != 1 || lua_type(L, -1) != LUA_TBOOLEAN || lua_toboolean(L, -1)) {
    if (n == 2 && lua_type(L, -2) == LUA_TBOOLEAN) {   /* false, bytes: wait for room */
      lua_pushvalue(L, lua_upvalueindex(2));
      lua_pushvalue(L, 1);
      lua_pushvalue(L, -3);
      int base = lua_gettop(L) - 3;
      lua_callk(L, 2, LUA_MULTRET, base, finish_k);
      return finish_k(L, LUA_OK, base);
    }
    return n;                                 /* true, or nil, msg, code */
  }
  lua_settop(L, 2);
  int base = 2;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_callk(L, 2, LUA_MULTRET, base, finish_k);
  return finish_k(L, LUA_OK, base);
}

/* _finish_method(finish, wait) -> Response.finish. */
static int l_finish_method(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  lua_pushcclosure(L, finish_method, 2);
  return 1;
}

/* lot:handle(handler): the handler of the lot's requests (Server:serve). */
static int l_handle(lua_State *L) {
  check_lot(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  lua_setiuservalue(L, 1, UV_HANDLER);
  return 0;
}

/* A head is ready for connection t (at t+1: NEXT_HEAD, then the head and
   its framing as push_framing: minor, keep, content_length, chunked,
   expect_continue, is_head): set the connection's fields, make the
   request and the response and spawn the request's task, run(req), as
   the server's dispatcher did in Lua: no return to it, no eleven results,
   no Lua loop per head. The server's state in the two tables is in their
   array parts (the slots below): a string key set from C costs a hash
   insert, ~200 instructions, an array slot ~40. The request's hash part
   has room for what a handler caches in it (path, query, method,
   headers) without a rehash (~1,300 instructions); the response has no
   hash part unless its user adds a field. Slots are set before the
   metatables. */
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
  lua_getiuservalue(L, lot_idx, UV_TASK);     /* request_task, at t + 9 */
  lua_createtable(L, REQ_SLOTS, 4);           /* the request, at t + 10 */
  lua_createtable(L, RES_SLOTS, 0);           /* the response */
  lua_pushinteger(L, 0);
  lua_rawseti(L, -2, RES_HS);
  lua_pushvalue(L, t);
  lua_rawseti(L, -2, RES_CONN);
  lua_getiuservalue(L, lot_idx, UV_RESPONSE_MT);
  lua_setmetatable(L, -2);
  lua_rawseti(L, t + 10, REQ_RES);
  lua_pushvalue(L, t + 2);
  lua_rawseti(L, t + 10, REQ_HEAD);
  if (drain) {                                /* nil: false */
    lua_pushboolean(L, 1);
    lua_rawseti(L, t + 10, REQ_DRAIN);
  }
  lua_getiuservalue(L, lot_idx, UV_REQUEST_MT);
  lua_setmetatable(L, t + 10);
  lq_spawn_at(L, lot->rt, t + 9);             /* the task's handle */
  lua_rawseti(L, t, CONN_TASK);
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
    int n = lq_http_take_head(L, e->s, lot->limits, lot->max_body, lot_idx,
                              r == 0 ? qn_http_head_end(e->watch) : 0);
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
      qn_http_watch_gone(e->watch, lq_http_lim_head(lot->limits));
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
  lot->stopping = 1;
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
  lot->stopping = 1;
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

/* ---- registration ---- */

/* ---- the common response, from C ---- */

/* l_finish(res, body) -> true | nil, msg, code | false[, bytes]:
   finish_method's fast path, res:finish for a response nothing was set on (RES_HS 0: status 200, no field, no
   length) given a string body or none: most handlers' answer. Made here
   from what the connection's entry holds (minor, keep and is_head as the
   lot last set them: Lua sets keep to false only once a head was sent or
   after the handler, so at RES_HS 0 the entry's copy is the field; the
   server stopping; continue_due read from the table only when the entry
   says it may be set) instead of the Lua of send_plain: ~1,100
   instructions a request. false alone: not such a response, the caller
   takes the Lua path; false and the bytes: the stream's queue is full,
   the caller waits with stream:write. Never waits, so never raises
   Cancelled. */
static int l_finish(lua_State *L) {
  int bt = lua_type(L, 2);
  lua_settop(L, 2);
  if ((bt != LUA_TSTRING && bt > LUA_TNIL) || !lua_istable(L, 1)) goto other;
  int isint;
  if (lua_rawgeti(L, 1, RES_HS) != LUA_TNUMBER || lua_tointegerx(L, 3, &isint) != 0 || !isint)
    goto other;
  if (lua_rawgeti(L, 1, RES_CONN) != LUA_TTABLE || lua_getfield(L, 4, "e") != LUA_TLIGHTUSERDATA)
    goto other;                               /* 4: the connection; 5: its entry, or false once closed */
  lot_entry *e = lua_touserdata(L, 5);
  int close = !e->keep || e->lot->stopping;
  if (e->continue_due) {                      /* the body was never asked for: it cannot */
    e->continue_due = 0;                      /* be told from the next request: close after */
    if (lua_getfield(L, 4, "continue_due") != LUA_TNIL && lua_toboolean(L, -1)) {
      lua_pushboolean(L, 0);
      lua_setfield(L, 4, "continue_due");
      close = 1;
    }
  }
  lua_pushinteger(L, 3);
  lua_rawseti(L, 1, RES_HS);
  if (close) {
    e->keep = 0;
    lua_pushboolean(L, 0);
    lua_setfield(L, 4, "keep");
  }
  size_t blen = 0;
  const char *body = bt == LUA_TSTRING ? lua_tolstring(L, 2, &blen) : NULL;
  static const char status_line[] = "HTTP/1.1 200 OK\r\nDate: ";
  lq_http_head_out o = {
    status_line, sizeof status_line - 1, NULL, 0, NULL, 0,
    (int64_t)blen, close ? 1 : (e->minor == 0 ? 2 : 0),
    e->is_head ? NULL : body, e->is_head ? 0 : blen, 0
  };
  lua_settop(L, 5);
  int n = lq_http_send_head(L, e->s, &e->lot->date, &o);
  if (n > 1 && lua_isnil(L, -n)) {            /* failed: the connection is not reused */
    e->keep = 0;
    lua_pushboolean(L, 0);
    lua_setfield(L, 4, "keep");
  }
  return n;
other:
  lua_pushboolean(L, 0);
  return 1;
}

static const luaL_Reg lot_methods[] = {
  {"add", l_add}, {"park", l_park}, {"remove", l_remove}, {"next", l_lot_next}, {"handle", l_handle},
  {"close_idle", l_close_idle}, {"close", l_lot_close}, {"count", l_lot_count}, {NULL, NULL}
};

static const luaL_Reg lot_meta[] = { {"__gc", l_lot_gc}, {NULL, NULL} };

/* After lq_http_register: it adds quench.http._lot. */
void lq_http_lot_register(lua_State *L, int mod) {
  lq_class(L, mod, LQ_LOT, lot_methods, lot_meta);
  lua_getfield(L, -1, "http");
  lua_pushvalue(L, mod);                      /* upvalue 1: the module, as every binding function */
  lua_pushcclosure(L, l_lot, 1);
  lua_setfield(L, -2, "_lot");
  lua_pushcfunction(L, l_finish_method);
  lua_setfield(L, -2, "_finish_method");
  lua_pop(L, 1);
}
