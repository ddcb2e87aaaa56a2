/* a1111_names.c — sampler and scheduler names both ways, from the library's lists and its A1111 names. */
#include "a1111_names.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../../sd.h"

/* AUTOMATIC1111's aliases of its k-diffusion samplers ("_ka": with the Karras schedule) */
static const struct { const char *alias, *ours; int karras; } ALIASES[] = {
    {"k_euler_a", "euler_a", 0}, {"k_euler_ancestral", "euler_a", 0}, {"k_euler", "euler", 0}, {"k_lms", "lms", 0},
    {"k_heun", "heun", 0}, {"k_dpm_2", "dpm2", 0}, {"k_dpm_2_a", "dpm2_a", 0}, {"k_dpmpp_2s_a", "dpm++2s_a", 0},
    {"k_dpmpp_2m", "dpm++2m", 0}, {"k_dpmpp_2m_sde", "dpm++2m_sde", 0}, {"k_lms_ka", "lms", 1}, {"k_dpm_2_ka", "dpm2", 1},
    {"k_dpm_2_a_ka", "dpm2_a", 1}, {"k_dpmpp_2s_a_ka", "dpm++2s_a", 1}, {"k_dpmpp_2m_ka", "dpm++2m", 1},
    {"k_dpmpp_2m_sde_ka", "dpm++2m_sde", 1},
};
#define NALIASES (sizeof ALIASES / sizeof *ALIASES)

const char *a1111_sampler(const char *name, const char **scheduler) {
    char base[128];
    snprintf(base, sizeof base, "%s", name);
    size_t n = strlen(base);
    int karras = n > 7 && !strcmp(base + n - 7, " Karras"); /* A1111's names before it had a scheduler field */
    if (karras) base[n - 7] = 0;
    for (int i = 0; i < sd_sampler_count(); i++) {
        const char *ours = sd_sampler_name(i, NULL), *a = sd_sampler_a1111(ours);
        if ((a && !strcmp(a, base)) || !strcmp(ours, base)) {
            if (karras) *scheduler = "karras";
            return ours;
        }
    }
    for (size_t i = 0; i < NALIASES && !karras; i++)
        if (!strcmp(ALIASES[i].alias, base)) {
            if (ALIASES[i].karras) *scheduler = "karras";
            return ALIASES[i].ours;
        }
    return NULL;
}

const char *a1111_scheduler(const char *name, int *ok) {
    *ok = 1;
    if (!strcasecmp(name, "automatic")) return NULL;
    for (int i = 0; i < sd_scheduler_count(); i++) {
        const char *ours = sd_scheduler_name(i, NULL), *a = sd_scheduler_a1111(ours);
        if (!strcmp(ours, name) || (a && !strcmp(a, name))) return ours;
    }
    *ok = 0;
    return NULL;
}

void a1111_sampler_list(char *out, size_t cap) {
    out[0] = 0;
    const char *last = "";
    for (int i = 0; i < sd_sampler_count(); i++) {
        const char *a = sd_sampler_a1111(sd_sampler_name(i, NULL));
        if (!a || !strcmp(a, last)) continue;
        snprintf(out + strlen(out), cap - strlen(out), "%s%s", out[0] ? ", " : "", a);
        last = a;
    }
}

void a1111_scheduler_list(char *out, size_t cap) {
    out[0] = 0;
    for (int i = 0; i < sd_scheduler_count(); i++) {
        const char *a = sd_scheduler_a1111(sd_scheduler_name(i, NULL));
        if (a) snprintf(out + strlen(out), cap - strlen(out), "%s%s", out[0] ? ", " : "", a);
    }
}

cJSON *a1111_samplers_json(void) {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < sd_sampler_count(); i++) {
        const char *ours = sd_sampler_name(i, NULL), *a = sd_sampler_a1111(ours);
        if (!a) continue;
        cJSON *item = NULL;
        for (cJSON *it = arr ? arr->child : NULL; it && !item; it = it->next)
            if (!strcmp(cJSON_GetObjectItem(it, "name")->valuestring, a)) item = it;
        if (!item) { /* "PLMS" is both pndm and plms: one entry, both aliases */
            item = cJSON_CreateObject();
            cJSON_AddStringToObject(item, "name", a);
            cJSON_AddArrayToObject(item, "aliases");
            cJSON_AddObjectToObject(item, "options");
            cJSON_AddItemToArray(arr, item);
        }
        cJSON *al = cJSON_GetObjectItem(item, "aliases");
        for (size_t k = 0; k < NALIASES; k++)
            if (!ALIASES[k].karras && !strcmp(ALIASES[k].ours, ours)) cJSON_AddItemToArray(al, cJSON_CreateString(ALIASES[k].alias));
        cJSON_AddItemToArray(al, cJSON_CreateString(ours));
    }
    return arr;
}

cJSON *a1111_schedulers_json(void) {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < sd_scheduler_count(); i++) {
        const char *ours = sd_scheduler_name(i, NULL), *a = sd_scheduler_a1111(ours);
        if (!a) continue;
        cJSON *item = cJSON_CreateObject();
        char name[64];
        snprintf(name, sizeof name, "%s", !strcmp(a, "Automatic") ? "automatic" : ours);
        cJSON_AddStringToObject(item, "name", name);
        cJSON_AddStringToObject(item, "label", a);
        cJSON *al = cJSON_AddArrayToObject(item, "aliases");
        cJSON_AddItemToArray(al, cJSON_CreateString(ours));
        cJSON_AddNumberToObject(item, "default_rho", !strcmp(ours, "karras") ? 7.0 : -1.0);
        cJSON_AddBoolToObject(item, "need_inner_model", 0);
        cJSON_AddItemToArray(arr, item);
    }
    return arr;
}
