/* control.h — the ControlNet job of a generation (control.c), the context's loaded ControlNets (control_models.c),
 * and the control images' preparation (control_image.c: resize modes, the Canny preprocessor in canny.c). */
#ifndef PIPELINE_CONTROL_H
#define PIPELINE_CONTROL_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "../sd.h"
#include "../unet/controlnet.h"

struct gen;
struct sd_ctx;

/* ---- control_models.c: ControlNets loaded by the context, kept while calls name them ---- */
typedef struct control_model {
    char path[4096];
    char name[256];        /* file or folder name without extension */
    char hash[16];         /* first 8 hex digits of the weights file's SHA-256 (sd-webui-controlnet's short hash) */
    controlnet *cn;
} control_model;

/* The loaded ControlNet of `path` (loaded now if needed; others not named by `keep` are freed first). Refuses a
 * ControlNet of another family than the context's model, naming both. */
sd_status control_model_get(struct sd_ctx *c, const char *path, const sd_control *keep, int nkeep, control_model **out);
const char *control_model_hash(control_model *m);
void control_models_free(struct sd_ctx *c);

/* ---- control_image.c ---- */
/* The control map of one sd_control at W x H: the image fitted by its resize mode, preprocessed, as floats in [0, 1]
 * NHWC [H, W, 3] in the model's channel order (bgr). */
sd_status control_image_prepare(const sd_control *sc, int W, int H, int bgr, float **out);
/* Fits an 8-bit image into W x H: "crop" scales to cover and cuts the middle, "just-resize" stretches, "fill" scales
 * to fit and pads with black. Area average when shrinking, bilinear when enlarging. out: W * H * img->c bytes. */
sd_status control_resize(const sd_image *img, const char *mode, int W, int H, uint8_t *out);
/* Canny edges (255 / 0) of an 8-bit image with `ch` interleaved channels, as cv2.Canny(img, low, high). */
sd_status canny_u8(const uint8_t *img, int w, int h, int ch, float low, float high, uint8_t *out);
/* Checks an sd_control's settings (names the control by index). */
sd_status control_validate(const sd_control *sc, int index);

/* ---- control_text.c: settings text ---- */
typedef const char *(*control_keep_fn)(void *st, const char *s); /* copies a string into the caller's storage */
/* The value of AUTOMATIC1111's "ControlNet N" entry (sd-webui-controlnet's layout), malloc'd. */
char *control_text_unit(const sd_control *c, const char *model_label, int guess, int proc_res);
/* Adds our JSON "controls" list (and "control_guess_mode") to j. */
void control_text_json(cJSON *j, const sd_control *c, int n, int guess);
/* Reads them back: controls come back with image NULL and image_name set (the caller loads the picture). */
int control_text_from_json(const cJSON *j, sd_control *out, int max, control_keep_fn keep, void *st, int *guess);
/* One "Key: value" of the A1111 line: returns 1 when it was a "ControlNet N" entry (grows *n to N + 1). */
int control_text_from_a1111(const char *key, const char *val, sd_control *out, int max, control_keep_fn keep, void *st, int *n, int *guess);

/* ---- control.c: the job ---- */
/* "name [hash]" of the call's ControlNet i, for the settings text. */
void control_label(struct gen *g, int i, char *buf, size_t cap);
/* Loads the call's ControlNets and prepares their images (once per call). */
sd_status control_resolve(struct gen *g);
/* The group's control images at the bottom of the arena (after the text contexts); resets the step count. */
void control_group_tensors(struct gen *g, int B);
sd_status control_upload(struct gen *g);
/* Before a UNet call on x [N, h, w, cin] (x_lat: the host latents [B, h, w, lc] of the call): runs the ControlNets
 * active at this model evaluation and points cond->control at their summed residuals (in the arena above the
 * caller's mark), or leaves it NULL. Works in measure mode (x_lat NULL). */
void control_apply(struct gen *g, const be_tensor *x, const float *x_lat, const float *ts, unet_cond *cond);
void control_release(struct gen *g);

#endif
