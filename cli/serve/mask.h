/* mask.h — an inpainting mask prepared the way AUTOMATIC1111's img2img prepares it before the blur: thresholded
 * (mask_round) and inverted on request (inpainting_mask_invert). The blur, the crop of inpaint_full_res and the
 * masked-content fill are the library's (sd_gen_params.mask_blur, inpaint_only_masked, inpaint_fill). */
#ifndef SERVER_MASK_H
#define SERVER_MASK_H

#include "../../sd.h"

/* m: 1 channel, changed in place. round: 255 above 128, else 0 (A1111's create_binary_mask). Returns the number of
 * non-zero pixels afterwards (0: nothing to repaint). */
size_t mask_prepare(sd_image *m, int round, int invert);

#endif
