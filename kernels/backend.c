/* backend.c — backend-independent parts of the contract: shape checks, sticky errors, arena, measure mode. */
#include "backend.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../core/error.h"

void be_free(be *b) {
    if (b && b->ops->free) b->ops->free(b);
}

sd_status be_status(const be *b) {
    if (b->err != SD_OK) err_fail(b->err, "%s", b->err_msg);
    return b->err;
}

void be_set_error(be *b, sd_status st, const char *fmt, ...) {
    if (b->err != SD_OK) return; /* keep the first failure: later ones are usually its consequences */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->err_msg, sizeof b->err_msg, fmt, ap);
    va_end(ap);
    b->err = st;
}

void be_clear_error(be *b) {
    b->err = SD_OK;
    b->err_msg[0] = 0;
}

sd_status be_arena_reserve(be *b, size_t bytes) {
    if (b->measuring) return err_fail(SD_ERR_ARG, "be_arena_reserve inside measure mode");
    if (bytes <= b->arena.size) return SD_OK;
    return b->ops->arena_reserve(b, bytes);
}

void be_arena_trim(be *b) {
    if (!b->measuring && b->ops->arena_trim) b->ops->arena_trim(b);
}

be_tensor be_new(be *b, int n, int h, int w, int c) {
    be_tensor t = {NULL, n, h, w, c};
    if (n <= 0 || h <= 0 || w <= 0 || c <= 0) {
        be_set_error(b, SD_ERR_ARG, "tensor of shape [%d, %d, %d, %d] requested", n, h, w, c);
        return t;
    }
    size_t bytes = be_numel(&t) * b->elem_size;
    uintptr_t p = arena_alloc(&b->arena, bytes);
    if (!p) {
        be_set_error(b, SD_ERR_MEMORY, "activation memory exhausted: %.1f MiB arena, %.1f MiB in use, %.1f MiB more requested",
                     b->arena.size / 1048576.0, b->arena.used / 1048576.0, bytes / 1048576.0);
        return t;
    }
    t.data = (void *)p;
    return t;
}

void be_measure_begin(be *b) {
    b->measure_saved = b->arena;
    arena_init(&b->arena, (uintptr_t)1 << 20, (size_t)1 << 46); /* fake addresses, never dereferenced */
    b->measuring = 1;
}

size_t be_measure_end(be *b) {
    size_t peak = b->arena.peak;
    b->arena = b->measure_saved;
    b->measuring = 0;
    return peak;
}

static sd_status weight_shape(be_weight *w, be_wkind kind, int out, int in, int kh, int kw) {
    memset(w, 0, sizeof *w);
    w->kind = kind;
    w->out = out;
    w->in = kind == BE_W_VEC ? 1 : in;
    w->kh = kind == BE_W_CONV ? kh : 1;
    w->kw = kind == BE_W_CONV ? kw : 1;
    if (out <= 0 || w->in <= 0 || w->kh <= 0 || w->kw <= 0) return err_fail(SD_ERR_ARG, "weight of shape [%d, %d, %d, %d]", out, in, kh, kw);
    return SD_OK;
}

sd_status be_weight_upload(be *b, be_weight *w, be_wkind kind, int out, int in, int kh, int kw, be_dtype src_type, const void *src) {
    sd_status st = weight_shape(w, kind, out, in, kh, kw);
    return st != SD_OK ? st : b->ops->weight_upload(b, w, src_type, src);
}

sd_status be_weight_upload_borrowed(be *b, be_weight *w, be_wkind kind, int out, int in, int kh, int kw, be_dtype src_type, const void *src,
                                    void (*release)(void *), void *keep, int *borrowed) {
    *borrowed = 0;
    sd_status st = weight_shape(w, kind, out, in, kh, kw);
    if (st != SD_OK) return st;
    if (b->weight_borrow && b->weight_borrow(b, w, src_type, src, release, keep) == SD_OK) {
        *borrowed = 1;
        return SD_OK;
    }
    return b->ops->weight_upload(b, w, src_type, src);
}

void be_weight_free(be *b, be_weight *w) {
    if (w->data) b->ops->weight_free(b, w);
    w->data = NULL;
}

sd_status be_buffer_new(be *b, be_tensor *t, int n, int h, int w, int c) {
    *t = (be_tensor){NULL, n, h, w, c};
    if (n <= 0 || h <= 0 || w <= 0 || c <= 0) return err_fail(SD_ERR_ARG, "buffer of shape [%d, %d, %d, %d]", n, h, w, c);
    if (b->measuring) return SD_OK;
    return b->ops->buffer_alloc(b, be_numel(t) * b->elem_size, &t->data);
}

void be_buffer_free(be *b, be_tensor *t) {
    if (t->data) b->ops->buffer_free(b, t->data);
    t->data = NULL;
}

static int live(be *b, const be_tensor *t) { return !b->measuring && be_ok(b) && t->data; }

void be_upload(be *b, be_tensor *dst, const float *src) {
    if (live(b, dst)) b->ops->upload(b, dst, src);
}
void be_download(be *b, const be_tensor *src, float *dst) {
    if (live(b, src)) b->ops->download(b, src, dst);
}
sd_status be_sync(be *b) {
    if (!b->measuring && be_ok(b) && b->ops->sync) {
        sd_status st = b->ops->sync(b);
        if (st != SD_OK) be_set_error(b, st, "%s", sd_last_error());
    }
    return be_status(b);
}

/* ---- shape checks ---- */

#define SHAPE_FMT "[%d,%d,%d,%d]"
#define SHAPE(t) (t)->n, (t)->h, (t)->w, (t)->c

/* Common prologue: skip work in measure mode or after an error, fail on unallocated tensors. */
static int ready(be *b, const char *op, const be_tensor *y, const be_tensor *x) {
    if (b->measuring || !be_ok(b)) return 0;
    if (!y->data || (x && !x->data)) {
        be_set_error(b, SD_ERR_ARG, "%s: unallocated tensor", op);
        return 0;
    }
    return 1;
}
static int same_shape(const be_tensor *a, const be_tensor *x) {
    return a->n == x->n && a->h == x->h && a->w == x->w && a->c == x->c;
}
static int vec_ok(be *b, const char *op, const be_weight *v, int len) {
    if (!v) return 1;
    if (v->kind != BE_W_VEC || v->out != len) {
        be_set_error(b, SD_ERR_ARG, "%s: parameter vector of length %d, expected %d", op, v->out, len);
        return 0;
    }
    return 1;
}

void be_linear(be *b, const be_tensor *x, const be_weight *w, const be_weight *bias, be_act act, be_tensor *y) {
    b->flops += 2.0 * x->n * x->h * x->w * w->in * w->out;
    if (!ready(b, "linear", y, x)) return;
    if (w->kind != BE_W_LINEAR || x->c != w->in || y->c != w->out || (size_t)x->n * x->h * x->w != (size_t)y->n * y->h * y->w) {
        be_set_error(b, SD_ERR_ARG, "linear: x " SHAPE_FMT " · W[%d,%d] -> y " SHAPE_FMT, SHAPE(x), w->out, w->in, SHAPE(y));
        return;
    }
    if (!vec_ok(b, "linear bias", bias, w->out)) return;
    if (x->data == y->data) { be_set_error(b, SD_ERR_ARG, "linear: output aliases input"); return; }
    b->ops->linear(b, x, w, bias, act, y);
}

void be_conv2d(be *b, const be_tensor *x, const be_weight *w, const be_weight *bias, int stride, int pad_lo, int pad_hi, be_tensor *y) {
    b->flops += 2.0 * y->n * y->h * y->w * w->out * w->in * w->kh * w->kw;
    if (!ready(b, "conv2d", y, x)) return;
    int ho = stride > 0 ? (x->h + pad_lo + pad_hi - w->kh) / stride + 1 : -1;
    int wo = stride > 0 ? (x->w + pad_lo + pad_hi - w->kw) / stride + 1 : -1;
    if (w->kind != BE_W_CONV || x->c != w->in || y->c != w->out || y->n != x->n || y->h != ho || y->w != wo || pad_lo < 0 || pad_hi < 0) {
        be_set_error(b, SD_ERR_ARG, "conv2d: x " SHAPE_FMT " * W[%d,%d,%d,%d] stride %d pad %d/%d -> y " SHAPE_FMT,
                     SHAPE(x), w->out, w->in, w->kh, w->kw, stride, pad_lo, pad_hi, SHAPE(y));
        return;
    }
    if (!vec_ok(b, "conv2d bias", bias, w->out)) return;
    if (x->data == y->data) { be_set_error(b, SD_ERR_ARG, "conv2d: output aliases input"); return; }
    b->ops->conv2d(b, x, w, bias, stride, pad_lo, pad_hi, y);
}

void be_group_norm(be *b, const be_tensor *x, const be_weight *gamma, const be_weight *beta, int groups, float eps, int silu, be_tensor *y) {
    if (!ready(b, "group_norm", y, x)) return;
    if (!same_shape(x, y) || groups <= 0 || x->c % groups) {
        be_set_error(b, SD_ERR_ARG, "group_norm: x " SHAPE_FMT " groups %d -> y " SHAPE_FMT, SHAPE(x), groups, SHAPE(y));
        return;
    }
    if (!vec_ok(b, "group_norm gamma", gamma, x->c) || !vec_ok(b, "group_norm beta", beta, x->c)) return;
    b->ops->group_norm(b, x, gamma, beta, groups, eps, silu, y);
}

void be_layer_norm(be *b, const be_tensor *x, const be_weight *gamma, const be_weight *beta, float eps, be_tensor *y) {
    if (!ready(b, "layer_norm", y, x)) return;
    if (!same_shape(x, y)) {
        be_set_error(b, SD_ERR_ARG, "layer_norm: x " SHAPE_FMT " -> y " SHAPE_FMT, SHAPE(x), SHAPE(y));
        return;
    }
    if (!vec_ok(b, "layer_norm gamma", gamma, x->c) || !vec_ok(b, "layer_norm beta", beta, x->c)) return;
    b->ops->layer_norm(b, x, gamma, beta, eps, y);
}

void be_act_fn(be *b, be_act act, const be_tensor *x, be_tensor *y) {
    if (!ready(b, "act", y, x)) return;
    if (!same_shape(x, y)) {
        be_set_error(b, SD_ERR_ARG, "act: x " SHAPE_FMT " -> y " SHAPE_FMT, SHAPE(x), SHAPE(y));
        return;
    }
    b->ops->act(b, act, x, y);
}

void be_geglu(be *b, const be_tensor *x, be_tensor *y) {
    if (!ready(b, "geglu", y, x)) return;
    if (x->n != y->n || x->h != y->h || x->w != y->w || x->c != 2 * y->c) {
        be_set_error(b, SD_ERR_ARG, "geglu: x " SHAPE_FMT " -> y " SHAPE_FMT, SHAPE(x), SHAPE(y));
        return;
    }
    b->ops->geglu(b, x, y);
}

void be_add(be *b, const be_tensor *a, const be_tensor *x, float alpha, be_tensor *y) {
    if (!ready(b, "add", y, a) || !ready(b, "add", y, x)) return;
    if (!same_shape(a, y) || x->c != a->c || (x->n != 1 && x->n != a->n) || (x->h != 1 && x->h != a->h) || (x->w != 1 && x->w != a->w)) {
        be_set_error(b, SD_ERR_ARG, "add: a " SHAPE_FMT " + x " SHAPE_FMT " -> y " SHAPE_FMT, SHAPE(a), SHAPE(x), SHAPE(y));
        return;
    }
    b->ops->add(b, a, x, alpha, y);
}

void be_attention(be *b, const be_tensor *q, const be_tensor *k, const be_tensor *v, int heads, int causal, be_tensor *y) {
    b->flops += 2.0 * q->n * q->h * q->w * k->h * k->w * (q->c + v->c); /* QKᵀ and PV */
    if (!ready(b, "attention", y, q) || !ready(b, "attention", y, k) || !ready(b, "attention", y, v)) return;
    if (heads <= 0 || q->c != k->c || q->c % heads || v->c % heads || q->n != k->n || q->n != v->n ||
        (size_t)k->h * k->w != (size_t)v->h * v->w || y->n != q->n || (size_t)y->h * y->w != (size_t)q->h * q->w || y->c != v->c) {
        be_set_error(b, SD_ERR_ARG, "attention: q " SHAPE_FMT " k " SHAPE_FMT " v " SHAPE_FMT " heads %d -> y " SHAPE_FMT,
                     SHAPE(q), SHAPE(k), SHAPE(v), heads, SHAPE(y));
        return;
    }
    b->ops->attention(b, q, k, v, heads, causal, y);
}

void be_upsample_nearest(be *b, const be_tensor *x, be_tensor *y) {
    if (!ready(b, "upsample_nearest", y, x)) return;
    if (x->n != y->n || x->c != y->c || y->h < x->h || y->w < x->w) {
        be_set_error(b, SD_ERR_ARG, "upsample_nearest: x " SHAPE_FMT " -> y " SHAPE_FMT, SHAPE(x), SHAPE(y));
        return;
    }
    b->ops->upsample_nearest(b, x, y);
}

void be_concat_channels(be *b, const be_tensor *a, const be_tensor *x, be_tensor *y) {
    if (!ready(b, "concat_channels", y, a) || !ready(b, "concat_channels", y, x)) return;
    if (a->n != x->n || a->h != x->h || a->w != x->w || y->n != a->n || y->h != a->h || y->w != a->w || y->c != a->c + x->c) {
        be_set_error(b, SD_ERR_ARG, "concat_channels: a " SHAPE_FMT " x " SHAPE_FMT " -> y " SHAPE_FMT, SHAPE(a), SHAPE(x), SHAPE(y));
        return;
    }
    b->ops->concat_channels(b, a, x, y);
}

void be_embedding(be *b, const int32_t *ids, const be_weight *table, be_tensor *y) {
    if (!ready(b, "embedding", y, NULL)) return;
    if (table->kind != BE_W_EMBED || y->c != table->in) {
        be_set_error(b, SD_ERR_ARG, "embedding: table [%d,%d] -> y " SHAPE_FMT, table->out, table->in, SHAPE(y));
        return;
    }
    size_t n = (size_t)y->n * y->h * y->w;
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= table->out) {
            be_set_error(b, SD_ERR_ARG, "embedding: id %d out of range [0, %d)", ids[i], table->out);
            return;
        }
    b->ops->embedding(b, ids, table, y);
}

void be_timestep_embedding(be *b, const float *t, int flip_sin_to_cos, float freq_shift, be_tensor *y) {
    if (!ready(b, "timestep_embedding", y, NULL)) return;
    if (y->h != 1 || y->w != 1 || y->c < 2) {
        be_set_error(b, SD_ERR_ARG, "timestep_embedding: y " SHAPE_FMT, SHAPE(y));
        return;
    }
    b->ops->timestep_embedding(b, t, flip_sin_to_cos, freq_shift, y);
}
