/* test_random_ckpt.c — the random SD 1.5 checkpoint has exactly the reference names and shapes and is
 * recognised as SD 1.x by family detection. */
#include "test.h"
#include "random_ckpt.h"
#include "../core/error.h"
#include "../pipeline/model_files.h"

TEST(random_sd15_checkpoint_layout) {
    const char *path = random_ckpt_sd15();
    REQUIRE_MSG(path, "%s", sd_last_error());
    sd_model_files m;
    REQUIRE_MSG(sd_model_files_open(path, NULL, &m) == SD_OK, "%s", sd_last_error());
    CHECK(m.family == SD_FAMILY_SD1 && m.in_channels == 4);
    CHECK_EQ_INT(st_count(m.single), 1130);
    int64_t params = 0;
    for (int i = 0; i < st_count(m.single); i++) params += st_at(m.single, i)->numel;
    CHECK_EQ_INT(params, 1066235307); /* the published SD 1.5 total (facts §5.2) */
    const st_tensor *t = st_find(m.single, "model.diffusion_model.input_blocks.0.0.weight");
    CHECK(t && t->dtype == ST_F16 && t->ndim == 4 && t->shape[0] == 320 && t->shape[1] == 4);
    sd_model_files_close(&m);
}
