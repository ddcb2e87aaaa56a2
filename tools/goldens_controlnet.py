#!/usr/bin/env python3
"""goldens_controlnet.py — ControlNet goldens (tests/golden/controlnet/): diffusers' ControlNet pipelines on the tiny
random-weight models of tests/golden/pipeline/ (made by tools/goldens_pipeline.py) with tiny random-weight ControlNets,
and Canny edge maps from OpenCV.

ControlNets (two per family, "a" and "b"): ControlNetModel with the base UNet's encoder layout (SD 1.x: 1x1-conv
projections, 768-style cross-attention of the tiny width; SDXL: linear projections and the text_time add embedding),
a 2-level conditioning embedding (the tiny VAE shrinks 2x), every weight random (the zero convolutions too, or the
residuals would be zero) and rounded to f16. Each is written as a diffusers folder (config.json + f16
diffusion_pytorch_model.safetensors); "a" also as one f32 .safetensors file with the original names
(control_model.input_hint_block / zero_convs / middle_block_out / input_blocks ...), for the name-mapping test.

Cases (cases.json): StableDiffusion[XL]ControlNet[Img2Img]Pipeline, 4 steps, guidance 5, CPU torch.Generator:
one ControlNet, two ControlNets with strengths and start/end, guess mode, img2img; each stores the final latent
(F32 NHWC) and the 8-bit picture. Canny: cv2.Canny(img, low, high) on RGB pictures (canny_*.png in, edges out).

Versions: torch 2.15.0, diffusers 0.42.1, transformers 5.23.0, opencv-python-headless 4.10.0.84 (tools/requirements.txt).
Usage: python3 tools/goldens_controlnet.py
"""
import json
import os
import sys

import numpy as np
import torch
import diffusers
import transformers
from diffusers import (ControlNetModel, DDIMScheduler, EulerAncestralDiscreteScheduler, DPMSolverMultistepScheduler,
                       StableDiffusionControlNetImg2ImgPipeline, StableDiffusionControlNetPipeline,
                       StableDiffusionXLControlNetImg2ImgPipeline, StableDiffusionXLControlNetPipeline)
from PIL import Image
from safetensors.torch import save_file, load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from goldens_pipeline import randomize  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BASE = os.path.join(HERE, "..", "tests", "golden", "pipeline")
OUT = os.path.join(HERE, "..", "tests", "golden", "controlnet")
W, H = 48, 32
PROMPT = "a red circle on a blue background, top left"
NEGATIVE = "blurry, green"
SAMPLERS = {"euler_a": EulerAncestralDiscreteScheduler, "dpm++2m": DPMSolverMultistepScheduler, "ddim": DDIMScheduler}
META = {"torch": torch.__version__, "diffusers": diffusers.__version__, "transformers": transformers.__version__,
        "made_by": "tools/goldens_controlnet.py"}


def make_controlnet(family, seed):
    if family == "sd1":
        cn = ControlNetModel(in_channels=4, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), block_out_channels=(8, 16),
                             layers_per_block=1, cross_attention_dim=16, attention_head_dim=2, norm_num_groups=4,
                             conditioning_embedding_out_channels=(4, 8))
    else:
        cn = ControlNetModel(in_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), block_out_channels=(8, 16),
                             layers_per_block=1, cross_attention_dim=40, attention_head_dim=(2, 4),
                             transformer_layers_per_block=(1, 2), use_linear_projection=True,
                             addition_embed_type="text_time", addition_time_embed_dim=8,
                             projection_class_embeddings_input_dim=24 + 6 * 8, norm_num_groups=4,
                             conditioning_embedding_out_channels=(4, 8))
    torch.manual_seed(seed)
    randomize(cn, 0.1)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():   # a different draw per ControlNet (randomize() seeds the same stream every time)
        for p in cn.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g)).copy_(p.half().float())
    return cn.eval()


def resnet_ldm(sub):
    for a, b in (("norm1.", "in_layers.0."), ("conv1.", "in_layers.2."), ("time_emb_proj.", "emb_layers.1."),
                 ("norm2.", "out_layers.0."), ("conv2.", "out_layers.3."), ("conv_shortcut.", "skip_connection.")):
        if sub.startswith(a):
            return b + sub[len(a):]
    raise KeyError(sub)


def to_ldm(name, lpb, n_hint_blocks):
    """diffusers ControlNet name -> the original (lllyasviel) name under control_model."""
    fixed = {"conv_in.": "input_blocks.0.0.", "time_embedding.linear_1.": "time_embed.0.",
             "time_embedding.linear_2.": "time_embed.2.", "add_embedding.linear_1.": "label_emb.0.0.",
             "add_embedding.linear_2.": "label_emb.0.2.", "controlnet_mid_block.": "middle_block_out.0.",
             "controlnet_cond_embedding.conv_in.": "input_hint_block.0.",
             "controlnet_cond_embedding.conv_out.": "input_hint_block.%d." % (2 * (n_hint_blocks + 1))}
    for a, b in fixed.items():
        if name.startswith(a):
            return b + name[len(a):]
    p = name.split(".")
    if p[0] == "controlnet_cond_embedding":
        return "input_hint_block.%d.%s" % (2 * (int(p[2]) + 1), ".".join(p[3:]))
    if p[0] == "controlnet_down_blocks":
        return "zero_convs.%s.0.%s" % (p[1], ".".join(p[2:]))
    if p[0] == "down_blocks":
        blk, kind = int(p[1]), p[2]
        if kind == "downsamplers":
            return "input_blocks.%d.0.op.%s" % ((blk + 1) * (lpb + 1), ".".join(p[5:]))
        idx = 1 + blk * (lpb + 1) + int(p[3])
        rest = ".".join(p[4:])
        return "input_blocks.%d.0.%s" % (idx, resnet_ldm(rest)) if kind == "resnets" else "input_blocks.%d.1.%s" % (idx, rest)
    if p[0] == "mid_block":
        rest = ".".join(p[3:])
        if p[1] == "resnets":
            return "middle_block.%d.%s" % (2 * int(p[2]), resnet_ldm(rest))
        return "middle_block.1." + rest
    raise KeyError(name)


def save_controlnet(cn, family, tag):
    folder = os.path.join(OUT, "%s_cn_%s" % (family, tag))
    cn.save_pretrained(folder, safe_serialization=True)
    path = os.path.join(folder, "diffusion_pytorch_model.safetensors")
    sd = load_file(path)
    save_file({k: v.half() for k, v in sd.items()}, path, metadata={"format": "pt", **META})
    if tag == "a":
        nb = sum(1 for k in sd if k.startswith("controlnet_cond_embedding.blocks.") and k.endswith(".weight"))
        ldm = {"control_model." + to_ldm(k, 1, nb): v.float().contiguous() for k, v in sd.items()}
        save_file(ldm, os.path.join(OUT, "%s_cn_a_ldm.safetensors" % family), metadata={"format": "pt", **META})
    return ControlNetModel.from_pretrained(folder, torch_dtype=torch.float32).eval()


def control_images():
    y, x = np.mgrid[0:H, 0:W]
    a = np.zeros((H, W, 3), np.uint8)
    a[(np.hypot(x - 16, y - 12) < 9)] = 255                                          # a disc
    b = np.stack([(x * 255 // (W - 1)), ((y // 4) % 2) * 255, ((x // 6) % 2) * 200], -1).astype(np.uint8)
    return Image.fromarray(a), Image.fromarray(b)


def canny_goldens():
    import cv2
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:40, 0:56]
    imgs = {
        "shapes": np.stack([((np.hypot(x - 20, y - 18) < 11) * 220 + 20), ((abs(x - 40) < 9) & (abs(y - 22) < 12)) * 180 + 30,
                            ((x + y) % 29 < 14) * 90 + 60], -1),
        "noise": rng.integers(0, 256, size=(40, 56, 3)),
        "ramp": np.stack([x * 4, y * 6, (x * y) % 256], -1),
        "smooth": np.stack([128 + 100 * np.sin(x / 5.0) * np.cos(y / 7.0)] * 3, -1),
    }
    cases = []
    for name, im in imgs.items():
        im = np.clip(im, 0, 255).astype(np.uint8)
        Image.fromarray(im).save(os.path.join(OUT, "canny_%s.png" % name))
        for lo, hi in ((100, 200), (50, 120), (200, 100), (10, 400)):
            e = cv2.Canny(im, lo, hi)
            out = "canny_%s_%d_%d.png" % (name, lo, hi)
            Image.fromarray(e).save(os.path.join(OUT, out))
            cases.append({"image": "canny_%s.png" % name, "low": lo, "high": hi, "edges": out})
    # a grey picture too (one channel in)
    g = (np.clip(imgs["smooth"][..., 0], 0, 255)).astype(np.uint8)
    Image.fromarray(g).save(os.path.join(OUT, "canny_grey.png"))
    e = cv2.Canny(g, 30, 90)
    Image.fromarray(e).save(os.path.join(OUT, "canny_grey_30_90.png"))
    cases.append({"image": "canny_grey.png", "low": 30, "high": 90, "edges": "canny_grey_30_90.png"})
    return cases


def main():
    os.makedirs(OUT, exist_ok=True)
    ca, cb = control_images()
    ca.save(os.path.join(OUT, "control_a.png"))
    cb.save(os.path.join(OUT, "control_b.png"))
    init = Image.open(os.path.join(BASE, "init.png")).convert("RGB")
    cases = []
    for family in ("sd1", "sdxl"):
        nets = {t: save_controlnet(make_controlnet(family, s), family, t) for t, s in (("a", 11), ("b", 22))}
        if family == "sd1":
            txt = StableDiffusionControlNetPipeline.from_pretrained(os.path.join(BASE, "sd1"), controlnet=nets["a"],
                                                                   torch_dtype=torch.float32, safety_checker=None)
            comps = {k: v for k, v in txt.components.items() if k != "controlnet"}
            make = {"txt2img": lambda cn: StableDiffusionControlNetPipeline(**dict(comps, controlnet=cn)),
                    "img2img": lambda cn: StableDiffusionControlNetImg2ImgPipeline(**dict(comps, controlnet=cn))}
        else:
            txt = StableDiffusionXLControlNetPipeline.from_pretrained(os.path.join(BASE, "sdxl"), controlnet=nets["a"],
                                                                     torch_dtype=torch.float32)
            comps = {k: v for k, v in txt.components.items() if k != "controlnet"}
            make = {"txt2img": lambda cn: StableDiffusionXLControlNetPipeline(**dict(comps, controlnet=cn)),
                    "img2img": lambda cn: StableDiffusionXLControlNetImg2ImgPipeline(**dict(comps, controlnet=cn),
                                                                                     requires_aesthetics_score=False)}
        base_cfg = txt.scheduler.config
        plans = [
            ("one", "euler_a", "txt2img", [("a", "control_a.png", 1.0, 0.0, 1.0)], False, NEGATIVE),
            ("strength", "dpm++2m", "txt2img", [("a", "control_a.png", 0.6, 0.0, 1.0)], False, None),
            ("two", "euler_a", "txt2img", [("a", "control_a.png", 0.7, 0.0, 0.5), ("b", "control_b.png", 1.3, 0.25, 1.0)],
             False, NEGATIVE),
            ("guess", "ddim", "txt2img", [("a", "control_a.png", 1.0, 0.0, 1.0)], True, None),
            ("img2img", "euler_a", "img2img", [("b", "control_b.png", 0.8, 0.0, 0.75)], False, NEGATIVE),
        ]
        for tag, sampler, mode, units, guess, neg in plans:
            name = "%s_%s" % (family, tag)
            seed = 2000 + len(cases)
            cn = [nets[u[0]] for u in units]
            pipe = make[mode](cn[0] if len(cn) == 1 else cn)
            pipe.set_progress_bar_config(disable=True)
            imgs = [Image.open(os.path.join(OUT, u[1])).convert("RGB") for u in units]
            out = {}
            for kind in ("latent", "np"):
                pipe.scheduler = SAMPLERS[sampler].from_config(base_cfg)
                args = dict(prompt=PROMPT, negative_prompt=neg, num_inference_steps=4, guidance_scale=5.0,
                            generator=torch.Generator().manual_seed(seed), output_type=kind, guess_mode=guess,
                            controlnet_conditioning_scale=[u[2] for u in units] if len(units) > 1 else units[0][2],
                            control_guidance_start=[u[3] for u in units] if len(units) > 1 else units[0][3],
                            control_guidance_end=[u[4] for u in units] if len(units) > 1 else units[0][4])
                if mode == "txt2img":
                    args.update(image=imgs if len(imgs) > 1 else imgs[0], height=H, width=W)
                else:
                    args.update(image=init, control_image=imgs if len(imgs) > 1 else imgs[0], strength=0.6, height=H, width=W)
                with torch.no_grad():
                    out[kind] = pipe(**args).images
            lat = out["latent"][0].permute(1, 2, 0).contiguous().float()
            img = (out["np"][0] * 255).round().astype(np.uint8)
            Image.fromarray(img).save(os.path.join(OUT, name + ".png"))
            save_file({"latent": lat}, os.path.join(OUT, name + ".safetensors"), metadata=META)
            cases.append({"name": name, "model": family, "sampler": sampler, "prompt": PROMPT, "negative_prompt": neg,
                          "mode": mode, "strength": 0.6, "steps": 4, "cfg": 5.0, "seed": seed, "width": W, "height": H,
                          "guess_mode": guess,
                          "controls": [{"model": "%s_cn_%s" % (family, u[0]), "image": u[1], "strength": u[2],
                                        "start": u[3], "end": u[4]} for u in units]})
            print(name, "latent |max|", float(lat.abs().max()))
    canny = canny_goldens()
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"meta": dict(META, opencv=__import__("cv2").__version__), "cases": cases, "canny": canny}, f, indent=1)


if __name__ == "__main__":
    main()
