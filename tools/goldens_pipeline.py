#!/usr/bin/env python3
"""goldens_pipeline.py — end-to-end goldens from diffusers pipelines on two tiny random-weight models
(tests/golden/pipeline/).

  sd1   StableDiffusionPipeline / StableDiffusionImg2ImgPipeline: CLIPTextModel, UNet2DConditionModel with
        1x1-conv projections, AutoencoderKL, PNDM scheduler config as SD 1.5 ships it
  sdxl  StableDiffusionXLPipeline / StableDiffusionXLImg2ImgPipeline: CLIPTextModel + CLIPTextModelWithProjection,
        UNet with the text_time add embedding, EulerDiscrete scheduler config as SDXL ships it ("leading")

Each model is written as a diffusers folder (model_index.json, component config.json files, f16 safetensors,
a tiny BPE tokenizer: the first 600 CLIP merges, so ids stay small). The references run in float32 on the
f16-rounded weights, with a CPU torch.Generator().manual_seed(seed): 3 samplers (Euler a, DPM++ 2M, DDIM, each
built with from_config from the model's scheduler config, as users switch samplers) x with/without negative
prompt x txt2img / img2img at strength 0.6, 4 steps. The pipelines are loaded back from the written folders
(from_pretrained), as a user would. cases.json lists the settings; each case stores the final
8-bit image (PNG) and the latent before decoding (F32, NHWC) in <case>.safetensors.

Versions: torch 2.15.0, diffusers 0.42.1, transformers 5.23.0 (tools/requirements.txt).
Usage: python3 tools/goldens_pipeline.py
"""
import gzip
import json
import os

import numpy as np
import torch
import diffusers
import transformers
from diffusers import (AutoencoderKL, DDIMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                       EulerDiscreteScheduler, PNDMScheduler, StableDiffusionImg2ImgPipeline, StableDiffusionPipeline,
                       StableDiffusionXLImg2ImgPipeline, StableDiffusionXLPipeline, UNet2DConditionModel)
from PIL import Image
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from clip_bpe import byte_encoder

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "golden", "pipeline")
META = {"torch": torch.__version__, "diffusers": diffusers.__version__, "transformers": transformers.__version__,
        "made_by": "tools/goldens_pipeline.py"}
MERGES_GZ = os.path.join(HERE, "..", "text_encoder", "bpe_simple_vocab_16e6.txt.gz")
N_MERGES = 600
W, H = 48, 32
SAMPLERS = {"euler_a": EulerAncestralDiscreteScheduler, "dpm++2m": DPMSolverMultistepScheduler, "ddim": DDIMScheduler}
PROMPT = "a red circle on a blue background, top left"
NEGATIVE = "blurry, green"
SD15_SCHEDULER = {"_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "beta_end": 0.012,
                  "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False,
                  "num_train_timesteps": 1000, "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1,
                  "trained_betas": None}


def write_tokenizer(folder, pad):
    os.makedirs(folder, exist_ok=True)
    lines = gzip.open(MERGES_GZ).read().decode("utf-8").split("\n")[1:1 + N_MERGES]
    merges = [tuple(l.split()) for l in lines]
    chars = list(byte_encoder().values())
    vocab = chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    with open(os.path.join(folder, "vocab.json"), "w") as f:
        json.dump({t: i for i, t in enumerate(vocab)}, f)
    with open(os.path.join(folder, "merges.txt"), "w") as f:
        f.write("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump({"model_max_length": 77, "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
                   "unk_token": "<|endoftext|>", "pad_token": pad, "tokenizer_class": "CLIPTokenizer"}, f)
    with open(os.path.join(folder, "special_tokens_map.json"), "w") as f:
        json.dump({"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
                   "pad_token": pad}, f)
    return len(vocab)


def randomize(model, std):
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or ".norm" in name and name.endswith("weight") or "layer_norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(std * torch.randn(p.shape, generator=g))
            p.copy_(p.half().float())  # the stored f16 values are the model


def text_encoder(vocab, width, layers, projection):
    cfg = CLIPTextConfig(vocab_size=vocab, hidden_size=width, intermediate_size=4 * width, num_hidden_layers=layers,
                         num_attention_heads=2, max_position_embeddings=77, hidden_act="quick_gelu" if not projection else "gelu",
                         projection_dim=width, bos_token_id=vocab - 2, eos_token_id=2, pad_token_id=1)
    m = (CLIPTextModelWithProjection if projection else CLIPTextModel)(cfg).eval()
    randomize(m, 0.1)
    return m


def vae():
    m = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                      up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), layers_per_block=1,
                      latent_channels=4, norm_num_groups=4, sample_size=32, scaling_factor=0.5).eval()
    randomize(m, 0.2)
    return m


def save_model(pipe, folder):
    pipe.save_pretrained(folder, safe_serialization=True)
    for sub in ("tokenizer", "tokenizer_2"):  # the engine reads vocab.json + merges.txt; drop the fast-tokenizer copy
        p = os.path.join(folder, sub, "tokenizer.json")
        if os.path.exists(p):
            os.remove(p)
    # f16 weights, as checkpoints ship; the references use the same rounded values
    for root, _, files in os.walk(folder):
        for fn in files:
            if fn.endswith(".safetensors"):
                from safetensors.torch import load_file
                path = os.path.join(root, fn)
                t = load_file(path)
                save_file({k: v.half() if v.is_floating_point() else v for k, v in t.items()}, path, metadata={"format": "pt", **META})


def make_sd1(folder):
    vocab = write_tokenizer(os.path.join(folder, "tokenizer"), "<|endoftext|>")
    te = text_encoder(vocab, 16, 2, False)
    unet = UNet2DConditionModel(sample_size=16, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=16,
                                attention_head_dim=2, norm_num_groups=4).eval()
    randomize(unet, 0.1)
    # SD 1.5's scheduler_config.json, keys as it ships them (clip_sample matters once DDIM is built from it)
    sched = PNDMScheduler.from_config(SD15_SCHEDULER)
    tok = CLIPTokenizer(os.path.join(folder, "tokenizer", "vocab.json"), os.path.join(folder, "tokenizer", "merges.txt"),
                        pad_token="<|endoftext|>", model_max_length=77)
    pipe = StableDiffusionPipeline(vae=vae(), text_encoder=te, tokenizer=tok, unet=unet, scheduler=sched,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    save_model(pipe, folder)
    # SD 1.5's scheduler_config.json as the hub has it: no timestep_spacing / prediction_type keys, so every
    # sampler built with from_config takes its own class default (diffusers re-saves would write them out)
    with open(os.path.join(folder, "scheduler", "scheduler_config.json"), "w") as f:
        json.dump(SD15_SCHEDULER, f, indent=2)
    pipe = StableDiffusionPipeline.from_pretrained(folder, torch_dtype=torch.float32, safety_checker=None)
    return pipe, StableDiffusionImg2ImgPipeline(**pipe.components)


def make_sdxl(folder):
    vocab = write_tokenizer(os.path.join(folder, "tokenizer"), "<|endoftext|>")
    write_tokenizer(os.path.join(folder, "tokenizer_2"), "!")
    te = text_encoder(vocab, 16, 2, False)
    te2 = text_encoder(vocab, 24, 2, True)
    unet = UNet2DConditionModel(sample_size=16, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=40,
                                attention_head_dim=(2, 4), transformer_layers_per_block=(1, 2), use_linear_projection=True,
                                addition_embed_type="text_time", addition_time_embed_dim=8,
                                projection_class_embeddings_input_dim=24 + 6 * 8, norm_num_groups=4).eval()
    randomize(unet, 0.1)
    # SDXL base's scheduler_config.json keys
    sched = EulerDiscreteScheduler.from_config({"_class_name": "EulerDiscreteScheduler", "beta_end": 0.012,
                                                "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False,
                                                "interpolation_type": "linear", "num_train_timesteps": 1000,
                                                "prediction_type": "epsilon", "sample_max_value": 1.0,
                                                "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1,
                                                "timestep_spacing": "leading", "trained_betas": None,
                                                "use_karras_sigmas": False})
    tok = CLIPTokenizer(os.path.join(folder, "tokenizer", "vocab.json"), os.path.join(folder, "tokenizer", "merges.txt"),
                        pad_token="<|endoftext|>", model_max_length=77)
    tok2 = CLIPTokenizer(os.path.join(folder, "tokenizer_2", "vocab.json"), os.path.join(folder, "tokenizer_2", "merges.txt"),
                         pad_token="!", model_max_length=77)
    v = vae()
    pipe = StableDiffusionXLPipeline(vae=v, text_encoder=te, text_encoder_2=te2, tokenizer=tok, tokenizer_2=tok2, unet=unet,
                                     scheduler=sched, force_zeros_for_empty_prompt=True)
    save_model(pipe, folder)
    pipe = StableDiffusionXLPipeline.from_pretrained(folder, torch_dtype=torch.float32)
    return pipe, StableDiffusionXLImg2ImgPipeline(**pipe.components, requires_aesthetics_score=False)


def init_image():
    y, x = np.mgrid[0:H, 0:W]
    img = np.stack([(x * 255 // (W - 1)), (y * 255 // (H - 1)), ((x + y) % 16) * 16], -1).astype(np.uint8)
    return Image.fromarray(img)


def main():
    os.makedirs(OUT, exist_ok=True)
    init = init_image()
    init.save(os.path.join(OUT, "init.png"))
    cases = []
    for family, make in (("sd1", make_sd1), ("sdxl", make_sdxl)):
        folder = os.path.join(OUT, family)
        txt, i2i = make(folder)
        base_config = txt.scheduler.config
        for sampler, cls in SAMPLERS.items():
            for neg in (None, NEGATIVE):
                for mode in ("txt2img", "img2img"):
                    name = f"{family}_{sampler.replace('+', 'p')}_{'neg' if neg else 'noneg'}_{mode}"
                    seed = 1000 + len(cases)
                    out = {}
                    for kind in ("latent", "np"):
                        pipe = txt if mode == "txt2img" else i2i
                        pipe.scheduler = cls.from_config(base_config)
                        args = dict(prompt=PROMPT, negative_prompt=neg, num_inference_steps=4, guidance_scale=5.0,
                                    generator=torch.Generator().manual_seed(seed), output_type=kind)
                        if mode == "txt2img":
                            args.update(height=H, width=W)
                        else:
                            args.update(image=init, strength=0.6)
                        with torch.no_grad():
                            out[kind] = pipe(**args).images
                    lat = out["latent"][0].permute(1, 2, 0).contiguous().float()  # NCHW -> NHWC
                    img = (out["np"][0] * 255).round().astype(np.uint8)
                    Image.fromarray(img).save(os.path.join(OUT, name + ".png"))
                    save_file({"latent": lat}, os.path.join(OUT, name + ".safetensors"), metadata=META)
                    cases.append({"name": name, "model": family, "sampler": sampler, "prompt": PROMPT,
                                  "negative_prompt": neg, "mode": mode, "strength": 0.6, "steps": 4, "cfg": 5.0,
                                  "seed": seed, "width": W, "height": H})
                    print(name, "latent |max|", float(lat.abs().max()))
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"meta": META, "cases": cases}, f, indent=1)


if __name__ == "__main__":
    main()
