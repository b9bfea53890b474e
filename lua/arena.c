/*
** The small-block allocator of a Lua state that loads quench (lua_setallocf).
**
** Why: an idle task is a handful of small blocks (the thread's lua_State,
** its stack, its call frames, the task handle, the wait's future) and
** glibc's malloc adds an 8-byte header to each and rounds it up to 16:
** about 80 bytes of a task's ~1.5 KB (docs/performance.md, "W7, part by
** part"). Here every block of at most ARENA_MAX bytes comes from a chunk
** that holds blocks of one size class only, classes 8 bytes apart: no
** header, and a block is the size asked for rounded up to 8. Lua aligns
** what it stores for LUAI_MAXALIGN only (8 bytes on the 64-bit targets;
** a userdata's memory already sits 8 bytes off a 16-byte boundary).
**
** Where: one reservation of address space (ARENA_RESERVE, PROT_NONE, so
** no memory until used), committed ARENA_COMMIT bytes at a time, carved
** into 64 KiB chunks. A block is ours iff its address falls inside the
** reservation (one comparison), and a chunk's class is in a byte table at
** the start of the reservation, so a free needs no size (the core's
** allocator gives none). The blocks of the allocator the state had before
** (the interpreter's bootstrap, and anything too large) stay with it:
** frees and reallocations of them are forwarded to it. A freed block goes
** on its class's free list and is reused by its class only; chunks are
** never handed back to the system before the state closes (the price of
** having no headers: memory freed in one class does not serve another).
**
** When: installed by luaopen_quench (lq_arena_install) for the whole
** state, not just quench's objects; not under AddressSanitizer or valgrind
** (they must see each block on its own; QUENCH_ARENA=1 keeps it on under
** valgrind, for callgrind's instruction counts), nor when the environment
** has QUENCH_ARENA=0. It lives until lua_close frees the state's main block,
** the very last call lua_close makes to the allocator: then the whole
** reservation, the allocator's own state included, is unmapped. lua_close
** unloads C modules (dlclose) before it frees the objects, so installing
** makes quench.so stay loaded (RTLD_NODELETE): its code must outlive the
** state's last free.
**
** Not thread-safe, like the Lua state it serves: only that state's
** thread, and the core's allocator on the loop thread (quench.c,
** core_alloc), use it.
*/
#define _GNU_SOURCE     /* dladdr */
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "binding.h"
#include "arena.h"

#if defined(__SANITIZE_ADDRESS__)
#define ARENA_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define ARENA_SANITIZED 1
#endif
#endif
#ifndef ARENA_SANITIZED
#define ARENA_SANITIZED 0
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define ARENA_UNDER_VALGRIND() RUNNING_ON_VALGRIND
#endif
#endif
#ifndef ARENA_UNDER_VALGRIND
#define ARENA_UNDER_VALGRIND() 0
#endif

enum {
  ARENA_GRAIN = 8,                        /* class spacing and alignment */
  ARENA_MAX = 1024,                       /* larger blocks: the previous allocator */
  ARENA_CLASSES = ARENA_MAX / ARENA_GRAIN,
  ARENA_CHUNK_SHIFT = 16,                 /* 64 KiB chunks */
};
#define ARENA_CHUNK ((size_t)1 << ARENA_CHUNK_SHIFT)
#define ARENA_COMMIT ((size_t)1 << 20)    /* made usable 1 MiB at a time */
/* Address space only: pages cost memory once touched. 16 GiB of small
   blocks is some 10 million idle tasks; past it, blocks come from the
   previous allocator. */
#define ARENA_RESERVE ((size_t)16 << 30)
#define ARENA_NCHUNKS (ARENA_RESERVE >> ARENA_CHUNK_SHIFT)
_Static_assert(_Alignof(lq_maxalign) <= ARENA_GRAIN, "blocks 8 bytes apart keep Lua's alignment");

struct lq_arena {
  char *base;                   /* the reservation, ARENA_CHUNK-aligned */
  uintptr_t first;              /* the first chunk (after this struct and the table) */
  uintptr_t next;               /* the first chunk not handed out yet */
  uintptr_t committed;          /* the end of what is readable and writable */
  uintptr_t limit;              /* the end of the reservation */
  lua_Alloc prev;               /* the allocator the state had before */
  void *prev_ud;
  const void *main_block;       /* the state's main block: lua_close frees it last */
  void *map;                    /* what mmap returned, and its size (for munmap) */
  size_t mapped;
  void *free[ARENA_CLASSES];    /* each class's freed blocks, a list */
  uintptr_t cur[ARENA_CLASSES], end[ARENA_CLASSES];   /* the class's chunk being carved */
  uint8_t *class_of;            /* per chunk: its class + 1; 0 while unused */
};

static inline size_t class_for(size_t n) { return (n - 1) / ARENA_GRAIN; }

static inline int owns(const lq_arena *a, const void *p) {
  return (uintptr_t)p - (uintptr_t)a->base < ARENA_RESERVE;
}

static inline size_t class_at(const lq_arena *a, const void *p) {
  return (size_t)a->class_of[((uintptr_t)p - (uintptr_t)a->base) >> ARENA_CHUNK_SHIFT] - 1;
}

/* A new chunk for class c; 0 when the reservation is used up or the
   system refuses the memory. */
static int refill(lq_arena *a, size_t c) {
  if (a->limit - a->next < ARENA_CHUNK) return 0;
  if (a->next + ARENA_CHUNK > a->committed) {
    if (mprotect((void *)a->committed, ARENA_COMMIT, PROT_READ | PROT_WRITE) != 0) return 0;
    a->committed += ARENA_COMMIT;
  }
  a->class_of[(a->next - (uintptr_t)a->base) >> ARENA_CHUNK_SHIFT] = (uint8_t)(c + 1);
  a->cur[c] = a->next;
  a->end[c] = a->next + ARENA_CHUNK - ARENA_CHUNK % ((c + 1) * ARENA_GRAIN);
  a->next += ARENA_CHUNK;
  return 1;
}

/* A block of class c, or NULL (then the caller asks the previous allocator). */
static inline void *take(lq_arena *a, size_t c) {
  void *b = a->free[c];
  if (b != NULL) {
    a->free[c] = *(void **)b;
    return b;
  }
  size_t size = (c + 1) * ARENA_GRAIN;
  if (a->end[c] - a->cur[c] < size && !refill(a, c)) return NULL;
  b = (void *)a->cur[c];
  a->cur[c] += size;
  return b;
}

static inline void give(lq_arena *a, void *p) {
  size_t c = class_at(a, p);
  *(void **)p = a->free[c];
  a->free[c] = p;
}

/* Unmap everything, this struct included (it lives in the reservation). */
static void destroy(lq_arena *a) {
  munmap(a->map, a->mapped);
}

/* Move an owned block p into q, a block of nsize bytes (nsize > 0, of
   another class or from another allocator); q NULL: none could be had,
   and p stays as it was. */
static void *move_block(lq_arena *a, void *p, size_t nsize, void *q) {
  if (q == NULL) return NULL;
  size_t osize = (class_at(a, p) + 1) * ARENA_GRAIN;
  memcpy(q, p, osize < nsize ? osize : nsize);
  give(a, p);
  return q;
}

/* The lua_Alloc. */
static void *arena_alloc(void *ud, void *p, size_t osize, size_t nsize) {
  lq_arena *a = ud;
  if (p != NULL && owns(a, p)) {
    if (nsize == 0) {
      give(a, p);
      return NULL;
    }
    if (nsize <= ARENA_MAX) {
      size_t c = class_for(nsize);
      if (c == class_at(a, p)) return p;
      void *q = take(a, c);
      if (q != NULL) return move_block(a, p, nsize, q);
    }
    return move_block(a, p, nsize, a->prev(a->prev_ud, NULL, 0, nsize));
  }
  if (p == NULL && nsize - 1 < ARENA_MAX) {       /* 1..ARENA_MAX */
    void *q = take(a, class_for(nsize));
    if (q != NULL) return q;
  }
  if (p != NULL && p == a->main_block && nsize == 0) {   /* lua_close's last call */
    lua_Alloc prev = a->prev;
    void *prev_ud = a->prev_ud;
    destroy(a);
    return prev(prev_ud, p, osize, 0);
  }
  return a->prev(a->prev_ud, p, osize, nsize);
}

void *lq_arena_core_realloc(lq_arena *a, void *p, size_t n) {
  if (p != NULL && owns(a, p)) {
    if (n <= ARENA_MAX) {
      size_t c = class_for(n);
      if (c == class_at(a, p)) return p;
      void *q = take(a, c);
      if (q != NULL) return move_block(a, p, n, q);
    }
    return move_block(a, p, n, malloc(n));
  }
  if (p == NULL && n <= ARENA_MAX) {
    void *q = take(a, class_for(n));
    if (q != NULL) return q;
  }
  return realloc(p, n);
}

void lq_arena_core_free(lq_arena *a, void *p) {
  if (owns(a, p)) give(a, p);
  else free(p);
}

size_t lq_arena_bytes(const lq_arena *a) {
  return a == NULL ? 0 : (size_t)(a->next - a->first);
}

/* Keep quench.so loaded until the process ends: lua_close would dlclose
   it before its last call to this allocator. */
static int pin_module(void) {
  Dl_info info;
  if (dladdr((void *)&arena_alloc, &info) == 0 || info.dli_fname == NULL) return 0;
  return dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE) != NULL;
}

lq_arena *lq_arena_install(lua_State *L) {
  void *ud;
  lua_Alloc prev = lua_getallocf(L, &ud);
  if (prev == arena_alloc) return ud;             /* loaded again in this state */
  /* QUENCH_ARENA=0: off; =1: on under valgrind too (callgrind's counts of
     the build as it runs, docs/performance.md); unset: on but under
     memcheck & co. Never under AddressSanitizer. */
  if (sizeof(void *) < 8) return NULL;           /* the reservation needs 64-bit addresses */
  const char *env = getenv("QUENCH_ARENA");
  if (ARENA_SANITIZED || (env != NULL && strcmp(env, "0") == 0)) return NULL;
  if (ARENA_UNDER_VALGRIND() && (env == NULL || strcmp(env, "1") != 0)) return NULL;
  /* The chunk table and this struct take the reservation's first chunks. */
  size_t head = sizeof(lq_arena) + ARENA_NCHUNKS;
  head = (head + ARENA_CHUNK - 1) & ~(ARENA_CHUNK - 1);
  size_t mapped = ARENA_RESERVE + ARENA_CHUNK;    /* room to align the base */
  char *m = mmap(NULL, mapped, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) return NULL;
  char *base = (char *)(((uintptr_t)m + ARENA_CHUNK - 1) & ~(uintptr_t)(ARENA_CHUNK - 1));
  size_t commit = (head + ARENA_COMMIT - 1) & ~(ARENA_COMMIT - 1);
  if (mprotect(base, commit, PROT_READ | PROT_WRITE) != 0 || !pin_module()) {
    munmap(m, mapped);
    return NULL;
  }
  /* The struct at the base: blocks start after the head, so no block of
     ours is at the reservation's first address. */
  lq_arena *a = (lq_arena *)base;
  memset(a, 0, sizeof *a);
  a->base = base;
  a->class_of = (uint8_t *)(a + 1);
  a->first = a->next = (uintptr_t)base + head;
  a->committed = (uintptr_t)base + commit;
  a->limit = (uintptr_t)base + ARENA_RESERVE;
  a->prev = prev;
  a->prev_ud = ud;
  a->map = m;
  a->mapped = mapped;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  a->main_block = lua_getextraspace(lua_tothread(L, -1));
  lua_pop(L, 1);
  lua_setallocf(L, arena_alloc, a);
  return a;
}
