/*
** The Lua state's small-block allocator (arena.c): installed by
** luaopen_quench, also serving the core's small blocks (quench.c's
** core_alloc) on the loop thread.
*/
#ifndef QUENCH_ARENA_H
#define QUENCH_ARENA_H

#include <stddef.h>
#include <lua.h>

typedef struct lq_arena lq_arena;

/* Install it in L's state (or find it installed); NULL when it is off
   (sanitizers, valgrind, QUENCH_ARENA=0) or the system refused. */
lq_arena *lq_arena_install(lua_State *L);
/* realloc and free for the core's blocks: small ones from the arena, the
   rest (and blocks that are not the arena's) from malloc. */
void *lq_arena_core_realloc(lq_arena *a, void *p, size_t n);
void lq_arena_core_free(lq_arena *a, void *p);
/* Bytes of chunks handed out so far (0 when a is NULL). */
size_t lq_arena_bytes(const lq_arena *a);

#endif
