/* shapes_classify.c — geometric classifier for demo-model pictures (see shapes_classify.h; Python twin in
 * tools/shapes.py classify(), keep the two in step). */
#include "shapes_classify.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct { const char *name; unsigned char r, g, b; } named_colour;

/* Same palette as tools/shapes.py FG_COLOURS / BG_COLOURS. */
static const named_colour fg_colours[] = {
    {"red", 220, 30, 30}, {"orange", 245, 140, 20}, {"yellow", 240, 220, 30}, {"green", 40, 170, 50},
    {"cyan", 40, 210, 230}, {"blue", 30, 60, 220}, {"purple", 150, 40, 200}, {"white", 245, 245, 245},
};
static const named_colour bg_colours[] = {
    {"black", 15, 15, 15}, {"gray", 120, 120, 120}, {"white", 245, 245, 245}, {"blue", 30, 60, 220},
};
#define N_FG ((int)(sizeof fg_colours / sizeof fg_colours[0]))
#define N_BG ((int)(sizeof bg_colours / sizeof bg_colours[0]))

static const char *position_names[3][3] = {
    {"top left", "top", "top right"}, {"left", "centre", "right"}, {"bottom left", "bottom", "bottom right"}};

#define BORDER 3          /* width of the frame the background is read from */
#define FG_DISTANCE 60.0f /* RGB distance from the background beyond which a pixel is foreground */
#define MIN_AREA 30       /* smaller masks are noise, not a shape */
#define OFFSET 28.0f      /* tools/shapes.py OFFSET: off-centre shapes sit this far from the middle (128 px) */
#define LARGE_EXTENT 46.0f /* bounding-box side between small (≤ 43 px when rendered) and large (≥ 50 px) */
#define PROFILE_BINS 64
#define MIN_AMPLITUDE 0.12
#define CROSS_FILL 0.72f  /* four corners filling less of their bounding box than this: a cross (plus sign), not a square */

static float maxf(float a, float b) { return a > b ? a : b; }
static float minf(float a, float b) { return a < b ? a : b; }

static float hue_deg(float r, float g, float b) {
    float mx = maxf(r, maxf(g, b)), mn = minf(r, minf(g, b)), c = mx - mn, h;
    if (c <= 0) return 0;
    if (mx == r) {
        h = fmodf((g - b) / c, 6.0f);
        if (h < 0) h += 6.0f;
    } else if (mx == g) {
        h = (b - r) / c + 2;
    } else {
        h = (r - g) / c + 4;
    }
    return 60.0f * h;
}

/* Nearest named colour in (lightness, chroma, hue) space: hue counts only when both colours are chromatic, and a
 * chromatic/achromatic mismatch costs a fixed penalty, so pale or dark versions of a hue keep its name. */
static const char *nearest(const float rgb[3], const named_colour *tab, int n) {
    float r = rgb[0] / 255.0f, g = rgb[1] / 255.0f, b = rgb[2] / 255.0f;
    float mx = maxf(r, maxf(g, b)), mn = minf(r, minf(g, b));
    float light = (mx + mn) / 2, chroma = mx - mn, hue = hue_deg(r, g, b);
    const char *best = NULL;
    float best_d = 1e30f;
    for (int i = 0; i < n; i++) {
        float pr = tab[i].r / 255.0f, pg = tab[i].g / 255.0f, pb = tab[i].b / 255.0f;
        float pmx = maxf(pr, maxf(pg, pb)), pmn = minf(pr, minf(pg, pb));
        float pl = (pmx + pmn) / 2, pc = pmx - pmn;
        float d = (light - pl) * (light - pl) + (chroma - pc) * (chroma - pc);
        if (pc > 0.2f && chroma > 0.08f) {
            float dh = fabsf(hue - hue_deg(pr, pg, pb));
            dh = minf(dh, 360.0f - dh) / 60.0f;
            d += dh * dh;
        } else if (pc > 0.2f || chroma > 0.2f) {
            d += 1.0f;
        }
        if (d < best_d) best = tab[i].name, best_d = d;
    }
    return best;
}

const char *shapes_colour_name(const float rgb[3], int fg) {
    return fg ? nearest(rgb, fg_colours, N_FG) : nearest(rgb, bg_colours, N_BG);
}

static int copy_word(char *dst, const char *src, size_t n) {
    if (n == 0 || n >= 16) return -1;
    memcpy(dst, src, n);
    dst[n] = 0;
    return 0;
}

int shapes_parse_caption(const char *text, shapes_scene *out) {
    memset(out, 0, sizeof *out);
    if (!text || strncmp(text, "a ", 2) != 0) return -1;
    const char *p = text + 2, *sp;
    char *dst[3] = {out->size, out->colour, out->shape};
    for (int k = 0; k < 3; k++) {
        if (!(sp = strchr(p, ' ')) || copy_word(dst[k], p, (size_t)(sp - p))) return -1;
        p = sp + 1;
    }
    if (strncmp(p, "on a ", 5) != 0) return -1;
    p += 5;
    const char *bg_end = strstr(p, " background, ");
    if (!bg_end || copy_word(out->background, p, (size_t)(bg_end - p))) return -1;
    p = bg_end + strlen(" background, ");
    size_t n = strcspn(p, "\r\n");
    if (copy_word(out->position, p, n)) return -1;
    return 0;
}

/* Per-channel median of the border frame (counting sort: 256 levels). */
static void border_median(const unsigned char *rgb, int w, int h, float out[3]) {
    int hist[3][256];
    memset(hist, 0, sizeof hist);
    int n = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            if (y >= BORDER && y < h - BORDER && x >= BORDER && x < w - BORDER) continue;
            for (int c = 0; c < 3; c++) hist[c][rgb[3 * ((long)y * w + x) + c]]++;
            n++;
        }
    for (int c = 0; c < 3; c++) {
        /* numpy's median of an even count is the mean of the two middle values */
        int lo = (n - 1) / 2, hi = n / 2, acc = 0, vlo = -1, vhi = -1;
        for (int v = 0; v < 256; v++) {
            acc += hist[c][v];
            if (vlo < 0 && acc > lo) vlo = v;
            if (vhi < 0 && acc > hi) vhi = v;
        }
        out[c] = 0.5f * (float)(vlo + vhi);
    }
}

/* Labels 4-connected regions of value `val` in m (w*h bytes) by flood fill from each seed; writes the region
 * id (1-based) to lab and returns the number of regions. stack must hold w*h ints. */
static int label4(const unsigned char *m, unsigned char val, int w, int h, int *lab, int *stack) {
    int n = 0;
    long np = (long)w * h;
    for (long i = 0; i < np; i++) lab[i] = 0;
    for (long s = 0; s < np; s++) {
        if (m[s] != val || lab[s]) continue;
        n++;
        int top = 0;
        stack[top++] = (int)s;
        lab[s] = n;
        while (top) {
            int p = stack[--top], x = p % w, y = p / w;
            int nb[4] = {x > 0 ? p - 1 : -1, x < w - 1 ? p + 1 : -1, y > 0 ? p - w : -1, y < h - 1 ? p + w : -1};
            for (int k = 0; k < 4; k++)
                if (nb[k] >= 0 && m[nb[k]] == val && !lab[nb[k]]) lab[nb[k]] = n, stack[top++] = nb[k];
        }
    }
    return n;
}

static int cmp_float(const void *pa, const void *pb) {
    float a = *(const float *)pa, b = *(const float *)pb;
    return a < b ? -1 : (a > b);
}

/* Keeps only the largest 4-connected region of m (ties: the first in raster order); returns its pixel count. */
static int keep_largest(unsigned char *m, int w, int h, int *lab, int *stack) {
    long np = (long)w * h;
    int nreg = label4(m, 1, w, h, lab, stack);
    if (nreg == 0) return 0;
    int *cnt = calloc((size_t)nreg + 1, sizeof(int));
    if (!cnt) return 0;
    for (long i = 0; i < np; i++) cnt[lab[i]] += lab[i] > 0;
    int best = 1;
    for (int r = 2; r <= nreg; r++)
        if (cnt[r] > cnt[best]) best = r;
    int area = cnt[best];
    free(cnt);
    for (long i = 0; i < np; i++) m[i] = lab[i] == best;
    return area;
}

/* Corners of a solid shape from its radial profile: the farthest boundary distance from the centroid in
 * PROFILE_BINS angular bins, smoothed [1 2 1]/4 and divided by its mean, then the number of rises above the
 * profile's midline with ±20% hysteresis, counted around the circle from its minimum. A flat profile
 * (amplitude under MIN_AMPLITUDE) is a circle: 0 corners. */
static int corner_count(const unsigned char *filled, int w, int h, float cx, float cy, float *amplitude) {
    double prof[PROFILE_BINS] = {0}, sm[PROFILE_BINS];
    const int nb = PROFILE_BINS;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            long p = (long)y * w + x;
            if (!filled[p]) continue;
            int inside = x > 0 && x < w - 1 && y > 0 && y < h - 1 && filled[p - 1] && filled[p + 1] &&
                         filled[p - w] && filled[p + w];
            if (inside) continue;
            double px = x + 0.5 - cx, py = y + 0.5 - cy, r = hypot(px, py) + 0.5;
            int b = (int)floor((atan2(py, px) + M_PI) / (2 * M_PI) * nb) % nb;
            if (r > prof[b]) prof[b] = r;
        }
    for (int i = 0; i < nb; i++) /* an empty bin takes the nearer non-empty neighbour (the larger on a tie) */
        if (prof[i] == 0)
            for (int j = 1; j < nb; j++) {
                double a = prof[(i - j + nb) % nb], c = prof[(i + j) % nb];
                if (a > 0 || c > 0) {
                    prof[i] = a > c ? a : c;
                    break;
                }
            }
    double mean = 0, mx = -1e30, mn = 1e30;
    for (int i = 0; i < nb; i++) sm[i] = (prof[(i - 1 + nb) % nb] + 2 * prof[i] + prof[(i + 1) % nb]) / 4, mean += sm[i];
    mean /= nb;
    int i0 = 0;
    for (int i = 0; i < nb; i++) {
        sm[i] /= mean;
        if (sm[i] > mx) mx = sm[i];
        if (sm[i] < mn) mn = sm[i], i0 = i;
    }
    *amplitude = (float)(mx - mn);
    if (mx - mn < MIN_AMPLITUDE) return 0;
    double mid = (mx + mn) / 2, hy = 0.2 * (mx - mn);
    int above = 0, n = 0;
    for (int k = 0; k < nb; k++) {
        double v = sm[(i0 + k) % nb];
        if (!above && v > mid + hy) n++, above = 1;
        else if (above && v < mid - hy) above = 0;
    }
    return n;
}

int shapes_classify(const unsigned char *rgb, int w, int h, shapes_result *out) {
    memset(out, 0, sizeof *out);
    if (!rgb || w < 16 || h < 16) return -1;
    long np = (long)w * h;
    float bg[3];
    border_median(rgb, w, h, bg);
    out->background = shapes_colour_name(bg, 0);

    unsigned char *mask = malloc((size_t)np), *tmp = malloc((size_t)np);
    int *lab = malloc((size_t)np * sizeof(int)), *stack = malloc((size_t)np * sizeof(int));
    float *dist = malloc((size_t)np * sizeof(float)), *vals = malloc((size_t)np * sizeof(float));
    if (!mask || !tmp || !lab || !stack || !dist || !vals) goto done;

    for (long i = 0; i < np; i++) {
        float d2 = 0;
        for (int c = 0; c < 3; c++) {
            float d = rgb[3 * i + c] - bg[c];
            d2 += d * d;
        }
        dist[i] = sqrtf(d2);
        mask[i] = dist[i] > FG_DISTANCE;
    }
    /* the largest region: specks and stray blobs of a generated picture are not the shape */
    int area = keep_largest(mask, w, h, lab, stack);
    if (area < MIN_AREA) goto done;
    /* the shape's edge is where the picture is halfway between background and shape colour: threshold at half
     * the 90th percentile of the distances inside (numpy's linear-interpolation percentile) */
    int nv = 0;
    for (long i = 0; i < np; i++)
        if (mask[i]) vals[nv++] = dist[i];
    qsort(vals, (size_t)nv, sizeof(float), cmp_float);
    double pos = 0.9 * (nv - 1);
    int lo = (int)floor(pos);
    double full = vals[lo] + (lo + 1 < nv ? (pos - lo) * (vals[lo + 1] - vals[lo]) : 0);
    for (long i = 0; i < np; i++) mask[i] = dist[i] > full / 2;
    area = keep_largest(mask, w, h, lab, stack);
    out->area = area;

    /* colour: majority vote of the interior (eroded twice, 4-neighbourhood, outside counts as empty) */
    memcpy(tmp, mask, (size_t)np);
    unsigned char *scratch = (unsigned char *)stack; /* np bytes fit in np ints */
    for (int it = 0; it < 2; it++) {
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                long p = (long)y * w + x;
                scratch[p] = tmp[p] && x > 0 && x < w - 1 && y > 0 && y < h - 1 && tmp[p - 1] && tmp[p + 1] &&
                             tmp[p - w] && tmp[p + w];
            }
        memcpy(tmp, scratch, (size_t)np);
    }
    int ninner = 0;
    for (long i = 0; i < np; i++) ninner += tmp[i];
    const unsigned char *vote_mask = ninner >= 10 ? tmp : mask;
    int nvote = ninner >= 10 ? ninner : area, stride = nvote / 400 > 1 ? nvote / 400 : 1;
    int votes[N_FG] = {0};
    for (long i = 0, k = 0; i < np; i++) {
        if (!vote_mask[i]) continue;
        if (k++ % stride) continue;
        float px[3] = {rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]};
        const char *name = shapes_colour_name(px, 1);
        for (int c = 0; c < N_FG; c++)
            if (name == fg_colours[c].name) votes[c]++;
    }
    int top = 0;
    for (int c = 1; c < N_FG; c++)
        if (votes[c] > votes[top]) top = c;
    out->colour = fg_colours[top].name;

    /* fill holes: background not 4-connected to the picture's edge */
    int nbg = label4(mask, 0, w, h, lab, stack);
    unsigned char *outside = calloc((size_t)nbg + 1, 1);
    if (!outside) goto done;
    for (int x = 0; x < w; x++) outside[lab[x]] = outside[lab[np - w + x]] = 1;
    for (int y = 0; y < h; y++) outside[lab[(long)y * w]] = outside[lab[(long)y * w + w - 1]] = 1;
    int filled = 0, x0 = w, x1 = -1, y0 = h, y1 = -1;
    double sx = 0, sy = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            long p = (long)y * w + x;
            tmp[p] = mask[p] || !outside[lab[p]];
            if (!tmp[p]) continue;
            filled++, sx += x, sy += y;
            if (x < x0) x0 = x;
            if (x > x1) x1 = x;
            if (y < y0) y0 = y;
            if (y > y1) y1 = y;
        }
    free(outside);
    out->hole = filled - area;
    int bw = x1 - x0 + 1, bh = y1 - y0 + 1;
    float cx = (float)(sx / filled) + 0.5f, cy = (float)(sy / filled) + 0.5f;
    out->corners = corner_count(tmp, w, h, cx, cy, &out->amplitude);
    if (out->hole > 0.08 * filled) out->shape = "ring";
    else if (out->corners >= 5) out->shape = "star";
    else if (out->corners == 4) out->shape = filled < CROSS_FILL * bw * bh ? "cross" : "square";
    else if (out->corners == 3) out->shape = "triangle";
    else out->shape = "circle";

    float dx = cx - w / 2.0f, dy = cy - h / 2.0f, tx = OFFSET / 2 * w / 128.0f, ty = OFFSET / 2 * h / 128.0f;
    int col = dx < -tx ? 0 : (dx > tx ? 2 : 1), row = dy < -ty ? 0 : (dy > ty ? 2 : 1);
    out->position = position_names[row][col];
    out->size = (bw > bh ? bw : bh) > LARGE_EXTENT * w / 128.0f ? "large" : "small";
    out->bbox[0] = x0, out->bbox[1] = y0, out->bbox[2] = bw, out->bbox[3] = bh;
done:
    free(mask), free(tmp), free(lab), free(stack), free(dist), free(vals);
    return 0;
}

int shapes_list_next(FILE *f, char *line, int cap, char **first, char **caption) {
    while (fgets(line, cap, f)) {
        if (line[0] == '#') continue;
        line[strcspn(line, "\r\n")] = 0;
        char *tab = strchr(line, '\t');
        if (!tab) return -1;
        *tab = 0;
        *first = line, *caption = tab + 1;
        return 1;
    }
    return 0;
}
