/* infotext.h — generation settings as text: AUTOMATIC1111's "parameters" chunk and our JSON, both ways. */
#ifndef PIPELINE_INFOTEXT_H
#define PIPELINE_INFOTEXT_H

#include "../sd.h"

/* What the infotext needs beyond the parameters: the resolved values and the model's identity. */
typedef struct infotext_ctx {
    const char *model_name, *model_hash;   /* hash may be NULL */
    const char *sampler, *scheduler;       /* resolved names (never NULL) */
    int width, height, steps;
    float cfg_scale;
    const char *lora_hashes;               /* "name: hash, ..." of the adapters used, or NULL */
    const char *ti_hashes;                 /* the same of the textual-inversion embeddings used */
    const char *const *control_labels;     /* "name [hash]" of each ControlNet of the call (NULL: their paths) */
} infotext_ctx;

/* A1111 layout: prompt / "Negative prompt: ..." / "Steps: 20, Sampler: Euler a, ..." (malloc'd). */
char *infotext_a1111(const sd_gen_params *p, const infotext_ctx *c, uint64_t seed);
/* Our JSON object with every parameter, resolved (malloc'd). */
char *infotext_json(const sd_gen_params *p, const infotext_ctx *c, uint64_t seed);

/* Settings from a PNG's text: our JSON when given, else A1111's text (as sd_params_from_png, which calls it; `src`
 * names the file in messages). Strings in p point into *storage: free it after use. */
sd_status infotext_params_from_text(const char *src, const char *json, const char *a1111, sd_gen_params *p, void **storage);

/* A1111 display name of one of our sampler names ("euler_a" -> "Euler a") and back (NULL if unknown). */
const char *infotext_sampler_to_a1111(const char *ours);
const char *infotext_sampler_from_a1111(const char *a1111);

#endif
