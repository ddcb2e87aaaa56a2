/* prompt.h — from a prompt to 77-token windows: A1111 emphasis syntax, BREAK, 75-token chunks with comma
 * backtrack, padding, and the emphasis step on encoder outputs (facts.md §3.4).
 *
 *   clip_prompt_opts o = CLIP_PROMPT_OPTS_DEFAULT;          // SD 1.x: EOS padding
 *   clip_chunks c;
 *   if (clip_prompt_chunks(clip_tokenizer_default(), "a (red:1.3) fox", &o, &c)) puts(sd_last_error());
 *   for (int k = 0; k < c.n; k++) {
 *       encode(c.ids + k * CLIP_CONTEXT) -> hidden [77, C];            // each window separately
 *       clip_apply_emphasis(hidden, CLIP_CONTEXT, C, c.weights + k * CLIP_CONTEXT, 1);
 *   }                                                                    // then concatenate: [77 * c.n, C]
 *   clip_chunks_free(&c);
 *
 * Syntax (as AUTOMATIC1111's parse_prompt_attention): (text) x1.1, ((text)) x1.21, (text:1.3) x1.3, [text] /1.1,
 * \( \) \[ \] \\ literal characters, unclosed brackets close at the end, the word BREAK starts a new window.
 * One deliberate difference: BREAK inside brackets still breaks (A1111 turns it into the word "break" with a
 * negative weight). A weight that is not a number, e.g. (x:1.2.3), is an error (A1111 raises). */
#ifndef TEXT_ENCODER_PROMPT_H
#define TEXT_ENCODER_PROMPT_H

#include <stdint.h>
#include <stdio.h>

#include "tokenizer.h"

/* ---- the weighting syntax ---- */
typedef struct clip_segment {
    char *text;    /* UTF-8, the brackets and escapes removed */
    double weight; /* product of the bracket factors, in the order the brackets close (as A1111 computes it) */
    int is_break;  /* a BREAK marker (text "BREAK", weight unused) */
} clip_segment;

typedef struct clip_segments {
    clip_segment *v;
    int n;
} clip_segments;

/* Splits a prompt into weighted segments; neighbours of equal weight are merged; an empty prompt gives one
 * empty segment of weight 1. */
sd_status clip_parse_attention(const char *prompt, clip_segments *out);
/* A number as Python's float() reads it (strtod in the C locale, whatever locale the program set); *ok = 0 unless
 * all len bytes are the number. */
double clip_parse_number(const char *p, size_t len, int *ok);
void clip_segments_free(clip_segments *s);

/* ---- windows ---- */
#define CLIP_COMMA_BACKTRACK 20 /* A1111's default comma_padding_backtrack */

/* Textual-inversion embeddings, as AUTOMATIC1111 finds them: where the token ids of an embedding's name appear in a
 * segment of the prompt (longest name first), its vectors take their place, as the ids first, first + 1, ...
 * (beyond the vocabulary: clip_forward looks them up in clip_model.extra). An embedding that does not fit in what
 * is left of the window starts the next one. */
typedef struct clip_embedding {
    const int32_t *ids;  /* the name's token ids (no BOS/EOS) */
    int n_ids;
    int vectors;         /* 1 to 75 */
    int32_t first;       /* id of its first vector */
    int used;            /* set when a prompt used it */
} clip_embedding;

typedef struct clip_prompt_opts {
    unsigned tok_flags;  /* CLIP_TOK_*: cleaning variant and the "!" quirk (see tokenizer.h) */
    int pad_zero;        /* 1: ids after the first EOS of a window become 0 (SD 2.x, SDXL's OpenCLIP encoder);
                          * 0: EOS padding (SD 1.x, SDXL's CLIP-L encoder) */
    int literal;         /* 1: as diffusers: no weighting syntax or BREAK, one window, tokens past 75 dropped */
    int comma_backtrack; /* tokens; 0 disables */
    clip_embedding *emb; /* textual inversion (weighted mode only); marks those a prompt uses */
    int n_emb;
} clip_prompt_opts;

#define CLIP_PROMPT_OPTS_DEFAULT { 0, 0, 0, CLIP_COMMA_BACKTRACK, NULL, 0 }

typedef struct clip_chunks {
    int n;          /* windows of CLIP_CONTEXT (77) tokens: BOS + 75 + EOS */
    int32_t *ids;   /* [n * 77] */
    float *weights; /* [n * 77] emphasis multipliers; 1 at BOS, EOS and padding */
    int *lens;      /* [n] prompt tokens in each window (its closing EOS is at lens[k] + 1) */
    int tokens;     /* prompt tokens in all windows (no BOS/EOS/padding) */
    int dropped;    /* literal mode: tokens cut off after the 75th */
    int replaced;   /* invalid UTF-8 sequences replaced with U+FFFD */
} clip_chunks;

/* opts NULL means CLIP_PROMPT_OPTS_DEFAULT. Fails on a malformed weight or when memory runs out. */
sd_status clip_prompt_chunks(const clip_tokenizer *tok, const char *prompt, const clip_prompt_opts *opts, clip_chunks *out);
void clip_chunks_free(clip_chunks *c);

/* A1111 "Original" emphasis on one window's encoder output hidden [tokens, C]: multiply each token's row by its
 * weight, then (restore_mean) rescale everything so the mean over all elements is what it was. restore_mean = 0
 * is A1111's "No norm". If the weighted mean is exactly 0 the rescaling is skipped (it would divide by zero). */
void clip_apply_emphasis(float *hidden, int tokens, int C, const float *weights, int restore_mean);

/* What `sd tokenize` prints: each window's ids from BOS to its EOS on one line (padding left out), lines starting
 * with '#' for notes (windows, dropped tokens, replaced bytes). verbose: a table of position, id, weight and
 * token text per window instead. */
sd_status clip_print_tokens(FILE *f, const clip_tokenizer *tok, const char *prompt, const clip_prompt_opts *opts, int verbose);

#endif
