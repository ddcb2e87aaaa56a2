/* names.c — the sampler and scheduler names users pick from (the scheduler's own tables), for sd.h. */
#include "../scheduler/sampler.h"

int sd_sampler_count(void) { return SCHED_SAMPLER_COUNT; }
const char *sd_sampler_name(int i, const char **description) {
    if (i < 0 || i >= SCHED_SAMPLER_COUNT) return NULL;
    if (description) *description = sched_sampler_description((sched_sampler)i);
    return sched_sampler_name((sched_sampler)i);
}
int sd_scheduler_count(void) { return SCHED_SCHEDULE_COUNT; }
const char *sd_scheduler_name(int i, const char **description) {
    if (i < 0 || i >= SCHED_SCHEDULE_COUNT) return NULL;
    if (description) *description = sched_schedule_description((sched_schedule)i);
    return sched_schedule_name((sched_schedule)i);
}
