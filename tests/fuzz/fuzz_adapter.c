/* fuzz_adapter.c — the LoRA-family adapter reader (kernels/adapter_file.c) on a whole .safetensors file: grouping
 * tensors into modules by their names (LoRA / LoCon, LoHa, LoKr, DoRA, PEFT spellings), ranks, alphas, Tucker cores;
 * then each module's shape check and, where it passes for a small layer, its update (kernels/adapter_math.c).
 * ad_open takes a path, so the input goes through a memfd (a regular file, as the readers require). */
#include "fuzz.h"

#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../kernels/adapter.h"

/* The layer sizes a module's own factors suggest: rows of its first factor, columns of its last. */
static void guess_layer(const ad_module *m, int64_t *out, int64_t *in) {
    const st_tensor *a = m->up ? m->up : m->w1a ? m->w1a : m->w1;
    const st_tensor *b = m->down ? m->down : m->w2b ? m->w2b : m->w2;
    *out = a && a->ndim ? a->shape[0] : 0;
    *in = b && b->ndim > 1 ? b->shape[1] : 0;
    if (m->type == AD_LOKR && m->w1 && m->w2 && m->w1->ndim == 2 && m->w2->ndim >= 2) { /* Kronecker: products */
        *out = m->w1->shape[0] * m->w2->shape[0];
        *in = m->w1->shape[1] * m->w2->shape[1];
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int fd = memfd_create("fuzz-adapter", 0);
    if (fd < 0) return 0;
    size_t done = 0;
    while (done < size) {
        ssize_t w = write(fd, data + done, size - done);
        if (w <= 0) break;
        done += (size_t)w;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ad_file *a;
    if (done == size && ad_open(path, &a) == SD_OK) {
        static float base[1 << 14], acc[1 << 14];
        for (int i = 0; i < a->n; i++) {
            const ad_module *m = &a->mod[i];
            (void)ad_type_name(m);
            int64_t out, in;
            guess_layer(m, &out, &in);
            if (out <= 0 || in <= 0 || out * in * m->kh * m->kw > (int64_t)(sizeof acc / sizeof *acc)) continue;
            if (ad_check(a, m, (int)out, (int)in, m->kh, m->kw) != SD_OK) continue;
            size_t n = (size_t)(out * in * m->kh * m->kw);
            for (size_t k = 0; k < n; k++) base[k] = acc[k] = 0.25f;
            (void)ad_apply(a, m, base, (int)out, (int)in, m->kh, m->kw, 0.7f, acc, NULL);
        }
        ad_close(a);
    }
    close(fd);
    return 0;
}
