/*
** Memory: every block the core allocates goes through these, counted
** against the runtime whose allocator it comes from (quench.h, "Memory").
** The runtime's own block is the last to go: qn__free of the last live
** block after qn_runtime_free releases it. Small blocks that come and go on
** every await (futures) are kept per size class and reused without calling
** the allocator (internal.h says the rules).
*/
#include <stdlib.h>
#include <string.h>
#include "internal.h"

void *qn__default_alloc(void *ud, void *p, size_t n) {
  (void)ud;
  if (n == 0) {
    free(p);
    return NULL;
  }
  return realloc(p, n);
}

void *qn__realloc(qn_runtime *rt, void *p, size_t n) {
  if (n == 0) n = 1;                    /* size 0 would mean free */
  if (rt == NULL) return realloc(p, n);
  rt->stats.allocs++;
  void *q = rt->alloc(rt->alloc_ud, p, n);
  if (q != NULL && p == NULL) rt->stats.live_blocks++;
  return q;
}

void *qn__malloc(qn_runtime *rt, size_t n) { return qn__realloc(rt, NULL, n); }

void *qn__calloc(qn_runtime *rt, size_t n, size_t size) {
  if (size != 0 && n > SIZE_MAX / size) return NULL;
  void *p = qn__realloc(rt, NULL, n * size);
  if (p != NULL) memset(p, 0, n * size);
  return p;
}

/* The runtime's own block goes back last: once freed, and with nothing of
   its own left. */
void qn__release_runtime(qn_runtime *rt) {
  rt->alloc(rt->alloc_ud, rt, 0);
}

void qn__free(qn_runtime *rt, void *p) {
  if (p == NULL) return;
  if (rt == NULL) {
    free(p);
    return;
  }
  rt->alloc(rt->alloc_ud, p, 0);
  if (--rt->stats.live_blocks == 0 && rt->freed) qn__release_runtime(rt);
}

/* Blocks of one size class come from the allocator at the class's full
   size, so any request of that class can reuse them. */
static size_t small_class(size_t n) { return (n + 7) / 8 - 1; }

void qn_runtime_cache_small(qn_runtime *rt, int on) {
  rt->small_off = !on;
}

void *qn__small_alloc(qn_runtime *rt, size_t n) {
  if (rt == NULL || n == 0 || n > QN__SMALL_MAX || rt->small_off) return qn__malloc(rt, n);
  size_t c = small_class(n);
  void *p = rt->small.head[c];
  if (p == NULL) return qn__malloc(rt, (c + 1) * 8);
  rt->small.head[c] = *(void **)p;
  rt->small.count[c]--;
  rt->stats.live_blocks++;
  return p;
}

void qn__small_free(qn_runtime *rt, void *p, size_t n) {
  if (p == NULL) return;
  if (rt == NULL || n == 0 || n > QN__SMALL_MAX || rt->freed || rt->small_off) {
    qn__free(rt, p);
    return;
  }
  size_t c = small_class(n);
  if (rt->small.count[c] >= QN__SMALL_KEEP) {
    qn__free(rt, p);
    return;
  }
  *(void **)p = rt->small.head[c];
  rt->small.head[c] = p;
  rt->small.count[c]++;
  rt->stats.live_blocks--;               /* kept by the runtime, not in use */
}

/* Give the cached blocks back (they are not counted as live). */
void qn__small_flush(qn_runtime *rt) {
  for (size_t c = 0; c < QN__SMALL_CLASSES; c++) {
    void *p = rt->small.head[c];
    while (p != NULL) {
      void *next = *(void **)p;
      rt->alloc(rt->alloc_ud, p, 0);
      p = next;
    }
    rt->small.head[c] = NULL;
    rt->small.count[c] = 0;
  }
}
