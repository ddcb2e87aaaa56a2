/* fuzz_expand.c — the prompt variation syntax of cli/expand.h ("{red|blue} car", nested groups, escapes): parsed
 * into a template with the limit `sd batch` uses (a million expansions), a few expansions made on demand and the
 * first ones streamed; and seed lists ("100:115,7"). */
#include "fuzz.h"

#include "../../cli/expand.h"

static int first_ones(void *user, int k, const char *s) {
    (void)k;
    (void)s;
    return ++*(int *)user >= 64; /* stop early: the stream must honour it */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = fuzz_text(data, size);
    if (!text) return 0;
    char err[256];
    expand_tmpl *t;
    if (expand_parse(text, 1000000, &t, err, sizeof err) == 0) {
        int n = expand_count(t);
        if (n < 1 || n > 1000000) abort();
        int ks[3] = {0, n / 2, n - 1};
        for (int i = 0; i < 3; i++) free(expand_nth(t, ks[i]));
        if (expand_nth(t, n) || expand_nth(t, -1)) abort(); /* out of range: NULL */
        expand_tmpl_free(t);
    }
    int seen = 0;
    (void)expand_each(text, 1000000, first_ones, &seen, err, sizeof err);
    if (seen > 64) abort();
    uint64_t *seeds;
    int n;
    if (expand_seeds(text, 1000, &seeds, &n, err, sizeof err) == 0) free(seeds);
    free(text);
    return 0;
}
