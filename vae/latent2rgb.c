/* latent2rgb.c — linear latent-to-RGB factors per latent space, and the conversion. */
#include "latent2rgb.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

#include "../core/error.h"

/* SD 1.x/2.x and SDXL: the projections (with bias) of stable-diffusion.cpp's src/latent-preview.h (MIT licence,
 * see NOTICE), fitted there on the real VAEs. They act on UNet-space latents and give colours in [-1, 1]. */
static const vae_latent_rgb k_sd = {4,
                                    {{0.337366f, 0.216344f, 0.257386f},
                                     {0.165636f, 0.386828f, 0.046994f},
                                     {-0.267803f, 0.237036f, 0.223517f},
                                     {-0.178022f, -0.200862f, -0.678514f}},
                                    {-0.017478f, -0.055834f, -0.105825f}};
static const vae_latent_rgb k_sdxl = {4,
                                      {{0.258303f, 0.277640f, 0.329699f},
                                       {-0.299701f, 0.105446f, 0.014194f},
                                       {0.050522f, 0.186163f, -0.143257f},
                                       {-0.211938f, -0.149892f, -0.080036f}},
                                      {0.144381f, -0.033313f, 0.007061f}};

const vae_latent_rgb *vae_latent_rgb_table(const char *space) {
    if (!space) return NULL;
    if (!strcmp(space, "sd")) return &k_sd;
    if (!strcmp(space, "sdxl")) return &k_sdxl;
    return NULL;
}

void vae_latent_to_rgb(const vae_latent_rgb *f, const float *latent, size_t count, uint8_t *rgb) {
    int lc = f->channels;
    for (size_t i = 0; i < count; i++) {
        const float *x = latent + i * lc;
        for (int k = 0; k < 3; k++) {
            float v = f->bias[k];
            for (int c = 0; c < lc; c++) v += x[c] * f->factors[c][k];
            float u = v * 0.5f + 0.5f;
            if (!(u > 0.0f)) u = 0.0f; /* also NaN */
            if (u > 1.0f) u = 1.0f;
            rgb[i * 3 + k] = (uint8_t)nearbyintf(u * 255.0f);
        }
    }
}

static int triple(const cJSON *a, float out[3]) {
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 3) return 0;
    for (int k = 0; k < 3; k++) {
        const cJSON *e = cJSON_GetArrayItem(a, k);
        if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble) || fabs(e->valuedouble) > 100) return 0;
        out[k] = (float)e->valuedouble;
    }
    return 1;
}

int vae_latent_rgb_from_json(const cJSON *config, const char *what, int channels, vae_latent_rgb *out) {
    const cJSON *j = cJSON_IsObject(config) ? cJSON_GetObjectItemCaseSensitive(config, "_sd_latent_rgb") : NULL;
    int rc = 0;
    if (j) {
        const cJSON *fs = cJSON_GetObjectItemCaseSensitive(j, "factors"), *bias = cJSON_GetObjectItemCaseSensitive(j, "bias");
        rc = cJSON_IsArray(fs) && cJSON_GetArraySize(fs) == channels && channels <= VAE_MAX_LATENT && triple(bias, out->bias) ? 1 : -1;
        for (int c = 0; rc == 1 && c < channels; c++) rc = triple(cJSON_GetArrayItem(fs, c), out->factors[c]) ? 1 : -1;
        out->channels = channels;
        if (rc < 0)
            err_fail(SD_ERR_FORMAT, "%s: \"_sd_latent_rgb\" must be {\"factors\": %d rows of [r, g, b], \"bias\": [r, g, b]} with finite numbers", what,
                     channels);
    }
    return rc;
}
