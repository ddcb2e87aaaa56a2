"""eval_demo.py — checks that the demo model draws what it is asked for: renders prompts with diffusers'
StableDiffusionPipeline (f32, CPU) and classifies the pictures with tools/shapes.py's classifier (the Python twin
of tests/shapes_classify.c).

    python tools/eval_demo.py --model samples/models/shapes --samplers euler_a:20:6,dpmpp2m:20:6 [--random 96]

Prints per-attribute accuracy on the fixed end-to-end prompt list (shapes.e2e_prompts) and, with --random N, on N
held-out scenes drawn from the training distribution with a seed the training never used.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shapes  # noqa: E402

SAMPLERS = {
    "euler_a": "EulerAncestralDiscreteScheduler",
    "euler": "EulerDiscreteScheduler",
    "dpmpp2m": "DPMSolverMultistepScheduler",
    "ddim": "DDIMScheduler",
    "pndm": "PNDMScheduler",
    "unipc": "UniPCMultistepScheduler",
}


def make_pipe(model):
    from diffusers import StableDiffusionPipeline
    pipe = StableDiffusionPipeline.from_pretrained(model, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def set_sampler(pipe, name):
    import diffusers
    cls = getattr(diffusers, SAMPLERS[name])
    pipe.scheduler = cls.from_config(pipe.scheduler.config)


def render(pipe, prompt, seed, steps, cfg):
    g = torch.Generator().manual_seed(seed)
    out = pipe(prompt, height=128, width=128, num_inference_steps=steps, guidance_scale=cfg, generator=g,
               output_type="np")
    return (out.images[0] * 255).round().astype(np.uint8)


def evaluate(pipe, items, steps, cfg, dump=None):
    res = []
    for k, (prompt, seed) in enumerate(items):
        img = render(pipe, prompt, seed, steps, cfg)
        want = shapes.parse_caption(prompt)
        got = shapes.classify(img)
        res.append((want, got))
        if dump is not None:
            dump.append(img)
    return shapes.score(res), res


def save_grid(imgs, path, cols=8):
    from PIL import Image
    rows = []
    for r in range(0, len(imgs), cols):
        row = list(imgs[r:r + cols])
        row += [np.zeros_like(imgs[0])] * (cols - len(row))
        rows.append(np.concatenate(row, 1))
    Image.fromarray(np.concatenate(rows, 0)).save(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "samples",
                                                    "models", "shapes"))
    ap.add_argument("--samplers", default="euler_a:20:6,dpmpp2m:20:6", help="name:steps:cfg,...")
    ap.add_argument("--random", type=int, default=0, help="also this many held-out random scenes")
    ap.add_argument("--grid", help="save the e2e pictures of the first sampler to this PNG")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pipe = make_pipe(args.model)
    e2e = shapes.e2e_prompts()
    held = [(shapes.caption(shapes.scene_at(777, i)), 5000 + i) for i in range(args.random)]
    report = {}
    for k, spec in enumerate(args.samplers.split(",")):
        name, steps, cfg = spec.split(":")
        set_sampler(pipe, name)
        t0 = time.time()
        dump = [] if (args.grid and k == 0) else None
        acc, res = evaluate(pipe, e2e, int(steps), float(cfg), dump)
        line = {"e2e": acc}
        if args.verbose:
            for (p, s), (w, g) in zip(e2e, res):
                bad = [a for a in ("colour", "background", "shape", "position", "size") if w[a] != g[a]]
                if bad:
                    print("  miss %-55s seed %4d: %s" % (p, s, ", ".join("%s=%s" % (a, g[a]) for a in bad)))
        if held:
            line["heldout"], _ = evaluate(pipe, held, int(steps), float(cfg))
        line["seconds"] = round(time.time() - t0, 1)
        report[spec] = line
        print(spec, json.dumps(line), flush=True)
        if dump:
            save_grid(dump, args.grid)
    return report


if __name__ == "__main__":
    main()
