/* fuzz_tokenizer_files.c — a diffusers tokenizer folder's vocab.json and merges.txt: the input up to its first NUL
 * byte is vocab.json, the rest merges.txt; a tokenizer that loads then tokenizes a fixed prompt. */
#include "fuzz.h"

#include "../../text_encoder/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t vlen = nul ? (size_t)(nul - data) : size;
    const char *merges = nul ? (const char *)nul + 1 : "";
    size_t mlen = nul ? size - vlen - 1 : 0;
    clip_tokenizer *t;
    if (clip_tokenizer_from_text("vocab.json", (const char *)data, vlen, "merges.txt", merges, mlen, &t) != SD_OK) return 0;
    int32_t ids[96];
    (void)clip_encode(t, "a photo of an astronaut, riding a horse!! <|endoftext|> 1234 caf\xc3\xa9", CLIP_TOK_HF, ids, 96);
    (void)clip_encode(t, "a photo of an astronaut!", CLIP_TOK_ORIGINAL | CLIP_TOK_BANG_PAD, ids, 96);
    clip_tokenizer_free(t);
    return 0;
}
