/* test_embeddings.c — textual-inversion embeddings: AUTOMATIC1111's chunking rules (names matched as token ids,
 * longest first, vectors in their place with the words' emphasis, an embedding that does not fit moves to the next
 * window), and the files: pickles refused as checkpoints are, embeddings of another family named as such. The
 * whole-generation goldens against diffusers' load_textual_inversion are in test_lora.c. */
#include "test.h"
#include "load_model.h"
#include "model_copy.h"
#include "../core/error.h"
#include "../sd.h"
#include "../text_encoder/prompt.h"

#include <stdlib.h>
#include <sys/stat.h>

static int32_t tok1(const char *word) { /* the id of a one-token word */
    clip_ids ids;
    REQUIRE(clip_tokenize(clip_tokenizer_default(), word, strlen(word), 0, &ids) == SD_OK && ids.n == 1);
    int32_t id = ids.ids[0];
    clip_ids_free(&ids);
    return id;
}

static clip_embedding emb(const char *name, int vectors, int32_t first, clip_ids *keep) {
    REQUIRE(clip_tokenize(clip_tokenizer_default(), name, strlen(name), 0, keep) == SD_OK);
    return (clip_embedding){keep->ids, keep->n, vectors, first, 0};
}

TEST(embedding_chunking_follows_a1111) {
    enum { V = 49408 };
    clip_ids k[3];
    clip_embedding e[3] = {emb("red", 1, V, &k[0]), emb("red fox", 3, V + 1, &k[1]), emb("nowhere", 2, V + 4, &k[2])};
    clip_prompt_opts o = CLIP_PROMPT_OPTS_DEFAULT;
    o.emb = e;
    o.n_emb = 3;
    clip_chunks c;
    /* longest name first: "red fox" (two tokens) wins over "red"; the vectors carry the words' emphasis */
    REQUIRE(clip_prompt_chunks(clip_tokenizer_default(), "a (red fox:1.5) and a red hat", &o, &c) == SD_OK);
    int32_t want[] = {49406, tok1("a"), V + 1, V + 2, V + 3, tok1("and"), tok1("a"), V, tok1("hat"), 49407};
    for (int i = 0; i < 10; i++) CHECK_MSG(c.ids[i] == want[i], "position %d: %d, expected %d", i, c.ids[i], want[i]);
    CHECK(c.weights[2] == 1.5f && c.weights[4] == 1.5f && c.weights[7] == 1.0f);
    CHECK(e[0].used && e[1].used && !e[2].used);
    clip_chunks_free(&c);
    /* 74 words, then a 3-vector embedding: it does not fit in the window's one free place and starts the next */
    char prompt[1024] = "";
    for (int i = 0; i < 74; i++) strcat(prompt, "cat ");
    strcat(prompt, "red fox");
    o.comma_backtrack = 0;
    REQUIRE(clip_prompt_chunks(clip_tokenizer_default(), prompt, &o, &c) == SD_OK);
    REQUIRE(c.n == 2);
    CHECK(c.lens[0] == 74 && c.ids[75] == 49407 && c.ids[77 + 1] == V + 1 && c.ids[77 + 3] == V + 3 && c.lens[1] == 3);
    clip_chunks_free(&c);
    for (int i = 0; i < 3; i++) clip_ids_free(&k[i]);
}

/* A folder with one usable embedding, a pickle, and a file that is no embedding: only what a prompt uses matters. */
TEST(embedding_files_refused_with_reasons) {
    const char *tmp = test_tmpdir();
    char dir[1024], path[1100];
    snprintf(dir, sizeof dir, "%s/emb", tmp);
    REQUIRE(mkdir(dir, 0755) == 0);
    snprintf(path, sizeof path, "%s/hexstyle.safetensors", dir);
    REQUIRE(model_copy_file(test_path("golden/lora/emb/hexstyle.safetensors"), path) == 0);
    snprintf(path, sizeof path, "%s/xlstyle.safetensors", dir);
    REQUIRE(model_copy_file(test_path("golden/lora/emb_xl/hexstyle.safetensors"), path) == 0);
    snprintf(path, sizeof path, "%s/nanstyle.safetensors", dir); /* NaN vectors gave a black picture, exit 0 */
    REQUIRE(model_copy_with_nan(test_path("golden/lora/emb/hexstyle.safetensors"), path, "emb_params", 5) == 0);
    snprintf(path, sizeof path, "%s/badpickle.pt", dir);
    REQUIRE(model_write_text(path, "\x80\x02 pickle") == 0);
    snprintf(path, sizeof path, "%s/sub", dir);
    REQUIRE(mkdir(path, 0755) == 0);
    snprintf(path, sizeof path, "%s/sub/lorafile.safetensors", dir); /* subfolders count too (A1111 walks them) */
    REQUIRE(model_copy_file(test_path("golden/lora/loras/sd1_peft.safetensors"), path) == 0);
    sd_ctx *sd1 = test_load_model(test_path("golden/pipeline/sd1")), *xl = test_load_model(test_path("golden/pipeline/sdxl"));
    sd_gen_params p;
    sd_gen_params_init(&p);
    p.steps = 1;
    p.width = p.height = 32;
    p.embedding_dir = dir;
    struct { sd_ctx *ctx; const char *prompt, *want1, *want2; } bad[] = {
        {sd1, "a badpickle circle", "badpickle.pt: PyTorch pickle", "safetensors"},
        {sd1, "an xlstyle circle", "xlstyle.safetensors: an SDXL embedding (clip_l + clip_g); the model is SD 1.x", ""},
        {xl, "a hexstyle circle", "hexstyle.safetensors: an embedding for a single text encoder", "the model is SDXL"},
        {sd1, "a nanstyle circle", "nanstyle.safetensors: tensor \"emb_params\" holds NaN at element 5", ""},
    };
    sd_result r;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        p.prompt = bad[i].prompt;
        sd_status st = sd_generate(bad[i].ctx, &p, NULL, NULL, &r);
        CHECK_MSG(st != SD_OK, "\"%s\" was accepted", bad[i].prompt);
        if (st == SD_OK) { sd_result_free(&r); continue; }
        CHECK_STR_CONTAINS(sd_last_error(), bad[i].want1);
        CHECK_STR_CONTAINS(sd_last_error(), bad[i].want2);
    }
    /* a file that is no embedding at all (a LoRA) is skipped with a warning, as A1111 does: its name stays words */
    p.prompt = "a lorafile circle";
    sd_result plain;
    REQUIRE_MSG(sd_generate(sd1, &p, NULL, NULL, &r) == SD_OK, "%s", sd_last_error());
    p.embedding_dir = NULL;
    REQUIRE(sd_generate(sd1, &p, NULL, NULL, &plain) == SD_OK);
    CHECK(!strstr(r.infotext[0], "TI hashes") && !memcmp(r.images[0].data, plain.images[0].data, (size_t)32 * 32 * 3));
    sd_result_free(&r);
    sd_result_free(&plain);
    p.embedding_dir = dir;
    /* none of them named: the folder is fine; the usable one named: used and hashed */
    p.prompt = "a red circle";
    REQUIRE_MSG(sd_generate(sd1, &p, NULL, NULL, &r) == SD_OK, "%s", sd_last_error());
    CHECK(!strstr(r.infotext[0], "TI hashes"));
    sd_result_free(&r);
    p.prompt = "a hexstyle circle";
    REQUIRE_MSG(sd_generate(sd1, &p, NULL, NULL, &r) == SD_OK, "%s", sd_last_error());
    CHECK_STR_CONTAINS(r.infotext[0], "TI hashes: \"hexstyle: ");
    sd_result_free(&r);
    p.embedding_dir = "/nonexistent/embeddings";
    CHECK(sd_check_params(sd1, &p) != SD_OK);
    CHECK_STR_CONTAINS(sd_last_error(), "/nonexistent/embeddings: no such embeddings folder");
    sd_free(sd1);
    sd_free(xl);
}
