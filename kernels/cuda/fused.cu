/* fused.cu — the contract's fused GEMM-shaped op (be_gemm) and the plain conv2d / linear ops on the tensor-core GEMM
 * of igemm.cu: GroupNorm statistics first when the prologue needs them (norm.cu), then one igemm launch. Shapes
 * the kernel does not take (f32 storage, channel counts not a multiple of 32, ...) are declined: be_gemm then runs
 * the composed sequence of ops, and conv2d / linear keep their cuBLAS path. */
#include "igemm.h"

/* The kernel's description of a be_gemm; NULL tensors count as absent. */
static void describe(const be_gemm_args *a, ig_args *g) {
    const be_tensor *x = a->x, *y = a->y[0];
    const be_weight *w = a->w[0];
    memset(g, 0, sizeof *g);
    g->xa = x->data;
    g->xb = a->x2 ? a->x2->data : NULL;
    g->ca = x->c;
    g->C = x->c + (a->x2 ? a->x2->c : 0);
    g->up = a->up2x ? 1 : 0;
    g->H = x->h << g->up;
    g->W = x->w << g->up;
    const int conv = w->kind == BE_W_CONV;
    g->kw = conv ? w->kw : 1;
    g->taps = conv ? w->kh * w->kw : 1;
    g->stride = conv ? a->stride : 1;
    g->pad = conv ? a->pad_lo : 0;
    g->Ho = conv ? y->h : g->H;
    g->Wo = conv ? y->w : g->W;
    const long long M = (long long)x->n * g->Ho * g->Wo, K = (long long)g->taps * g->C;
    g->M = M > 0x7fffffff ? 0 : (int)M; /* 0: declined by cuda_igemm_fits */
    g->K = K > 0x7fffffff ? 1 : (int)K;
    g->nw = a->nw;
    for (int j = 0; j < a->nw; j++) {
        g->w[j] = a->w[j]->data;
        g->bias[j] = a->bias[j] ? (const float *)a->bias[j]->data : NULL;
        g->y[j] = a->y[j]->data;
    }
    g->cout = w->out;
    g->geglu = a->act == BE_ACT_GEGLU;
    g->act = g->geglu ? BE_ACT_NONE : a->act;
    if (a->sx) {
        g->sxa = a->sx->data;
        g->sxb = a->sx2 ? a->sx2->data : NULL;
        g->sca = a->sx->c;
        g->sC = a->sx->c + (a->sx2 ? a->sx2->c : 0);
        g->sw = a->sw->data;
        g->sbias = a->sbias ? (const float *)a->sbias->data : NULL;
    }
    g->add = a->add ? a->add->data : NULL;
    g->res = a->residual ? a->residual->data : NULL;
    g->norm = a->norm == BE_NORM_GROUP ? NORM_GROUP : a->norm == BE_NORM_LAYER ? NORM_LAYER : 0;
    g->groups = a->groups;
    g->cpg = a->norm == BE_NORM_GROUP ? g->C / a->groups : 0;
    g->silu = a->norm_silu ? 1 : 0;
    g->gamma = a->gamma ? (const float *)a->gamma->data : NULL;
    g->beta = a->beta ? (const float *)a->beta->data : NULL;
    g->eps = a->eps;
}

/* The link's statistics sets into the kernel's description. */
static void describe_stats(const cuda_gn_link *l, ig_args *g) {
    g->nst = l->nemit;
    for (int e = 0; e < l->nemit; e++) {
        const cuda_gn_emit &m = l->emit[e];
        g->st[e] = ig_stats{m.out, m.partial, m.merge, m.groups, m.coff, m.ctot, 0, 0, m.eps, NULL};
    }
}

/* SD_ERR_UNSUPPORTED when the kernel does not take it (nothing was launched). With a link (graph.cu): the prologue's
 * GroupNorm statistics come from an earlier op (l->in) instead of the statistics kernel, and/or the epilogue leaves
 * statistics of the output for later ops (l->emit). */
static sd_status run(be *b, const be_gemm_args *a, cuda_gn_link *l) {
    ig_args g;
    describe(a, &g);
    if (l) {
        describe_stats(l, &g);
        if (!cuda_igemm_fits(b, &g)) g.nst = 0; /* the op runs without them; the consumers make their own */
    }
    if (!cuda_igemm_fits(b, &g)) return SD_ERR_UNSUPPORTED;
    if (g.norm == NORM_GROUP) {
        if (l && l->in) g.stats = l->in;
        else {
            sd_status st = cuda_igemm_seq_flush(b); /* (the statistics kernel comes after the ops before) */
            if (st == SD_OK) st = cuda_gn_stats(b, g.xa, g.ca, g.xb, g.C - g.ca, a->x->n, a->x->h * a->x->w, a->groups, a->eps, &g.stats);
            if (st != SD_OK) return st;
        }
    }
    const sd_status st = cuda_igemm(b, &g);
    if (l) l->emitted = st == SD_OK && g.nst > 0;
    return st;
}

int cuda_gemm_links_out(be *b, const be_gemm_args *a, const cuda_gn_link *l) {
    ig_args g;
    describe(a, &g);
    cuda_gn_link t = *l;
    for (int e = 0; e < t.nemit; e++) t.emit[e].out = (float2 *)16; /* any aligned address: only the shapes are checked */
    describe_stats(&t, &g);
    return cuda_igemm_fits(b, &g);
}

int cuda_gemm_fused_fits(be *b, const be_gemm_args *a) {
    ig_args g;
    describe(a, &g);
    return cuda_igemm_fits(b, &g);
}

int cuda_gemm_fused(be *b, const be_gemm_args *a, cuda_gn_link *l) {
    sd_status st = run(b, a, l);
    if (st == SD_ERR_UNSUPPORTED) return 0;
    cuda_report(b, st);
    return 1;
}

be_gemm_args cuda_plain_gemm(const be_tensor *x, const be_weight *w, const be_weight *bias, be_act act, int stride, int pad_lo, int pad_hi,
                             be_tensor *y) {
    be_gemm_args a;
    memset(&a, 0, sizeof a);
    a.x = x;
    a.stride = stride;
    a.pad_lo = pad_lo;
    a.pad_hi = pad_hi;
    a.nw = 1;
    a.w[0] = w;
    a.bias[0] = bias;
    a.y[0] = y;
    a.act = act;
    return a;
}

sd_status cuda_conv_igemm(be *b, const be_tensor *x, const be_weight *w, const be_weight *bias, int stride, int pad_lo, be_tensor *y) {
    const be_gemm_args a = cuda_plain_gemm(x, w, bias, BE_ACT_NONE, stride, pad_lo, 0, y);
    return run(b, &a, NULL);
}

sd_status cuda_linear_igemm(be *b, const be_tensor *x, const be_weight *w, const be_weight *bias, be_act act, be_tensor *y) {
    const be_gemm_args a = cuda_plain_gemm(x, w, bias, act, 1, 0, 0, y);
    return run(b, &a, NULL);
}
