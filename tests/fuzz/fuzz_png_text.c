/* fuzz_png_text.c — `--from-png` and `sd info` on a PNG: its text chunks (tEXt, zTXt, iTXt, before or after the
 * pixels) through libpng, then the settings in them (our "sd" JSON or A1111's "parameters"). */
#include "fuzz.h"

#include "../../core/image.h"
#include "../../pipeline/infotext.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    image_text *t;
    int n;
    if (image_png_text_decode("fuzz.png", data, size, &t, &n) != SD_OK) return 0;
    const char *json = NULL, *a1111 = NULL;
    for (int i = 0; i < n; i++) {
        if (!strcmp(t[i].key, "sd")) json = t[i].value;
        if (!strcmp(t[i].key, "parameters")) a1111 = t[i].value;
    }
    sd_gen_params p;
    void *store;
    if ((json || a1111) && infotext_params_from_text("fuzz.png", json, a1111, &p, &store) == SD_OK) free(store);
    image_text_free(t, n);
    return 0;
}
