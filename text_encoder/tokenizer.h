/* tokenizer.h — the CLIP byte-level BPE tokenizer (49408-id OpenAI CLIP vocabulary, used by SD 1.x, 2.x and SDXL).
 *
 *   const clip_tokenizer *tok = clip_tokenizer_default();       // embedded merges, built once on first use
 *   int32_t ids[256];
 *   int n = clip_encode(tok, "a photo of a cat", CLIP_TOK_HF, ids, 256);   // 320 1125 539 320 2368
 *
 * clip_encode gives the BPE ids only (no BOS/EOS, no truncation); prompt.h builds the 77-token windows.
 * The default behaviour (CLIP_TOK_HF) is Hugging Face transformers 5.x CLIPTokenizer, which diffusers uses:
 * NFC, runs of whitespace -> one space, per-character lowercase, "<|startoftext|>" / "<|endoftext|>" typed in the
 * text become the special ids. Invalid UTF-8 is replaced with U+FFFD (as Python's "replace" decoding does). */
#ifndef TEXT_ENCODER_TOKENIZER_H
#define TEXT_ENCODER_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "../core/status.h"

#define CLIP_VOCAB_SIZE 49408
#define CLIP_BOS 49406 /* <|startoftext|> in the standard vocabulary */
#define CLIP_EOS 49407 /* <|endoftext|> */
#define CLIP_CONTEXT 77 /* tokens per window: BOS + 75 + EOS */

/* Text-cleaning variants (flags for clip_encode / clip_tokenize). */
enum {
    CLIP_TOK_HF = 0,            /* transformers 5 CLIPTokenizer (diffusers): NFC, whitespace, lowercase */
    CLIP_TOK_FTFY = 1u << 0,    /* transformers 4 "slow" CLIPTokenizer with ftfy installed (A1111 SD 1.x):
                                 * a subset of ftfy.fix_text, whitespace, Python str.lower() */
    CLIP_TOK_HTML = 1u << 1,    /* with FTFY: OpenCLIP's tokenizer (the original SD 2.x / SDXL encoders): also
                                 * html.unescape twice; its special tokens are "<start_of_text>" / "<end_of_text>",
                                 * recognised after cleaning */
    CLIP_TOK_ORIGINAL = CLIP_TOK_FTFY | CLIP_TOK_HTML,
    CLIP_TOK_BANG_PAD = 1u << 2 /* "!" is a registered special token, id 0 (diffusers SD 2.x `tokenizer`, SDXL
                                 * `tokenizer_2`, whose pad token is "!"): every literal "!" becomes id 0.
                                 * Hugging Face behaviour, so ignored with CLIP_TOK_HTML (OpenCLIP) */
};

typedef struct clip_tokenizer clip_tokenizer;

/* The tokenizer built from the embedded bpe_simple_vocab_16e6 merges (open_clip, MIT; see NOTICE). Built once,
 * thread-safely, on first use (20-70 ms measured); shared, never freed. NULL (see sd_last_error) only if memory runs out. */
const clip_tokenizer *clip_tokenizer_default(void);

/* A private tokenizer built from the embedded merges (what clip_tokenizer_default shares); free it. */
sd_status clip_tokenizer_embedded(clip_tokenizer **out);

/* A tokenizer from a model folder's diffusers files (tokenizer/vocab.json + tokenizer/merges.txt). */
sd_status clip_tokenizer_load(const char *vocab_json, const char *merges_txt, clip_tokenizer **out);
/* The same from the files' text (vlen / mlen bytes, NUL-terminated or not); the names are for messages. */
sd_status clip_tokenizer_from_text(const char *vocab_json, const char *vtext, size_t vlen, const char *merges_txt,
                                   const char *mtext, size_t mlen, clip_tokenizer **out);
void clip_tokenizer_free(clip_tokenizer *tok); /* no-op for the default tokenizer and NULL */

typedef struct clip_ids {
    int32_t *ids; /* malloc'ed; free with clip_ids_free */
    int n;
    int replaced; /* invalid UTF-8 sequences that were replaced with U+FFFD */
} clip_ids;

/* Tokenizes `len` bytes of `text` into BPE ids (no BOS/EOS, no truncation). */
sd_status clip_tokenize(const clip_tokenizer *tok, const char *text, size_t len, unsigned flags, clip_ids *out);
void clip_ids_free(clip_ids *ids);

/* Convenience for a C string: writes up to `cap` ids and returns how many there are in all (which may exceed cap,
 * like snprintf), or -1 if memory ran out (see sd_last_error). */
int clip_encode(const clip_tokenizer *tok, const char *text, unsigned flags, int32_t *ids, int cap);

int clip_vocab_size(const clip_tokenizer *tok);
/* The vocabulary string of `id` in byte-level form ("photo</w>", "Ã©" for the bytes of "é"), NULL if none. */
const char *clip_token_str(const clip_tokenizer *tok, int id);
/* The id of a vocabulary string, or -1. */
int clip_token_id(const clip_tokenizer *tok, const char *str);
/* The raw bytes a token stands for (byte-level decoded, "</w>" removed; may be part of a UTF-8 character).
 * Returns the byte count (at most cap are written) and sets *word_end when the token ends a word. */
int clip_token_bytes(const clip_tokenizer *tok, int id, char *buf, int cap, int *word_end);

#endif
