#!/usr/bin/env python3
"""goldens_inpaint.py — inpainting goldens from diffusers' StableDiffusionInpaintPipeline (tests/golden/inpaint/).

Two tiny random-weight SD 1.x models that share text encoder and VAE (a 4-level VAE: the real 8x latent grid):
  sd1      a 4-channel UNet: the pipeline blends the known area back onto the init image's trajectory after every
           scheduler call (its "4-channel behaviour")
  sd1_inp  a 9-channel inpainting UNet: latent ‖ mask ‖ masked-image latent
Each case runs the pipeline on init.png and a soft, hand-drawn-looking mask (anti-aliased strokes off the 8-pixel
grid, mask.png) with a CPU torch.Generator, every scheduler built with from_config from SD 1.5's config as users
switch samplers, and stores the latent after the last step (NHWC F32, <case>.safetensors) and the picture
(<case>.png). Cases (cases.json lists each one's settings):
  - every sampler with a diffusers scheduler at strength 0.75, both UNets
  - Euler a (ancestral) and DDIM (deterministic) at strengths 0.35 and 1.0, both UNets
  - mask blur: the mask through VaeImageProcessor.blur(mask, 4) first (the engine's --mask-blur 4)
  - padding_mask_crop (the engine's --inpaint-only-masked --inpaint-padding N): a larger init picture
    (crop_init.png, crop_mask.png), the crop resized to the generation size and the result laid back over the
    original; and a wide mask whose crop is limited by the picture's edges (resize-and-fill bands: band_*.png)
  - the 9-channel model with an all-white mask (what the engine does with a 9-channel model and no mask)

Versions: torch 2.15.0, diffusers 0.42.1, transformers 5.23.0, pillow 13.0.0 (tools/requirements.txt).
Usage: python3 tools/goldens_inpaint.py
"""
import json
import os

import numpy as np
import torch
from diffusers import (AutoencoderKL, DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler,
                       EulerAncestralDiscreteScheduler, EulerDiscreteScheduler, HeunDiscreteScheduler,
                       KDPM2AncestralDiscreteScheduler, KDPM2DiscreteScheduler, LCMScheduler, LMSDiscreteScheduler,
                       PNDMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel, UniPCMultistepScheduler)
from diffusers.image_processor import VaeImageProcessor
from PIL import Image, ImageDraw, ImageFilter
from safetensors.torch import save_file
from transformers import CLIPTokenizer

from goldens_pipeline import META as PIPE_META, SD15_SCHEDULER, randomize, save_model, text_encoder, write_tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "golden", "inpaint")
META = dict(PIPE_META, made_by="tools/goldens_inpaint.py")
W, H = 64, 48
STEPS = 6
PROMPT = "a red circle on a blue background"
NEGATIVE = "blurry"
CLASSES = {"euler": EulerDiscreteScheduler, "euler_a": EulerAncestralDiscreteScheduler, "heun": HeunDiscreteScheduler,
           "dpm2": KDPM2DiscreteScheduler, "dpm2_a": KDPM2AncestralDiscreteScheduler, "lms": LMSDiscreteScheduler,
           "dpm++2m": DPMSolverMultistepScheduler, "dpm++2m_sde": DPMSolverMultistepScheduler,
           "ddim": DDIMScheduler, "pndm": PNDMScheduler, "ddpm": DDPMScheduler, "unipc": UniPCMultistepScheduler,
           "lcm": LCMScheduler}


def vae8():
    m = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                      up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(8, 8, 16, 16), layers_per_block=1,
                      latent_channels=4, norm_num_groups=4, sample_size=64, scaling_factor=0.5).eval()
    randomize(m, 0.2)
    return m


def unet(in_channels):
    m = UNet2DConditionModel(sample_size=8, in_channels=in_channels, out_channels=4, layers_per_block=1,
                             block_out_channels=(8, 16), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                             up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=16,
                             attention_head_dim=2, norm_num_groups=4).eval()
    randomize(m, 0.1)
    return m


def make_models():
    te, vae = None, None
    pipes = {}
    for name, cin in (("sd1", 4), ("sd1_inp", 9)):
        folder = os.path.join(OUT, name)
        vocab = write_tokenizer(os.path.join(folder, "tokenizer"), "<|endoftext|>")
        te = te or text_encoder(vocab, 16, 2, False)
        vae = vae or vae8()
        tok = CLIPTokenizer(os.path.join(folder, "tokenizer", "vocab.json"), os.path.join(folder, "tokenizer", "merges.txt"),
                            pad_token="<|endoftext|>", model_max_length=77)
        pipe = StableDiffusionInpaintPipeline(vae=vae, text_encoder=te, tokenizer=tok, unet=unet(cin),
                                              scheduler=PNDMScheduler.from_config(SD15_SCHEDULER), safety_checker=None,
                                              feature_extractor=None, requires_safety_checker=False)
        save_model(pipe, folder)
        with open(os.path.join(folder, "scheduler", "scheduler_config.json"), "w") as f:
            json.dump(SD15_SCHEDULER, f, indent=2)  # as the hub ships it (no timestep_spacing key)
        pipes[name] = StableDiffusionInpaintPipeline.from_pretrained(folder, torch_dtype=torch.float32, safety_checker=None)
        pipes[name].base_config = pipes[name].scheduler.config  # every sampler from the model's own config
    return pipes


def init_image(w, h):
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), ((x // 5 + y // 7) % 2) * 180 + 30], -1).astype(np.uint8)
    return Image.fromarray(img)


def soft_mask(w, h, strokes):
    """Thick strokes drawn at 4x and downsampled (anti-aliased edges: many grey levels, none on the 8-grid)."""
    big = Image.new("L", (4 * w, 4 * h), 0)
    d = ImageDraw.Draw(big)
    for kind, pts, width in strokes:
        pts4 = [(4 * px, 4 * py) for px, py in pts]
        if kind == "line":
            d.line(pts4, fill=255, width=4 * width, joint="curve")
        else:
            d.ellipse(pts4, fill=255)
    return big.resize((w, h), Image.LANCZOS)


def make_sched(name, base):
    kw = {"algorithm_type": "sde-dpmsolver++"} if name == "dpm++2m_sde" else {}
    return CLASSES[name].from_config(base, **kw)


def run(pipe, sampler, seed, image, mask, strength, crop=None):
    pipe.scheduler = make_sched(sampler, pipe.base_config)
    lat = {}

    def grab(p, i, t, kw):
        lat["x"] = kw["latents"].clone()
        return kw

    args = dict(prompt=PROMPT, negative_prompt=NEGATIVE, image=image, mask_image=mask, height=H, width=W,
                num_inference_steps=STEPS, guidance_scale=5.0, strength=strength,
                generator=torch.Generator().manual_seed(seed), output_type="pil", callback_on_step_end=grab)
    if crop is not None:
        args["padding_mask_crop"] = crop
    with torch.no_grad():
        img = pipe(**args).images[0]
    return lat["x"][0].permute(1, 2, 0).contiguous().float(), img


def main():
    os.makedirs(OUT, exist_ok=True)
    pipes = make_models()
    init = init_image(W, H)
    mask = soft_mask(W, H, [("ellipse", [(25.3, 9.6), (49.7, 30.2)], 0), ("line", [(6.5, 41.2), (22.8, 28.7), (37.1, 35.9)], 3)])
    crop_init = init_image(96, 72)
    crop_mask = soft_mask(96, 72, [("ellipse", [(57.2, 21.5), (75.6, 40.3)], 0)])
    band_init = init_image(96, 48)
    band_mask = soft_mask(96, 48, [("line", [(10.4, 24.6), (85.3, 27.2)], 5)])
    for name, im in (("init", init), ("mask", mask), ("crop_init", crop_init), ("crop_mask", crop_mask),
                     ("band_init", band_init), ("band_mask", band_mask)):
        im.save(os.path.join(OUT, name + ".png"))
    blurred = VaeImageProcessor.blur(mask, 4)
    white = Image.new("L", (W, H), 255)

    cases = []

    def add(model, sampler, strength, tag="", image="init", mask_name="mask", blur=0, crop=None):
        name = f"{model}_{sampler.replace('+', 'p')}_s{int(round(strength * 100))}{tag}"
        seed = 2000 + len(cases)
        imgs = {"init": init, "crop_init": crop_init, "band_init": band_init}
        masks = {"mask": mask, "crop_mask": crop_mask, "band_mask": band_mask, "white": white}
        m = VaeImageProcessor.blur(masks[mask_name], blur) if blur else masks[mask_name]
        lat, img = run(pipes[model], sampler, seed, imgs[image], m, strength, crop)
        img.save(os.path.join(OUT, name + ".png"))
        save_file({"latent": lat}, os.path.join(OUT, name + ".safetensors"), metadata=META)
        cases.append({"name": name, "model": model, "sampler": sampler, "strength": strength, "seed": seed,
                      "steps": STEPS, "cfg": 5.0, "prompt": PROMPT, "negative_prompt": NEGATIVE, "width": W,
                      "height": H, "init": image + ".png", "mask": None if mask_name == "white" else mask_name + ".png",
                      "mask_blur": blur, "padding": crop})
        print(name, "latent |max|", float(lat.abs().max()), "picture", img.size)

    for model in ("sd1", "sd1_inp"):
        for sampler in CLASSES:
            add(model, sampler, 0.75)
        for sampler in ("euler_a", "ddim"):
            for strength in (0.35, 1.0):
                add(model, sampler, strength)
        add(model, "euler_a", 0.75, "_blur4", blur=4)
        add(model, "dpm++2m", 1.0, "_crop", image="crop_init", mask_name="crop_mask", crop=6)
        add(model, "euler", 0.75, "_band", image="band_init", mask_name="band_mask", blur=2, crop=2)
    add("sd1_inp", "euler_a", 1.0, "_nomask", mask_name="white")
    add("sd1_inp", "ddim", 0.75, "_nomask", mask_name="white")
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"meta": META, "cases": cases}, f, indent=1)


if __name__ == "__main__":
    main()
