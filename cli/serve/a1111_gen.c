/* a1111_gen.c — POST /sdapi/v1/txt2img and /img2img: AUTOMATIC1111's request fields (names, defaults, types) to a
 * job, and its response: base64 PNGs carrying their infotext, the parameters, and info as a JSON string.
 *
 * Every field A1111 takes is type-checked. Those this engine applies: prompt, negative_prompt, seed, subseed and
 * subseed_strength (variation seed), sampler_name / sampler_index, scheduler, steps, cfg_scale, width, height,
 * batch_size, n_iter, eta, override_settings (the options of /sdapi/v1/options), send_images, force_task_id,
 * disable_extra_networks (the prompt's tags removed, none applied); for
 * img2img init_images, mask, denoising_strength, mask_blur(_x/_y, alike), mask_round, inpainting_mask_invert,
 * inpainting_fill, inpaint_full_res and inpaint_full_res_padding (the library's inpainting options). Fields that
 * ask for something it cannot do (enable_hr, restore_faces, tiling, styles, scripts, s_churn ...) are refused with
 * 422 naming the field, unless they hold their do-nothing value; the others are accepted and have no effect (s_noise,
 * s_tmin and s_tmax act only with s_churn). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "a1111.h"
#include "a1111_names.h"
#include "b64.h"
#include "jfield.h"
#include "mask.h"

/* A1111's fields and defaults (StableDiffusionProcessing and the API's additions), as the parameters echo them. */
static const char TXT2IMG_DEFAULTS[] =
    "{\"prompt\":\"\",\"negative_prompt\":\"\",\"styles\":null,\"seed\":-1,\"subseed\":-1,\"subseed_strength\":0,"
    "\"seed_resize_from_h\":-1,\"seed_resize_from_w\":-1,\"sampler_name\":null,\"scheduler\":null,\"batch_size\":1,"
    "\"n_iter\":1,\"steps\":50,\"cfg_scale\":7.0,\"width\":512,\"height\":512,\"restore_faces\":null,\"tiling\":null,"
    "\"do_not_save_samples\":false,\"do_not_save_grid\":false,\"eta\":null,\"denoising_strength\":null,"
    "\"s_min_uncond\":null,\"s_churn\":null,\"s_tmax\":null,\"s_tmin\":null,\"s_noise\":null,\"override_settings\":null,"
    "\"override_settings_restore_afterwards\":true,\"refiner_checkpoint\":null,\"refiner_switch_at\":null,"
    "\"disable_extra_networks\":false,\"firstpass_image\":null,\"comments\":null,\"enable_hr\":false,"
    "\"firstphase_width\":0,\"firstphase_height\":0,\"hr_scale\":2.0,\"hr_upscaler\":null,\"hr_second_pass_steps\":0,"
    "\"hr_resize_x\":0,\"hr_resize_y\":0,\"hr_checkpoint_name\":null,\"hr_sampler_name\":null,\"hr_scheduler\":null,"
    "\"hr_prompt\":\"\",\"hr_negative_prompt\":\"\",\"force_task_id\":null,\"sampler_index\":\"Euler\","
    "\"script_name\":null,\"script_args\":[],\"send_images\":true,\"save_images\":false,\"alwayson_scripts\":{},"
    "\"infotext\":null}";
static const char IMG2IMG_EXTRA[] =
    "{\"init_images\":null,\"resize_mode\":0,\"image_cfg_scale\":null,\"mask\":null,\"mask_blur_x\":4,"
    "\"mask_blur_y\":4,\"mask_blur\":null,\"mask_round\":true,\"inpainting_fill\":0,\"inpaint_full_res\":true,"
    "\"inpaint_full_res_padding\":0,\"inpainting_mask_invert\":0,\"initial_noise_multiplier\":null,"
    "\"latent_mask\":null,\"include_init_images\":false,\"denoising_strength\":0.75}";
/* fields of txt2img that img2img does not have */
static const char *const TXT2IMG_ONLY[] = {"enable_hr", "firstphase_width", "firstphase_height", "hr_scale", "hr_upscaler",
                                           "hr_second_pass_steps", "hr_resize_x", "hr_resize_y", "hr_checkpoint_name",
                                           "hr_sampler_name", "hr_scheduler", "hr_prompt", "hr_negative_prompt", "firstpass_image"};

/* The type each field must have when it is not null (by its default, or stated here where the default is null). */
static const struct { const char *key; int type; } NULL_DEFAULT_TYPES[] = {
    {"styles", cJSON_Array}, {"sampler_name", cJSON_String}, {"scheduler", cJSON_String}, {"restore_faces", cJSON_True},
    {"tiling", cJSON_True}, {"eta", cJSON_Number}, {"denoising_strength", cJSON_Number}, {"s_min_uncond", cJSON_Number},
    {"s_churn", cJSON_Number}, {"s_tmax", cJSON_Number}, {"s_tmin", cJSON_Number}, {"s_noise", cJSON_Number},
    {"override_settings", cJSON_Object}, {"refiner_checkpoint", cJSON_String}, {"refiner_switch_at", cJSON_Number},
    {"firstpass_image", cJSON_String}, {"comments", cJSON_Object}, {"hr_upscaler", cJSON_String},
    {"hr_checkpoint_name", cJSON_String}, {"hr_sampler_name", cJSON_String}, {"hr_scheduler", cJSON_String},
    {"force_task_id", cJSON_String}, {"script_name", cJSON_String}, {"infotext", cJSON_String},
    {"init_images", cJSON_Array}, {"image_cfg_scale", cJSON_Number}, {"mask", cJSON_String}, {"mask_blur", cJSON_Number},
    {"initial_noise_multiplier", cJSON_Number}, {"latent_mask", cJSON_String},
};

static int want_type(const char *key, const cJSON *def) {
    for (size_t i = 0; i < sizeof NULL_DEFAULT_TYPES / sizeof *NULL_DEFAULT_TYPES; i++)
        if (!strcmp(NULL_DEFAULT_TYPES[i].key, key)) return NULL_DEFAULT_TYPES[i].type;
    return cJSON_IsBool(def) ? cJSON_True : def->type & 0xFF;
}

static const char *type_word(int t) {
    return t == cJSON_True ? "true or false" : t == cJSON_Number ? "a number" : t == cJSON_String ? "a string"
         : t == cJSON_Array ? "an array" : "an object";
}

cJSON *a1111_defaults(int img2img) {
    cJSON *d = cJSON_Parse(TXT2IMG_DEFAULTS);
    if (!d) return NULL;
    if (img2img) {
        for (size_t i = 0; i < sizeof TXT2IMG_ONLY / sizeof *TXT2IMG_ONLY; i++) cJSON_DeleteItemFromObjectCaseSensitive(d, TXT2IMG_ONLY[i]);
        cJSON *x = cJSON_Parse(IMG2IMG_EXTRA);
        if (!x) { cJSON_Delete(d); return NULL; }
        for (cJSON *it = x->child; it; it = it->next) {
            cJSON_DeleteItemFromObjectCaseSensitive(d, it->string);
            cJSON_AddItemToObject(d, it->string, cJSON_Duplicate(it, 1));
        }
        cJSON_Delete(x);
    }
    return d;
}

/* Every known field of the body has its type (null is always allowed); the echo of parameters starts from the
 * defaults with the body's values over them. Unknown fields are ignored, as A1111's API model ignores them. */
static int check_types(const cJSON *body, const cJSON *defaults, cJSON *params, jfield_err *e) {
    for (const cJSON *d = defaults->child; d; d = d->next) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, d->string);
        if (!v || cJSON_IsNull(v)) continue;
        int t = want_type(d->string, d);
        int ok = t == cJSON_True ? cJSON_IsBool(v) : (v->type & 0xFF) == t;
        if (!strcmp(d->string, "inpaint_full_res") || !strcmp(d->string, "inpainting_mask_invert"))
            ok = cJSON_IsBool(v) || (cJSON_IsNumber(v) && (v->valuedouble == 0 || v->valuedouble == 1)); /* 0/1 or a boolean */
        if (!ok) return jfield_fail(e, d->string, "must be %s", type_word(t));
        if (cJSON_IsNumber(v) && !isfinite(v->valuedouble)) return jfield_fail(e, d->string, "must be a finite number");
        cJSON_DeleteItemFromObjectCaseSensitive(params, d->string);
        cJSON_AddItemToObject(params, d->string, cJSON_Duplicate(v, 1));
    }
    return 0;
}

/* A field that must keep its do-nothing value: absent, null, false, 0, "", [] or {} (or `ok` for numbers). */
static int unsupported(const cJSON *body, const char *key, double ok, const char *why, jfield_err *e) {
    const cJSON *v = jfield_get(body, key);
    if (!v) return 0;
    int idle = cJSON_IsFalse(v) || (cJSON_IsNumber(v) && (v->valuedouble == 0 || v->valuedouble == ok)) ||
               (cJSON_IsString(v) && !v->valuestring[0]) || ((cJSON_IsArray(v) || cJSON_IsObject(v)) && !v->child);
    return idle ? 0 : jfield_fail(e, key, "%s", why);
}

/* The options a request may override (override_settings) over the server's (/sdapi/v1/options). */
typedef struct gen_opts {
    int clip_skip, rng_cpu;
    double eta_ddim, eta_ancestral;
    const char *checkpoint;
} gen_opts;

static int read_overrides(const cJSON *body, gen_opts *g, jfield_err *e) {
    const cJSON *o = jfield_get(body, "override_settings");
    if (!o) return 0;
    for (const cJSON *it = o->child; it; it = it->next) {
        char field[96];
        snprintf(field, sizeof field, "override_settings.%.60s", it->string);
        long long n;
        double d;
        const char *s;
        if (cJSON_IsNull(it)) continue;
        if (!strcmp(it->string, "CLIP_stop_at_last_layers")) {
            if (jfield_int(o, it->string, 1, 12, 1, &n, e) != 0) return jfield_fail(e, field, "%s", strchr(e->msg, ':') + 2);
            g->clip_skip = (int)n;
        } else if (!strcmp(it->string, "eta_ddim") || !strcmp(it->string, "eta_ancestral")) {
            if (jfield_num(o, it->string, 0, 1, 0, &d, e) != 0) return jfield_fail(e, field, "%s", strchr(e->msg, ':') + 2);
            *(it->string[4] == 'd' ? &g->eta_ddim : &g->eta_ancestral) = d;
        } else if (!strcmp(it->string, "randn_source")) {
            if (jfield_str(o, it->string, 8, "GPU", &s, e) != 0 || (strcmp(s, "GPU") && strcmp(s, "CPU")))
                return jfield_fail(e, field, "must be \"GPU\" or \"CPU\"");
            g->rng_cpu = !strcmp(s, "CPU");
        } else if (!strcmp(it->string, "sd_model_checkpoint")) {
            if (jfield_str(o, it->string, 255, NULL, &s, e) != 0) return jfield_fail(e, field, "must be a model name");
            g->checkpoint = s;
        } else if (!strcmp(it->string, "samples_format")) {
            if (!cJSON_IsString(it) || strcmp(it->valuestring, "png")) return jfield_fail(e, field, "only \"png\" is made here");
        } else {
            return jfield_fail(e, field, "not an option this server has (it has CLIP_stop_at_last_layers, eta_ddim, "
                                         "eta_ancestral, randn_source, samples_format, sd_model_checkpoint)");
        }
    }
    return 0;
}

/* The samplers whose noise eta scales (the library's default eta for them is 1; ddim's is 0). */
static int ancestral(const char *s) {
    return !strcmp(s, "euler_a") || !strcmp(s, "dpm2_a") || !strcmp(s, "dpm++2s_a") || !strcmp(s, "dpm++2m_sde");
}

static uint64_t random_seed(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_sec ^ ((uint64_t)(uintptr_t)&ts << 17);
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    return x % 4294967294ull; /* A1111: random.randrange(4294967294) */
}

/* An upload is resized to the request's size (at most --max-size); it may be up to twice that per side. */
static int decode_image(const char *field, const cJSON *v, int channels, int max_side, sd_image *out, jfield_err *e) {
    if (!cJSON_IsString(v)) return jfield_fail(e, field, "must be a base64 string");
    int bad;
    size_t n;
    uint8_t *bytes = b64_decode(v->valuestring, strlen(v->valuestring), &n, &bad);
    if (!bytes) return jfield_fail(e, field, bad ? "is not base64" : "out of memory");
    sd_status st = sd_image_decode(bytes, n, channels, max_side, field, out);
    free(bytes);
    if (st != SD_OK) {
        jfield_fail(e, field, "x");
        snprintf(e->msg, sizeof e->msg, "%s", sd_last_error());
        return -1;
    }
    return 0;
}

/* A field A1111 types as a boolean that its clients also send as 0/1 (check_types has checked which). */
static int flag01(const cJSON *b, const char *key, int def) {
    const cJSON *v = jfield_get(b, key);
    return !v ? def : cJSON_IsTrue(v) || (cJSON_IsNumber(v) && v->valuedouble == 1);
}

static int word_char(unsigned char c) { return c == '_' || (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z') || c >= 0x80; }

/* A copy of the prompt without its extra-network tags: A1111's re_extra_net <(\w+):([^>]+)> replaced by "". */
static char *strip_extra_networks(const char *p) {
    char *out = malloc(strlen(p) + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (const char *q = p; *q;) {
        const char *t = q + 1, *end = NULL;
        if (*q == '<') {
            while (word_char((unsigned char)*t)) t++;
            if (t > q + 1 && *t == ':' && t[1] && t[1] != '>') end = strchr(t + 1, '>');
        }
        if (end) q = end + 1;
        else out[o++] = *q++;
    }
    out[o] = 0;
    return out;
}

int a1111_parse(srv *s, const cJSON *b, int img2img, a1111_data *d, job *j, jfield_err *e, unsigned *status) {
    const server_opts *o = &s->o;
    *status = 422;
    cJSON *defaults = a1111_defaults(img2img);
    d->params = defaults ? cJSON_Duplicate(defaults, 1) : NULL;
    if (!defaults || !d->params) { cJSON_Delete(defaults); return jfield_fail(e, "body", "out of memory"); }
    int bad = check_types(b, defaults, d->params, e);
    cJSON_Delete(defaults);
    if (bad) return -1;

    /* what this engine cannot do, unless asked for nothing */
    if (unsupported(b, "enable_hr", 0, "the hires fix is not in this build", e) ||
        unsupported(b, "restore_faces", 0, "face restoration is not in this build", e) ||
        unsupported(b, "tiling", 0, "tiling is not in this build", e) ||
        unsupported(b, "styles", 0, "styles are not stored on this server: put them in the prompt", e) ||
        unsupported(b, "script_name", 0, "scripts are not in this build", e) ||
        unsupported(b, "script_args", 0, "scripts are not in this build", e) ||
        unsupported(b, "alwayson_scripts", 0, "scripts and extensions are not in this build", e) ||
        unsupported(b, "s_churn", 0, "s_churn is not in this build", e) ||
        unsupported(b, "s_min_uncond", 0, "s_min_uncond is not in this build", e) ||
        unsupported(b, "refiner_checkpoint", 0, "the refiner is not in this build", e) ||
        unsupported(b, "save_images", 0, "this server does not write images to its own disk; they come back in the response", e) ||
        unsupported(b, "infotext", 0, "filling parameters from an infotext is not in this build", e) ||
        unsupported(b, "firstpass_image", 0, "the hires fix is not in this build", e) ||
        unsupported(b, "initial_noise_multiplier", 1, "initial_noise_multiplier other than 1 is not in this build", e) ||
        unsupported(b, "resize_mode", 0, "only resize mode 0 (just resize) is in this build", e) ||
        unsupported(b, "latent_mask", 0, "latent_mask is not in this build", e))
        return -1;
    long long n;
    double x;
    const char *str;
    if (jfield_int(b, "seed_resize_from_w", -1, o->max_side, -1, &n, e) || (n > 0 && jfield_fail(e, "seed_resize_from_w", "seed resizing is not in this build")) ||
        jfield_int(b, "seed_resize_from_h", -1, o->max_side, -1, &n, e) || (n > 0 && jfield_fail(e, "seed_resize_from_h", "seed resizing is not in this build")))
        return -1;

    gen_opts g = {s->opt_clip_skip, s->opt_rng_cpu, s->opt_eta_ddim, s->opt_eta_ancestral, NULL};
    if (read_overrides(b, &g, e) != 0) return -1;

    /* the model: the override's, else the default */
    pthread_mutex_lock(&s->mu);
    j->model = s->def_model;
    pthread_mutex_unlock(&s->mu);
    if (g.checkpoint && a1111_find_model(s, g.checkpoint, &j->model, e, status) != 0) return -1;

    /* text */
    const char *prompt, *neg;
    if (jfield_str(b, "prompt", SD_PROMPT_MAX_BYTES, "", &prompt, e) ||
        jfield_str(b, "negative_prompt", SD_PROMPT_MAX_BYTES, "", &neg, e))
        return -1;
    int no_extra;
    if (jfield_bool(b, "disable_extra_networks", 0, &no_extra, e)) return -1;
    if ((!no_extra && a1111_check_loras(s, "prompt", prompt, e)) || a1111_check_loras(s, "negative_prompt", neg, e)) return -1;
    /* disable_extra_networks: A1111 still parses the tags out of the prompt but activates none of them; the prompt
     * rendered (and so its infotext) is the one without them */
    j->prompt = no_extra ? strip_extra_networks(prompt) : strdup(prompt);
    j->negative = strdup(neg);
    if (!j->prompt || !j->negative) return jfield_fail(e, "prompt", "out of memory");
    j->gp.prompt = j->prompt;
    j->gp.negative_prompt = j->negative;
    j->gp.lora_dir = s->o.lora_dir; /* the prompt's <lora:NAME:W> tags, checked above (a1111_check_loras) */

    /* sizes and counts, within this server's limits */
    long long w, h, steps, bs, it;
    if (jfield_int(b, "width", 8, o->max_side, 512, &w, e) || jfield_int(b, "height", 8, o->max_side, 512, &h, e)) return -1;
    if (w % 8) return jfield_fail(e, "width", "%lld is not a multiple of 8", w);
    if (h % 8) return jfield_fail(e, "height", "%lld is not a multiple of 8", h);
    if (jfield_int(b, "steps", 1, o->max_steps, 50, &steps, e) || jfield_int(b, "batch_size", 1, o->max_images, 1, &bs, e) ||
        jfield_int(b, "n_iter", 1, o->max_images, 1, &it, e))
        return -1;
    if (bs * it > o->max_images)
        return jfield_fail(e, "n_iter", "batch_size %lld x n_iter %lld is %lld images: at most %d a request", bs, it, bs * it, o->max_images);
    j->gp.width = (int)w;
    j->gp.height = (int)h;
    j->gp.steps = (int)steps;
    j->gp.batch_count = j->gp.batch_size = (int)bs;
    j->iterations = (int)it;
    if (jfield_num(b, "cfg_scale", 0, 100, 7.0, &x, e)) return -1;
    j->gp.cfg_scale = (float)x;

    /* sampler and scheduler (the sampler's old "... Karras" names set the scheduler) */
    const char *sname, *sindex, *sched_name, *sched = NULL;
    if (jfield_str(b, "sampler_name", 64, NULL, &sname, e) || jfield_str(b, "sampler_index", 64, "Euler", &sindex, e) ||
        jfield_str(b, "scheduler", 64, "Automatic", &sched_name, e))
        return -1;
    if (sname && !sname[0]) sname = NULL;            /* A1111: `sampler_name or sampler_index` */
    if (!sched_name[0]) sched_name = "Automatic";     /* an empty Schedule type is A1111's Automatic */
    const char *sfield = sname ? "sampler_name" : "sampler_index", *given = sname ? sname : sindex;
    int ok;
    sched = a1111_scheduler(sched_name, &ok);
    if (!ok) {
        char list[512];
        a1111_scheduler_list(list, sizeof list);
        return jfield_fail(e, "scheduler", "\"%.64s\" is not one of %s", sched_name, list);
    }
    const char *ksched = NULL;
    const char *sampler = a1111_sampler(given, &ksched);
    if (!sampler) {
        char list[768];
        a1111_sampler_list(list, sizeof list);
        return jfield_fail(e, sfield, "\"%.64s\" is not one of %s", given, list);
    }
    if (ksched && !sched) sched = ksched;
    /* A1111's UniPC is a CompVis timestep sampler whose timesteps ignore the Schedule type: every one gives the
     * Automatic picture, so it is rendered as Automatic (and its infotext says so); ours would follow the schedule */
    if (!strcmp(sampler, "unipc")) sched = NULL;
    j->gp.sampler = sampler;
    j->gp.scheduler = sched;
    j->gp.convention = "kdiffusion"; /* A1111's samplers are k-diffusion's */
    j->gp.rng = g.rng_cpu ? "cpu" : "cuda";
    j->gp.clip_skip = g.clip_skip > 1 ? g.clip_skip : 0;

    /* eta: A1111's per-request value, else its option for the sampler's kind; the library's 0 means its default
     * (1 for ancestral samplers, 0 for ddim), so an ancestral eta of 0 cannot be asked of it */
    if (jfield_num(b, "eta", 0, 1, -1, &x, e)) return -1;
    double eta = x >= 0 ? x : ancestral(sampler) ? g.eta_ancestral : !strcmp(sampler, "ddim") ? g.eta_ddim : 0;
    if (ancestral(sampler) && eta == 0)
        return jfield_fail(e, x >= 0 ? "eta" : "override_settings.eta_ancestral", "0 with the ancestral sampler %s is not in this build", given);
    if (ancestral(sampler) || !strcmp(sampler, "ddim")) j->gp.eta = (float)(ancestral(sampler) && eta == 1 ? 0 : eta);

    /* seeds */
    long long seed, subseed;
    if (jfield_int(b, "seed", -1, (1ll << 53), -1, &seed, e) || jfield_int(b, "subseed", -1, (1ll << 53), -1, &subseed, e) ||
        jfield_num(b, "subseed_strength", 0, 1, 0, &x, e))
        return -1;
    d->seed = seed < 0 ? random_seed() : (uint64_t)seed;
    d->subseed = subseed < 0 ? random_seed() : (uint64_t)subseed;
    d->subseed_strength = x;
    j->gp.seed = d->seed;
    if (x > 0) {
        j->gp.variation_seed = d->subseed;
        j->gp.variation_strength = (float)x;
    }

    int send;
    if (jfield_bool(b, "send_images", 1, &send, e)) return -1;
    d->send_images = send;
    if (jfield_str(b, "force_task_id", sizeof j->task_id - 1, "", &str, e)) return -1;
    snprintf(j->task_id, sizeof j->task_id, "%s", str);

    /* img2img: the start image, the mask and how much to change */
    d->img2img = img2img;
    if (img2img) {
        const cJSON *imgs = jfield_get(b, "init_images");
        int count = imgs ? cJSON_GetArraySize(imgs) : 0;
        if (count < 1) return jfield_fail(e, "init_images", "img2img needs one base64 image");
        if (count > 1) return jfield_fail(e, "init_images", "%d images: this server takes one init image a request", count);
        if (decode_image("init_images[0]", imgs->child, 3, 2 * o->max_side, &j->init, e)) return -1;
        if (jfield_num(b, "denoising_strength", 0, 1, 0.75, &x, e)) return -1;
        j->gp.init_image = &j->init;
        j->gp.strength = (float)x;
        d->denoising = x;
        const cJSON *m = jfield_get(b, "mask");
        if (m) {
            if (decode_image("mask", m, 1, 2 * o->max_side, &j->mask, e)) return -1;
            if (j->mask.w != j->init.w || j->mask.h != j->init.h)
                return jfield_fail(e, "mask", "is %dx%d but the init image is %dx%d: they must be the same size", j->mask.w,
                                   j->mask.h, j->init.w, j->init.h);
            /* A1111's order: threshold (mask_round), invert, then the library blurs, crops (inpaint_full_res) and
             * fills (inpainting_fill) as A1111 does in the kdiffusion convention */
            static const char *const FILL[4] = {"fill", "original", "latent noise", "latent nothing"};
            long long blur, bx, by, fill, pad;
            int round, inv = flag01(b, "inpainting_mask_invert", 0), full_res = flag01(b, "inpaint_full_res", 1);
            if (jfield_int(b, "mask_blur", -1, 64, -1, &blur, e) || jfield_int(b, "mask_blur_x", 0, 64, 4, &bx, e) ||
                jfield_int(b, "mask_blur_y", 0, 64, 4, &by, e) || jfield_bool(b, "mask_round", 1, &round, e) ||
                jfield_int(b, "inpainting_fill", 0, 3, 0, &fill, e) ||
                jfield_int(b, "inpaint_full_res_padding", 0, 8192, 0, &pad, e))
                return -1;
            if (blur >= 0) bx = by = blur; /* A1111: mask_blur sets both */
            if (bx != by)
                return jfield_fail(e, "mask_blur_y", "%lld differs from mask_blur_x %lld: this server blurs both directions alike", by, bx);
            if (!mask_prepare(&j->mask, round, inv) && full_res)
                return jfield_fail(e, "mask", "has no pixel to repaint%s: nothing to inpaint with inpaint_full_res", inv ? " once inverted" : "");
            j->gp.mask_blur = (int)bx;
            j->gp.inpaint_fill = FILL[fill];
            j->gp.inpaint_only_masked = full_res;
            j->gp.inpaint_padding = full_res ? (int)pad : 0;
            j->gp.mask = &j->mask;
        }
    }
    return 0;
}

static enum MHD_Result generate(req *r, int img2img) {
    cJSON *b = http_body_object(r);
    if (!b) return MHD_YES;
    a1111_data *d = calloc(1, sizeof *d);
    job *j = job_new(JOB_GENERATE);
    if (!d || !j) {
        free(d);
        job_release(r->s, j);
        return http_error(r, 500, NULL, "out of memory");
    }
    r->data = d;
    r->free_data = a1111_data_free;
    jfield_err e = {{0}, {0}};
    unsigned status;
    if (a1111_parse(r->s, b, img2img, d, j, &e, &status) != 0) {
        job_release(r->s, j);
        return http_error(r, status, e.field, "%s", e.msg);
    }
    return http_submit(r, j, a1111_finish_generate);
}

enum MHD_Result a1111_txt2img(req *r) { return generate(r, 0); }
enum MHD_Result a1111_img2img(req *r) { return generate(r, 1); }
