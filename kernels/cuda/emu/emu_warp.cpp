/* emu_warp.cpp — the warp collectives built on cuda_emu_warp_collective: shuffles (with the PTX shfl.sync
 * source-lane and clamp rules), votes, match and reduce. The last lane to arrive computes every lane's
 * result from the inputs of the lanes that took part; a read of a lane that did not gets poison. */
#include "emu_internal.h"

namespace {

struct ShflLane {
    uint64_t in, out;
    int b, width;
};

const char *shfl_name(int mode) {
    static const char *n[] = {"__shfl_sync", "__shfl_up_sync", "__shfl_down_sync", "__shfl_xor_sync"};
    return n[mode];
}

/* PTX shfl.sync: c = ((32 - width) << 8) | clamp, with clamp 0 for up and 31 otherwise; segmask = c[12:8]. */
template <int MODE> void shfl_fn(void *const *data, unsigned present) {
    for (int l = 0; l < 32; l++) {
        ShflLane *x = (ShflLane *)data[l];
        if (!x) continue;
        const int w = x->width;
        if (w < 1 || w > 32 || (w & (w - 1)))
            cuda_emu_fail("%s: width %d is not a power of 2 between 1 and 32", shfl_name(MODE), w);
        const int segmask = 32 - w, b = x->b & 31;
        const int max_lane = (l & segmask) | ((MODE == CUDA_EMU_SHFL_UP ? 0 : 31) & ~segmask);
        const int min_lane = l & segmask;
        int j;
        bool ok;
        switch (MODE) {
        case CUDA_EMU_SHFL_UP: j = l - b; ok = j >= max_lane; break;
        case CUDA_EMU_SHFL_DOWN: j = l + b; ok = j <= max_lane; break;
        case CUDA_EMU_SHFL_XOR: j = l ^ b; ok = j <= max_lane; break;
        default: j = min_lane | (b & ~segmask); ok = j <= max_lane; break;
        }
        if (!ok) j = l;
        if (present >> j & 1) x->out = ((ShflLane *)data[j])->in;
        else {
            x->out = ~0ull;
            cuda_emu_warn_inactive_lane(shfl_name(MODE), l, j);
        }
    }
}

struct VoteLane { int pred; unsigned out; };
template <int MODE> void vote_fn(void *const *data, unsigned present) {
    unsigned ballot = 0;
    for (int l = 0; l < 32; l++)
        if (data[l] && ((VoteLane *)data[l])->pred) ballot |= 1u << l;
    const unsigned r = MODE == CUDA_EMU_VOTE_BALLOT ? ballot : MODE == CUDA_EMU_VOTE_ANY ? ballot != 0 : ballot == present;
    for (int l = 0; l < 32; l++)
        if (data[l]) ((VoteLane *)data[l])->out = r;
}

struct MatchLane { uint64_t v; unsigned out; int pred; };
template <int ALL> void match_fn(void *const *data, unsigned present) {
    for (int l = 0; l < 32; l++) {
        MatchLane *x = (MatchLane *)data[l];
        if (!x) continue;
        unsigned same = 0;
        for (int j = 0; j < 32; j++)
            if (data[j] && ((MatchLane *)data[j])->v == x->v) same |= 1u << j;
        if (ALL) { x->pred = same == present; x->out = x->pred ? present : 0; }
        else x->out = same;
    }
}

struct RedLane { unsigned v, out; };
template <int OP, int SIGNED> void reduce_fn(void *const *data, unsigned) {
    unsigned acc = 0;
    bool first = true;
    for (int l = 0; l < 32; l++) {
        if (!data[l]) continue;
        const unsigned v = ((RedLane *)data[l])->v;
        if (first) { acc = v; first = false; continue; }
        switch (OP) {
        case CUDA_EMU_RED_ADD: acc += v; break;
        case CUDA_EMU_RED_MIN: acc = SIGNED ? ((int)v < (int)acc ? v : acc) : (v < acc ? v : acc); break;
        case CUDA_EMU_RED_MAX: acc = SIGNED ? ((int)v > (int)acc ? v : acc) : (v > acc ? v : acc); break;
        case CUDA_EMU_RED_AND: acc &= v; break;
        case CUDA_EMU_RED_OR: acc |= v; break;
        default: acc ^= v; break;
        }
    }
    for (int l = 0; l < 32; l++)
        if (data[l]) ((RedLane *)data[l])->out = acc;
}

} // namespace

uint64_t cuda_emu_shfl(int mode, unsigned mask, uint64_t bits, int b, int width, const char *file, int line) {
    static const cuda_emu_warp_fn fns[] = {shfl_fn<CUDA_EMU_SHFL_IDX>, shfl_fn<CUDA_EMU_SHFL_UP>, shfl_fn<CUDA_EMU_SHFL_DOWN>,
                                           shfl_fn<CUDA_EMU_SHFL_XOR>};
    ShflLane x = {bits, bits, b, width};
    cuda_emu_warp_collective(shfl_name(mode), mask, &x, fns[mode], file, line);
    return x.out;
}

unsigned cuda_emu_vote(int mode, unsigned mask, int pred, const char *file, int line) {
    static const char *names[] = {"__ballot_sync", "__any_sync", "__all_sync"};
    static const cuda_emu_warp_fn fns[] = {vote_fn<CUDA_EMU_VOTE_BALLOT>, vote_fn<CUDA_EMU_VOTE_ANY>, vote_fn<CUDA_EMU_VOTE_ALL>};
    VoteLane x = {pred, 0};
    cuda_emu_warp_collective(names[mode], mask, &x, fns[mode], file, line);
    return x.out;
}

unsigned cuda_emu_match(int all, unsigned mask, uint64_t value, int *pred, const char *file, int line) {
    MatchLane x = {value, 0, 0};
    cuda_emu_warp_collective(all ? "__match_all_sync" : "__match_any_sync", mask, &x, all ? match_fn<1> : match_fn<0>, file, line);
    if (pred) *pred = x.pred;
    return x.out;
}

unsigned cuda_emu_reduce(int op, int is_signed, unsigned mask, unsigned value, const char *file, int line) {
    static const char *names[] = {"__reduce_add_sync", "__reduce_min_sync", "__reduce_max_sync", "__reduce_and_sync",
                                  "__reduce_or_sync", "__reduce_xor_sync"};
    static const cuda_emu_warp_fn fns[2][6] = {
        {reduce_fn<0, 0>, reduce_fn<1, 0>, reduce_fn<2, 0>, reduce_fn<3, 0>, reduce_fn<4, 0>, reduce_fn<5, 0>},
        {reduce_fn<0, 1>, reduce_fn<1, 1>, reduce_fn<2, 1>, reduce_fn<3, 1>, reduce_fn<4, 1>, reduce_fn<5, 1>}};
    RedLane x = {value, 0};
    cuda_emu_warp_collective(names[op], mask, &x, fns[is_signed ? 1 : 0][op], file, line);
    return x.out;
}
