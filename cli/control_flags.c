/* control_flags.c — the ControlNet flags of `sd generate`: --control-net PATH --control-image PNG, repeatable. Each
 * --control-net starts a ControlNet; --control-image, --control-strength ... after it (up to the next --control-net)
 * set that one; those given before the first --control-net set the first. */
#include "control_flags.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { K_NET, K_IMAGE, K_STRENGTH, K_START, K_END, K_PRE, K_LOW, K_HIGH, K_RESIZE, K_COUNT };

static const struct {
    const char *flag;
    int kind;
} k_flags[] = {
    {"--control-net", K_NET},        {"--control-image", K_IMAGE},   {"--control-strength", K_STRENGTH},
    {"--control-start", K_START},    {"--control-end", K_END},       {"--control-preprocess", K_PRE},
    {"--canny-low", K_LOW},          {"--canny-high", K_HIGH},       {"--control-resize", K_RESIZE},
};

void cli_controls_init(cli_controls *cc) {
    memset(cc, 0, sizeof *cc);
    for (int i = 0; i < SD_MAX_CONTROLS; i++) sd_control_init(&cc->c[i]);
}

static int number(const char *flag, const char *v, float lo, float hi, float *out) {
    char *e;
    float x = strtof(v, &e);
    if (e == v || *e || !(x >= lo && x <= hi)) {
        fprintf(stderr, "error: %s %s: expected a number between %g and %g\n", flag, v, lo, hi);
        return -1;
    }
    *out = x;
    return 1;
}

int cli_control_flag(cli_controls *cc, const char *flag, const char *v) {
    if (!strcmp(flag, "--control-guess-mode")) {
        cc->guess = 1;
        return 1;
    }
    if (!strcmp(flag, "--canny")) flag = "--control-preprocess", v = "canny"; /* stable-diffusion.cpp's switch */
    int kind = -1;
    for (size_t i = 0; i < sizeof k_flags / sizeof *k_flags; i++)
        if (!strcmp(flag, k_flags[i].flag)) kind = k_flags[i].kind;
    if (kind < 0) return 0;
    int i = kind == K_NET ? cc->count[K_NET]++ : (cc->count[K_NET] ? cc->count[K_NET] - 1 : 0);
    if (kind != K_NET) cc->count[kind]++;
    if (i >= SD_MAX_CONTROLS) {
        fprintf(stderr, "error: %s: at most %d ControlNets\n", flag, SD_MAX_CONTROLS);
        return -1;
    }
    sd_control *c = &cc->c[i];
    switch (kind) {
    case K_NET: c->model = v; return 1;
    case K_IMAGE: cc->image_path[i] = v; c->image_name = v; return 1; /* a second one for the same ControlNet replaces it */
    case K_STRENGTH: return number(flag, v, 0, 10, &c->strength);
    case K_START: return number(flag, v, 0, 1, &c->start);
    case K_END: return number(flag, v, 0, 1, &c->end);
    case K_LOW: return number(flag, v, 0, 2040, &c->canny_low);
    case K_HIGH: return number(flag, v, 0, 2040, &c->canny_high);
    case K_PRE:
        if (strcmp(v, "canny") && strcmp(v, "none")) {
            fprintf(stderr, "error: --control-preprocess %s: valid values are canny, none\n", v);
            return -1;
        }
        c->preprocess = v;
        return 1;
    case K_RESIZE:
        if (strcmp(v, "crop") && strcmp(v, "just-resize") && strcmp(v, "fill")) {
            fprintf(stderr, "error: --control-resize %s: valid values are crop, just-resize, fill\n", v);
            return -1;
        }
        c->resize = v;
        return 1;
    }
    return 0;
}

int cli_control_parse(int argc, char **argv, int *i, cli_controls *cc) {
    const char *a = argv[*i];
    if (strncmp(a, "--control-", 10) && strncmp(a, "--canny", 7)) return 0;
    char flag[64];
    const char *eq = strchr(a, '='), *v = NULL;
    snprintf(flag, sizeof flag, "%.*s", eq ? (int)(eq - a) : (int)strlen(a), a);
    int sw = !strcmp(flag, "--canny") || !strcmp(flag, "--control-guess-mode");
    if (sw) {
        if (eq) {
            fprintf(stderr, "error: %s takes no value\n", flag);
            return -1;
        }
    } else if (eq) {
        v = eq + 1;
    } else {
        if (*i + 1 >= argc) {
            int known = 0;
            for (size_t k = 0; k < sizeof k_flags / sizeof *k_flags; k++) known |= !strcmp(flag, k_flags[k].flag);
            if (!known) return 0;
            fprintf(stderr, "error: %s needs a value\n", flag);
            return -1;
        }
        v = argv[*i + 1];
    }
    int r = cli_control_flag(cc, flag, v);
    if (r == 1 && v && !eq) (*i)++;
    return r;
}

int cli_controls_finish(cli_controls *cc, sd_gen_params *gp) {
    int n = cc->count[K_NET];
    if (!n) {
        for (int k = 1; k < K_COUNT; k++)
            if (cc->count[k]) {
                fprintf(stderr, "error: ControlNet settings without --control-net PATH (with --from-png: give the ControlNets again)\n");
                return -1;
            }
    }
    if (n) {
        for (int i = 0; i < n; i++)
            if (!cc->image_path[i]) {
                fprintf(stderr, "error: --control-net %s has no --control-image\n", cc->c[i].model);
                return -1;
            }
    } else if (gp->control_count > 0) { /* --from-png: the stored controls, their pictures read again */
        n = gp->control_count > SD_MAX_CONTROLS ? SD_MAX_CONTROLS : gp->control_count;
        for (int i = 0; i < n; i++) {
            cc->c[i] = gp->controls[i];
            cc->image_path[i] = gp->controls[i].image_name;
            if (!cc->image_path[i]) {
                fprintf(stderr, "error: ControlNet %d of the PNG names no control image: give --control-net and --control-image\n", i);
                return -1;
            }
        }
    }
    for (int i = 0; i < n; i++) {
        if (sd_image_load(cc->image_path[i], 3, &cc->img[i]) != SD_OK) {
            fprintf(stderr, "error: %s\n", sd_last_error());
            return -1;
        }
        cc->loaded = i + 1;
        cc->c[i].image = &cc->img[i];
    }
    gp->controls = n ? cc->c : NULL;
    gp->control_count = n;
    gp->control_guess_mode |= cc->guess;
    return 0;
}

void cli_controls_free(cli_controls *cc) {
    for (int i = 0; i < cc->loaded; i++) sd_image_free(&cc->img[i]);
    cc->loaded = 0;
}

void cli_controls_help(FILE *out) {
    fprintf(out,
            "ControlNet (repeatable: --control-image, --control-strength ... set the --control-net before them):\n"
            "      --control-net PATH     ControlNet .safetensors (control_model.* or diffusers names) or diffusers folder\n"
            "      --control-image PATH   its control image (edge map, silhouette, depth ...; any size)\n"
            "      --control-strength X   conditioning scale (default 1)\n"
            "      --control-start A, --control-end B   steer from fraction A to B of the steps (default 0, 1)\n"
            "      --control-preprocess canny|none      canny: the control image is a picture, its edges steer (--canny)\n"
            "      --canny-low X, --canny-high X        Canny thresholds (default 100, 200, as AUTOMATIC1111)\n"
            "      --control-resize crop|just-resize|fill   fit a control image of another size (default crop)\n"
            "      --control-guess-mode   diffusers' guess mode: the ControlNets see the prompt only\n"
            "\n");
}
