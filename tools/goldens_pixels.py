#!/usr/bin/env python3
"""goldens_pixels.py — Pillow and OpenCV image operations that inpainting preparation is built from
(tests/golden/pixels/pixels.safetensors, read by tests/test_pixels.c):

  resize/<filter>/<w>x<h>[/box]   Image.resize with LANCZOS / BICUBIC / BILINEAR, up and down, with a source box
                                  (including the zero-height box of diffusers' and A1111's "resize and fill" bands)
  gblur/<mode>/r<radius>          ImageFilter.GaussianBlur on an L and an RGB image
  cvblur/<axis>/s<sigma>          cv2.GaussianBlur (8-bit) with A1111's kernel size 2*int(2.5*sigma+0.5)+1 along x or y
  overlay                         diffusers' VaeImageProcessor.apply_overlay: the original pasted through the
                                  inverted (soft) mask into RGBa, alpha-composited over a generated picture

Inputs are stored too (src/rgb, src/grey, src/mask, src/gen). Values are 8-bit levels stored as F32.
Versions: pillow 13.0.0, opencv-python-headless 4.10.0, numpy 1.26.4 (tools/requirements.txt).
Usage: python3 tools/goldens_pixels.py
"""
import os

import cv2
import numpy as np
import PIL
from PIL import Image, ImageFilter
from safetensors.numpy import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden", "pixels")
W, H = 37, 23


def f32(img):
    return np.asarray(img, dtype=np.float32)


def main():
    os.makedirs(OUT, exist_ok=True)
    rs = np.random.RandomState(5)
    y, x = np.mgrid[0:H, 0:W]
    rgb = np.stack([x * 255 // (W - 1), y * 255 // (H - 1), (x * 7 + y * 13) % 256], -1).astype(np.uint8)
    rgb = np.clip(rgb.astype(int) + rs.randint(-40, 41, rgb.shape), 0, 255).astype(np.uint8)  # edges and texture
    grey = rs.randint(0, 256, (H, W)).astype(np.uint8)
    mask = (((x - 20.3) ** 2 / 80 + (y - 9.7) ** 2 / 30) < 1).astype(np.uint8) * 255  # an ellipse off the 8-grid
    t = {"src/rgb": f32(rgb), "src/grey": f32(grey), "src/mask": f32(mask)}
    filters = {"lanczos": Image.LANCZOS, "bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}
    sizes = [(48, 32), (16, 9), (37, 40), (5, 23)]
    for name, f in filters.items():
        for (w, h) in sizes:
            t[f"resize/{name}/{w}x{h}"] = f32(Image.fromarray(rgb).resize((w, h), f))
            if name != "bilinear":
                t[f"resize/{name}/{w}x{h}/grey"] = f32(Image.fromarray(grey).resize((w, h), f))
    # source boxes: a fractional crop, and the zero-height / zero-width bands of "resize and fill"
    boxes = {"crop": (3.5, 2.25, 30.0, 19.0, 24, 16), "top": (0, 0, W, 0, W, 5), "bottom": (0, H, W, H, W, 4),
             "left": (0, 0, 0, H, 6, H)}
    for key, (x0, y0, x1, y1, w, h) in boxes.items():
        for name, f in filters.items():
            t[f"box/{name}/{key}"] = f32(Image.fromarray(rgb).resize((w, h), f, box=(x0, y0, x1, y1)))
            t[f"box/{name}/{key}/shape"] = np.array([x0, y0, x1, y1, w, h], np.float32)
    for r in (1, 2.5, 4, 9, 33):
        t[f"gblur/L/r{r}"] = f32(Image.fromarray(mask).filter(ImageFilter.GaussianBlur(r)))
        t[f"gblur/RGB/r{r}"] = f32(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(r)))
    for s in (1, 4, 7):
        k = 2 * int(2.5 * s + 0.5) + 1  # AUTOMATIC1111's mask blur kernel size
        t[f"cvblur/x/s{s}"] = f32(cv2.GaussianBlur(mask, (k, 1), s))
        t[f"cvblur/y/s{s}"] = f32(cv2.GaussianBlur(mask, (1, k), s))
    # overlay through a soft mask (the blurred ellipse), as diffusers' apply_overlay composes it
    from diffusers.image_processor import VaeImageProcessor
    soft = Image.fromarray(mask).filter(ImageFilter.GaussianBlur(3))
    gen = Image.fromarray(np.clip(255 - rgb.astype(int) + rs.randint(-20, 21, rgb.shape), 0, 255).astype(np.uint8))
    out = VaeImageProcessor().apply_overlay(soft, Image.fromarray(rgb), gen)
    t["src/soft"] = f32(soft)
    t["src/gen"] = f32(gen)
    t["overlay"] = f32(out)
    meta = {"versions": f"pillow {PIL.__version__}, opencv {cv2.__version__}, numpy {np.__version__}",
            "made_by": "tools/goldens_pixels.py"}
    save_file({k: np.ascontiguousarray(v) for k, v in t.items()}, os.path.join(OUT, "pixels.safetensors"), metadata=meta)
    print(len(t), "tensors,", os.path.getsize(os.path.join(OUT, "pixels.safetensors")), "bytes")


if __name__ == "__main__":
    main()
