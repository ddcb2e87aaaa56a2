#!/usr/bin/env python3
"""fit_latent2rgb.py — the latent -> RGB preview factors of the bundled demo model's own latent space.

SD 1.x/2.x and SDXL previews use published factors (vae/latent2rgb.c); the demo model's VAE was trained from scratch
(tools/train_demo.py), so its latent space needs factors of its own. They are fitted here by least squares on what
previews show: latents the demo model samples (diffusers' pipeline with the model's defaults: Euler a, 20 steps,
guidance 3, captions of shapes-world scenes from a seed stream the model was not trained on), each latent pixel's
4 channels (+ 1) mapped to the mean colour of the 8x8 block the VAE decodes it to, in [-1, 1]. A quarter of the
renders is held out to report the mean-colour error of whole pictures first. The result goes into
samples/models/shapes/vae/config.json as "_sd_latent_rgb" (diffusers ignores keys starting with "_").
tests/test_preview.c checks the factors against full decodes of the C engine's own renders (other prompts, seeds).

Versions: torch 2.15.0, diffusers 0.42.1 (tools/requirements.txt).
Usage: python3 tools/fit_latent2rgb.py [--count 256]
"""
import argparse
import json
import os

import torch
import torch.nn.functional as F

import shapes

ROOT = os.path.join(os.path.dirname(__file__), "..")
MODEL_DIR = os.path.join(ROOT, "samples", "models", "shapes")
VAE_DIR = os.path.join(MODEL_DIR, "vae")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=256)
    ap.add_argument("--seed", type=int, default=9001)
    args = ap.parse_args()
    torch.set_num_threads(2)
    from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionPipeline
    pipe = StableDiffusionPipeline.from_pretrained(MODEL_DIR, torch_dtype=torch.float32)
    pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    vae = pipe.vae
    sf = vae.config.scaling_factor
    xs, ys = [], []
    with torch.no_grad():
        for i0 in range(0, args.count, 16):
            idx = range(i0, min(args.count, i0 + 16))
            prompts = [shapes.caption(shapes.scene_at(args.seed, i)) for i in idx]
            g = torch.Generator().manual_seed(args.seed + i0)
            z = pipe(prompts, height=128, width=128, num_inference_steps=20, guidance_scale=3.0, generator=g,
                     output_type="latent").images
            dec = vae.decode(z / sf).sample.clamp(-1, 1)
            f = dec.shape[-1] // z.shape[-1]
            xs.append(z.permute(0, 2, 3, 1).reshape(len(idx), -1, z.shape[1]))
            ys.append(F.avg_pool2d(dec, f).permute(0, 2, 3, 1).reshape(len(idx), -1, 3))
    X = torch.cat(xs).double()  # [pictures, pixels, channels]
    Y = torch.cat(ys).double()

    def fit(X, Y):
        A = torch.cat([X.reshape(-1, X.shape[-1]), torch.ones(X.shape[0] * X.shape[1], 1, dtype=X.dtype)], 1)
        return torch.linalg.lstsq(A, Y.reshape(-1, 3)).solution  # [channels + 1, 3]

    def apply(sol, X):
        return (X @ sol[:-1] + sol[-1]).clamp(-1, 1)

    k = X.shape[0] * 3 // 4
    sol = fit(X[:k], Y[:k])
    px = ((apply(sol, X[k:]) - Y[k:]).abs() * 127.5)
    mean = ((apply(sol, X[k:]).mean(1) - Y[k:].mean(1)).abs() * 127.5)
    print(f"held out ({X.shape[0] - k} renders): per latent pixel mean abs error {px.mean():.1f}/255; "
          f"mean colour of a picture: mean error {mean.mean():.1f}/255, worst {mean.max():.1f}/255")
    sol = fit(X, Y)
    factors = [[round(float(v), 6) for v in row] for row in sol[:-1].tolist()]
    bias = [round(float(v), 6) for v in sol[-1].tolist()]
    path = os.path.join(VAE_DIR, "config.json")
    with open(path) as fp:
        conf = json.load(fp)
    conf["_sd_latent_rgb"] = {"factors": factors, "bias": bias,
                              "made_by": f"tools/fit_latent2rgb.py --count {args.count} --seed {args.seed}"}
    with open(path, "w") as fp:
        json.dump(conf, fp, indent=2, sort_keys=True)
        fp.write("\n")
    print("factors", factors, "bias", bias)


if __name__ == "__main__":
    main()
