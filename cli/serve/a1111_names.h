/* a1111_names.h — AUTOMATIC1111's sampler and scheduler names ("Euler a", "k_euler_a", "DPM++ 2M Karras",
 * "Automatic") to the library's, and the lists /sdapi/v1/samplers and /schedulers answer. */
#ifndef SERVER_A1111_NAMES_H
#define SERVER_A1111_NAMES_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* Our sampler for an A1111 name, alias or our own name; NULL if unknown. An old-style name with " Karras"
 * ("DPM++ 2M Karras") sets *scheduler to "karras" (else leaves it). */
const char *a1111_sampler(const char *name, const char **scheduler);
/* Our scheduler for an A1111 scheduler name or label ("Automatic" -> NULL: the sampler's default); *ok = 0 if
 * unknown. */
const char *a1111_scheduler(const char *name, int *ok);
/* "Euler a, Euler, ..." / "Automatic, Karras, ..." for error messages */
void a1111_sampler_list(char *out, size_t cap);
void a1111_scheduler_list(char *out, size_t cap);

cJSON *a1111_samplers_json(void);
cJSON *a1111_schedulers_json(void);

#endif
