/* common_flags.c — the one table of the flags generate, batch and compare share: parsing, checks, help. */
#include "common_flags.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clikit.h"
#include "jobs.h"

enum { S_PARAM, S_MODEL, S_VAE, S_BACKEND, S_THREADS, S_PREDICTION, S_OUTPUT, S_OVERWRITE, S_VERBOSE, S_QUIET, S_TAESD, S_TAESD_PREVIEW,
       S_PREVIEW, S_PREVIEW_METHOD, S_PREVIEW_INTERVAL };

typedef struct cf_flag {
    const char *name, *alt, *shrt; /* "--cfg-scale", another spelling "--cfg", a short form "-s" (or NULL) */
    const char *key;               /* S_PARAM: the job key the value is stored under */
    int setting;
    const char *sw;                /* a switch: the value it stands for; NULL: the flag takes a value */
    unsigned cmds;                 /* CF_GENERATE | CF_BATCH | CF_COMPARE */
    const char *arg;               /* the value's name in --help */
    const char *help[3];           /* per command (generate, batch, compare); NULL: the first */
} cf_flag;

#define ALL (CF_GENERATE | CF_BATCH | CF_COMPARE)
#define GB (CF_GENERATE | CF_BATCH)

static const cf_flag FLAGS[] = {
    {"--model", NULL, "-m", NULL, S_MODEL, NULL, ALL, "PATH", {".safetensors checkpoint or diffusers folder (default: the bundled demo model)"}},
    {"--vae", NULL, NULL, NULL, S_VAE, NULL, ALL, "PATH", {"replace the model's VAE"}},
    {"--taesd", NULL, NULL, NULL, S_TAESD, NULL, ALL, "PATH",
     {"TAESD tiny autoencoder (file or diffusers folder): decodes and encodes in place of the VAE, ~18x faster"}},
    {"--taesd-preview-only", NULL, NULL, NULL, S_TAESD_PREVIEW, "1", CF_GENERATE, NULL, {"keep the VAE for the images: the TAESD only draws previews"}},
    {"--preview", NULL, NULL, NULL, S_PREVIEW, NULL, CF_GENERATE, "PATH", {"a PNG rewritten (atomically) with the picture as it forms"}},
    {"--preview-method", NULL, NULL, NULL, S_PREVIEW_METHOD, NULL, CF_GENERATE, "M",
     {"latent2rgb (default: instant, 1/8 size), taesd (needs --taesd) or full (the VAE: slow)"}},
    {"--preview-interval", NULL, NULL, NULL, S_PREVIEW_INTERVAL, NULL, CF_GENERATE, "N", {"steps between previews, 1..1000 (default 1)"}},
    {"--backend", NULL, NULL, NULL, S_BACKEND, NULL, ALL, "NAME", {"auto (CUDA when a GPU is present), cpu or cuda"}},
    {"--threads", NULL, "-t", NULL, S_THREADS, NULL, ALL, "N", {"CPU threads, 0..4096 (0: all cores)"}},
    {"--prediction", NULL, NULL, NULL, S_PREDICTION, NULL, ALL, "P", {"auto, eps or v (single-file SD 2.x 768-v: v)"}},
    {"--output", NULL, "-o", NULL, S_OUTPUT, NULL, ALL, "PATH",
     {"output PNG (default output.png; several images: output_1.png ...)",
      "output folder (default: out): the PNGs and manifest.jsonl",
      "grid PNG (default compare.png); --csv, --json, --chart name the other files"}},
    {"--overwrite", NULL, NULL, NULL, S_OVERWRITE, "1", ALL, NULL,
     {"replace existing output files",
      "replace files in the way that sd did not write (and an existing contact sheet)",
      "replace existing output files (grid, tables, chart, cells)"}},
    {"--verbose", NULL, "-v", NULL, S_VERBOSE, "1", ALL, NULL, {"per-stage timings and peak memory"}},
    {"--quiet", NULL, "-q", NULL, S_QUIET, "1", CF_BATCH | CF_COMPARE, NULL, {"no progress lines"}},
    /* generation parameters: stored and checked as the job keys they set */
    {"--prompt", NULL, "-p", "prompt", S_PARAM, NULL, CF_GENERATE | CF_COMPARE, "TEXT",
     {"what to draw; (word:1.2) [word] BREAK work as in AUTOMATIC1111"}},
    {"--negative-prompt", "--negative", "-n", "negative", S_PARAM, NULL, ALL, "TEXT", {"what not to draw"}},
    {"--width", NULL, "-W", "width", S_PARAM, NULL, ALL, "N", {"image width, a multiple of 8 from 8 to 8192 (default: the model's)"}},
    {"--height", NULL, "-H", "height", S_PARAM, NULL, ALL, "N", {"image height, a multiple of 8 from 8 to 8192 (default: the model's)"}},
    {"--size", NULL, NULL, "size", S_PARAM, NULL, ALL, "WxH", {"width and height at once (each a multiple of 8 from 8 to 8192)"}},
    {"--steps", NULL, NULL, "steps", S_PARAM, NULL, GB, "N", {"sampling steps, 1..1000 (default: the model's)"}},
    {"--cfg-scale", "--cfg", NULL, "cfg", S_PARAM, NULL, GB, "X",
     {"classifier-free guidance scale 0..100 (default: the model's; 1 disables it)"}},
    {"--guidance-rescale", NULL, NULL, "guidance_rescale", S_PARAM, NULL, ALL, "X", {"diffusers' guidance rescale, 0..1"}},
    {"--sampling-method", "--sampler", NULL, "sampler", S_PARAM, NULL, GB, "NAME", {"sampler name (the list: sd generate --help)"}},
    {"--scheduler", NULL, NULL, "scheduler", S_PARAM, NULL, GB, "NAME", {"sigma schedule (discrete, karras, exponential, beta, sgm_uniform; default: the model's scheduler config)"}},
    {"--schedule-convention", "--convention", NULL, "convention", S_PARAM, NULL, ALL, "C",
     {"diffusers or kdiffusion (reproduces AUTOMATIC1111 / stable-diffusion.cpp images)"}},
    {"--eta", NULL, NULL, "eta", S_PARAM, NULL, ALL, "X", {"DDIM eta, 0..1"}},
    {"--seed", NULL, "-s", "seed", S_PARAM, NULL, ALL, "N",
     {"seed (-1: random, printed); image i uses seed + i",
      "first seed (default: the library's, 42; batch seeds are never random)",
      "the seed of every cell (default: the library's, 42)"}},
    {"--batch-count", "--count", "-b", "count", S_PARAM, NULL, GB, "N",
     {"number of images: seed, seed+1, ...", "images per prompt: seed, seed+1, ... (default 1)"}},
    {"--seed-range", NULL, NULL, "seed_range", S_PARAM, NULL, CF_BATCH, "A:B", {"every seed from A to B inclusive (also \"1,5,9:12\")"}},
    {"--rng", NULL, NULL, "rng", S_PARAM, NULL, ALL, "cuda|cpu", {"noise: torch's CUDA Philox (default) or CPU generator"}},
    {"--sampler-rng", NULL, NULL, "sampler_rng", S_PARAM, NULL, ALL, "cuda|cpu", {"noise of ancestral/SDE samplers (default: --rng)"}},
    {"--variation-seed", NULL, NULL, "variation_seed", S_PARAM, NULL, GB, "N",
     {"AUTOMATIC1111 variation seed: a second noise slerped into the first", "variation seeds (a seed list)"}},
    {"--variation-strength", NULL, NULL, "variation_strength", S_PARAM, NULL, GB, "X", {"0..1: how much of the variation noise"}},
    {"--clip-skip", NULL, NULL, "clip_skip", S_PARAM, NULL, ALL, "N", {"2: penultimate CLIP layer (A1111 numbering), 0..12"}},
    {"--vae-tiling", NULL, NULL, "vae_tiling", S_PARAM, "1", ALL, NULL, {"decode in tiles (automatic for large images)"}},
    {"--no-vae-tiling", NULL, NULL, "vae_tiling", S_PARAM, "-1", ALL, NULL, {"never decode in tiles"}},
    {"--init-img", "--init-image", "-i", "init_image", S_PARAM, NULL, GB, "PATH", {"img2img start image"}},
    {"--strength", "--denoising-strength", NULL, "strength", S_PARAM, NULL, GB, "X", {"img2img denoising strength 0..1 (default 0.75)"}},
    {"--mask", NULL, NULL, "mask", S_PARAM, NULL, GB, "PATH", {"inpainting mask (white = repaint), the init image's size"}},
    {"--mask-blur", NULL, NULL, "mask_blur", S_PARAM, NULL, GB, "N", {"blur the mask by N pixels, 0..128 (README \"Inpainting\")"}},
    {"--inpaint-only-masked", NULL, NULL, "inpaint_only_masked", S_PARAM, "1", GB, NULL,
     {"repaint a crop around the mask at the image size, pasted back into the init image"}},
    {"--inpaint-padding", NULL, NULL, "inpaint_padding", S_PARAM, NULL, GB, "N", {"pixels around the mask's box (--inpaint-only-masked)"}},
    {"--masked-content", "--inpaint-fill", NULL, "inpaint_fill", S_PARAM, NULL, GB, "M",
     {"what the masked area starts from: original, fill, \"latent noise\", \"latent nothing\""}},
    {"--timestep-spacing", NULL, NULL, "timestep_spacing", S_PARAM, NULL, ALL, "S",
     {"leading, linspace or trailing (default: the model's scheduler config)"}},
    {"--clip-skip-negative", NULL, NULL, "clip_skip_negative", S_PARAM, NULL, ALL, "N",
     {"clip skip of the negative prompt (default: none in the diffusers convention, --clip-skip in kdiffusion)"}},
    {"--batch-size", NULL, NULL, "batch_size", S_PARAM, NULL, GB, "N", {"latents per UNet call (consecutive seeds), 1..64"}},
    {"--lora", NULL, NULL, "lora", S_PARAM, NULL, ALL, "PATH[:W[:U]]",
     {"a LoRA / LyCORIS file, repeatable; W its strength (1), U the UNet's when it differs from the text encoders'"}},
    {"--lora-model-dir", NULL, NULL, "lora_dir", S_PARAM, NULL, ALL, "DIR",
     {"where the prompt's <lora:NAME:W> (or <lora:NAME:TE:UNET>) tags find NAME.safetensors"}},
    {"--embd-dir", "--embedding-dir", NULL, "embedding_dir", S_PARAM, NULL, ALL, "DIR",
     {"textual-inversion embeddings: DIR/NAME.safetensors is used where NAME appears in a prompt"}},
    {"--name-template", NULL, NULL, "output", S_PARAM, NULL, CF_BATCH, "T", {"output file name template (see below)"}},
    /* sd generate reads its repeatable ControlNet flags itself (control_flags.c); a batch takes one as job defaults */
    {"--control-net", NULL, NULL, "control_net", S_PARAM, NULL, CF_BATCH, "PATH", {"ControlNet for every job (job key control_net)"}},
    {"--control-image", NULL, NULL, "control_image", S_PARAM, NULL, CF_BATCH, "PATH",
     {"its control image; {a.png|b.png} renders each (job key control_image)"}},
    {"--control-strength", NULL, NULL, "control_strength", S_PARAM, NULL, CF_BATCH, "X", {"ControlNet conditioning scale 0..10 (default 1)"}},
    {"--control-preprocess", NULL, NULL, "control_preprocess", S_PARAM, NULL, CF_BATCH, "P", {"none or canny (edges of the control image)"}},
    {"--hires-scale", NULL, NULL, "hires_scale", S_PARAM, NULL, GB, "X",
     {"hires fix (AUTOMATIC1111): render at -W x -H, upscale by X (1..8), img2img again at the large size"}},
    {"--hires-width", NULL, NULL, "hires_width", S_PARAM, NULL, GB, "N", {"hires fix to this width instead, 8..8192 (with --hires-height: that size)"}},
    {"--hires-height", NULL, NULL, "hires_height", S_PARAM, NULL, GB, "N", {"hires fix to this height instead, 8..8192"}},
    {"--hires-steps", NULL, NULL, "hires_steps", S_PARAM, NULL, GB, "N", {"steps of the hires pass, 0..1000 (default 0: --steps)"}},
    {"--hires-denoise", NULL, NULL, "hires_denoise", S_PARAM, NULL, GB, "X", {"denoising strength of the hires pass, 0..1 (default 0.7)"}},
    {"--hires-upscaler", NULL, NULL, "hires_upscaler", S_PARAM, NULL, GB, "NAME",
     {"latent (default), latent-bicubic, latent-nearest-exact, lanczos or none"}},
};
#define NFLAGS ((int)(sizeof FLAGS / sizeof FLAGS[0]))

static int cmd_index(unsigned cmd) { return cmd == CF_BATCH ? 1 : cmd == CF_COMPARE ? 2 : 0; }

/* `typed` (len bytes) is the flag `name`, an '_' standing for a '-': --cfg_scale and --sampling_method are how
 * Python tools and web UIs' API keys spell them, and no flag has an underscore of its own. */
static int same_name(const char *name, const char *typed, size_t len) {
    if (strlen(name) != len) return 0;
    for (size_t i = 0; i < len; i++)
        if (name[i] != (typed[i] == '_' ? '-' : typed[i])) return 0;
    return 1;
}

/* The flag spelled `name` (len bytes) among those of `cmds`, or NULL. */
static const cf_flag *find(const char *name, size_t len, unsigned cmds) {
    for (int i = 0; i < NFLAGS; i++) {
        const cf_flag *f = &FLAGS[i];
        if (!(f->cmds & cmds)) continue;
        const char *names[3] = {f->name, f->alt, f->shrt};
        for (int k = 0; k < 3; k++)
            if (names[k] && same_name(names[k], name, len)) return f;
    }
    return NULL;
}

/* The nearer of `pick` and `name` to `typed`: kept in *best / *pick. A cut-short name ("--sched") is one slip from
 * the names it starts. */
static void nearer(const char *typed, const char *name, int *best, const char **pick) {
    size_t n = strlen(typed);
    int d = n >= 6 && !strncmp(typed, name, n) ? 1 : clikit_edit_distance(typed, name);
    if (d < *best) *best = d, *pick = name;
}

void cf_suggest(const char *arg, unsigned cmd, const char *const *own, char *out, size_t cap) {
    out[0] = 0;
    size_t len = strcspn(arg, "=");
    char typed[64];
    if (strncmp(arg, "--", 2) || len >= sizeof typed) return; /* short flags are too short to guess from */
    for (size_t i = 0; i < len; i++) typed[i] = arg[i] == '_' ? '-' : arg[i];
    typed[len] = 0;
    int best = 99;
    const char *pick = NULL;
    for (int i = 0; i < NFLAGS; i++) {
        if (!(FLAGS[i].cmds & cmd)) continue;
        nearer(typed, FLAGS[i].name, &best, &pick);
        if (FLAGS[i].alt) nearer(typed, FLAGS[i].alt, &best, &pick);
    }
    for (int i = 0; own && own[i]; i++) nearer(typed, own[i], &best, &pick);
    /* a slip of two letters (--stepz, --schedule, --cfgscale), three in long names; beyond that a guess misleads */
    if (pick && best <= (len >= 12 ? 3 : 2) && best < (int)len - 3) snprintf(out, cap, " (did you mean %s?)", pick);
}

int cf_init(cf_opts *o) {
    memset(o, 0, sizeof *o);
    sd_load_params_init(&o->load);
    o->params = cJSON_CreateObject();
    if (!o->params) { fprintf(stderr, "error: out of memory\n"); return -1; }
    return 0;
}

void cf_free(cf_opts *o) {
    cJSON_Delete(o->params);
    o->params = NULL;
}

static int put(cJSON *params, const char *key, cJSON *item) {
    if (!item) return -1;
    cJSON_DeleteItemFromObjectCaseSensitive(params, key);
    cJSON_AddItemToObject(params, key, item);
    return 0;
}

/* One side given to `spelled`: a multiple of 8 from 8 to CF_MAX_SIDE. Returns 0 or -1 with the message in err. */
static int side_ok(const char *spelled, long v, char *err, size_t errlen) {
    if (v >= 8 && v <= CF_MAX_SIDE && v % 8 == 0) return 0;
    snprintf(err, errlen, "%s: %ld is not a multiple of 8 from 8 to %d", spelled, v, CF_MAX_SIDE);
    return -1;
}

/* The sides of -W, -H, --size and the hires size, held to the library's limit here, naming the flag (the library
 * refuses them only after the model has loaded). A value that is no whole number is left to the job keys' check and
 * its message. Returns 0 or -1 with the message in err. */
static int sides_ok(const char *key, const char *spelled, const char *value, char *err, size_t errlen) {
    int w, h;
    if (!strcmp(key, "size")) return jobs_parse_size(value, &w, &h) != 0 || (side_ok(spelled, w, err, errlen) == 0 && side_ok(spelled, h, err, errlen) == 0) ? 0 : -1;
    if (strcmp(key, "width") && strcmp(key, "height") && strcmp(key, "hires_width") && strcmp(key, "hires_height")) return 0;
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    return end == value || *end || errno ? 0 : side_ok(spelled, v, err, errlen);
}

static int set_param(cJSON *params, const cf_flag *f, const char *spelled, const char *value, char *err, size_t errlen) {
    char why[768];
    if (sides_ok(f->key, spelled, value, err, errlen) != 0) return -1;
    if (!strcmp(f->key, "prompt")) { /* any text, even empty (unconditional): checked per line only in job files */
        if (strlen(value) > SD_PROMPT_MAX_BYTES) {
            snprintf(err, errlen, "%s: %zu bytes long: at most %d are accepted", spelled, strlen(value), SD_PROMPT_MAX_BYTES);
            return -1;
        }
        if (put(params, "prompt", cJSON_CreateString(value)) != 0) goto oom;
        return 0;
    }
    cJSON *item = jobs_flag_value(f->key, value, jobs_library_rules(), why, sizeof why);
    if (!item) {
        snprintf(err, errlen, "%s: %s", spelled, why);
        return -1;
    }
    if (!strcmp(f->key, "size")) { /* the width and the height, so a later -W or -H changes one of them */
        int w, h;
        jobs_parse_size(item->valuestring, &w, &h);
        cJSON_Delete(item);
        if (put(params, "width", cJSON_CreateNumber(w)) != 0 || put(params, "height", cJSON_CreateNumber(h)) != 0) goto oom;
        return 0;
    }
    cJSON *had = cJSON_GetObjectItemCaseSensitive(params, "lora");
    if (!strcmp(f->key, "lora") && had) { /* repeatable: each --lora adds one */
        cJSON *one = cJSON_DetachItemFromArray(item, 0);
        cJSON_Delete(item);
        if (!one) goto oom;
        cJSON_AddItemToArray(had, one);
        return 0;
    }
    if (put(params, f->key, item) != 0) goto oom;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

int cf_param(cJSON *params, const char *flag, const char *value, char *err, size_t errlen) {
    const cf_flag *f = find(flag, strlen(flag), ALL);
    if (!f || f->setting != S_PARAM) {
        snprintf(err, errlen, "%s: not a generation parameter", flag);
        return -1;
    }
    return set_param(params, f, flag, value ? value : f->sw, err, errlen);
}

/* Model and VAE paths are opened by the library; a FIFO there would block it forever. */
static int input_path(const char *flag, const char *path) {
    if (!*path) { fprintf(stderr, "error: %s: empty path\n", flag); return -1; }
    return clikit_input_path(path, 1);
}

static int setting(cf_opts *o, const cf_flag *f, const char *spelled, const char *v) {
    int n;
    switch (f->setting) {
    case S_MODEL: o->load.model_path = v; return input_path(spelled, v);
    case S_VAE: o->load.vae_path = v; return input_path(spelled, v);
    case S_BACKEND: return clikit_backend(v, &o->load.backend);
    case S_THREADS:
        if (clikit_int(v, 0, 4096, &n, spelled) != 0) return -1;
        o->load.threads = n;
        return 0;
    case S_PREDICTION:
        if (strcmp(v, "auto") && strcmp(v, "eps") && strcmp(v, "v")) {
            fprintf(stderr, "error: %s \"%s\" is not auto, eps or v\n", spelled, v);
            return -1;
        }
        o->load.prediction = v;
        return 0;
    case S_OUTPUT: o->output = v; return 0;
    case S_OVERWRITE: o->overwrite = 1; return 0;
    case S_VERBOSE: o->load.verbose = 1; return 0;
    case S_QUIET: o->quiet = 1; return 0;
    case S_TAESD: o->load.taesd_path = v; return input_path(spelled, v);
    case S_TAESD_PREVIEW: o->load.taesd_preview_only = 1; return 0;
    case S_PREVIEW:
        if (!*v) { fprintf(stderr, "error: %s: empty path\n", spelled); return -1; }
        o->preview = v;
        return 0;
    case S_PREVIEW_METHOD:
        if (strcmp(v, "latent2rgb") && strcmp(v, "taesd") && strcmp(v, "full")) {
            fprintf(stderr, "error: %s \"%s\" is not latent2rgb, taesd or full\n", spelled, v);
            return -1;
        }
        o->preview_method = v;
        return 0;
    case S_PREVIEW_INTERVAL:
        if (clikit_int(v, 1, 1000, &n, spelled) != 0) return -1;
        o->preview_interval = n;
        return 0;
    }
    return -1;
}

int cf_parse(int argc, char **argv, int *i, unsigned cmd, cf_opts *o) {
    const char *a = argv[*i], *eq = !strncmp(a, "--", 2) ? strchr(a, '=') : NULL;
    size_t len = eq ? (size_t)(eq - a) : strlen(a);
    const cf_flag *f = find(a, len, cmd);
    if (!f) return 0;
    char spelled[64];
    snprintf(spelled, sizeof spelled, "%.*s", (int)len, a);
    const char *v;
    if (f->sw) {
        if (eq) { fprintf(stderr, "error: %s takes no value\n", spelled); return -1; }
        v = f->sw;
    } else if (eq) {
        v = eq + 1;
    } else if (*i + 1 < argc) {
        v = argv[++*i];
    } else {
        fprintf(stderr, "error: %s needs a value\n", spelled);
        return -1;
    }
    if (f->setting != S_PARAM) return setting(o, f, spelled, v) == 0 ? 1 : -1;
    char err[1024];
    if (set_param(o->params, f, spelled, v, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        return -1;
    }
    return 1;
}

void cf_help(FILE *out, unsigned cmd) {
    int c = cmd_index(cmd);
    for (int i = 0; i < NFLAGS; i++) {
        const cf_flag *f = &FLAGS[i];
        if (!(f->cmds & cmd)) continue;
        char names[96];
        snprintf(names, sizeof names, "%s%s%s%s%s%s%s", f->shrt ? f->shrt : "", f->shrt ? ", " : "    ", f->name,
                 f->alt ? ", " : "", f->alt ? f->alt : "", f->arg ? " " : "", f->arg ? f->arg : "");
        const char *help = f->help[c] ? f->help[c] : f->help[0];
        if (strlen(names) > 30) fprintf(out, "  %s\n  %-31s%s\n", names, "", help);
        else fprintf(out, "  %-31s%s\n", names, help);
    }
}
