/* arena.h — a bump allocator with stack discipline over any address range (host or device). */
#ifndef CORE_ARENA_H
#define CORE_ARENA_H

#include <stddef.h>
#include <stdint.h>

typedef struct mem_arena {
    uintptr_t base;   /* start address (backend memory; never dereferenced here) */
    size_t size, used, peak;
} mem_arena;

#define ARENA_ALIGN 256 /* enough for any vector width and CUDA's coalescing */

static inline void arena_init(mem_arena *a, uintptr_t base, size_t size) {
    a->base = base; a->size = size; a->used = 0; a->peak = 0;
}
/* Returns the address of `bytes` bytes, or 0 if the arena is full. */
static inline uintptr_t arena_alloc(mem_arena *a, size_t bytes) {
    size_t start = (a->used + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (start > a->size || bytes > a->size - start) return 0;
    a->used = start + bytes;
    if (a->used > a->peak) a->peak = a->used;
    return a->base + start;
}
static inline size_t arena_mark(const mem_arena *a) { return a->used; }
static inline void arena_release(mem_arena *a, size_t mark) { if (mark <= a->used) a->used = mark; }

#endif
