/* backend_gemm.c — be_gemm, the fused GEMM-shaped op of the contract: its shape checks, and the plain sequence of
 * ops it stands for, which a backend without its own fused kernel (the CPU) runs, so its results are those of the
 * unfused layers bit for bit. */
#include "backend.h"

#include "../core/error.h"

#define SHAPE_FMT "[%d,%d,%d,%d]"
#define SHAPE(t) (t)->n, (t)->h, (t)->w, (t)->c

static int live(const be_tensor *t) { return t && t->data; }

static int vec_len(const be_weight *v, int len) { return !v || (v->kind == BE_W_VEC && v->out == len); }

/* The output size the arguments imply; 0 and an error when they do not fit together. */
static int check(be *b, const be_gemm_args *a, int *ho, int *wo, int *oc) {
    const be_tensor *x = a->x;
    if (a->nw < 1 || a->nw > 3 || !a->w[0]) { be_set_error(b, SD_ERR_ARG, "gemm: %d weights", a->nw); return 0; }
    const be_weight *w = a->w[0];
    int C = x->c + (a->x2 ? a->x2->c : 0), H = x->h << (a->up2x ? 1 : 0), W = x->w << (a->up2x ? 1 : 0);
    if (a->x2 && (a->x2->n != x->n || a->x2->h != x->h || a->x2->w != x->w)) {
        be_set_error(b, SD_ERR_ARG, "gemm: concatenated inputs " SHAPE_FMT " and " SHAPE_FMT, SHAPE(x), SHAPE(a->x2));
        return 0;
    }
    for (int j = 0; j < a->nw; j++) {
        const be_weight *v = a->w[j];
        if (!v || (v->kind != BE_W_LINEAR && v->kind != BE_W_CONV) || v->kind != w->kind || v->out != w->out || v->in != C || v->kh != w->kh ||
            v->kw != w->kw || !vec_len(a->bias[j], w->out)) {
            be_set_error(b, SD_ERR_ARG, "gemm: weight %d does not fit input " SHAPE_FMT " (+%d channels)", j, SHAPE(x), C - x->c);
            return 0;
        }
    }
    if (w->kind == BE_W_LINEAR) {
        if (a->stride > 1 || a->pad_lo || a->pad_hi || a->up2x) { be_set_error(b, SD_ERR_ARG, "gemm: a linear weight with stride, padding or upsampling"); return 0; }
        *ho = H;
        *wo = W;
    } else {
        if (a->stride < 1 || a->pad_lo < 0 || a->pad_hi < 0) { be_set_error(b, SD_ERR_ARG, "gemm: stride %d, padding %d/%d", a->stride, a->pad_lo, a->pad_hi); return 0; }
        *ho = (H + a->pad_lo + a->pad_hi - w->kh) / a->stride + 1;
        *wo = (W + a->pad_lo + a->pad_hi - w->kw) / a->stride + 1;
    }
    *oc = a->act == BE_ACT_GEGLU ? w->out / 2 : w->out;
    if ((a->act == BE_ACT_GEGLU && (w->out % 2 || a->nw != 1)) || (a->residual && a->nw != 1)) {
        be_set_error(b, SD_ERR_ARG, "gemm: GEGLU or a residual with %d weights of %d outputs", a->nw, w->out);
        return 0;
    }
    if ((a->norm == BE_NORM_GROUP && (a->groups <= 0 || C % a->groups)) || (a->norm != BE_NORM_NONE && (!vec_len(a->gamma, C) || !vec_len(a->beta, C)))) {
        be_set_error(b, SD_ERR_ARG, "gemm: normalisation of %d channels (%d groups)", C, a->groups);
        return 0;
    }
    for (int j = 0; j < a->nw; j++) {
        const be_tensor *y = a->y[j];
        int rows_ok = w->kind == BE_W_LINEAR ? (size_t)y->n * y->h * y->w == (size_t)x->n * H * W
                                              : y->n == x->n && y->h == *ho && y->w == *wo;
        if (!rows_ok || y->c != *oc || *ho < 1 || *wo < 1) {
            be_set_error(b, SD_ERR_ARG, "gemm: x " SHAPE_FMT " * W[%d,%d,%d,%d] -> y " SHAPE_FMT, SHAPE(x), w->out, w->in, w->kh, w->kw, SHAPE(y));
            return 0;
        }
        if (y->data == x->data || (a->x2 && y->data == a->x2->data)) { be_set_error(b, SD_ERR_ARG, "gemm: output aliases input"); return 0; }
    }
    const be_tensor *y = a->y[0], *r = a->residual, *ad = a->add, *sx = a->sx, *sx2 = a->sx2;
    if (sx) {
        const int cs = sx->c + (sx2 ? sx2->c : 0);
        const be_weight *sw = a->sw;
        if (a->nw != 1 || r || ad || a->act != BE_ACT_NONE || !sw || sw->kind != BE_W_LINEAR || sw->out != w->out || sw->in != cs ||
            !vec_len(a->sbias, w->out) || sx->n != y->n || sx->h != y->h || sx->w != y->w ||
            (sx2 && (sx2->n != sx->n || sx2->h != sx->h || sx2->w != sx->w)) || sx->data == y->data || (sx2 && sx2->data == y->data)) {
            be_set_error(b, SD_ERR_ARG, "gemm: shortcut " SHAPE_FMT " (+%d channels) for y " SHAPE_FMT, SHAPE(sx), sx2 ? sx2->c : 0, SHAPE(y));
            return 0;
        }
    }
    if (r && (r->n != y->n || r->h != y->h || r->w != y->w || r->c != y->c)) {
        be_set_error(b, SD_ERR_ARG, "gemm: residual " SHAPE_FMT " for y " SHAPE_FMT, SHAPE(r), SHAPE(y));
        return 0;
    }
    if (ad && (ad->n != x->n || ad->h != 1 || ad->w != 1 || ad->c != *oc)) {
        be_set_error(b, SD_ERR_ARG, "gemm: per-sample add " SHAPE_FMT " for %d samples of %d channels", SHAPE(ad), x->n, *oc);
        return 0;
    }
    return 1;
}

/* The sequence be_gemm stands for. Intermediate tensors come from the arena and are released at the end. */
static void composed(be *b, const be_gemm_args *a, int oc) {
    size_t mark = be_mark(b);
    if (a->sx) { /* the shortcut first, as its own be_gemm: then the residual */
        be_tensor s = be_new(b, a->sx->n, a->sx->h, a->sx->w, a->sw->out);
        be_gemm_args sc = {.x = a->sx, .x2 = a->sx2, .stride = 1, .nw = 1, .w = {a->sw}, .bias = {a->sbias}, .y = {&s}};
        be_gemm(b, &sc);
        be_gemm_args rest = *a;
        rest.sx = rest.sx2 = NULL;
        rest.sw = rest.sbias = NULL;
        rest.residual = &s;
        be_gemm(b, &rest);
        be_release(b, mark);
        return;
    }
    const be_tensor *x = a->x;
    be_tensor in = *x;
    int C = in.c + (a->x2 ? a->x2->c : 0);
    if (a->x2) {
        be_tensor t = be_new(b, x->n, x->h, x->w, C);
        be_concat_channels(b, x, a->x2, &t);
        in = t;
    }
    if (a->up2x) {
        be_tensor t = be_new(b, in.n, 2 * in.h, 2 * in.w, C);
        be_upsample_nearest(b, &in, &t);
        in = t;
    }
    if (a->norm != BE_NORM_NONE) {
        be_tensor t = be_new(b, in.n, in.h, in.w, C);
        if (a->norm == BE_NORM_GROUP) {
            be_group_norm(b, &in, a->gamma, a->beta, a->groups, a->eps, a->norm_silu, &t);
        } else {
            be_layer_norm(b, &in, a->gamma, a->beta, a->eps, &t);
            if (a->norm_silu) be_act_fn(b, BE_ACT_SILU, &t, &t);
        }
        in = t;
    }
    const be_weight *w0 = a->w[0];
    for (int j = 0; j < a->nw; j++) {
        be_tensor *y = a->y[j];
        /* the product goes straight to y unless it must be kept apart: GEGLU halves it, and a residual living in y
         * must survive until it is added */
        int apart = a->act == BE_ACT_GEGLU || (a->residual && a->residual->data == y->data);
        be_tensor p = apart ? be_new(b, y->n, y->h, y->w, w0->out) : *y;
        be_act inner = a->add || a->act == BE_ACT_GEGLU ? BE_ACT_NONE : a->act;
        if (w0->kind == BE_W_LINEAR) be_linear(b, &in, a->w[j], a->bias[j], inner, &p);
        else be_conv2d(b, &in, a->w[j], a->bias[j], a->stride, a->pad_lo, a->pad_hi, &p);
        if (a->add) {
            be_add(b, &p, a->add, 1.0f, &p);
            if (a->act != BE_ACT_NONE && a->act != BE_ACT_GEGLU) be_act_fn(b, a->act, &p, &p);
        }
        if (a->act == BE_ACT_GEGLU) {
            if (a->residual && a->residual->data == y->data) {
                be_tensor g = be_new(b, y->n, y->h, y->w, oc);
                be_geglu(b, &p, &g);
                p = g;
            } else {
                be_geglu(b, &p, y);
                p = *y;
            }
        }
        if (a->residual) {
            if (apart) be_add(b, a->residual, &p, 1.0f, y);
            else be_add(b, y, a->residual, 1.0f, y);
        }
    }
    be_release(b, mark);
}

void be_gemm(be *b, const be_gemm_args *a) {
    int ho = 0, wo = 0, oc = 0;
    if (!be_ok(b)) return;
    if (!a || !a->x || (!b->measuring && !live(a->x))) {
        be_set_error(b, SD_ERR_ARG, "gemm: unallocated input");
        return;
    }
    if (!check(b, a, &ho, &wo, &oc)) return;
    if (b->measuring) { /* the arena peak of the composed form bounds the fused one's */
        composed(b, a, oc);
        return;
    }
    for (int j = 0; j < a->nw; j++)
        if (!live(a->y[j]) || (a->x2 && !live(a->x2)) || (a->add && !live(a->add)) || (a->residual && !live(a->residual)) ||
            (a->sx && (!live(a->sx) || (a->sx2 && !live(a->sx2))))) {
            be_set_error(b, SD_ERR_ARG, "gemm: unallocated tensor");
            return;
        }
    if (b->ops->gemm && b->ops->gemm(b, a)) {
        const be_weight *w = a->w[0];
        b->flops += 2.0 * a->nw * a->x->n * ho * wo * w->out * (w->in * w->kh * w->kw + (a->sx ? a->sw->in : 0));
        return;
    }
    composed(b, a, oc);
}
