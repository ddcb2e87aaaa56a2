/* fuzz_infotext.c — settings read back from a PNG's text: the first byte picks the format (odd: our "sd" JSON,
 * even: AUTOMATIC1111's "parameters" text), the rest is the text. */
#include "fuzz.h"

#include "../../pipeline/infotext.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    char *text = fuzz_text(data + 1, size - 1);
    if (!text) return 0;
    sd_gen_params p;
    void *store;
    int json = data[0] & 1;
    if (infotext_params_from_text("fuzz.png", json ? text : NULL, json ? NULL : text, &p, &store) == SD_OK) {
        if (!json && !p.prompt) abort(); /* A1111's text always gives a prompt, "" at least (JSON may lack the key) */
        free(store);
    }
    free(text);
    return 0;
}
