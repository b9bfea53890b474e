/*
** Ops ("quench.op"): single-use futures, made by the `x_op` form of every
** waiting function and started only when awaited or selected (a sleep_op's
** deadline counts from then). `op:await()` waits on one; select and timeout
** take them as branches.
*/
#include "binding.h"

const char lq_op_tag = 0;

lq_op *lq_op_new(lua_State *L, const lq_op_kind *kind, int nuv) {
  lq_op *op = lua_newuserdatauv(L, sizeof *op, nuv);
  op->tag = &lq_op_tag;
  op->kind = kind;
  op->used = 0;
  op->arg = 0;
  op->obj = NULL;
  lua_rawgeti(L, LUA_REGISTRYINDEX, lq_module_of(L)->mt_op);
  lua_setmetatable(L, -2);
  return op;
}

/* Push a new op of `kind` on the object at obj (kept as its user value 1). */
int lq_op_for(lua_State *L, const lq_op_kind *kind, int obj) {
  obj = lua_absindex(L, obj);
  lq_op_new(L, kind, 1)->obj = lua_touserdata(L, obj);
  lua_pushvalue(L, obj);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

lq_op *lq_test_op(lua_State *L, int idx) {
  return (lq_op *)lq_toudata(L, idx, &lq_op_tag, sizeof(lq_op));
}

static lq_op *check_op(lua_State *L, int idx) {
  lq_op *op = lq_test_op(L, idx);
  if (op == NULL) luaL_typeerror(L, idx, LQ_OP);
  return op;
}

/* Raise if the op at idx (an op: the caller checked) cannot start: used
   already, or its kind says no. */
void lq_op_check(lua_State *L, int idx, lq_coro *c, const char *fname) {
  lq_op *op = lua_touserdata(L, idx);
  if (op->used)
    luaL_error(L, "%s: this %s op was already used (ops are single-use)", fname, op->kind->name);
  if (op->kind->check) op->kind->check(L, idx, c);
}

/* Start a checked op (marking it used). NULL when out of memory. */
qn_future *lq_op_start(lua_State *L, int idx, lq_coro *c) {
  lq_op *op = lua_touserdata(L, idx);
  op->used = 1;
  return op->kind->start(L, idx, c);
}

int lq_op_arg(lua_State *L, int op, int i) {
  if (op != 0) return lua_getiuservalue(L, op, i);
  lua_pushvalue(L, i);
  return lua_type(L, -1);
}

/* The generic continuation of lq_perform (binding.h). ctx: the kind's
   address, its low bit set for an op userdata at index 1 (clear: a direct
   call, op 0). A kind is a static struct of pointers: its address is even. */
int lq_perform_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  lq_runtime *rt = lq_module_of(L)->rt;
  if (rt == NULL || rt->running == NULL || rt->running->co != L)   /* LQ_RESUMED */
    return lq_refuse_resume(L, ctx, lq_perform_k);
  qn_future *f = lq_take_op_of(L, rt->running);
  const lq_op_kind *kind = (const lq_op_kind *)(ctx & ~(lua_KContext)1);
  int n = kind->finish(L, (int)(ctx & 1), f);
  qn_drop(f);
  return n < 0 ? lua_error(L) : n;
}

/* The op form of an object wait (lq_obj_kind, binding.h): the object was
   resolved when the op was made. */
#define OBJ_OP(L, op) ((lq_op *)lua_touserdata((L), (op)))
#define OBJ_KIND(o) ((const lq_obj_kind *)(o)->kind)

void lq_obj_check(lua_State *L, int op, lq_coro *c) {
  lq_op *o = OBJ_OP(L, op);
  if (OBJ_KIND(o)->check != NULL) OBJ_KIND(o)->check(L, o->obj, op, c);
}

qn_future *lq_obj_start(lua_State *L, int op, lq_coro *c) {
  lq_op *o = OBJ_OP(L, op);
  return OBJ_KIND(o)->start(L, o->obj, op, c);
}

int lq_obj_finish(lua_State *L, int op, qn_future *f) {
  lq_op *o = OBJ_OP(L, op);
  return OBJ_KIND(o)->finish(L, o->obj, op, f);
}

int lq_obj_now(lua_State *L, int op) {
  lq_op *o = OBJ_OP(L, op);
  if (OBJ_KIND(o)->now == NULL) return -1;
  return OBJ_KIND(o)->now(L, o->obj, op, NULL);
}

/* The direct form's wait starts over (LQ_AGAIN): a new future, awaited
   by the same continuation. */
int lq_obj_again(lua_State *L, lq_coro *c, const lq_obj_kind *kind, void *obj, const char *what,
                 lua_KFunction self) {
  qn_future *f = kind->start(L, obj, 0, c);
  if (f == NULL) return luaL_error(L, "%s: out of memory", kind->base.name);
  c->what = what;
  return lq_await(L, c, f, self, (lua_KContext)c);
}

static int l_await(lua_State *L) {
  lq_op *op = check_op(L, 1);
  lq_coro *c = lq_await_ctx(L, "quench.op:await");
  lua_settop(L, 1);
  return lq_perform(L, c, op->kind, 1, "quench.op:await", NULL);
}

static int l_tostring(lua_State *L) {
  lq_op *op = check_op(L, 1);
  lua_pushfstring(L, "quench.op (%s%s)", op->kind->name, op->used ? ", used" : "");
  return 1;
}

/* quench.op(fn, ...): an op that runs fn(...) as a select branch of the
   task that awaits it (op:await, quench.select, quench.timeout): how a wait
   written in Lua (an interval's tick, a rate limiter's acquire) becomes an
   op. Its user value 1 is {fn, args...}. Dropped, the branch is dropped as
   any select loser is: its <close> variables run. */
static void call_check(lua_State *L, int op, lq_coro *c) {
  (void)op;
  lq_check_nesting(L, c, "quench.op");
}

static qn_future *call_start(lua_State *L, int op, lq_coro *c) {
  int top = lua_gettop(L);
  lua_getiuservalue(L, op, 1);
  int pack = top + 1;
  int n = (int)lua_rawlen(L, pack);
  if (!lua_checkstack(L, n)) {
    lua_settop(L, top);
    return NULL;                        /* reported as out of memory */
  }
  for (int i = 1; i <= n; i++) lua_rawgeti(L, pack, i);
  lq_coro *b = lq_branch_new(L, c, pack + 1, n - 1);   /* anchored until its drop */
  lua_settop(L, top);
  return &b->base;
}

static int call_finish(lua_State *L, int op, qn_future *f) {
  (void)op;
  return lq_branch_results(L, (lq_coro *)f);   /* base is lq_coro's first member */
}

static const lq_op_kind call_kind = { "call", call_check, call_start, call_finish, NULL };

static int l_op(lua_State *L) {
  if (!lua_isfunction(L, 1))
    return luaL_error(L, "bad argument #1 to 'quench.op' (function expected, got %s)",
                      luaL_typename(L, 1));
  int n = lua_gettop(L);
  lua_createtable(L, n, 0);
  for (int i = 1; i <= n; i++) {
    lua_pushvalue(L, i);
    lua_rawseti(L, -2, i);
  }
  lq_op_new(L, &call_kind, 1);
  lua_insert(L, -2);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

static const luaL_Reg functions[] = {
  {"op", l_op}, {NULL, NULL}
};

void lq_op_register(lua_State *L, int mod) {
  luaL_newmetatable(L, LQ_OP);
  lua_pushvalue(L, -1);
  ((lq_module *)lua_touserdata(L, mod))->mt_op = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushcfunction(L, l_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_newtable(L);
  lua_pushvalue(L, mod);
  lua_pushcclosure(L, l_await, 1);
  lua_setfield(L, -2, "await");
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_pushvalue(L, mod);
  luaL_setfuncs(L, functions, 1);
}
