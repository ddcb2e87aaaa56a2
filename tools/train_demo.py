"""train_demo.py — trains the bundled demo model (samples/models/shapes/): a tiny Stable Diffusion 1.x
(CLIPTextModel with the real CLIP BPE tokenizer, UNet2DConditionModel, AutoencoderKL) on the synthetic
coloured-shapes pictures of tools/shapes.py, on the CPU, and exports it as a diffusers folder of f16 safetensors.

Phases (each resumes from the files of the one before it in --work):
    vae      AutoencoderKL on rendered pictures (L1 + MSE + 1e-6·KL), 64×64 crops, then full 128×128 pictures
    latents  encodes a fixed set of pictures ONCE (posterior mean and std) and measures the scaling factor
    decoder  fine-tunes the VAE decoder alone on those latents (edge-weighted loss; the latents stay valid)
    unet     CLIP text encoder + UNet jointly: ε-prediction on the SD schedule (scaled_linear 0.00085..0.012,
             1000 steps), 10% empty captions for classifier-free guidance, Min-SNR-5 loss weights, AdamW,
             EMA of both models' weights (the EMA weights are exported)
    unet2    second stage: continues from stage 1's EMA weights with a fresh optimiser and schedule, a quarter of
             each batch "first sampler step" samples (pure noise in, the picture's x0 as the target)
    unet3    third stage, the same from stage 2's EMA, with an x0-loss floor on every step (layout at high noise)
    unet4    fourth stage, from stage 3's EMA, adds a position probe on the text encoder (see train_unet)
    unet5    fifth stage, from stage 4's EMA: fewer noisy-end samples (shape edges and colours are drawn at lower t)
    unet6    sixth stage, from stage 5's EMA: t almost uniform (a tenth of the batch from the noisy half, a
             twentieth first-sampler-step samples), probes kept: the middle and low steps, where a shape gets its
             corners and points, had had little training (img2img at strength 0.3 lost a fifth of the shapes)
    unet7    seventh stage: stage 6 again from stage 6's EMA, at a lower learning rate
             The defaults are the recipe of the shipped model: stage 1 stopped after 1000 steps of a 3000-step
             cosine schedule, stage 2 after 250 of 1500, stage 3 after 1200 of 2400, stage 4 after 1200 of 1800,
             stages 5, 6 and 7 ran their 1000, 2000 and 3000 (the stops are where runs were cut to try the next
             idea, evaluated on held-out scenes; they are kept so that the defaults repeat the shipped weights).
    export   f16 safetensors + configs + tokenizer + scheduler + model_index.json into --out

Usage (installs: tools/requirements.txt):
    python tools/train_demo.py --work /tmp/demo-train --out samples/models/shapes            # everything
    python tools/train_demo.py --phase unet --unet-steps 200 ...                              # one phase
Everything is seeded: torch.manual_seed per phase and a data stream where picture i is a pure function of
(seed, i) (tools/shapes.py). With the same package versions and thread count the run repeats bit for bit.
"""
import argparse
import gzip
import json
import math
import os
import platform
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shapes  # noqa: E402
from clip_bpe import byte_encoder  # noqa: E402

CLIP_MERGES_GZ = "bpe_simple_vocab_16e6.txt.gz"   # OpenAI CLIP / OpenCLIP merges (MIT), see facts §3.5

# --------------------------------------------------------------------------------------------------------------
# Model configurations (small widths, exactly the SD 1.x classes and code paths)
# --------------------------------------------------------------------------------------------------------------

VAE_CONFIG = dict(
    in_channels=3, out_channels=3, latent_channels=4, sample_size=128,
    down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
    block_out_channels=[32, 32, 64, 64], layers_per_block=1, norm_num_groups=8, act_fn="silu",
)
TEXT_CONFIG = dict(
    vocab_size=49408, hidden_size=64, intermediate_size=256, num_hidden_layers=3, num_attention_heads=2,
    max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5,
    bos_token_id=49406, eos_token_id=49407, pad_token_id=49407, projection_dim=64,
)
UNET_CONFIG = dict(
    sample_size=16, in_channels=4, out_channels=4,
    # SD 1.x's four levels (16→8→4→2 here): the 2×2 level and the mid block's cross-attention there are what
    # lets the text say *where* (a three-level UNet of the same size learned colours and shapes but no positions)
    down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    block_out_channels=[64, 96, 112, 128], layers_per_block=1, cross_attention_dim=64, attention_head_dim=4,
    norm_num_groups=16, norm_eps=1e-5, use_linear_projection=False, act_fn="silu",
    flip_sin_to_cos=True, freq_shift=0, center_input_sample=False, downsample_padding=1,
)
SCHEDULE = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")


def log(msg):
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def count(m):
    return sum(p.numel() for p in m.parameters())


def versions():
    import diffusers
    import transformers
    import safetensors
    import PIL
    return {"python": platform.python_version(), "torch": torch.__version__, "diffusers": diffusers.__version__,
            "transformers": transformers.__version__, "safetensors": safetensors.__version__,
            "numpy": np.__version__, "pillow": PIL.__version__, "threads": str(torch.get_num_threads())}


def to_tensor(imgs):
    """uint8 [N, H, W, 3] -> f32 NCHW in [-1, 1]."""
    return torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


# --------------------------------------------------------------------------------------------------------------
# Tokenizer: vocab.json + merges.txt built from the MIT CLIP merges (facts §3.1), SD 1.x special tokens
# --------------------------------------------------------------------------------------------------------------

def find_merges_gz():
    try:
        import open_clip
        p = os.path.join(os.path.dirname(open_clip.__file__), CLIP_MERGES_GZ)
        if os.path.exists(p):
            return p
    except ImportError:
        pass
    raise SystemExit("train_demo: %s not found (pip install open_clip_torch, see tools/requirements.txt)" % CLIP_MERGES_GZ)


def write_tokenizer(folder):
    os.makedirs(folder, exist_ok=True)
    with gzip.open(find_merges_gz(), "rt", encoding="utf-8") as f:
        merges = f.read().split("\n")[1:49152 - 256 - 2 + 1]
    merges = [tuple(m.split()) for m in merges]
    vocab = list(byte_encoder().values())
    vocab = vocab + [v + "</w>" for v in vocab] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 49408
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({t: i for i, t in enumerate(vocab)}, f, ensure_ascii=False)
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        f.writelines(" ".join(m) + "\n" for m in merges)
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
               "unk_token": "<|endoftext|>"}
    with open(os.path.join(folder, "special_tokens_map.json"), "w") as f:
        json.dump(special, f, indent=2)
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump(dict(special, tokenizer_class="CLIPTokenizer", model_max_length=77, do_lower_case=True,
                       errors="replace", add_prefix_space=False, clean_up_tokenization_spaces=True), f, indent=2)


def load_tokenizer(folder):
    from transformers import CLIPTokenizer
    return CLIPTokenizer.from_pretrained(folder)


# --------------------------------------------------------------------------------------------------------------
# Phase 1: VAE
# --------------------------------------------------------------------------------------------------------------

def make_vae():
    from diffusers import AutoencoderKL
    return AutoencoderKL(**VAE_CONFIG)


def vae_batch(seed, step, bs, crop):
    """Pictures of training step `step`: a fixed slice of the stream, optionally a seeded random crop."""
    imgs = [shapes.render(shapes.scene_at(seed, step * bs + j)) for j in range(bs)]
    if crop < shapes.SIZE:
        rng = np.random.default_rng([seed, step, 7])
        out = []
        for im in imgs:
            y, x = rng.integers(0, shapes.SIZE - crop + 1, size=2)
            out.append(im[y:y + crop, x:x + crop])
        imgs = out
    return to_tensor(imgs)


def train_vae(args):
    torch.manual_seed(args.seed)
    vae = make_vae()
    log("vae: %d parameters" % count(vae))
    opt = torch.optim.AdamW(vae.parameters(), lr=args.vae_lr, weight_decay=0.0)
    n = args.vae_steps
    n_crop = int(n * 0.75)
    t0 = time.time()
    for step in range(n):
        lr = args.vae_lr * min(1.0, (step + 1) / 50) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / n)))
        for g in opt.param_groups:
            g["lr"] = lr
        full = step >= n_crop
        x = vae_batch(args.seed + 1, step, 8 if full else 16, shapes.SIZE if full else 64)
        post = vae.encode(x).latent_dist
        y = vae.decode(post.sample()).sample
        rec = (y - x).abs().mean() + ((y - x) ** 2).mean()
        kl = post.kl().mean()
        loss = rec + args.vae_kl * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        if step % 25 == 0 or step == n - 1:
            log("vae step %d/%d  l1+mse %.4f  kl %.1f  lr %.2e  %.1f min" % (step, n, rec.item(), kl.item(), lr,
                                                                      (time.time() - t0) / 60))
    vae.eval()
    with torch.no_grad():
        x = to_tensor([shapes.render(shapes.scene_at(args.seed + 2, i)) for i in range(32)])
        y = vae.decode(vae.encode(x).latent_dist.mode()).sample.clamp(-1, 1)
        err = ((y - x).abs() * 127.5)
    stats = {"vae_steps": n, "vae_minutes": (time.time() - t0) / 60, "vae_final_l1_mse": float(rec),
             "vae_heldout_mae_8bit": float(err.mean()), "vae_heldout_p99_8bit": float(err.flatten().quantile(0.99))}
    log("vae held-out reconstruction: mean abs error %.2f /255, 99th percentile %.1f /255"
        % (stats["vae_heldout_mae_8bit"], stats["vae_heldout_p99_8bit"]))
    torch.save({"state": vae.state_dict(), "stats": stats}, os.path.join(args.work, "vae.pt"))
    grid = torch.cat([x[:8], y[:8]], 0)
    save_grid(grid, 8, os.path.join(args.work, "vae_recon.png"))


def save_grid(x, cols, path):
    from PIL import Image
    im = ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    rows = [np.concatenate(list(im[r * cols:(r + 1) * cols]), 1) for r in range(len(im) // cols)]
    Image.fromarray(np.concatenate(rows, 0)).save(path)


def load_vae(args, finetuned=False):
    vae = make_vae()
    path = os.path.join(args.work, "vae_dec.pt")
    if not (finetuned and os.path.exists(path)):
        path = os.path.join(args.work, "vae.pt")
    ck = torch.load(path)
    vae.load_state_dict(ck["state"])
    vae.eval()
    return vae, ck["stats"]


# --------------------------------------------------------------------------------------------------------------
# Phase 2: latents (encoded once)
# --------------------------------------------------------------------------------------------------------------

def make_latents(args):
    torch.manual_seed(args.seed)
    vae, _ = load_vae(args)
    n = args.images
    means, stds, caps = [], [], []
    t0 = time.time()
    with torch.no_grad():
        for i0 in range(0, n, 64):
            scenes = [shapes.scene_at(args.seed + 3, i) for i in range(i0, min(n, i0 + 64))]
            post = vae.encode(to_tensor([shapes.render(s) for s in scenes])).latent_dist
            means.append(post.mean)
            stds.append(post.std)
            caps += [{k: s[k] for k in ("size", "colour", "shape", "background", "position")} for s in scenes]
            if i0 % 1024 == 0:
                log("latents %d/%d" % (i0, n))
    mean, std = torch.cat(means), torch.cat(stds)
    # SD convention: one scalar so that the UNet sees unit-variance latents (z_unet = z_vae * scaling_factor)
    scaling = float(1.0 / mean.std())
    log("latents: %d in %.1f min, mean %.3f std %.3f (posterior std %.4f) -> scaling_factor %.5f"
        % (n, (time.time() - t0) / 60, mean.mean(), mean.std(), std.mean(), scaling))
    torch.save({"mean": mean, "std": std, "scenes": caps, "scaling_factor": scaling},
               os.path.join(args.work, "latents.pt"))


def train_decoder(args):
    """Fine-tunes the VAE decoder alone on the fixed latents (the encoder, hence the UNet's data, is unchanged):
    full 128×128 pictures, L1 + MSE with edge pixels weighted up, so small shapes keep their corners."""
    torch.manual_seed(args.seed + 5)
    vae, vstats = load_vae(args)
    data = torch.load(os.path.join(args.work, "latents.pt"))
    mean, std, scenes = data["mean"], data["std"], data["scenes"]
    for p in vae.encoder.parameters():
        p.requires_grad_(False)
    for p in vae.quant_conv.parameters():
        p.requires_grad_(False)
    params = list(vae.decoder.parameters()) + list(vae.post_quant_conv.parameters())
    opt = torch.optim.AdamW(params, lr=args.dec_lr, weight_decay=0.0)
    rng = np.random.default_rng([args.seed, 13])
    n, bs = args.dec_steps, 8
    vae.train()
    t0 = time.time()
    for step in range(n):
        lr = args.dec_lr * min(1.0, (step + 1) / 20) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / n)))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = rng.integers(0, len(scenes), size=bs)
        x = to_tensor([shapes.render(shapes.scene_at(args.seed + 3, int(i))) for i in idx])  # as in make_latents
        z = mean[idx] + std[idx] * torch.from_numpy(rng.standard_normal((bs, 4, 16, 16)).astype(np.float32))
        y = vae.decode(z).sample
        # edge weight: 1 on flat areas, 5 where the target changes (and a pixel around it)
        gx = (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().sum(1, keepdim=True)
        gy = (x[:, :, 1:, :] - x[:, :, :-1, :]).abs().sum(1, keepdim=True)
        edge = F.pad(gx, (0, 1, 0, 0)) + F.pad(gx, (1, 0, 0, 0)) + F.pad(gy, (0, 0, 0, 1)) + F.pad(gy, (0, 0, 1, 0))
        wgt = 1 + 4 * (F.max_pool2d(edge, 3, 1, 1) > 0.05).float()
        err = y - x
        loss = (wgt * (err.abs() + err ** 2)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 25 == 0 or step == n - 1:
            log("decoder step %d/%d  weighted l1+mse %.4f  lr %.2e  %.1f min" % (step, n, loss.item(), lr,
                                                                               (time.time() - t0) / 60))
        if (step + 1) % 100 == 0 or step == n - 1:
            vstats = dict(vstats, decoder_steps=step + 1, decoder_minutes=(time.time() - t0) / 60,
                          decoder_final_loss=float(loss.detach()))
            torch.save({"state": vae.state_dict(), "stats": vstats}, os.path.join(args.work, "vae_dec.pt"))
    log("decoder fine-tuning done")


# --------------------------------------------------------------------------------------------------------------
# Phase 3: text encoder + UNet
# --------------------------------------------------------------------------------------------------------------

def make_text_and_unet():
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel
    te = CLIPTextModel(CLIPTextConfig(**TEXT_CONFIG))
    unet = UNet2DConditionModel(**UNET_CONFIG)
    return te, unet


ATTRIBUTES = {"position": list(shapes.POSITIONS), "colour": list(shapes.FG_COLOURS), "shape": list(shapes.SHAPES),
              "size": list(shapes.SIZES), "background": list(shapes.BG_COLOURS)}


def train_captions(scenes, idx, rng, p_empty, p_partial):
    """Captions of the pictures idx (10% empty, a share with parts left out) and, per attribute, the index of the
    value each caption names (-1 where it names none)."""
    caps, labels = [], {k: [] for k in ATTRIBUTES}
    for i in idx:
        s = scenes[i]
        u = rng.random()
        named = {"colour": True, "shape": True, "size": True, "background": True, "position": True}
        if u < p_empty:
            caps.append("")
            named = dict.fromkeys(named, False)
        elif u < p_empty + p_partial:
            keep = rng.random(3) < 0.5
            caps.append(shapes.partial_caption(s, *keep))
            named.update(size=bool(keep[0]), background=bool(keep[1]), position=bool(keep[2]))
        else:
            caps.append(shapes.caption(s))
        for k, values in ATTRIBUTES.items():
            labels[k].append(values.index(s[k]) if named[k] else -1)
    return caps, labels


UNET_STAGES = 7    # stage k > 1 starts from stage k-1's EMA weights (see stage_settings)


def stage_settings(args, stage):
    """(schedule steps, steps run, peak lr, warm-up, share of the batch drawn from t in [t_lo, 1000), t_lo,
    x0-weight floor, share of "first sampler step" samples) of a UNet stage. Stage 1 trains from scratch; stages 2 and 3 continue from the EMA weights
    of the stage before with a fresh AdamW, their own warm-up + cosine schedule and their own data stream."""
    a = args
    return {
        1: (a.unet_steps, a.unet_stop or a.unet_steps, a.lr, 200, a.hi_t1, 500, 0.0, 0.0),
        2: (a.unet2_steps, a.unet2_stop or a.unet2_steps, a.lr2, 100, a.hi_t, 500, 0.0, a.terminal2),
        3: (a.unet3_steps, a.unet3_stop or a.unet3_steps, a.lr3, 100, a.hi_t3, a.t_lo3, a.x0_floor, a.terminal3),
        4: (a.unet4_steps, a.unet4_stop or a.unet4_steps, a.lr4, 100, a.hi_t3, a.t_lo3, a.x0_floor, a.terminal3),
        5: (a.unet5_steps, a.unet5_steps, a.lr5, 100, a.hi_t5, a.t_lo3, a.x0_floor, a.terminal5),
        6: (a.unet6_steps, a.unet6_steps, a.lr6, 100, a.hi_t6, a.t_lo3, a.x0_floor, a.terminal6),
        7: (a.unet7_steps, a.unet7_steps, a.lr7, 100, a.hi_t6, a.t_lo3, a.x0_floor, a.terminal6),
    }[stage]


def train_unet(args, stage=1):
    torch.manual_seed(args.seed + stage - 1)
    data = torch.load(os.path.join(args.work, "latents.pt"))
    mean, std, scenes, scaling = data["mean"], data["std"], data["scenes"], data["scaling_factor"]
    tok = load_tokenizer(os.path.join(args.work, "tokenizer"))
    te, unet = make_text_and_unet()
    prev_stats = {}
    n, stop, base_lr, warm, hi_t, t_lo, x0_floor, terminal = stage_settings(args, stage)
    if stage > 1:
        ck = torch.load(os.path.join(args.work, "unet_stage%d.pt" % (stage - 1)))
        te.load_state_dict(ck["te"])
        unet.load_state_dict(ck["unet"])
        prev_stats = ck["stats"]
    log("stage %d: text encoder %d parameters, unet %d parameters" % (stage, count(te), count(unet)))
    params = list(te.parameters()) + list(unet.parameters())
    ema = [p.detach().clone() for p in params]
    # Stage 4's position probe (training only, never exported): a linear head that must read the caption's position
    # from the text encoder's state at its last word. Through stage 3 the position words stayed at their random
    # initial embeddings and the encoder's states for "top left" and "bottom right" differed 10x less than those of
    # two colours: the UNet never found them useful, so they never got a gradient that would make them useful.
    # Stage 5 probes every attribute: the same had happened to "circle" and "square" (their states 10x closer than
    # those of any other two shapes), and a circle was what the model drew for a square.
    aux = args.aux_pos if stage >= 4 else 0.0
    probed = ["position"] if stage == 4 else list(ATTRIBUTES) if stage >= 5 else []
    probes = torch.nn.ModuleDict({k: torch.nn.Linear(TEXT_CONFIG["hidden_size"], len(ATTRIBUTES[k])) for k in probed})
    trained = params + list(probes.parameters())
    opt = torch.optim.AdamW(trained, lr=base_lr, weight_decay=0.01, betas=(0.9, 0.999))
    betas = torch.linspace(SCHEDULE["beta_start"] ** 0.5, SCHEDULE["beta_end"] ** 0.5, 1000, dtype=torch.float32) ** 2
    ac = torch.cumprod(1 - betas, 0)
    snr = ac / (1 - ac)
    w_t = torch.clamp(snr, max=5.0) / snr          # Min-SNR-5 weights for ε-prediction
    if x0_floor:
        # ε-loss = SNR · x0-loss: at the noisiest steps, where the text alone must decide the layout, the ε-loss
        # hardly cares what picture is drawn. The floor keeps the x0-loss weight at least x0_floor there.
        w_t = torch.maximum(w_t, x0_floor / snr)
    rng = np.random.default_rng([args.seed, 10 + stage])
    cache = {}

    def encode_ids(caps):
        ids = []
        for c in caps:
            if c not in cache:
                cache[c] = tok(c, padding="max_length", max_length=77, truncation=True).input_ids
            ids.append(cache[c])
        return torch.tensor(ids)

    bs = args.batch
    t0 = time.time()
    run_loss = None
    hist = []
    key = "unet" if stage == 1 else "unet%d" % stage
    for step in range(stop):
        lr = base_lr * min(1.0, (step + 1) / warm) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / n)))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = rng.integers(0, len(scenes), size=bs)
        caps, labels = train_captions(scenes, idx, rng, 0.10, args.p_partial)
        ids = encode_ids(caps)
        eps_z = torch.from_numpy(rng.standard_normal((bs, 4, 16, 16)).astype(np.float32))
        z0 = (mean[idx] + std[idx] * eps_z) * scaling
        t = rng.integers(0, 1000, size=bs)
        if hi_t:   # part of the batch from the noisiest steps, where layout, colour and position are decided
            k = int(round(hi_t * bs))
            t[:k] = rng.integers(t_lo, 1000, size=k)
        nterm = int(round(terminal * bs))
        t[bs - nterm:] = 999
        t = torch.from_numpy(t)
        noise = torch.from_numpy(rng.standard_normal((bs, 4, 16, 16)).astype(np.float32))
        a = ac[t].sqrt().view(-1, 1, 1, 1)
        b = (1 - ac[t]).sqrt().view(-1, 1, 1, 1)
        zt = a * z0 + b * noise
        if nterm:
            # "first sampler step" samples: the sampler starts from pure noise, which (unlike the training x_999)
            # holds no trace of the picture, so there only the text can say where the shape goes. Feed pure
            # noise and the ε that makes the predicted x0 the training picture; weighted as an x0 loss.
            pure = torch.from_numpy(rng.standard_normal((nterm, 4, 16, 16)).astype(np.float32))
            zt[bs - nterm:] = pure
            noise[bs - nterm:] = (pure - a[bs - nterm:] * z0[bs - nterm:]) / b[bs - nterm:]
        ctx = te(ids).last_hidden_state
        pred = unet(zt, t, ctx).sample
        per = ((pred - noise) ** 2).mean(dim=(1, 2, 3))
        w = w_t[t].clone()
        if nterm:
            w[bs - nterm:] = 1.0 / snr[999]
        loss = (per * w).mean()
        aux_loss = torch.zeros(())
        last = (ids == TEXT_CONFIG["eos_token_id"]).int().argmax(1) - 1   # causal: the last word saw them all
        for k in probed:
            y = torch.tensor(labels[k])
            if bool((y >= 0).any()):
                aux_loss = aux_loss + F.cross_entropy(probes[k](ctx[torch.arange(bs), last][y >= 0]), y[y >= 0])
        loss = loss + aux * aux_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        opt.step()
        d = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            torch._foreach_lerp_(ema, [p.detach() for p in params], 1 - d)
        mse = per.mean().item()
        run_loss = mse if run_loss is None else 0.98 * run_loss + 0.02 * mse
        if step % 50 == 0 or step == n - 1:
            el = time.time() - t0
            log("%s step %d/%d  mse %.4f (avg %.4f)  probe %.3f  lr %.2e  %.1f min, eta %.1f min"
                % (key, step, n, mse, run_loss, aux_loss.item(), lr, el / 60, el / (step + 1) * (stop - step - 1) / 60))
            hist.append((step, run_loss))
        if (step + 1) % args.save_every == 0 or step == stop - 1:
            stats = dict(prev_stats, **{key + "_steps": step + 1, key + "_minutes": (time.time() - t0) / 60,
                                        key + "_final_mse_avg": run_loss, key + "_loss_history": hist})
            save_unet(args, te, unet, params, ema, stats, "unet_stage%d.pt" % stage if step == stop - 1 else None)


def save_unet(args, te, unet, params, ema, stats, also=None):
    with torch.no_grad():
        live = [p.detach().clone() for p in params]
        for p, e in zip(params, ema):
            p.copy_(e)
        for name in ["unet_ema.pt"] + ([also] if also else []):
            torch.save({"te": te.state_dict(), "unet": unet.state_dict(), "stats": stats},
                       os.path.join(args.work, name))
        for p, v in zip(params, live):
            p.copy_(v)
    log("saved EMA weights")


# --------------------------------------------------------------------------------------------------------------
# Phase 4: export
# --------------------------------------------------------------------------------------------------------------

SCHEDULER_CONFIG = {
    # SD 1.5's convention (facts §1.2): PNDM, scaled_linear betas, leading spacing with steps_offset 1
    "_class_name": "PNDMScheduler", "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000, "clip_sample": False, "set_alpha_to_one": False, "skip_prk_steps": True,
    "steps_offset": 1, "prediction_type": "epsilon", "trained_betas": None,
}


def export(args):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextConfig
    out = args.out
    os.makedirs(out, exist_ok=True)
    vae, vstats = load_vae(args, finetuned=True)
    data = torch.load(os.path.join(args.work, "latents.pt"))
    vae.register_to_config(scaling_factor=round(data["scaling_factor"], 5))
    ck = torch.load(os.path.join(args.work, "unet_ema.pt"))
    te = CLIPTextModel(CLIPTextConfig(**TEXT_CONFIG))
    te.load_state_dict(ck["te"])
    unet = UNet2DConditionModel(**UNET_CONFIG)
    unet.load_state_dict(ck["unet"])
    for name, m in (("vae", vae), ("text_encoder", te), ("unet", unet)):
        m.to(torch.float16).save_pretrained(os.path.join(out, name), safe_serialization=True)
    write_tokenizer(os.path.join(out, "tokenizer"))
    os.makedirs(os.path.join(out, "scheduler"), exist_ok=True)
    import diffusers
    with open(os.path.join(out, "scheduler", "scheduler_config.json"), "w") as f:
        json.dump(dict(SCHEDULER_CONFIG, _diffusers_version=diffusers.__version__), f, indent=2)
    with open(os.path.join(out, "model_index.json"), "w") as f:
        json.dump({"_class_name": "StableDiffusionPipeline", "_diffusers_version": diffusers.__version__,
                   "feature_extractor": [None, None], "requires_safety_checker": False,
                   "safety_checker": [None, None], "scheduler": ["diffusers", "PNDMScheduler"],
                   "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
                   "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
                   # read by our engine (pipeline/model_files.c) when the user gives no guidance: at the SD 1.x
                   # default of 7 this small model overshoots and rounds off corners (held-out shapes 69% right at
                   # 7, 88% at 3); the leading underscore keeps diffusers from taking it for a component
                   "_sd_defaults": {"guidance_scale": args.guidance}}, f, indent=2)
    stats = dict(vstats, **ck["stats"], scaling_factor=data["scaling_factor"], images=len(data["scenes"]),
                 params={"text_encoder": count(te), "unet": count(unet), "vae": count(vae)}, versions=versions(),
                 seed=args.seed)
    for k in [k for k in stats if k.endswith("loss_history")]:
        stats.pop(k)
    with open(os.path.join(args.work, "train_stats.json"), "w") as f:
        json.dump(stats, f, indent=2)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
    log("exported to %s: %.2f MB; stats in %s" % (out, total / 1e6, os.path.join(args.work, "train_stats.json")))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="/tmp/demo-train", help="checkpoints, latents and logs (not committed)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "samples",
                                                  "models", "shapes"))
    ap.add_argument("--phase", default="all", choices=["all", "vae", "latents", "decoder", "unet"] +
                    ["unet%d" % k for k in range(2, UNET_STAGES + 1)] + ["export"])
    ap.add_argument("--seed", type=int, default=20240)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--vae-steps", type=int, default=1000)
    ap.add_argument("--vae-lr", type=float, default=1e-3)
    ap.add_argument("--vae-kl", type=float, default=1e-6)
    ap.add_argument("--dec-steps", type=int, default=400)
    ap.add_argument("--dec-lr", type=float, default=3e-4)
    ap.add_argument("--images", type=int, default=6144, help="pictures encoded for UNet training")
    ap.add_argument("--unet-steps", type=int, default=3000)
    ap.add_argument("--hi-t1", type=float, default=0.5, help="stage 1: share of each batch with t in [500, 1000)")
    ap.add_argument("--unet-stop", type=int, default=1000, help="end stage 1 after this many steps of its schedule")
    ap.add_argument("--hi-t", type=float, default=0.5, help="stage 2: share of each batch with t in [500, 1000)")
    ap.add_argument("--unet2-steps", type=int, default=1500, help="stage 2 steps (0: no stage 2)")
    ap.add_argument("--lr2", type=float, default=6e-4)
    ap.add_argument("--terminal2", type=float, default=0.25, help="stage 2: share of first-sampler-step samples")
    ap.add_argument("--unet2-stop", type=int, default=250, help="end stage 2 after this many steps of its schedule")
    ap.add_argument("--unet3-steps", type=int, default=2400, help="stage 3 steps (0: no stage 3)")
    ap.add_argument("--lr3", type=float, default=5e-4)
    ap.add_argument("--hi-t3", type=float, default=0.5, help="stage 3: share of each batch with t in [t_lo3, 1000)")
    ap.add_argument("--t-lo3", type=int, default=500)
    ap.add_argument("--unet3-stop", type=int, default=1200, help="end stage 3 after this many steps of its schedule")
    ap.add_argument("--unet4-steps", type=int, default=1800, help="stage 4 steps (0: no stage 4)")
    ap.add_argument("--unet4-stop", type=int, default=1200, help="end stage 4 after this many steps of its schedule")
    ap.add_argument("--lr4", type=float, default=6e-4)
    ap.add_argument("--unet5-steps", type=int, default=1000, help="stage 5 steps (0: no stage 5)")
    ap.add_argument("--lr5", type=float, default=4e-4)
    ap.add_argument("--hi-t5", type=float, default=0.3, help="stage 5: share of each batch with t in [t_lo3, 1000)")
    ap.add_argument("--terminal5", type=float, default=0.1, help="stage 5: share of first-sampler-step samples")
    ap.add_argument("--unet6-steps", type=int, default=2000, help="stage 6 steps (0: no stage 6)")
    ap.add_argument("--lr6", type=float, default=3e-4)
    ap.add_argument("--hi-t6", type=float, default=0.1, help="stage 6: share of each batch with t in [t_lo3, 1000)")
    ap.add_argument("--terminal6", type=float, default=0.05, help="stage 6: share of first-sampler-step samples")
    ap.add_argument("--unet7-steps", type=int, default=3000, help="stage 7 (stage 6 again, from stage 6) steps")
    ap.add_argument("--lr7", type=float, default=2e-4)
    ap.add_argument("--aux-pos", type=float, default=0.1, help="stage 4: weight of the position probe's loss")
    ap.add_argument("--terminal3", type=float, default=0.25, help="stage 3: share of first-sampler-step samples")
    ap.add_argument("--x0-floor", type=float, default=0.2, help="stage 3: loss weight at least x0_floor / SNR(t)")
    ap.add_argument("--guidance", type=float, default=3.0, help="export: the model's default guidance scale")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=8e-4)
    ap.add_argument("--ema", type=float, default=0.998)
    ap.add_argument("--p-partial", type=float, default=0.2, help="share of captions with optional parts left out")
    ap.add_argument("--save-every", type=int, default=500)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    os.makedirs(args.work, exist_ok=True)
    write_tokenizer(os.path.join(args.work, "tokenizer"))
    log("train_demo: %s" % json.dumps(versions()))
    t0 = time.time()
    later = ["unet%d" % k for k in range(2, UNET_STAGES + 1) if getattr(args, "unet%d_steps" % k)]
    phases = ["vae", "latents", "decoder", "unet"] + later + ["export"] if args.phase == "all" else [args.phase]
    for ph in phases:
        if ph.startswith("unet"):
            train_unet(args, int(ph[4:] or 1))
        else:
            {"vae": train_vae, "latents": make_latents, "decoder": train_decoder, "export": export}[ph](args)
        log("phase %s done; %.1f min since start" % (ph, (time.time() - t0) / 60))


if __name__ == "__main__":
    main()
