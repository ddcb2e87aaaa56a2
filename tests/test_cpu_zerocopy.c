/* test_cpu_zerocopy.c — zero-copy weights: the CPU backend computes from the memory-mapped checkpoint in place
 * (f32, f16, bf16 matrices and PyTorch-layout 3x3 kernels), the mapping outlives the st_file's own close while
 * weights use it, results equal those of copied weights, and a tensor misaligned for its type is copied. */
#include "test.h"
#include "be_test.h"
#include "../core/half.h"
#include "../kernels/cpu/cpu_simd.h"
#include "../kernels/weights.h"

#include <stdio.h>

static uint32_t g_rs = 777;
static float frand(void) {
    g_rs = g_rs * 1664525u + 1013904223u;
    return (float)((g_rs >> 8) * (1.0 / 8388608.0)) - 1.0f;
}

TEST(cpu_zero_copy_weights_from_the_mapped_file) {
    const int O = 24, C = 20, H = 6, W = 18, L = 33, V = 10;
    float *conv = malloc(sizeof(float) * O * C * 9), *lin = malloc(sizeof(float) * L * C), *emb = malloc(sizeof(float) * V * C);
    float *bias = malloc(sizeof(float) * O), *odd = malloc(sizeof(float) * 3);
    for (int i = 0; i < O * C * 9; i++) conv[i] = f16_to_f32(f32_to_f16(0.2f * frand())); /* exact in f16 */
    for (int i = 0; i < L * C; i++) lin[i] = 0.3f * frand();
    for (int i = 0; i < V * C; i++) emb[i] = bf16_to_f32(f32_to_bf16(frand()));
    for (int i = 0; i < O; i++) bias[i] = 0.1f * frand();
    odd[0] = odd[1] = odd[2] = 1.0f;
    /* tensors: f16 conv, f32 linear, bf16 embedding, f32 bias; a 3-element f16 vector then an f32 matrix that its odd
     * size leaves 2-byte aligned (written last) */
    char path[512];
    snprintf(path, sizeof path, "%s/zerocopy.safetensors", test_tmpdir());
    st_writer *wr = st_writer_new();
    REQUIRE(st_writer_add_f32(wr, "conv.weight", ST_F16, 4, (int64_t[]){O, C, 3, 3}, conv) == SD_OK);
    REQUIRE(st_writer_add_f32(wr, "lin.weight", ST_F32, 2, (int64_t[]){L, C}, lin) == SD_OK);
    REQUIRE(st_writer_add_f32(wr, "emb.weight", ST_BF16, 2, (int64_t[]){V, C}, emb) == SD_OK);
    REQUIRE(st_writer_add_f32(wr, "conv.bias", ST_F32, 1, (int64_t[]){O}, bias) == SD_OK);
    REQUIRE(st_writer_add_f32(wr, "odd", ST_F16, 1, (int64_t[]){3}, odd) == SD_OK);
    REQUIRE(st_writer_add_f32(wr, "lin2.weight", ST_F32, 2, (int64_t[]){L, C}, lin) == SD_OK);
    REQUIRE(st_writer_save(wr, path) == SD_OK);
    st_writer_free(wr);

    be *b = test_cpu_backend(0), *bc = test_cpu_backend(0); /* bc: the same weights copied (be_weight_upload) */
    st_file *f;
    REQUIRE(st_open(path, &f) == SD_OK);
    const st_tensor *t2 = st_find(f, "lin2.weight");
    CHECK((uintptr_t)t2->data % 4 != 0); /* the case this test wants: misaligned for f32 */
    wmap *m = wmap_new();
    REQUIRE(wmap_add_file(m, f, "", NULL, NULL) == SD_OK);
    be_weight cw, cb, lw, ew, l2;
    REQUIRE(wmap_load(b, m, &cw, BE_W_CONV, O, C, 3, 3, "conv.weight") == SD_OK);
    REQUIRE(wmap_vec(b, m, &cb, O, "conv.bias") == SD_OK);
    REQUIRE(wmap_linear(b, m, &lw, L, C, "lin.weight") == SD_OK);
    REQUIRE(wmap_load(b, m, &ew, BE_W_EMBED, V, C, 1, 1, "emb.weight") == SD_OK);
    REQUIRE(wmap_linear(b, m, &l2, L, C, "lin2.weight") == SD_OK);
    /* borrowed: only the bias vector and the misaligned matrix were copied into backend memory */
    test_note("backend memory for weights: %zu bytes (copied: %d-float bias, %d x %d misaligned f32 matrix)", b->weight_bytes, O, L, C);
    CHECK(b->weight_bytes == (size_t)O * 4 + (size_t)L * C * 4);
    CHECK(b->weight_mapped == (size_t)O * C * 9 * 2 + (size_t)L * C * 4 + (size_t)V * C * 2); /* read in place */
    wmap_free(m);
    st_close(f); /* the weights keep the mapping */

    be_weight ccw, ccb, clw, cew;
    uint16_t *c16 = malloc((size_t)O * C * 9 * 2), *e16 = malloc((size_t)V * C * 2);
    for (int i = 0; i < O * C * 9; i++) c16[i] = f32_to_f16(conv[i]);
    for (int i = 0; i < V * C; i++) e16[i] = f32_to_bf16(emb[i]);
    REQUIRE(be_weight_upload(bc, &ccw, BE_W_CONV, O, C, 3, 3, BE_F16, c16) == SD_OK);
    REQUIRE(be_weight_upload(bc, &ccb, BE_W_VEC, O, 1, 1, 1, BE_F32, bias) == SD_OK);
    REQUIRE(be_weight_upload(bc, &clw, BE_W_LINEAR, L, C, 1, 1, BE_F32, lin) == SD_OK);
    REQUIRE(be_weight_upload(bc, &cew, BE_W_EMBED, V, C, 1, 1, BE_BF16, e16) == SD_OK);

    float *x = malloc(sizeof(float) * H * W * C);
    for (int i = 0; i < H * W * C; i++) x[i] = frand();
    int modes[2] = {CPU_CONV_DIRECT, CPU_CONV_WINO4}, saved = cpu_conv_mode();
    for (int mi = 0; mi < 2; mi++) { /* the slab path and Winograd both read the re-laid-out rows */
        cpu_conv_mode_set(modes[mi]);
        float *out[2];
        for (int k = 0; k < 2; k++) {
            be *bb = k ? bc : b;
            size_t mk = be_mark(bb);
            be_tensor tx = test_upload(bb, x, 1, H, W, C), ty = be_new(bb, 1, H, W, O);
            be_conv2d(bb, &tx, k ? &ccw : &cw, k ? &ccb : &cb, 1, 1, 1, &ty);
            REQUIRE_MSG(be_status(bb) == SD_OK, "%s", sd_last_error());
            out[k] = test_download(bb, &ty);
            be_release(bb, mk);
        }
        CHECK_MAXERR(out[0], out[1], H * W * O, 0); /* same rows, same kernels: bit for bit */
        free(out[0]);
        free(out[1]);
    }
    cpu_conv_mode_set(saved);
    float *lo[3];
    for (int k = 0; k < 3; k++) {
        be *bb = k == 1 ? bc : b;
        size_t mk = be_mark(bb);
        be_tensor tx = test_upload(bb, x, 1, 1, 7, C), ty = be_new(bb, 1, 1, 7, L);
        be_linear(bb, &tx, k == 0 ? &lw : k == 1 ? &clw : &l2, NULL, BE_ACT_NONE, &ty);
        REQUIRE(be_status(bb) == SD_OK);
        lo[k] = test_download(bb, &ty);
        be_release(bb, mk);
    }
    CHECK_MAXERR(lo[0], lo[1], 7 * L, 0);
    CHECK_MAXERR(lo[2], lo[1], 7 * L, 0);
    int32_t ids[4] = {9, 0, 3, 9};
    be_tensor te = be_new(b, 1, 1, 4, C);
    be_embedding(b, ids, &ew, &te);
    float *eo = test_download(b, &te);
    int same = 1;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < C; j++) same &= eo[i * C + j] == emb[ids[i] * C + j];
    CHECK(same);
    be_weight_free(b, &cw); be_weight_free(b, &cb); be_weight_free(b, &lw); be_weight_free(b, &ew); be_weight_free(b, &l2);
    CHECK(b->weight_bytes == 0 && b->weight_mapped == 0);
    be_weight_free(bc, &ccw); be_weight_free(bc, &ccb); be_weight_free(bc, &clw); be_weight_free(bc, &cew);
    be_free(b);
    be_free(bc);
    free(conv); free(lin); free(emb); free(bias); free(odd); free(c16); free(e16); free(x); free(eo); free(lo[0]); free(lo[1]); free(lo[2]);
}
