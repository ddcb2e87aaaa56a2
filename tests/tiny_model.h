/* tiny_model.h — a tiny random-weight SD 1.x diffusers folder for end-to-end tests of `sd batch` / `sd compare`
 * (layout in tests/data/tiny-sd/, from tools/tiny_sd.py): renders a 64x64 image in a fraction of a second. */
#ifndef TESTS_TINY_MODEL_H
#define TESTS_TINY_MODEL_H

/* The folder build/cache/tiny-sd (or $SD_TEST_CACHE/tiny-sd), written on first use with seeded random weights
 * (tests/random_ckpt.c); NULL if it cannot be written. */
const char *tiny_model_dir(void);

#endif
