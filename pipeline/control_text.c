/* control_text.c — ControlNet settings in a picture's metadata: the "ControlNet N" entries of AUTOMATIC1111's
 * parameters line as the sd-webui-controlnet extension writes them, our JSON "controls" list, and both read back. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/numparse.h"
#include "control.h"

static const char *const k_resize[3][2] = {{"crop", "Crop and Resize"}, {"just-resize", "Just Resize"}, {"fill", "Resize and Fill"}};

static const char *resize_a1111(const char *ours) {
    for (int i = 0; i < 3; i++)
        if (ours && !strcmp(ours, k_resize[i][0])) return k_resize[i][1];
    return k_resize[0][1];
}

char *control_text_unit(const sd_control *c, const char *model_label, int guess, int proc_res) {
    char buf[1024];
    int canny = c->preprocess && !strcmp(c->preprocess, "canny");
    int n = snprintf(buf, sizeof buf, "Module: %s, Model: %s, Weight: %g, Resize Mode: %s, Processor Res: %d", canny ? "canny" : "none",
                     model_label, c->strength, resize_a1111(c->resize), proc_res);
    if (canny && n < (int)sizeof buf) n += snprintf(buf + n, sizeof buf - n, ", Threshold A: %g, Threshold B: %g", c->canny_low, c->canny_high);
    if (n < (int)sizeof buf)
        snprintf(buf + n, sizeof buf - n, ", Guidance Start: %g, Guidance End: %g, Pixel Perfect: False, Control Mode: %s", c->start, c->end,
                 guess ? "ControlNet is more important" : "Balanced");
    return strdup(buf);
}

void control_text_json(cJSON *j, const sd_control *c, int n, int guess) {
    if (n <= 0) return;
    cJSON *a = cJSON_AddArrayToObject(j, "controls");
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model", c[i].model ? c[i].model : "");
        if (c[i].image_name) cJSON_AddStringToObject(o, "image", c[i].image_name);
        cJSON_AddNumberToObject(o, "strength", c[i].strength);
        cJSON_AddNumberToObject(o, "start", c[i].start);
        cJSON_AddNumberToObject(o, "end", c[i].end);
        cJSON_AddStringToObject(o, "preprocess", c[i].preprocess ? c[i].preprocess : "none");
        cJSON_AddNumberToObject(o, "canny_low", c[i].canny_low);
        cJSON_AddNumberToObject(o, "canny_high", c[i].canny_high);
        cJSON_AddStringToObject(o, "resize", c[i].resize ? c[i].resize : "crop");
        cJSON_AddItemToArray(a, o);
    }
    if (guess) cJSON_AddBoolToObject(j, "control_guess_mode", 1);
}

/* A stored number; one that is not a number or too large for a float reads as NaN, which the call's checks
 * (control_image.c) then refuse by name: converting it to float would be undefined. */
static float num(const cJSON *o, const char *k, float def) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!x || cJSON_IsNull(x)) return def;
    return cJSON_IsNumber(x) && fabs(x->valuedouble) <= 1e6 ? (float)x->valuedouble : NAN;
}
static float num_text(const char *x) {
    double d;
    return num_parse_double(x, -1e6, 1e6, &d) ? NAN : (float)d;
}

int control_text_from_json(const cJSON *j, sd_control *out, int max, control_keep_fn keep, void *st, int *guess) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "controls");
    *guess = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "control_guess_mode"));
    int n = 0;
    const cJSON *o;
    if (!cJSON_IsArray(a)) return 0;
    cJSON_ArrayForEach(o, a) {
        if (n == max || !cJSON_IsObject(o)) break;
        sd_control *c = &out[n++];
        sd_control_init(c);
        const cJSON *s;
        if (cJSON_IsString(s = cJSON_GetObjectItemCaseSensitive(o, "model"))) c->model = keep(st, s->valuestring);
        if (cJSON_IsString(s = cJSON_GetObjectItemCaseSensitive(o, "image"))) c->image_name = keep(st, s->valuestring);
        if (cJSON_IsString(s = cJSON_GetObjectItemCaseSensitive(o, "preprocess"))) c->preprocess = keep(st, s->valuestring);
        if (cJSON_IsString(s = cJSON_GetObjectItemCaseSensitive(o, "resize"))) c->resize = keep(st, s->valuestring);
        c->strength = num(o, "strength", 1);
        c->start = num(o, "start", 0);
        c->end = num(o, "end", 1);
        c->canny_low = num(o, "canny_low", 100);
        c->canny_high = num(o, "canny_high", 200);
    }
    return n;
}

int control_text_from_a1111(const char *key, const char *val, sd_control *out, int max, control_keep_fn keep, void *st, int *n, int *guess) {
    int idx;
    char rest;
    if (sscanf(key, "ControlNet %d%c", &idx, &rest) != 1 || idx < 0 || idx >= max) return 0;
    while (*n <= idx) sd_control_init(&out[(*n)++]);
    sd_control *c = &out[idx];
    const char *q = val;
    while (*q) { /* "Key: value, Key: value" (the extension's own values hold no ", ") */
        while (*q == ' ' || *q == ',') q++;
        const char *colon = strstr(q, ": ");
        if (!colon) break;
        const char *v = colon + 2, *e = strstr(v, ", ");
        if (!e) e = v + strlen(v);
        char k[64], x[512];
        snprintf(k, sizeof k, "%.*s", (int)(colon - q) < 63 ? (int)(colon - q) : 63, q);
        snprintf(x, sizeof x, "%.*s", (int)(e - v) < 511 ? (int)(e - v) : 511, v);
        if (!strcmp(k, "Module")) c->preprocess = strstr(x, "canny") ? "canny" : "none";
        else if (!strcmp(k, "Model")) {
            char *br = strstr(x, " [");
            if (br) *br = 0; /* "name [hash]": the name; a path must come from the command line */
            c->model = keep(st, x);
        } else if (!strcmp(k, "Weight")) c->strength = num_text(x);
        else if (!strcmp(k, "Guidance Start")) c->start = num_text(x);
        else if (!strcmp(k, "Guidance End")) c->end = num_text(x);
        else if (!strcmp(k, "Threshold A")) c->canny_low = num_text(x);
        else if (!strcmp(k, "Threshold B")) c->canny_high = num_text(x);
        else if (!strcmp(k, "Resize Mode")) {
            for (int i = 0; i < 3; i++)
                if (!strcmp(x, k_resize[i][1])) c->resize = k_resize[i][0];
        } else if (!strcmp(k, "Control Mode")) *guess |= !strcmp(x, "ControlNet is more important");
        q = e;
    }
    return 1;
}
