#!/usr/bin/env python3
"""goldens_taesd.py — golden data for TAESD, diffusers' AutoencoderTiny (tests/golden/taesd/).

Tiny random-weight models with the real architecture code (diffusers EncoderTiny / DecoderTiny / AutoencoderTinyBlock):
  a: 8 channels, num_encoder_blocks (1, 2, 1, 2), num_decoder_blocks (2, 1, 2, 1): a diffusers folder
     (config.json + diffusion_pytorch_model.safetensors), and the same weights under the original TAESD names
     (madebyollin/taesd: a_taesd_decoder.safetensors "1.weight" ..., a_taesd_encoder.safetensors "0.weight" ...)
     and ComfyUI's combined names ("taesd_decoder.1.weight", "taesd_encoder.0.weight").
  b: 12 channels, 3 levels (factor 4), one block a level, latent_channels 6, decoder only, original names.
  c: a decoder whose first block changes the channel count (8 -> 12: the 1x1 skip conv without bias), built from
     diffusers' AutoencoderTinyBlock the way DecoderTiny builds its layers; original names.
Inputs: latents 5x7 (odd, batch 2 for a), images [-1, 1] at 8x the latent size. Outputs as diffusers gives them:
decode in [-1, 1] (2x - 1 of the network's [0, 1]), encode = the latent the UNet sees (scaling_factor 1).
Weights are stored as F16 and the models compute with those f16-rounded values in f32, as the engine does.
Also tests/data/taesd-keys.tsv: the names and shapes of a full-size TAESD (AutoencoderTiny() defaults), from which
the C tests write a random-weight full-size model.

Versions: torch 2.15.0, diffusers 0.42.1 (tools/requirements.txt).
Usage: python3 tools/goldens_taesd.py   (writes tests/golden/taesd/* and tests/data/taesd-keys.tsv)
"""
import json
import os

import torch
import torch.nn as nn
import diffusers
from diffusers import AutoencoderTiny
from diffusers.models.unets.unet_2d_blocks import AutoencoderTinyBlock
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(__file__), "..")
OUT = os.path.join(ROOT, "tests", "golden", "taesd")
META = {"torch": torch.__version__, "diffusers": diffusers.__version__, "made_by": "tools/goldens_taesd.py"}


def nhwc(t):
    return t.permute(0, 2, 3, 1).contiguous()


def save(name, tensors, dtype=torch.float32):
    os.makedirs(OUT, exist_ok=True)
    save_file({k: v.detach().to(dtype).contiguous() for k, v in tensors.items()}, os.path.join(OUT, name), metadata=META)


def randomize(m, seed):
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:  # fan-in scaled; each block's residual adds up, so below unit gain keeps outputs O(1)
                p.copy_(torch.randn_like(p) * (1.2 / p[0].numel()) ** 0.5)
            p.copy_(p.half().float())


def original_names(sd, part):
    """diffusers encoder.layers.N / decoder.layers.N -> the original taesd.py Sequential indices (the decoder has
    a parameterless Clamp at index 0, so its indices are one higher)."""
    out = {}
    for k, v in sd.items():
        if not k.startswith(part + ".layers."):
            continue
        rest = k[len(part) + len(".layers."):]
        idx, tail = rest.split(".", 1)
        out[f"{int(idx) + (1 if part == 'decoder' else 0)}.{tail}"] = v
    return out


class SkipDecoder(nn.Module):
    """DecoderTiny's layer list by hand, with a first block that changes 8 -> 12 channels (skip = 1x1 conv)."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), AutoencoderTinyBlock(8, 12, "relu"),
                                    nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(12, 12, 3, padding=1, bias=False),
                                    AutoencoderTinyBlock(12, 12, "relu"), nn.Conv2d(12, 3, 3, padding=1))

    def forward(self, x):  # DecoderTiny.forward
        return self.layers(torch.tanh(x / 3) * 3).mul(2).sub(1)


def main():
    torch.manual_seed(100)
    # a: diffusers folder, and the same weights under the two other naming schemes
    a = AutoencoderTiny(encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
                        num_encoder_blocks=(1, 2, 1, 2), num_decoder_blocks=(2, 1, 2, 1)).eval()
    randomize(a, 1)
    z = torch.randn(2, 4, 5, 7) * 2.5  # beyond 3 too, so the 3·tanh(x/3) clamp matters
    img = torch.rand(2, 3, 40, 56) * 2 - 1
    with torch.no_grad():
        dec = a.decode(z).sample
        enc = a.encode(img).latents
        roundtrip = a.decode(a.encode(img[:1]).latents).sample
    print(f"a: dec [{dec.min():.3f}, {dec.max():.3f}] std {dec.std():.3f}; enc std {enc.std():.3f}")
    save("a_io.safetensors", {"dec.z": nhwc(z), "dec.img": nhwc(dec), "enc.img": nhwc(img), "enc.z": nhwc(enc),
                              "roundtrip.img": nhwc(roundtrip)})
    folder = os.path.join(OUT, "a")
    os.makedirs(folder, exist_ok=True)
    sd = a.state_dict()
    save_file({k: v.half().contiguous() for k, v in sd.items()}, os.path.join(folder, "diffusion_pytorch_model.safetensors"),
              metadata=META)
    conf = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(a.config).items() if not k.startswith("_")}
    conf["_class_name"] = "AutoencoderTiny"
    conf["_diffusers_version"] = diffusers.__version__
    with open(os.path.join(folder, "config.json"), "w") as fp:
        json.dump(conf, fp, indent=2, sort_keys=True)
        fp.write("\n")
    save("a_taesd_decoder.safetensors", original_names(sd, "decoder"), torch.float16)
    save("a_taesd_encoder.safetensors", original_names(sd, "encoder"), torch.float16)
    comfy = {f"taesd_decoder.{k}": v for k, v in original_names(sd, "decoder").items()}
    comfy.update({f"taesd_encoder.{k}": v for k, v in original_names(sd, "encoder").items()})
    save("a_comfy.safetensors", comfy, torch.float16)

    # b: 3 levels (factor 4), 6 latent channels, decoder only
    b = AutoencoderTiny(encoder_block_out_channels=(12, 12, 12), decoder_block_out_channels=(12, 12, 12),
                        num_encoder_blocks=(1, 1, 1), num_decoder_blocks=(1, 1, 1), latent_channels=6).eval()
    randomize(b, 2)
    zb = torch.randn(1, 6, 5, 7) * 2
    with torch.no_grad():
        decb = b.decode(zb).sample
    print(f"b: dec [{decb.min():.3f}, {decb.max():.3f}] std {decb.std():.3f}")
    save("b_io.safetensors", {"dec.z": nhwc(zb), "dec.img": nhwc(decb)})
    save("b_taesd_decoder.safetensors", original_names(b.state_dict(), "decoder"), torch.float16)

    # c: a channel-changing block (the skip conv)
    c = SkipDecoder().eval()
    randomize(c, 3)
    zc = torch.randn(1, 4, 5, 7) * 2
    with torch.no_grad():
        decc = c(zc)
    print(f"c: dec [{decc.min():.3f}, {decc.max():.3f}] std {decc.std():.3f}")
    save("c_io.safetensors", {"dec.z": nhwc(zc), "dec.img": nhwc(decc)})
    save("c_taesd_decoder.safetensors", {f"{int(k.split('.')[1]) + 1}.{k.split('.', 2)[2]}": v
                                         for k, v in c.state_dict().items()}, torch.float16)

    # the full-size architecture's names and shapes (random weights are written by the C tests)
    full = AutoencoderTiny()
    with open(os.path.join(ROOT, "tests", "data", "taesd-keys.tsv"), "w") as fp:
        for k, v in full.state_dict().items():
            fp.write(f"{k}\t{','.join(str(d) for d in v.shape)}\n")
    print(f"full size: {sum(v.numel() for v in full.state_dict().values())} parameters")


if __name__ == "__main__":
    main()
