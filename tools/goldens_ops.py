#!/usr/bin/env python3
"""goldens_ops.py — golden data for the backend ops and shared layers (tests/golden/ops/).

PyTorch computes GroupNorm, LayerNorm and scaled-dot-product attention, and diffusers computes a
ResnetBlock2D and a Transformer2DModel with random weights, on small ragged shapes. Activations are
stored channels-last (NHWC / [N, T, C]) as the engine uses them; weights keep PyTorch layout and
diffusers names. Versions: torch 2.15.0, diffusers 0.42.1 (tools/requirements.txt).

Usage: python3 tools/goldens_ops.py   (writes tests/golden/ops/*.safetensors)
"""
import os

import torch
import torch.nn.functional as F
import diffusers
from diffusers.models.resnet import ResnetBlock2D
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "golden", "ops")
META = {"torch": torch.__version__, "diffusers": diffusers.__version__, "made_by": "tools/goldens_ops.py"}


def nhwc(t):
    return t.permute(0, 2, 3, 1).contiguous()


def save(name, tensors):
    os.makedirs(OUT, exist_ok=True)
    save_file({k: v.detach().float().contiguous() for k, v in tensors.items()}, os.path.join(OUT, name), metadata=META)


def main():
    torch.manual_seed(0)
    # GroupNorm (+ SiLU) on [2, 12, 5, 7] with 4 groups; LayerNorm on [3, 11, 20]
    x = torch.randn(2, 12, 5, 7) * 2 + 1.5
    gn = torch.nn.GroupNorm(4, 12, eps=1e-6)
    torch.nn.init.normal_(gn.weight)
    torch.nn.init.normal_(gn.bias)
    y = gn(x)
    ln = torch.nn.LayerNorm(20, eps=1e-5)
    torch.nn.init.normal_(ln.weight)
    torch.nn.init.normal_(ln.bias)
    lx = torch.randn(3, 11, 20) * 3 - 1
    save("norms.safetensors", {"gn.x": nhwc(x), "gn.weight": gn.weight, "gn.bias": gn.bias, "gn.y": nhwc(y),
                               "gn.y_silu": nhwc(F.silu(y)), "ln.x": lx, "ln.weight": ln.weight, "ln.bias": ln.bias,
                               "ln.y": ln(lx)})

    # attention: heads split the feature dim; causal and cross shapes
    def heads(t, h):  # [N, T, C] -> [N, h, T, d]
        n, tt, c = t.shape
        return t.view(n, tt, h, c // h).transpose(1, 2)

    out = {}
    for name, (n, tq, tk, c, h, causal) in {"self": (2, 19, 19, 40, 5, False), "causal": (2, 77, 77, 24, 3, True),
                                            "cross": (2, 33, 7, 80, 1, False), "hd40": (1, 70, 77, 80, 2, False)}.items():
        q, k, v = torch.randn(n, tq, c), torch.randn(n, tk, c), torch.randn(n, tk, c)
        o = F.scaled_dot_product_attention(heads(q, h), heads(k, h), heads(v, h), is_causal=causal)
        out.update({f"{name}.q": q, f"{name}.k": k, f"{name}.v": v, f"{name}.y": o.transpose(1, 2).reshape(n, tq, c)})
    save("attention.safetensors", out)

    # ResnetBlock2D 24 -> 40 with a 48-wide time embedding (UNet style), eps 1e-5, groups 8
    rb = ResnetBlock2D(in_channels=24, out_channels=40, temb_channels=48, groups=8, eps=1e-5).eval()
    for p in rb.parameters():
        torch.nn.init.normal_(p, std=0.2)
    x = torch.randn(2, 24, 5, 7)
    temb = torch.randn(2, 48)
    with torch.no_grad():
        y = rb(x, temb)
    t = {f"resnet.{k}": v for k, v in rb.state_dict().items()}
    t.update({"x": nhwc(x), "temb": temb, "y": nhwc(y)})
    save("resnet.safetensors", t)

    # Transformer2DModel, 32 channels (32 groups), 2 heads of 16, depth 2, context 7 x 24; both projections
    for lin in (False, True):
        tm = Transformer2DModel(num_attention_heads=2, attention_head_dim=16, in_channels=32, num_layers=2,
                                cross_attention_dim=24, use_linear_projection=lin).eval()
        for p in tm.parameters():
            torch.nn.init.normal_(p, std=0.15)
        x = torch.randn(2, 32, 3, 5)
        ctx = torch.randn(2, 7, 24)
        with torch.no_grad():
            y = tm(x, encoder_hidden_states=ctx).sample
        t = {f"t2d.{k}": v for k, v in tm.state_dict().items()}
        t.update({"x": nhwc(x), "ctx": ctx, "y": nhwc(y)})
        save(f"transformer2d_{'linear' if lin else 'conv'}.safetensors", t)


if __name__ == "__main__":
    main()
