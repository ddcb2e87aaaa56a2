#!/usr/bin/env python3
"""train_lora_demo.py — trains the demo LoRA samples/models/loras/cross.safetensors: it teaches the bundled demo
model (samples/models/shapes, which never saw one) to draw a cross — a plus sign — on the CPU in minutes.

The base model stays frozen; PEFT LoRA layers of rank --rank are trained on the UNet's attention and feed-forward
layers, its Transformer2D projections and the text encoder's attention and MLP layers, with the base model's own
objective (ε-prediction on the SD schedule, Min-SNR-5 weights, 10% empty captions, a twentieth "first sampler
step" samples: tools/train_demo.py). The pictures come from the base model's renderer (tools/shapes.py), which
draws the cross too; --cross of each batch shows a cross, the rest the five shapes the model knows, so that they
stay as they were while the LoRA is on. Captions follow the demo grammar ("a large red cross on a black
background, centre"), with parts left out as in the base training.

The file is written in the kohya-ss / AUTOMATIC1111 layout (lora_unet_* / lora_te_*, .lora_down / .lora_up /
.alpha, f16), the layout most LoRAs are shared in. At the end the LoRA is judged the way tests/test_lora_demo.c
judges it in the engine: the demo model renders --eval prompts (diffusers, euler_a, 20 steps, guidance 3) with
and without the LoRA, and the shape classifier (tools/shapes.py, the twin of tests/shapes_classify.c) counts the
crosses.

Versions: torch 2.15.0, diffusers 0.42.1, transformers 5.23.0, peft 0.21.2 (tools/requirements.txt).
Usage (the shipped LoRA: two segments, samples/models/loras/README.md):
    nice python3 tools/train_lora_demo.py --eval-base --out build/run1/cross.safetensors
    nice python3 tools/train_lora_demo.py --init build/run1/cross.safetensors --seed 4243 --steps 2000 --lr 1e-3 \
        --cross-small 0.7
    nice python3 tools/train_lora_demo.py --picture          (samples/images/lora-cross.png, needs build/sd)
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import shapes  # noqa: E402

ROOT = os.path.join(HERE, "..")
UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2"]
UNET_CONVS = ["conv1", "conv2"]   # the resnets' 3x3 convolutions (LoCon): where the UNet draws outlines
TE_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]


def log(msg):
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def load_base(model):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer
    tok = CLIPTokenizer.from_pretrained(os.path.join(model, "tokenizer"))
    te = CLIPTextModel.from_pretrained(os.path.join(model, "text_encoder"), torch_dtype=torch.float32)
    unet = UNet2DConditionModel.from_pretrained(os.path.join(model, "unet"), torch_dtype=torch.float32)
    vae = AutoencoderKL.from_pretrained(os.path.join(model, "vae"), torch_dtype=torch.float32)
    for m in (te, unet, vae):
        m.requires_grad_(False)
        m.eval()
    return tok, te, unet, vae


def training_scenes(seed, n, p_cross, p_small):
    """n scenes of the renderer's stream; a share p_cross of them (fixed by the seed) turned into crosses, of which a
    share p_small (None: the stream's own half) small ones."""
    rng = np.random.default_rng([seed, 1])
    out = []
    for i in range(n):
        s = shapes.scene_at(seed, i)
        if rng.random() < p_cross:
            s["shape"] = "cross"
            if p_small is not None:
                s["size"] = "small" if rng.random() < p_small else "large"
        out.append(s)
    return out


def encode_pictures(vae, scenes):
    means, stds = [], []
    with torch.no_grad():
        for i0 in range(0, len(scenes), 64):
            imgs = [shapes.render(s) for s in scenes[i0:i0 + 64]]
            x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
            post = vae.encode(x).latent_dist
            means.append(post.mean)
            stds.append(post.std)
    return torch.cat(means), torch.cat(stds)


def caption_of(scene, rng):
    u = rng.random()
    if u < 0.10:
        return ""
    if u < 0.30:
        keep = rng.random(3) < 0.5
        return shapes.partial_caption(scene, *keep)
    return shapes.caption(scene)


def lora_modules(te, unet):
    """(kohya name, PEFT LoRA module) of every adapted layer."""
    for prefix, model in (("lora_unet_", unet), ("lora_te_", te)):
        for name, mod in model.named_modules():
            if not hasattr(mod, "lora_A") or "default" not in getattr(mod, "lora_A", {}):
                continue
            if prefix == "lora_te_" and not name.startswith("text_model."):
                name = "text_model." + name   # kohya's spelling (transformers 5 has no text_model level)
            yield prefix + name.replace(".", "_"), mod


def load_kohya(te, unet, path):
    """Continues from a file this script wrote (--init): its f16 down/up weights into the PEFT layers (same ranks)."""
    from safetensors.torch import load_file
    sd = load_file(path)
    n = 0
    for key, mod in lora_modules(te, unet):
        down, up = mod.lora_A["default"].weight, mod.lora_B["default"].weight
        with torch.no_grad():
            down.copy_(sd[key + ".lora_down.weight"].float().reshape(down.shape))
            up.copy_(sd[key + ".lora_up.weight"].float().reshape(up.shape))
        n += 1
    if 3 * n != len(sd):
        raise SystemExit("%s: %d tensors, %d modules here: another recipe's rank or targets?" % (path, len(sd), n))
    log("continuing from %s (%d modules)" % (path, n))


def kohya_state_dict(te, unet, alpha):
    """PEFT LoRA weights -> kohya names: lora_unet_<module with _ for .>.lora_down.weight / .lora_up.weight / .alpha."""
    out = {}
    for key, mod in lora_modules(te, unet):
        down = mod.lora_A["default"].weight.detach()
        up = mod.lora_B["default"].weight.detach()
        if down.dim() == 4 and up.dim() == 2:
            up = up[:, :, None, None]
        out[key + ".lora_down.weight"] = down.half().contiguous()
        out[key + ".lora_up.weight"] = up.half().contiguous()
        out[key + ".alpha"] = torch.tensor(float(down.shape[0] * alpha)).half()  # alpha = rank x scale
    return out


def render_eval(model, lora_path, prompts, steps, cfg):
    """Pictures of the eval prompts from a diffusers pipeline (euler_a, the engine's default), optionally with the LoRA."""
    from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionPipeline
    pipe = StableDiffusionPipeline.from_pretrained(model, torch_dtype=torch.float32, safety_checker=None)
    pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    if lora_path:
        pipe.load_lora_weights(lora_path)
    out = []
    for prompt, seed in prompts:
        with torch.no_grad():
            img = pipe(prompt, num_inference_steps=steps, guidance_scale=cfg, height=128, width=128,
                       generator=torch.Generator().manual_seed(seed), output_type="np").images[0]
        out.append((img * 255).round().astype(np.uint8))
    return out


def judge(model, lora_path, prompts, base):
    """Share of the prompts drawn as a cross with the LoRA (and without it when base is set); a contact sheet of the
    LoRA's pictures is written beside it (eval_lora.png)."""
    from PIL import Image
    got = {}
    for name, path in ((("base", None),) if base else ()) + (("lora", lora_path),):
        imgs = render_eval(model, path, prompts, 20, 3.0)
        res = [shapes.classify(im) for im in imgs]
        got[name] = sum(r["shape"] == "cross" for r in res) / len(res)
        for (p, s), r in zip(prompts, res):
            if name == "lora" and r["shape"] != "cross":
                log("  lora miss: seed %d %r -> %s (corners %s, fill %s)" % (s, p, r["shape"], r.get("corners"), r.get("fill")))
        if name == "lora":
            rows = [np.concatenate(imgs[i:i + 8], 1) for i in range(0, len(imgs) - 7, 8)]
            Image.fromarray(np.concatenate(rows, 0)).save(os.path.join(os.path.dirname(os.path.abspath(lora_path)), "eval_lora.png"))
    return got


def readme_picture(lora_path, picks=(0, 3, 6, 9)):
    """samples/images/lora-cross.png: for prompts 0, 3, 6, 9 of the fixed list (small, large, small, large), the
    engine's picture without the LoRA beside the one with <lora:cross:1>, rendered by the built `sd` (build/sd) with
    the model's defaults."""
    import subprocess
    import tempfile
    from PIL import Image
    sd = os.path.join(ROOT, "build", "sd")
    prompts = shapes.lora_prompts()
    tiles = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in picks:
            prompt, seed = prompts[k]
            pair = []
            for j, tag in enumerate(("", " <lora:cross:1>")):
                out = os.path.join(tmp, "o%d_%d.png" % (k, j))
                subprocess.run([sd, "-p", prompt + tag, "-s", str(seed), "--lora-model-dir",
                                os.path.dirname(os.path.abspath(lora_path)), "-o", out], check=True)
                pair.append(Image.open(out).convert("RGB"))
            tiles.append(pair)
    pad = 8
    canvas = Image.new("RGB", (len(tiles) * (2 * 128 + pad) + pad, 128 + 2 * pad), (255, 255, 255))
    for i, (a, b) in enumerate(tiles):
        x = pad + i * (2 * 128 + pad)
        canvas.paste(a, (x, pad))
        canvas.paste(b, (x + 128, pad))
    path = os.path.join(ROOT, "samples", "images", "lora-cross.png")
    canvas.save(path, optimize=True)
    log("wrote %s" % path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(ROOT, "samples", "models", "shapes"))
    ap.add_argument("--out", default=os.path.join(ROOT, "samples", "models", "loras", "cross.safetensors"))
    ap.add_argument("--seed", type=int, default=4242)
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--conv-rank", type=int, default=4, help="rank of the LoCon modules on the resnets' 3x3 convolutions (0: none)")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--images", type=int, default=2048)
    ap.add_argument("--cross", type=float, default=0.6, help="share of the pictures that show a cross")
    ap.add_argument("--cross-small", type=float, default=None, help="share of the crosses drawn small (default: half)")
    ap.add_argument("--init", help="continue from a LoRA file this script wrote with the same --rank / --conv-rank")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eval", type=int, default=24, help="prompts the LoRA is judged on at the end (0: none)")
    ap.add_argument("--eval-base", action="store_true", help="judge the model without the LoRA too")
    ap.add_argument("--picture", action="store_true", help="only render samples/images/lora-cross.png from the --out file "
                    "with build/sd (no training)")
    args = ap.parse_args()
    if args.picture:
        readme_picture(args.out)
        return
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    from peft import LoraConfig

    tok, te, unet, vae = load_base(args.model)
    scaling = vae.config.scaling_factor
    t0 = time.time()
    scenes = training_scenes(args.seed, args.images, args.cross, args.cross_small)
    mean, std = encode_pictures(vae, scenes)
    log("encoded %d pictures (%d crosses) in %.1f min" % (len(scenes), sum(s["shape"] == "cross" for s in scenes),
                                                          (time.time() - t0) / 60))
    cfg = dict(r=args.rank, lora_alpha=args.rank, init_lora_weights=True)
    convs = {c: args.conv_rank for c in UNET_CONVS} if args.conv_rank else {}
    unet.add_adapter(LoraConfig(target_modules=UNET_TARGETS + list(convs), rank_pattern=convs, alpha_pattern=convs, **cfg))
    te.add_adapter(LoraConfig(target_modules=TE_TARGETS, **cfg))
    if args.init:
        load_kohya(te, unet, args.init)
    params = [p for m in (te, unet) for p in m.parameters() if p.requires_grad]
    log("trainable LoRA parameters: %d" % sum(p.numel() for p in params))
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float32) ** 2
    ac = torch.cumprod(1 - betas, 0)
    snr = ac / (1 - ac)
    w_t = torch.clamp(snr, max=5.0) / snr
    rng = np.random.default_rng([args.seed, 2])
    bs, n = args.batch, args.steps
    te.train()
    unet.train()
    run = None
    t0, c0 = time.time(), time.process_time()
    for step in range(n):
        lr = args.lr * min(1.0, (step + 1) / 30) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / n)))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = rng.integers(0, len(scenes), size=bs)
        caps = [caption_of(scenes[i], rng) for i in idx]
        ids = tok(caps, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        z0 = (mean[idx] + std[idx] * torch.from_numpy(rng.standard_normal((bs, 4, 16, 16)).astype(np.float32))) * scaling
        t = rng.integers(0, 1000, size=bs)
        nterm = max(1, bs // 20)
        t[bs - nterm:] = 999
        t = torch.from_numpy(t)
        noise = torch.from_numpy(rng.standard_normal((bs, 4, 16, 16)).astype(np.float32))
        a = ac[t].sqrt().view(-1, 1, 1, 1)
        b = (1 - ac[t]).sqrt().view(-1, 1, 1, 1)
        zt = a * z0 + b * noise
        # "first sampler step" samples (train_demo.py): pure noise in, the ε that makes x0 the picture
        pure = torch.from_numpy(rng.standard_normal((nterm, 4, 16, 16)).astype(np.float32))
        zt[bs - nterm:] = pure
        noise[bs - nterm:] = (pure - a[bs - nterm:] * z0[bs - nterm:]) / b[bs - nterm:]
        pred = unet(zt, t, te(ids).last_hidden_state).sample
        per = ((pred - noise) ** 2).mean(dim=(1, 2, 3))
        w = w_t[t].clone()
        w[bs - nterm:] = 1.0 / snr[999]
        loss = (per * w).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        run = per.mean().item() if run is None else 0.98 * run + 0.02 * per.mean().item()
        if step % 25 == 0 or step == n - 1:
            el = time.time() - t0
            log("step %d/%d  mse %.4f  lr %.2e  %.1f min, eta %.1f min" % (step, n, run, lr, el / 60,
                                                                          el / (step + 1) * (n - step - 1) / 60))
    minutes, cpu_minutes = (time.time() - t0) / 60, (time.process_time() - c0) / 60
    import diffusers
    import peft
    import transformers
    from safetensors.torch import save_file
    sd = kohya_state_dict(te, unet, 1.0)  # every module's alpha is its rank: scale 1, as trained
    meta = {"ss_network_module": "networks.lora", "ss_network_dim": str(args.rank), "ss_network_alpha": str(args.rank),
            "ss_base_model_version": "sd_v1", "ss_output_name": "cross", "made_by": "tools/train_lora_demo.py",
            "recipe": json.dumps({k: v for k, v in vars(args).items() if k not in ("model", "out")}),
            "training_minutes": "%.1f" % minutes, "training_cpu_minutes": "%.1f" % cpu_minutes,
            "torch": torch.__version__, "diffusers": diffusers.__version__,
            "transformers": transformers.__version__, "peft": peft.__version__}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    save_file(sd, args.out, metadata=meta)
    log("wrote %s: %d tensors, %.0f KB, %.1f min of training (%.1f min of CPU time)" % (args.out, len(sd), os.path.getsize(args.out) / 1024,
                                                                                   minutes, cpu_minutes))
    if args.eval:
        got = judge(args.model, args.out, shapes.lora_prompts(args.eval), args.eval_base)
        log("crosses drawn (classifier, diffusers renders): %s%.0f%% with the LoRA"
            % ("%.0f%% without the LoRA, " % (100 * got["base"]) if "base" in got else "", 100 * got["lora"]))


if __name__ == "__main__":
    main()
