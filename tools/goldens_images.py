#!/usr/bin/env python3
"""goldens_images.py — small image files of every kind sd_image_load decodes, and their pixels (tests/golden/images/).

Each picture is random pixels (odd sizes, so chroma subsampling and row padding meet ragged edges), written by
Pillow or, for what Pillow cannot write (1/2/4-bit and 16-bit PNG, Adam7 interlacing, palette transparency), by the
small PNG encoder below. The expected pixels come from the source arrays for the lossless formats (a 16-bit sample
becomes its high byte) and from Pillow's own decoders for the lossy ones (its JPEG / WebP libraries are its bundled
copies, not the system's). Grey is Pillow's convert("L") of the RGB pixels; RGB drops alpha. Every file is also
decoded by Pillow here and must agree with the expected pixels, which checks the encoder below.

Writes tests/golden/images/<name>.<ext> and tests/golden/images/expected.safetensors with, per name, "<name>.rgb"
[H, W, 3] and "<name>.grey" [H, W] (U8). Versions: Pillow 13.0.0, numpy 1.26.4 (tools/requirements.txt).

Usage: python3 tools/goldens_images.py
"""
import io
import os
import struct
import zlib

import numpy as np
import PIL
from PIL import Image, features
from safetensors.numpy import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "golden", "images")
rng = np.random.default_rng(17)


# ---- a minimal PNG encoder (filter 0 on every row) ----------------------------------------------------------
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_rows(samples, depth):
    """samples [H, W*channels] of ints < 2^depth -> filtered scanlines (filter byte 0 + packed row)."""
    out = b""
    for row in samples:
        if depth == 16:
            data = row.astype(">u2").tobytes()
        elif depth == 8:
            data = row.astype(np.uint8).tobytes()
        else:  # 1, 2, 4: big-endian bit packing, the last byte padded with zeros
            per = 8 // depth
            padded = np.concatenate([row, np.zeros((-len(row)) % per, dtype=row.dtype)]).reshape(-1, per)
            shifts = np.arange(per - 1, -1, -1) * depth
            data = (padded.astype(np.uint16) << shifts).sum(axis=1).astype(np.uint8).tobytes()
        out += b"\x00" + data
    return out


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png(pix, depth, color_type, palette=None, trns=None, interlace=False):
    """pix [H, W, C] ints; color_type as in the PNG spec (0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA)."""
    h, w, c = pix.shape
    if interlace:  # Adam7: seven sub-images, each filtered on its own
        raw = b""
        for x0, y0, dx, dy in ADAM7:
            sub = pix[y0::dy, x0::dx]
            if sub.size:
                raw += pack_rows(sub.reshape(sub.shape[0], -1), depth)
    else:
        raw = pack_rows(pix.reshape(h, w * c), depth)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 1 if interlace else 0)
    body = chunk(b"IHDR", ihdr)
    if palette is not None:
        body += chunk(b"PLTE", bytes(np.asarray(palette, dtype=np.uint8).reshape(-1)))
    if trns is not None:
        body += chunk(b"tRNS", trns)
    body += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


# ---- expected pixels ------------------------------------------------------------------------------------------
def grey_of(rgb):
    """Pillow's convert("L"), computed here from the RGB pixels."""
    img = Image.fromarray(rgb.astype(np.uint8), "RGB").convert("L")
    return np.asarray(img)


def rnd(h, w, c, hi=256):
    return rng.integers(0, hi, size=(h, w, c), dtype=np.int64)


cases = {}  # name -> (file bytes, extension, rgb [H, W, 3] uint8, grey [H, W] uint8 or None for "from rgb")


def add(name, ext, data, rgb, grey=None):
    rgb = rgb.astype(np.uint8)
    cases[name] = (data, ext, rgb, grey_of(rgb) if grey is None else grey.astype(np.uint8))


def pil_bytes(img, fmt, **kw):
    b = io.BytesIO()
    img.save(b, fmt, **kw)
    return b.getvalue()


def main():
    # PNG, 8-bit: RGB, RGBA (alpha dropped), grey, grey+alpha -- written by Pillow
    x = rnd(7, 13, 3)
    add("png_rgb8", "png", pil_bytes(Image.fromarray(x.astype(np.uint8), "RGB"), "PNG"), x)
    x = rnd(9, 11, 4)
    add("png_rgba8", "png", pil_bytes(Image.fromarray(x.astype(np.uint8), "RGBA"), "PNG"), x[..., :3])
    g = rnd(10, 7, 1)
    add("png_grey8", "png", pil_bytes(Image.fromarray(g[..., 0].astype(np.uint8), "L"), "PNG"), np.repeat(g, 3, 2), g[..., 0])
    x = rnd(5, 9, 2)
    add("png_greyalpha8", "png", pil_bytes(Image.fromarray(x.astype(np.uint8), "LA"), "PNG"), np.repeat(x[..., :1], 3, 2), x[..., 0])
    # PNG written by the encoder above: 1/2/4-bit grey (expanded: v * 255 / (2^d - 1)), 16-bit RGB / grey+alpha
    # (high byte), palette with transparency (colours only), Adam7-interlaced RGB
    for d in (1, 2, 4):
        v = rnd(6, 11, 1, 1 << d)
        e = v * (255 // ((1 << d) - 1))
        add(f"png_grey{d}", "png", png(v, d, 0), np.repeat(e, 3, 2), e[..., 0])
    x = rnd(6, 7, 3, 1 << 16)
    add("png_rgb16", "png", png(x, 16, 2), x >> 8)
    x = rnd(5, 6, 2, 1 << 16)
    add("png_greyalpha16", "png", png(x, 16, 4), np.repeat(x[..., :1] >> 8, 3, 2), x[..., 0] >> 8)
    pal = rnd(1, 13, 3)[0]
    idx = rnd(8, 9, 1, 13)
    add("png_palette4", "png", png(idx, 4, 3, palette=pal, trns=bytes(range(0, 260, 20))[:13]), pal[idx[..., 0]])
    x = rnd(11, 10, 3)
    add("png_interlaced", "png", png(x, 8, 2, interlace=True), x)
    # JPEG: colour 4:2:0 and 4:4:4, progressive, grey, CMYK (Adobe, inverted) -- decoded by Pillow
    x = rnd(15, 21, 3).astype(np.uint8)
    for name, kw in (("jpeg_420", {}), ("jpeg_444", {"subsampling": 0}), ("jpeg_progressive", {"progressive": True})):
        data = pil_bytes(Image.fromarray(x, "RGB"), "JPEG", quality=90, **kw)
        dec = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        add(name, "jpg", data, dec)
    g = rnd(13, 17, 1).astype(np.uint8)[..., 0]
    data = pil_bytes(Image.fromarray(g, "L"), "JPEG", quality=90)
    dec = np.asarray(Image.open(io.BytesIO(data)).convert("L"))
    add("jpeg_grey", "jpg", data, np.repeat(dec[..., None], 3, 2), dec)
    c = rnd(9, 14, 4).astype(np.uint8)
    data = pil_bytes(Image.fromarray(c, "CMYK"), "JPEG", quality=95)
    add("jpeg_cmyk", "jpg", data, np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
    # WebP: lossless RGB and RGBA (exact), lossy (Pillow's decode)
    x = rnd(9, 14, 3).astype(np.uint8)
    add("webp_lossless", "webp", pil_bytes(Image.fromarray(x, "RGB"), "WEBP", lossless=True), x)
    x = rnd(7, 12, 4).astype(np.uint8)
    add("webp_lossless_alpha", "webp", pil_bytes(Image.fromarray(x, "RGBA"), "WEBP", lossless=True, exact=True), x[..., :3])
    x = rnd(16, 19, 3).astype(np.uint8)
    data = pil_bytes(Image.fromarray(x, "RGB"), "WEBP", quality=80)
    add("webp_lossy", "webp", data, np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
    # BMP: 24-bit colour, 8-bit palette, 1-bit
    x = rnd(6, 9, 3)
    add("bmp_rgb24", "bmp", pil_bytes(Image.fromarray(x.astype(np.uint8), "RGB"), "BMP"), x)
    pal = rnd(1, 256, 3)[0]
    idx = rnd(7, 5, 1, 256)
    im = Image.fromarray(idx[..., 0].astype(np.uint8), "P")
    im.putpalette(pal.astype(np.uint8).reshape(-1).tolist())
    add("bmp_palette8", "bmp", pil_bytes(im, "BMP"), pal[idx[..., 0]])
    b = rnd(5, 19, 1, 2)[..., 0] * 255
    add("bmp_mono1", "bmp", pil_bytes(Image.fromarray(b.astype(np.uint8), "L").convert("1"), "BMP"), np.repeat(b[..., None], 3, 2), b)

    os.makedirs(OUT, exist_ok=True)
    tensors = {}
    for name, (data, ext, rgb, grey) in cases.items():
        # Pillow must read each file as expected: a check of the encoder above and of the expectations
        got = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")) if not name.endswith("16") else None
        if got is not None and not ext == "jpg" and name != "webp_lossy":
            assert (got == rgb).all(), name
        with open(os.path.join(OUT, f"{name}.{ext}"), "wb") as f:
            f.write(data)
        tensors[f"{name}.rgb"] = np.ascontiguousarray(rgb)
        tensors[f"{name}.grey"] = np.ascontiguousarray(grey)
    meta = {"made_by": "tools/goldens_images.py", "pillow": PIL.__version__, "numpy": np.__version__,
            "pillow_libjpeg_turbo": str(features.version("libjpeg_turbo")), "pillow_webp": str(features.version("webp"))}
    save_file(tensors, os.path.join(OUT, "expected.safetensors"), metadata=meta)
    print(f"{len(cases)} images in {OUT}")


if __name__ == "__main__":
    main()
