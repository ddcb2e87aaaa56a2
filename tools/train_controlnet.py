"""train_controlnet.py — trains the demo ControlNet (samples/models/shapes-controlnet/) for the bundled demo model
samples/models/shapes: a diffusers ControlNetModel copied from the demo UNet's encoder (ControlNetModel.from_unet),
trained on the CPU with the UNet and text encoder frozen, exported as a diffusers folder of f16 safetensors.

The control image says where the shape is, how big, and which shape: either its silhouette (white on black) or
its edge map (cv2.Canny(picture, 100, 200), what `sd --control-preprocess canny` computes with its default
thresholds). The prompt says the rest. Captions: some name the colour only ("a red shape on a gray background",
where "shape" is a word the demo model never saw), some are the demo model's full or partial captions, some are
empty (classifier-free guidance and guess mode).

Phases (each resumes from the files of the one before it in --work):
    data     renders --images scenes (tools/shapes.py, seed --seed), encodes them once with the demo VAE
             (posterior mean and std) and draws their silhouettes and edge maps
    train    the ControlNet: ε-prediction on the SD schedule, Min-SNR-5, plus a share of "first sampler step"
             samples (pure noise in, the picture's x0 as the target) as the demo model's own training had
    export   f16 safetensors + config.json into --out
    eval     renders the fixed semantic test set with diffusers' StableDiffusionControlNetPipeline and classifies
             the pictures (tools/shapes.py's twin of tests/shapes_classify.c)

Usage:  nice -n 10 python tools/train_controlnet.py --work /tmp/cn-train --out samples/models/shapes-controlnet
Everything is seeded; one torch thread by default (the project machine is shared).
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shapes  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BASE = os.path.join(HERE, "..", "samples", "models", "shapes")
COND_CHANNELS = (16, 32, 64, 128)     # the control image's embedding: 3 stride-2 convs, 128 px -> the 16² latent
CANNY = (100, 200)                    # sd --control-preprocess canny defaults (sd-webui-controlnet's too)


def log(msg):
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def silhouette(scene):
    """The shape of a scene as white on black, uint8 [SIZE, SIZE], drawn exactly where shapes.render draws it."""
    from PIL import Image, ImageDraw
    n = shapes.SIZE * shapes.SS
    scale, jx, jy = scene.get("jitter", (1.0, 0.0, 0.0))
    dx, dy = shapes.POSITIONS[scene["position"]]
    cx = (shapes.SIZE / 2 + dx * shapes.OFFSET + jx) * shapes.SS
    cy = (shapes.SIZE / 2 + dy * shapes.OFFSET + jy) * shapes.SS
    r = shapes.SIZES[scene["size"]] * scale * shapes.SS
    img = Image.new("L", (n, n), 0)
    d = ImageDraw.Draw(img)
    for kind, geom in shapes._shape_polygons(scene["shape"], cx, cy, r):
        if kind == "ellipse":
            d.ellipse(geom, fill=255)
        elif kind == "hole":
            d.ellipse(geom, fill=0)
        else:
            d.polygon(geom, fill=255)
    return np.asarray(img.resize((shapes.SIZE, shapes.SIZE), Image.BOX), dtype=np.uint8)


def edges(rgb):
    import cv2
    return cv2.Canny(np.ascontiguousarray(rgb), CANNY[0], CANNY[1])


def neutral_caption(scene, with_bg=True):
    """A caption that names the colour (and background) but neither shape, size nor position."""
    s = "a %s shape" % scene["colour"]
    return s + (" on a %s background" % scene["background"] if with_bg else "")


def load_base(dtype=torch.float32):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer
    tok = CLIPTokenizer.from_pretrained(os.path.join(BASE, "tokenizer"))
    te = CLIPTextModel.from_pretrained(os.path.join(BASE, "text_encoder"), torch_dtype=dtype).eval()
    unet = UNet2DConditionModel.from_pretrained(os.path.join(BASE, "unet"), torch_dtype=dtype).eval()
    vae = AutoencoderKL.from_pretrained(os.path.join(BASE, "vae"), torch_dtype=dtype).eval()
    return tok, te, unet, vae


def make_data(args):
    _, _, _, vae = load_base()
    n = args.images
    means, stds, sil, edg, scenes = [], [], [], [], []
    t0 = time.time()
    with torch.no_grad():
        for i0 in range(0, n, 64):
            sc = [shapes.scene_at(args.seed, i) for i in range(i0, min(n, i0 + 64))]
            rgb = [shapes.render(s) for s in sc]
            x = torch.from_numpy(np.stack(rgb)).permute(0, 3, 1, 2).float() / 127.5 - 1
            post = vae.encode(x).latent_dist
            means.append(post.mean)
            stds.append(post.std)
            sil += [silhouette(s) for s in sc]
            edg += [edges(im) for im in rgb]
            scenes += sc
            if i0 % 1024 == 0:
                log("data %d/%d  %.1f min" % (i0, n, (time.time() - t0) / 60))
    torch.save({"mean": torch.cat(means), "std": torch.cat(stds), "sil": torch.from_numpy(np.stack(sil)),
                "edge": torch.from_numpy(np.stack(edg)), "scenes": scenes,
                "scaling_factor": vae.config.scaling_factor}, os.path.join(args.work, "data.pt"))
    log("data: %d scenes in %.1f min" % (n, (time.time() - t0) / 60))


def captions(scenes, idx, rng, args):
    out = []
    for i in idx:
        s, u = scenes[i], rng.random()
        if u < args.p_empty:
            out.append("")
        elif u < args.p_empty + args.p_neutral:
            out.append(neutral_caption(s, rng.random() < 0.7))
        elif rng.random() < 0.5:
            out.append(shapes.caption(s))
        else:
            keep = rng.random(3) < 0.5
            out.append(shapes.partial_caption(s, *keep))
    return out


def control_batch(data, idx, rng, p_edge):
    """[B, 3, H, W] control images in [0, 1] (diffusers' ControlNet image processor does not normalise)."""
    use_edge = rng.random(len(idx)) < p_edge
    imgs = [data["edge"][i] if e else data["sil"][i] for i, e in zip(idx, use_edge)]
    x = torch.stack(imgs).float().div(255.0)
    return x[:, None].expand(-1, 3, -1, -1).contiguous()


def train(args):
    from diffusers import ControlNetModel
    torch.manual_seed(args.seed)
    tok, te, unet, _ = load_base()
    for p in list(te.parameters()) + list(unet.parameters()):
        p.requires_grad_(False)
    data = torch.load(os.path.join(args.work, "data.pt"))
    mean, std, scenes, scaling = data["mean"], data["std"], data["scenes"], data["scaling_factor"]
    ckpt = os.path.join(args.work, "controlnet.pt")
    cn = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=COND_CHANNELS)
    start, stats = 0, {}
    params = list(cn.parameters())
    ema = [p.detach().clone() for p in params]
    # the zero-initialised layers (the control image's last conv, the zero convolutions) start the product that
    # carries the control signal at zero: a higher learning rate there shortens the wait before it takes effect
    names = [n for n, _ in cn.named_parameters()]
    zero = [p for n, p in zip(names, params) if n.startswith(("controlnet_down_blocks", "controlnet_mid_block",
                                                              "controlnet_cond_embedding"))]
    rest = [p for n, p in zip(names, params) if not n.startswith(("controlnet_down_blocks", "controlnet_mid_block",
                                                                  "controlnet_cond_embedding"))]
    # A probe (training only, never exported): a 1x1 conv that must read the silhouette, pooled to the latent grid,
    # from the control image's embedding. Without it the embedding's zero-initialised last conv and the zero
    # convolutions stay near zero together for hundreds of steps (a product of two small factors), and the
    # ControlNet's output did not depend on the control image at all (equal loss with shuffled control images).
    probe = torch.nn.Conv2d(cn.config.block_out_channels[0], 1, 1)
    groups = [{"params": rest, "mult": 1.0}, {"params": zero, "mult": args.zero_lr_mult},
              {"params": list(probe.parameters()), "mult": 1.0}]
    opt = torch.optim.AdamW(groups, lr=args.lr, weight_decay=0.0)
    if os.path.exists(ckpt):
        ck = torch.load(ckpt)
        cn.load_state_dict(ck["live"])
        if not args.fresh_optimizer:
            opt.load_state_dict(ck["opt"])
        ema = ck["ema"]
        if "probe" in ck:  # checkpoints before segment 4 did not keep it: a resumed probe then starts afresh
            probe.load_state_dict(ck["probe"])
        start, stats = ck["step"], ck["stats"]
        log("resumed at step %d%s" % (start, " with a fresh optimiser" if args.fresh_optimizer else ""))
    elif args.init:
        # a shipped model's f16 weights as the start (its optimiser state and EMA history are not in the export)
        from safetensors.torch import load_file
        sd = load_file(os.path.join(args.init, "diffusion_pytorch_model.safetensors"))
        cn.load_state_dict({k: v.float() for k, v in sd.items()})
        ema = [p.detach().clone() for p in params]
        start, stats = args.init_step, {"init": os.path.basename(os.path.normpath(args.init)), "init_step": args.init_step}
        log("initialised from %s (its step %d)" % (args.init, start))
    # each run of this phase is a segment of the recipe (the shipped model's are in its model card)
    stats.setdefault("segments", []).append({"from_step": start, "schedule_steps": args.steps, "batch": args.batch,
                                             "lr": args.lr, "zero_lr_mult": args.zero_lr_mult,
                                             "fresh_optimizer": args.fresh_optimizer, "aux": args.aux,
                                             "terminal": args.terminal, "t_high": args.t_high, "p_edge": args.p_edge,
                                             "p_neutral": args.p_neutral, "p_small": args.p_small,
                                             "threads": args.threads})
    log("controlnet: %d parameters" % sum(p.numel() for p in params))
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float32) ** 2
    ac = torch.cumprod(1 - betas, 0)
    snr = ac / (1 - ac)
    w_t = torch.clamp(snr, max=5.0) / snr
    cache = {}

    def encode(caps):
        miss = [c for c in set(caps) if c not in cache]
        if miss:
            ids = tok(miss, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
            with torch.no_grad():
                h = te(ids).last_hidden_state
            for c, v in zip(miss, h):
                cache[c] = v
        return torch.stack([cache[c] for c in caps])

    small = np.array([i for i, sc in enumerate(scenes) if sc["size"] == "small"])
    n, bs = args.steps, args.batch
    t0 = time.time()
    run = stats.get("loss_avg")
    for step in range(start, n):
        rng = np.random.default_rng([args.seed, 99, step])
        warm = min(1.0, (step + 1) / 100, (step + 1 - start) / 50 if args.fresh_optimizer or args.init else 1.0)
        lr = args.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / n)))
        for g in opt.param_groups:
            g["lr"] = lr * g.get("mult", 1.0)
        idx = rng.integers(0, len(scenes), size=bs)
        if args.p_small:
            # small shapes are what the model draws worst (stars and squares come out as blobs): --p-small of the
            # batch is drawn from them
            pick = rng.random(bs) < args.p_small
            idx[pick] = small[rng.integers(0, len(small), size=int(pick.sum()))]
        ctx = encode(captions(scenes, idx, rng, args))
        cond = control_batch(data, idx, rng, args.p_edge)
        z0 = (mean[idx] + std[idx] * torch.from_numpy(rng.standard_normal((bs, 4, 16, 16)).astype(np.float32))) \
            * scaling
        t = rng.integers(0, 1000, size=bs)
        # the shape is decided in the first, noisiest steps of sampling: --t-high of the samples are drawn there
        if args.t_high:  # (no draw without it: the segments before it replay as they ran)
            high = rng.random(bs) < args.t_high
            t[high] = rng.integers(600, 1000, size=int(high.sum()))
        nterm = int(round(args.terminal * bs))
        t[bs - nterm:] = 999
        t = torch.from_numpy(t)
        noise = torch.from_numpy(rng.standard_normal((bs, 4, 16, 16)).astype(np.float32))
        a = ac[t].sqrt().view(-1, 1, 1, 1)
        b = (1 - ac[t]).sqrt().view(-1, 1, 1, 1)
        zt = a * z0 + b * noise
        if nterm:
            # the sampler starts from pure noise, which holds no trace of the picture: there only the control
            # image (and the text) can say where the shape goes (see tools/train_demo.py, stage 2)
            pure = torch.from_numpy(rng.standard_normal((nterm, 4, 16, 16)).astype(np.float32))
            zt[bs - nterm:] = pure
            noise[bs - nterm:] = (pure - a[bs - nterm:] * z0[bs - nterm:]) / b[bs - nterm:]
        down, mid = cn(zt, t, ctx, cond, return_dict=False)
        aux = torch.zeros(())
        if args.aux:
            target = F.avg_pool2d(data["sil"][idx].float().div(255)[:, None], 128 // 16)
            aux = F.mse_loss(probe(cn.controlnet_cond_embedding(cond)), target)
        pred = unet(zt, t, ctx, down_block_additional_residuals=down, mid_block_additional_residual=mid).sample
        per = ((pred - noise) ** 2).mean(dim=(1, 2, 3))
        w = w_t[t].clone()
        if nterm:
            w[bs - nterm:] = 1.0 / snr[999]
        loss = (per * w).mean() + args.aux * aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        d = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            torch._foreach_lerp_(ema, [p.detach() for p in params], 1 - d)
        mse = per[:bs - nterm].mean().item()
        run = mse if run is None else 0.98 * run + 0.02 * mse
        if step % 25 == 0 or step == n - 1:
            el = time.time() - t0
            log("step %d/%d  mse %.4f (avg %.4f)  probe %.4f  lr %.2e  %.1f min, eta %.1f min"
                % (step, n, mse, run, float(aux), lr, el / 60, el / (step + 1 - start) * (n - step - 1) / 60))
        if (step + 1) % args.save_every == 0 or step == n - 1:
            stats = dict(stats, steps=step + 1, loss_avg=run, minutes=stats.get("minutes0", 0) + (time.time() - t0) / 60)
            torch.save({"live": cn.state_dict(), "opt": opt.state_dict(), "ema": ema, "probe": probe.state_dict(),
                        "step": step + 1,
                        "stats": dict(stats, minutes0=stats["minutes"])}, ckpt + ".tmp")
            os.replace(ckpt + ".tmp", ckpt)
            log("saved step %d" % (step + 1))


def load_trained(args, use_ema=True):
    from diffusers import ControlNetModel
    _, _, unet, _ = load_base()
    cn = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=COND_CHANNELS)
    ck = torch.load(os.path.join(args.work, "controlnet.pt"))
    cn.load_state_dict(ck["live"])
    if use_ema:
        with torch.no_grad():
            for p, e in zip(cn.parameters(), ck["ema"]):
                p.copy_(e)
    return cn.eval(), ck["stats"]


def export(args):
    cn, stats = load_trained(args, use_ema=not args.eval_live)
    cn.to(torch.float16).save_pretrained(args.out, safe_serialization=True)
    import diffusers
    import transformers
    stats = dict(stats, torch=torch.__version__, diffusers=diffusers.__version__,
                 transformers=transformers.__version__, threads=torch.get_num_threads(), seed=args.seed,
                 params=sum(p.numel() for p in cn.parameters()))
    with open(os.path.join(args.work, "train_stats.json"), "w") as f:
        json.dump(stats, f, indent=2)
    log("exported to %s: %s" % (args.out, json.dumps(stats)))


def semantic_cases(count=32, seed=4242):
    """The fixed cases of the semantic test (tests/golden/controlnet_shapes/): a scene per case, every shape,
    position and size, colours and backgrounds cycling; the prompt names only the colour and background."""
    rng = np.random.default_rng(seed)
    combos = [(sh, sz, p) for sh in shapes.SHAPES for sz in shapes.SIZES for p in shapes.POSITIONS]
    rng.shuffle(combos)
    out = []
    for i in range(count):
        sh, sz, p = combos[i]
        colour = list(shapes.FG_COLOURS)[i % len(shapes.FG_COLOURS)]
        bgs = [b for b in shapes.BG_COLOURS if b != colour]
        scene = {"size": sz, "colour": colour, "shape": sh, "background": bgs[(i // 8) % len(bgs)], "position": p,
                 "jitter": [1.0, 0.0, 0.0]}
        out.append((scene, 1000 + 13 * i))
    return out


def evaluate(args):
    from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionControlNetPipeline
    cn, _ = load_trained(args, use_ema=not args.eval_live)
    tok, te, unet, vae = load_base()
    from diffusers import PNDMScheduler
    sch = EulerAncestralDiscreteScheduler.from_config(PNDMScheduler.from_pretrained(
        os.path.join(BASE, "scheduler")).config)
    pipe = StableDiffusionControlNetPipeline(vae=vae, text_encoder=te, tokenizer=tok, unet=unet, controlnet=cn,
                                             scheduler=sch, safety_checker=None, feature_extractor=None,
                                             requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    from PIL import Image
    hits = {"shape": 0, "position": 0, "size": 0, "both": 0}
    base_hits = dict(hits)
    # --eval-seed other than the test's 4242: a held-out set of cases (other shape/size/place combinations, seeds)
    cases = semantic_cases(args.eval_count, args.eval_seed)
    for k, (scene, seed) in enumerate(cases):
        for mode in ("sil", "edge"):
            if mode == "edge" and not args.eval_edges:
                continue
            ctrl = silhouette(scene) if mode == "sil" else edges(shapes.render(scene))
            cimg = Image.fromarray(np.stack([ctrl] * 3, -1))
            g = torch.Generator().manual_seed(seed)
            img = pipe(neutral_caption(scene), image=cimg, height=128, width=128, num_inference_steps=20,
                       guidance_scale=3.0, generator=g, output_type="np").images[0]
            got = shapes.classify((img * 255).round().astype(np.uint8))
            ok = {key: got[key] == scene[key] for key in ("shape", "position", "size")}
            for key in ok:
                hits[key] += ok[key]
            hits["both"] += ok["shape"] and ok["position"]
            if k < 8 and mode == "sil":
                Image.fromarray((img * 255).round().astype(np.uint8)).save(os.path.join(args.work, "eval%d.png" % k))
    n = len(cases) * (2 if args.eval_edges else 1)
    log("eval (%s weights, cases of seed %d) on %d: %s" % ("live" if args.eval_live else "EMA", args.eval_seed, n,
                                          json.dumps({k: round(v / n, 3) for k, v in hits.items()})))
    del base_hits


def write_golden(args):
    """The semantic test's fixed cases (tests/golden/controlnet_shapes/): a silhouette PNG per case (a couple as edge
    maps, for --control-preprocess-free edge input) and cases.txt: seed, prompt, control picture, and the shape,
    position and size it shows."""
    from PIL import Image
    out = args.golden
    os.makedirs(out, exist_ok=True)
    lines = []
    for k, (scene, seed) in enumerate(semantic_cases(args.eval_count, args.eval_seed)):
        name = "c%02d.png" % k
        Image.fromarray(silhouette(scene)).save(os.path.join(out, name), optimize=True)
        lines.append("%d\t%s\t%s\t%s\t%s\t%s\n" % (seed, neutral_caption(scene), name, scene["shape"], scene["position"],
                                                      scene["size"]))
    with open(os.path.join(out, "cases.txt"), "w") as f:
        f.write("# tools/train_controlnet.py --phase golden: seed<TAB>prompt<TAB>control<TAB>shape<TAB>position<TAB>size\n")
        f.writelines(lines)
    log("wrote %d cases to %s" % (len(lines), out))


def readme_picture(args):
    """samples/images/controlnet.png: control image beside the engine's picture for a few fixed cases, rendered by
    the built `sd` (build/sd) with the shipped ControlNet; the last pair uses --control-preprocess canny on a
    rendered picture of another colour."""
    import subprocess
    import tempfile
    from PIL import Image
    sd = os.path.join(HERE, "..", "build", "sd")
    picks = [(0, "sil"), (5, "sil"), (11, "sil"), (21, "canny")]
    cases = semantic_cases(24)  # the semantic test's cases
    tiles = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, mode in picks:
            scene, seed = cases[k]
            ctl = os.path.join(tmp, "c%d.png" % k)
            if mode == "sil":
                Image.fromarray(silhouette(scene)).save(ctl)
                extra = []
            else:
                other = dict(scene, colour="yellow", background="blue")
                Image.fromarray(shapes.render(other)).save(ctl)
                extra = ["--control-preprocess", "canny"]
            out = os.path.join(tmp, "o%d.png" % k)
            subprocess.run([sd, "-p", neutral_caption(scene), "-s", str(seed), "--control-net", args.out, "--control-image", ctl,
                            "-o", out] + extra, check=True)
            tiles.append((Image.open(ctl).convert("RGB"), Image.open(out).convert("RGB")))
    pad = 8
    W = len(tiles) * (2 * 128 + pad) + pad
    canvas = Image.new("RGB", (W, 128 + 2 * pad), (255, 255, 255))
    for i, (a, b) in enumerate(tiles):
        x = pad + i * (2 * 128 + pad)
        canvas.paste(a, (x, pad))
        canvas.paste(b, (x + 128, pad))
    path = os.path.join(HERE, "..", "samples", "images", "controlnet.png")
    canvas.save(path, optimize=True)
    log("wrote %s" % path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="/tmp/cn-train")
    ap.add_argument("--out", default=os.path.join(HERE, "..", "samples", "models", "shapes-controlnet"))
    ap.add_argument("--phase", default="all", choices=["all", "data", "train", "export", "eval", "golden",
                                                                  "picture"])
    ap.add_argument("--golden", default=os.path.join(HERE, "..", "tests", "golden", "controlnet_shapes"))
    ap.add_argument("--seed", type=int, default=31337)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--images", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--ema", type=float, default=0.995)
    ap.add_argument("--terminal", type=float, default=0.125, help="share of first-sampler-step samples")
    ap.add_argument("--p-empty", type=float, default=0.15)
    ap.add_argument("--p-neutral", type=float, default=0.5)
    ap.add_argument("--p-edge", type=float, default=0.4, help="share of edge maps among the control images")
    ap.add_argument("--save-every", type=int, default=100)
    ap.add_argument("--zero-lr-mult", type=float, default=1.0, help="learning-rate factor of the zero-initialised layers")
    ap.add_argument("--fresh-optimizer", action="store_true", help="resume the weights with a new optimiser")
    ap.add_argument("--aux", type=float, default=0.0, help="weight of the silhouette probe on the control embedding")
    ap.add_argument("--init", help="start from a shipped model folder (its f16 weights) instead of the UNet's encoder")
    ap.add_argument("--init-step", type=int, default=0, help="the step count the --init model was trained to")
    ap.add_argument("--p-small", type=float, default=0.0, help="share of the batch drawn from small-shape scenes")
    ap.add_argument("--t-high", type=float, default=0.0, help="share of samples with t drawn from [600, 1000)")
    ap.add_argument("--eval-count", type=int, default=16)
    ap.add_argument("--eval-seed", type=int, default=4242, help="the cases' seed (4242: the semantic test's)")
    ap.add_argument("--eval-edges", action="store_true")
    ap.add_argument("--eval-live", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.work, exist_ok=True)
    phases = ["data", "train", "export"] if args.phase == "all" else [args.phase]
    for ph in phases:
        {"data": make_data, "train": train, "export": export, "eval": evaluate, "golden": write_golden,
         "picture": readme_picture}[ph](args)


if __name__ == "__main__":
    main()
