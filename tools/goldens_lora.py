#!/usr/bin/env python3
"""goldens_lora.py — goldens for LoRA / LyCORIS adapters and textual-inversion embeddings (tests/golden/lora/).

1. Whole generations against diffusers on the tiny SD1 and SDXL models of tools/goldens_pipeline.py
   (tests/golden/pipeline/{sd1,sdxl}, read as float32: the engine's test stores their UNet and text encoders as F32
   copies, so a merged weight is exactly base + update as in diffusers). Adapter files written here:
     sd1_kohya.safetensors   kohya-ss layout for SD 1.x (lora_unet_<diffusers path>, lora_te_text_model_), ranks 2
                             and 4 with one alpha (scales 1.5, 0.75), a LoCon 3x3 module on a resnet conv and 1x1
                             conv LoRAs on proj_in/out
     sd1_peft.safetensors    diffusers' own save_lora_weights (unet. / text_encoder., lora_A / lora_B, alpha in the
                             "lora_adapter_metadata" JSON); sd1_peft_alpha.safetensors the same factors with .alpha keys
     sdxl_kohya.safetensors  kohya-ss SDXL layout (lora_unet_<LDM block path>, lora_te1_, lora_te2_)
     sdxl_peft.safetensors   diffusers' save_lora_weights for SDXL (unet., text_encoder., text_encoder_2.)
     hexstyle*.safetensors, neg1.safetensors   textual-inversion embeddings (SD1 emb_params; SDXL clip_l + clip_g)
   The references are StableDiffusion(XL)Pipeline with load_lora_weights + set_adapters (strengths per adapter and
   per component: set_adapters(..., [{"unet": u, "text_encoder": t}]) is cross_attention_kwargs' scale made
   per part) and load_textual_inversion, euler_a, 4 steps, guidance 5, CPU generator. SDXL's pooled vector is read at
   the end-of-text token as AUTOMATIC1111 does (transformers' legacy argmax would read it at the added token, whose
   id is the largest): the script computes it so and passes it in.
2. LoHa, LoKr, DoRA (and LoCon's Tucker mid) against NumPy implementations of the published formulas
   (adapters.safetensors: modules + "base.<case>" weights + "expect.<case>" merged weights; cases.json), and one whole
   generation each with such a file on the SD1 model against the same model whose weights NumPy merged
   (merged_<file>.safetensors: the merged tensors; the test writes them into a copy of the model).

Versions: torch 2.15.0, diffusers 0.42.1, transformers 5.23.0, peft 0.21.2 (tools/requirements.txt).
Usage: python3 tools/goldens_lora.py
"""
import json
import os
import shutil
import tempfile

import numpy as np
import torch
import diffusers
import peft
import transformers
from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline
from PIL import Image
from safetensors.numpy import save_file as save_np
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "tests", "golden", "pipeline")
OUT = os.path.join(HERE, "..", "tests", "golden", "lora")
LORAS = os.path.join(OUT, "loras")   # the adapter files (the tests' --lora-model-dir)
META = {"torch": torch.__version__, "diffusers": diffusers.__version__, "transformers": transformers.__version__,
        "peft": peft.__version__, "made_by": "tools/goldens_lora.py"}
W, H = 48, 32
UNET_LINEAR = ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "attn2.to_q", "attn2.to_k", "attn2.to_v",
               "attn2.to_out.0", "ff.net.0.proj", "ff.net.2", "proj_in", "proj_out")
TE_LINEAR = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "mlp.fc1", "mlp.fc2")


def rng(seed):
    return np.random.default_rng(seed)


def targets(model, suffixes, extra=()):
    """(name, module) of the Linear / Conv2d layers whose names end with one of `suffixes` or are in `extra`."""
    out = []
    for name, mod in model.named_modules():
        if isinstance(mod, (torch.nn.Linear, torch.nn.Conv2d)) and (name.endswith(suffixes) or name in extra):
            out.append((name, mod))
    return out


def kohya_factors(mod, r, g, scale=0.35):
    """Random LoRA factors for a layer: down [r, in(, kh, kw)], up [out, r(, 1, 1)], sized so the update is a sizeable
    fraction of the weight."""
    w = mod.weight.detach().numpy()
    if w.ndim == 4:
        down = g.standard_normal((r, w.shape[1], w.shape[2], w.shape[3])).astype(np.float32)
        up = g.standard_normal((w.shape[0], r, 1, 1)).astype(np.float32)
    else:
        down = g.standard_normal((r, w.shape[1])).astype(np.float32)
        up = g.standard_normal((w.shape[0], r)).astype(np.float32)
    k = scale * float(np.abs(w).mean()) / np.sqrt(r * down[0].size) * 2
    return (down * np.sqrt(k)).astype(np.float16).astype(np.float32), (up * np.sqrt(k)).astype(np.float16).astype(np.float32)


def ldm_unet_name(name, lpb):
    """diffusers UNet path -> the LDM (sgm) path kohya-ss uses for SDXL (facts §5.2, inverted)."""
    p = name.split(".")
    sub = {"conv1": "in_layers.2", "conv2": "out_layers.3", "time_emb_proj": "emb_layers.1", "conv_shortcut": "skip_connection"}
    if p[0] == "down_blocks":
        b, kind = int(p[1]), p[2]
        if kind == "downsamplers":
            return "input_blocks.%d.0.op" % ((b + 1) * (lpb + 1))
        i = 1 + b * (lpb + 1) + int(p[3])
        if kind == "resnets":
            return "input_blocks.%d.0.%s" % (i, sub[p[4]])
        return "input_blocks.%d.1.%s" % (i, ".".join(p[4:]))
    if p[0] == "mid_block":
        if p[1] == "attentions":
            return "middle_block.1.%s" % ".".join(p[3:])
        return "middle_block.%d.%s" % (2 * int(p[2]), sub[p[3]])
    if p[0] == "up_blocks":
        b, kind = int(p[1]), p[2]
        if kind == "upsamplers":
            raise ValueError(name)
        i = b * (lpb + 1) + int(p[3])
        if kind == "resnets":
            return "output_blocks.%d.0.%s" % (i, sub[p[4]])
        return "output_blocks.%d.1.%s" % (i, ".".join(p[4:]))
    raise ValueError(name)


def kohya_file(path, parts, seed, meta=None):
    """parts: [(prefix, model, suffixes, extra, ldm_lpb or None)]. Writes lora_down / lora_up / alpha (f16) and returns
    the number of modules."""
    g = rng(seed)
    sd = {}
    for prefix, model, suffixes, extra, lpb in parts:
        for k, (name, mod) in enumerate(targets(model, suffixes, extra)):
            r = 4 if k % 3 else 2
            down, up = kohya_factors(mod, r, g)
            if prefix.startswith("lora_te") and not name.startswith("text_model."):
                name = "text_model." + name  # kohya's spelling (transformers 5 modules have no text_model level)
            key = prefix + (ldm_unet_name(name, lpb) if lpb else name).replace(".", "_")
            sd[key + ".lora_down.weight"] = torch.from_numpy(down).half()
            sd[key + ".lora_up.weight"] = torch.from_numpy(up).half()
            # one alpha for the file, as kohya-ss writes them (ranks differ, so scales do: 1.5 and 0.75); diffusers 0.42
            # gives modules of a file whose alphas differ the wrong scales (its alpha_pattern keys miss the layers),
            # so per-module alphas are checked against NumPy instead (lycoris_on_model)
            sd[key + ".alpha"] = torch.tensor(3.0).half()
    save_file(sd, path, metadata=dict(META, **(meta or {})))
    print("%s: %d modules" % (os.path.basename(path), len(sd) // 3))


def check_loaded(pipe, files):
    """Every LoRA layer diffusers made holds one of the files' up factors (transformers re-initialises factors it could
    not place at random, so a non-zero factor proves nothing)."""
    from safetensors.torch import load_file
    ups = {}
    for f in files:
        for k, v in load_file(f).items():
            if k.endswith((".lora_up.weight", ".lora_B.weight")):
                ups.setdefault(v.numel(), []).append(v.float().flatten())
    n = 0
    for comp in ("unet", "text_encoder", "text_encoder_2"):
        model = getattr(pipe, comp, None)
        for name, m in (model.named_modules() if model is not None else []):
            if hasattr(m, "lora_B"):
                for a, lin in m.lora_B.items():
                    w = lin.weight.detach().float().flatten()
                    assert any(torch.equal(w, u) for u in ups.get(w.numel(), [])), "%s %s: adapter %s not loaded" % (comp, name, a)
                    n += 1
    return n


def peft_file(pipe, path, parts, seed, alpha_keys_path=None):
    """diffusers' own LoRA file: PEFT adapters with random factors, saved by save_lora_weights (alpha in metadata).
    With alpha_keys_path, also the same factors with an .alpha key per module and no metadata."""
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    g = rng(seed)
    layers, metas = {}, {}
    for comp, model, suffixes in parts:
        model.add_adapter(LoraConfig(r=4, lora_alpha=3, target_modules=list(suffixes), init_lora_weights=True), adapter_name="mk")
        with torch.no_grad():
            for name, mod in model.named_modules():
                if hasattr(mod, "lora_A") and "mk" in mod.lora_A:
                    down, up = kohya_factors(mod.base_layer, 4, g)
                    mod.lora_A["mk"].weight.copy_(torch.from_numpy(down).reshape(mod.lora_A["mk"].weight.shape))
                    mod.lora_B["mk"].weight.copy_(torch.from_numpy(up).reshape(mod.lora_B["mk"].weight.shape))
        layers[comp] = get_peft_model_state_dict(model, adapter_name="mk")
        metas[comp] = model.peft_config["mk"].to_dict()
    d = tempfile.mkdtemp()
    kw = {}
    for comp in layers:
        key = {"unet": "unet_lora_layers", "text_encoder": "text_encoder_lora_layers", "text_encoder_2": "text_encoder_2_lora_layers"}[comp]
        kw[key] = layers[comp]
        kw[key.replace("_layers", "_adapter_metadata")] = metas[comp]
    type(pipe).save_lora_weights(d, **kw, safe_serialization=True)
    shutil.move(os.path.join(d, "pytorch_lora_weights.safetensors"), path)
    shutil.rmtree(d)
    for comp, model, _ in parts:
        (model.delete_adapters if hasattr(model, "delete_adapters") else model.delete_adapter)("mk")
    if alpha_keys_path:
        from safetensors.torch import load_file
        sd = load_file(path)
        out = {}
        for k, v in sd.items():
            out[k] = v
            if k.endswith(".lora_A.weight"):
                out[k[: -len(".lora_A.weight")] + ".alpha"] = torch.tensor(3.0)
        save_file(out, alpha_keys_path, metadata=META)


def sd1_pipe():
    pipe = StableDiffusionPipeline.from_pretrained(os.path.join(SRC, "sd1"), torch_dtype=torch.float32, safety_checker=None)
    pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def sdxl_pipe():
    pipe = StableDiffusionXLPipeline.from_pretrained(os.path.join(SRC, "sdxl"), torch_dtype=torch.float32)
    pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def sdxl_embeds(pipe, prompt):
    """prompt_embeds as diffusers computes them; the pooled vector at the first end-of-text token (AUTOMATIC1111)."""
    pe, _, pooled, _ = pipe.encode_prompt(prompt, do_classifier_free_guidance=False)
    text = pipe.maybe_convert_prompt(prompt, pipe.tokenizer_2)
    ids = pipe.tokenizer_2(text, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    eos = pipe.tokenizer_2.eos_token_id
    pos = int((ids[0] == eos).nonzero()[0, 0])
    with torch.no_grad():
        out = pipe.text_encoder_2(ids, output_hidden_states=True)
        pooled_eos = pipe.text_encoder_2.text_projection(out.last_hidden_state[:, pos])  # last_hidden_state: after the final LN
    return pe, pooled_eos, pooled


def run(pipe, case, **extra):
    out = {}
    for kind in ("latent", "np"):
        args = dict(num_inference_steps=4, guidance_scale=5.0, height=H, width=W,
                    generator=torch.Generator().manual_seed(case["seed"]), output_type=kind, **extra)
        with torch.no_grad():
            out[kind] = pipe(**args).images
    lat = out["latent"][0].permute(1, 2, 0).contiguous().float()
    img = (out["np"][0] * 255).round().astype(np.uint8)
    Image.fromarray(img).save(os.path.join(OUT, case["name"] + ".png"))
    save_file({"latent": lat}, os.path.join(OUT, case["name"] + ".safetensors"), metadata=META)
    print(case["name"], "latent |max|", float(lat.abs().max()))


def lora_cases(make_pipe, model, specs, prompt, seed0, encoders, cases):
    """Each (name, [(file, te, unet)], tagged prompt, negative) on a fresh pipeline (diffusers' unload_lora_weights
    leaves state behind), the strengths per part as set_adapters takes them; appends the case records."""
    for k, (name, loras, tagged, negative) in enumerate(specs):
        pipe = make_pipe()
        names = []
        for i, (f, te, un) in enumerate(loras):
            pipe.load_lora_weights(os.path.join(LORAS, f + ".safetensors"), adapter_name="a%d" % i)
            names.append("a%d" % i)
        pipe.set_adapters(names, [dict({"unet": un}, **{e: te for e in encoders}) for _, te, un in loras])
        print("  %d LoRA layers loaded" % check_loaded(pipe, [os.path.join(LORAS, f + ".safetensors") for f, _, _ in loras]))
        case = {"name": name, "model": model, "prompt": tagged, "negative_prompt": negative, "seed": seed0 + k,
                "steps": 4, "cfg": 5.0, "sampler": "euler_a", "width": W, "height": H, "mode": "txt2img"}
        run(pipe, case, prompt=prompt, negative_prompt=negative)
        cases.append(case)


# ------------------------------------------------------------------------------------------ NumPy references

def np_lora(up, down, mid=None):
    if mid is None:
        return (up.reshape(up.shape[0], -1) @ down.reshape(down.shape[0], -1))
    u, d = up.reshape(up.shape[0], -1), down.reshape(down.shape[0], -1)
    return np.einsum("ab,bcyx,cd->adyx", u, mid, d)


def np_tucker(t, wa, wb):
    """LyCORIS' rebuild: t [r, r, kh, kw], wa [r, out], wb [r, in] -> [out, in, kh, kw]."""
    return np.einsum("ijyx,ip,jq->pqyx", t, wa, wb)


def np_dora(w, d, mag, per_in):
    v = w + d
    if per_in:
        n = np.sqrt((v.transpose(1, 0, *range(2, v.ndim)).reshape(v.shape[1], -1) ** 2).sum(1))
        f = mag.reshape(-1) / n
        return v * f.reshape(1, -1, *([1] * (v.ndim - 2)))
    n = np.sqrt((v.reshape(v.shape[0], -1) ** 2).sum(1))
    f = mag.reshape(-1) / n
    return v * f.reshape(-1, *([1] * (v.ndim - 1)))


def lycoris_cases(g):
    """Synthetic layers and modules of every method and layout, with their merged weights by the formulas."""
    tensors, cases = {}, []

    def f(*shape, s=1.0):
        return (s * g.standard_normal(shape)).astype(np.float16).astype(np.float32)

    def add(name, base, module, delta_fn, strength, alpha=None, rank=None, dora=None, per_in=False, scale=None):
        for k, v in module.items():
            tensors[name + "." + k] = v
        if alpha is not None:
            tensors[name + ".alpha"] = np.array(alpha, dtype=np.float32)
        s = scale if scale is not None else (alpha / rank if alpha is not None and rank else 1.0)
        d = s * delta_fn().reshape(base.shape)
        if dora is not None:
            tensors[name + (".lora_magnitude_vector" if dora[0] == "peft" else ".dora_scale")] = dora[1]
            merged = base + strength * (np_dora(base, d, dora[1], per_in) - base)
        else:
            merged = base + strength * d
        tensors["base." + name] = base
        tensors["expect." + name] = merged.astype(np.float32)
        cases.append({"module": name, "shape": list(base.shape) + [1] * (4 - base.ndim), "strength": strength})

    # LoRA linear and LoCon 3x3 (plain and Tucker)
    w = f(12, 10, s=0.2); u, d = f(12, 3, s=0.3), f(3, 10, s=0.3)
    add("lora_lin", w, {"lora_up.weight": u, "lora_down.weight": d}, lambda: np_lora(u, d), 0.7, alpha=1.5, rank=3)
    w = f(6, 5, 3, 3, s=0.2); u, d = f(6, 4, 1, 1, s=0.3), f(4, 5, 3, 3, s=0.3)
    add("locon", w, {"lora_up.weight": u, "lora_down.weight": d}, lambda: np_lora(u, d), -0.8, alpha=2.0, rank=4)
    w = f(6, 5, 3, 3, s=0.2); u, d, m = f(6, 3, 1, 1, s=0.3), f(3, 5, 1, 1, s=0.3), f(3, 3, 3, 3, s=0.3)
    add("locon_tucker", w, {"lora_up.weight": u, "lora_down.weight": d, "lora_mid.weight": m}, lambda: np_lora(u, d, m), 1.0, alpha=3.0, rank=3)
    # LoHa: linear, conv (flattened), conv with Tucker cores
    w = f(9, 7, s=0.2); a1, b1, a2, b2 = f(9, 3, s=0.4), f(3, 7, s=0.4), f(9, 3, s=0.4), f(3, 7, s=0.4)
    add("loha_lin", w, {"hada_w1_a": a1, "hada_w1_b": b1, "hada_w2_a": a2, "hada_w2_b": b2}, lambda: (a1 @ b1) * (a2 @ b2), 1.2, alpha=2.0, rank=3)
    w = f(6, 4, 3, 3, s=0.2); a1, b1, a2, b2 = f(6, 2, s=0.4), f(2, 36, s=0.4), f(6, 2, s=0.4), f(2, 36, s=0.4)
    add("loha_conv", w, {"hada_w1_a": a1, "hada_w1_b": b1, "hada_w2_a": a2, "hada_w2_b": b2}, lambda: (a1 @ b1) * (a2 @ b2), 0.5)
    w = f(6, 4, 3, 3, s=0.2)
    a1, b1, t1, a2, b2, t2 = f(3, 6, s=0.4), f(3, 4, s=0.4), f(3, 3, 3, 3, s=0.4), f(3, 6, s=0.4), f(3, 4, s=0.4), f(3, 3, 3, 3, s=0.4)
    add("loha_tucker", w, {"hada_w1_a": a1, "hada_w1_b": b1, "hada_t1": t1, "hada_w2_a": a2, "hada_w2_b": b2, "hada_t2": t2},
        lambda: np_tucker(t1, a1, b1) * np_tucker(t2, a2, b2), -1.0, alpha=1.0, rank=3)
    # LoKr: full w1 + factored w2 (linear); factored w1 + full 4-D w2 (conv); Tucker w2 (conv); both full (alpha ignored)
    w = f(8, 12, s=0.2); w1, w2a, w2b = f(2, 3, s=0.5), f(4, 2, s=0.5), f(2, 4, s=0.5)
    add("lokr_lin", w, {"lokr_w1": w1, "lokr_w2_a": w2a, "lokr_w2_b": w2b}, lambda: np.kron(w1, w2a @ w2b), 0.9, alpha=1.0, rank=2)
    w = f(6, 4, 3, 3, s=0.2); w1a, w1b, w2 = f(2, 1, s=0.5), f(1, 2, s=0.5), f(3, 2, 3, 3, s=0.5)
    add("lokr_conv", w, {"lokr_w1_a": w1a, "lokr_w1_b": w1b, "lokr_w2": w2}, lambda: np.kron((w1a @ w1b)[:, :, None, None], w2), 1.0, alpha=0.5, rank=1)
    w = f(6, 4, 3, 3, s=0.2); w1, w2a, w2b, t2 = f(2, 2, s=0.5), f(2, 3, s=0.5), f(2, 2, s=0.5), f(2, 2, 3, 3, s=0.5)
    add("lokr_tucker", w, {"lokr_w1": w1, "lokr_w2_a": w2a, "lokr_w2_b": w2b, "lokr_t2": t2},
        lambda: np.kron(w1[:, :, None, None], np_tucker(t2, w2a, w2b)), 0.6, alpha=4.0, rank=2)
    w = f(6, 6, s=0.2); w1, w2 = f(2, 3, s=0.5), f(3, 2, s=0.5)
    add("lokr_full", w, {"lokr_w1": w1, "lokr_w2": w2}, lambda: np.kron(w1, w2), 1.0, alpha=8.0, rank=0, scale=1.0)
    # DoRA: kohya/LyCORIS dora_scale per output row ([out, 1]) and the older per-input layout ([1, in]), PEFT magnitude
    w = f(10, 8, s=0.2); u, d = f(10, 2, s=0.3), f(2, 8, s=0.3)
    add("dora_out", w, {"lora_up.weight": u, "lora_down.weight": d}, lambda: np_lora(u, d), 1.0, alpha=1.0, rank=2,
        dora=("kohya", (np.abs(f(10, 1)) + 0.5)))
    w = f(10, 8, s=0.2); u, d = f(10, 2, s=0.3), f(2, 8, s=0.3)
    add("dora_in", w, {"lora_up.weight": u, "lora_down.weight": d}, lambda: np_lora(u, d), 0.6, dora=("kohya", (np.abs(f(1, 8)) + 0.5)), per_in=True)
    w = f(10, 8, s=0.2); u, d = f(10, 2, s=0.3), f(2, 8, s=0.3)
    add("dora_peft", w, {"lora_B.weight": u, "lora_A.weight": d}, lambda: np_lora(u, d), 1.0, dora=("peft", (np.abs(f(10)) + 0.5)))
    w = f(5, 4, 3, 3, s=0.2); a1, b1, a2, b2 = f(5, 2, s=0.4), f(2, 36, s=0.4), f(5, 2, s=0.4), f(2, 36, s=0.4)
    add("dora_loha", w, {"hada_w1_a": a1, "hada_w1_b": b1, "hada_w2_a": a2, "hada_w2_b": b2}, lambda: (a1 @ b1) * (a2 @ b2), -0.5,
        dora=("kohya", (np.abs(f(5, 1, 1, 1)) + 0.5)))
    return tensors, cases


def lycoris_on_model(pipe, g):
    """A LoHa + LoKr + DoRA file on some of the tiny SD1 model's layers, and those layers merged by NumPy."""
    unet, te = pipe.unet, pipe.text_encoder
    tensors, merged = {}, {}

    def f(*shape, s=1.0):
        return (s * g.standard_normal(shape)).astype(np.float16).astype(np.float32)

    picks = [("unet", unet, "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q", "loha"),
             ("unet", unet, "down_blocks.0.attentions.0.transformer_blocks.0.ff.net.0.proj", "lokr"),
             ("unet", unet, "up_blocks.1.attentions.0.transformer_blocks.0.attn2.to_v", "dora"),
             ("unet", unet, "down_blocks.0.resnets.0.conv1", "loha_tucker"),
             ("unet", unet, "up_blocks.1.resnets.0.conv2", "lokr_conv"),
             ("text_encoder", te, "encoder.layers.1.mlp.fc1", "loha")]
    for part, model, name, kind in picks:
        mod = dict(model.named_modules())[name]
        w = mod.weight.detach().numpy().astype(np.float32)
        key = ("lora_unet_" + name if part == "unet" else "lora_te_text_model_" + name).replace(".", "_")
        out, inn = w.shape[0], w.shape[1]
        k = int(np.prod(w.shape[2:])) if w.ndim == 4 else 1
        s = 0.5 * float(np.abs(w).mean())
        if kind == "loha":
            a1, b1, a2, b2 = f(out, 2, s=np.sqrt(s)), f(2, inn * k, s=1.0), f(out, 2, s=1.0), f(2, inn * k, s=np.sqrt(s) / 2)
            mod_t = {"hada_w1_a": a1, "hada_w1_b": b1, "hada_w2_a": a2, "hada_w2_b": b2, "alpha": np.array(1.0, np.float32)}
            d = 0.5 * (a1 @ b1) * (a2 @ b2)
        elif kind == "loha_tucker":
            a1, b1, t1 = f(2, out, s=np.sqrt(s)), f(2, inn), f(2, 2, 3, 3)
            a2, b2, t2 = f(2, out), f(2, inn), f(2, 2, 3, 3, s=np.sqrt(s) / 3)
            mod_t = {"hada_w1_a": a1, "hada_w1_b": b1, "hada_t1": t1, "hada_w2_a": a2, "hada_w2_b": b2, "hada_t2": t2}
            d = np_tucker(t1, a1, b1) * np_tucker(t2, a2, b2)
        elif kind == "lokr":
            w1, w2a, w2b = f(2, 2, s=0.5), f(out // 2, 2, s=np.sqrt(s)), f(2, inn // 2, s=np.sqrt(s))
            mod_t = {"lokr_w1": w1, "lokr_w2_a": w2a, "lokr_w2_b": w2b, "alpha": np.array(2.0, np.float32)}
            d = np.kron(w1, w2a @ w2b)
        elif kind == "lokr_conv":
            w1, w2 = f(2, 2, s=0.5), f(out // 2, inn // 2, 3, 3, s=s)
            mod_t = {"lokr_w1": w1, "lokr_w2": w2}
            d = np.kron(w1[:, :, None, None], w2)
        else:  # dora on a LoRA
            u, dn = f(out, 2, s=np.sqrt(s)), f(2, inn, s=np.sqrt(s))
            mag = np.sqrt((w.reshape(out, -1) ** 2).sum(1, keepdims=True)) * (1 + 0.2 * f(out, 1))
            mod_t = {"lora_up.weight": u, "lora_down.weight": dn, "dora_scale": mag.astype(np.float32)}
            d = np_dora(w, u @ dn, mag, False) - w
        for kk, v in mod_t.items():
            tensors[key + "." + kk] = v
        merged[part + "/" + name + ".weight"] = (w + d.reshape(w.shape)).astype(np.float32)  # <component>/<its file's name>
    return tensors, merged


# ------------------------------------------------------------------------------------------ main

def main():
    os.makedirs(LORAS, exist_ok=True)
    cases = []
    # ---- SD 1.x ----
    pipe = sd1_pipe()
    kohya_file(os.path.join(LORAS, "sd1_kohya.safetensors"),
                   [("lora_unet_", pipe.unet, UNET_LINEAR, ("down_blocks.0.resnets.0.conv1",), None),
                    ("lora_te_", pipe.text_encoder, TE_LINEAR, (), None)], 11, {"ss_base_model_version": "sd_v1"})
    peft_file(pipe, os.path.join(LORAS, "sd1_peft.safetensors"),
              [("unet", pipe.unet, ["to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj"]), ("text_encoder", pipe.text_encoder, ["q_proj", "v_proj", "fc2"])],
              12, os.path.join(LORAS, "sd1_peft_alpha.safetensors"))
    prompt, neg = "a red circle on a blue background, top left", "blurry, green"
    sd1_cases = [
        ("sd1_kohya", [("sd1_kohya", 1.0, 1.0)], prompt + " <lora:sd1_kohya:1>", neg),
        ("sd1_kohya_split", [("sd1_kohya", 0.5, 1.3)], prompt + " <lora:sd1_kohya:0.5:1.3>", neg),
        ("sd1_peft", [("sd1_peft", 1.0, 1.0)], "<lora:sd1_peft> " + prompt, None),
        ("sd1_two", [("sd1_kohya", 0.8, 0.8), ("sd1_peft", -0.6, -0.6)], prompt + " <lora:sd1_kohya:0.8> <lora:sd1_peft:-0.6>", neg),
    ]
    lora_cases(sd1_pipe, "sd1", sd1_cases, prompt, 2000, ("text_encoder",), cases)
    # textual inversion, SD 1.x: a 3-vector embedding in the prompt, a 1-vector one in the negative prompt
    pipe = sd1_pipe()
    g = rng(21)
    hx = torch.from_numpy(g.standard_normal((3, 16)).astype(np.float32) * 0.4).half()
    ng = torch.from_numpy(g.standard_normal((1, 16)).astype(np.float32) * 0.4).half()
    os.makedirs(os.path.join(OUT, "emb"), exist_ok=True)
    save_file({"emb_params": hx}, os.path.join(OUT, "emb", "hexstyle.safetensors"), metadata=META)
    save_file({"string_to_param.*": ng}, os.path.join(OUT, "emb", "neg1.safetensors"), metadata=META)
    pipe.load_textual_inversion(hx.float(), token="hexstyle")
    pipe.load_textual_inversion(ng.float(), token="neg1")
    case = {"name": "sd1_ti", "model": "sd1", "prompt": "a red circle on a hexstyle background, top left",
            "negative_prompt": "neg1, green", "seed": 2100, "steps": 4, "cfg": 5.0, "sampler": "euler_a", "width": W, "height": H,
            "mode": "txt2img", "embeddings": ["hexstyle", "neg1"]}
    run(pipe, case, prompt=case["prompt"], negative_prompt=case["negative_prompt"])
    cases.append(case)
    del pipe

    # ---- LoHa / LoKr / DoRA ----
    g = rng(31)
    tensors, ly_cases = lycoris_cases(g)
    save_np(tensors, os.path.join(OUT, "adapters.safetensors"), metadata=META)
    pipe = sd1_pipe()
    tensors, merged = lycoris_on_model(pipe, rng(32))
    save_np(tensors, os.path.join(LORAS, "sd1_lycoris.safetensors"), metadata=META)  # LoHa + LoKr + DoRA, kohya names
    save_np(merged, os.path.join(OUT, "merged_sd1_lycoris.safetensors"), metadata=META)
    del pipe

    # ---- SDXL ----
    pipe = sdxl_pipe()
    kohya_file(os.path.join(LORAS, "sdxl_kohya.safetensors"),
                   [("lora_unet_", pipe.unet, UNET_LINEAR, ("down_blocks.1.resnets.0.conv1", "up_blocks.0.resnets.1.conv2"), 1),
                    ("lora_te1_", pipe.text_encoder, TE_LINEAR, (), None), ("lora_te2_", pipe.text_encoder_2, TE_LINEAR, (), None)],
                   13, {"ss_base_model_version": "sdxl_base_v1-0"})
    peft_file(pipe, os.path.join(LORAS, "sdxl_peft.safetensors"),
              [("unet", pipe.unet, ["to_k", "to_out.0", "ff.net.2", "proj_in"]), ("text_encoder", pipe.text_encoder, ["k_proj", "fc1"]),
               ("text_encoder_2", pipe.text_encoder_2, ["q_proj", "out_proj"])], 14)
    xl_cases = [("sdxl_kohya", [("sdxl_kohya", 0.9, 0.9)], prompt + " <lora:sdxl_kohya:0.9>", neg),
                ("sdxl_peft_kohya", [("sdxl_peft", 1.0, 1.0), ("sdxl_kohya", 0.4, -0.7)], prompt + " <lora:sdxl_peft> <lora:sdxl_kohya:te=0.4:unet=-0.7>", neg)]
    lora_cases(sdxl_pipe, "sdxl", xl_cases, prompt, 2200, ("text_encoder", "text_encoder_2"), cases)
    # textual inversion, SDXL: clip_l + clip_g, two vectors
    pipe = sdxl_pipe()
    g = rng(22)
    cl = torch.from_numpy(g.standard_normal((2, 16)).astype(np.float32) * 0.4).half()
    cg = torch.from_numpy(g.standard_normal((2, 24)).astype(np.float32) * 0.4).half()
    os.makedirs(os.path.join(OUT, "emb_xl"), exist_ok=True)
    save_file({"clip_l": cl, "clip_g": cg}, os.path.join(OUT, "emb_xl", "hexstyle.safetensors"), metadata=META)
    pipe.load_textual_inversion(cl.float(), token="hexstyle", text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer)
    pipe.load_textual_inversion(cg.float(), token="hexstyle", text_encoder=pipe.text_encoder_2, tokenizer=pipe.tokenizer_2)
    case = {"name": "sdxl_ti", "model": "sdxl", "prompt": "a red circle on a hexstyle background, top left",
            "negative_prompt": None, "seed": 2300, "steps": 4, "cfg": 5.0, "sampler": "euler_a", "width": W, "height": H,
            "mode": "txt2img", "embeddings": ["hexstyle"]}
    pe, pooled_eos, pooled_argmax = sdxl_embeds(pipe, case["prompt"])
    print("sdxl_ti: pooled at EOS vs transformers' argmax position differ by", float((pooled_eos - pooled_argmax).abs().max()))
    run(pipe, case, prompt_embeds=pe, pooled_prompt_embeds=pooled_eos)
    cases.append(case)

    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"meta": META, "cases": cases, "lycoris": ly_cases,
                   "lycoris_model": {"file": "loras/sd1_lycoris.safetensors", "merged": "merged_sd1_lycoris.safetensors"}}, f, indent=1)


if __name__ == "__main__":
    main()
