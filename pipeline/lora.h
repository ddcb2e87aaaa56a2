/* lora.h — LoRA / LyCORIS adapters in a loaded model: the prompt's <lora:...> tags, which layer each module of a
 * file changes (per model family), and merging them into the weights from the untouched base (kernels/adapter.h
 * has the file formats and the formulas, kernels/wsource.h the base weights).
 *
 *   lora_call lc;
 *   lora_resolve(ctx, params, &lc);   // tags parsed out of the prompt, files found, nothing loaded yet
 *   lora_apply(ctx, &lc);             // the model's weights become base + these adapters (no-op if they already are)
 *   ... encode lc.prompt, sample ...
 *   lora_call_free(&lc);
 *
 * Switching sets between calls re-derives every touched weight from the checkpoint: the images are bit for bit
 * those of a fresh process with that set. */
#ifndef PIPELINE_LORA_H
#define PIPELINE_LORA_H

#include "../kernels/adapter.h"
#include "../kernels/wsource.h"
#include "pipeline.h"

enum { LORA_TE, LORA_TE2, LORA_UNET, LORA_PARTS };

typedef struct lora_use {
    char *name;          /* how the infotext names it: the tag's NAME, or the file name without extension */
    char *path;          /* the file */
    float te, unet;      /* strengths */
    int from_prompt;     /* a <lora:...> tag (else one of sd_gen_params.loras) */
} lora_use;

typedef struct lora_call {
    char *prompt;        /* the prompt as the text encoder sees it: the tags cut out */
    lora_use *v;
    int n;
} lora_call;

/* ---- lora_tags.c ---- */
/* Cuts the <lora:NAME[:TE[:UNET]]> (and <lyco:...>) tags out of the prompt and finds every file: the call's
 * loras, then the tags' NAME.safetensors in p->lora_dir. Errors name the tag or file. */
sd_status lora_resolve(const sd_gen_params *p, lora_call *out);
void lora_call_free(lora_call *lc);

/* ---- lora_apply.c ---- */
typedef struct lora_index lora_index;  /* lora_names.c: a part's layers by their underscore spelling */

/* What a context keeps: the base weights' sources, the adapters now merged, their hashes. */
typedef struct lora_state {
    wsrc_set *src[LORA_PARTS];
    lora_index *index[LORA_PARTS];       /* built on first use */
    lora_use *applied;                   /* the set merged now (name, path, strengths) */
    long long *applied_id;               /* [3 * n] size, mtime seconds, mtime nanoseconds of each file */
    int napplied;
    char *hashes;                        /* "name: hash, ..." of the applied set */
} lora_state;

lora_state *lora_state_new(void);
void lora_state_free(lora_state *s);
/* The registry the loader records a part's weights in (LORA_TE, LORA_TE2, LORA_UNET). */
wsrc_set *lora_sources(lora_state *s, int part);
/* Makes the model's weights base + lc's adapters. A file whose modules match no layer, or that was made for another
 * family, is an error naming it and the family it fits; on any error the model is left at its base weights. */
sd_status lora_apply(sd_ctx *c, const lora_call *lc);
/* "name: hash, ..." of the adapters now applied (AUTOMATIC1111's "Lora hashes"; NULL when none), valid until the
 * next lora_apply. */
const char *lora_hashes(sd_ctx *c);

/* ---- lora_names.c ---- */
/* Which part (LORA_TE ...) and layer of the loaded model a module of an adapter file changes: NULL when none.
 * layers_per_block: the UNet's, for modules named after LDM blocks (kohya's SDXL LoRAs). */
wsrc *lora_target(lora_state *s, const char *module, int layers_per_block, int *part);
void lora_index_free(lora_index *x);
/* The family an adapter file was made for, from its metadata, names and shapes (MODEL_FAMILY_UNKNOWN if unclear);
 * why names the evidence. */
model_family lora_family(const ad_file *a, char *why, size_t cap);

/* ---- describe_adapter.c ---- */
/* `sd info` of a LoRA / LyCORIS file or a textual-inversion embedding: returns 1 (and *st) when path is one. */
int describe_adapter(const char *path, FILE *out, sd_status *st);

#endif
