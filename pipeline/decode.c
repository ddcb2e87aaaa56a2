/* decode.c — final latents to 8-bit images: the VAE decode policy (whole, or in exact bands within an activation
 * budget) and the decode of a group. */
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "gen.h"

#define VAE_MEM_LIMIT ((size_t)2 << 30) /* decode activations above this are tiled (automatic mode) */
/* On the CPU the decode's activations are the process's own RAM, so the budget is what sampling already held in
 * weights (copied, or the mapped file's pages, which be_arena_trim drops before the decode). Below it the decode
 * runs whole; above it, in exact bands within it (each band re-computes a few halo rows, and the host side streams
 * every layer once more). Not the arena's size: a decode grows the arena, and the next generation's budget would
 * creep up by it. One thread, random-weight SD 1.5, Winograd convolutions: 512² whole 11.1 CPU s, 1027 MiB; exact
 * bands within the old fixed 128 MiB 14.2 s (+28%); at 768² and above no band fitted 128 MiB and the policy fell
 * to blended tiles, which are not exact (up to 170/255) and cost up to 2x. Small decodes always run whole. */
#define VAE_WHOLE_CPU ((size_t)320 << 20)

void decode_opts(const sd_ctx *c, int vae_tiling, int h, int w, vae_decode_opts *o, double *flops) {
    vae_decode_opts d = {vae_tiling > 0 ? VAE_TILING_ON : vae_tiling < 0 ? VAE_TILING_OFF : VAE_TILING_AUTO, VAE_MEM_LIMIT, 0, 0};
    vae_decode_opts whole = {VAE_TILING_OFF, 0, 0, 0};
    double f = c->vb->flops; /* a measure pass of the untiled decoder: counts FLOPs that are not run */
    vae_decode_arena_bytes(c->vb, c->vae, h, w, &whole);
    if (flops) *flops = c->vb->flops - f;
    c->vb->flops = f;
    if (c->vb->ops->host_memory) {
        size_t held = c->b->weight_bytes + c->b->weight_mapped;
        if (c->vb != c->b) held += c->vb->weight_bytes + c->vb->weight_mapped;
        d.mem_limit = held > VAE_WHOLE_CPU ? held : VAE_WHOLE_CPU;
    }
    *o = d;
}

static sd_status ensure_arena(be *b, size_t bytes) {
    if (bytes <= b->arena.size) return SD_OK;
    return be_arena_reserve(b, bytes + (bytes >> 4));
}

sd_status decode_group(gen *g, const float *x, sd_result *r) {
    sd_ctx *c = g->c;
    int B = g->B;
    size_t npix = (size_t)g->W * g->H * 3;
    double td = gen_now(), fd = 0, f0 = c->b->flops;
    vae_decode_opts vo;
    size_t need = 0;
    if (!c->taesd_decodes) {
        decode_opts(c, g->p->vae_tiling, g->h, g->w, &vo, &fd);
        r->timings.decode_flops += fd * B;
        need = vae_decode_arena_bytes(c->vb, c->vae, g->h, g->w, &vo);
    }
    if (need > r->timings.peak_activation_bytes) r->timings.peak_activation_bytes = need;
    sd_status st = ensure_arena(c->vb, need);
    float *rgb = st == SD_OK ? malloc(B * npix * sizeof(float)) : NULL;
    if (st == SD_OK && !rgb) st = err_fail(SD_ERR_MEMORY, "out of memory for the decoded images");
    if (st == SD_OK && c->taesd_decodes) { /* the TAESD decodes in place of the VAE (tiny.c sizes its own arena) */
        st = tiny_decode(c, x, B, g->h, g->w, rgb);
        r->timings.decode_flops += c->b->flops - f0;
    } else if (st == SD_OK) {
        st = vae_decode(c->vb, c->vae, x, B, g->h, g->w, &vo, rgb);
    }
    for (int i = 0; i < B && st == SD_OK; i++) {
        sd_image *im = &r->images[g->first + i];
        im->data = malloc(npix);
        if (!im->data) {
            st = err_fail(SD_ERR_MEMORY, "out of memory for the decoded images");
            break;
        }
        im->w = g->W;
        im->h = g->H;
        im->c = 3;
        vae_image_to_u8(rgb + i * npix, npix, im->data);
    }
    r->timings.decode += gen_now() - td;
    free(rgb);
    return st;
}
