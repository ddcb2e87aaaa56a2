/* image_codec.h — what core's image decoders share (inside core only): the output buffer with its size checks,
 * and the one channel conversion every format uses, so a picture reads the same whatever its format. */
#ifndef CORE_IMAGE_CODEC_H
#define CORE_IMAGE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "image.h"

/* Checks w x h against IMAGE_MAX_SIDE / IMAGE_MAX_PIXELS (SD_ERR_FORMAT, naming the file and format) and
 * allocates out->data for `channels` (SD_ERR_MEMORY). */
sd_status image_alloc(const char *name, const char *format, long w, long h, int channels, sd_image *out);

/* Converts n pixels of src_c channels (1 grey, 2 grey + alpha, 3 RGB, 4 RGBA) into dst_c (1 or 3): alpha is
 * dropped (as Pillow's convert("RGB") does), grey from colour is ITU-R 601-2 luma rounded as Pillow's convert("L")
 * computes it, so a mask reads as diffusers' preprocessing sees it. dst may be src when dst_c <= src_c. */
void image_convert_row(const uint8_t *src, int src_c, uint8_t *dst, int dst_c, int n);

/* The decoders: data/len is the whole file, `name` is for messages; on failure out is empty. */
sd_status image_decode_png(const char *name, const uint8_t *data, size_t len, int channels, sd_image *out);
sd_status image_decode_jpeg(const char *name, const uint8_t *data, size_t len, int channels, sd_image *out);
sd_status image_decode_webp(const char *name, const uint8_t *data, size_t len, int channels, sd_image *out);
sd_status image_decode_bmp(const char *name, const uint8_t *data, size_t len, int channels, sd_image *out);

#endif
