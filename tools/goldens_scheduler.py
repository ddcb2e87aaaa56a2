#!/usr/bin/env python3
"""goldens_scheduler.py — golden data for scheduler/: torch RNG streams, A1111's Philox emulation, the training
tables, diffusers / k-diffusion schedules, and sampler trajectories of a closed-form toy denoiser.

Run:  /work/pyenv/bin/python tools/goldens_scheduler.py        (writes tests/golden/scheduler/*.safetensors)
Versions it was run with: torch 2.15.0 (CPU), diffusers 0.42.1, k-diffusion 0.1.1.post1, torchsde 0.2.6,
numpy 1.26.4, scipy 1.17.1, safetensors 0.8.0. They are also stored in each file's metadata.

The toy denoiser (identical in tests/test_sched_samplers.c):
    ctx[i] = float32(0.8 * cos(0.37 * i))                  i = flat NCHW index of the latent
    s      = float32(0.1 * sin(t / 100))                   t = the UNet timestep as a double
    out    = tanh(0.5 * x_in) * ctx + s * x_in             float32, x_in = the scaled UNet input
and is fed to the real diffusers schedulers (built with from_config() from SD 1.5's scheduler config, as a
pipeline switching schedulers does) and to the real k-diffusion samplers (through k-diffusion's CompVisDenoiser /
CompVisVDenoiser on the LDM float64 alphas_cumprod, as AUTOMATIC1111 wraps the model). Every Gaussian the
schedulers draw is recorded, so the C test can feed the same noise and also check it is the torch stream.

IEEE square roots: torch 2.15's CPU sqrt (float32, through MKL VML) is not correctly rounded on the AMD EPYC that
made these files (about 17% of results are 1 ulp off). Ancestral samplers compute σ_down = sqrt(σ_next² - σ_up²)
with σ_up itself a square root; at 2 steps (σ 14.6 -> 0.029) that subtraction cancels ~5 decimal digits and the ulp
becomes a 1% change of σ_down and of the DPM2-a midpoint. So the trajectories are generated with float32 sqrt (the
`** 0.5`, Tensor.sqrt and torch.sqrt the schedulers use) replaced by numpy's IEEE float32 sqrt — the machine-
independent value, and what the C code computes. The schedules and tables in schedules.safetensors are plain torch.
"""
import inspect
import math
import os
import struct
import sys
import types

import numpy as np
import torch

sys.modules.setdefault("clip", types.ModuleType("clip"))  # k_diffusion imports OpenAI CLIP for its evaluation module only
import diffusers  # noqa: E402
import k_diffusion as K  # noqa: E402
import scipy  # noqa: E402
import safetensors  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402
from diffusers import (DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,  # noqa: E402
                       EulerDiscreteScheduler, HeunDiscreteScheduler, KDPM2AncestralDiscreteScheduler,
                       KDPM2DiscreteScheduler, LCMScheduler, LMSDiscreteScheduler, PNDMScheduler,
                       UniPCMultistepScheduler)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden", "scheduler")
VERSIONS = (f"torch {torch.__version__}, diffusers {diffusers.__version__}, k-diffusion 0.1.1.post1, "
            f"numpy {np.__version__}, scipy {scipy.__version__}, safetensors {safetensors.__version__}")
torch.set_num_threads(1)

# SD 1.5's scheduler/scheduler_config.json (runwayml/stable-diffusion-v1-5)
SD15_CONFIG = {"_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "beta_end": 0.012,
               "beta_schedule": "scaled_linear", "beta_start": 0.00085, "num_train_timesteps": 1000,
               "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
               "clip_sample": False}

CLASSES = {"euler": EulerDiscreteScheduler, "euler_a": EulerAncestralDiscreteScheduler, "heun": HeunDiscreteScheduler,
           "dpm2": KDPM2DiscreteScheduler, "dpm2_a": KDPM2AncestralDiscreteScheduler, "lms": LMSDiscreteScheduler,
           "dpm++2m": DPMSolverMultistepScheduler, "dpm++2m_sde": DPMSolverMultistepScheduler,
           "ddim": DDIMScheduler, "pndm": PNDMScheduler, "ddpm": DDPMScheduler, "unipc": UniPCMultistepScheduler,
           "lcm": LCMScheduler}
KARRAS_OK = {"euler", "heun", "dpm2", "dpm2_a", "lms", "dpm++2m", "dpm++2m_sde", "unipc"}
EXP_OK = {"euler", "heun", "dpm2", "dpm2_a", "lms", "dpm++2m", "dpm++2m_sde", "unipc"}
SHAPE = (2, 4, 2, 3)          # batch 2: the per-image A1111 noise streams and per-item rescale are exercised
NUMEL = int(np.prod(SHAPE))
STEP_COUNTS = (1, 2, 5, 20)


def write(name, tensors, meta):
    meta = dict(meta)
    meta["versions"] = VERSIONS
    meta["generator"] = "tools/goldens_scheduler.py"
    path = os.path.join(OUT, name)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, path, metadata=meta)
    print(f"{path}: {len(tensors)} tensors, {os.path.getsize(path)} bytes")


def f32(a):
    return np.asarray(a, dtype=np.float32)


# ------------------------------------------------------------------------------------------------ RNG: torch CPU

def fnv1a64(arr):
    h = 0xcbf29ce484222325
    for b in np.asarray(arr, dtype="<f4").tobytes():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def gen_rng_cpu():
    seeds = [0, 1, 42, 2**32 - 1, 2**63 - 1]
    shapes = [(1,), (7,), (15,), (16,), (17,), (4, 64, 64), (2, 4, 96, 80)]
    t, meta = {}, {"seeds": ",".join(map(str, seeds))}
    rs = np.random.RandomState(1234)
    big_idx = np.sort(rs.choice(2 * 4 * 96 * 80, 2000, replace=False))
    t["big_index"] = f32(big_idx)               # exact in float32 (< 2^24)
    for s in seeds:
        for shp in shapes:
            x = torch.randn(shp, generator=torch.Generator().manual_seed(s)).numpy().reshape(-1)
            key = f"s{s}/n{'x'.join(map(str, shp))}"
            if len(x) > 20000:                   # too big to store: scattered values, sum, and a hash of all bits
                t[key + "/values"] = x[big_idx]
                t[key + "/sum"] = np.array([x.astype(np.float64).sum()], np.float64)
                meta[key + "/fnv1a64"] = fnv1a64(x)
            else:
                t[key] = x
        g = torch.Generator().manual_seed(s)   # state carries over between calls (cached double, mt position)
        seq = [torch.randn(3, generator=g), torch.randn(3, generator=g), torch.randn(20, generator=g),
               torch.randn(5, generator=g), torch.randn(1, generator=g), torch.randn(33, generator=g)]
        t[f"s{s}/sequence"] = torch.cat(seq).numpy()
    write("rng_cpu.safetensors", t, meta)


# ------------------------------------------------------------------------------------- RNG: A1111 Philox emulation

def philox_a1111(seed, offset, n):
    """AUTOMATIC1111 modules/rng_philox.py, re-implemented from its description: counter (offset, 0, i, 0), key
    (seed lo, seed hi), 10 rounds; numpy promotes uint32 * float32-array to float64 in the Box-Muller step."""
    M0, M1, W0, W1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57), np.uint32(0x9E3779B9), np.uint32(0xBB67AE85)
    c0 = np.full(n, offset, np.uint32)
    c1 = np.zeros(n, np.uint32)
    c2 = np.arange(n, dtype=np.uint32)
    c3 = np.zeros(n, np.uint32)
    k0 = np.full(n, seed & 0xFFFFFFFF, np.uint32)
    k1 = np.full(n, (seed >> 32) & 0xFFFFFFFF, np.uint32)
    for r in range(10):
        p0 = c0.astype(np.uint64) * M0
        p1 = c2.astype(np.uint64) * M1
        n0 = (p1 >> np.uint64(32)).astype(np.uint32) ^ c1 ^ k0
        n1 = (p1 & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        n2 = (p0 >> np.uint64(32)).astype(np.uint32) ^ c3 ^ k1
        n3 = (p0 & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        c0, c1, c2, c3 = n0, n1, n2, n3
        if r < 9:
            k0 = k0 + W0
            k1 = k1 + W1
    inv = np.array([2.3283064e-10], dtype=np.float32)
    inv2pi = np.array([2.3283064e-10 * 6.2831855], dtype=np.float32)
    u = c0 * inv + inv / 2
    v = c1 * inv2pi + inv2pi / 2
    return (np.sqrt(-2.0 * np.log(u)) * np.sin(v)).astype(np.float32)


def gen_rng_philox():
    seeds = [0, 1, 42, 2**32 - 1, 2**63 - 1, 2**40 + 7]
    sizes = [12, 256, 140, 1000]
    t = {}
    for s in seeds:
        for k, n in enumerate(sizes):
            t[f"s{s}/call{k}"] = philox_a1111(s, k, n)
    write("rng_philox.safetensors", t, {"seeds": ",".join(map(str, seeds)), "sizes": ",".join(map(str, sizes)),
                                       "reference": "A1111 rng_philox algorithm in numpy (float64 Box-Muller)"})


# ------------------------------------------------------------------------------------------------ tables, schedules

def ldm_alphas_cumprod():
    """ldm.models.diffusion.ddpm.register_schedule with make_beta_schedule('linear'): float64, stored as float32."""
    betas = (torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2).numpy()
    return torch.tensor(np.cumprod(1.0 - betas, axis=0), dtype=torch.float32)


class FakeLDM:
    """What k-diffusion's CompVisDenoiser needs from an LDM model: alphas_cumprod and apply_model."""

    def __init__(self, fn):
        self.alphas_cumprod = ldm_alphas_cumprod()
        self.fn = fn

    def apply_model(self, x, t, cond=None):
        return self.fn(x, t)


def make_sched(name, **over):
    base = PNDMScheduler.from_config(SD15_CONFIG)
    kw = dict(over)
    if name == "dpm++2m_sde":
        kw["algorithm_type"] = "sde-dpmsolver++"
    return CLASSES[name].from_config(base.config, **kw)


def main_sigmas_timesteps(name, s):
    """Per-step σ (N+1, last 0) and UNet timesteps (N) of a diffusers scheduler, undoing the 2nd-order doubling."""
    sig, ts = s.sigmas.numpy() if hasattr(s, "sigmas") else None, s.timesteps.numpy().astype(np.float64)
    if name == "heun":
        sig = np.concatenate([sig[:1], sig[1:-1:2], sig[-1:]])
        ts = np.concatenate([ts[:1], ts[1::2]])
    elif name in ("dpm2", "dpm2_a"):
        sig = sig[0::2][: s.num_inference_steps + 1]
        ts = ts[0::2]
    elif name == "pndm":
        ts = np.concatenate([ts[:1], ts[2:]])
    return sig, ts


def gen_tables_and_schedules():
    t, meta = {}, {}
    e = EulerDiscreteScheduler.from_config(PNDMScheduler.from_config(SD15_CONFIG).config)
    t["diffusers/alphas_cumprod"] = e.alphas_cumprod.numpy()
    t["diffusers/sigmas"] = (((1 - e.alphas_cumprod) / e.alphas_cumprod) ** 0.5).numpy()
    kd = K.external.CompVisDenoiser(FakeLDM(None))
    t["ldm/alphas_cumprod"] = ldm_alphas_cumprod().numpy()
    t["ldm/sigmas"] = kd.sigmas.numpy()
    t["ldm/log_sigmas"] = kd.log_sigmas.numpy()
    # sigma_to_t / t_to_sigma probes
    probe_sigmas = np.array([0.0291675, 0.03, 0.1, 0.5, 1.0, 2.5, 7.0, 14.0, 14.6146], np.float32)
    t["probe/sigmas"] = probe_sigmas
    t["probe/diffusers_t"] = np.array([e._sigma_to_t(np.float64(s), np.log(t["diffusers/sigmas"])) for s in probe_sigmas])
    t["probe/kdiff_t"] = kd.sigma_to_t(torch.tensor(probe_sigmas)).numpy()
    probe_t = np.array([0, 0.5, 1, 10.25, 499.5, 998.999, 999], np.float32)
    t["probe/t"] = probe_t
    t["probe/kdiff_sigma"] = kd.t_to_sigma(torch.tensor(probe_t)).numpy()

    cases = []
    counts = (1, 2, 5, 20, 50, 61)
    for name in CLASSES:
        for spacing in ("leading", "trailing", "linspace", "default"):
            for variant in ("discrete", "karras", "exponential"):
                if variant == "karras" and name not in KARRAS_OK:
                    continue
                if variant == "exponential" and name not in EXP_OK:
                    continue
                if variant != "discrete" and spacing not in ("default", "leading"):
                    continue
                if variant == "discrete" and spacing == "default" and name not in ("euler", "ddim"):
                    continue  # the default resolves to leading or linspace, both stored
                for n in counts:
                    if name == "lcm" and (n > 50 or spacing != "default"):
                        continue
                    over = {}
                    if spacing != "default":
                        over["timestep_spacing"] = spacing
                    if variant == "karras":
                        over["use_karras_sigmas"] = True
                    if variant == "exponential":
                        over["use_exponential_sigmas"] = True
                    s = make_sched(name, **over)
                    s.set_timesteps(n)
                    sig, ts = main_sigmas_timesteps(name, s)
                    key = f"{name}/{spacing}/{variant}/n{n}"
                    t[key + "/timesteps"] = ts
                    if name not in ("ddim", "pndm", "ddpm", "lcm"):
                        t[key + "/sigmas"] = sig
                        t[key + "/init_sigma"] = np.array([float(s.init_noise_sigma)], np.float32)
                    cases.append(key)
    # k-diffusion / A1111 schedules on the LDM table
    smin, smax = kd.sigmas[0].item(), kd.sigmas[-1].item()
    for variant in ("discrete", "karras", "exponential", "sgm_uniform"):
        for n in counts:
            sig = kdiff_sigmas(kd, variant, n, False)
            key = f"kdiff/{variant}/n{n}"
            t[key + "/sigmas"] = sig.numpy()
            t[key + "/timesteps"] = kd.sigma_to_t(sig[:-1]).numpy()
            t[key + "/discard_sigmas"] = kdiff_sigmas(kd, variant, n, True).numpy()
            cases.append(key)
    meta["cases"] = ",".join(cases)
    meta["sigma_min_max"] = f"{smin!r},{smax!r}"
    write("schedules.safetensors", t, meta)


def kdiff_sigmas(kd, variant, n, discard):
    """AUTOMATIC1111 KDiffusionSampler.get_sigmas: k-diffusion schedules with the model's table ends."""
    if discard:
        n += 1
    smin, smax = kd.sigmas[0].item(), kd.sigmas[-1].item()
    if variant == "discrete":
        s = kd.get_sigmas(n)
    elif variant == "karras":
        s = K.sampling.get_sigmas_karras(n, smin, smax)
    elif variant == "exponential":
        s = K.sampling.get_sigmas_exponential(n, smin, smax)
    else:  # A1111 sd_schedulers.sgm_uniform
        start, end = kd.sigma_to_t(torch.tensor(smax)), kd.sigma_to_t(torch.tensor(smin))
        s = torch.FloatTensor([kd.t_to_sigma(ts) for ts in torch.linspace(start, end, n + 1)[:-1]] + [0.0])
    if discard:
        s = torch.cat([s[:-2], s[-1:]])
    return s


# ------------------------------------------------------------------------------------------------ toy denoiser

CTX = torch.tensor(np.float32(0.8 * np.cos(0.37 * np.arange(NUMEL, dtype=np.float64)))).reshape(SHAPE)


def toy(x_in, t):
    s = float(np.float32(0.1 * math.sin(float(t) / 100.0)))
    return torch.tanh(0.5 * x_in) * CTX + s * x_in


class Recorder:
    def __init__(self):
        self.t, self.noises, self.latents = [], [], []

    def model(self, x_in, t):
        tv = float(t.reshape(-1)[0]) if torch.is_tensor(t) else float(t)
        self.t.append(tv)
        return toy(x_in, tv)


_RANDN_PATCHED = []


def patch_randn(rec_holder):
    """Record every randn_tensor a diffusers scheduler draws (each module imported it by name)."""
    import diffusers.schedulers as S
    orig = diffusers.utils.torch_utils.randn_tensor
    for mname in dir(S):
        if mname.startswith("scheduling_"):
            mod = getattr(S, mname)
            if hasattr(mod, "randn_tensor"):
                def wrapped(*a, **kw):
                    out = orig(*a, **kw)
                    rec_holder[0].noises.append(out.clone())
                    return out
                setattr(mod, "randn_tensor", wrapped)
                _RANDN_PATCHED.append(mname)


REC = [None]


def run_diffusers(name, n, seed, pred="epsilon", eta=None, strength=None, **over):
    rec = REC[0] = Recorder()
    s = make_sched(name, prediction_type=pred, **over)
    s.set_timesteps(n)
    g = torch.Generator().manual_seed(seed)
    res = {}
    if strength is None:
        x = torch.randn(SHAPE, generator=g)
        res["x0"] = x.clone()
        timesteps = s.timesteps
        x = x * s.init_noise_sigma
    else:  # StableDiffusionImg2ImgPipeline: get_timesteps, set_begin_index, add_noise(init, noise, timesteps[:1])
        init = torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed + 1000))
        init_t = min(int(n * strength), n)
        t_start = max(n - init_t, 0)
        timesteps = s.timesteps[t_start * s.order:]
        if hasattr(s, "set_begin_index"):
            s.set_begin_index(t_start * s.order)
        noise = torch.randn(SHAPE, generator=g)
        x = s.add_noise(init, noise, timesteps[:1].repeat(SHAPE[0]))
        res.update(init=init, noise0=noise, xstart=x.clone())
    kwargs = {}
    params = inspect.signature(s.step).parameters
    if "generator" in params:
        kwargs["generator"] = g
    if eta is not None:
        kwargs["eta"] = eta
    rec.noises.clear()
    for k, tt in enumerate(timesteps):
        xin = s.scale_model_input(x, tt)
        out = rec.model(xin, tt)
        x = s.step(out, tt, x, **kwargs).prev_sample
        last = k == len(timesteps) - 1
        if name in ("heun", "dpm2", "dpm2_a"):
            complete = s.state_in_first_order or last
        elif name == "pndm":
            complete = k != 0 or len(timesteps) == 1
        else:
            complete = True
        if complete:
            rec.latents.append(x.clone())
    return res, rec


def kdiff_model(rec, pred, table_kind="ldm"):
    inner = FakeLDM(lambda x, t: rec.model(x, t))
    return K.external.CompVisVDenoiser(inner) if pred == "v" else K.external.CompVisDenoiser(inner)


KFUNCS = {"euler": K.sampling.sample_euler, "euler_a": K.sampling.sample_euler_ancestral,
          "heun": K.sampling.sample_heun, "dpm2": K.sampling.sample_dpm_2, "dpm2_a": K.sampling.sample_dpm_2_ancestral,
          "dpm++2s_a": K.sampling.sample_dpmpp_2s_ancestral, "lms": K.sampling.sample_lms,
          "dpm++2m": K.sampling.sample_dpmpp_2m, "dpm++2m_sde": K.sampling.sample_dpmpp_2m_sde}


def run_kfunc(name, model, x, sigmas, rec, noise_fn, eta=None):
    kw = {}
    params = inspect.signature(KFUNCS[name]).parameters
    if "noise_sampler" in params:
        kw["noise_sampler"] = lambda s, sn: rec.noises.append(noise_fn()) or rec.noises[-1]
    if eta is not None and "eta" in params:
        kw["eta"] = eta
    seen = []
    out = KFUNCS[name](model, x, sigmas, extra_args={"cond": None}, callback=lambda d: seen.append(d["x"].clone()),
                       disable=True, **kw)
    rec.latents = seen[1:] + [out.clone()]
    return out


def a1111_noise(gens):
    """A1111 ImageRNG.next(): one (C, H, W) randn per image from its own generator (seed + i)."""
    return torch.stack([torch.randn(SHAPE[1:], generator=g) for g in gens])


def run_kdiff(name, n, seed, variant="discrete", pred="eps", discard=None, strength=None, eta=None):
    rec = REC[0] = Recorder()
    model = kdiff_model(rec, pred)
    if discard is None:
        discard = name in ("dpm2", "dpm2_a")
    sigmas = kdiff_sigmas(model, variant, n, discard)
    gens = [torch.Generator().manual_seed(seed + b) for b in range(SHAPE[0])]
    res = {}
    if strength is None:
        x = a1111_noise(gens)
        res["x0"] = x.clone()
        x = x * sigmas[0]
    else:  # A1111 sample_img2img
        init = torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed + 1000))
        t_enc = int(min(strength, 0.999) * n)
        sigmas = sigmas[n - t_enc - 1:]
        noise = a1111_noise(gens)
        x = init + noise * sigmas[0]
        res.update(init=init, noise0=noise, xstart=x.clone())
    run_kfunc(name, model, x, sigmas, rec, lambda: a1111_noise(gens), eta=eta)
    return res, rec


def run_diffusers_kfunc(name, n, seed, variant="discrete", pred="epsilon"):
    """dpm++2s_a has no diffusers scheduler: k-diffusion's algorithm on diffusers' Euler schedule, with diffusers'
    input scaling, timesteps and init_noise_sigma (what the diffusers convention does for it)."""
    rec = REC[0] = Recorder()
    over = {"use_karras_sigmas": True} if variant == "karras" else {}
    e = make_sched("euler", prediction_type=pred, **over)
    e.set_timesteps(n)
    log_sigmas = np.log(np.array(((1 - e.alphas_cumprod) / e.alphas_cumprod) ** 0.5))
    # the UNet timestep: the scheduler's own t for the step's σ, _sigma_to_t for the midpoint (which can equal the
    # next σ exactly, so calls are told apart by position: main, then a midpoint unless σ_down = 0)
    kinds = []
    for i in range(n):
        kinds.append(float(e.timesteps[i]))
        if K.sampling.get_ancestral_step(e.sigmas[i], e.sigmas[i + 1])[0] != 0:
            kinds.append(None)
    calls = [0]

    def model(x, sigma, cond=None):
        sg = float(sigma.reshape(-1)[0])
        tt = kinds[calls[0]]
        calls[0] += 1
        if tt is None:
            tt = float(e._sigma_to_t(np.float64(np.float32(sg)), log_sigmas))
        sgt = torch.tensor(sg, dtype=torch.float32)
        out = rec.model(x / ((sgt ** 2 + 1) ** 0.5), tt)
        if pred == "v_prediction":
            return out * (-sgt / (sgt ** 2 + 1) ** 0.5) + (x / (sgt ** 2 + 1))
        return x - sgt * out

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(SHAPE, generator=g)
    res = {"x0": x.clone()}
    x = x * e.init_noise_sigma
    run_kfunc(name, model, x, e.sigmas, rec, lambda: torch.randn(SHAPE, generator=g))
    return res, rec


def pack(cases, name, key, res, rec, cfg):
    cases.append((key, cfg))
    out = {}
    for k, v in res.items():
        out[f"{key}/{k}"] = v.numpy().reshape(-1)
    out[f"{key}/latents"] = torch.stack(rec.latents).numpy().reshape(len(rec.latents), -1)
    out[f"{key}/t"] = np.array(rec.t, np.float64)
    if rec.noises:
        out[f"{key}/noises"] = torch.stack(rec.noises).numpy().reshape(len(rec.noises), -1)
    return out


_TORCH_POW, _TORCH_SQRT, _TENSOR_SQRT = torch.Tensor.__pow__, torch.sqrt, torch.Tensor.sqrt


def _ieee_sqrt(t):
    if t.dtype != torch.float32:
        return _TENSOR_SQRT(t)
    return torch.from_numpy(np.asarray(np.sqrt(t.detach().numpy()), dtype=np.float32).copy()).reshape(t.shape)


def use_ieee_sqrt():
    """Route float32 `x ** 0.5`, x.sqrt() and torch.sqrt(x) to IEEE sqrt (see the module docstring)."""
    torch.Tensor.__pow__ = lambda self, e: _ieee_sqrt(self) if (isinstance(e, float) and e == 0.5) else _TORCH_POW(self, e)
    torch.Tensor.sqrt = _ieee_sqrt
    torch.sqrt = _ieee_sqrt


def gen_trajectories():
    use_ieee_sqrt()
    patch_randn(REC)
    samplers = ["euler", "euler_a", "heun", "dpm2", "dpm2_a", "dpm++2s_a", "dpm++2m", "dpm++2m_sde", "lms",
                "ddim", "pndm", "ddpm", "unipc", "lcm"]
    for name in samplers:
        # ---- diffusers convention
        t, cases = {}, []
        seed = 100 + samplers.index(name)
        for n in STEP_COUNTS:
            if name == "dpm++2s_a":
                res, rec = run_diffusers_kfunc(name, n, seed)
            else:
                res, rec = run_diffusers(name, n, seed)
            t.update(pack(cases, name, f"discrete/n{n}", res, rec, f"seed={seed}"))
            if name in KARRAS_OK or name == "dpm++2s_a":
                if name == "dpm++2s_a":
                    res, rec = run_diffusers_kfunc(name, n, seed, variant="karras")
                else:
                    res, rec = run_diffusers(name, n, seed, use_karras_sigmas=True)
                t.update(pack(cases, name, f"karras/n{n}", res, rec, f"seed={seed};schedule=karras"))
        if name == "dpm++2s_a":
            res, rec = run_diffusers_kfunc(name, 5, seed, pred="v_prediction")
        else:
            res, rec = run_diffusers(name, 5, seed, pred="v_prediction")
        t.update(pack(cases, name, "vpred/n5", res, rec, f"seed={seed};prediction=v"))
        if name in EXP_OK:
            res, rec = run_diffusers(name, 5, seed, use_exponential_sigmas=True)
            t.update(pack(cases, name, "exponential/n5", res, rec, f"seed={seed};schedule=exponential"))
        if name in ("euler", "euler_a", "heun", "dpm2_a", "lms", "dpm++2m", "unipc", "ddim", "pndm", "ddpm"):
            for sp in ("leading", "trailing"):
                res, rec = run_diffusers(name, 7, seed, timestep_spacing=sp)
                t.update(pack(cases, name, f"{sp}/n7", res, rec, f"seed={seed};spacing={sp}"))
        if name == "ddim":
            for n in STEP_COUNTS:
                res, rec = run_diffusers(name, n, seed, eta=1.0)
                t.update(pack(cases, name, f"eta1/n{n}", res, rec, f"seed={seed};eta=1"))
        if name != "dpm++2s_a":
            for strength in (0.6, 0.35):
                res, rec = run_diffusers(name, 10, seed, strength=strength)
                t.update(pack(cases, name, f"img2img{int(strength * 100)}/n10", res, rec,
                              f"seed={seed};strength={strength!r}"))
        meta = {"cases": ",".join(k for k, _ in cases), "convention": "diffusers", "sampler": name,
                "shape": ",".join(map(str, SHAPE))}
        meta.update({f"{k}:cfg": c for k, c in cases})
        write(f"traj_diffusers_{name}.safetensors", t, meta)

        # ---- k-diffusion convention
        if name not in KFUNCS:
            continue
        t, cases = {}, []
        seed = 200 + samplers.index(name)
        for n in STEP_COUNTS:
            for variant in ("discrete", "karras"):
                if name == "dpm++2m_sde" and n == 1:
                    continue  # k-diffusion's dpmpp_2m_sde reads h before assignment when the first step ends at 0
                res, rec = run_kdiff(name, n, seed, variant=variant)
                t.update(pack(cases, name, f"{variant}/n{n}", res, rec, f"seed={seed};schedule={variant}"))
        for variant in ("exponential", "sgm_uniform"):
            res, rec = run_kdiff(name, 5, seed, variant=variant)
            t.update(pack(cases, name, f"{variant}/n5", res, rec, f"seed={seed};schedule={variant}"))
        res, rec = run_kdiff(name, 5, seed, pred="v")
        t.update(pack(cases, name, "vpred/n5", res, rec, f"seed={seed};prediction=v"))
        if name in ("dpm2", "dpm2_a"):
            res, rec = run_kdiff(name, 5, seed, discard=False)
            t.update(pack(cases, name, "nodiscard/n5", res, rec, f"seed={seed};discard=0"))
        if name in ("euler_a", "dpm2_a", "dpm++2s_a", "dpm++2m_sde"):
            res, rec = run_kdiff(name, 5, seed, eta=0.5)
            t.update(pack(cases, name, "eta05/n5", res, rec, f"seed={seed};eta=0.5"))
        for strength in (0.6, 0.35):
            res, rec = run_kdiff(name, 10, seed, strength=strength)
            t.update(pack(cases, name, f"img2img{int(strength * 100)}/n10", res, rec,
                          f"seed={seed};strength={strength!r}"))
        meta = {"cases": ",".join(k for k, _ in cases), "convention": "kdiffusion", "sampler": name,
                "shape": ",".join(map(str, SHAPE))}
        meta.update({f"{k}:cfg": c for k, c in cases})
        write(f"traj_kdiffusion_{name}.safetensors", t, meta)


# ------------------------------------------------------------------------------------------------ guidance

def gen_guidance():
    from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import rescale_noise_cfg
    g = torch.Generator().manual_seed(7)
    unc = torch.randn(SHAPE, generator=g)
    cond = unc * 0.7 + 0.5 * torch.randn(SHAPE, generator=g) + 0.1
    t = {"uncond": unc.numpy().reshape(-1), "cond": cond.numpy().reshape(-1)}
    for scale in (1.0, 7.5):
        guided = unc + scale * (cond - unc)
        t[f"cfg{scale}"] = guided.numpy().reshape(-1)
        for phi in (0.0, 0.7, 1.0):
            t[f"cfg{scale}/rescale{phi}"] = rescale_noise_cfg(guided.clone(), cond, guidance_rescale=phi).numpy().reshape(-1)
    write("guidance.safetensors", t, {"shape": ",".join(map(str, SHAPE))})


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    what = sys.argv[1:] or ["rng", "philox", "schedules", "traj", "guidance"]
    if "rng" in what:
        gen_rng_cpu()
    if "philox" in what:
        gen_rng_philox()
    if "schedules" in what:
        gen_tables_and_schedules()
    if "traj" in what:
        gen_trajectories()
    if "guidance" in what:
        gen_guidance()
