// test_emu_warp.cpp — warp collectives and block barrier reductions against the rules of the CUDA
// Programming Guide, written out here independently of the emulator's PTX-style implementation.
#include "tests/emu/emu_kernels.h"
#include "tests/emu/emu_test_util.h"

/* Guide rules for one thread t (lane = t % 32, its warp's lanes all present): */
static int ref_shfl(const std::vector<int> &in, int t, int src, int width) {
    const int lane = t % 32, seg = lane - lane % width;
    return in[t - lane + seg + ((src % width) + width) % width]; /* srcLane modulo width, in the caller's segment */
}
static int ref_up(const std::vector<int> &in, int t, int delta, int width) {
    return (t % 32) % width - delta < 0 ? in[t] : in[t - delta];
}
static int ref_down(const std::vector<int> &in, int t, int delta, int width) {
    return (t % 32) % width + delta >= width ? in[t] : in[t + delta];
}
static int ref_xor(const std::vector<int> &in, int t, int xmask, int width) {
    const int lane = t % 32, src = lane ^ xmask;
    return src / width > lane / width ? in[t] : in[t - lane + src]; /* a later group: own value */
}

TEST(emu_shuffles_with_width) {
    const int threads = 64;
    std::vector<int> in(threads);
    for (int t = 0; t < threads; t++) in[t] = 1000 + t * 7;
    int *din = dev_upload(in), *dout = dev_alloc<int>(threads * 4);
    REQUIRE(din && dout);
    long checked = 0;
    for (int width : {32, 16, 8, 4, 2, 1})
        for (int src : {0, 5, 37, -1})
            for (int delta : {0, 1, 3, 17})
                for (int xmask : {1, 6, 16, 31}) {
                    if (src != 5 && delta != 1 && xmask != 6) continue; /* enough combinations, fewer launches */
                    CHECK_EQ_INT(emu_probe_shuffles(din, dout, threads, src, delta, xmask, width), cudaSuccess);
                    std::vector<int> out = dev_download(dout, threads * 4);
                    for (int t = 0; t < threads; t++, checked++) {
                        const int want[4] = {ref_shfl(in, t, src, width), ref_up(in, t, delta, width), ref_down(in, t, delta, width),
                                             ref_xor(in, t, xmask, width)};
                        for (int k = 0; k < 4; k++)
                            CHECK_MSG(out[t * 4 + k] == want[k], "op %d width %d src %d delta %d xmask %d thread %d: %d, want %d", k, width,
                                      src, delta, xmask, t, out[t * 4 + k], want[k]);
                    }
                }
    CHECK_EQ_INT(cuda_emu_warning_count(), 0);
    test_note("%ld thread results x 4 shuffle kinds checked", checked);
    cudaFree(din);
    cudaFree(dout);
}

TEST(emu_shuffle_from_missing_lane_is_poison) {
    /* 48 threads: the second warp has lanes 0..15 only; a full-mask shuffle that reads lanes 16..31 gets
     * all bits set and a warning, where a GPU gives an undefined value */
    const int threads = 48;
    std::vector<int> in(threads);
    for (int t = 0; t < threads; t++) in[t] = t;
    int *din = dev_upload(in), *dout = dev_alloc<int>(threads * 4);
    REQUIRE(din && dout);
    cuda_emu_set_quiet(1);
    cuda_emu_clear_log();
    CHECK_EQ_INT(emu_probe_shuffles(din, dout, threads, 0, 16, 16, 32), cudaSuccess);
    cuda_emu_set_quiet(0);
    std::vector<int> out = dev_download(dout, threads * 4);
    for (int t = 32; t < 48; t++) {
        CHECK_EQ_INT(out[t * 4 + 0], 32);  /* lane 0 exists */
        CHECK_EQ_INT(out[t * 4 + 2], -1);  /* down 16 reads lane >= 16 */
        CHECK_EQ_INT(out[t * 4 + 3], -1);  /* xor 16 likewise */
    }
    CHECK_EQ_INT(out[0 * 4 + 3], 16);      /* the full first warp is unaffected */
    CHECK(cuda_emu_warning_count() > 0);
    CHECK_EQ_INT(cuda_emu_violation_count(), 0);
    cuda_emu_clear_log();
    cudaFree(din);
    cudaFree(dout);
}

TEST(emu_votes_and_warp_reductions) {
    for (int threads : {64, 40}) {
        std::vector<int> pred(threads);
        for (int t = 0; t < threads; t++) pred[t] = (t * 7 % 5) < 2;
        int *dp = dev_upload(pred);
        unsigned *dout = dev_alloc<unsigned>(threads * 6);
        REQUIRE(dp && dout);
        CHECK_EQ_INT(emu_probe_votes(dp, dout, threads), cudaSuccess);
        std::vector<unsigned> out = dev_download(dout, threads * 6);
        for (int t = 0; t < threads; t++) {
            const int w0 = t - t % 32, nl = threads - w0 < 32 ? threads - w0 : 32;
            unsigned ballot = 0;
            for (int l = 0; l < nl; l++) ballot |= (unsigned)(pred[w0 + l] != 0) << l;
            const unsigned present = nl == 32 ? 0xffffffffu : (1u << nl) - 1;
            CHECK_EQ_INT(out[t * 6 + 0], ballot);
            CHECK_EQ_INT(out[t * 6 + 1], ballot != 0);
            CHECK_EQ_INT(out[t * 6 + 2], ballot == present);
            CHECK_EQ_INT(out[t * 6 + 3], __builtin_popcount(ballot));
            CHECK_EQ_INT(out[t * 6 + 4], pred[t] ? ballot : present & ~ballot);
            /* __activemask: the emulator cannot know which lanes a GPU would have converged; it returns the
             * lanes that have not exited, which always includes the caller and never an absent lane */
            CHECK((out[t * 6 + 5] & ~present) == 0 && (out[t * 6 + 5] >> (t % 32) & 1));
        }
        cudaFree(dp);
        cudaFree(dout);
    }
    CHECK_EQ_INT(cuda_emu_violation_count(), 0);
}

TEST(emu_syncthreads_count_and_or) {
    const int threads = 96;
    for (int pattern = 0; pattern < 3; pattern++) {
        std::vector<int> pred(threads);
        for (int t = 0; t < threads; t++) pred[t] = pattern == 0 ? (t % 3 == 0) * 5 : pattern == 1 ? 1 : 0;
        int *dp = dev_upload(pred), *dout = dev_alloc<int>(threads * 3);
        REQUIRE(dp && dout);
        CHECK_EQ_INT(emu_probe_barrier_reduce(dp, dout, threads), cudaSuccess);
        std::vector<int> out = dev_download(dout, threads * 3);
        int count = 0;
        for (int p : pred) count += p != 0;
        for (int t = 0; t < threads; t++) {
            CHECK_EQ_INT(out[t * 3 + 0], count);
            CHECK_EQ_INT(out[t * 3 + 1] != 0, count == threads);
            CHECK_EQ_INT(out[t * 3 + 2] != 0, count > 0);
        }
        cudaFree(dp);
        cudaFree(dout);
    }
}
