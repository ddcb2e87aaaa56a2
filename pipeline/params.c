/* params.c — parameter defaults and validation shared by sd_generate and sd_check_params. */
#include <math.h>
#include <string.h>

#include "../core/error.h"
#include "pipeline.h"

void sd_load_params_init(sd_load_params *p) {
    memset(p, 0, sizeof *p);
    p->backend = SD_BACKEND_AUTO;
}

void sd_gen_params_init(sd_gen_params *p) {
    memset(p, 0, sizeof *p);
    p->cfg_scale = -1.0f; /* the model's default */
    p->seed = 42;
    p->batch_count = 1;
    p->batch_size = 1;
    p->strength = 0.75f;
    p->hires_denoise = 0.7f; /* AUTOMATIC1111's default denoising strength of the hires pass */
}

sd_status params_validate(const sd_gen_params *p, int width, int height) {
    if (!p->prompt) return err_fail(SD_ERR_ARG, "no prompt given");
    const char *texts[2] = {p->prompt, p->negative_prompt}, *what[2] = {"prompt", "negative prompt"};
    for (int i = 0; i < 2; i++)
        if (texts[i] && strlen(texts[i]) > SD_PROMPT_MAX_BYTES)
            return err_fail(SD_ERR_ARG, "%s is %zu bytes long: at most %d are accepted", what[i], strlen(texts[i]), SD_PROMPT_MAX_BYTES);
    if (width % 8 || height % 8 || width < 8 || height < 8 || width > 8192 || height > 8192)
        return err_fail(SD_ERR_ARG, "size %dx%d: width and height must be multiples of 8 between 8 and 8192", width, height);
    if (p->steps < 0 || p->steps > 1000) return err_fail(SD_ERR_ARG, "steps %d: must be between 1 and 1000", p->steps);
    if (p->batch_count < 1 || p->batch_count > 100000) return err_fail(SD_ERR_ARG, "batch count %d: must be at least 1", p->batch_count);
    if (p->batch_size < 1 || p->batch_size > 64) return err_fail(SD_ERR_ARG, "batch size %d: must be between 1 and 64", p->batch_size);
    if (!isfinite(p->cfg_scale) || p->cfg_scale > 100) return err_fail(SD_ERR_ARG, "cfg scale %g: must be between 0 and 100", p->cfg_scale);
    if (!(p->guidance_rescale >= 0 && p->guidance_rescale <= 1)) return err_fail(SD_ERR_ARG, "guidance rescale %g: must be between 0 and 1", p->guidance_rescale);
    if (!(p->eta >= 0 && p->eta <= 1)) return err_fail(SD_ERR_ARG, "eta %g: must be between 0 and 1", p->eta);
    if (p->clip_skip < 0 || p->clip_skip > 12) return err_fail(SD_ERR_ARG, "clip skip %d: must be between 0 and 12", p->clip_skip);
    if (!(p->variation_strength >= 0 && p->variation_strength <= 1)) return err_fail(SD_ERR_ARG, "variation strength %g: must be between 0 and 1", p->variation_strength);
    if (p->init_image) {
        if (!(p->strength >= 0 && p->strength <= 1)) return err_fail(SD_ERR_ARG, "strength %g: must be between 0 and 1", p->strength);
        if (!p->init_image->data || p->init_image->w < 1 || p->init_image->h < 1) return err_fail(SD_ERR_ARG, "init image is empty");
    }
    if (p->mask) {
        if (!p->init_image) return err_fail(SD_ERR_ARG, "a mask needs an init image (inpainting)");
        if (p->mask->w != p->init_image->w || p->mask->h != p->init_image->h)
            return err_fail(SD_ERR_ARG, "mask is %dx%d but the init image is %dx%d: they must be the same size", p->mask->w, p->mask->h,
                           p->init_image->w, p->init_image->h);
    }
    if (p->mask_blur < 0 || p->mask_blur > 128) return err_fail(SD_ERR_ARG, "mask blur %d: must be between 0 and 128", p->mask_blur);
    if (p->inpaint_padding < 0 || p->inpaint_padding > 8192) return err_fail(SD_ERR_ARG, "inpaint padding %d: must be between 0 and 8192", p->inpaint_padding);
    if (!p->mask && (p->mask_blur || p->inpaint_only_masked || p->inpaint_padding || p->inpaint_fill))
        return err_fail(SD_ERR_ARG, "%s needs a mask", p->mask_blur ? "mask blur" : p->inpaint_fill ? "masked content" : "inpaint only masked");
    if (p->inpaint_padding && !p->inpaint_only_masked) return err_fail(SD_ERR_ARG, "inpaint padding needs inpaint only masked");
    if (p->clip_skip_negative < 0 || p->clip_skip_negative > 12)
        return err_fail(SD_ERR_ARG, "clip skip of the negative prompt %d: must be between 0 and 12", p->clip_skip_negative);
    if (p->timestep_spacing && strcmp(p->timestep_spacing, "leading") && strcmp(p->timestep_spacing, "linspace") &&
        strcmp(p->timestep_spacing, "trailing"))
        return err_fail(SD_ERR_ARG, "unknown timestep spacing \"%s\" (valid: leading, linspace, trailing)", p->timestep_spacing);
    if (p->rng && strcmp(p->rng, "cpu") && strcmp(p->rng, "cuda"))
        return err_fail(SD_ERR_ARG, "unknown rng \"%s\" (valid: cuda, cpu)", p->rng);
    if (p->sampler_rng && strcmp(p->sampler_rng, "cpu") && strcmp(p->sampler_rng, "cuda"))
        return err_fail(SD_ERR_ARG, "unknown sampler rng \"%s\" (valid: cuda, cpu)", p->sampler_rng);
    if (p->convention && strcmp(p->convention, "diffusers") && strcmp(p->convention, "kdiffusion"))
        return err_fail(SD_ERR_ARG, "unknown schedule convention \"%s\" (valid: diffusers, kdiffusion)", p->convention);
    return SD_OK;
}
