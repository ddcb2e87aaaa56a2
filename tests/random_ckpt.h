/* random_ckpt.h — writes a random-weight checkpoint with the exact tensor names and shapes of a key list
 * (tests/data/sd15-ldm-keys.tsv: "name<TAB>d0,d1,...", plain or gzip), for architecture tests and `make bench`. */
#ifndef TESTS_RANDOM_CKPT_H
#define TESTS_RANDOM_CKPT_H

#include <stdint.h>

#include "../core/safetensors.h"

/* Weights are uniform in ±1/sqrt(fan_in) (PyTorch's default init bound), norm scales 1, biases small,
 * so a forward pass stays finite. Streams to disk (a 1 B-parameter file never sits in memory). */
sd_status random_ckpt_write(const char *keys_tsv, const char *out_path, uint64_t seed, st_dtype dtype);

/* The path of a cached random SD 1.5 checkpoint (f16, seed 1) under build/cache/ ($SD_TEST_CACHE), made on
 * first use from the key list at keys_tsv (tests/data/sd15-ldm-keys.tsv). */
const char *random_ckpt_sd15(const char *keys_tsv);

/* The same for SDXL base (f16, seed 1, ~6.9 GB): the UNet's original names from data_dir/unet-keys-sdxl-ldm.tsv.gz,
 * CLIP-L and the VAE from data_dir/sd15-ldm-keys.tsv under SDXL's prefixes, OpenCLIP bigG's text tower. */
const char *random_ckpt_sdxl(const char *data_dir);

#endif
