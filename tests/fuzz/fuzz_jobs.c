/* fuzz_jobs.c — `sd batch` job files (cli/jobs.c): JSON Lines or one prompt per line, every key checked, seeds
 * and seed ranges parsed. */
#include "fuzz.h"

#include "../../cli/jobs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    jobs_rules rules = {NULL, 0, NULL, 0, 42};
    jobs_list list;
    jobs_errors errs;
    memset(&list, 0, sizeof list);
    memset(&errs, 0, sizeof errs);
    (void)jobs_parse((const char *)data, size, "fuzz.jsonl", JOBS_AUTO, NULL, &rules, &list, &errs);
    jobs_list_free(&list);
    jobs_errors_free(&errs);
    return 0;
}
