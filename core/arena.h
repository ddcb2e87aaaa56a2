/* arena.h — a bump allocator with stack discipline over any address range (host or device). */
#ifndef CORE_ARENA_H
#define CORE_ARENA_H

#include <stddef.h>
#include <stdint.h>

typedef struct sd_arena {
    uintptr_t base;   /* start address (backend memory; never dereferenced here) */
    size_t size, used, peak;
} sd_arena;

#define SD_ARENA_ALIGN 256 /* enough for any vector width and CUDA's coalescing */

static inline void sd_arena_init(sd_arena *a, uintptr_t base, size_t size) {
    a->base = base; a->size = size; a->used = 0; a->peak = 0;
}
/* Returns the address of `bytes` bytes, or 0 if the arena is full. */
static inline uintptr_t sd_arena_alloc(sd_arena *a, size_t bytes) {
    size_t start = (a->used + SD_ARENA_ALIGN - 1) & ~(size_t)(SD_ARENA_ALIGN - 1);
    if (start > a->size || bytes > a->size - start) return 0;
    a->used = start + bytes;
    if (a->used > a->peak) a->peak = a->used;
    return a->base + start;
}
static inline size_t sd_arena_mark(const sd_arena *a) { return a->used; }
static inline void sd_arena_release(sd_arena *a, size_t mark) { if (mark <= a->used) a->used = mark; }

#endif
