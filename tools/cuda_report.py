#!/usr/bin/env python3
"""cuda_report.py — the static report of the CUDA kernels (`make cuda-report`): per kernel and architecture, the
registers, shared memory, spills and stack from `ptxas -v`, the theoretical occupancy that follows from them and the
launch configuration, and the SASS instruction mix from `cuobjdump -sass` (HMMA tensor-core instructions, LDSM =
ldmatrix, LDGSTS = cp.async, 128-bit global loads and stores, MUFU special functions). Exits 1 if a kernel spills,
a tensor-core kernel (igemm, flash attention) has no HMMA, or a kernel whose blocks wait for other blocks
(igemm sequences) lacks the acquire loads (each followed by an L1 invalidation) and fences its waits rely on.

    python3 tools/cuda_report.py DIR     DIR holds <file>.sm_<arch>.ptxas.txt and <file>.sm_<arch>.sass.txt

The launch configurations (threads, dynamic shared memory) are those of kernels/cuda/igemm.cu (ig_tile, plan), flash.cu
(fa_cfg) and the memory-bound kernels (256 threads); keep them in step with the code.
"""
import collections
import glob
import os
import re
import subprocess
import sys

ARCH = {  # per SM: registers, shared memory for blocks, threads, blocks
    "sm_80": dict(regs=65536, smem=167936, threads=2048, blocks=32),
    "sm_90": dict(regs=65536, smem=233472, threads=2048, blocks=32),
}
HOT = ("igemm_kernel", "igemm_seq_kernel", "fa2_kernel", "gn_stats_kernel", "gn_apply_kernel", "layer_norm_kernel", "add_kernel",
       "act_kernel", "geglu_kernel", "convert_kernel", "timestep_embedding_kernel", "softmax_kernel", "im2col_kernel", "bias_act_kernel",
       "upsample_nearest_kernel", "concat_kernel", "gemv_group_kernel")
TENSOR = ("igemm_kernel", "igemm_seq_kernel", "fa2_kernel")
WAITS = ("igemm_seq_kernel",)  # blocks wait for other blocks' results: acquire loads and fences must be in the SASS


def demangle(names):
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True, check=True).stdout.split("\n")
    return dict(zip(names, out))


def launch_config(name):
    """(threads, dynamic shared memory bytes) of a kernel, from its template arguments."""
    m = re.search(r"igemm(?:_seq)?_kernel<[^,]+, ig_tile<(\d+), (\d+), (\d+), (\d+)>", name)
    if m:
        bm, bn, wm, wn = map(int, m.groups())
        pipe, ctile = 3 * (bm + bn) * 40 * 2, bm * (bn + 8) * 2
        return 32 * wm * wn, max(pipe, ctile) + bm * 8
    m = re.search(r"fa2_kernel<[^,]+, (\d+),", name)
    if m:
        d = int(m.group(1))
        bc = 32 if d > 96 else 64
        return 128, (64 + 4 * bc) * (d + 8) * 2
    return 256, 0


def occupancy(arch, regs, smem, threads):
    a = ARCH[arch]
    warps = threads // 32
    per_warp = -(-regs * 32 // 256) * 256
    by_regs = a["regs"] // (warps * per_warp) if regs else a["blocks"]
    by_smem = a["smem"] // (smem + 1024)
    by_threads = a["threads"] // threads
    blocks = min(by_regs, by_smem, by_threads, a["blocks"])
    return blocks, blocks * warps / 64


def parse_ptxas(path):
    """Per entry function: registers, static shared memory, stack and spills; a device function compiled on its own
    (__noinline__: igemm's sequence tiles) adds its stack and spills to the entry listed before it."""
    kernels = {}
    cur = props = None
    for line in open(path, errors="replace"):
        m = re.search(r"Compiling entry function '(\S+)' for '(sm_\d+)'", line)
        if m:
            cur = kernels.setdefault(m.group(1), {})
            props = m.group(1)
            continue
        m = re.search(r"Function properties for (\S+)", line)
        if m:
            props = m.group(1)
            continue
        if cur is None:
            continue
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m:
            stack, st, ld = map(int, m.groups())
            if props in kernels:
                cur["stack"], cur["spill_st"], cur["spill_ld"] = stack, st, ld
            else:
                cur.setdefault("callees", []).append(props)
                cur["stack"] = cur.get("stack", 0) + stack
                cur["spill_st"] = cur.get("spill_st", 0) + st
                cur["spill_ld"] = cur.get("spill_ld", 0) + ld
        m = re.search(r"Used (\d+) registers", line)
        if m:
            cur["regs"] = int(m.group(1))
            s = re.search(r"(\d+) bytes smem", line)
            cur["smem"] = int(s.group(1)) if s else 0
    return kernels


def parse_sass(path):
    mix = collections.defaultdict(collections.Counter)
    cur = None
    since_acquire = None  # instructions since the last gpu-scope strong load not yet followed by an L1 invalidation
    for line in open(path, errors="replace"):
        m = re.search(r"Function : (\S+)", line)
        if m:
            cur = mix[m.group(1)]
            since_acquire = None
            continue
        m = re.match(r"\s*/\*[0-9a-f]{4,}\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)", line)
        if cur is not None and m:
            op = m.group(1)
            base = op.split(".")[0]
            cur["total"] += 1
            # ld.acquire.gpu is a strong load and then CCTL.IVALL (the SM's L1 dropped, so the loads after it see what
            # other SMs wrote); __threadfence() is MEMBAR.SC.GPU; both are what igemm sequences' waits rely on
            if base == "LDG" and "STRONG.GPU" in op:
                if since_acquire is not None:
                    cur["ACQ.open"] += 1
                cur["ACQ"] += 1
                since_acquire = 0
            elif op == "CCTL.IVALL":
                cur["CCTL.IVALL"] += 1
                since_acquire = None
            elif since_acquire is not None:
                since_acquire += 1
                if since_acquire > 8:
                    cur["ACQ.open"] += 1
                    since_acquire = None
            if base == "MEMBAR" and op.endswith(".GPU"):
                cur["MEMBAR.GPU"] += 1
            if base in ("HMMA", "LDSM", "LDGSTS", "MUFU", "BAR"):
                cur[base] += 1
            if base in ("LDG", "STG", "LDS", "STS") and ".128" in op:
                cur[base + ".128"] += 1
    return mix


def main():
    d = sys.argv[1]
    rows, bad = [], []
    for ptx in sorted(glob.glob(os.path.join(d, "*.ptxas.txt"))):
        base = os.path.basename(ptx)[: -len(".ptxas.txt")]
        src, arch = base.rsplit(".", 1)
        info = parse_ptxas(ptx)
        sass_path = os.path.join(d, base + ".sass.txt")
        mix = parse_sass(sass_path) if os.path.exists(sass_path) else {}
        names = demangle(list(info))
        for mangled, k in info.items():
            name = names[mangled]
            short = name.split("(")[0].replace("void ", "")
            if not short.split("<")[0] in HOT:
                continue
            threads, dyn = launch_config(short)
            blocks, occ = occupancy(arch, k.get("regs", 0), k.get("smem", 0) + dyn, threads)
            m = collections.Counter(mix.get(mangled, collections.Counter()))
            for callee in k.get("callees", []):  # the SASS of the device functions it calls
                m.update(mix.get(callee, collections.Counter()))
            rows.append((short, arch, k, threads, dyn, blocks, occ, m, src))
            if k.get("spill_st", 0) or k.get("spill_ld", 0):
                bad.append(f"{short} ({arch}) spills {k['spill_st']}/{k['spill_ld']} bytes")
            if short.split("<")[0] in TENSOR and m["HMMA"] == 0:
                bad.append(f"{short} ({arch}) has no HMMA")
            if short.split("<")[0] in WAITS and (not m["ACQ"] or m["ACQ.open"] or not m["MEMBAR.GPU"]):
                bad.append(f"{short} ({arch}): {m['ACQ']} gpu-scope acquire loads, {m['ACQ.open']} of them without CCTL.IVALL "
                           f"after them, {m['MEMBAR.GPU']} MEMBAR.GPU")
    rows.sort(key=lambda r: (r[0].split("<")[0] not in TENSOR, r[0], r[1]))
    print("| kernel | arch | regs | smem static + dynamic | spills (st/ld) | stack | threads | blocks/SM | occupancy | "
          "HMMA | LDSM | LDGSTS | LDG/STG.128 | MUFU | SASS instr |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for short, arch, k, threads, dyn, blocks, occ, m, src in rows:
        print(f"| `{short}` | {arch} | {k.get('regs', 0)} | {k.get('smem', 0)} + {dyn} | {k.get('spill_st', 0)}/{k.get('spill_ld', 0)} | "
              f"{k.get('stack', 0)} | {threads} | {blocks} | {occ:.0%} | {m['HMMA']} | {m['LDSM']} | {m['LDGSTS']} | "
              f"{m['LDG.128']}/{m['STG.128']} | {m['MUFU']} | {m['total']} |")
    nk = len({r[0] for r in rows})
    spills = sum(r[2].get("spill_st", 0) + r[2].get("spill_ld", 0) for r in rows)
    print(f"\n{nk} kernels x {len({r[1] for r in rows})} architectures; spilled bytes in all: {spills}; "
          f"tensor-core kernels without HMMA: {sum(1 for b in bad if 'HMMA' in b)}")
    for short, arch, k, threads, dyn, blocks, occ, m, src in rows:
        if short.split("<")[0] in WAITS:
            print(f"- `{short}` ({arch}): {m['ACQ']} acquire loads (LDG.E.STRONG.GPU), each followed by CCTL.IVALL: "
                  f"{'yes' if m['ACQ'] and not m['ACQ.open'] else 'NO'}; {m['MEMBAR.GPU']} MEMBAR.*.GPU")
    if bad:
        print("\nFAILED: " + "; ".join(bad))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
