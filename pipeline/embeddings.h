/* embeddings.h — textual-inversion embeddings for a generation (AUTOMATIC1111's rule: the file NAME.safetensors in
 * the embeddings folder is used wherever the tokens of NAME appear in a prompt, its vectors in their place).
 *
 *   emb_begin(ctx, dir);               // the folder's embeddings (cached), none used yet
 *   ... text_cond_encode(...)          // chunking marks the ones a prompt uses, emb_load_used loads them
 *   emb_hashes(ctx);                   // "name: hash, ..." for the infotext ("TI hashes")
 *   emb_end(ctx);
 *
 * Files: SD 1.x / 2.x one tensor [n, width] or [width] under any name (emb_params, string_to_param.*, or the
 * token as diffusers saves it); SDXL clip_l [n, 768] + clip_g [n, 1280]. Pickles (.pt, .bin) are refused, as
 * checkpoints are, once a prompt uses them. */
#ifndef PIPELINE_EMBEDDINGS_H
#define PIPELINE_EMBEDDINGS_H

#include "pipeline.h"

typedef struct emb_state emb_state;
void emb_state_free(emb_state *s);

/* The embeddings of `dir` (NULL: none) for one call; errors for a folder that cannot be read. */
sd_status emb_begin(sd_ctx *c, const char *dir);
/* What the prompt chunker of text encoder `second` (0, or 1 for SDXL's second) matches; *n = 0 when none. */
clip_embedding *emb_list(sd_ctx *c, int second, int *n);
/* Reads the vectors of every embedding a prompt used so far, checking they fit the model; errors name the file and,
 * for one made for another family, that family. */
sd_status emb_load_used(sd_ctx *c);
/* "name: hash, ..." (first 12 hex digits of each used file's SHA-256), NULL when none was used. */
const char *emb_hashes(sd_ctx *c);
void emb_end(sd_ctx *c);

#endif
