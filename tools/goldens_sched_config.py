#!/usr/bin/env python3
"""goldens_sched_config.py — whole generations under scheduler configs that set each key the engine honours
(tests/golden/sched_config/), on the tiny SD 1.x and SDXL models of tools/goldens_pipeline.py.

For every case the model's scheduler_config.json is replaced by the case's config (cases.json keeps it; the test
writes it into a copy of the model folder), and each listed sampler is built from it with
SamplerClass.from_config(config) as a diffusers user switches samplers: keys the config does not state take each
class's own default. Keys covered: beta_start / beta_end / beta_schedule (linear, squaredcos_cap_v2),
num_train_timesteps, rescale_betas_zero_snr (with v-prediction, trailing spacing and guidance rescale, SD 2.x /
Turbo practice), use_karras_sigmas / use_exponential_sigmas / use_beta_sigmas, sigma_min / sigma_max,
timestep_spacing (and the engine's --timestep-spacing over the config's), steps_offset (absent: 0),
prediction_type, clip_sample (absent: DDIM's default true), set_alpha_to_one, original_inference_steps and
timestep_scaling (LCM). Two more cases pin clip skip: diffusers encodes the negative prompt without it (SD 1.x and
SDXL pipelines). Each case stores the final latent (NHWC F32) and the picture.

Versions: torch 2.15.0, diffusers 0.42.1, transformers 5.23.0, scipy 1.17.1 (tools/requirements.txt).
Usage: python3 tools/goldens_sched_config.py [--only PREFIX,...]   (after tools/goldens_pipeline.py: it uses its
models; --only redoes the cases whose names start with a prefix, and any missing, and keeps the others)
"""
import json
import os
import sys

import numpy as np
import torch
from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
from PIL import Image
from safetensors.torch import save_file

from goldens_inpaint import CLASSES
from goldens_pipeline import META as PIPE_META, SD15_SCHEDULER

HERE = os.path.dirname(os.path.abspath(__file__))
PIPE = os.path.join(HERE, "..", "tests", "golden", "pipeline")
OUT = os.path.join(HERE, "..", "tests", "golden", "sched_config")
META = dict(PIPE_META, made_by="tools/goldens_sched_config.py")
W, H = 48, 32
PROMPT = "a red circle on a blue background"
NEGATIVE = "blurry, green"


def cfg(**kw):
    c = dict(SD15_SCHEDULER)
    for k, v in kw.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


# (name, config, samplers, extra settings)
CASES = [
    ("linear_betas", cfg(beta_schedule="linear", beta_start=0.0001, beta_end=0.02), ["euler", "ddim", "dpm++2m"], {}),
    ("cosine", cfg(beta_schedule="squaredcos_cap_v2"), ["euler_a", "ddim", "lms"], {}),
    ("cosine_karras", cfg(beta_schedule="squaredcos_cap_v2", use_karras_sigmas=True), ["dpm++2m", "euler"], {}),
    ("train500", cfg(num_train_timesteps=500), ["euler", "ddim"], {}),
    ("zero_snr", cfg(rescale_betas_zero_snr=True, prediction_type="v_prediction", timestep_spacing="trailing"),
     ["euler", "euler_a", "ddim", "dpm++2m", "unipc", "ddpm", "heun", "lcm"], {"guidance_rescale": 0.7}),
    ("karras", cfg(use_karras_sigmas=True), ["euler", "dpm++2m", "heun", "dpm2", "euler_a"], {}),
    ("exponential", cfg(use_exponential_sigmas=True), ["euler", "unipc", "lms"], {}),
    ("beta", cfg(use_beta_sigmas=True), ["euler", "dpm++2m", "dpm2_a"], {}),
    ("sigma_range", cfg(use_karras_sigmas=True, sigma_min=0.1, sigma_max=10.0), ["euler", "unipc", "dpm++2m"], {}),
    ("trailing", cfg(timestep_spacing="trailing"), ["euler", "ddim", "dpm++2m", "pndm"], {}),
    ("flag_spacing", cfg(timestep_spacing="leading"), ["euler", "ddim"], {"timestep_spacing": "trailing"}),
    ("no_offset", cfg(steps_offset=None), ["ddim", "pndm", "euler"], {"timestep_spacing_in_config": "leading"}),
    ("vpred", cfg(prediction_type="v_prediction"), ["euler", "ddim", "dpm++2m"], {}),
    ("ddim_defaults", cfg(clip_sample=None, set_alpha_to_one=None), ["ddim", "pndm"], {}),
    ("alpha_one", cfg(set_alpha_to_one=True, clip_sample=True, clip_sample_range=0.5), ["ddim", "pndm", "ddpm"], {}),
    ("lcm_origin", cfg(original_inference_steps=25, timestep_scaling=5.0), ["lcm"], {}),
    # LMS's Karras conversion is the one that does not look for a stated sigma range; its exponential one does
    ("lms_range", cfg(use_karras_sigmas=True, sigma_min=0.1, sigma_max=10.0), ["lms"], {}),
    ("lms_range_exp", cfg(use_exponential_sigmas=True, sigma_min=0.1, sigma_max=10.0), ["lms"], {}),
]


def run(pipe, name, sampler, config, seed, extra, sdxl=False):
    over = {"algorithm_type": "sde-dpmsolver++"} if sampler == "dpm++2m_sde" else {}
    if "timestep_spacing" in extra:
        over["timestep_spacing"] = extra["timestep_spacing"]
    pipe.scheduler = CLASSES[sampler].from_config(config, **over)
    lat = {}

    def grab(p, i, t, kw):
        lat["x"] = kw["latents"].clone()
        return kw

    args = dict(prompt=PROMPT, negative_prompt=NEGATIVE, height=H, width=W, num_inference_steps=5, guidance_scale=5.0,
                generator=torch.Generator().manual_seed(seed), output_type="np", callback_on_step_end=grab,
                guidance_rescale=extra.get("guidance_rescale", 0.0))
    if "clip_skip" in extra and not sdxl:
        # diffusers 0.42.1's encode_prompt reaches text_encoder.text_model, which transformers 5 no longer has: the
        # same embeddings by hand (final_layer_norm of hidden_states[-(clip_skip + 1)] for the prompt, the plain
        # last_hidden_state for the negative prompt, as encode_prompt makes them) and passed in
        args.pop("prompt"), args.pop("negative_prompt")
        te, tok = pipe.text_encoder, pipe.tokenizer

        def ids(text):
            return tok(text, padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt").input_ids

        with torch.no_grad():
            out = te(ids(PROMPT), output_hidden_states=True)
            args["prompt_embeds"] = te.final_layer_norm(out.hidden_states[-(extra["clip_skip"] + 1)])
            args["negative_prompt_embeds"] = te(ids(NEGATIVE))[0]
    elif "clip_skip" in extra:
        args["clip_skip"] = extra["clip_skip"]
    with torch.no_grad():
        img = pipe(**args).images[0]
    img = (img * 255).round().astype(np.uint8)
    return lat["x"][0].permute(1, 2, 0).contiguous().float(), img


def main():
    os.makedirs(OUT, exist_ok=True)
    sd1 = StableDiffusionPipeline.from_pretrained(os.path.join(PIPE, "sd1"), torch_dtype=torch.float32, safety_checker=None)
    sdxl = StableDiffusionXLPipeline.from_pretrained(os.path.join(PIPE, "sdxl"), torch_dtype=torch.float32)
    xl = {k: v for k, v in dict(sdxl.scheduler.config).items() if not k.startswith("_")}
    # every case in order: (model, name, config, sampler, extra); its seed is 3000 + its position
    plan = [("sd1", name, config, s, extra) for name, config, samplers, extra in CASES for s in samplers]
    # clip skip: diffusers' clip_skip=1 is the engine's (A1111's) 2; the negative prompt is encoded without it
    plan.append(("sd1", "clip_skip_sd1", cfg(), "euler", {"clip_skip": 1, "clip_skip_a1111": 2}))
    plan.append(("sdxl", "clip_skip_sdxl", xl, "euler", {"clip_skip": 1, "clip_skip_a1111": 2}))
    only = sys.argv[2].split(",") if len(sys.argv) > 2 and sys.argv[1] == "--only" else None
    kept = {}
    if only:  # redo the cases whose names start with one of these, keep the others
        with open(os.path.join(OUT, "cases.json")) as f:
            kept = {c["name"]: c for c in json.load(f)["cases"]}
    cases = []
    for pos, (model, name, config, sampler, extra) in enumerate(plan):
        key = f"{name}_{sampler.replace('+', 'p')}"
        if only and not any(key.startswith(o) for o in only) and key in kept:
            cases.append(kept[key])
            continue
        seed = 3000 + pos
        cfg_used = dict(config)
        if "timestep_spacing_in_config" in extra:
            cfg_used["timestep_spacing"] = extra["timestep_spacing_in_config"]
        lat, img = run(sd1 if model == "sd1" else sdxl, key, sampler, cfg_used, seed, extra, sdxl=model == "sdxl")
        Image.fromarray(img).save(os.path.join(OUT, key + ".png"))
        save_file({"latent": lat}, os.path.join(OUT, key + ".safetensors"), metadata=META)
        cases.append({"name": key, "model": model, "sampler": sampler, "config": cfg_used, "seed": seed, "steps": 5,
                      "cfg": 5.0, "prompt": PROMPT, "negative_prompt": NEGATIVE, "width": W, "height": H,
                      "guidance_rescale": extra.get("guidance_rescale", 0.0),
                      "timestep_spacing": extra.get("timestep_spacing"), "clip_skip": extra.get("clip_skip_a1111", 0)})
        print(key, "latent |max|", float(lat.abs().max()))
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"meta": META, "cases": cases}, f, indent=1)


if __name__ == "__main__":
    main()
