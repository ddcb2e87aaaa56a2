/* fuzz_prompt.c — a prompt through the text side: A1111 weighting syntax, BREAK, the CLIP BPE tokenizer (text
 * cleaning variants from the first byte) and the 77-token windows. */
#include "fuzz.h"

#include "../../text_encoder/prompt.h"
#include "../../text_encoder/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const clip_tokenizer *tok = clip_tokenizer_default();
    if (!tok || size < 1) return 0;
    char *text = fuzz_text(data + 1, size - 1);
    if (!text) return 0;
    clip_prompt_opts o = CLIP_PROMPT_OPTS_DEFAULT;
    o.tok_flags = data[0] & 7u;
    o.pad_zero = data[0] >> 3 & 1;
    o.literal = data[0] >> 4 & 1;
    o.comma_backtrack = data[0] >> 5 & 1 ? 0 : CLIP_COMMA_BACKTRACK;
    clip_segments seg;
    if (clip_parse_attention(text, &seg) == SD_OK) clip_segments_free(&seg);
    clip_chunks c;
    if (clip_prompt_chunks(tok, text, &o, &c) == SD_OK) clip_chunks_free(&c);
    clip_ids ids; /* the raw bytes too: a NUL inside the text is the tokenizer's business here */
    if (clip_tokenize(tok, (const char *)data + 1, size - 1, o.tok_flags, &ids) == SD_OK) clip_ids_free(&ids);
    free(text);
    return 0;
}
