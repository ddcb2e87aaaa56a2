/* cmd_generate.c — `sd [generate] -p PROMPT ...`: render images with flags named as stable-diffusion.cpp's. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "../sd.h"
#include "cli.h"
#include "clikit.h"
#include "common_flags.h"
#include "control_flags.h"
#include "expand.h"
#include "jobs.h"
#include "outfiles.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: sd [generate] -p PROMPT [options]\n"
            "\n"
            "      --from-png PATH            every setting of a PNG made by sd (or AUTOMATIC1111); the other flags override it\n");
    cf_help(out, CF_GENERATE);
    fprintf(out, "\n");
    cli_controls_help(out);
    fprintf(out, "samplers (--sampling-method):\n");
    for (int i = 0; i < sd_sampler_count(); i++) {
        const char *d;
        const char *n = sd_sampler_name(i, &d);
        fprintf(out, "  %-14s %s\n", n, d);
    }
    fprintf(out, "schedulers (--scheduler):\n");
    for (int i = 0; i < sd_scheduler_count(); i++) {
        const char *d;
        const char *n = sd_scheduler_name(i, &d);
        fprintf(out, "  %-14s %s\n", n, d);
    }
}

typedef struct progress_state {
    int tty, verbose;
    double begin;             /* elapsed seconds when the current sampling pass began */
    const char *preview;      /* --preview: rewritten with every preview */
    int previews;             /* previews written */
    int failed;               /* a preview could not be written (reported once; the render goes on) */
} progress_state;

/* "3.40 it/s" or, below one step a second, "2.10 s/it" (tqdm's way), and the pass's ETA at that rate. */
static void rate_text(double steps_done, double seconds, int left, char *buf, size_t cap) {
    if (steps_done <= 0 || seconds <= 0) { snprintf(buf, cap, "-- it/s"); return; }
    double rate = steps_done / seconds, eta = left / rate;
    int n = rate >= 1 ? snprintf(buf, cap, "%.2f it/s", rate) : snprintf(buf, cap, "%.2f s/it", 1 / rate);
    if (left > 0) snprintf(buf + n, cap - n, ", ETA %d:%02d", (int)eta / 60, (int)eta % 60);
}

static int on_progress(void *user, const sd_progress *p) {
    progress_state *s = user;
    if (p->preview && s->preview) {
        if (sd_save_png(s->preview, p->preview, NULL, NULL, 1) == SD_OK) s->previews++;
        else if (!s->failed++) fprintf(stderr, "%swarning: preview: %s\n", s->tty ? "\n" : "", sd_last_error());
    }
    if (strcmp(p->stage, "sample") || p->steps <= 0) {
        s->begin = p->elapsed; /* the next pass starts after this stage */
        return 0;
    }
    if (!s->tty) return 0;
    int width = 30, fill = width * p->step / p->steps;
    char rate[64];
    rate_text(p->step, p->elapsed - s->begin, p->steps - p->step, rate, sizeof rate);
    fprintf(stderr, "\r[%d/%d]%s |", p->image + 1, p->images, p->pass > 1 ? " hires" : "");
    for (int i = 0; i < width; i++) fputc(i < fill ? '#' : ' ', stderr);
    fprintf(stderr, "| %d/%d %s\033[K", p->step, p->steps, rate);
    if (p->step == p->steps) {
        fputc('\n', stderr);
        s->begin = p->elapsed;
    }
    fflush(stderr);
    return 0;
}

/* out.png -> out_3.png */
static void numbered(const char *path, int i, char *dst, size_t cap) {
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash)) dot = path + strlen(path);
    snprintf(dst, cap, "%.*s_%d%s", (int)(dot - path), path, i, dot);
}

static int is_seed_flag(const char *a) {
    return !strcmp(a, "-s") || !strcmp(a, "--seed") || !strncmp(a, "--seed=", 7);
}

/* The settings of the command line (over those of --from-png) into gp; *loras holds the --lora list (free it).
 * Returns 0 or -1 (printed). */
static int settings(const cJSON *params, sd_gen_params *gp, sd_lora **loras) {
    const cJSON *v;
    jobs_apply_object(params, gp);
    int nl = jobs_loras(params, loras); /* --lora flags replace the PNG's files */
    if (nl == -2) { fprintf(stderr, "error: out of memory\n"); return -1; }
    if (nl >= 0) gp->loras = *loras, gp->lora_count = nl;
    if ((v = cJSON_GetObjectItemCaseSensitive(params, "prompt"))) gp->prompt = v->valuestring;
    if ((v = cJSON_GetObjectItemCaseSensitive(params, "seed"))) expand_parse_u64(v->valuestring, &gp->seed); /* checked */
    if ((v = cJSON_GetObjectItemCaseSensitive(params, "count"))) gp->batch_count = (int)v->valuedouble;
    if ((v = cJSON_GetObjectItemCaseSensitive(params, "batch_size"))) gp->batch_size = (int)v->valuedouble;
    if ((v = cJSON_GetObjectItemCaseSensitive(params, "variation_seed")) &&
        (!cJSON_IsString(v) || expand_parse_u64(v->valuestring, &gp->variation_seed) != 0)) {
        fprintf(stderr, "error: --variation-seed: sd generate takes one seed, not a list (sd batch takes lists)\n");
        return -1;
    }
    return 0;
}

/* The output file of image i of count (out.png, or out_1.png ... when several). */
static void output_name(const char *out, int i, int count, char *dst, size_t cap) {
    if (count == 1) snprintf(dst, cap, "%s", out);
    else numbered(out, i + 1, dst, cap);
}

/* The settings a PNG brings, through the checks their flags get, before the model loads: the library's own check
 * comes after the load and cannot name the PNG ("size 63x128: ..."). Only values the library judges by the same
 * rule are checked here (sampler, scheduler and convention names have aliases only the library knows: see
 * params_error); values the command line replaces are not judged. Returns 0 or -1 (printed). */
static int check_png_settings(const char *png, const sd_gen_params *gp, const cJSON *flags) {
    int hires = gp->hires_scale != 0 || gp->hires_width || gp->hires_height; /* the upscaler is read only then */
    const struct { const char *key, *what, *value; } names[] = {
        {"rng", "rng", gp->rng}, {"sampler_rng", "sampler rng", gp->sampler_rng},
        {"timestep_spacing", "timestep spacing", gp->timestep_spacing}, {"hires_upscaler", "hires upscaler", hires ? gp->hires_upscaler : NULL},
    };
    char why[768];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        if (!names[i].value || cJSON_GetObjectItemCaseSensitive(flags, names[i].key)) continue;
        cJSON *v = jobs_flag_value(names[i].key, names[i].value, jobs_library_rules(), why, sizeof why);
        if (!v) { fprintf(stderr, "error: %s: %s %s\n", png, names[i].what, why); return -1; }
        cJSON_Delete(v);
    }
    /* the reader holds them to 8..8192; the image size must be a multiple of 8 too (the hires size is rounded) */
    const struct { const char *key; int v; } sides[] = {{"width", gp->width}, {"height", gp->height}};
    for (size_t i = 0; i < 2; i++)
        if (sides[i].v && !cJSON_GetObjectItemCaseSensitive(flags, sides[i].key) && (sides[i].v % 8 || sides[i].v > CF_MAX_SIDE)) {
            fprintf(stderr, "error: %s: %s %d is not a multiple of 8 from 8 to %d\n", png, sides[i].key, sides[i].v, CF_MAX_SIDE);
            return -1;
        }
    const struct { const char *key, *what, *text; } texts[] = {{"prompt", "prompt", gp->prompt}, {"negative", "negative prompt", gp->negative_prompt}};
    for (size_t i = 0; i < 2; i++)
        if (texts[i].text && !cJSON_GetObjectItemCaseSensitive(flags, texts[i].key) && strlen(texts[i].text) > SD_PROMPT_MAX_BYTES) {
            fprintf(stderr, "error: %s: the %s is %zu bytes long: at most %d are accepted\n", png, texts[i].what, strlen(texts[i].text),
                    SD_PROMPT_MAX_BYTES);
            return -1;
        }
    return 0;
}

/* The library refused the settings (sd_check_params): its message, prefixed with the --from-png file when the PNG's
 * sampler, scheduler or convention name (not replaced by a flag) is what it refused, found by checking again
 * without them. */
static void params_error(const sd_ctx *ctx, const sd_gen_params *gp, const char *png, const cJSON *flags) {
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", sd_last_error());
    if (png) {
        sd_gen_params q = *gp;
        const char **names[3] = {&q.sampler, &q.scheduler, &q.convention};
        static const char *const keys[3] = {"sampler", "scheduler", "convention"};
        int any = 0;
        for (int i = 0; i < 3; i++)
            if (*names[i] && !cJSON_GetObjectItemCaseSensitive(flags, keys[i])) *names[i] = NULL, any = 1;
        if (any && sd_check_params(ctx, &q) == SD_OK) {
            fprintf(stderr, "error: %s: %s\n", png, msg);
            return;
        }
    }
    fprintf(stderr, "error: %s\n", msg);
}

/* A PNG made from an init image (img2img, inpainting) does not hold that image: its settings without it would draw
 * another picture from noise, silently. With -i the stored strength stays unless --strength is given (settings()).
 * Returns 0 or -1 (printed). */
static int check_png_inputs(const char *png, const void *store, const cJSON *init, const cJSON *mask) {
    float strength;
    int masked;
    if (!sd_params_png_init(store, &strength, &masked)) return 0;
    if (!init) {
        fprintf(stderr, "error: %s was made from an init image (strength %g%s): give it with -i%s\n", png, strength,
                masked ? ", inpainted with a mask" : "", masked ? " and the mask with --mask" : "");
        return -1;
    }
    if (masked && !mask) fprintf(stderr, "warning: %s was inpainted with a mask: without --mask the whole picture is redrawn\n", png);
    return 0;
}

/* --preview is an output like -o (an existing file is replaced only with --overwrite), and never one of the
 * inputs: a preview written over the init image, the mask, a control image or the --from-png file destroys the
 * picture the render was asked to start from, so that is refused even with --overwrite. Returns 0 or -1 (printed). */
static int check_preview(const cf_opts *o, char **names, int count, const char *from_png, const cli_controls *cc) {
    const cJSON *init = cJSON_GetObjectItemCaseSensitive(o->params, "init_image");
    const cJSON *mask = cJSON_GetObjectItemCaseSensitive(o->params, "mask");
    const char *inputs[3 + SD_MAX_CONTROLS] = {init ? init->valuestring : NULL, mask ? mask->valuestring : NULL, from_png};
    const char *flags[3 + SD_MAX_CONTROLS] = {"-i", "--mask", "--from-png"};
    for (int k = 0; k < cc->loaded; k++) inputs[3 + k] = cc->image_path[k], flags[3 + k] = "--control-image";
    for (int k = 0; k < 3 + cc->loaded; k++)
        if (inputs[k] && outfiles_same_file(o->preview, inputs[k])) {
            fprintf(stderr, "error: --preview %s is the same file as %s %s (not replaced, even with --overwrite)\n", o->preview,
                    flags[k], inputs[k]);
            return -1;
        }
    for (int i = 0; i < count; i++)
        if (outfiles_same_file(o->preview, names[i])) {
            fprintf(stderr, "error: --preview %s is also an output image\n", o->preview);
            return -1;
        }
    return outfiles_check_file(o->preview, o->overwrite, 0) != 0 ? -1 : outfiles_check_png(o->preview, "--preview");
}

int cmd_generate(int argc, char **argv) {
    cf_opts o;
    if (cf_init(&o) != 0) return 1;
    sd_gen_params gp;
    sd_gen_params_init(&gp);
    const char *from_png = NULL;
    int random_seed = 0, rc = 1;
    void *png_store = NULL;
    sd_image init = {0}, mask = {0};
    sd_ctx *ctx = NULL;
    sd_result res = {0};
    char **names = NULL;
    sd_lora *loras = NULL;
    cli_controls controls;
    cli_controls_init(&controls);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); rc = 0; goto done; }
        if ((v = clikit_value(argc, argv, &i, NULL, "--from-png"))) { from_png = v; continue; }
        if (clikit_failed()) goto done;
        const char *eq = strchr(a, '=');
        if (is_seed_flag(a) && !strcmp(eq ? eq + 1 : i + 1 < argc ? argv[i + 1] : "", "-1")) {
            random_seed = 1; /* only sd generate draws random seeds: batch and compare runs must be repeatable */
            cJSON_DeleteItemFromObjectCaseSensitive(o.params, "seed");
            if (!eq) i++;
            continue;
        }
        int r = cli_control_parse(argc, argv, &i, &controls); /* repeatable per ControlNet: not in the shared table */
        if (r < 0) goto done;
        if (r == 1) continue;
        r = cf_parse(argc, argv, &i, CF_GENERATE, &o);
        if (r < 0) goto done;
        if (r == 1) { if (is_seed_flag(a)) random_seed = 0; continue; }
        static const char *const own[] = {"--from-png", "--help", NULL};
        char hint[128];
        cf_suggest(a, CF_GENERATE, own, hint, sizeof hint);
        if (a[0] == '-') fprintf(stderr, "error: unknown option \"%s\"%s\n", a, *hint ? hint : " (try sd generate --help)");
        else fprintf(stderr, "error: unexpected argument \"%s\" (try sd generate --help)\n", a);
        goto done;
    }
    if (!from_png && !cJSON_GetObjectItemCaseSensitive(o.params, "prompt")) {
        fprintf(stderr, "error: no prompt: give one with -p \"...\" (try sd --help)\n");
        goto done;
    }
    if (from_png) {
        if (clikit_input_path(from_png, 0) != 0) goto done;
        if (sd_params_from_png(from_png, &gp, &png_store) != SD_OK) { fprintf(stderr, "error: %s\n", sd_last_error()); goto done; }
        if (check_png_settings(from_png, &gp, o.params) != 0) goto done;
    }
    if (settings(o.params, &gp, &loras) != 0) goto done;
    const cJSON *init_path = cJSON_GetObjectItemCaseSensitive(o.params, "init_image");
    const cJSON *mask_path = cJSON_GetObjectItemCaseSensitive(o.params, "mask");
    if (mask_path && !init_path) { fprintf(stderr, "error: --mask needs --init-img\n"); goto done; }
    if (from_png && check_png_inputs(from_png, png_store, init_path, mask_path) != 0) goto done;
    if ((o.preview_method || o.preview_interval) && !o.preview) {
        fprintf(stderr, "error: --preview-method and --preview-interval need --preview PATH (the file the previews go to)\n");
        goto done;
    }
    if (o.load.taesd_preview_only && !o.load.taesd_path) { fprintf(stderr, "error: --taesd-preview-only needs --taesd PATH\n"); goto done; }
    if (o.preview) {
        gp.preview_method = o.preview_method ? o.preview_method : "latent2rgb";
        gp.preview_interval = o.preview_interval;
    }
    if (random_seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        gp.seed = ((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid()) % 4294967296ull;
        fprintf(stderr, "seed: %" PRIu64 "\n", gp.seed);
    }

    /* everything that can be checked before the (slow) model load is checked first: the outputs above all */
    const char *out = o.output ? o.output : "output.png";
    int count = gp.batch_count;
    names = calloc((size_t)count, sizeof *names);
    if (!names) { fprintf(stderr, "error: out of memory\n"); goto done; }
    for (int i = 0; i < count; i++) {
        char path[4200];
        output_name(out, i, count, path, sizeof path);
        if (outfiles_check_file(path, o.overwrite, 0) != 0) goto done;
        if (!(names[i] = strdup(path))) { fprintf(stderr, "error: out of memory\n"); goto done; }
    }
    if (outfiles_check_png(out, "-o") != 0) goto done;
    if (init_path) {
        if (sd_image_load(init_path->valuestring, 3, &init) != SD_OK) { fprintf(stderr, "error: %s\n", sd_last_error()); goto done; }
        gp.init_image = &init;
    }
    if (mask_path) {
        if (sd_image_load(mask_path->valuestring, 1, &mask) != SD_OK) { fprintf(stderr, "error: %s\n", sd_last_error()); goto done; }
        gp.mask = &mask;
    }
    if (cli_controls_finish(&controls, &gp) != 0) goto done;
    if (o.preview && check_preview(&o, names, count, from_png, &controls) != 0) goto done;
    if (sd_load(&o.load, &ctx) != SD_OK) { fprintf(stderr, "error: %s\n", sd_last_error()); goto done; }
    if (sd_check_params(ctx, &gp) != SD_OK) { params_error(ctx, &gp, from_png, o.params); goto done; }
    outfiles_clean_temps("", names, count); /* of an earlier run into these names that was interrupted */
    progress_state ps = {isatty(2), o.load.verbose, 0, o.preview, 0, 0};
    if (sd_generate(ctx, &gp, on_progress, &ps, &res) != SD_OK) { fprintf(stderr, "error: %s\n", sd_last_error()); goto done; }
    for (int i = 0; i < res.count; i++) {
        char path[4200];
        output_name(out, i, res.count, path, sizeof path);
        if (sd_save_png(path, &res.images[i], res.infotext[i], res.json[i], o.overwrite) != SD_OK) {
            fprintf(stderr, "error: %s\n", sd_last_error());
            goto done;
        }
        fprintf(stderr, "saved %s (seed %" PRIu64 ")\n", path, res.seeds[i]);
    }
    if (o.load.verbose) {
        const sd_timings *t = &res.timings;
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        fprintf(stderr, "timings: text encode %.3fs, sampling %.3fs (%.3fs/step, %.1f GFLOP/s), decode %.3fs (%.1f GFLOP/s), total %.3fs\n",
                t->text_encode, t->sample, t->per_step, t->sample > 0 ? t->sample_flops / t->sample / 1e9 : 0.0, t->decode,
                t->decode > 0 ? t->decode_flops / t->decode / 1e9 : 0.0, t->total);
        fprintf(stderr, "memory: peak activations %.1f MiB, peak RSS %.1f MiB\n", t->peak_activation_bytes / 1048576.0,
                ru.ru_maxrss / 1024.0);
        if (o.preview) fprintf(stderr, "previews: %d written to %s\n", ps.previews, o.preview);
    }
    rc = 0;
done:
    for (int i = 0; names && i < gp.batch_count; i++) free(names[i]);
    free(names);
    sd_result_free(&res);
    sd_free(ctx);
    sd_image_free(&init);
    sd_image_free(&mask);
    cli_controls_free(&controls);
    free(png_store);
    free(loras);
    cf_free(&o);
    return rc;
}
