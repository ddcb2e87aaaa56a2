/* fuzz_image.c — image decoding as sd_image_load does it (-i, --mask, a job's init_image): the format sniffing and
 * the PNG (libpng), JPEG (libjpeg-turbo), WebP (libwebp) and BMP (stb_image) decoders, into RGB and into grey. */
#include "fuzz.h"

#include "../../core/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (int ch = 1; ch <= 3; ch += 2) {
        sd_image img;
        if (image_decode("fuzz.img", data, size, ch, &img) != SD_OK) {
            if (img.data) abort(); /* a refusal leaves nothing behind */
            continue;
        }
        unsigned sum = 0; /* every pixel is written: reading them all lets ASan / MSan see one that is not */
        for (size_t i = 0, n = (size_t)img.w * img.h * img.c; i < n; i++) sum += img.data[i];
        (void)sum;
        sd_image_free(&img);
    }
    return 0;
}
