/* mask.h — an inpainting mask prepared the way AUTOMATIC1111's img2img prepares it: thresholded, inverted on
 * request, then blurred (Gaussian, separately along x and y). */
#ifndef SERVER_MASK_H
#define SERVER_MASK_H

#include "../../sd.h"

/* m: 1 channel. round: threshold at 128 (A1111 mask_round); blur_x/blur_y: Gaussian sigmas in pixels (0: none).
 * Returns 0 or -1 (out of memory). */
int mask_prepare(sd_image *m, int round, int invert, double blur_x, double blur_y);

#endif
