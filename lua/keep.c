/*
** The keep (keep.h): the one home of the values a runtime holds. The floor:
** it knows no object type.
*/
#include <stdlib.h>
#include <lauxlib.h>
#include "keep.h"

void lq_keep_init(lua_State *L, lq_keeper *k) {
  k->K = lua_newthread(L);
  k->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(k->K);                   /* at K's LQ_KEEP_TABLE, for ever */
  k->max = k->nfree = k->cap = k->nthreads = 0;
  k->free = NULL;
}

void lq_keep_free(lua_State *L, lq_keeper *k) {
  luaL_unref(L, LUA_REGISTRYINDEX, k->ref);
  k->ref = LUA_NOREF;
  k->K = NULL;
  free(k->free);
  k->free = NULL;
  k->max = k->nfree = k->cap = k->nthreads = 0;
}

/* Give h back to the free list; if the list cannot grow, h is just not
   reused (the table keeps a nil there). */
void lq_release(lq_keeper *k, int h) {
  if (h <= 0) return;                   /* LQ_NOKEEP, LUA_NOREF: nothing kept */
  lua_pushnil(k->K);
  lua_rawseti(k->K, LQ_KEEP_TABLE, h);
  if (k->nfree == k->cap) {
    int ncap = k->cap ? k->cap * 2 : 16;
    int *na = realloc(k->free, (size_t)ncap * sizeof *na);
    if (na == NULL) return;
    k->free = na;
    k->cap = ncap;
  }
  k->free[k->nfree++] = h;
}

int lq_keep_thread(lq_keeper *k, lua_State *from) {
  if (!lua_checkstack(k->K, 1)) return 0;
  lua_xmove(from, k->K, 1);
  k->nthreads++;
  return 1;
}
