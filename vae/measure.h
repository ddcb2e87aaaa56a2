/* measure.h — nestable measure mode for the autoencoders' sizing functions: inside a caller's measurement the
 * arena is already fake, so only the peak above the current top is tracked. */
#ifndef VAE_MEASURE_H
#define VAE_MEASURE_H

#include "../kernels/backend.h"

typedef struct measure { int nested; mem_arena saved; } measure;

static inline void measure_begin(be *b, measure *m) {
    m->nested = b->measuring;
    if (m->nested) {
        m->saved = b->arena;
        b->arena.peak = b->arena.used;
    } else {
        be_measure_begin(b);
    }
}

static inline size_t measure_end(be *b, measure *m) {
    if (!m->nested) return be_measure_end(b);
    size_t peak = b->arena.peak - m->saved.used;
    b->arena = m->saved;
    return peak;
}

#endif
