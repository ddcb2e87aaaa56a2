/* wsource.h — where each loaded matrix came from: the checkpoint tensor (and which rows of it) a be_weight was
 * uploaded from, and the type it was handed to the backend in. Adapters (LoRA, LyCORIS) merge their updates into
 * such weights and later put the originals back; both go through here, so a weight is always either exactly
 * what loading made of the file or base + update computed from the file again (never a merge undone in f16).
 *
 *   wsrc_set *s = wsrc_set_new();
 *   wmap_record(m, s);                 // before the model's load: wmap_load notes every matrix it uploads
 *   unet_load(b, m, &cfg, &u);
 *   ...
 *   wsrc *x = wsrc_at(s, i);
 *   wsrc_read(x, w);                   // the original as f32 [out, in, kh, kw]
 *   wsrc_upload(x, merged);            // replaces the backend's copy (stored in the original's type)
 *   wsrc_upload(x, NULL);              // back to exactly what loading uploaded
 *
 * The files must stay open (and the model alive) while the set is used. */
#ifndef KERNELS_WSOURCE_H
#define KERNELS_WSOURCE_H

#include "../core/safetensors.h"
#include "backend.h"

typedef struct wsrc {
    char *name;              /* canonical name ("down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight") */
    be *b;
    be_weight *w;            /* the model's weight: kind and shape say what it is */
    const st_file *file;
    st_tensor t;             /* the file's tensor (its data stays mapped while the file is open) */
    int64_t row0;            /* first row of t this weight holds (OpenCLIP's stacked q, k, v); 0 otherwise */
    be_dtype type;           /* the type the load gave be_weight_upload: the file's, or F32 for reworked tensors */
    int modified;            /* holds something else than what loading uploaded */
} wsrc;

typedef struct wsrc_set wsrc_set;

wsrc_set *wsrc_set_new(void);
void wsrc_set_free(wsrc_set *s);
/* Notes that w (rows [row0, row0 + w->out) of t in f) was uploaded as `type`. */
sd_status wsrc_add(wsrc_set *s, const char *name, be *b, be_weight *w, const st_file *f, const st_tensor *t, int64_t row0, be_dtype type);
int wsrc_count(const wsrc_set *s);
wsrc *wsrc_at(wsrc_set *s, int i);
wsrc *wsrc_find(wsrc_set *s, const char *name);
/* Elements of the weight: out * in * kh * kw. */
size_t wsrc_numel(const wsrc *x);
/* The original weight as f32, PyTorch layout [out, in, kh, kw] (the file's pages are released after). */
sd_status wsrc_read(const wsrc *x, float *dst);
/* Replaces the backend's copy with `data` (f32, PyTorch layout, stored in x->type as the load stored the
 * original), or with the original itself when data is NULL. The old copy is freed only once the new one is in
 * place: on failure the weight is unchanged. */
sd_status wsrc_upload(wsrc *x, const float *data);

#endif
