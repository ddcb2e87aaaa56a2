#!/usr/bin/env python3
"""goldens_clip.py — golden data for the CLIP / OpenCLIP text encoders (tests/golden/clip/).

Two tiny random-weight text encoders built by transformers (the real CLIPTextModel code):
  clip_l  CLIPTextModel, quick_gelu, no projection, eos_token_id 2 (transformers' legacy rule: pool at
          argmax(ids), as in the real SD 1.x / SDXL configs) — stands in for CLIP ViT-L/14.
  clip_g  CLIPTextModelWithProjection, gelu (erf), projection 40 -> 24, eos_token_id 200 (pool at the first
          id equal to 200; ids larger than 200 occur earlier, so argmax would pick another row) — stands in
          for OpenCLIP ViT-H/14 and bigG/14.
Files:
  clip_l.safetensors, clip_g.safetensors   the weights as save_pretrained writes them (a diffusers text_encoder
                         file; transformers 5 writes a bare CLIPTextModel without the "text_model." prefix)
  clip_l_config.json, clip_g_config.json   the config.json save_pretrained writes beside them
  sdxl_ldm.safetensors   the same weights under original single-file names, as in an SDXL checkpoint:
                         conditioner.embedders.0.transformer.text_model.* (CLIP, with a position_ids buffer) and
                         conditioner.embedders.1.model.* (OpenCLIP: fused in_proj, transposed text_projection,
                         positional_embedding, logit_scale). The conversion is checked here by loading it into
                         open_clip's own TextTransformer and comparing with transformers.
  io.safetensors         ids (as f32) and the reference outputs, sequences stored [N, T, C]:
                         l.ids/g.ids [2, 77]; l.hs1 (= hidden_states[1] = SDXL's hidden_states[-2]), l.ln_hs1
                         (final_layer_norm(hidden_states[1]), clip skip), l.last (last_hidden_state), l.pooled;
                         g.hs2 (hidden_states[-2]), g.ln_hs2 (SD 2 "penultimate" + ln_final), g.last,
                         g.pooled (pooler_output), g.embeds (text_embeds).
  openclip_h14_keys.tsv, openclip_bigg14_keys.tsv   name<TAB>shape of the text half of the real OpenCLIP
                         ViT-H-14 / ViT-bigG-14 models (open_clip configs, built on the meta device, visual
                         tower dropped as ldm/sgm do), for the architecture checks.
Weights are random values rounded to f16 and stored as F16 (exact), to keep the files small; every
computation is float32. Versions: torch 2.15.0, transformers 5.23.0, open_clip_torch 3.3.0
(tools/requirements.txt).

Usage: python3 tools/goldens_clip.py   (writes tests/golden/clip/*)
"""
import os
import shutil
import tempfile

import open_clip
import torch
import transformers
from open_clip.transformer import TextTransformer
from safetensors.torch import load_file, save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "golden", "clip")
META = {"torch": torch.__version__, "transformers": transformers.__version__, "open_clip": open_clip.__version__,
        "made_by": "tools/goldens_clip.py"}
VOCAB, T = 256, 77


def randomize(model, seed):
    """Weights large enough that attention and activations are far from linear; values exact in f16."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name and name.endswith("weight"):
                v = 1 + 0.2 * torch.randn(p.shape, generator=g)
            elif name.endswith("bias"):
                v = 0.1 * torch.randn(p.shape, generator=g)
            elif "embedding" in name:
                v = 0.5 * torch.randn(p.shape, generator=g)
            else:
                v = 0.2 * torch.randn(p.shape, generator=g)
            p.copy_(v.half().float())
    return model.eval()


def saved(model, name):
    """Saves with save_pretrained, keeps its config.json, rewrites its weights as F16 (exact); returns them."""
    with tempfile.TemporaryDirectory() as d:
        model.save_pretrained(d)
        shutil.copy(os.path.join(d, "config.json"), os.path.join(OUT, f"{name}_config.json"))
        sd = load_file(os.path.join(d, "model.safetensors"))
    save_file({k: v.half().contiguous() for k, v in sd.items()}, os.path.join(OUT, f"{name}.safetensors"), metadata=META)
    return sd


def make_ids(seed, bos, eos, pad, lengths, content_max):
    g = torch.Generator().manual_seed(seed)
    rows = []
    for n in lengths:
        r = [bos] + torch.randint(1, content_max, (n,), generator=g).tolist() + [eos]
        rows.append(r + [pad] * (T - len(r)))
    return torch.tensor(rows, dtype=torch.long)


def hf_to_openclip(sd, layers):
    """transformers CLIPTextModelWithProjection names -> OpenCLIP (facts §5.2, inverse direction)."""
    o = {"token_embedding.weight": sd["text_model.embeddings.token_embedding.weight"],
         "positional_embedding": sd["text_model.embeddings.position_embedding.weight"],
         "ln_final.weight": sd["text_model.final_layer_norm.weight"],
         "ln_final.bias": sd["text_model.final_layer_norm.bias"],
         "text_projection": sd["text_projection.weight"].t().contiguous(),  # stored [width, proj]
         "logit_scale": torch.tensor(4.6052)}
    for i in range(layers):
        h, r = f"text_model.encoder.layers.{i}.", f"transformer.resblocks.{i}."
        for kind in ("weight", "bias"):
            o[r + "attn.in_proj_" + kind] = torch.cat([sd[h + f"self_attn.{p}_proj.{kind}"] for p in "qkv"], 0)
            o[r + "attn.out_proj." + kind] = sd[h + "self_attn.out_proj." + kind]
            o[r + "ln_1." + kind] = sd[h + "layer_norm1." + kind]
            o[r + "ln_2." + kind] = sd[h + "layer_norm2." + kind]
            o[r + "mlp.c_fc." + kind] = sd[h + "mlp.fc1." + kind]
            o[r + "mlp.c_proj." + kind] = sd[h + "mlp.fc2." + kind]
    return o


def check_openclip(oc_sd, cfg, ids_argmax, hf):
    """Loads the converted weights into open_clip's TextTransformer (strict) and compares with transformers."""
    tt = TextTransformer(context_length=T, vocab_size=VOCAB, width=cfg.hidden_size, heads=cfg.num_attention_heads,
                         layers=cfg.num_hidden_layers, mlp_ratio=cfg.intermediate_size / cfg.hidden_size,
                         output_dim=cfg.projection_dim, act_layer=torch.nn.GELU, output_tokens=True).eval()
    tt.load_state_dict({k: v for k, v in oc_sd.items() if k != "logit_scale"}, strict=True)
    with torch.no_grad():
        pooled, tokens = tt(ids_argmax)
        ref = hf(ids_argmax, output_hidden_states=True)
    assert torch.allclose(tokens, ref.last_hidden_state, atol=1e-5), "OpenCLIP conversion: tokens differ"
    # open_clip pools at argmax(ids); ids_argmax has its eos (200) as each row's largest id
    assert torch.allclose(pooled, ref.text_embeds, atol=1e-5), "OpenCLIP conversion: pooled output differs"


def openclip_keys(name):
    """name<TAB>shape lines of the text half of an open_clip model (what ldm/sgm checkpoints hold under .model.)."""
    cfg = open_clip.get_model_config(name)
    with torch.device("meta"):
        m = open_clip.model.CLIP(embed_dim=cfg["embed_dim"], vision_cfg=cfg["vision_cfg"], text_cfg=cfg["text_cfg"])
    lines = [f"{k}\t{','.join(str(s) for s in v.shape)}" for k, v in m.state_dict().items() if not k.startswith("visual.")]
    return "\n".join(lines) + "\n"


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    cfg_l = CLIPTextConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=4, max_position_embeddings=T, hidden_act="quick_gelu",
                           layer_norm_eps=1e-5, projection_dim=32, eos_token_id=2, bos_token_id=254, pad_token_id=1)
    cfg_g = CLIPTextConfig(vocab_size=VOCAB, hidden_size=40, intermediate_size=80, num_hidden_layers=3,
                           num_attention_heads=4, max_position_embeddings=T, hidden_act="gelu",
                           layer_norm_eps=1e-5, projection_dim=24, eos_token_id=200, bos_token_id=254, pad_token_id=0)
    ml = randomize(CLIPTextModel(cfg_l), 1)
    mg = randomize(CLIPTextModelWithProjection(cfg_g), 2)

    # clip_l: eos stand-in 255 (the largest id), row 0 padded with eos (SD 1.x), row 1 with 0 (SD 2 / SDXL)
    ids_l = torch.cat([make_ids(3, 254, 255, 255, [9], 254), make_ids(4, 254, 255, 0, [30], 254)])
    # clip_g: eos 200; content ids reach 253, so argmax(ids) != first eos; row 0 pads with eos, row 1 with 0
    ids_g = torch.cat([make_ids(5, 254, 200, 200, [12], 254), make_ids(6, 254, 200, 0, [40], 254)])
    assert all((r == 200).nonzero()[0, 0] != r.argmax() for r in ids_g)
    with torch.no_grad():
        ol = ml(ids_l, output_hidden_states=True)
        og = mg(ids_g, output_hidden_states=True)
    lnl, lng = ml.final_layer_norm, mg.text_model.final_layer_norm
    with torch.no_grad():
        pooled_g = mg.text_model(ids_g).pooler_output
        io = {"l.ids": ids_l.float(), "l.hs1": ol.hidden_states[1], "l.ln_hs1": lnl(ol.hidden_states[1]),
              "l.last": ol.last_hidden_state, "l.pooled": ol.pooler_output,
              "g.ids": ids_g.float(), "g.hs2": og.hidden_states[2],
              "g.ln_hs2": lng(og.hidden_states[2]), "g.last": og.last_hidden_state, "g.pooled": pooled_g,
              "g.embeds": og.text_embeds}
    assert len(ol.hidden_states) == 3 and len(og.hidden_states) == 4
    assert torch.equal(ol.last_hidden_state, lnl(ol.hidden_states[2]))
    save_file({k: v.float().contiguous() for k, v in io.items()}, os.path.join(OUT, "io.safetensors"), metadata=META)

    # the names save_pretrained writes: transformers 5 drops the "text_model." prefix of a bare CLIPTextModel
    # (4.x files, like the SD repos, have it; the WithProjection model keeps it)
    sdl, sdg = saved(ml, "clip_l"), saved(mg, "clip_g")
    assert "embeddings.token_embedding.weight" in sdl and "text_model.embeddings.token_embedding.weight" in sdg

    oc = hf_to_openclip(sdg, cfg_g.num_hidden_layers)
    ids_argmax = make_ids(7, 1, 200, 0, [10, 20], 150)
    check_openclip(oc, cfg_g, ids_argmax, mg)
    ldm = {"conditioner.embedders.0.transformer.text_model." + k: v.half() for k, v in sdl.items()}
    ldm["conditioner.embedders.0.transformer.text_model.embeddings.position_ids"] = torch.arange(T)[None]  # I64 buffer
    ldm.update({"conditioner.embedders.1.model." + k: v.half() for k, v in oc.items()})
    save_file({k: v.contiguous() for k, v in ldm.items()}, os.path.join(OUT, "sdxl_ldm.safetensors"), metadata=META)

    for name, fn in (("ViT-H-14", "openclip_h14_keys.tsv"), ("ViT-bigG-14", "openclip_bigg14_keys.tsv")):
        with open(os.path.join(OUT, fn), "w") as f:
            f.write(openclip_keys(name))


if __name__ == "__main__":
    main()
