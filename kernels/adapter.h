/* adapter.h — LoRA-family adapter files and the weight update each of their modules makes to one layer.
 *
 * Formats, told apart by the names of each module's tensors (the module's name is the key up to that suffix):
 *   LoRA / LoCon   .lora_down.weight .lora_up.weight [.lora_mid.weight] [.alpha]      kohya-ss, AUTOMATIC1111,
 *                  (down [r, in] linear, [r, in, kh, kw] LoCon conv; mid: LyCORIS Tucker conv)   LyCORIS
 *                  .lora_A.weight .lora_B.weight [.alpha]                             diffusers / PEFT
 *                  .lora.down.weight .lora.up.weight, .lora_linear_layer.{down,up}.weight, _lora.{down,up}.weight
 *                                                                                     older diffusers files
 *   LoHa           .hada_w1_a .hada_w1_b .hada_w2_a .hada_w2_b [.hada_t1 .hada_t2] [.alpha]        LyCORIS
 *   LoKr           .lokr_w1 | .lokr_w1_a .lokr_w1_b,  .lokr_w2 | .lokr_w2_a .lokr_w2_b [.lokr_t2] [.alpha]
 *   DoRA           .dora_scale (kohya, LyCORIS) or .lora_magnitude_vector (PEFT) beside any of the above
 * Module names stay the file's ("lora_unet_down_blocks_0_..._to_q", "unet.down_blocks.0....to_q"): which layer a
 * module changes is decided by the pipeline (pipeline/lora_names.c), per model family.
 *
 * The update of a module to a layer whose weight is W [out, in, kh, kw] (PyTorch order), at strength λ:
 *   LoRA     ΔW = up · down                       (with mid: up · mid · down per kernel tap)
 *   LoHa     ΔW = (w1a · w1b) ⊙ (w2a · w2b)        (Tucker: each factor rebuilt from t · w_a · w_b per tap)
 *   LoKr     ΔW = w1 ⊗ w2                          (Kronecker product; a factored w is w_a · w_b, or Tucker)
 *   scale s = alpha / rank when the module has an alpha (rank: down's rows, w1b's rows; a LoKr with both factors
 *   full has scale 1), else 1;  W' = W + λ s ΔW.
 *   DoRA     W' = W + λ (m ⊙ (W + s ΔW) / ‖W + s ΔW‖ − W): the norm over each output row (magnitude m [out]) or, for
 *            LyCORIS' older [1, in] layout, over each input column. At λ = 1 this is the published DoRA merge; other
 *            strengths blend linearly between W and it, so λ = 0 is the base model.
 * These are the formulas of AUTOMATIC1111's Lora extension and LyCORIS, written from their definitions. */
#ifndef KERNELS_ADAPTER_H
#define KERNELS_ADAPTER_H

#include "../core/safetensors.h"

typedef enum ad_type { AD_LORA, AD_LOHA, AD_LOKR } ad_type;

typedef struct ad_module {
    char *name;                                        /* the module's name in the file */
    ad_type type;
    const st_tensor *up, *down, *mid;                  /* LoRA / LoCon */
    const st_tensor *w1a, *w1b, *w2a, *w2b, *t1, *t2;  /* LoHa (hada_*), LoKr (lokr_w1_a ... lokr_t2) */
    const st_tensor *w1, *w2;                          /* LoKr full factors */
    const st_tensor *dora;                             /* DoRA magnitudes, or NULL */
    int dora_peft;                                     /* dora is PEFT's lora_magnitude_vector (always per output row) */
    int rank;                                          /* 0: a LoKr of two full factors */
    int has_alpha;
    float alpha;
    float scale;                                       /* s: alpha / rank (alpha / √rank for rsLoRA), or 1 */
    int kh, kw;                                        /* kernel the factors imply (1 x 1 for linear layers) */
} ad_module;

typedef struct ad_file {
    st_file *f;
    ad_module *mod;
    int n;
    const char **stray;   /* tensors of no module this engine applies (other methods, partial modules), in file order */
    int nstray;
} ad_file;

/* Opens an adapter file and groups its tensors into modules. Malformed modules (factors whose ranks disagree,
 * an alpha that is not one number, non-float factors) are errors naming the file and the tensor. */
sd_status ad_open(const char *path, ad_file **out);
void ad_close(ad_file *a);
const char *ad_type_name(const ad_module *m); /* "LoRA", "LoCon", "LoHa", "LoKr" (+ " DoRA") */

/* The update's kernel and the layer's shape agree (the factors' element counts match out x in x kh x kw);
 * else an error naming the module and both shapes. */
sd_status ad_check(const ad_file *a, const ad_module *m, int out, int in, int kh, int kw);

/* acc [out * in * kh * kw] += the module's update at strength λ to the layer whose original weight is base (same
 * layout; read only by DoRA). scratch: NULL or out * in * kh * kw floats (the function allocates otherwise). */
sd_status ad_apply(const ad_file *a, const ad_module *m, const float *base, int out, int in, int kh, int kw, float strength,
                   float *acc, float *scratch);

#endif
