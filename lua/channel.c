/*
** Channels ("quench.channel") and oneshots. The core channel carries
** integer slots; the values they stand for live in the channel's user
** value 1, a table made with the first value sent (an idle channel has
** none), whose free slots are reused through a free list kept in the table.
**
** Cancel safety:
** - recv: a value is taken from the channel only when recv returns it; a
**   dropped recv (select loser, timeout, abort) loses nothing, and a value
**   already handed to it goes back to the front of the queue.
** - send: all or nothing. send returns true once the value is in the
**   channel; a send dropped while it waits for room delivered nothing.
**   A send still waiting for room when the channel closes returns nil,
**   "closed" (the value stays with the caller); one already given room
**   delivers, and receivers wait for it before they see "closed".
*/
#include <stdint.h>
#include <stdlib.h>
#include "binding.h"

#define LQ_ONESHOT_TX "quench.oneshot.sender"
#define LQ_ONESHOT_RX "quench.oneshot.receiver"

/* The channel userdata: its tag, then the core channel, whose embedder's
   byte (qn_chan_user) holds the flags below. The channel has one user
   value. Until a second value is stored at once it holds slot 0's value
   itself: a channel holding one value at a time (the common case: a
   reply, a ping-pong, a hand-off) never touches a table. From then on it
   is the values table, slot s at index s + 3 (slot 0 too); the other slots
   are small integers reused through a free list threaded through the
   table, so the table stays an array: index 1 holds the first free slot
   (0: none), a free slot's index the next one, and index 2 the highest
   slot made so far. (The list and the count live there, not in the
   userdata, so that the channel is 8 + 64 bytes: W7 makes one per idle
   task.) */
typedef struct lq_chan {
  const void *tag;      /* &chan_tag */
} lq_chan;              /* 8 bytes: the core channel follows at once */

enum {
  F_ONESHOT = 1, F_SENT = 2, F_RX_CLOSED = 4, F_COLLECTED = 8,
  F_INLINE_USED = 16,   /* slot 0 holds a value */
  F_HAS_TABLE = 32      /* the user value is the values table */
};
enum { INLINE_SLOT = 0, UV_VALUES = 1, T_FREE = 1, T_MAX = 2 };
/* The values table's index of slot s. */
static lua_Integer tindex(uint64_t slot) { return (lua_Integer)slot + 3; }

static const char chan_tag = 0;

static size_t chan_offset(void) { return lq_align(sizeof(lq_chan)); }
static qn_chan *core_of(lq_chan *c) { return (qn_chan *)((char *)c + chan_offset()); }
static int has(lq_chan *c, unsigned f) { return (*qn_chan_user(core_of(c)) & f) != 0; }
static void set(lq_chan *c, unsigned f) { *qn_chan_user(core_of(c)) |= (unsigned char)f; }
static void clear(lq_chan *c, unsigned f) { *qn_chan_user(core_of(c)) &= (unsigned char)~f; }

static lq_chan *new_chan(lua_State *L, size_t capacity) {
  lq_chan *c = lua_newuserdatauv(L, chan_offset() + qn_chan_size(), 1);
  c->tag = &chan_tag;
  qn_chan_init(core_of(c), capacity);   /* flags 0; the values table comes with the first value */
  luaL_setmetatable(L, LQ_CHANNEL);
  return c;
}

static lq_chan *check_chan(lua_State *L, int idx) {
  lq_chan *c = lq_toudata(L, idx, &chan_tag, sizeof(lq_chan));
  if (c == NULL) luaL_typeerror(L, idx, LQ_CHANNEL);
  if (has(c, F_COLLECTED)) luaL_argerror(L, idx, "channel used after it was collected");
  return c;
}

/* Keep the value at v_idx in the channel c at ch_idx: its slot number. */
static uint64_t store(lua_State *L, lq_chan *c, int ch_idx, int v_idx) {
  v_idx = lua_absindex(L, v_idx);
  if (!has(c, F_HAS_TABLE)) {
    if (!has(c, F_INLINE_USED)) {
      set(c, F_INLINE_USED);
      lua_pushvalue(L, v_idx);
      lua_setiuservalue(L, ch_idx, UV_VALUES);
      return INLINE_SLOT;
    }
    lua_createtable(L, 4, 0);           /* a second value: slot 0's moves into a table */
    lua_pushinteger(L, 0);              /* no free slot yet */
    lua_rawseti(L, -2, T_FREE);
    lua_pushinteger(L, 0);              /* no slot made beyond 0 */
    lua_rawseti(L, -2, T_MAX);
    lua_getiuservalue(L, ch_idx, UV_VALUES);
    lua_rawseti(L, -2, tindex(INLINE_SLOT));
    lua_setiuservalue(L, ch_idx, UV_VALUES);
    set(c, F_HAS_TABLE);
  }
  lua_getiuservalue(L, ch_idx, UV_VALUES);
  lua_Integer slot;
  if (!has(c, F_INLINE_USED)) {
    set(c, F_INLINE_USED);
    slot = INLINE_SLOT;
  } else {
    lua_rawgeti(L, -1, T_FREE);
    slot = lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (slot != 0) {                    /* unlink the first free slot */
      lua_rawgeti(L, -1, tindex((uint64_t)slot));
      lua_rawseti(L, -2, T_FREE);
    } else {
      lua_rawgeti(L, -1, T_MAX);
      slot = lua_tointeger(L, -1) + 1;
      lua_pop(L, 1);
      lua_pushinteger(L, slot);
      lua_rawseti(L, -2, T_MAX);
    }
  }
  lua_pushvalue(L, v_idx);
  lua_rawseti(L, -2, tindex((uint64_t)slot));
  lua_pop(L, 1);
  return (uint64_t)slot;
}

/* Give slot s back: the values table t is on top. */
static void free_slot(lua_State *L, lua_Integer s) {
  lua_rawgeti(L, -1, T_FREE);
  lua_rawseti(L, -2, tindex((uint64_t)s));
  lua_pushinteger(L, s);
  lua_rawseti(L, -2, T_FREE);
}

/* Push the value of `slot` and free the slot. */
static void load(lua_State *L, lq_chan *c, int ch_idx, uint64_t slot) {
  if (!has(c, F_HAS_TABLE)) {           /* slot 0, the user value itself */
    lua_getiuservalue(L, ch_idx, UV_VALUES);
    lua_pushnil(L);
    lua_setiuservalue(L, ch_idx, UV_VALUES);
    clear(c, F_INLINE_USED);
    return;
  }
  lua_getiuservalue(L, ch_idx, UV_VALUES);
  lua_rawgeti(L, -1, tindex(slot));
  lua_pushnil(L);
  lua_rawseti(L, -3, tindex(slot));
  if (slot == INLINE_SLOT) {
    clear(c, F_INLINE_USED);
  } else if (!has(c, F_COLLECTED)) {           /* once its __gc ran (called by hand): no reuse */
    lua_insert(L, -2);                  /* the table on top */
    free_slot(L, (lua_Integer)slot);
    lua_insert(L, -2);                  /* the value on top */
  }
  lua_remove(L, -2);
}

static void unstore(lua_State *L, lq_chan *c, int ch_idx, uint64_t slot) {
  load(L, c, ch_idx, slot);
  lua_pop(L, 1);
}

static int closed(lua_State *L) {
  lua_pushnil(L);
  lua_pushliteral(L, "closed");
  return 2;
}

static void check_value(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) luaL_argerror(L, idx, "nil cannot be sent (send false or a sentinel)");
}

/* Spend a held permit on the value at v_idx; rt (NULL outside
   quench.run) grows the buffer if it must. */
static inline LQ_INLINE int commit(lua_State *L, lq_runtime *rt, lq_chan *c, int ch_idx, int v_idx) {
  uint64_t slot = store(L, c, ch_idx, v_idx);
  if (qn_chan_commit(rt ? rt->core : NULL, core_of(c), slot) != QN_OK) {
    unstore(L, c, ch_idx, slot);
    qn_chan_unreserve(core_of(c));      /* the permit is still held: give it back */
    return luaL_error(L, "quench.channel: out of memory");
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* ---- send and recv: each wait written once ----
   Each is an lq_obj_kind (lua/binding.h) given the channel, resolved
   already: by l_send/l_recv's check (the direct form: the channel and the
   value are the call's arguments 1 and 2) or from the op's user value 1
   (the op form: the value is user value 2). The functions push the
   channel itself only when they need its user value (the values), and
   then only in the op form. */

/* The channel's stack index: 1 (direct), or pushed from the op. */
static int chan_idx(lua_State *L, int op) {
  if (op == 0) return 1;
  lua_getiuservalue(L, op, 1);
  return lua_gettop(L);
}

/* Leave the n results on top in place of what the op form pushed from
   index ch on. */
static int done(lua_State *L, int op, int ch, int n) {
  if (op == 0) return n;
  for (int i = 0; i < n; i++) lua_copy(L, -n + i, ch + i);
  lua_settop(L, ch + n - 1);
  return n;
}

static inline LQ_INLINE int send_now(lua_State *L, void *obj, int op, lq_coro *co) {
  lq_chan *c = obj;
  int r = qn_chan_reserve(core_of(c));
  if (r == QN_ECLOSED) return closed(L);
  if (r != QN_OK) return -1;
  lq_runtime *rt = co != NULL ? co->rt : lq_module_of(L)->rt;
  if (op == 0) return commit(L, rt, c, 1, 2);
  int ch = chan_idx(L, op);
  lua_getiuservalue(L, op, 2);
  return done(L, op, ch, commit(L, rt, c, ch, ch + 1));
}

static inline LQ_INLINE qn_future *send_start(lua_State *L, void *obj, int op, lq_coro *co) {
  (void)L, (void)op;
  return qn_chan_reserve_new(co->rt->core, core_of((lq_chan *)obj));
}

static inline LQ_INLINE int send_finish(lua_State *L, void *obj, int op, qn_future *f) {
  lq_chan *c = obj;
  int ch = chan_idx(L, op);
  if (op != 0) lua_getiuservalue(L, op, 2);
  uint64_t slot = store(L, c, ch, op == 0 ? 2 : ch + 1);
  int r = qn_chan_reserve_commit(f, slot);
  if (r != QN_OK) unstore(L, c, ch, slot);
  if (op != 0) lua_settop(L, ch - 1);
  if (r == QN_OK) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (r == QN_ENOMEM) {                 /* the permit stays with f: its drop passes it on */
    if (op == 0) lua_pushliteral(L, "quench.channel:send: out of memory");
    else lua_pushliteral(L, "quench.channel:send_op: out of memory");
    return -1;
  }
  return closed(L);
}

static const lq_obj_kind send_kind = LQ_OBJ_KIND("send", NULL, send_start, send_finish, send_now);
LQ_OBJ_PERFORM_K(send_k, send_kind)

static int l_send(lua_State *L) {
  lq_chan *c = check_chan(L, 1);
  check_value(L, 2);
  lq_coro *co = lq_await_ctx(L, "quench.channel:send");
  lua_settop(L, 2);
  return lq_obj_perform(L, co, &send_kind, c, "quench.channel:send", "channel send", send_k);
}

static int l_try_send(lua_State *L) {
  lq_chan *c = check_chan(L, 1);
  check_value(L, 2);
  int r = qn_chan_reserve(core_of(c));
  if (r == QN_OK) return commit(L, lq_module_of(L)->rt, c, 1, 2);
  if (r == QN_ECLOSED) return closed(L);
  lua_pushnil(L);
  lua_pushliteral(L, "full");
  return 2;
}

/* ---- recv ---- */

/* What a receive from the channel c at ch_idx gives without waiting: the
   value (1 result), or nil, "closed" (2); -1, nothing pushed, when it
   would wait. */
static int recv_now_from(lua_State *L, lq_chan *c, int ch_idx) {
  uint64_t slot;
  int r = qn_chan_try_recv(core_of(c), &slot);
  if (r == QN_OK) {
    load(L, c, ch_idx, slot);
    return 1;
  }
  return r == QN_ECLOSED ? closed(L) : -1;
}

/* Also timeout's fast path for recv_op: a value (or the end) now. */
static inline LQ_INLINE int recv_now(lua_State *L, void *obj, int op, lq_coro *co) {
  (void)co;
  lq_chan *c = obj;
  if (op == 0) return recv_now_from(L, c, 1);
  uint64_t slot;
  int r = qn_chan_try_recv(core_of(c), &slot);
  if (r == QN_ECLOSED) return closed(L);
  if (r != QN_OK) return -1;
  int ch = chan_idx(L, op);
  load(L, c, ch, slot);
  return done(L, op, ch, 1);
}

static inline LQ_INLINE qn_future *recv_start(lua_State *L, void *obj, int op, lq_coro *co) {
  (void)L, (void)op;
  return qn_chan_recv_new(co->rt->core, core_of((lq_chan *)obj));
}

static inline LQ_INLINE int recv_finish(lua_State *L, void *obj, int op, qn_future *f) {
  uint64_t slot;
  if (qn_chan_recv_take(f, &slot) != QN_OK) return closed(L);
  int ch = chan_idx(L, op);
  load(L, obj, ch, slot);
  return done(L, op, ch, 1);
}

static const lq_obj_kind recv_kind = LQ_OBJ_KIND("recv", NULL, recv_start, recv_finish, recv_now);
LQ_OBJ_PERFORM_K(recv_k, recv_kind)

/* co: lq_await_ctx's, called before the stack changed (a oneshot's recv
   puts the channel in place of its receiver). */
static int do_recv_in(lua_State *L, lq_chan *c, lq_coro *co, const char *fname) {
  lua_settop(L, 1);
  return lq_obj_perform(L, co, &recv_kind, c, fname, "channel recv", recv_k);
}

static int l_recv(lua_State *L) {
  lq_chan *c = check_chan(L, 1);
  return do_recv_in(L, c, lq_await_ctx(L, "quench.channel:recv"), "quench.channel:recv");
}

static int do_try_recv(lua_State *L, lq_chan *c) {
  int n = recv_now_from(L, c, 1);
  if (n >= 0) return n;
  lua_pushnil(L);
  lua_pushliteral(L, "empty");
  return 2;
}

static int l_try_recv(lua_State *L) { return do_try_recv(L, check_chan(L, 1)); }

/* ---- ops ---- */

static int l_recv_op(lua_State *L) {
  check_chan(L, 1);
  return lq_op_for(L, &recv_kind.base, 1);
}

static int l_send_op(lua_State *L) {
  lq_chan *c = check_chan(L, 1);
  check_value(L, 2);
  lq_op_new(L, &send_kind.base, 2)->obj = c;
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, 2);
  return 1;
}

/* ---- the rest ---- */

static int l_close(lua_State *L) {
  qn_chan_close(core_of(check_chan(L, 1)));
  return 0;
}

static int l_len(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)qn_chan_len(core_of(check_chan(L, 1))));
  return 1;
}

/* ch:capacity(): the bound, or nil for an unbounded channel. */
static int l_capacity(lua_State *L) {
  size_t cap = qn_chan_capacity(core_of(check_chan(L, 1)));
  if (cap == SIZE_MAX) return 0;
  lua_pushinteger(L, (lua_Integer)cap);
  return 1;
}

/* ch:room(): how many sends would not wait now (nil: unbounded). */
static int l_room(lua_State *L) {
  size_t room = qn_chan_room(core_of(check_chan(L, 1)));
  if (room == SIZE_MAX) return 0;
  lua_pushinteger(L, (lua_Integer)room);
  return 1;
}

static int l_is_closed(lua_State *L) {
  lua_pushboolean(L, qn_chan_is_closed(core_of(check_chan(L, 1))));
  return 1;
}

/* Nothing can wait on a collected channel: every waiter anchors it. */
static int l_gc(lua_State *L) {
  lq_chan *c = lq_toudata(L, 1, &chan_tag, sizeof(lq_chan));   /* __gc may be called by hand */
  if (c == NULL || has(c, F_COLLECTED)) return 0;
  set(c, F_COLLECTED);                     /* a finalizer may bring it back: it stays closed */
  qn_chan_close(core_of(c));
  qn_chan_fini(core_of(c));
  return 0;
}

static int l_tostring(lua_State *L) {
  lq_chan *c = check_chan(L, 1);
  lua_pushfstring(L, "quench.channel (%d queued%s)", (int)qn_chan_len(core_of(c)),
                  qn_chan_is_closed(core_of(c)) ? ", closed" : "");
  return 1;
}

/* quench.channel([capacity]): nil capacity is unbounded. */
static int l_channel(lua_State *L) {
  size_t capacity = SIZE_MAX;
  if (!lua_isnoneornil(L, 1)) {
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 1, 1, "capacity must be at least 1 (or nil: unbounded)");
    capacity = (size_t)n;
  }
  new_chan(L, capacity);
  return 1;
}

/* ---- oneshot: two handles over a channel of capacity 1 ---- */

static lq_chan *oneshot_chan(lua_State *L, int idx, const char *tname) {
  luaL_checkudata(L, idx, tname);
  lua_getiuservalue(L, idx, 1);
  lq_chan *c = lua_touserdata(L, -1);
  lua_replace(L, idx);                  /* work on the channel itself */
  return c;
}

static int l_oneshot(lua_State *L) {
  lq_chan *c = new_chan(L, 1);
  set(c, F_ONESHOT);
  int ch = lua_gettop(L);
  lua_newuserdatauv(L, 0, 1);
  lua_pushvalue(L, ch);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, LQ_ONESHOT_TX);
  lua_newuserdatauv(L, 0, 1);
  lua_pushvalue(L, ch);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, LQ_ONESHOT_RX);
  return 2;
}

/* tx:send(v): true, or nil, "closed" when the receiver is gone. Never waits. */
static int l_tx_send(lua_State *L) {
  lq_chan *c = oneshot_chan(L, 1, LQ_ONESHOT_TX);
  check_value(L, 2);
  if (has(c, F_SENT)) return luaL_error(L, "quench.oneshot: a value was already sent");
  if (qn_chan_reserve(core_of(c)) != QN_OK) return closed(L);
  set(c, F_SENT);
  commit(L, lq_module_of(L)->rt, c, 1, 2);
  qn_chan_close(core_of(c));            /* the receiver gets the value, then "closed" */
  return 1;
}

static int l_tx_close(lua_State *L) {
  lq_chan *c = oneshot_chan(L, 1, LQ_ONESHOT_TX);
  qn_chan_close(core_of(c));
  return 0;
}

static int l_tx_is_closed(lua_State *L) {
  lq_chan *c = oneshot_chan(L, 1, LQ_ONESHOT_TX);
  lua_pushboolean(L, has(c, F_RX_CLOSED));
  return 1;
}

static int l_rx_recv(lua_State *L) {
  luaL_checkudata(L, 1, LQ_ONESHOT_RX);
  lq_coro *co = lq_await_ctx(L, "quench.oneshot:recv");
  lq_chan *c = oneshot_chan(L, 1, LQ_ONESHOT_RX);
  return do_recv_in(L, c, co, "quench.oneshot:recv");
}

static int l_rx_try_recv(lua_State *L) {
  return do_try_recv(L, oneshot_chan(L, 1, LQ_ONESHOT_RX));
}

static int l_rx_recv_op(lua_State *L) {
  oneshot_chan(L, 1, LQ_ONESHOT_RX);
  return l_recv_op(L);
}

static int l_rx_close(lua_State *L) {
  lq_chan *c = oneshot_chan(L, 1, LQ_ONESHOT_RX);
  set(c, F_RX_CLOSED);
  qn_chan_close(core_of(c));
  return 0;
}

static const luaL_Reg chan_methods[] = {
  {"send", l_send}, {"recv", l_recv}, {"try_send", l_try_send}, {"try_recv", l_try_recv},
  {"send_op", l_send_op}, {"recv_op", l_recv_op}, {"close", l_close}, {"len", l_len},
  {"is_closed", l_is_closed}, {"capacity", l_capacity}, {"room", l_room}, {NULL, NULL}
};

static const luaL_Reg tx_methods[] = {
  {"send", l_tx_send}, {"close", l_tx_close}, {"is_closed", l_tx_is_closed}, {NULL, NULL}
};

static const luaL_Reg rx_methods[] = {
  {"recv", l_rx_recv}, {"try_recv", l_rx_try_recv}, {"recv_op", l_rx_recv_op},
  {"close", l_rx_close}, {NULL, NULL}
};

static const luaL_Reg chan_metamethods[] = {
  {"__close", l_close}, {"__gc", l_gc}, {"__tostring", l_tostring}, {NULL, NULL}
};
static const luaL_Reg tx_metamethods[] = { {"__close", l_tx_close}, {NULL, NULL} };
static const luaL_Reg rx_metamethods[] = { {"__close", l_rx_close}, {NULL, NULL} };

void lq_channel_register(lua_State *L, int mod) {
  lq_class(L, mod, LQ_CHANNEL, chan_methods, chan_metamethods);
  lq_class(L, mod, LQ_ONESHOT_TX, tx_methods, tx_metamethods);
  lq_class(L, mod, LQ_ONESHOT_RX, rx_methods, rx_metamethods);
  lua_pushcfunction(L, l_channel);
  lua_setfield(L, -2, "channel");
  lua_pushcfunction(L, l_oneshot);
  lua_setfield(L, -2, "oneshot");
}
