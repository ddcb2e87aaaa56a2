#!/usr/bin/env python3
"""goldens_vae.py — golden data for the AutoencoderKL decoder/encoder (tests/golden/vae/).

Three tiny random-weight diffusers AutoencoderKL models with the real architecture code:
  a: block_out_channels (8, 16), layers_per_block 2, 2 groups — diffusers names + config.json, batch 2
  b: block_out_channels (8, 16, 16), layers_per_block 1, 4 groups — saved ONLY under original LDM
     single-file names (prefix first_stage_model., attention as 1x1 convs) to test the name mapping and
     config inference; also an odd-sized (19x27) image for the encoder's asymmetric downsample padding
  c: block_out_channels (8, 16), layers_per_block 1, 4 groups, 6 latent channels, no quant convs, no
     mid-block attention, shift_factor in config.json — the optional architecture switches
Latents are 5x7 (odd). Weights are stored as F16 (the models compute with the f16-rounded weights in
f32, so the engine loading F16 sees exactly the same numbers); activations are f32, channels-last.
Also: the image <-> float conversions of diffusers' VaeImageProcessor on edge values (image.safetensors).

Versions: torch 2.15.0, diffusers 0.42.1, numpy 1.26.4 (tools/requirements.txt).
Usage: python3 tools/goldens_vae.py   (writes tests/golden/vae/*)
"""
import json
import os

import numpy as np
import torch
import diffusers
from diffusers import AutoencoderKL
from diffusers.image_processor import VaeImageProcessor
from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "golden", "vae")
META = {"torch": torch.__version__, "diffusers": diffusers.__version__, "numpy": np.__version__,
        "made_by": "tools/goldens_vae.py"}


def nhwc(t):
    return t.permute(0, 2, 3, 1).contiguous()


def nchw(t):
    return t.permute(0, 3, 1, 2).contiguous()


def save(name, tensors, dtype=torch.float32):
    os.makedirs(OUT, exist_ok=True)
    save_file({k: v.detach().to(dtype).contiguous() for k, v in tensors.items()}, os.path.join(OUT, name), metadata=META)


def make_model(seed, **cfg):
    torch.manual_seed(seed)
    levels = len(cfg["block_out_channels"])
    m = AutoencoderKL(down_block_types=["DownEncoderBlock2D"] * levels, up_block_types=["UpDecoderBlock2D"] * levels,
                      **cfg).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "norm" in name and name.endswith("weight"):   # GroupNorm gains: not all ones, so they are tested
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:                                             # convs/linears: fan-in scaled, keeps outputs O(1)
                fan_in = p[0].numel()
                p.copy_(torch.randn_like(p) * (1.3 / fan_in) ** 0.5)
            p.copy_(p.half().float())                         # the weights the F16 files hold, exactly
    return m


def diffusers_to_ldm(sd, levels):
    """diffusers AutoencoderKL names -> original LDM single-file names (facts §5.2), prefix first_stage_model."""
    out = {}
    for k, v in sd.items():
        n = k
        for part in ("encoder", "decoder"):
            if not n.startswith(part + "."):
                continue
            rest = n[len(part) + 1:]
            if rest.startswith("down_blocks."):
                f = rest.split(".")
                l = int(f[1])
                if f[2] == "resnets":
                    rest = f"down.{l}.block.{f[3]}." + ".".join(f[4:])
                else:  # downsamplers.0.conv.*
                    rest = f"down.{l}.downsample." + ".".join(f[4:])
            elif rest.startswith("up_blocks."):
                f = rest.split(".")
                l = levels - 1 - int(f[1])
                if f[2] == "resnets":
                    rest = f"up.{l}.block.{f[3]}." + ".".join(f[4:])
                else:  # upsamplers.0.conv.*
                    rest = f"up.{l}.upsample." + ".".join(f[4:])
            elif rest.startswith("mid_block.resnets."):
                f = rest.split(".")
                rest = f"mid.block_{int(f[2]) + 1}." + ".".join(f[3:])
            elif rest.startswith("mid_block.attentions.0."):
                f = rest.split(".")[3:]
                sub = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out": "proj_out"}[f[0]]
                tail = f[-1]
                rest = f"mid.attn_1.{sub}.{tail}"
                if sub != "norm" and tail == "weight":
                    v = v[:, :, None, None]  # LDM keeps q/k/v/proj_out as 1x1 convs
            elif rest.startswith("conv_norm_out."):
                rest = "norm_out." + rest[len("conv_norm_out."):]
            rest = rest.replace("conv_shortcut", "nin_shortcut")
            n = part + "." + rest
        out["first_stage_model." + n] = v
    return out


def forward_all(m, z, img, noise):
    with torch.no_grad():
        dec = m.decode(z).sample
        h = m.encoder(img)
        if m.quant_conv is not None:
            h = m.quant_conv(h)
        post = DiagonalGaussianDistribution(h)
        ref_mean = m.encode(img).latent_dist.mean  # the public path agrees with the manual one
        assert torch.equal(ref_mean, post.mean)
        sample = post.mean + post.std * noise
    return dec, post.mean, sample


def model_goldens(tag, m, batch, lat_hw, extra_img_hw=None, ldm=False, config_extra=None):
    cfg = m.config
    levels = len(cfg.block_out_channels)
    f = 2 ** (levels - 1)
    lc = cfg.latent_channels
    torch.manual_seed(100)
    z = torch.randn(batch, lc, *lat_hw)
    img = torch.rand(batch, 3, lat_hw[0] * f, lat_hw[1] * f) * 2 - 1
    noise = torch.randn(batch, lc, *lat_hw)
    dec, mean, sample = forward_all(m, z, img, noise)
    io = {"dec.z": nhwc(z), "dec.img": nhwc(dec), "enc.img": nhwc(img), "enc.mean": nhwc(mean),
          "enc.noise": nhwc(noise), "enc.sample": nhwc(sample)}
    if extra_img_hw:
        img2 = torch.rand(1, 3, *extra_img_hw) * 2 - 1
        with torch.no_grad():
            mean2 = m.encode(img2).latent_dist.mean
        io.update({"odd.img": nhwc(img2), "odd.mean": nhwc(mean2)})
    print(f"{tag}: dec range [{dec.min():.3f}, {dec.max():.3f}] std {dec.std():.3f}; mean std {mean.std():.3f}")
    save(f"{tag}_io.safetensors", io)
    sd = m.state_dict()
    if ldm:
        lsd = diffusers_to_ldm(sd, levels)
        back = convert_ldm_vae_checkpoint(lsd, dict(cfg))  # diffusers' own converter must invert ours
        assert set(back) == set(sd), set(back) ^ set(sd)
        for k in sd:
            assert torch.equal(back[k].reshape(sd[k].shape), sd[k]), k
        save(f"{tag}_ldm.safetensors", lsd, torch.float16)
    else:
        save(f"{tag}_diffusers.safetensors", sd, torch.float16)
        conf = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(cfg).items() if not k.startswith("_")}
        conf["_class_name"] = "AutoencoderKL"
        conf["_diffusers_version"] = diffusers.__version__
        if config_extra:
            conf.update(config_extra)
        with open(os.path.join(OUT, f"{tag}_config.json"), "w") as fp:
            json.dump(conf, fp, indent=2, sort_keys=True)
            fp.write("\n")


def image_goldens():
    # decode side: diffusers postprocess = denormalize (x*0.5+0.5).clamp(0,1) in torch f32, then
    # numpy (x*255).round().astype(uint8) — numpy rounds half to even. Values near each k+0.5 boundary.
    vals = [-3.0, -1.0, -0.999, 0.0, 0.5, 1.0, 1.0001, 7.0, float("inf"), float("-inf"), 1e-30, -1e-30]
    for k in range(255):
        c = np.float32(2 * (k + 0.5) / 255 - 1)
        x = c
        for _ in range(4):
            x = np.nextafter(x, np.float32(-2))
        for _ in range(9):
            vals.append(float(x))
            x = np.nextafter(x, np.float32(2))
    x = torch.tensor(vals, dtype=torch.float32).reshape(1, 1, 1, -1)  # NCHW with one channel... as 1 row
    den = VaeImageProcessor.denormalize(x)
    u8 = (den.permute(0, 2, 3, 1).float().numpy() * 255).round().astype("uint8").reshape(-1)
    half = 0
    for xv in den.reshape(-1).numpy():
        p = np.float32(xv) * np.float32(255)
        half += p - np.floor(p) == 0.5
    print(f"image: {len(vals)} values, {half} land exactly on .5 after x*255")
    # encode side: pil_to_numpy (u8 / 255.0 in f32) then normalize (2x - 1) on the torch tensor
    u = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    pre = VaeImageProcessor.normalize(VaeImageProcessor.numpy_to_pt(u.astype(np.float32) / 255.0))
    save("image.safetensors", {"to_u8.x": x.reshape(-1), "to_u8.u8": torch.tensor(u8.astype(np.float32)),
                               "from_u8.x": pre.reshape(-1)})


def main():
    a = make_model(1, block_out_channels=(8, 16), layers_per_block=2, norm_num_groups=2, latent_channels=4,
                   scaling_factor=0.18215)
    model_goldens("a", a, batch=2, lat_hw=(5, 7))
    b = make_model(2, block_out_channels=(8, 16, 16), layers_per_block=1, norm_num_groups=4, latent_channels=4)
    model_goldens("b", b, batch=1, lat_hw=(5, 7), extra_img_hw=(19, 27), ldm=True)
    c = make_model(3, block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4, latent_channels=6,
                   use_quant_conv=False, use_post_quant_conv=False, mid_block_add_attention=False,
                   scaling_factor=0.3611, shift_factor=0.1159)
    model_goldens("c", c, batch=1, lat_hw=(5, 7))
    image_goldens()


if __name__ == "__main__":
    main()
