"""bench_peers.py — the peers `make bench` is compared with, timed on this machine: PyTorch (diffusers' modules) and
OpenVINO, f32, on random-weight SD 1.5 modules with the real configs (UNet2DConditionModel, AutoencoderKL).

Stages as `make bench` times them (tests/bench/bench.c):
    unet512   one guided UNet step at 512²: a batch of 2 latents 4×64×64, 77 context tokens of 768
    vae512    the VAE decode of one 4×64×64 latent to 512²
Each stage: one warm-up run, then the median of --runs, wall-clock and process CPU seconds (the CPU seconds are what a
shared machine can compare: other processes do not add to them).

Usage:  python tools/bench_peers.py --threads 1 --runs 3 [--stages unet512,vae512] [--peers torch,openvino] [--isa avx2]
--isa avx2 limits the peers to AVX2 + FMA (ATEN_CPU_CAPABILITY for PyTorch's own kernels, ONEDNN_MAX_CPU_ISA for
oneDNN, which PyTorch's convolutions and OpenVINO's CPU plugin use), as `SD_CPU_LEVEL=avx2 make bench` limits the
engine: what a CPU without AVX-512 runs.
Needs torch, diffusers (tools/requirements.txt) and openvino from PyPI. Prints one Markdown row per peer and stage.
"""
import argparse
import os
import statistics
import sys
import time

if "--isa" in sys.argv and sys.argv[sys.argv.index("--isa") + 1:][:1] == ["avx2"]:
    # read when the libraries load: set before torch and openvino are imported
    os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")
    os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")

import torch  # noqa: E402

UNET = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
            block_out_channels=(320, 640, 1280, 1280),
            down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32)
VAE = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512),
           down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
           layers_per_block=2, norm_num_groups=32, sample_size=512)


def timed(fn, runs):
    fn()  # warm-up (and OpenVINO's first-inference setup)
    wall, cpu = [], []
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


class Decoder(torch.nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, z):
        return self.vae.decode(z, return_dict=False)[0]


class Unet(torch.nn.Module):
    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, x, t, ctx):
        return self.unet(x, t, ctx, return_dict=False)[0]


def modules(stage):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    torch.manual_seed(1)
    if stage == "unet512":
        m = Unet(UNet2DConditionModel(**UNET)).eval()
        inputs = (torch.randn(2, 4, 64, 64), torch.tensor([500, 500]), torch.randn(2, 77, 768))
    else:
        m = Decoder(AutoencoderKL(**VAE)).eval()
        inputs = (torch.randn(1, 4, 64, 64),)
    return m, inputs


def run_torch(stage, runs):
    m, inputs = modules(stage)
    with torch.inference_mode():
        return timed(lambda: m(*inputs), runs)


def run_openvino(stage, runs, threads):
    import openvino as ov
    m, inputs = modules(stage)
    with torch.no_grad():
        om = ov.convert_model(m, example_input=inputs)
    # f32 as the others: on a CPU with AVX-512 BF16 or AMX OpenVINO would otherwise compute in bf16
    cm = ov.Core().compile_model(om, "CPU", {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads,
                                            "PERFORMANCE_HINT": "LATENCY"})
    req = cm.create_infer_request()
    feed = [x.numpy() for x in inputs]
    return timed(lambda: req.infer(feed), runs), ov.get_version()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--stages", default="unet512,vae512")
    ap.add_argument("--peers", default="torch,openvino")
    ap.add_argument("--isa", choices=["native", "avx2"], default="native", help="read before the imports, see above")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import diffusers
    print("torch %s (its kernels: %s; ONEDNN_MAX_CPU_ISA=%s), diffusers %s, %d threads, median of %d runs" % (
        torch.__version__, torch.backends.cpu.get_cpu_capability(), os.environ.get("ONEDNN_MAX_CPU_ISA", "unset"),
        diffusers.__version__, args.threads, args.runs))
    print("| peer | stage | wall s | CPU s |\n|---|---|---|---|")
    for stage in args.stages.split(","):
        for peer in args.peers.split(","):
            if peer == "torch":
                (w, c), name = run_torch(stage, args.runs), "PyTorch f32"
            else:
                try:
                    (w, c), ver = run_openvino(stage, args.runs, args.threads)
                except ImportError:
                    print("| OpenVINO | %s | not installed | |" % stage)
                    continue
                name = "OpenVINO %s f32" % ver.split("-")[0]
            print("| %s | %s | %.2f | %.2f |" % (name, stage, w, c))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
