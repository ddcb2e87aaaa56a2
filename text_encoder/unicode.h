/* unicode.h — the Unicode pieces the CLIP tokenizer needs: UTF-8 decoding with replacement, character classes,
 * lowercase, NFC, and the ftfy / html.unescape subset. Internal to text_encoder/ (tables: unicode_tables.c). */
#ifndef TEXT_ENCODER_UNICODE_H
#define TEXT_ENCODER_UNICODE_H

#include <stddef.h>
#include <stdint.h>

/* ---- generated tables (unicode_tables.c) ---- */
typedef struct { uint32_t lo, hi; } clip_uni_range;
typedef struct { uint32_t lo, hi; int32_t delta; uint32_t stride; } clip_uni_case_run;
typedef struct { uint32_t lo, hi, ccc; } clip_uni_ccc_run;
typedef struct { uint32_t a, b, c; } clip_uni_triple;
typedef struct { const char *name, *value; } clip_uni_entity;

extern const clip_uni_range clip_uni_letter[], clip_uni_number[];
extern const int clip_uni_letter_n, clip_uni_number_n;
extern const clip_uni_case_run clip_uni_lower_runs[];
extern const int clip_uni_lower_runs_n;
extern const clip_uni_ccc_run clip_uni_ccc[];
extern const int clip_uni_ccc_n;
extern const clip_uni_triple clip_uni_decomp[], clip_uni_comp[];
extern const int clip_uni_decomp_n, clip_uni_comp_n;
extern const clip_uni_triple clip_uni_width[];
extern const int clip_uni_width_n;
extern const uint16_t clip_uni_cp1252[32];
extern const clip_uni_entity clip_uni_entities[], clip_uni_entities_upper[];
extern const int clip_uni_entities_n, clip_uni_entities_upper_n;

/* ---- code point strings ---- */
typedef struct {
    uint32_t *cp;
    size_t n, cap;
} clip_u32s;

int clip_u32s_push(clip_u32s *s, uint32_t c);   /* 0 on success, -1 out of memory */
void clip_u32s_free(clip_u32s *s);

/* Decode UTF-8 the way Python's bytes.decode("utf-8", "replace") does: each maximal ill-formed subsequence becomes
 * one U+FFFD. Appends to out; returns the number of replacements made, or -1 if out of memory. */
long clip_utf8_decode(const char *s, size_t len, clip_u32s *out);
/* One step of that decoding at s[0] (len >= 1 bytes left): the code point, or CLIP_UTF8_BAD for an ill-formed
 * sequence; *adv is the number of bytes consumed. */
#define CLIP_UTF8_BAD 0xFFFFFFFFu
uint32_t clip_utf8_next(const char *s, size_t len, size_t *adv);
/* Encode one code point as UTF-8 into buf (4 bytes); returns the byte count. */
int clip_utf8_put(uint32_t c, char *buf);

enum { CLIP_UNI_OTHER = 0, CLIP_UNI_LETTER, CLIP_UNI_NUMBER, CLIP_UNI_SPACE };
int clip_uni_class(uint32_t c);                /* as the CLIP pre-tokenizer regex sees it (\p{L}, \p{N}, \s) */
uint32_t clip_uni_lower(uint32_t c);           /* one-to-one lowercase (U+0130 is handled by the callers) */

/* In-place text transforms over a code point string; each returns 0 or -1 (out of memory). */
int clip_uni_nfc(clip_u32s *s);
/* ftfy.fix_text subset (see unicode.c for what is and is not done). */
int clip_uni_ftfy(clip_u32s *s);
/* Python's html.unescape() for numeric references and the HTML 4 named set (see unicode.c). */
int clip_uni_html_unescape(clip_u32s *s);

#endif
