/*
** Synchronisation: mutex, rwlock and semaphore over the core's FIFO
** semaphore; notify; barrier. lock/read/write/acquire return a permit
** ("quench.permit"): release it with <close> (or :release()). Garbage
** collection never releases a permit: a forgotten one keeps its lock held,
** which quench.run's deadlock check reports instead of hiding it.
**
** Cancel safety: acquire (lock, read, write) is fair (FIFO), and a waiter
** dropped at any point (select loser, timeout, abort) never ends up holding
** the lock or a permit: one granted to it just before is released again.
** notified: a notify_one given to a dropped waiter goes to the next one.
** barrier wait: a dropped waiter takes its arrival back.
*/
#include "binding.h"

#define LQ_MUTEX "quench.mutex"
#define LQ_RWLOCK "quench.rwlock"
#define LQ_SEMAPHORE "quench.semaphore"
#define LQ_PERMIT "quench.permit"
#define LQ_NOTIFY "quench.notify"
#define LQ_BARRIER "quench.barrier"

enum { RW_MAX = 1 << 30 };

typedef struct lq_sema {
  size_t total;
} lq_sema;

typedef struct lq_permit {
  qn_sema *s;
  size_t k;
  int held;
} lq_permit;

static size_t sema_offset(void) { return (sizeof(lq_sema) + 15) & ~(size_t)15; }
static qn_sema *core_of(lq_sema *s) { return (qn_sema *)((char *)s + sema_offset()); }

static void new_sema(lua_State *L, const char *tname, size_t permits) {
  lq_sema *s = lua_newuserdatauv(L, sema_offset() + qn_sema_size(), 0);
  s->total = permits;
  qn_sema_init(core_of(s), permits);
  luaL_setmetatable(L, tname);
}

/* Push a permit holding k of the semaphore owned by the userdata at owner. */
static int push_permit(lua_State *L, int owner, size_t k) {
  lq_permit *p = lua_newuserdatauv(L, sizeof *p, 1);
  p->s = core_of(lua_touserdata(L, owner));
  p->k = k;
  p->held = 1;
  lua_pushvalue(L, owner);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, LQ_PERMIT);
  return 1;
}

static int push_closed(lua_State *L) {
  lua_pushnil(L);
  lua_pushliteral(L, "closed");
  return 2;
}

/* acquire is one lq_obj_kind (lua/binding.h) given the semaphore: the
   direct form's operands are the semaphore at 1 and the permit count at
   2; an op keeps the semaphore in user value 1 and the count in its arg. */
static size_t permits_of(lua_State *L, int op) {
  if (op == 0) return (size_t)lua_tointeger(L, 2);
  return (size_t)((lq_op *)lua_touserdata(L, op))->arg;
}

/* A permit of k on the semaphore of the wait, as its one result. */
static int permit_for(lua_State *L, int op, size_t k) {
  if (op == 0) return push_permit(L, 1, k);
  lua_getiuservalue(L, op, 1);
  push_permit(L, lua_gettop(L), k);
  lua_remove(L, -2);
  return 1;
}

static int acquire_now(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)c;
  size_t k = permits_of(L, op);
  int r = qn_sema_try_acquire(core_of((lq_sema *)obj), k);
  if (r == QN_OK) return permit_for(L, op, k);
  if (r == QN_ECLOSED) return push_closed(L);
  return -1;
}

static qn_future *acquire_start(lua_State *L, void *obj, int op, lq_coro *c) {
  return qn_sema_acquire_new(c->rt->core, core_of((lq_sema *)obj), permits_of(L, op));
}

static int acquire_finish(lua_State *L, void *obj, int op, qn_future *f) {
  (void)obj;
  if (qn_sema_acquire_take(f) != QN_OK) return push_closed(L);   /* closed: nothing held */
  return permit_for(L, op, permits_of(L, op));
}

static const lq_obj_kind acquire_kind =
  LQ_OBJ_KIND("acquire", NULL, acquire_start, acquire_finish, acquire_now);
LQ_OBJ_PERFORM_K(acquire_k, acquire_kind)

static int acquire(lua_State *L, size_t k, const char *fname) {
  lq_sema *s = lua_touserdata(L, 1);
  lq_coro *c = lq_await_ctx(L, fname);
  lua_settop(L, 1);
  lua_pushinteger(L, (lua_Integer)k);
  return lq_obj_perform(L, c, &acquire_kind, s, fname, "lock or semaphore acquire", acquire_k);
}

static int try_acquire(lua_State *L, size_t k) {
  lq_sema *s = lua_touserdata(L, 1);
  lua_settop(L, 1);
  int r = qn_sema_try_acquire(core_of(s), k);
  if (r == QN_OK) return push_permit(L, 1, k);
  if (r == QN_ECLOSED) return push_closed(L);
  lua_pushnil(L);
  return 1;
}

static int acquire_op(lua_State *L, size_t k) {
  lq_op *o = lq_op_new(L, &acquire_kind.base, 1);
  o->arg = k;
  o->obj = lua_touserdata(L, 1);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

/* ---- mutex ---- */

static int l_mutex(lua_State *L) {
  new_sema(L, LQ_MUTEX, 1);
  return 1;
}

static int l_lock(lua_State *L) {
  luaL_checkudata(L, 1, LQ_MUTEX);
  return acquire(L, 1, "quench.mutex:lock");
}

static int l_try_lock(lua_State *L) {
  luaL_checkudata(L, 1, LQ_MUTEX);
  return try_acquire(L, 1);
}

static int l_lock_op(lua_State *L) {
  luaL_checkudata(L, 1, LQ_MUTEX);
  return acquire_op(L, 1);
}

static int l_is_locked(lua_State *L) {
  lq_sema *s = luaL_checkudata(L, 1, LQ_MUTEX);
  lua_pushboolean(L, qn_sema_available(core_of(s)) == 0);
  return 1;
}

/* ---- rwlock: a reader takes one of `total` permits (RW_MAX, or the
   maximum of readers given), a writer all of them ---- */

static int l_rwlock(lua_State *L) {
  lua_Integer n = luaL_optinteger(L, 1, RW_MAX);
  luaL_argcheck(L, n >= 1 && n <= RW_MAX, 1, "max_readers must be between 1 and 2^30");
  new_sema(L, LQ_RWLOCK, (size_t)n);
  return 1;
}

static int l_read(lua_State *L) {
  luaL_checkudata(L, 1, LQ_RWLOCK);
  return acquire(L, 1, "quench.rwlock:read");
}

static int l_write(lua_State *L) {
  lq_sema *s = luaL_checkudata(L, 1, LQ_RWLOCK);
  return acquire(L, s->total, "quench.rwlock:write");
}

static int l_try_read(lua_State *L) {
  luaL_checkudata(L, 1, LQ_RWLOCK);
  return try_acquire(L, 1);
}

static int l_try_write(lua_State *L) {
  lq_sema *s = luaL_checkudata(L, 1, LQ_RWLOCK);
  return try_acquire(L, s->total);
}

static int l_read_op(lua_State *L) {
  luaL_checkudata(L, 1, LQ_RWLOCK);
  return acquire_op(L, 1);
}

static int l_write_op(lua_State *L) {
  lq_sema *s = luaL_checkudata(L, 1, LQ_RWLOCK);
  return acquire_op(L, s->total);
}

/* ---- semaphore ---- */

static int l_semaphore(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 0 && n <= RW_MAX, 1, "permits must be between 0 and 2^30");
  new_sema(L, LQ_SEMAPHORE, (size_t)n);
  return 1;
}

static size_t check_count(lua_State *L) {
  lua_Integer k = luaL_optinteger(L, 2, 1);
  luaL_argcheck(L, k >= 1, 2, "must take at least 1 permit");
  /* more than the total may come with add_permits: such a request waits
     (a request no add can ever satisfy is the deadlock check's to report) */
  luaL_argcheck(L, k <= RW_MAX, 2, "more than 2^30 permits");
  return (size_t)k;
}

static int l_acquire(lua_State *L) {
  luaL_checkudata(L, 1, LQ_SEMAPHORE);
  return acquire(L, check_count(L), "quench.semaphore:acquire");
}

static int l_try_acquire(lua_State *L) {
  luaL_checkudata(L, 1, LQ_SEMAPHORE);
  return try_acquire(L, check_count(L));
}

static int l_acquire_op(lua_State *L) {
  luaL_checkudata(L, 1, LQ_SEMAPHORE);
  return acquire_op(L, check_count(L));
}

static int l_available(lua_State *L) {
  lq_sema *s = luaL_checkudata(L, 1, LQ_SEMAPHORE);
  lua_pushinteger(L, (lua_Integer)qn_sema_available(core_of(s)));
  return 1;
}

/* s:add_permits(n): n more permits, to waiters first (FIFO). */
static int l_add_permits(lua_State *L) {
  lq_sema *s = luaL_checkudata(L, 1, LQ_SEMAPHORE);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 0, 2, "permits to add must be >= 0");
  luaL_argcheck(L, n <= (lua_Integer)(RW_MAX - s->total), 2,   /* no overflow: total <= RW_MAX */
                "the semaphore would have more than 2^30 permits");
  s->total += (size_t)n;
  qn_sema_release(core_of(s), (size_t)n);
  return 0;
}

/* s:forget_permits(n): take up to n available permits away for good;
   returns how many. */
static int l_forget_permits(lua_State *L) {
  lq_sema *s = luaL_checkudata(L, 1, LQ_SEMAPHORE);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 0, 2, "permits to forget must be >= 0");
  size_t k = qn_sema_forget(core_of(s), (size_t)n);
  s->total -= k;
  lua_pushinteger(L, (lua_Integer)k);
  return 1;
}

/* s:close(): waiters and later acquires get nil, "closed"; permits held
   stay valid. */
static int l_sema_close(lua_State *L) {
  lq_sema *s = luaL_checkudata(L, 1, LQ_SEMAPHORE);
  qn_sema_close(core_of(s));
  return 0;
}

static int l_sema_is_closed(lua_State *L) {
  lq_sema *s = luaL_checkudata(L, 1, LQ_SEMAPHORE);
  lua_pushboolean(L, qn_sema_is_closed(core_of(s)));
  return 1;
}

/* ---- permits ---- */

static lq_permit *check_held(lua_State *L, int idx, const char *fname) {
  lq_permit *p = luaL_checkudata(L, idx, LQ_PERMIT);
  if (!p->held) luaL_error(L, "%s: the permit was released", fname);
  return p;
}

/* p:forget(): the permits leave the semaphore for good (not released). */
static int l_permit_forget(lua_State *L) {
  lq_permit *p = check_held(L, 1, "quench.permit:forget");
  lua_getiuservalue(L, 1, 1);
  if (!luaL_testudata(L, -1, LQ_SEMAPHORE))
    return luaL_error(L, "quench.permit:forget: only a semaphore's permits can be forgotten");
  ((lq_sema *)lua_touserdata(L, -1))->total -= p->k;
  p->held = 0;
  return 0;
}

/* p:split(k): a new permit holding k of p's permits; p keeps the rest. */
static int l_permit_split(lua_State *L) {
  lq_permit *p = check_held(L, 1, "quench.permit:split");
  lua_Integer k = luaL_checkinteger(L, 2);
  luaL_argcheck(L, k >= 1 && (size_t)k < p->k, 2,
                "must split at least 1 permit and leave at least 1");
  lua_getiuservalue(L, 1, 1);
  if (!luaL_testudata(L, -1, LQ_SEMAPHORE))
    return luaL_error(L, "quench.permit:split: only a semaphore's permits can be split");
  p->k -= (size_t)k;
  return push_permit(L, lua_gettop(L), (size_t)k);
}

/* p:merge(q): p takes q's permits (same semaphore); q is spent. */
static int l_permit_merge(lua_State *L) {
  lq_permit *p = check_held(L, 1, "quench.permit:merge");
  lq_permit *q = check_held(L, 2, "quench.permit:merge");
  luaL_argcheck(L, p != q, 2, "cannot merge a permit into itself");
  luaL_argcheck(L, p->s == q->s, 2, "the permits belong to different semaphores");
  p->k += q->k;
  q->k = 0;
  q->held = 0;
  return 0;
}

/* p:downgrade(): a write permit of an rwlock becomes a read permit, with no
   moment unlocked (waiting readers get in, writers still wait). */
static int l_permit_downgrade(lua_State *L) {
  lq_permit *p = check_held(L, 1, "quench.permit:downgrade");
  lua_getiuservalue(L, 1, 1);
  lq_sema *s = luaL_testudata(L, -1, LQ_RWLOCK);
  if (s == NULL || p->k != s->total)   /* rwlock(1): a read permit is a write permit */
    return luaL_error(L, "quench.permit:downgrade: not a write permit of an rwlock");
  p->k = 1;
  qn_sema_release(p->s, s->total - 1);
  return 0;
}

static int l_permit_count(lua_State *L) {
  lq_permit *p = luaL_checkudata(L, 1, LQ_PERMIT);
  lua_pushinteger(L, p->held ? (lua_Integer)p->k : 0);
  return 1;
}

static int l_release(lua_State *L) {
  lq_permit *p = luaL_checkudata(L, 1, LQ_PERMIT);
  if (!p->held) return 0;
  p->held = 0;
  qn_sema_release(p->s, p->k);
  return 0;
}

static int l_held(lua_State *L) {
  lua_pushboolean(L, ((lq_permit *)luaL_checkudata(L, 1, LQ_PERMIT))->held);
  return 1;
}

/* ---- notify ---- */

static qn_notify *check_notify(lua_State *L) {
  return (qn_notify *)luaL_checkudata(L, 1, LQ_NOTIFY);
}

static int l_notify(lua_State *L) {
  qn_notify_init(lua_newuserdatauv(L, qn_notify_size(), 0));
  luaL_setmetatable(L, LQ_NOTIFY);
  return 1;
}

static int l_notify_one(lua_State *L) {
  qn_notify_one(check_notify(L));
  return 0;
}

static int l_notify_last(lua_State *L) {
  qn_notify_last(check_notify(L));
  return 0;
}

static int l_notify_all(lua_State *L) {
  qn_notify_all(check_notify(L));
  return 0;
}

/* notified is one lq_obj_kind (lua/binding.h) given the notify: the
   direct form's operand is the notify at 1, an op's its user value 1. */
static qn_future *notified_start(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)L, (void)op;
  return qn_notify_notified_new(c->rt->core, obj);
}

static int notified_finish(lua_State *L, void *obj, int op, qn_future *f) {
  (void)L, (void)obj, (void)op;
  qn_notify_notified_take(f);
  return 0;
}

static const lq_obj_kind notified_kind =
  LQ_OBJ_KIND("notified", NULL, notified_start, notified_finish, NULL);
LQ_OBJ_PERFORM_K(notified_k, notified_kind)

static int l_notified(lua_State *L) {
  qn_notify *n = check_notify(L);
  lq_coro *c = lq_await_ctx(L, "quench.notify:notified");
  lua_settop(L, 1);
  return lq_obj_perform(L, c, &notified_kind, n, "quench.notify:notified", NULL, notified_k);
}

static int l_notified_op(lua_State *L) {
  check_notify(L);
  return lq_op_for(L, &notified_kind.base, 1);
}

/* ---- barrier ---- */

static int l_barrier(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 1, 1, "a barrier needs at least 1 task");
  qn_barrier_init(lua_newuserdatauv(L, qn_barrier_size(), 0), (size_t)n);
  luaL_setmetatable(L, LQ_BARRIER);
  return 1;
}

/* A barrier's wait is one lq_obj_kind given the barrier, as notified. */
static qn_future *wait_start(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)L, (void)op;
  return qn_barrier_wait_new(c->rt->core, obj);
}

/* true for the task whose arrival released the others */
static int wait_finish(lua_State *L, void *obj, int op, qn_future *f) {
  (void)obj, (void)op;
  lua_pushboolean(L, qn_barrier_is_leader(f));
  return 1;
}

static const lq_obj_kind wait_kind = LQ_OBJ_KIND("barrier wait", NULL, wait_start, wait_finish, NULL);
LQ_OBJ_PERFORM_K(wait_k, wait_kind)

/* b:wait(): true for the task whose arrival released the others. */
static int l_wait(lua_State *L) {
  qn_barrier *b = luaL_checkudata(L, 1, LQ_BARRIER);
  lq_coro *c = lq_await_ctx(L, "quench.barrier:wait");
  lua_settop(L, 1);
  return lq_obj_perform(L, c, &wait_kind, b, "quench.barrier:wait", NULL, wait_k);
}

static int l_wait_op(lua_State *L) {
  luaL_checkudata(L, 1, LQ_BARRIER);
  return lq_op_for(L, &wait_kind.base, 1);
}

/* ---- registration ---- */

static const luaL_Reg mutex_methods[] = {
  {"lock", l_lock}, {"try_lock", l_try_lock}, {"lock_op", l_lock_op},
  {"is_locked", l_is_locked}, {NULL, NULL}
};
static const luaL_Reg rwlock_methods[] = {
  {"read", l_read}, {"write", l_write}, {"try_read", l_try_read}, {"try_write", l_try_write},
  {"read_op", l_read_op}, {"write_op", l_write_op}, {NULL, NULL}
};
static const luaL_Reg semaphore_methods[] = {
  {"acquire", l_acquire}, {"try_acquire", l_try_acquire}, {"acquire_op", l_acquire_op},
  {"available", l_available}, {"add_permits", l_add_permits},
  {"forget_permits", l_forget_permits}, {"close", l_sema_close}, {"is_closed", l_sema_is_closed},
  {NULL, NULL}
};
static const luaL_Reg permit_methods[] = {
  {"release", l_release}, {"unlock", l_release}, {"held", l_held}, {"forget", l_permit_forget},
  {"split", l_permit_split}, {"merge", l_permit_merge}, {"downgrade", l_permit_downgrade},
  {"count", l_permit_count}, {NULL, NULL}
};
static const luaL_Reg notify_methods[] = {
  {"notify_one", l_notify_one}, {"notify_all", l_notify_all}, {"notify_last", l_notify_last},
  {"notified", l_notified},
  {"notified_op", l_notified_op}, {NULL, NULL}
};
static const luaL_Reg barrier_methods[] = { {"wait", l_wait}, {"wait_op", l_wait_op}, {NULL, NULL} };

static const luaL_Reg functions[] = {
  {"mutex", l_mutex}, {"rwlock", l_rwlock}, {"semaphore", l_semaphore},
  {"notify", l_notify}, {"barrier", l_barrier}, {NULL, NULL}
};

static const luaL_Reg permit_metamethods[] = { {"__close", l_release}, {NULL, NULL} };

void lq_sync_register(lua_State *L, int mod) {
  lq_class(L, mod, LQ_MUTEX, mutex_methods, NULL);
  lq_class(L, mod, LQ_RWLOCK, rwlock_methods, NULL);
  lq_class(L, mod, LQ_SEMAPHORE, semaphore_methods, NULL);
  lq_class(L, mod, LQ_PERMIT, permit_methods, permit_metamethods);
  lq_class(L, mod, LQ_NOTIFY, notify_methods, NULL);
  lq_class(L, mod, LQ_BARRIER, barrier_methods, NULL);
  luaL_setfuncs(L, functions, 0);
}
