/* conditioning.c — prompt -> text context: A1111 weighting syntax, 75-token windows, the family's encoder
 * layer choice, emphasis with the mean restored, and SDXL's concatenated context + pooled vector. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "embeddings.h"
#include "pipeline.h"

#define WINDOW 77

static const clip_tokenizer *tok1(const sd_ctx *c) { return c->tok ? c->tok : clip_tokenizer_default(); }
static const clip_tokenizer *tok2(const sd_ctx *c) { return c->tok2 ? c->tok2 : clip_tokenizer_default(); }
static int is_sdxl(const sd_ctx *c) { return c->files.family == MODEL_FAMILY_SDXL; }

static sd_status chunks_for(const sd_ctx *c, const char *prompt, int second, clip_chunks *out) {
    clip_prompt_opts o = CLIP_PROMPT_OPTS_DEFAULT;
    o.pad_zero = second ? 1 : c->pad_zero; /* OpenCLIP tokenizers (SD 2.x, SDXL's second) pad with 0 */
    o.emb = emb_list((sd_ctx *)c, second, &o.n_emb); /* textual inversion: names -> vectors */
    return clip_prompt_chunks(second ? tok2(c) : tok1(c), prompt, &o, out);
}

int text_cond_windows(sd_ctx *c, const char *prompt) {
    clip_chunks ch;
    if (chunks_for(c, prompt, 0, &ch) != SD_OK) return -1;
    int n = ch.n;
    clip_chunks_free(&ch);
    return n;
}

/* ids [n * 77] of the chunks, followed by empty-prompt windows up to n (BOS, EOS, then padding). */
static int32_t *window_ids(const clip_tokenizer *tok, const clip_chunks *ch, int n, int pad_zero) {
    int32_t bos = clip_token_id(tok, "<|startoftext|>"), eos = clip_token_id(tok, "<|endoftext|>");
    int32_t *ids = malloc((size_t)n * WINDOW * sizeof *ids);
    if (!ids) return NULL;
    memcpy(ids, ch->ids, (size_t)ch->n * WINDOW * sizeof *ids);
    for (int k = ch->n; k < n; k++) {
        int32_t *w = ids + (size_t)k * WINDOW;
        w[0] = bos;
        w[1] = eos;
        for (int i = 2; i < WINDOW; i++) w[i] = pad_zero ? 0 : eos;
    }
    return ids;
}

static int any_weight(const clip_chunks *ch) {
    for (int i = 0; i < ch->n * WINDOW; i++)
        if (ch->weights[i] != 1.0f) return 1;
    return 0;
}

/* A1111 "Original" emphasis on columns [c0, c0 + cw) of each window of a [n*77, C] host context. */
static sd_status emphasis(float *h, int n, int C, int c0, int cw, const clip_chunks *ch) {
    float *tmp = malloc((size_t)WINDOW * cw * sizeof *tmp);
    if (!tmp) return err_fail(SD_ERR_MEMORY, "out of memory for prompt emphasis");
    for (int k = 0; k < ch->n && k < n; k++) {
        float *win = h + (size_t)k * WINDOW * C;
        for (int t = 0; t < WINDOW; t++) memcpy(tmp + (size_t)t * cw, win + (size_t)t * C + c0, cw * sizeof *tmp);
        clip_apply_emphasis(tmp, WINDOW, cw, ch->weights + (size_t)k * WINDOW, 1);
        for (int t = 0; t < WINDOW; t++) memcpy(win + (size_t)t * C + c0, tmp + (size_t)t * cw, cw * sizeof *tmp);
    }
    free(tmp);
    return SD_OK;
}

void text_cond_free(text_cond *c) {
    free(c->ctx);
    free(c->pooled);
    memset(c, 0, sizeof *c);
}

/* Runs the encoder(s) for n windows; in measure mode only sizes the arena. Host outputs when not measuring. */
static void run_encoders(sd_ctx *c, const int32_t *ids1, const int32_t *ids2, int n, int clip_skip, float *ctx_out, float *pooled_out,
                         int ctx_dim, int pooled_dim) {
    be *b = c->b;
    size_t mark = be_mark(b);
    be_tensor hid = be_new(b, n, 1, WINDOW, ctx_dim);
    if (is_sdxl(c)) {
        be_tensor pooled = be_new(b, n, 1, 1, pooled_dim);
        clip_sdxl_forward(b, &c->te, &c->te2, ids1, ids2, n, WINDOW, clip_skip > 1 ? clip_skip - 1 : 0, &hid, &pooled);
        if (pooled_out) be_download(b, &pooled, pooled_out);
    } else {
        /* last_hidden_state (final LN), or A1111's "stop at last layers" n: hidden_states[-n] through the final LN */
        int layer = clip_skip > 1 ? -clip_skip : -1;
        clip_forward(b, &c->te, ids1, n, WINDOW, layer, 1, &hid, NULL);
    }
    if (ctx_out) be_download(b, &hid, ctx_out);
    be_release(b, mark);
}

sd_status text_cond_encode(sd_ctx *c, const char *prompt, int clip_skip, int min_chunks, text_cond *out) {
    memset(out, 0, sizeof *out);
    clip_chunks ch1 = {0}, ch2 = {0};
    sd_status st = chunks_for(c, prompt, 0, &ch1);
    if (st == SD_OK && is_sdxl(c)) st = chunks_for(c, prompt, 1, &ch2);
    if (st == SD_OK) st = emb_load_used(c); /* the vectors of the embeddings this prompt names */
    if (st != SD_OK) { clip_chunks_free(&ch1); clip_chunks_free(&ch2); return st; }
    if (is_sdxl(c) && ch2.n != ch1.n) {
        clip_chunks_free(&ch1); clip_chunks_free(&ch2);
        return err_fail(SD_ERR_ARG, "prompt splits into %d windows for one SDXL tokenizer and %d for the other", ch1.n, ch2.n);
    }
    int n = ch1.n > min_chunks ? ch1.n : min_chunks;
    int32_t *ids1 = window_ids(tok1(c), &ch1, n, c->pad_zero), *ids2 = is_sdxl(c) ? window_ids(tok2(c), &ch2, n, 1) : NULL;
    int w1 = c->te.cfg.width, ctx_dim = w1 + (is_sdxl(c) ? c->te2.cfg.width : 0);
    int pooled_dim = is_sdxl(c) ? (c->te2.cfg.proj_dim ? c->te2.cfg.proj_dim : c->te2.cfg.width) : 0;
    be *b = c->b;
    out->ctx = malloc((size_t)n * WINDOW * ctx_dim * sizeof(float));
    float *pooled_all = pooled_dim ? malloc((size_t)n * pooled_dim * sizeof(float)) : NULL;
    if (!ids1 || (is_sdxl(c) && !ids2) || !out->ctx || (pooled_dim && !pooled_all))
        st = err_fail(SD_ERR_MEMORY, "out of memory for the text context of %d windows", n);
    if (st == SD_OK) { /* size the activation arena for this many windows, then run for real */
        be_measure_begin(b);
        run_encoders(c, ids1, ids2, n, clip_skip, NULL, NULL, ctx_dim, pooled_dim);
        size_t need = be_measure_end(b);
        if (b->arena.used == 0 && need > b->arena.size) st = be_arena_reserve(b, need);
    }
    if (st == SD_OK) {
        run_encoders(c, ids1, ids2, n, clip_skip, out->ctx, pooled_all, ctx_dim, pooled_dim);
        st = be_status(b);
    }
    if (st == SD_OK) {
        /* A1111 emphasis, per window and per encoder (each encoder's output keeps its own mean) */
        if (any_weight(&ch1)) st = emphasis(out->ctx, n, ctx_dim, 0, w1, &ch1);
        if (st == SD_OK && is_sdxl(c) && any_weight(&ch2)) st = emphasis(out->ctx, n, ctx_dim, w1, ctx_dim - w1, &ch2);
    }
    if (st == SD_OK) {
        out->tokens = n * WINDOW;
        out->ctx_dim = ctx_dim;
        if (pooled_dim) { /* the pooled vector of the first window, as A1111 and diffusers (one window) use */
            out->pooled = malloc(pooled_dim * sizeof(float));
            if (!out->pooled) st = err_fail(SD_ERR_MEMORY, "out of memory for the pooled text vector");
            else memcpy(out->pooled, pooled_all, pooled_dim * sizeof(float));
            out->pooled_dim = pooled_dim;
        }
    }
    free(pooled_all);
    free(ids1);
    free(ids2);
    clip_chunks_free(&ch1);
    clip_chunks_free(&ch2);
    if (st != SD_OK) text_cond_free(out);
    return st;
}

sd_status sd_tokenize(const char *model_path, const char *prompt, int verbose, FILE *out) {
    model_files f;
    clip_tokenizer *tok = NULL;
    int pad_zero = 0;
    if (model_path) {
        sd_status st = model_files_open(model_path, NULL, &f);
        if (st != SD_OK) return st;
        pad_zero = f.family == MODEL_FAMILY_SD2;
        char v[4200], m[4200];
        snprintf(v, sizeof v, "%s/vocab.json", f.tokenizer_dir);
        snprintf(m, sizeof m, "%s/merges.txt", f.tokenizer_dir);
        if (f.tokenizer_dir[0]) st = clip_tokenizer_load(v, m, &tok);
        model_files_close(&f);
        if (st != SD_OK) return st;
    }
    clip_prompt_opts o = CLIP_PROMPT_OPTS_DEFAULT;
    o.pad_zero = pad_zero;
    sd_status st = clip_print_tokens(out, tok ? tok : clip_tokenizer_default(), prompt, &o, verbose);
    clip_tokenizer_free(tok);
    return st;
}
