"""goldens_demo.py — reference renders of the bundled demo model (samples/models/shapes/) by diffusers'
StableDiffusionPipeline, for the test that our engine draws the same picture (within 2/255).

Writes tests/golden/demo/:
    demo_<k>.png            the final 8-bit picture (diffusers rounds: round(clamp(x/2+0.5, 0, 1)·255))
    demo_<k>.safetensors    f32 tensors, NCHW exactly as torch gives them (the engine is NHWC: transpose on read):
                              init_noise   [1,4,16,16]  torch.randn from torch.Generator().manual_seed(seed), before
                                                        the scheduler's init_noise_sigma scaling
                              final_latent [1,4,16,16]  the latent after the last step (UNet scale, before 1/scaling_factor)
                              cond         [1,77,64]    text encoder last_hidden_state of the prompt
                              uncond       [1,77,64]    ... of the empty negative prompt
                              ids, uncond_ids [77]      token ids (as f32)
    demo.json               every setting: model, prompts, seeds, scheduler class + config, steps, cfg, size, versions

Package versions (tools/requirements.txt): torch 2.15.0 (CPU), diffusers 0.42.1, transformers 5.23.0, safetensors 0.8.0.
Usage: python tools/goldens_demo.py [--model samples/models/shapes] [--out tests/golden/demo]
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from eval_demo import SAMPLERS, make_pipe, set_sampler  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
# (prompt, seed, sampler, steps, cfg): the recommended default, a deterministic multistep sampler, and PNDM (the
# model's own scheduler_config.json) with a prompt that leaves out the optional parts.
CASES = [
    ("a large red star on a blue background, centre", 42, "euler_a", 20, 3.0),
    ("a small yellow ring on a black background, top left", 7, "dpmpp2m", 20, 6.0),
    ("a green triangle", 3, "pndm", 20, 6.0),
]


def plain(v):
    """A JSON-safe copy of a scheduler config value: non-finite floats (DPM-Solver's lambda_min_clipped = -inf)
    become strings, as strict JSON readers (cJSON) reject -Infinity."""
    if isinstance(v, float) and not np.isfinite(v):
        return str(v)
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    return v


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(HERE, "..", "samples", "models", "shapes"))
    ap.add_argument("--out", default=os.path.join(HERE, "..", "tests", "golden", "demo"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    from safetensors.torch import save_file
    from PIL import Image
    import diffusers
    import transformers
    import safetensors
    versions = {"torch": torch.__version__, "diffusers": diffusers.__version__,
                "transformers": transformers.__version__, "safetensors": safetensors.__version__}
    os.makedirs(args.out, exist_ok=True)
    pipe = make_pipe(args.model)
    sf = pipe.vae.config.scaling_factor
    meta = {"model": "samples/models/shapes", "height": 128, "width": 128, "dtype": "float32", "device": "cpu",
            "negative_prompt": "", "generator": "torch.Generator().manual_seed(seed), one per image",
            "vae_scaling_factor": sf, "layout": "NCHW", "versions": versions, "cases": []}
    for k, (prompt, seed, sampler, steps, cfg) in enumerate(CASES):
        set_sampler(pipe, sampler)
        with torch.no_grad():
            ids = pipe.tokenizer(prompt, padding="max_length", max_length=77, truncation=True,
                                 return_tensors="pt").input_ids
            uids = pipe.tokenizer("", padding="max_length", max_length=77, truncation=True,
                                  return_tensors="pt").input_ids
            cond = pipe.text_encoder(ids).last_hidden_state
            uncond = pipe.text_encoder(uids).last_hidden_state
            noise = torch.randn((1, 4, 16, 16), generator=torch.Generator().manual_seed(seed), dtype=torch.float32)
            lat = pipe(prompt, height=128, width=128, num_inference_steps=steps, guidance_scale=cfg,
                       generator=torch.Generator().manual_seed(seed), output_type="latent").images
            img = pipe.vae.decode(lat / sf).sample
            img = pipe.image_processor.postprocess(img, output_type="np")[0]
            img8 = (img * 255).round().astype(np.uint8)
            # the same call as a user makes, end to end: must give the very same picture
            ref = pipe(prompt, height=128, width=128, num_inference_steps=steps, guidance_scale=cfg,
                       generator=torch.Generator().manual_seed(seed), output_type="np").images[0]
            assert np.array_equal((ref * 255).round().astype(np.uint8), img8), "decode path differs from pipeline"
        name = "demo_%d" % k
        Image.fromarray(img8).save(os.path.join(args.out, name + ".png"))
        tensors = {"init_noise": noise.contiguous(), "final_latent": lat.float().contiguous(),
                   "cond": cond.float().contiguous(), "uncond": uncond.float().contiguous(),
                   "ids": ids[0].float(), "uncond_ids": uids[0].float()}
        case = {"name": name, "prompt": prompt, "seed": seed, "sampler": sampler,
                "scheduler_class": SAMPLERS[sampler], "scheduler_config": plain(dict(pipe.scheduler.config)),
                "steps": steps, "guidance_scale": cfg,
                "timesteps": [float(t) for t in pipe.scheduler.timesteps]}
        save_file(tensors, os.path.join(args.out, name + ".safetensors"),
                  metadata={"prompt": prompt, "seed": str(seed), "scheduler": SAMPLERS[sampler], "steps": str(steps),
                            "guidance_scale": str(cfg), "layout": "NCHW", "versions": json.dumps(versions)})
        meta["cases"].append(case)
        print("%s: %s seed %d %s %d steps cfg %g" % (name, prompt, seed, sampler, steps, cfg))
    with open(os.path.join(args.out, "demo.json"), "w") as f:
        json.dump(meta, f, indent=2, default=str, allow_nan=False)


if __name__ == "__main__":
    main()
