#!/usr/bin/env python3
"""cuda_roofline.py — a per-op model of one guided UNet step (batch 2: cond + uncond) on the CUDA backend as built
(kernels/cuda/): for every kernel launch its FLOPs, the DRAM bytes it moves, and an estimated time on an H100 SXM.
Pure arithmetic, no dependencies; no GPU has run this code, so these are estimates from counting.

The kernels modelled (f16 storage, f32 accumulation):
  igemm      implicit-GEMM convolutions and linear layers on mma.sync (kernels/cuda/igemm.cu): 128x128 tiles (8 warps,
             2 blocks per SM) or 64x64 when the big tiles would leave the GPU idle; GroupNorm+SiLU / LayerNorm
             prologue, bias / time-embedding / residual / GEGLU epilogue fused; the input is read through a concat or
             2x upsample. DRAM: the input once (taps and column blocks re-read it from L2), the weight once, the
             output once, plus the residual or per-sample add.
  flash      FlashAttention-2 style attention (kernels/cuda/flash.cu): Q, K, V, O once; head dims padded to 16.
             A GroupNorm prologue whose input igemms wrote (both parts of a concat) takes the statistics their
             epilogues left (graph.cu links them: no DRAM, no launch); a ResNet's 1x1 shortcut is a second stretch of
             its conv2's K.
  gn_stats   GroupNorm statistics, one read of the input (kernels/cuda/norm.cu): where the input (or a part of the
             concat it is) was not written by an igemm (none left in these models).
  gemv       linear layers of a few rows, several on one input per launch (kernels/cuda/gemv.cu): the time MLP and
             all the ResNets' time-embedding projections (one launch); reads the weights once.
  small      the timestep sinusoids, the latent's upload / download (conv_in's 4 channels are an igemm too: K = 36
             copied in 8-byte pieces).

Rates: the peaks are 989 TFLOP/s dense f16 and 3.35 TB/s. Measured by others on H100 SXM: mma.sync (the Ampere
instruction our kernels use) reaches about 2/3 of the tensor-core peak, only wgmma the rest (FlashAttention-3 paper,
Shah et al. 2024); FlashAttention-2 reaches about 335 TFLOP/s forward (head dim 128; ~300 at 64); a streaming kernel
reaches ~90% of the HBM bandwidth. Assumed here: igemm at 75% of the mma.sync ceiling (494 TFLOP/s) on full waves,
flash at 300 TFLOP/s on the padded head dim, memory-bound kernels at 3.0 TB/s, and 1.5 us between two kernels of
a graph (launch and ramp). The igemm ops between two other kernels go out as one launch while their tile shape stays
(igemm.cu's sequences, at most 16 ops; a 128x128-tile op with a GroupNorm prologue runs alone): each but the first costs 0.5 us instead of the gap (its tiles wait on counters
set by the tiles they depend on; a GroupNorm consumer waits for the whole producer). An igemm's compute time is that of its busiest SM: ceil(tiles / 132) padded tiles at
1/132 of the rate, and at least twice one tile's time when there are fewer tiles than SMs (a lone block is latency
bound), with the tile shape and K split igemm.cu's plan() picks and its cost model (a small tile's k-step at 1.25/4
of a large one's, 2 k-steps per block for the split-K partials); its time is the larger of that and its memory time,
+ the gap.

    python3 tools/cuda_roofline.py            SD 1.5 UNet, 512x512
    python3 tools/cuda_roofline.py --sdxl     SDXL UNet, 1024x1024
    python3 tools/cuda_roofline.py --vae      SD VAE decode, 512x512
"""
import math
import sys
from collections import defaultdict

PEAK = 989e12                      # f16 dense tensor FLOP/s (H100 SXM)
BW_PEAK = 3.35e12                  # HBM3 bytes/s
MMA_RATE = 0.75 * (2 / 3) * PEAK   # igemm: 3/4 of the mma.sync ceiling
FLASH_RATE = 300e12                # FlashAttention-2 class, on the padded head dim
BW = 0.9 * BW_PEAK
GAP = 1.5e-6                       # per kernel in a graph
SEQ_WAIT = 0.5e-6                  # per igemm after the first of a sequence: its tiles wait on counters, not a launch
SEQ_MAX = 16
SMS = 132
E = 2                              # bytes per f16 element

SDXL = "--sdxl" in sys.argv
N = 2
ops = defaultdict(lambda: [0.0, 0.0, 0, 0.0])   # class -> [flops, bytes, launches, modelled seconds]


seq = {"tiles": None, "ops": 0}        # the igemm sequence the last op belongs to (its tile shape, its ops)


def add(cls, flops, nbytes, t, tiles=None):
    """One op; tiles: an igemm's tile shape ("small" or "big"), which may join the open sequence (igemm.cu: one launch
    for the igemm ops between two other ops, while the tile shape stays and up to SEQ_MAX ops)."""
    a = ops[cls]
    a[0] += flops
    a[1] += nbytes
    joins = tiles is not None and seq["tiles"] == tiles and seq["ops"] < SEQ_MAX
    seq["tiles"], seq["ops"] = tiles, (seq["ops"] + 1 if joins else 1)
    a[2] += 0 if joins else 1
    a[3] += t + (SEQ_WAIT if joins else GAP)


def mem_time(nbytes):
    return nbytes / BW


def igemm(cls, m, n, k, a_bytes, w_bytes, out_bytes, extra_bytes=0, gn=False):
    """One igemm launch: y[m, n] = A[m, k] W[n, k]^T with its fused prologue / epilogue."""
    # the tile shape and K split of igemm.cu's plan(), and the busiest SM's work in 64x64-tile k-steps
    tb = math.ceil(m / 128) * math.ceil(n / 128)
    ts = math.ceil(m / 64) * math.ceil(n / 64)
    kt = -(-k // 32)                                               # K padded to whole k-steps (conv_in: 36 -> 64)

    def cost(tiles, area, s):
        blocks = tiles * s
        per = area * (kt / s + (2 if s > 1 else 0))
        c = math.ceil(blocks / SMS) * per
        return max(c, 2 * per) if blocks < SMS else c

    best = None
    for small_tiles, tiles, area in ((False, tb, 4.0), (True, ts, 1.25)):
        for s in range(1, 17):
            if s > 1 and kt // s < 4:
                break
            c = cost(tiles, area, s)
            if best is None or c < best[0] * (1 - 1e-9):
                best = (c, small_tiles, tiles, s)
    c, small_tiles, tiles, splits = best
    bm = 64 if small_tiles else 128
    t_compute = c * (2.0 * 64 * 64 * 32) / (MMA_RATE / SMS)
    flops = 2.0 * m * n * k
    nbytes = a_bytes + w_bytes + out_bytes + extra_bytes
    # (a 128x128 tile with a GroupNorm prologue runs alone: in a sequence its variant would spill)
    add(cls, flops, nbytes, max(t_compute, mem_time(nbytes)), "small" if small_tiles else None if gn else "big")


def gn_stats(c, hw):
    nbytes = N * hw * c * E
    add("GroupNorm statistics", 0, nbytes, mem_time(nbytes))


def conv3x3(cin, cout, h, stride=1, gn=False, gn_linked=True, add_t=False, res=False, up=False, shortcut=0):
    """3x3 conv on an h x h input (already upsampled size when up); shortcut: input channels of a 1x1 shortcut summed
    in (its input read once more, its weight once)."""
    ho = h // stride
    m, k = N * ho * ho, 9 * cin
    src = N * (h // 2 if up else h) ** 2 * cin * E
    if gn and not gn_linked:
        gn_stats(cin, (h // 2 if up else h) ** 2)
    extra = (N * ho * ho * cout * E if res else 0) + (N * cout * E if add_t else 0) + N * ho * ho * shortcut * E
    igemm("conv 3x3 (igemm)", m, cout, k + shortcut, src, cout * (k + shortcut) * E, m * cout * E, extra, gn)


def gemv(cls, rows, cin, couts):
    """One gemv launch: len(couts) linear layers of `rows` rows on one input."""
    nbytes = sum(c * cin for c in couts) * E + rows * (cin + sum(couts)) * E
    add(cls, 2.0 * rows * cin * sum(couts), nbytes, mem_time(nbytes))


def linear(cls, rows, cin, cout, res=False, ln=False, geglu=False, nw=1, gn=False):
    out = cout // 2 if geglu else cout
    igemm(cls, rows, cout * nw, cin, rows * cin * E * (2 if ln else 1), nw * cout * cin * E, rows * out * nw * E,
          rows * out * E if res else 0, gn)


def attention(tq, tk, c, heads):
    d = c // heads
    dp = (d + 15) // 16 * 16
    flops = 2.0 * 2 * N * heads * tq * tk * d
    nbytes = (N * tq * c * 2 + 2 * N * tk * c) * E
    add("attention (flash)", flops, nbytes, max(2.0 * 2 * N * heads * tq * tk * dp / FLASH_RATE, mem_time(nbytes)))


def small(what, nbytes, launches):
    for _ in range(launches):
        add(what, 0, nbytes / launches, mem_time(nbytes / launches))


temb_couts = []                    # every ResNet's time-embedding projection: one gemv launch per step


def resnet(cin, cout, h, temb=1280, gn_linked=True):
    temb_couts.append(cout)
    conv3x3(cin, cout, h, gn=True, gn_linked=gn_linked, add_t=True)
    conv3x3(cout, cout, h, gn=True, res=cin == cout, shortcut=cin if cin != cout else 0)


def transformer(c, h, heads, ctx, ctx_dim, depth=1):
    t = h * h
    rows = N * t
    linear("linear / 1x1 (igemm)", rows, c, c, gn=True)          # proj_in, GroupNorm prologue (statistics linked)
    for _ in range(depth):
        linear("linear / 1x1 (igemm)", rows, c, c, ln=True, nw=3)   # fused Q/K/V, LayerNorm prologue
        attention(t, t, c, heads)
        linear("linear / 1x1 (igemm)", rows, c, c, res=True)     # out, + x
        linear("linear / 1x1 (igemm)", rows, c, c, ln=True)      # cross-attention q (K/V of the text made once per image)
        attention(t, ctx, c, heads)
        linear("linear / 1x1 (igemm)", rows, c, c, res=True)
        linear("linear / 1x1 (igemm)", rows, c, 8 * c, ln=True, geglu=True)
        linear("linear / 1x1 (igemm)", rows, 4 * c, c, res=True)
    linear("linear / 1x1 (igemm)", rows, c, c, res=True)         # proj_out, + input


def unet(ch, attn_depth, heads_of, ctx_dim, h0, temb):
    small("timestep sinusoids", N * ch[0] * E, 1)
    gemv("time MLP, time-embedding projections (gemv)", N, ch[0], [temb])
    gemv("time MLP, time-embedding projections (gemv)", N, temb, [temb])
    conv3x3(4, ch[0], h0)                                            # conv_in
    small("latent upload / noise download", N * h0 * h0 * 4 * 6, 2)
    skips = [(ch[0], h0, True)]                                    # (channels, size, written by an igemm)
    h, cin = h0, ch[0]
    L = len(ch)
    for lvl, c in enumerate(ch):
        for _ in range(2):
            resnet(cin, c, h, temb=temb)
            if attn_depth[lvl]:
                transformer(c, h, heads_of(c), 77, ctx_dim, attn_depth[lvl])
            cin = c
            skips.append((c, h, True))
        if lvl < L - 1:
            conv3x3(c, c, h, stride=2)
            h //= 2
            skips.append((c, h, True))
    mid_depth = attn_depth[-1] if attn_depth[-1] else max(attn_depth)
    resnet(cin, cin, h, temb=temb)
    transformer(cin, h, heads_of(cin), 77, ctx_dim, mid_depth)
    resnet(cin, cin, h, temb=temb)
    for lvl, c in reversed(list(enumerate(ch))):
        for _ in range(3):
            sc, _, linked = skips.pop()
            resnet(cin + sc, c, h, temb=temb, gn_linked=linked)
            if attn_depth[lvl]:
                transformer(c, h, heads_of(c), 77, ctx_dim, attn_depth[lvl])
            cin = c
        if lvl > 0:
            h *= 2
            conv3x3(c, c, h, up=True)
    conv3x3(ch[0], 4, h, gn=True)
    gemv("time MLP, time-embedding projections (gemv)", N, temb, temb_couts)


def vae_decode(h0):
    """AutoencoderKL decoder, batch 1: [512, 512, 256, 128] channels from the latent's h0 x h0 up to 8 h0."""
    global N
    N = 1
    conv3x3(4, 512, h0)                                              # conv_in
    small("the picture's download", 64 * h0 * h0 * 3 * 4, 1)
    c, h = 512, h0
    resnet_v = lambda cin, cout, hh, linked=True: (conv3x3(cin, cout, hh, gn=True, gn_linked=linked),
                                                   conv3x3(cout, cout, hh, gn=True, res=cin == cout, shortcut=cin if cin != cout else 0))
    resnet_v(c, c, h)
    # mid attention: one head of 512, cuBLAS + softmax path; its GroupNorm prologue's statistics linked
    linear("linear / 1x1 (igemm)", h * h, c, c, nw=3, gn=True)
    t = h * h
    s_bytes = t * t * (4 + E) * 2
    add("attention (cuBLAS, d = 512)", 2.0 * 2 * t * t * c, s_bytes + 4 * t * c * E, max(2.0 * 2 * t * t * c / MMA_RATE, mem_time(s_bytes)))
    add("attention (cuBLAS, d = 512)", 0, s_bytes, mem_time(s_bytes))
    add("attention (cuBLAS, d = 512)", 0, 0, 0)
    linear("linear / 1x1 (igemm)", h * h, c, c, res=True)
    resnet_v(c, c, h)
    for lvl, co in enumerate([512, 512, 256, 128]):
        for _ in range(3):
            resnet_v(c, co, h)
            c = co
        if lvl < 3:
            h *= 2
            conv3x3(c, c, h, up=True)
    conv3x3(c, 3, h, gn=True)


if "--vae" in sys.argv:
    title = "VAE decode, 512x512 (latent 64x64), batch 1"
    vae_decode(64)
elif SDXL:
    title = "SDXL UNet, 1024x1024 (latent 128x128), batch 2 (one guided step)"
    unet([320, 640, 1280], [0, 2, 10], lambda c: c // 64, 2048, 128, 1280)
else:
    title = "SD 1.5 UNet, 512x512 (latent 64x64), batch 2 (one guided step)"
    unet([320, 640, 1280, 1280], [1, 1, 1, 0], lambda c: 8, 768, 64, 1280)

tot = [sum(a[i] for a in ops.values()) for i in range(4)]
print(f"{title}; H100 SXM; kernels as built in kernels/cuda/")
print("| op class | GFLOP | MB moved | launches | roofline µs | modelled µs | modelled TFLOP/s |")
print("|---|---:|---:|---:|---:|---:|---:|")
for cls, (f, b, n, t) in sorted(ops.items(), key=lambda kv: -kv[1][3]):
    roof = max(f / PEAK, b / BW_PEAK)
    print(f"| {cls} | {f / 1e9:.1f} | {b / 1e6:.0f} | {n} | {roof * 1e6:.0f} | {t * 1e6:.0f} | {f / t / 1e12:.0f} |")
roof_total = sum(max(a[0] / PEAK, a[1] / BW_PEAK) for a in ops.values())
print(f"| **total** | **{tot[0] / 1e9:.0f}** | **{tot[1] / 1e6:.0f}** | **{tot[2]}** | **{roof_total * 1e6:.0f}** | **{tot[3] * 1e6:.0f}** | "
      f"{tot[0] / tot[3] / 1e12:.0f} |")
print(f"compute floor {tot[0] / PEAK * 1e3:.2f} ms; modelled step {tot[3] * 1e3:.2f} ms ({tot[2]} kernel launches, {tot[2] * GAP * 1e3:.2f} ms "
      f"of it between them); {tot[0] / tot[3] / PEAK * 100:.0f}% of the tensor-core peak")
