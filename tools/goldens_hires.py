#!/usr/bin/env python3
"""goldens_hires.py — golden data for the hires fix's resamplers (tests/golden/hires/upscale.safetensors).

AUTOMATIC1111 resizes latents with torch.nn.functional.interpolate(size=..., mode=..., antialias=False) and pictures
with PIL's Image.resize(..., Image.LANCZOS); the engine reimplements both (pipeline/upscale.c). Here:
  latent.x [1, 5, 7, 4] (NHWC) and latent.<mode>.<h>x<w> = interpolate to (h, w) for bilinear, bicubic,
  nearest-exact at 2x, 1.5x (rounded down) and a ragged size;
  picture.x [20, 24, 3] (uint8 values stored as float32: smooth gradients, hard edges, noise) and
  picture.<w>x<h> = PIL LANCZOS resizes up, down and along one axis only.

Versions: torch 2.15.0, pillow 13.0.0 (tools/requirements.txt).
Usage: python3 tools/goldens_hires.py
"""
import os

import numpy as np
import PIL
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "golden", "hires")
META = {"torch": torch.__version__, "pillow": PIL.__version__, "made_by": "tools/goldens_hires.py"}


def main():
    torch.manual_seed(0)
    out = {}
    x = torch.randn(1, 4, 5, 7) * 1.5
    out["latent.x"] = x.permute(0, 2, 3, 1).contiguous()
    for mode in ("bilinear", "bicubic", "nearest-exact"):
        for size in ((10, 14), (7, 10), (8, 11), (5, 9)):
            y = F.interpolate(x, size=size, mode=mode, antialias=False)
            out[f"latent.{mode}.{size[0]}x{size[1]}"] = y.permute(0, 2, 3, 1).contiguous()
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:20, 0:24]
    pic = np.stack([xx * 10, yy * 12, (xx + yy) * 6], -1).astype(np.float64)
    pic[5:12, 7:15] = [250, 20, 30]                                  # a hard-edged block
    pic += rng.normal(0, 18, pic.shape)
    pic = np.clip(pic, 0, 255).astype(np.uint8)
    out["picture.x"] = torch.from_numpy(pic.astype(np.float32))
    im = Image.fromarray(pic)
    for w, h in ((48, 40), (37, 29), (13, 11), (24, 45), (61, 20)):
        r = np.asarray(im.resize((w, h), Image.LANCZOS))
        out[f"picture.{w}x{h}"] = torch.from_numpy(r.astype(np.float32))
    os.makedirs(OUT, exist_ok=True)
    save_file({k: v.float().contiguous() for k, v in out.items()}, os.path.join(OUT, "upscale.safetensors"), metadata=META)
    print(len(out), "tensors")


if __name__ == "__main__":
    main()
