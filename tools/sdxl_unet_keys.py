#!/usr/bin/env python3
"""sdxl_unet_keys.py — writes tests/data/sdxl-unet-keys.tsv: the tensor names (diffusers layout) and shapes of the SDXL
base UNet, from its published config, for random-weight full-size checkpoints (`make bench-cuda`). The model is built on
torch's meta device: no weights, no download. diffusers and torch as in tools/requirements.txt.

    python3 tools/sdxl_unet_keys.py > tests/data/sdxl-unet-keys.tsv
"""
import torch
from diffusers import UNet2DConditionModel

# stabilityai/stable-diffusion-xl-base-1.0, unet/config.json
CONFIG = dict(
    sample_size=128, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20), cross_attention_dim=2048,
    use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816, norm_num_groups=32, flip_sin_to_cos=True, freq_shift=0,
)

with torch.device("meta"):
    model = UNet2DConditionModel(**CONFIG)
for name, t in model.state_dict().items():
    print(f"{name}\t{','.join(str(d) for d in t.shape)}")
