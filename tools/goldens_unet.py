#!/usr/bin/env python3
"""goldens_unet.py — golden data for the UNet (tests/golden/unet/) and full-size key lists (tests/data/).

Three tiny random-weight diffusers UNet2DConditionModel configurations, each with the code paths of one
family, run on batch 2 with non-square latents (two not divisible by 2, so the up path resizes to the
skip's size). Channels (8, 16) with 4 norm groups keep the files small (the real models use 32 groups;
the group count is a config value like any other):
  sd1   1x1-conv projections, 8 heads, CrossAttn/Down levels, layers_per_block 2
  sd2   linear projections, "attention_head_dim" = heads per level, 9-channel (inpainting) conv_in,
        upcast_attention, time_cond_proj_dim (LCM guidance embedding)
  sdxl  text_time add_embedding (pooled text + 6 size/crop ids), no attention at level 0,
        transformer depth 2 at level 1 and in the mid block
Weights are random, rounded to float16 and stored as F16 (as real checkpoints are); the reference runs
in float32 with exactly those values. Activations are stored channels-last (NHWC, [N, 1, T, C]) in F32.
Each file's metadata holds the model's config.json text ("config"). sd1 is also written with the
original single-file (LDM) names under "model.diffusion_model." (conversion written here from the
fact sheet §5.2), to check that both namings load to the same model.

Also writes, for the full-size SD 1.5, SD 2.x, SDXL base and SDXL refiner UNets, diffusers' config.json
(tests/data/unet-config-<model>.json) and the name/shape lists diffusers builds (on the meta device, no
weights) as gzip'd TSV (tests/data/unet-keys-<model>.tsv.gz; SDXL also under LDM names). SD 1.5 instead
copies the UNet rows of the fact sheet's sd15-ldm-keys.tsv to tests/data/sd15-unet-keys.tsv and checks
this script's LDM conversion against them.

Versions: torch 2.15.0, diffusers 0.42.1 (tools/requirements.txt).
Usage: python3 tools/goldens_unet.py
"""
import gzip
import json
import os
import re

import torch
import diffusers
from diffusers import UNet2DConditionModel
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "golden", "unet")
DATA = os.path.join(HERE, "..", "tests", "data")
META = {"torch": torch.__version__, "diffusers": diffusers.__version__, "made_by": "tools/goldens_unet.py"}

TINY = {
    "sd1": dict(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(8, 16),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16, attention_head_dim=8, norm_num_groups=4,
    ),
    "sd2": dict(
        sample_size=8, in_channels=9, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=24, attention_head_dim=(2, 4), use_linear_projection=True, upcast_attention=True,
        time_cond_proj_dim=12, norm_num_groups=4,
    ),
    "sdxl": dict(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=24, attention_head_dim=(2, 4), transformer_layers_per_block=(1, 2),
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=20 + 6 * 8, norm_num_groups=4,
    ),
}
# latent (h, w), context tokens
SHAPES = {"sd1": ((9, 12), 5), "sd2": ((8, 12), 6), "sdxl": ((7, 10), 4)}

FULL = {
    "sd15": dict(sample_size=64, cross_attention_dim=768),
    "sd2": dict(
        sample_size=96, cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20), use_linear_projection=True,
        upcast_attention=True,
    ),
    "sdxl": dict(
        sample_size=128, block_out_channels=(320, 640, 1280),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=2048, attention_head_dim=(5, 10, 20), transformer_layers_per_block=(1, 2, 10),
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
        projection_class_embeddings_input_dim=2816,
    ),
    "sdxl-refiner": dict(
        sample_size=128, block_out_channels=(384, 768, 1536, 1536),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=1280, attention_head_dim=(6, 12, 24, 24), transformer_layers_per_block=4,
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
        projection_class_embeddings_input_dim=2560,
    ),
}


def nhwc(t):
    return t.permute(0, 2, 3, 1).contiguous()


# ---- diffusers -> original (LDM) names, from facts.md §5.2 / §4.4 ----

RESNET_LDM = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
              "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}


def resnet_ldm(rest):
    head, tail = rest.split(".", 1)
    return RESNET_LDM[head] + "." + tail


def to_ldm(name, lpb):
    fixed = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
             "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2",
             "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2"}
    mod, param = name.rsplit(".", 1)
    if mod in fixed:
        return f"{fixed[mod]}.{param}"
    m = re.match(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", name)
    if m:
        i = 1 + int(m[1]) * (lpb + 1) + int(m[3])
        return f"input_blocks.{i}.0.{resnet_ldm(m[4])}" if m[2] == "resnets" else f"input_blocks.{i}.1.{m[4]}"
    m = re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", name)
    if m:
        return f"input_blocks.{(int(m[1]) + 1) * (lpb + 1)}.0.op.{m[2]}"
    m = re.match(r"mid_block\.resnets\.(\d)\.(.*)", name)
    if m:
        return f"middle_block.{2 * int(m[1])}.{resnet_ldm(m[2])}"
    m = re.match(r"mid_block\.attentions\.0\.(.*)", name)
    if m:
        return f"middle_block.1.{m[1]}"
    m = re.match(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", name)
    if m:
        i = int(m[1]) * (lpb + 1) + int(m[3])
        return f"output_blocks.{i}.0.{resnet_ldm(m[4])}" if m[2] == "resnets" else f"output_blocks.{i}.1.{m[4]}"
    m = re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", name)
    if m:
        return None  # needs to know whether the level has attention: handled by the caller
    raise ValueError(f"no LDM name for {name}")


def ldm_state_dict(model, lpb):
    sd = model.state_dict()
    out = {}
    for k, v in sd.items():
        n = to_ldm(k, lpb)
        if n is None:  # upsampler: index 1 after a plain resnet, 2 after resnet + attention
            blk, param = re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", k).groups()
            has_attn = any(s.startswith(f"up_blocks.{blk}.attentions.") for s in sd)
            n = f"output_blocks.{int(blk) * (lpb + 1) + lpb}.{2 if has_attn else 1}.conv.{param}"
        out["model.diffusion_model." + n] = v
    assert len(out) == len(sd)
    return out


def randomize(model, gen):
    # unit-scale activations: weights ~ N(0, 1/fan_in), norm scales ~ 1 + N(0, 0.2), biases ~ N(0, 0.1);
    # then rounded to float16, which is how the file stores them
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim >= 2:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen) / fan_in ** 0.5)
            elif "norm" in name and name.endswith(".weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            p.copy_(p.half().float())


def tiny_goldens():
    os.makedirs(OUT, exist_ok=True)
    for name, cfg in TINY.items():
        gen = torch.Generator().manual_seed({"sd1": 1, "sd2": 2, "sdxl": 3}[name])
        model = UNet2DConditionModel(**cfg).eval()
        randomize(model, gen)
        (h, w), tokens = SHAPES[name]
        n = 2
        x = torch.randn(n, cfg["in_channels"], h, w, generator=gen)
        t = torch.tensor([999.0, 37.5])  # fractional timesteps happen with Karras-style sigmas
        ctx = torch.randn(n, tokens, cfg["cross_attention_dim"], generator=gen)
        kw, extra = {}, {}
        if cfg.get("addition_embed_type") == "text_time":
            pooled_dim = cfg["projection_class_embeddings_input_dim"] - 6 * cfg["addition_time_embed_dim"]
            pooled = torch.randn(n, pooled_dim, generator=gen)
            time_ids = torch.tensor([[72.0, 96.0, 0.0, 0.0, 56.0, 80.0], [1024.0, 768.0, 16.0, 8.0, 56.0, 80.0]])
            kw["added_cond_kwargs"] = {"text_embeds": pooled, "time_ids": time_ids}
            extra = {"text_embeds": pooled.view(n, 1, 1, -1), "time_ids": time_ids}
        if cfg.get("time_cond_proj_dim"):
            tc = torch.randn(n, cfg["time_cond_proj_dim"], generator=gen)
            kw["timestep_cond"] = tc
            extra["timestep_cond"] = tc.view(n, 1, 1, -1)
        with torch.no_grad():
            y = model(x, t, ctx, **kw).sample
        meta = dict(META, config=model.to_json_string())
        io = {"x": nhwc(x), "t": t, "ctx": ctx.view(n, 1, tokens, -1), "y": nhwc(y), **extra}
        io = {f"io.{k}": v.float().contiguous() for k, v in io.items()}
        w16 = {k: v.half().contiguous() for k, v in model.state_dict().items()}
        save_file({**w16, **io}, os.path.join(OUT, f"{name}.safetensors"), metadata=meta)
        if name == "sd1":
            ldm = {k: v.half().contiguous() for k, v in ldm_state_dict(model, cfg["layers_per_block"]).items()}
            save_file({**ldm, **io}, os.path.join(OUT, f"{name}_ldm.safetensors"), metadata=meta)
        print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters, |y| max {y.abs().max():.3f}")


def key_lists():
    os.makedirs(DATA, exist_ok=True)
    ref = os.path.join(HERE, "..", "..", "shared", "reference", "sd15-ldm-keys.tsv")
    for name, cfg in FULL.items():
        with torch.device("meta"):
            model = UNet2DConditionModel(**cfg)
        sd = model.state_dict()
        with open(os.path.join(DATA, f"unet-config-{name}.json"), "w") as f:
            f.write(model.to_json_string())
        if name == "sd15":
            # the SD 1.5 names come from the fact sheet's independently derived list (copied to tests/data);
            # check this script's LDM conversion against it
            if os.path.exists(ref):
                want = [l for l in open(ref) if l.startswith("model.diffusion_model.")]
                with open(os.path.join(DATA, "sd15-unet-keys.tsv"), "w") as f:
                    f.writelines(want)
            want = {l.split("\t")[0]: l.split("\t")[1].strip() for l in open(os.path.join(DATA, "sd15-unet-keys.tsv"))}
            got = {k: ",".join(str(d) for d in v.shape) for k, v in ldm_state_dict(model, 2).items()}
            assert got == want, "LDM conversion disagrees with sd15-ldm-keys.tsv"
            print(f"{name}: LDM conversion matches {len(want)} reference names and shapes")
            continue
        rows = [f"{k}\t{','.join(str(d) for d in v.shape)}\n" for k, v in sd.items()]
        with gzip.open(os.path.join(DATA, f"unet-keys-{name}.tsv.gz"), "wt", compresslevel=9) as f:
            f.write(f"# {name} UNet2DConditionModel state_dict names and shapes, diffusers {diffusers.__version__}\n")
            f.writelines(rows)
        if name == "sdxl":
            ldm = ldm_state_dict(model, 2)
            with gzip.open(os.path.join(DATA, f"unet-keys-{name}-ldm.tsv.gz"), "wt", compresslevel=9) as f:
                f.write(f"# {name} UNet under original single-file names (tools/goldens_unet.py conversion)\n")
                f.writelines(f"{k}\t{','.join(str(d) for d in v.shape)}\n" for k, v in ldm.items())
        print(f"{name}: {len(sd)} tensors")


if __name__ == "__main__":
    tiny_goldens()
    key_lists()
