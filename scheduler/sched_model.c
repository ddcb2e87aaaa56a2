/* sched_model.c — a model's scheduler config: parsing, and applying it per sampler as diffusers' from_config does
 * (sched_model.h). Which class reads which key is diffusers 0.42's __init__ signatures. */
#include "sched_model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../core/error.h"

/* The diffusers class behind each sampler, as reader bits. dpm++2s_a has no diffusers scheduler: the engine runs it
 * on EulerDiscrete's schedule, so it reads what Euler reads. */
#define R(s) (1u << (s))
#define C_EULER (R(SCHED_EULER) | R(SCHED_DPMPP_2S_A))
#define C_EULER_A R(SCHED_EULER_A)
#define C_HEUN R(SCHED_HEUN)
#define C_KDPM2 (R(SCHED_DPM2) | R(SCHED_DPM2_A))
#define C_LMS R(SCHED_LMS)
#define C_DPM (R(SCHED_DPMPP_2M) | R(SCHED_DPMPP_2M_SDE))
#define C_DDIM R(SCHED_DDIM)
#define C_PNDM R(SCHED_PNDM)
#define C_DDPM R(SCHED_DDPM)
#define C_UNIPC R(SCHED_UNIPC)
#define C_LCM R(SCHED_LCM)
#define C_ALL ((1u << SCHED_SAMPLER_COUNT) - 1)

#define READS_SIGMAS (C_EULER | C_HEUN | C_KDPM2 | C_LMS | C_DPM | C_UNIPC)       /* use_karras/exponential/beta_sigmas */
#define READS_SNR (C_EULER | C_EULER_A | C_DPM | C_DDIM | C_DDPM | C_UNIPC | C_LCM) /* rescale_betas_zero_snr */
#define READS_CLIP (C_HEUN | C_DDIM | C_DDPM | C_LCM)                               /* clip_sample, clip_sample_range */
#define READS_ALPHA1 (C_DDIM | C_PNDM | C_LCM)                                      /* set_alpha_to_one */
/* sigma_min / sigma_max: a stated key reaches every class through from_config's hidden config entries, and each
 * class's Karras/exponential/beta conversion looks for it with hasattr (LMS's Karras one does not: sampler.c) */
#define READS_RANGE READS_SIGMAS
#define READS_THRESH (C_DPM | C_DDIM | C_DDPM | C_UNIPC | C_LCM)                     /* thresholding */
#define READS_FINAL (C_EULER | C_DPM | C_UNIPC)                                      /* final_sigmas_type */

enum { SM_T = 1, SM_BSTART = 2, SM_BEND = 4, SM_BSCHED = 8, SM_OFFSET = 16, SM_CLIP = 32, SM_ALPHA1 = 64, SM_PRK = 128 };

void sched_model_default(sched_model *m, int sdxl) {
    memset(m, 0, sizeof *m);
    m->train_steps = 1000;
    m->beta_start = 0.00085;
    m->beta_end = 0.012;
    m->beta_schedule = SCHED_BETA_SCALED_LINEAR;
    m->prediction = SCHED_PRED_EPS;
    m->spacing = sdxl ? SCHED_SPACING_LEADING : SCHED_SPACING_DEFAULT;
    m->steps_offset = 1;
    m->sigmas = SCHED_SCHEDULE_DISCRETE;
    m->skip_prk_steps = 1;
    m->clip_sample_range = 1.0f;
    m->lcm_origin_steps = 50;
    m->lcm_timestep_scaling = 10.0f;
}

static void refuse(sched_model *m, const char *key, const char *value, unsigned readers) {
    if (m->nrefused == SCHED_MODEL_MAX_REFUSED) return;
    snprintf(m->refused[m->nrefused].key, sizeof m->refused[0].key, "%s", key);
    snprintf(m->refused[m->nrefused].value, sizeof m->refused[0].value, "%s", value);
    m->refused[m->nrefused].readers = readers;
    m->nrefused++;
}

static const cJSON *get(const cJSON *j, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

/* A stated key of the wrong JSON type is an error; absent or null: *present = 0. */
static sd_status want_bool(const cJSON *j, const char *key, const char *file, int *out, int *present) {
    const cJSON *v = get(j, key);
    *present = v != NULL;
    if (!v) return SD_OK;
    if (!cJSON_IsBool(v)) return err_fail(SD_ERR_MODEL, "%s: \"%s\" must be true or false", file, key);
    *out = cJSON_IsTrue(v);
    return SD_OK;
}

static sd_status want_num(const cJSON *j, const char *key, const char *file, double lo, double hi, double *out, int *present) {
    const cJSON *v = get(j, key);
    *present = v != NULL;
    if (!v) return SD_OK;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
        return err_fail(SD_ERR_MODEL, "%s: \"%s\" must be a number between %g and %g", file, key, lo, hi);
    *out = v->valuedouble;
    return SD_OK;
}

static const char *want_str(const cJSON *j, const char *key) {
    const cJSON *v = get(j, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

#define TRY(x) do { sd_status st_ = (x); if (st_ != SD_OK) return st_; } while (0)

/* The keys every class reads: values no sampler could run are load errors. */
static sd_status parse_common(const cJSON *j, const char *file, sched_model *m) {
    double v;
    int has;
    TRY(want_num(j, "num_train_timesteps", file, 2, 1e9, &v, &has));
    if (has) {
        if (v > SCHED_MAX_TRAIN || v != floor(v))
            return err_fail(SD_ERR_UNSUPPORTED, "%s: num_train_timesteps %g is not supported (an integer, at most %d)", file, v, SCHED_MAX_TRAIN);
        m->train_steps = (int)v;
        m->stated |= SM_T;
    }
    TRY(want_num(j, "beta_start", file, 1e-12, 0.999, &m->beta_start, &has));
    if (has) m->stated |= SM_BSTART;
    TRY(want_num(j, "beta_end", file, 1e-12, 0.999, &m->beta_end, &has));
    if (has) m->stated |= SM_BEND;
    const char *bs = want_str(j, "beta_schedule");
    if (get(j, "beta_schedule") && !bs) return err_fail(SD_ERR_MODEL, "%s: \"beta_schedule\" must be a string", file);
    if (bs) {
        if (!strcmp(bs, "scaled_linear")) m->beta_schedule = SCHED_BETA_SCALED_LINEAR;
        else if (!strcmp(bs, "linear")) m->beta_schedule = SCHED_BETA_LINEAR;
        else if (!strcmp(bs, "squaredcos_cap_v2")) m->beta_schedule = SCHED_BETA_SQUAREDCOS;
        else
            return err_fail(SD_ERR_UNSUPPORTED, "%s: beta_schedule \"%s\" is not supported (valid: scaled_linear, linear, squaredcos_cap_v2)",
                            file, bs);
        m->stated |= SM_BSCHED;
    }
    if (get(j, "trained_betas"))
        return err_fail(SD_ERR_UNSUPPORTED, "%s: trained_betas (an explicit beta table) is not supported; use beta_start, beta_end and beta_schedule", file);
    const char *pt = want_str(j, "prediction_type");
    if (pt && strcmp(pt, "epsilon") && strcmp(pt, "v_prediction"))
        return err_fail(SD_ERR_UNSUPPORTED, "%s: prediction_type \"%s\" is not supported (valid: epsilon, v_prediction)", file, pt);
    if (pt) m->prediction = !strcmp(pt, "v_prediction") ? SCHED_PRED_V : SCHED_PRED_EPS;
    const char *sp = want_str(j, "timestep_spacing");
    if (sp) {
        if (!strcmp(sp, "default") || sched_spacing_from_name(sp, &m->spacing) != SD_OK)
            return err_fail(SD_ERR_UNSUPPORTED, "%s: timestep_spacing \"%s\" is not supported (valid: leading, linspace, trailing)", file, sp);
    }
    TRY(want_num(j, "steps_offset", file, 0, SCHED_MAX_TRAIN - 1, &v, &has));
    m->steps_offset = has ? (int)v : 0; /* every class's default is 0 */
    if (has) m->stated |= SM_OFFSET;
    TRY(want_bool(j, "rescale_betas_zero_snr", file, &m->rescale_zero_snr, &has));
    int k = 0, e = 0, b = 0, hk, he, hb;
    TRY(want_bool(j, "use_karras_sigmas", file, &k, &hk));
    TRY(want_bool(j, "use_exponential_sigmas", file, &e, &he));
    TRY(want_bool(j, "use_beta_sigmas", file, &b, &hb));
    if (k + e + b > 1)
        return err_fail(SD_ERR_MODEL, "%s: only one of use_karras_sigmas, use_exponential_sigmas, use_beta_sigmas can be true", file);
    m->sigmas = k ? SCHED_SCHEDULE_KARRAS : e ? SCHED_SCHEDULE_EXPONENTIAL : b ? SCHED_SCHEDULE_BETA : SCHED_SCHEDULE_DISCRETE;
    return SD_OK;
}

/* Keys of some classes: honoured values are stored, others recorded as refusals for the classes that read them. */
static sd_status parse_classes(const cJSON *j, const char *file, sched_model *m) {
    double v;
    int has, flag;
    TRY(want_bool(j, "clip_sample", file, &m->clip_sample, &has));
    if (has) m->stated |= SM_CLIP;
    TRY(want_num(j, "clip_sample_range", file, 1e-6, 1e9, &v, &has));
    if (has) m->clip_sample_range = (float)v;
    TRY(want_bool(j, "set_alpha_to_one", file, &m->set_alpha_to_one, &has));
    if (has) m->stated |= SM_ALPHA1;
    TRY(want_bool(j, "skip_prk_steps", file, &m->skip_prk_steps, &has));
    if (has) m->stated |= SM_PRK;
    else m->skip_prk_steps = 0; /* PNDM's default: Runge-Kutta warm-up */
    if (!m->skip_prk_steps) refuse(m, "skip_prk_steps", "false (PNDM's Runge-Kutta warm-up; pndm runs PLMS)", C_PNDM);
    TRY(want_bool(j, "thresholding", file, &flag, &has));
    if (has && flag) refuse(m, "thresholding", "true", READS_THRESH);
    TRY(want_num(j, "sigma_min", file, 1e-12, 1e9, &m->sigma_min, &has));
    TRY(want_num(j, "sigma_max", file, 1e-12, 1e9, &m->sigma_max, &has));
    if (m->sigma_min > 0 && m->sigma_max > 0 && m->sigma_min >= m->sigma_max)
        return err_fail(SD_ERR_MODEL, "%s: sigma_min %g is not below sigma_max %g", file, m->sigma_min, m->sigma_max);
    TRY(want_num(j, "original_inference_steps", file, 1, SCHED_MAX_TRAIN, &v, &has));
    if (has) m->lcm_origin_steps = (int)v;
    TRY(want_num(j, "timestep_scaling", file, 1e-6, 1e9, &v, &has));
    if (has) m->lcm_timestep_scaling = (float)v;
    /* string-valued options: the implemented value(s), else refused for their readers */
    static const struct { const char *key, *ok; unsigned readers; } strs[] = {
        {"interpolation_type", "linear", C_EULER},
        {"timestep_type", "discrete", C_EULER},
        {"final_sigmas_type", "zero", READS_FINAL},
        {"algorithm_type", "dpmsolver++,sde-dpmsolver++", C_DPM}, /* the sampler's name picks one of the two */
        {"solver_type", "midpoint,logrho,bh1,bh2", C_DPM},         /* DPM-Solver maps the UniPC names to midpoint */
        {"solver_type", "bh2,midpoint,heun,logrho", C_UNIPC},      /* ... and UniPC the DPM-Solver names to bh2 */
        {"variance_type", "fixed_small", C_DDPM},
        {"time_shift_type", "exponential,linear", C_DPM | C_UNIPC}, /* only read with dynamic shifting */
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        const cJSON *sv = get(j, strs[i].key);
        if (!sv) continue;
        if (!cJSON_IsString(sv)) return err_fail(SD_ERR_MODEL, "%s: \"%s\" must be a string", file, strs[i].key);
        char list[64];
        snprintf(list, sizeof list, ",%s,", strs[i].ok);
        char item[80];
        snprintf(item, sizeof item, ",%s,", sv->valuestring);
        if (!strstr(list, item)) refuse(m, strs[i].key, sv->valuestring, strs[i].readers);
    }
    const char *vt = want_str(j, "variance_type"); /* DPM-Solver: learned variances are not implemented */
    if (vt && (!strcmp(vt, "learned") || !strcmp(vt, "learned_range"))) refuse(m, "variance_type", vt, C_DPM);
    /* numeric / boolean options with one implemented value */
    TRY(want_num(j, "solver_order", file, 1, 10, &v, &has));
    if (has && v != 2) {
        char s[16];
        snprintf(s, sizeof s, "%g", v);
        refuse(m, "solver_order", s, C_DPM | C_UNIPC);
    }
    static const struct { const char *key; int ok; unsigned readers; const char *why; } bools[] = {
        {"lower_order_final", 1, C_UNIPC, "false (its last step divides by a zero step size)"},
        {"use_lu_lambdas", 0, C_DPM, "true"},
        {"predict_x0", 1, C_UNIPC, "false"},
        {"use_dynamic_shifting", 0, C_DPM | C_UNIPC, "true (flow-matching models)"},
        {"use_flow_sigmas", 0, C_DPM | C_UNIPC, "true (flow-matching models)"},
    };
    for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
        TRY(want_bool(j, bools[i].key, file, &flag, &has));
        if (has && flag != bools[i].ok) refuse(m, bools[i].key, bools[i].why, bools[i].readers);
    }
    if (get(j, "lambda_min_clipped")) refuse(m, "lambda_min_clipped", "a finite clip (only -inf)", C_DPM);
    const cJSON *dc = get(j, "disable_corrector");
    if (dc && (!cJSON_IsArray(dc) || cJSON_GetArraySize(dc) > 0)) refuse(m, "disable_corrector", "a non-empty list", C_UNIPC);
    if (get(j, "solver_p")) refuse(m, "solver_p", "a solver (only null)", C_UNIPC);
    if (get(j, "shift_terminal")) refuse(m, "shift_terminal", "a value (only null)", C_UNIPC);
    return SD_OK;
}

sd_status sched_model_parse(const cJSON *j, const char *file, sched_model *m) {
    sched_model_default(m, 0);
    if (!j) return SD_OK;
    m->present = 1;
    snprintf(m->file, sizeof m->file, "%s", file);
    if (!cJSON_IsObject(j)) return err_fail(SD_ERR_MODEL, "%s: not a JSON object", file);
    TRY(parse_common(j, file, m));
    return parse_classes(j, file, m);
}

/* Each class's defaults for the betas (absent from a config file: from_config drops them, the class fills in). */
static void class_betas(const sched_model *m, sched_sampler s, sched_config *cfg) {
    unsigned r = R(s);
    int sd_like = (r & (C_HEUN | C_KDPM2 | C_LCM)) != 0; /* these classes default to SD's 0.00085..0.012 */
    cfg->train_steps = m->train_steps;
    cfg->beta_start = m->stated & SM_BSTART ? m->beta_start : sd_like ? 0.00085 : 0.0001;
    cfg->beta_end = m->stated & SM_BEND ? m->beta_end : sd_like ? 0.012 : 0.02;
    cfg->beta_schedule = m->stated & SM_BSCHED ? m->beta_schedule : (r & C_LCM) ? SCHED_BETA_SCALED_LINEAR : SCHED_BETA_LINEAR;
}

sd_status sched_model_apply(const sched_model *m, sched_config *cfg) {
    unsigned r = R(cfg->sampler);
    if ((unsigned)cfg->sampler >= SCHED_SAMPLER_COUNT) return err_fail(SD_ERR_ARG, "sampler out of range");
    cfg->prediction = m->prediction;
    if (!m->present) { /* SD's schedule, for every sampler */
        cfg->train_steps = m->train_steps;
        cfg->beta_start = m->beta_start;
        cfg->beta_end = m->beta_end;
        cfg->beta_schedule = m->beta_schedule;
        cfg->spacing = m->spacing;
        cfg->steps_offset = m->steps_offset;
        return SD_OK;
    }
    class_betas(m, cfg->sampler, cfg);
    /* the schedule refuses these too, but without knowing they came from this file */
    if (cfg->beta_schedule != SCHED_BETA_SQUAREDCOS && !(cfg->beta_start > 0 && cfg->beta_end > cfg->beta_start && cfg->beta_end < 1))
        return err_fail(SD_ERR_MODEL, "%s: beta range %g..%g is invalid (need 0 < beta_start < beta_end < 1)", m->file,
                        cfg->beta_start, cfg->beta_end);
    cfg->spacing = m->spacing;
    cfg->steps_offset = m->steps_offset;
    if (cfg->convention == SCHED_CONV_KDIFFUSION) { /* A1111: the training schedule, and the sigma schedule asked for */
        cfg->rescale_zero_snr = m->rescale_zero_snr;
        if (!(r & (C_DDIM | C_PNDM | C_DDPM | C_LCM))) cfg->schedule = m->sigmas; /* not for integer-timestep samplers */
        return SD_OK;
    }
    for (int i = 0; i < m->nrefused; i++)
        if (m->refused[i].readers & r)
            return err_fail(SD_ERR_UNSUPPORTED, "%s: %s %s is not supported with sampler %s", m->file, m->refused[i].key,
                            m->refused[i].value, sched_sampler_name(cfg->sampler));
    if (r & READS_SNR) cfg->rescale_zero_snr = m->rescale_zero_snr;
    if (r & READS_SIGMAS) cfg->schedule = m->sigmas;
    if (r & READS_CLIP) {
        cfg->clip_sample = m->stated & SM_CLIP ? m->clip_sample : (r & (C_DDIM | C_DDPM)) != 0; /* DDIM, DDPM default true */
        cfg->clip_sample_range = m->clip_sample_range;
    }
    if (r & READS_ALPHA1) cfg->set_alpha_to_one = m->stated & SM_ALPHA1 ? m->set_alpha_to_one : (r & (C_DDIM | C_LCM)) != 0;
    if (r & READS_RANGE) {
        cfg->sigma_min = m->sigma_min;
        cfg->sigma_max = m->sigma_max;
    }
    if (r & C_LCM) {
        cfg->lcm_origin_steps = m->lcm_origin_steps;
        cfg->lcm_timestep_scaling = m->lcm_timestep_scaling;
    }
    return SD_OK;
}

void sched_model_describe(const sched_model *m, char *buf, size_t cap) {
    static const char *betas[SCHED_BETA_COUNT] = {"scaled_linear", "linear", "squaredcos_cap_v2"};
    size_t k = 0;
#define ADD(...) k += (size_t)snprintf(buf + k, k < cap ? cap - k : 0, __VA_ARGS__)
    if (!m->present) {
        ADD("  scheduler     no scheduler config: SD's schedule (scaled_linear betas 0.00085..0.012, 1000 steps), "
            "timestep spacing %s, steps_offset 1\n", m->spacing == SCHED_SPACING_LEADING ? "leading" : "each sampler's own");
        return;
    }
    ADD("  scheduler     %s\n", m->file);
    if (m->beta_schedule == SCHED_BETA_SQUAREDCOS && (m->stated & SM_BSCHED))
        ADD("                betas squaredcos_cap_v2 over %d steps", m->train_steps);
    else if ((m->stated & (SM_BSTART | SM_BEND | SM_BSCHED)) == (SM_BSTART | SM_BEND | SM_BSCHED))
        ADD("                betas %s %g..%g over %d steps", betas[m->beta_schedule], m->beta_start, m->beta_end, m->train_steps);
    else
        ADD("                betas: each sampler's class default where the file states none (%d steps)", m->train_steps);
    ADD(", %s prediction%s\n", m->prediction == SCHED_PRED_V ? "v" : "epsilon",
        m->rescale_zero_snr ? ", zero terminal SNR (Euler, Euler a, DPM-Solver, UniPC, DDIM, DDPM, LCM)" : "");
    ADD("                timestep spacing %s, steps_offset %d", m->spacing == SCHED_SPACING_DEFAULT ? "each sampler's own" : sched_spacing_name(m->spacing),
        m->steps_offset);
    if (m->sigmas != SCHED_SCHEDULE_DISCRETE) ADD(", %s sigmas (samplers that read it)", sched_schedule_name(m->sigmas));
    if (m->sigma_min > 0 || m->sigma_max > 0) ADD(", sigma range %g..%g", m->sigma_min, m->sigma_max);
    ADD("\n                DDIM/DDPM clip_sample %s, DDIM set_alpha_to_one %s\n",
        (m->stated & SM_CLIP) ? (m->clip_sample ? "true" : "false") : "true (class default)",
        (m->stated & SM_ALPHA1) ? (m->set_alpha_to_one ? "true" : "false") : "true (class default)");
    for (int i = 0; i < m->nrefused; i++) {
        char names[256];
        size_t q = 0;
        for (int s = 0; s < SCHED_SAMPLER_COUNT; s++)
            if (m->refused[i].readers & R(s)) q += (size_t)snprintf(names + q, q < sizeof names ? sizeof names - q : 0, "%s%s", q ? ", " : "", sched_sampler_name((sched_sampler)s));
        ADD("                refused: %s %s (with %s)\n", m->refused[i].key, m->refused[i].value, names);
    }
#undef ADD
}
