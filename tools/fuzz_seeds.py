#!/usr/bin/env python3
"""fuzz_seeds.py — the hand-made seeds of tests/fuzz/corpus/ that no project file provides: PNGs carrying text
chunks, infotext in both formats, tiny safetensors files, prompts, job lines, variation syntax and a tiny tokenizer.
The other seeds are copies of the project's own files (tests/golden/images/, tests/data/hostile/, model configs,
samples/jobs/). The committed corpus is these seeds plus what the fuzzers found, minimised with -merge=1
(tests/fuzz/README.md). Versions: Pillow 13.0.0, numpy 1.26.4, safetensors 0.8.0 (tools/requirements.txt).

Usage: python3 tools/fuzz_seeds.py   (writes into tests/fuzz/corpus/<harness>/)
       python3 tools/fuzz_seeds.py server_request   (only the server's request bodies: the standard library suffices)
"""
import base64
import io
import json
import os
import struct
import sys
import zlib

CORPUS = os.path.join(os.path.dirname(__file__), "..", "tests", "fuzz", "corpus")


def put(harness, name, data):
    d = os.path.join(CORPUS, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


A1111 = ("a (red:1.3) star, [blue] background\nNegative prompt: blurry, \"quoted\"\nSteps: 20, Sampler: DPM++ 2M, "
         "Schedule type: Karras, CFG scale: 7.5, Seed: 1234, Size: 512x768, Model hash: 6ce0161689, "
         "Model: \"name, with: comma\", Denoising strength: 0.6, Clip skip: 2, RNG: CPU, Version: v1.10.1")
OURS = json.dumps({"prompt": "a red star", "negative_prompt": "", "width": 64, "height": 48, "steps": 4,
                   "cfg_scale": 3.5, "guidance_rescale": 0.0, "sampler": "euler_a", "scheduler": "karras",
                   "convention": "diffusers", "eta": 0.0, "seed": "18446744073709551615", "rng": "cpu",
                   "clip_skip": 2, "strength": 0.75, "variation_seed": "7", "variation_strength": 0.25,
                   "model": "shapes", "version": "0.1.0"})


def png_with_text(chunks, size=(3, 2)):
    from PIL import Image, PngImagePlugin
    img = Image.new("RGB", size, (200, 30, 60))
    info = PngImagePlugin.PngInfo()
    for key, value, kind in chunks:
        if kind == "zTXt":
            info.add_text(key, value, zip=True)
        elif kind == "iTXt":
            info.add_itxt(key, value, zip=False)
        else:
            info.add_text(key, value)
    b = io.BytesIO()
    img.save(b, "PNG", pnginfo=info)
    return b.getvalue()


def text_after_idat(png):
    """Moves every text chunk after the image data, where libpng's png_read_end finds it."""
    pos, head, text, tail = 8, [], [], []
    while pos < len(png):
        n = struct.unpack(">I", png[pos:pos + 4])[0]
        c = png[pos:pos + 12 + n]
        kind = c[4:8]
        (text if kind in (b"tEXt", b"zTXt", b"iTXt") else tail if kind == b"IEND" else head).append(c)
        pos += 12 + n
    return png[:8] + b"".join(head + text + tail)


def png_encode(w, h, ch, pixels):
    """An 8-bit grey (ch 1) or RGB (ch 3) PNG, as tests/server/sdtest.py writes them."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    raw = b"".join(b"\0" + pixels[y * w * ch:(y + 1) * w * ch] for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, {1: 0, 3: 2}[ch], 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def server_request_seeds():
    """`sd serve` bodies (fuzz_server_request: first byte 0 txt2img, 1 img2img, 2 options, 3 OpenAI), the valid
    requests of tests/server/test_http.py and test_clients.py (webuiapi sends every A1111 field)."""
    def body(route, name, obj):
        put("server_request", name, bytes([route]) + json.dumps(obj).encode())
    prompt = "a large red star on a blue background, centre"
    base = {"prompt": prompt, "seed": 11, "steps": 3, "width": 64, "height": 64, "sampler_name": "Euler", "cfg_scale": 5}
    body(0, "txt2img.json", dict(base, negative_prompt="green"))
    body(0, "txt2img_batch.json", dict(base, batch_size=2, n_iter=2, force_task_id="A", send_images=False))
    body(0, "txt2img_overrides.json", dict(base, sampler_name="DPM++ 2M Karras", subseed=7, subseed_strength=0.25, eta=0.5,
                                           override_settings={"sd_model_checkpoint": "shapes", "CLIP_stop_at_last_layers": 2,
                                                              "eta_ancestral": 0.5, "eta_ddim": 0.1, "randn_source": "CPU",
                                                              "samples_format": "png"}))
    body(0, "txt2img_webuiapi.json", {  # every field at its do-nothing value, as webuiapi sends them
        "prompt": prompt, "negative_prompt": "", "styles": [], "seed": -1, "subseed": -1,
        "subseed_strength": 0.0, "seed_resize_from_h": 0, "seed_resize_from_w": 0, "sampler_name": "Euler a",
        "scheduler": "Automatic", "batch_size": 1, "n_iter": 1, "steps": 2, "cfg_scale": 7.0, "width": 32, "height": 32,
        "restore_faces": False, "tiling": False, "do_not_save_samples": False, "do_not_save_grid": False, "eta": 1.0,
        "denoising_strength": 0.7, "s_min_uncond": 0, "s_churn": 0, "s_tmax": 0, "s_tmin": 0, "s_noise": 1,
        "override_settings": {}, "override_settings_restore_afterwards": True, "refiner_checkpoint": None,
        "refiner_switch_at": None, "disable_extra_networks": False, "comments": {}, "enable_hr": False,
        "firstphase_width": 0, "firstphase_height": 0, "hr_scale": 2, "hr_upscaler": "Latent", "hr_second_pass_steps": 0,
        "hr_resize_x": 0, "hr_resize_y": 0, "hr_prompt": "", "hr_negative_prompt": "", "sampler_index": "Euler a",
        "script_name": None, "script_args": [], "send_images": True, "save_images": False, "alwayson_scripts": {}})
    body(0, "txt2img_lora.json", dict(base, prompt=prompt + " <lora:style:0.8>"))  # refused: no --lora-model-dir
    init = png_encode(8, 8, 3, bytes((x * 37 + y * 11) & 0xFF for y in range(8) for x in range(8) for _ in range(3)))
    mask = png_encode(8, 8, 1, bytes(255 if 2 <= x < 6 and 2 <= y < 6 else 200 if x == 1 else 0 for y in range(8) for x in range(8)))
    i2i = dict(base, width=8, height=8, denoising_strength=0.6,
               init_images=["data:image/png;base64," + base64.b64encode(init).decode()])
    body(1, "img2img.json", i2i)
    body(1, "img2img_mask.json", dict(i2i, mask=base64.b64encode(mask).decode(), mask_blur=2, inpainting_fill=2,
                                      inpaint_full_res=1, inpaint_full_res_padding=6, mask_round=True))
    body(1, "img2img_mask_invert.json", dict(i2i, mask=base64.b64encode(mask).decode(), inpainting_mask_invert=1,
                                             inpaint_full_res=False, inpainting_fill=1, mask_blur_x=3, mask_blur_y=3,
                                             resize_mode=0, initial_noise_multiplier=1.0, include_init_images=False))
    body(2, "options.json", {"sd_model_checkpoint": "shapes", "CLIP_stop_at_last_layers": 1})
    body(2, "options_all.json", {"sd_model_checkpoint": "shapes [0123456789]", "CLIP_stop_at_last_layers": 2,
                                 "eta_ddim": 0.2, "eta_ancestral": 1, "randn_source": "CPU", "samples_format": "png"})
    body(3, "openai.json", {"prompt": prompt, "n": 2, "size": "64x64", "seed": 9, "steps": 3})
    body(3, "openai_extra.json", {"prompt": prompt, "model": "shapes", "n": 1, "size": "auto", "response_format": "b64_json",
                                  "output_format": "png", "negative_prompt": "green", "steps": 2, "cfg_scale": 4.5,
                                  "sampler": "euler_a", "scheduler": "karras", "quality": "standard", "user": None})


def main():
    import numpy as np
    from safetensors.numpy import save
    server_request_seeds()
    # PNG text chunks: A1111 tEXt, our iTXt (UTF-8), compressed, after the pixels
    put("png_text", "a1111_text.png", png_with_text([("parameters", A1111, "tEXt")]))
    put("png_text", "sd_itxt.png", png_with_text([("parameters", A1111, "tEXt"), ("sd", OURS.replace("red", "\u732b"), "iTXt")]))
    put("png_text", "ztxt.png", png_with_text([("parameters", A1111, "zTXt"), ("Comment", "caf\xe9", "tEXt")]))
    put("png_text", "after_idat.png", text_after_idat(png_with_text([("sd", OURS, "tEXt")], (9, 7))))
    # infotext: first byte odd = our JSON, even = A1111 text
    put("infotext", "ours.json", b"\x01" + OURS.encode())
    put("infotext", "a1111.txt", b"\x00" + A1111.encode())
    put("infotext", "a1111_no_neg.txt", b"\x00a cat\nSteps: 4, Seed: 3, Size: 64x64")
    put("infotext", "a1111_only_neg.txt", b"\x00Negative prompt: ugly\nSteps: 4, CFG scale: 1")
    # safetensors: each dtype, an empty tensor, metadata, header padding
    rng = np.random.default_rng(3)
    put("safetensors", "floats.safetensors", save({"a": rng.standard_normal((2, 3)).astype(np.float32),
                                                   "b": rng.standard_normal(5).astype(np.float16),
                                                   "c": np.zeros((0, 4), np.float64)}, metadata={"format": "pt"}))
    put("safetensors", "ints.safetensors", save({"i": np.arange(6, dtype=np.int64).reshape(2, 3), "u": np.arange(3, dtype=np.uint8),
                                                 "t": np.array([True, False])}))
    hdr = b'{"x":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]}}    '
    put("safetensors", "bf16_padded.safetensors", struct.pack("<Q", len(hdr)) + hdr + bytes(8))
    # prompts: first byte = tokenizer flags / options
    for i, p in enumerate(["a (red:1.3) circle, ((big)) [blue:0.5] BREAK on a \\(white\\) background",
                           "<|startoftext|>caf\u00e9 \u732b &amp; &lt;b&gt; !!! \u00c9T\u00c9 ftfy\u2019s \ufb01ne",
                           "(((unclosed [brackets (x:1.2.3)", "word " * 90 + ", comma, " * 10]):
        put("prompt", f"prompt{i}.txt", bytes([i * 0x1b & 0xff]) + p.encode())
    # job lines and prompt variations
    put("jobs", "keys.jsonl", '{"prompt": "a {red|blue} star", "seeds": "1:3,7", "steps": 4, "sampler": "euler_a", '
                              '"size": "64x48", "cfg_scale": 3, "negative_prompt": "x", "name": "n", "output": "{seed}-{name}.png"}\n'
                              '# comment\n\n{"prompt": "b", "seed": 18446744073709551615, "count": 2, "init_image": "i.png", "strength": 0.5}\n')
    put("expand", "nested.txt", "a {big {red|green}|small} {cat|dog|} \\{literal\\} | bar")
    put("expand", "seeds.txt", "100:115,7,18446744073709551615")
    put("expand", "empty_groups.txt", "{}{|}{{}}x")
    # a tokenizer folder: vocab.json NUL merges.txt
    vocab = {"a": 0, "b": 1, "ab</w>": 4, "b</w>": 5, "<|startoftext|>": 2, "<|endoftext|>": 3, "!": 6, "a</w>": 7}
    put("tokenizer_files", "tiny.txt", json.dumps(vocab).encode() + b"\x00#version: 0.2\na b</w>\r\na b\n")
    print("seeds written under", CORPUS)


if __name__ == "__main__":
    if sys.argv[1:] == ["server_request"]:
        server_request_seeds()
    else:
        main()
