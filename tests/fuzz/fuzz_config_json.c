/* fuzz_config_json.c — every reader of a diffusers config on the same text: the UNet, VAE and CLIP text encoder
 * config.json and model_index.json (numbers range-checked, lists sized, unknown options refused). */
#include "fuzz.h"

#include "../../pipeline/model_files.h"
#include "../../text_encoder/clip_model.h"
#include "../../unet/unet.h"
#include "../../vae/vae.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = fuzz_text(data, size);
    if (!text) return 0;
    unet_config u;
    (void)unet_config_from_json(text, &u);
    vae_config v;
    (void)vae_config_from_json_text(text, size, "config.json", &v);
    clip_config c;
    (void)clip_config_from_json_text(text, size, "config.json", &c);
    model_files m;
    memset(&m, 0, sizeof m);
    (void)model_files_index_parse("model_index.json", text, size, "model", &m);
    free(text);
    return 0;
}
