/* cmd_generate.c — `sd [generate] -p PROMPT ...`: render images with flags named as stable-diffusion.cpp's. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../sd.h"
#include "cli.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: sd [generate] -p PROMPT [options]\n"
            "\n"
            "  -m, --model PATH           .safetensors checkpoint or diffusers folder (default: the bundled demo model)\n"
            "      --vae PATH             replace the model's VAE\n"
            "  -p, --prompt TEXT          what to draw; (word:1.2) [word] BREAK work as in AUTOMATIC1111\n"
            "  -n, --negative-prompt TEXT\n"
            "  -W, --width N, -H, --height N   multiples of 8 (default: the model's size)\n"
            "      --steps N              sampling steps (default per model)\n"
            "      --cfg-scale X          classifier-free guidance scale (default per model; 1 disables it)\n"
            "      --guidance-rescale X   diffusers' guidance rescale φ, 0..1\n"
            "      --sampling-method NAME sampler (see below)\n"
            "      --scheduler NAME       sigma schedule (see below)\n"
            "      --schedule-convention diffusers|kdiffusion\n"
            "                             kdiffusion reproduces AUTOMATIC1111 / stable-diffusion.cpp images\n"
            "      --eta X                DDIM eta\n"
            "  -s, --seed N               seed (-1: random, printed); image i uses seed + i\n"
            "      --rng cuda|cpu         noise generator: torch CUDA Philox (default) or torch CPU\n"
            "      --sampler-rng cuda|cpu noise drawn by ancestral/SDE samplers (default: --rng)\n"
            "      --variation-seed N, --variation-strength X   AUTOMATIC1111 variation seed\n"
            "  -b, --batch-count N        number of images\n"
            "      --batch-size N         latents per UNet call\n"
            "      --clip-skip N          2 = penultimate CLIP layer (A1111 numbering)\n"
            "  -i, --init-img PATH        img2img input\n"
            "      --strength X           img2img denoising strength 0..1 (default 0.75)\n"
            "      --mask PATH            inpainting mask (white = repaint), same size as --init-img\n"
            "      --vae-tiling           decode in tiles (automatic for large images); --no-vae-tiling to forbid\n"
            "      --from-png PATH        take every setting from a PNG made by sd (or AUTOMATIC1111); flags given after it override\n"
            "  -o, --output PATH          output PNG (default output.png; several images: output_1.png ...)\n"
            "      --overwrite            replace existing output files\n"
            "      --backend auto|cpu|cuda, -t, --threads N, --prediction auto|eps|v\n"
            "  -v, --verbose              per-stage timings and peak memory\n"
            "\n");
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
    double last;
} progress_state;

static int on_progress(void *user, const sd_progress *p) {
    progress_state *s = user;
    if (!s->tty || strcmp(p->stage, "sample") || p->steps <= 0) return 0;
    double per = p->step ? p->elapsed / p->step : 0;
    int width = 30, fill = p->steps ? width * p->step / p->steps : 0;
    fprintf(stderr, "\r[%d/%d] |", p->image + 1, p->images);
    for (int i = 0; i < width; i++) fputc(i < fill ? '#' : ' ', stderr);
    fprintf(stderr, "| %d/%d %.2fs/it", p->step, p->steps, per);
    if (p->step == p->steps) fputc('\n', stderr);
    fflush(stderr);
    return 0;
}

static int parse_int(const char *flag, const char *v, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "error: %s %s: expected an integer between %lld and %lld\n", flag, v, lo, hi);
        return 0;
    }
    *out = x;
    return 1;
}

static int parse_float(const char *flag, const char *v, float *out) {
    char *end;
    float x = strtof(v, &end);
    if (end == v || *end || x != x) {
        fprintf(stderr, "error: %s %s: expected a number\n", flag, v);
        return 0;
    }
    *out = x;
    return 1;
}

/* out.png -> out_3.png */
static void numbered(const char *path, int i, char *dst, size_t cap) {
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash)) dot = path + strlen(path);
    snprintf(dst, cap, "%.*s_%d%s", (int)(dot - path), path, i, dot);
}

enum { O_VAE = 256, O_STEPS, O_CFG, O_RESCALE, O_SAMPLER, O_SCHED, O_CONV, O_ETA, O_RNG, O_SRNG, O_VSEED, O_VSTR, O_BSIZE,
       O_CLIPSKIP, O_STRENGTH, O_MASK, O_TILING, O_NOTILING, O_FROMPNG, O_OVERWRITE, O_BACKEND, O_PRED };

int cmd_generate(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", 1, 0, 'm'}, {"vae", 1, 0, O_VAE}, {"prompt", 1, 0, 'p'}, {"negative-prompt", 1, 0, 'n'},
        {"width", 1, 0, 'W'}, {"height", 1, 0, 'H'}, {"steps", 1, 0, O_STEPS}, {"cfg-scale", 1, 0, O_CFG},
        {"guidance-rescale", 1, 0, O_RESCALE}, {"sampling-method", 1, 0, O_SAMPLER}, {"scheduler", 1, 0, O_SCHED},
        {"schedule-convention", 1, 0, O_CONV}, {"eta", 1, 0, O_ETA}, {"seed", 1, 0, 's'}, {"rng", 1, 0, O_RNG},
        {"sampler-rng", 1, 0, O_SRNG}, {"variation-seed", 1, 0, O_VSEED}, {"variation-strength", 1, 0, O_VSTR},
        {"batch-count", 1, 0, 'b'}, {"batch-size", 1, 0, O_BSIZE}, {"clip-skip", 1, 0, O_CLIPSKIP},
        {"init-img", 1, 0, 'i'}, {"strength", 1, 0, O_STRENGTH}, {"mask", 1, 0, O_MASK}, {"vae-tiling", 0, 0, O_TILING},
        {"no-vae-tiling", 0, 0, O_NOTILING}, {"from-png", 1, 0, O_FROMPNG}, {"output", 1, 0, 'o'},
        {"overwrite", 0, 0, O_OVERWRITE}, {"backend", 1, 0, O_BACKEND}, {"threads", 1, 0, 't'},
        {"prediction", 1, 0, O_PRED}, {"verbose", 0, 0, 'v'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    sd_load_params lp;
    sd_gen_params gp;
    sd_load_params_init(&lp);
    sd_gen_params_init(&gp);
    const char *out = "output.png", *init_path = NULL, *mask_path = NULL;
    int overwrite = 0, random_seed = 0, have_prompt = 0;
    void *png_store = NULL;
    long long v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:p:n:W:H:s:b:i:o:t:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': lp.model_path = optarg; break;
        case O_VAE: lp.vae_path = optarg; break;
        case 'p': gp.prompt = optarg; have_prompt = 1; break;
        case 'n': gp.negative_prompt = optarg; break;
        case 'W': if (!parse_int("--width", optarg, 8, 8192, &v)) return 1; gp.width = (int)v; break;
        case 'H': if (!parse_int("--height", optarg, 8, 8192, &v)) return 1; gp.height = (int)v; break;
        case O_STEPS: if (!parse_int("--steps", optarg, 0, 1000000, &v)) return 1; gp.steps = (int)(v > 100000 ? 100000 : v);
            if (v == 0) { fprintf(stderr, "error: --steps 0: must be between 1 and 1000\n"); return 1; } break;
        case O_CFG: if (!parse_float("--cfg-scale", optarg, &gp.cfg_scale)) return 1; break;
        case O_RESCALE: if (!parse_float("--guidance-rescale", optarg, &gp.guidance_rescale)) return 1; break;
        case O_SAMPLER: gp.sampler = optarg; break;
        case O_SCHED: gp.scheduler = optarg; break;
        case O_CONV: gp.convention = optarg; break;
        case O_ETA: if (!parse_float("--eta", optarg, &gp.eta)) return 1; break;
        case 's':
            if (!strcmp(optarg, "-1")) { random_seed = 1; break; }
            if (optarg[0] == '-') { fprintf(stderr, "error: --seed %s: expected -1 or a non-negative integer\n", optarg); return 1; }
            errno = 0;
            { char *e; unsigned long long s = strtoull(optarg, &e, 10);
              if (errno || *e || e == optarg) { fprintf(stderr, "error: --seed %s: expected an integer\n", optarg); return 1; }
              gp.seed = s; }
            break;
        case O_RNG: gp.rng = optarg; break;
        case O_SRNG: gp.sampler_rng = optarg; break;
        case O_VSEED: { char *e; gp.variation_seed = strtoull(optarg, &e, 10);
                        if (*e) { fprintf(stderr, "error: --variation-seed %s: expected an integer\n", optarg); return 1; } } break;
        case O_VSTR: if (!parse_float("--variation-strength", optarg, &gp.variation_strength)) return 1; break;
        case 'b': if (!parse_int("--batch-count", optarg, 1, 100000, &v)) return 1; gp.batch_count = (int)v; break;
        case O_BSIZE: if (!parse_int("--batch-size", optarg, 1, 64, &v)) return 1; gp.batch_size = (int)v; break;
        case O_CLIPSKIP: if (!parse_int("--clip-skip", optarg, 0, 12, &v)) return 1; gp.clip_skip = (int)v; break;
        case 'i': init_path = optarg; break;
        case O_STRENGTH: if (!parse_float("--strength", optarg, &gp.strength)) return 1; break;
        case O_MASK: mask_path = optarg; break;
        case O_TILING: gp.vae_tiling = 1; break;
        case O_NOTILING: gp.vae_tiling = -1; break;
        case O_FROMPNG:
            free(png_store);
            if (sd_params_from_png(optarg, &gp, &png_store) != SD_OK) { fprintf(stderr, "error: %s\n", sd_last_error()); return 1; }
            have_prompt = 1;
            break;
        case 'o': out = optarg; break;
        case O_OVERWRITE: overwrite = 1; break;
        case O_BACKEND:
            if (!strcmp(optarg, "auto")) lp.backend = SD_BACKEND_AUTO;
            else if (!strcmp(optarg, "cpu")) lp.backend = SD_BACKEND_CPU;
            else if (!strcmp(optarg, "cuda")) lp.backend = SD_BACKEND_CUDA;
            else { fprintf(stderr, "error: --backend %s: valid values are auto, cpu, cuda\n", optarg); return 1; }
            break;
        case 't': if (!parse_int("--threads", optarg, 0, 1024, &v)) return 1; lp.threads = (int)v; break;
        case O_PRED: lp.prediction = optarg; break;
        case 'v': lp.verbose = 1; break;
        case 'h': usage(stdout); return 0;
        default: fprintf(stderr, "error: unknown option (try sd generate --help)\n"); return 1;
        }
    }
    if (optind < argc) { fprintf(stderr, "error: unexpected argument \"%s\" (try sd generate --help)\n", argv[optind]); return 1; }
    if (!have_prompt) { fprintf(stderr, "error: no prompt: give one with -p \"...\" (try sd --help)\n"); return 1; }
    if (random_seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        gp.seed = ((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid()) % 4294967296ull;
        fprintf(stderr, "seed: %" PRIu64 "\n", gp.seed);
    }

    /* everything that can be checked before the (slow) model load is checked first */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", out);
    struct stat sb;
    if (stat(dirname(dir), &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "error: %s: output folder does not exist\n", out);
        return 1;
    }
    int count = gp.batch_count;
    for (int i = 0; i < count && !overwrite; i++) {
        char path[4200];
        if (count == 1) snprintf(path, sizeof path, "%s", out); else numbered(out, i + 1, path, sizeof path);
        if (access(path, F_OK) == 0) {
            fprintf(stderr, "error: %s: already exists (use --overwrite to replace it)\n", path);
            return 1;
        }
    }
    sd_image init = {0}, mask = {0};
    int rc = 1;
    sd_ctx *ctx = NULL;
    sd_result res = {0};
    if (init_path) {
        if (sd_image_load(init_path, 3, &init) != SD_OK) { fprintf(stderr, "error: %s\n", sd_last_error()); goto done; }
        gp.init_image = &init;
    }
    if (mask_path) {
        if (!init_path) { fprintf(stderr, "error: --mask needs --init-img\n"); goto done; }
        if (sd_image_load(mask_path, 1, &mask) != SD_OK) { fprintf(stderr, "error: %s\n", sd_last_error()); goto done; }
        gp.mask = &mask;
    }
    if (sd_load(&lp, &ctx) != SD_OK) { fprintf(stderr, "error: %s\n", sd_last_error()); goto done; }
    if (sd_check_params(ctx, &gp) != SD_OK) { fprintf(stderr, "error: %s\n", sd_last_error()); goto done; }
    progress_state ps = {isatty(2), lp.verbose, 0};
    if (sd_generate(ctx, &gp, on_progress, &ps, &res) != SD_OK) { fprintf(stderr, "error: %s\n", sd_last_error()); goto done; }
    for (int i = 0; i < res.count; i++) {
        char path[4200];
        if (res.count == 1) snprintf(path, sizeof path, "%s", out); else numbered(out, i + 1, path, sizeof path);
        if (sd_save_png(path, &res.images[i], res.infotext[i], res.json[i], overwrite) != SD_OK) {
            fprintf(stderr, "error: %s\n", sd_last_error());
            goto done;
        }
        fprintf(stderr, "saved %s (seed %" PRIu64 ")\n", path, res.seeds[i]);
    }
    if (lp.verbose) {
        const sd_timings *t = &res.timings;
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        fprintf(stderr, "timings: text encode %.3fs, sampling %.3fs (%.3fs/step), decode %.3fs, total %.3fs\n", t->text_encode,
                t->sample, t->per_step, t->decode, t->total);
        fprintf(stderr, "memory: peak activations %.1f MiB, peak RSS %.1f MiB\n", t->peak_activation_bytes / 1048576.0,
                ru.ru_maxrss / 1024.0);
    }
    rc = 0;
done:
    sd_result_free(&res);
    sd_free(ctx);
    sd_image_free(&init);
    sd_image_free(&mask);
    free(png_store);
    return rc;
}
