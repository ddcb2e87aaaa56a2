/* guidance.c — CFG combination and guidance rescale (diffusers rescale_noise_cfg). */
#include "guidance.h"

#include <math.h>

#include "../core/error.h"

void sched_cfg_combine(const float *uncond, const float *cond, float scale, size_t n, float *out) {
    for (size_t i = 0; i < n; i++) out[i] = uncond[i] + scale * (cond[i] - uncond[i]);
}

/* Unbiased standard deviation, two-pass in double (torch reduces in a wider accumulator too). */
static double stddev(const float *x, size_t n) {
    double mean = 0, ss = 0;
    for (size_t i = 0; i < n; i++) mean += x[i];
    mean /= (double)n;
    for (size_t i = 0; i < n; i++) ss += (x[i] - mean) * (x[i] - mean);
    return sqrt(ss / (double)(n - 1));
}

sd_status sched_guidance_rescale(float *guided, const float *cond, int batch, size_t per_item, float phi) {
    if (!(phi >= 0.0f && phi <= 1.0f)) return err_fail(SD_ERR_ARG, "guidance rescale %g is outside [0, 1]", phi);
    if (phi == 0.0f) return SD_OK;
    if (batch < 1 || per_item < 2) return err_fail(SD_ERR_ARG, "guidance rescale needs >= 2 values per batch item");
    for (int b = 0; b < batch; b++) {
        float *g = guided + (size_t)b * per_item;
        double sg = stddev(g, per_item), sc = stddev(cond + (size_t)b * per_item, per_item);
        if (!(sg > 0)) return err_fail(SD_ERR_ARG, "guidance rescale: guided output of batch item %d has no spread", b);
        float ratio = (float)(sc / sg);
        for (size_t i = 0; i < per_item; i++) g[i] = phi * (g[i] * ratio) + (1.0f - phi) * g[i];
    }
    return SD_OK;
}
