#!/usr/bin/env python3
"""goldens_inpaint_a1111.py — AUTOMATIC1111's img2img inpainting, re-implemented step by step in Python from its
modules/processing.py, masking.py, images.py and sd_samplers_cfg_denoiser.py (v1.10 behaviour, default options:
mask_round on, "original" masked content unless a case says otherwise, CPU RNG), on the tiny models of
tools/goldens_inpaint.py (tests/golden/inpaint/), with k-diffusion's own samplers and PIL / OpenCV for the pixels.
The engine's --schedule-convention kdiffusion is compared with these (tests/golden/inpaint/a1111_*).

What each case runs (what A1111 does):
  mask        cv2.GaussianBlur in x then in y (kernel 2*int(2.5*blur+0.5)+1), then at generation size (Lanczos), or
              for "only masked" the crop around it (+ padding, grown to the aspect ratio) resized with
              "resize and fill"; latent mask = the mask resized to the latent grid (bicubic) and rounded
  picture     the init picture resized (Lanczos) or cropped like the mask; masked content other than "original"
              runs A1111's blur-and-composite fill; encoded to its posterior mean (A1111's sample is not seeded)
  9 channels  the mask rounded at full size, brought to the latent grid by interpolate (nearest), ‖ the latent of
              the picture with the masked area at 0; without a mask: all ones ‖ the latent of a blank picture
  sampling    x = init + noise·σ_start (t_enc = int(min(strength, 0.999)·steps)); every denoised prediction keeps
              the init latent outside the mask; the result is blended once more; "latent noise"/"latent nothing"
              replace the init latent's masked area with the seed's noise / zeros first
  picture     decoded (A1111 truncates to 8 bits), the original laid back through the mask (doubled, saturated;
              only masked: the generation resized into the crop and pasted) with Pillow's alpha composite

Versions: torch 2.15.0, diffusers 0.42.1, k-diffusion 0.1.1.post1, pillow 13.0.0, opencv-python-headless 4.10.0.84.
Usage: python3 tools/goldens_inpaint_a1111.py   (after tools/goldens_inpaint.py)
"""
import json
import os
import sys
import types

import cv2
import numpy as np
import torch
from PIL import Image, ImageFilter, ImageOps
from safetensors.torch import save_file

sys.modules.setdefault("clip", types.ModuleType("clip"))  # k_diffusion imports OpenAI CLIP for its evaluation only
import k_diffusion as K  # noqa: E402
from diffusers import AutoencoderKL, UNet2DConditionModel  # noqa: E402
from transformers import CLIPTextModel, CLIPTokenizer  # noqa: E402

from goldens_pipeline import META as PIPE_META  # noqa: E402
from goldens_scheduler import ldm_alphas_cumprod  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "golden", "inpaint")
META = dict(PIPE_META, made_by="tools/goldens_inpaint_a1111.py")
W, H, STEPS, CFG = 64, 48, 6, 5.0
PROMPT, NEGATIVE = "a red circle on a blue background", "blurry"


class Model:
    def __init__(self, folder):
        f = os.path.join(OUT, folder)
        self.unet = UNet2DConditionModel.from_pretrained(os.path.join(f, "unet")).eval()
        self.vae = AutoencoderKL.from_pretrained(os.path.join(f, "vae")).eval()
        self.te = CLIPTextModel.from_pretrained(os.path.join(f, "text_encoder")).eval()
        self.tok = CLIPTokenizer(os.path.join(f, "tokenizer", "vocab.json"), os.path.join(f, "tokenizer", "merges.txt"),
                                 pad_token="<|endoftext|>", model_max_length=77)
        self.alphas_cumprod = ldm_alphas_cumprod()
        self.nine = self.unet.config.in_channels == 9

    def encode_text(self, text):
        ids = self.tok(text, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        return self.te(ids)[0]

    def encode(self, img01):  # [1, 3, H, W] in [0, 1] -> scaled posterior mean
        return self.vae.encode(img01 * 2 - 1).latent_dist.mean * self.vae.config.scaling_factor

    def apply_model(self, x, t, cond):  # what LDM's DiffusionWrapper does for "crossattn" / "hybrid"
        if self.nine:
            x = torch.cat([x] + cond["c_concat"], dim=1)
        return self.unet(x, t, encoder_hidden_states=torch.cat(cond["c_crossattn"])).sample


def resize_image(mode, im, w, h):  # A1111 images.resize_image without an upscaler
    if mode == 0:
        return im.resize((w, h), resample=Image.LANCZOS)
    ratio, src_ratio = w / h, im.width / im.height
    if mode == 1:
        sw = w if ratio > src_ratio else im.width * h // im.height
        sh = h if ratio <= src_ratio else im.height * w // im.width
        res = Image.new("RGB", (w, h))
        res.paste(im.resize((sw, sh), resample=Image.LANCZOS), box=(w // 2 - sw // 2, h // 2 - sh // 2))
        return res
    sw = w if ratio < src_ratio else im.width * h // im.height
    sh = h if ratio >= src_ratio else im.height * w // im.width
    resized = im.resize((sw, sh), resample=Image.LANCZOS)
    res = Image.new("RGB", (w, h))
    res.paste(resized, box=(w // 2 - sw // 2, h // 2 - sh // 2))
    if ratio < src_ratio:
        fh = h // 2 - sh // 2
        if fh > 0:
            res.paste(resized.resize((w, fh), box=(0, 0, w, 0)), box=(0, 0))
            res.paste(resized.resize((w, fh), box=(0, resized.height, w, resized.height)), box=(0, fh + sh))
    elif ratio > src_ratio:
        fw = w // 2 - sw // 2
        if fw > 0:
            res.paste(resized.resize((fw, h), box=(0, 0, 0, h)), box=(0, 0))
            res.paste(resized.resize((fw, h), box=(resized.width, 0, resized.width, h)), box=(fw + sw, 0))
    return res


def grow(lo, hi, want, size):  # expand_crop_region along one axis: centred, pushed back inside [0, size]
    diff = int(want - (hi - lo))
    lo -= diff // 2
    hi += diff - diff // 2
    if hi >= size:
        lo -= hi - size
        hi = size
    if lo < 0:
        hi -= lo
        lo = 0
    return lo, min(hi, size)


def crop_region(mask, pad, w, h):  # get_crop_region + expand_crop_region
    ys, xs = np.nonzero(mask)
    x1, y1 = max(xs.min() - pad, 0), max(ys.min() - pad, 0)
    x2, y2 = min(xs.max() + 1 + pad, mask.shape[1]), min(ys.max() + 1 + pad, mask.shape[0])
    if (x2 - x1) / (y2 - y1) > w / h:
        y1, y2 = grow(y1, y2, (x2 - x1) / (w / h), mask.shape[0])
    else:
        x1, x2 = grow(x1, x2, (y2 - y1) * (w / h), mask.shape[1])
    return int(x1), int(y1), int(x2), int(y2)


def fill(image, mask):  # masking.fill: the unmasked colours blurred ever less and composited over each other
    image_mod = Image.new("RGBA", (image.width, image.height))
    image_masked = Image.new("RGBa", (image.width, image.height))
    image_masked.paste(image.convert("RGBA").convert("RGBa"), mask=ImageOps.invert(mask.convert("L")))
    for radius, repeats in [(256, 1), (64, 1), (16, 2), (4, 4), (2, 2), (0, 1)]:
        blurred = image_masked.filter(ImageFilter.GaussianBlur(radius)).convert("RGBA")
        for _ in range(repeats):
            image_mod.alpha_composite(blurred)
    return image_mod.convert("RGB")


def to_tensor(im):
    return torch.from_numpy(np.array(im).astype(np.float32) / 255.0).permute(2, 0, 1)[None]


SAMPLERS = {"euler_a": (K.sampling.sample_euler_ancestral, "discrete"), "dpm++2m": (K.sampling.sample_dpmpp_2m, "karras"),
            "euler": (K.sampling.sample_euler, "discrete")}


def run(model, sampler, seed, init, mask, strength, blur=0, only_masked=False, pad=0, fill_mode="original"):
    image_mask = None
    crop = paste_to = None
    overlay = None
    if mask is not None:
        image_mask = mask.convert("L")
        if blur > 0:
            k = 2 * int(2.5 * blur + 0.5) + 1
            m = cv2.GaussianBlur(np.array(image_mask), (k, 1), blur)
            image_mask = Image.fromarray(cv2.GaussianBlur(m, (1, k), blur))
        if only_masked:
            mask_for_overlay = image_mask
            crop = crop_region(np.array(image_mask), pad, W, H)
            image_mask = resize_image(2, image_mask.crop(crop), W, H)
            paste_to = (crop[0], crop[1], crop[2] - crop[0], crop[3] - crop[1])
        else:
            image_mask = resize_image(0, image_mask, W, H)
            mask_for_overlay = Image.fromarray(np.clip(np.array(image_mask).astype(np.float32) * 2, 0, 255).astype(np.uint8))
    image = init
    if crop is None:
        image = resize_image(0, image, W, H)
    if image_mask is not None:
        overlay = Image.new("RGBa", (image.width, image.height))
        overlay.paste(image.convert("RGBA").convert("RGBa"), mask=ImageOps.invert(mask_for_overlay.convert("L")))
        overlay = overlay.convert("RGBA")
    if crop is not None:
        image = resize_image(2, image.crop(crop), W, H)
    if image_mask is not None and fill_mode != "original":
        image = fill(image, image_mask)
    img = to_tensor(image)
    gen = torch.Generator().manual_seed(seed)
    h, w = H // 8, W // 8
    with torch.no_grad():
        init_latent = model.encode(img)
        mask_t = nmask = None
        if image_mask is not None:
            latmask = np.array(image_mask.convert("RGB").resize((w, h)), dtype=np.float32)[..., 0] / 255
            latmask = np.tile(np.around(latmask)[None], (4, 1, 1))
            mask_t, nmask = torch.asarray(1.0 - latmask)[None].float(), torch.asarray(latmask)[None].float()
        noise = torch.randn((4, h, w), generator=gen)[None]  # ImageRNG.next(), CPU
        if fill_mode == "latent noise":
            init_latent = init_latent * mask_t + noise * nmask  # create_random_tensors(seeds): the same first draw
        elif fill_mode == "latent nothing":
            init_latent = init_latent * mask_t
        image_cond = None
        if model.nine:
            if image_mask is not None:
                cm = torch.round(torch.from_numpy(np.array(image_mask.convert("L")).astype(np.float32) / 255.0)[None, None])
            else:
                cm = torch.ones(1, 1, H, W)
            source = img * 2 - 1
            cond_img = torch.lerp(source, source * (1.0 - cm), 1.0)
            cond_lat = model.vae.encode(cond_img).latent_dist.mean * model.vae.config.scaling_factor
            image_cond = torch.cat([torch.nn.functional.interpolate(cm, size=(h, w)), cond_lat], dim=1)
        c, uc = model.encode_text(PROMPT), model.encode_text(NEGATIVE)

        class Inner:  # what k-diffusion's CompVisDenoiser needs
            alphas_cumprod = model.alphas_cumprod

            def apply_model(self, x, t, cond):
                return model.apply_model(x, t, cond)

        denoiser = K.external.CompVisDenoiser(Inner())

        def cfg_denoiser(x, sigma, **kw):  # A1111 CFGDenoiser: [cond; uncond] in one batch, blend after
            x_in, s_in = torch.cat([x, x]), torch.cat([sigma, sigma])
            cond = {"c_crossattn": [torch.cat([c, uc])]}
            if model.nine:
                cond["c_concat"] = [torch.cat([image_cond, image_cond])]
            x_out = denoiser(x_in, s_in, cond=cond)
            den = x_out[1:] + (x_out[:1] - x_out[1:]) * CFG
            if mask_t is not None:
                den = den * nmask + init_latent * mask_t
            return den

        func, sched = SAMPLERS[sampler]
        smin, smax = denoiser.sigmas[0].item(), denoiser.sigmas[-1].item()
        sigmas = denoiser.get_sigmas(STEPS) if sched == "discrete" else K.sampling.get_sigmas_karras(STEPS, smin, smax)
        t_enc = int(min(strength, 0.999) * STEPS)
        sigmas = sigmas[STEPS - t_enc - 1:]
        xi = init_latent + noise * sigmas[0]
        kw = {}
        if sampler == "euler_a":
            kw["noise_sampler"] = lambda s, sn: torch.randn((4, h, w), generator=gen)[None]
        samples = func(cfg_denoiser, xi, sigmas, disable=True, **kw)
        if mask_t is not None:
            samples = samples * nmask + init_latent * mask_t
        x = model.vae.decode(samples / model.vae.config.scaling_factor).sample
    x = torch.clamp((x + 1.0) / 2.0, min=0.0, max=1.0)[0]
    pic = Image.fromarray((255.0 * x.permute(1, 2, 0).numpy()).astype(np.uint8))  # A1111 truncates
    if overlay is not None:
        if paste_to is not None:
            px, py, pw, ph = paste_to
            base = Image.new("RGBA", (overlay.width, overlay.height))
            base.paste(resize_image(1, pic, pw, ph), (px, py))
            pic = base
        pic = pic.convert("RGBA")
        pic.alpha_composite(overlay)
        pic = pic.convert("RGB")
    return samples[0].permute(1, 2, 0).contiguous().float(), pic


def main():
    torch.set_num_threads(1)
    models = {"sd1": Model("sd1"), "sd1_inp": Model("sd1_inp")}
    imgs = {n: Image.open(os.path.join(OUT, n + ".png")) for n in ("init", "mask", "crop_init", "crop_mask")}
    with open(os.path.join(OUT, "cases.json")) as f:
        root = json.load(f)
    cases = [c for c in root["cases"] if not c["name"].startswith("a1111_")]

    def add(model, sampler, strength, tag="", image="init", mask="mask", blur=4, only=False, pad=0, fill_mode="original"):
        name = f"a1111_{model}_{sampler.replace('+', 'p')}_s{int(round(strength * 100))}{tag}"
        seed = 5000 + len(cases)
        lat, pic = run(models[model], sampler, seed, imgs[image].convert("RGB"), imgs[mask] if mask else None,
                       strength, blur if mask else 0, only, pad, fill_mode)
        pic.save(os.path.join(OUT, name + ".png"))
        save_file({"latent": lat}, os.path.join(OUT, name + ".safetensors"), metadata=META)
        cases.append({"name": name, "model": model, "sampler": sampler, "strength": strength, "seed": seed, "steps": STEPS,
                      "cfg": CFG, "prompt": PROMPT, "negative_prompt": NEGATIVE, "width": W, "height": H,
                      "init": image + ".png", "mask": mask + ".png" if mask else None, "mask_blur": blur if mask else 0,
                      "padding": pad if only else None, "convention": "kdiffusion",
                      "scheduler": SAMPLERS[sampler][1], "masked_content": fill_mode})
        print(name, "latent |max|", float(lat.abs().max()), "picture", pic.size)

    for model in ("sd1", "sd1_inp"):
        add(model, "euler_a", 0.75)
        add(model, "dpm++2m", 1.0)
        add(model, "euler", 0.6, "_crop", image="crop_init", mask="crop_mask", blur=2, only=True, pad=6)
    for fill_mode in ("fill", "latent noise", "latent nothing"):
        add("sd1", "euler", 0.8, "_" + fill_mode.replace(" ", "_"), fill_mode=fill_mode)
    add("sd1_inp", "euler", 0.8, "_fill", fill_mode="fill")
    add("sd1_inp", "euler_a", 0.75, "_nomask", mask=None)
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"meta": root["meta"], "cases": cases}, f, indent=1)


if __name__ == "__main__":
    main()
