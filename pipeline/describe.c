/* describe.c — `sd info`: what a model, safetensors file or generated PNG contains. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../core/error.h"
#include "../core/fileio.h"
#include "../core/image.h"
#include "lora.h"
#include "model_files.h"
#include "pipeline.h"

static void count_params(const st_file *f, const char *prefix, int64_t *params, int *tensors, int dtypes[ST_DTYPE_COUNT]) {
    size_t n = strlen(prefix);
    for (int i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        if (strncmp(t->name, prefix, n)) continue;
        *params += t->numel;
        (*tensors)++;
        if (dtypes) dtypes[t->dtype]++;
    }
}

static void print_dtypes(FILE *out, const int dtypes[ST_DTYPE_COUNT]) {
    int first = 1;
    for (int d = 0; d < ST_DTYPE_COUNT; d++)
        if (dtypes[d]) { fprintf(out, "%s%s×%d", first ? "" : ", ", st_dtype_name((st_dtype)d), dtypes[d]); first = 0; }
}

static void describe_component(FILE *out, const char *label, const model_component *c) {
    if (!c->file) return;
    int64_t params = 0;
    int tensors = 0, dtypes[ST_DTYPE_COUNT] = {0};
    count_params(c->file, c->prefix, &params, &tensors, dtypes);
    fprintf(out, "  %-13s %6.1f M parameters in %4d tensors (", label, params / 1e6, tensors);
    print_dtypes(out, dtypes);
    fprintf(out, ")%s\n", c->original_names ? ", original names" : "");
}

static int default_size(const model_files *m) {
    if (m->family == MODEL_FAMILY_SDXL || m->family == MODEL_FAMILY_SDXL_REFINER) return 1024;
    if (m->family == MODEL_FAMILY_SD2 && m->prediction == MODEL_PRED_V) return 768;
    return m->sample_size ? m->sample_size * 8 : 512; /* range-checked by model_files_open */
}

static sd_status describe_png(const char *path, FILE *out) {
    sd_image img;
    sd_status st = sd_image_load(path, 3, &img);
    if (st != SD_OK) return st;
    fprintf(out, "%s: PNG image, %dx%d\n", path, img.w, img.h);
    sd_image_free(&img);
    image_text *t;
    int n;
    if ((st = image_read_png_text(path, &t, &n)) != SD_OK) return st;
    if (!n) fprintf(out, "  no text chunks (no generation parameters)\n");
    for (int i = 0; i < n; i++) fprintf(out, "%s:\n%s\n", t[i].key, t[i].value);
    image_text_free(t, n);
    return SD_OK;
}

/* Whether path is a regular file that starts with PNG's signature (whatever its name: a PNG saved as "castle" or
 * "castle.jpg" is still one; anything else falls through to the model readers). */
static int is_png_file(const char *path) {
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    int fd;
    if (file_open_regular(path, &fd, NULL) != SD_OK) return 0; /* (a folder, a FIFO: the readers below say what it is) */
    unsigned char b[8];
    const ssize_t n = read(fd, b, sizeof b);
    close(fd);
    return n == (ssize_t)sizeof b && !memcmp(b, sig, sizeof b);
}

sd_status sd_describe(const char *path, FILE *out) {
    const char *dot = strrchr(path, '.');
    if ((dot && (!strcmp(dot, ".png") || !strcmp(dot, ".PNG"))) || is_png_file(path)) return describe_png(path, out);
    if (tiny_detect(path)) return tiny_describe(path, out); /* by its tensor names (a folder: its config and weights) */
    sd_status st;
    if (describe_adapter(path, out, &st)) return st; /* a LoRA or an embedding */
    model_files m;
    st = model_files_open(path, NULL, &m);
    if (st == SD_OK) {
        const char *pred = m.prediction == MODEL_PRED_V ? "v-prediction" : m.prediction == MODEL_PRED_EPS ? "epsilon" : "unknown (assumed epsilon; override with --prediction)";
        fprintf(out, "%s: %s\n", path, m.is_folder ? "diffusers folder" : "single-file checkpoint");
        fprintf(out, "  family        %s%s (%s)\n", model_family_name(m.family), m.in_channels == 9 ? " inpainting" : m.in_channels == 8 ? " instruct-pix2pix" : "", m.family_reason);
        fprintf(out, "  prediction    %s\n", pred);
        fprintf(out, "  resolution    %dx%d (default)\n", default_size(&m), default_size(&m));
        if (m.default_cfg || m.default_steps) /* the folder's own "_sd_defaults" (model_index.json) */
            fprintf(out, "  sampling      %d steps, guidance %g (the model's defaults)\n", model_files_default_steps(&m),
                    (double)model_files_default_cfg(&m));
        sched_model sm;
        char sp[4200], text[2048];
        snprintf(sp, sizeof sp, "%s/scheduler/scheduler_config.json", m.path);
        if (!m.scheduler_config) sched_model_default(&sm, m.family == MODEL_FAMILY_SDXL);
        else if (sched_model_parse(m.scheduler_config, sp, &sm) != SD_OK) {
            model_files_close(&m);
            return SD_ERR_MODEL; /* the parser left the message */
        }
        sched_model_describe(&sm, text, sizeof text);
        fputs(text, out);
        describe_component(out, "unet", &m.unet);
        describe_component(out, "vae", &m.vae);
        describe_component(out, "text_encoder", &m.te);
        describe_component(out, "text_encoder_2", &m.te2);
        model_files_close(&m);
        return SD_OK;
    }
    /* not a model we can run: describe the safetensors file itself if it is one */
    if (st != SD_ERR_MODEL || file_is_dir(path)) return st;
    char why[1024];
    snprintf(why, sizeof why, "%s", sd_last_error());
    st_file *f;
    if ((st = st_open(path, &f)) != SD_OK) return st;
    int64_t params = 0;
    int tensors = 0, dtypes[ST_DTYPE_COUNT] = {0};
    count_params(f, "", &params, &tensors, dtypes);
    fprintf(out, "%s: safetensors file, %d tensors, %" PRId64 " parameters (", path, tensors, params);
    print_dtypes(out, dtypes);
    fprintf(out, ")\n  not a runnable model: %s\n", why);
    st_close(f);
    return SD_OK;
}
