/* rng.h — seed-exact Gaussian noise: torch's CPU generator (mt19937) and CUDA's Philox4x32-10, as UIs use them.
 *
 *   rng r;
 *   rng_init(&r, RNG_TORCH_CPU, 42);
 *   rng_randn(&r, latent, 4 * 64 * 64);   // == torch.randn((1,4,64,64), generator=torch.Generator().manual_seed(42))
 *   rng_randn(&r, noise, n);              // == the next torch.randn call on that generator
 *
 * One rng_randn call is one torch.randn call: the element count decides torch's code path (>= 16 elements: the
 * 16-wide Box-Muller with its tail re-draw; < 16: the scalar double path with a cached second value), and the
 * state carries over between calls exactly as torch's generator does. Values come out in torch's order (NCHW for
 * a latent); transposing to NHWC is the caller's business.
 *
 * RNG_PHILOX reproduces torch.randn(device="cuda") the way AUTOMATIC1111 ("GPU"/"NV" source) and
 * stable-diffusion.cpp (`--rng cuda`) emulate it on the CPU: element i of the k-th call is Philox4x32-10 of counter
 * (k, 0, i, 0) and key (seed lo, seed hi), turned into sqrt(-2 ln u) sin(v). We follow A1111's arithmetic (double
 * intermediates, rounded to float at the end), which agrees with real CUDA output to ~1e-6 but not bit for bit. */
#ifndef SCHEDULER_RNG_H
#define SCHEDULER_RNG_H

#include <stddef.h>
#include <stdint.h>

#include "../core/status.h"

typedef enum rng_kind {
    RNG_TORCH_CPU,  /* "cpu":  torch.Generator() on the CPU (diffusers with a CPU generator, A1111 "CPU") */
    RNG_PHILOX,     /* "cuda": torch CUDA Philox (A1111 "GPU", the default of A1111 and stable-diffusion.cpp) */
    RNG_KIND_COUNT
} rng_kind;

#define RNG_MT_N 624

typedef struct rng {
    rng_kind kind;
    uint64_t seed;
    /* RNG_TORCH_CPU: torch's mt19937 engine and its cached second Box-Muller value (double path) */
    uint32_t mt[RNG_MT_N];
    int mt_next, mt_left;
    int has_cached_normal;
    double cached_normal;
    /* RNG_PHILOX: how many randn calls were made (the counter's first word) */
    uint32_t philox_offset;
} rng;

void rng_init(rng *r, rng_kind kind, uint64_t seed);

/* Fill out[0..n) with standard normals = one torch.randn(n) call on this generator. n may be 0 (no draw). */
void rng_randn(rng *r, float *out, size_t n);

/* One raw 32-bit draw of the torch CPU engine (torch's random(); for tests against published integer vectors). */
uint32_t rng_torch_cpu_u32(rng *r);

/* "cpu" / "cuda" (also "philox", "gpu", "torch") -> kind; unknown names fail with SD_ERR_ARG listing the choices. */
sd_status rng_kind_from_name(const char *name, rng_kind *out);
const char *rng_kind_name(rng_kind kind);

#endif
