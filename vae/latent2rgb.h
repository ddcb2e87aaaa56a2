/* latent2rgb.h — the cheapest preview: a latent pixel's colour as a linear function of its channels,
 * rgb = bias + Σ_c latent_c · factors[c] in [-1, 1], on the latents the UNet sees (after the scaling factor). One
 * table per latent space (SD 1.x/2.x share the VAE, SDXL has its own); a VAE's config.json may carry its own
 * factors ("_sd_latent_rgb", as the bundled demo model's does) for a latent space of its own. */
#ifndef VAE_LATENT2RGB_H
#define VAE_LATENT2RGB_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "vae.h"

typedef struct vae_latent_rgb {
    int channels;                     /* latent channels the factors are for */
    float factors[VAE_MAX_LATENT][3];
    float bias[3];
} vae_latent_rgb;

/* The table of a latent space by name: "sd" (SD 1.x and 2.x) or "sdxl"; NULL for others. */
const vae_latent_rgb *vae_latent_rgb_table(const char *space);

/* latent [count, channels] -> 8-bit RGB [count, 3] (the preview is latent-sized: 1/8 of the picture's sides). */
void vae_latent_to_rgb(const vae_latent_rgb *f, const float *latent, size_t count, uint8_t *rgb);

/* Reads "_sd_latent_rgb": {"factors": [[r, g, b] x channels], "bias": [r, g, b]} from a VAE's config.json object
 * (may be NULL) into out. Returns 1 when present and valid, 0 when absent, -1 (with the error naming `what`) when
 * present but malformed. */
int vae_latent_rgb_from_json(const cJSON *config, const char *what, int channels, vae_latent_rgb *out);

#endif
