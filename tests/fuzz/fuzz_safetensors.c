/* fuzz_safetensors.c — the safetensors reader on a file in memory (st_open_memory): the 8-byte length, the JSON
 * header, dtypes, shapes, offsets and metadata; then each tensor is looked up and the float ones converted, as a
 * loader does. */
#include "fuzz.h"

#include "../../core/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    st_file *f;
    if (st_open_memory("fuzz.safetensors", data, size, &f) != SD_OK) return 0;
    static float buf[1 << 14];
    for (int i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        if (st_find(f, t->name) != t) abort(); /* names are unique once accepted: the index must agree */
        if (st_dtype_is_float(t->dtype) && t->numel <= (int64_t)(sizeof buf / sizeof *buf)) st_read_f32(f, t, buf);
    }
    (void)st_meta(f, "format");
    st_close(f);
    return 0;
}
