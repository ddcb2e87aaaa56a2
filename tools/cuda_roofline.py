#!/usr/bin/env python3
"""cuda_roofline.py — napkin roofline of one guided SD 1.5 UNet step at 512x512 (batch 2: cond + uncond) on the
CUDA backend as built (kernels/cuda/): FLOPs and DRAM bytes per op class, and whether each class is compute- or
memory-bound on an H100 SXM (989 TFLOP/s dense f16 tensor, 3.35 TB/s). Pure arithmetic, no dependencies.

Bytes count what each kernel of the chosen implementation reads from and writes to device memory once (f16
activations and weights, f32 parameter vectors, f32 attention scores); caches are ignored except where a kernel
re-reads data it just touched (GroupNorm's second statistics pass, LayerNorm's rows).
    python3 tools/cuda_roofline.py                      kernels as built (flash attention, im2col + GEMM convs)
    python3 tools/cuda_roofline.py --cublas-attention   attention on the reference path (cuBLAS + softmax kernel)
    python3 tools/cuda_roofline.py --implicit-gemm      3x3 convs without materialised columns (not built yet)
"""
import sys
from collections import defaultdict

PEAK = 989e12   # f16 dense tensor FLOP/s
BW = 3.35e12    # HBM3 bytes/s
E = 2           # bytes per f16 element

N, H0, CTX, CTX_DIM, HEADS = 2, 64, 77, 768, 8
FLASH = "--cublas-attention" not in sys.argv
IMPLICIT = "--implicit-gemm" in sys.argv
acc = defaultdict(lambda: [0.0, 0.0, 0])   # class -> [flops, bytes, launches]


def add(cls, flops, nbytes, launches=1):
    a = acc[cls]
    a[0] += flops
    a[1] += nbytes
    a[2] += launches


def gemm(cls, m, n, k, bias=True, act=False, a_bytes=None):
    """y[m, n] = x[m, k] W[n, k]^T (+ bias, activation as a second pass)."""
    a = m * k * E if a_bytes is None else a_bytes
    add(cls, 2.0 * m * n * k, a + n * k * E + m * n * E)
    if bias or act:
        add("bias/act epilogue", 0, 2 * m * n * E + n * 4)


def conv3x3(cin, cout, h, stride=1):
    ho = h // stride
    m, k = N * ho * ho, 9 * cin
    if IMPLICIT:   # implicit GEMM: reads x once, no columns, bias in the epilogue
        add("conv 3x3 (GEMM)", 2.0 * m * cout * k, N * h * h * cin * E + cout * k * E + m * cout * E)
        return
    add("im2col", 0, N * h * h * cin * E + m * k * E)
    gemm("conv 3x3 (GEMM)", m, cout, k, a_bytes=m * k * E)


def group_norm(c, h, silu=True):
    n = N * h * h * c
    add("group_norm(+SiLU)", 0, 3 * n * E, 3)   # stats pass reads x (2nd pass from cache), apply reads x, writes y


def layer_norm(c, t):
    add("layer_norm", 0, 2 * N * t * c * E)


def eltwise(n_in, n_out):
    add("add / GEGLU / concat / upsample", 0, (n_in + n_out) * E)


def attention(tq, tk, c):
    d = c // HEADS
    flops = 2.0 * 2 * N * HEADS * tq * tk * d
    qkv = (N * tq * c + 2 * N * tk * c + N * tq * c) * E
    if FLASH:
        add("attention (flash)", flops, qkv)
        return
    s = N * HEADS * tq * tk
    add("attention QK^T/PV (cuBLAS)", flops, qkv + s * 4 + s * E, 2)   # S written f32, P read by PV
    add("softmax", 0, s * 4 + s * E)                                    # S read (3 passes, 2 from cache), P written


def resnet(cin, cout, h):
    group_norm(cin, h)
    conv3x3(cin, cout, h)
    eltwise(N * h * h * cout + N * cout, N * h * h * cout)   # + time embedding (broadcast)
    group_norm(cout, h)
    conv3x3(cout, cout, h)
    if cin != cout:
        gemm("linear / 1x1 conv (GEMM)", N * h * h, cout, cin)
    eltwise(2 * N * h * h * cout, N * h * h * cout)           # residual


def transformer(c, h):
    t = h * h
    group_norm(c, h, silu=False)
    gemm("linear / 1x1 conv (GEMM)", N * t, c, c)              # proj_in
    layer_norm(c, t)
    for _ in range(3):
        gemm("linear / 1x1 conv (GEMM)", N * t, c, c, bias=False)   # q, k, v
    attention(t, t, c)
    gemm("linear / 1x1 conv (GEMM)", N * t, c, c)              # out
    eltwise(2 * N * t * c, N * t * c)
    layer_norm(c, t)
    gemm("linear / 1x1 conv (GEMM)", N * t, c, c, bias=False)  # q
    for _ in range(2):
        gemm("linear / 1x1 conv (GEMM)", N * CTX, c, CTX_DIM, bias=False)  # k, v of the text context
    attention(t, CTX, c)
    gemm("linear / 1x1 conv (GEMM)", N * t, c, c)
    eltwise(2 * N * t * c, N * t * c)
    layer_norm(c, t)
    gemm("linear / 1x1 conv (GEMM)", N * t, 8 * c, c)          # GEGLU projection
    eltwise(N * t * 8 * c, N * t * 4 * c)                       # GEGLU
    gemm("linear / 1x1 conv (GEMM)", N * t, c, 4 * c)
    eltwise(2 * N * t * c, N * t * c)
    gemm("linear / 1x1 conv (GEMM)", N * t, c, c)              # proj_out
    eltwise(2 * N * t * c, N * t * c)


def unet():
    ch = [320, 640, 1280, 1280]
    skips = []
    h = H0
    conv3x3(4, 320, h)
    skips.append((320, h))
    cin = 320
    for lvl, c in enumerate(ch):
        for _ in range(2):
            resnet(cin, c, h)
            if lvl < 3:
                transformer(c, h)
            cin = c
            skips.append((c, h))
        if lvl < 3:
            conv3x3(c, c, h, stride=2)
            h //= 2
            skips.append((c, h))
    resnet(1280, 1280, h)
    transformer(1280, h)
    resnet(1280, 1280, h)
    for lvl, c in enumerate(reversed(ch)):
        for _ in range(3):
            sc, _ = skips.pop()
            eltwise(N * h * h * (cin + sc), N * h * h * (cin + sc))   # concat
            resnet(cin + sc, c, h)
            if lvl > 0:
                transformer(c, h)
            cin = c
        if lvl < 3:
            eltwise(N * h * h * c, N * 4 * h * h * c)                 # nearest 2x
            h *= 2
            conv3x3(c, c, h)
    group_norm(320, h)
    conv3x3(320, 4, h)


unet()
tot_f = sum(a[0] for a in acc.values())
tot_b = sum(a[1] for a in acc.values())
tot_t = 0.0
print(f"SD 1.5 UNet, 512x512, batch 2 (one guided step); attention {'flash' if FLASH else 'cuBLAS + softmax'}, "
      f"3x3 conv {'implicit GEMM' if IMPLICIT else 'im2col + GEMM'}; H100 SXM roofline")
print(f"| op class | GFLOP | MB moved | FLOP/byte | launches | roofline µs | bound |")
print(f"|---|---:|---:|---:|---:|---:|---|")
for cls, (f, b, n) in sorted(acc.items(), key=lambda kv: -max(kv[1][0] / PEAK, kv[1][1] / BW)):
    t = max(f / PEAK, b / BW)
    tot_t += t
    bound = "compute" if f / PEAK > b / BW else "memory"
    print(f"| {cls} | {f / 1e9:.1f} | {b / 1e6:.0f} | {f / b if b else 0:.0f} | {n} | {t * 1e6:.0f} | {bound} |")
print(f"| **total** | **{tot_f / 1e9:.0f}** | **{tot_b / 1e6:.0f}** | {tot_f / tot_b:.0f} | | **{tot_t * 1e6:.0f}** | |")
print(f"ridge point {PEAK / BW:.0f} FLOP/byte; compute-only floor {tot_f / PEAK * 1e3:.2f} ms, "
      f"sum of per-class rooflines {tot_t * 1e3:.2f} ms per guided step")
