/* sheet.c — the contact sheet of a batch: its images in a grid, each captioned with index, seed and prompt. */
#include "sheet.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../sd.h"
#include "clikit.h"
#include "grid.h"
#include "manifest.h"
#include "outfiles.h"

#define SHEET_MAX 400

int sheet_flag(int argc, char **argv, int *i, sheet_opts *s) {
    const char *v;
    if ((v = clikit_value(argc, argv, i, NULL, "--contact-sheet"))) s->path = v;
    else if ((v = clikit_value(argc, argv, i, NULL, "--sheet-cols"))) {
        if (clikit_int(v, 1, 1000, &s->cols, "--sheet-cols") != 0) return -1;
    } else if ((v = clikit_value(argc, argv, i, NULL, "--sheet-size"))) {
        if (clikit_int(v, 16, 2048, &s->size, "--sheet-size") != 0) return -1;
    } else {
        return clikit_failed() ? -1 : 0;
    }
    return 1;
}

/* 1 when `a` is `b` or a folder above it. */
static int same_or_above(const char *a, const char *b) {
    size_t l = strlen(a);
    return !strncmp(a, b, l) && (b[l] == 0 || b[l] == '/');
}

int sheet_check_clash(const char *path, const char *what, const char *dir, const plan *pl, int manifests) {
    char p[8192], d[8192];
    if (outfiles_resolve(path, p, sizeof p) != 0 || outfiles_resolve(dir, d, sizeof d) != 0) return 0; /* a path this long fails later */
    size_t dl = strcmp(d, "/") ? strlen(d) : 0;
    if (strncmp(p, d, dl) || p[dl] != '/') return 0; /* not inside the output folder */
    const char *rel = p + dl + 1;
    if (manifests && !strchr(rel, '/') && (manifest_is_name(rel) || !strcmp(rel, "merged.jsonl"))) {
        fprintf(stderr, "error: %s %s: is a manifest of the batch in %s; not replaced even with --overwrite: choose another name\n",
                what, path, dir);
        return -1;
    }
    for (int i = 0; i < pl->count; i++) {
        const char *f = pl->images[i].file;
        if (same_or_above(f, rel) || same_or_above(rel, f)) {
            if (!strcmp(f, rel))
                fprintf(stderr, "error: %s %s: is where image %d of this batch goes (%s/%s); not replaced even with "
                        "--overwrite: choose another name\n", what, path, pl->images[i].index, dir, f);
            else
                fprintf(stderr, "error: %s %s: is in the way of image %d of this batch (%s/%s): choose another name\n",
                        what, path, pl->images[i].index, dir, f);
            return -1;
        }
    }
    return 0;
}

int sheet_write(const sheet_opts *s, const char *dir, const plan *pl, int lo, int hi, int overwrite) {
    const char *path = s->path;
    int cols = s->cols, size = s->size;
    int n = hi - lo > SHEET_MAX ? SHEET_MAX : hi - lo;
    if (n <= 0) return 0;
    if (hi - lo > SHEET_MAX) fprintf(stderr, "note: the contact sheet shows the first %d images\n", SHEET_MAX);
    sd_image *imgs = calloc((size_t)n, sizeof *imgs);
    const sd_image **cells = calloc((size_t)n, sizeof *cells);
    char **caps = calloc((size_t)n, sizeof *caps);
    int rc = -1, fixed_size = size;
    if (!imgs || !cells || !caps) goto done;
    if (cols <= 0) cols = (int)ceil(sqrt((double)n));
    if (cols > n) cols = n;
    for (int i = 0; i < n; i++) {
        const plan_image *im = &pl->images[lo + i];
        char file[8192], cap[600];
        snprintf(file, sizeof file, "%s/%s", dir, im->file);
        if (sd_image_load(file, 3, &imgs[i]) == SD_OK) {
            cells[i] = &imgs[i];
            /* default thumbnail: the images' own size, at most 256 */
            int side = imgs[i].w > imgs[i].h ? imgs[i].w : imgs[i].h;
            if (!fixed_size && side > size) size = side < 256 ? side : 256;
        }
        char *prompt = plan_prompt(pl, im);
        snprintf(cap, sizeof cap, "#%d seed %" PRIu64 "\n%s", im->index, im->seed, prompt ? prompt : "");
        caps[i] = prompt ? strdup(cap) : NULL;
        free(prompt);
        if (!caps[i]) { fprintf(stderr, "error: out of memory\n"); goto done; }
    }
    /* the grid wants rows*cols entries; the last row's spare cells stay blank */
    int rows = (n + cols - 1) / cols, total = rows * cols;
    const sd_image **padded = calloc((size_t)total, sizeof *padded);
    const char **pcaps = calloc((size_t)total, sizeof *pcaps);
    if (!padded || !pcaps) { free(padded); free(pcaps); goto done; }
    for (int i = 0; i < n; i++) { padded[i] = cells[i]; pcaps[i] = caps[i]; }
    if (size < 16) size = 128;
    grid_spec g = {rows, cols, padded, size, size, NULL, NULL, NULL, pcaps, size >= 192 ? 2 : 1};
    sd_image out;
    if (grid_render(&g, &out, NULL) == 0) {
        char *sheet[1] = {(char *)path};
        outfiles_clean_temps("", sheet, 1);
        if (clikit_mkdirs_for(path) == 0 && sd_save_png(path, &out, NULL, NULL, overwrite) == SD_OK) rc = 0;
        else fprintf(stderr, "error: %s\n", sd_last_error());
        free(out.data);
    } else {
        fprintf(stderr, "error: %s: the contact sheet would be too large\n", path);
    }
    free(padded);
    free(pcaps);
done:
    for (int i = 0; imgs && i < n; i++) sd_image_free(&imgs[i]);
    for (int i = 0; caps && i < n; i++) free(caps[i]);
    free(imgs);
    free(cells);
    free(caps);
    return rc;
}
