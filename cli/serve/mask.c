/* mask.c — threshold and invert of an 8-bit mask (A1111's create_binary_mask, then ImageOps.invert). */
#include "mask.h"

size_t mask_prepare(sd_image *m, int round, int invert) {
    size_t n = (size_t)m->w * m->h, set = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t v = m->data[i];
        if (round) v = v > 128 ? 255 : 0;
        m->data[i] = invert ? (uint8_t)(255 - v) : v;
        set += m->data[i] != 0;
    }
    return set;
}
