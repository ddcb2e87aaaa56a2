#!/usr/bin/env python3
"""tiny_sd.py — the layout of a tiny Stable Diffusion 1.x diffusers folder for end-to-end tests (tests/data/tiny-sd/).

The `sd batch` and `sd compare` tests need a whole model that renders in a fraction of a second and does not
depend on a trained artifact: what they check (resume, shards, grids, tables against single renders) holds for
any weights. This script builds the real diffusers/transformers modules with tiny widths and writes
  model_index.json, scheduler/scheduler_config.json, {unet,vae,text_encoder}/config.json   as save_pretrained does
  {unet,vae,text_encoder}/keys.tsv   "name<TAB>d0,d1,..." of every tensor save_pretrained writes
but no weights: tests/tiny_model.c fills those names with seeded random values (tests/random_ckpt.c) at test
time, so nothing large is committed. The VAE has four blocks (8x downsampling, as SD's), the UNet two levels, the
text encoder the real 49408-token vocabulary (the engine's tokenizer) at width 32.

Versions: torch 2.15.0, diffusers 0.42.1, transformers 5.23.0 (tools/requirements.txt).
Usage: python3 tools/tiny_sd.py   (rewrites tests/data/tiny-sd/)
"""
import json
import os
import shutil
import tempfile

import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from safetensors import safe_open
from transformers import CLIPTextConfig, CLIPTextModel

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "tiny-sd")


def main():
    torch.manual_seed(0)
    parts = {
        "unet": UNet2DConditionModel(
            sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=32, attention_head_dim=4, norm_num_groups=8),
        "vae": AutoencoderKL(
            in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 16, 16),
            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
            layers_per_block=1, norm_num_groups=4, sample_size=64),
        "text_encoder": CLIPTextModel(CLIPTextConfig(
            vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
            max_position_embeddings=77, bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
            projection_dim=32, hidden_act="quick_gelu")),
    }
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in parts.items():
            model.save_pretrained(os.path.join(tmp, name), safe_serialization=True)
            os.makedirs(os.path.join(OUT, name))
            shutil.copy(os.path.join(tmp, name, "config.json"), os.path.join(OUT, name, "config.json"))
            weights = [f for f in os.listdir(os.path.join(tmp, name)) if f.endswith(".safetensors")]
            assert len(weights) == 1, weights
            with safe_open(os.path.join(tmp, name, weights[0]), "pt") as f, \
                    open(os.path.join(OUT, name, "keys.tsv"), "w") as out:
                out.write("# %s: the tensors of %s (tools/tiny_sd.py)\n" % (name, weights[0]))
                for key in sorted(f.keys()):
                    out.write("%s\t%s\n" % (key, ",".join(str(d) for d in f.get_slice(key).get_shape())))
    DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                  set_alpha_to_one=False, steps_offset=1).save_pretrained(os.path.join(OUT, "scheduler"))
    with open(os.path.join(OUT, "model_index.json"), "w") as f:
        json.dump({"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.42.1",
                   "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
                   "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
                   "scheduler": ["diffusers", "DDIMScheduler"]}, f, indent=2)
    print("wrote", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
