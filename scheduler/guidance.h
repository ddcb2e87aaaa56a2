/* guidance.h — classifier-free guidance arithmetic on host arrays: the CFG combination and diffusers'
 * guidance rescale (rescale_noise_cfg, "Common Diffusion Noise Schedules and Sample Steps are Flawed" §3.4). */
#ifndef SCHEDULER_GUIDANCE_H
#define SCHEDULER_GUIDANCE_H

#include <stddef.h>

#include "../core/status.h"

/* out = uncond + scale·(cond - uncond), n floats (out may alias either input). */
void sched_cfg_combine(const float *uncond, const float *cond, float scale, size_t n, float *out);

/* guided <- φ·guided·(std(cond)/std(guided)) + (1-φ)·guided, with the unbiased standard deviation taken over each
 * batch item (per_item floats; torch.std over all dims but the batch). φ = 0 leaves guided unchanged. Fails for
 * φ outside [0, 1], per_item < 2, or a batch item whose guided output has zero spread. */
sd_status sched_guidance_rescale(float *guided, const float *cond, int batch, size_t per_item, float phi);

#endif
