/* test_fileio.c — every reader of a file a user names refuses a FIFO, a device or a folder before reading (a FIFO
 * blocks the first read until a writer comes: `sd` hung forever on one), and file_read keeps to its size limit. */
#include "test.h"
#include "../core/error.h"
#include "../core/fileio.h"
#include "../core/image.h"
#include "../core/safetensors.h"
#include "../pipeline/model_files.h"
#include "../sd.h"
#include "../text_encoder/clip_model.h"
#include "../unet/unet.h"
#include "../vae/vae.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

TEST(fileio_refuses_non_regular_files) {
    char fifo[600];
    snprintf(fifo, sizeof fifo, "%s/fifo", test_tmpdir());
    REQUIRE(mkfifo(fifo, 0600) == 0);
    const char *paths[] = {fifo, "/dev/zero", test_tmpdir()};
    for (int i = 0; i < 3; i++) {
        const char *p = paths[i];
        int fd = 7;
        uint64_t size = 7;
        CHECK(file_open_regular(p, &fd, &size) == SD_ERR_IO && fd == -1 && size == 0);
        char want[700];
        snprintf(want, sizeof want, "%s: not a regular file", p);
        CHECK_STR_CONTAINS(sd_last_error(), want);
        /* each reader, through the one helper: it returns at once instead of waiting for a writer */
        char *buf = NULL;
        CHECK(file_read(p, 1 << 20, &buf, NULL) == SD_ERR_IO && !buf);
        CHECK_STR_CONTAINS(sd_last_error(), want);
        sd_image img;
        CHECK(sd_image_load(p, 3, &img) == SD_ERR_IO && !img.data);
        CHECK_STR_CONTAINS(sd_last_error(), want);
        image_text *t;
        int n;
        CHECK(image_read_png_text(p, &t, &n) == SD_ERR_IO);
        st_file *f;
        CHECK(st_open(p, &f) == SD_ERR_IO && !f);
        CHECK_STR_CONTAINS(sd_last_error(), want);
        char hex[65];
        CHECK(sd_sha256_file(p, hex) == SD_ERR_IO);
        unet_config u;
        CHECK(unet_config_from_file(p, &u) != SD_OK);
        vae_config v;
        CHECK(vae_config_from_json(p, &v) != SD_OK);
        clip_config c;
        CHECK(clip_config_from_json(p, &c) != SD_OK);
        CHECK_STR_CONTAINS(sd_last_error(), want);
        sd_gen_params gp;
        void *store;
        CHECK(sd_params_from_png(p, &gp, &store) == SD_ERR_IO);
    }
    /* as a model file and as a --vae override */
    model_files m;
    CHECK(model_files_open(fifo, NULL, &m) == SD_ERR_IO);
    CHECK_STR_CONTAINS(sd_last_error(), "fifo: not a regular file");
    CHECK(model_files_open(test_path("golden/pipeline/sd1"), fifo, &m) == SD_ERR_IO);
    CHECK_STR_CONTAINS(sd_last_error(), "fifo: not a regular file");
}

TEST(fileio_read_limit_and_contents) {
    char path[600];
    snprintf(path, sizeof path, "%s/f.txt", test_tmpdir());
    FILE *fp = fopen(path, "wb");
    REQUIRE(fp);
    fputs("0123456789", fp);
    fclose(fp);
    char *buf;
    size_t len;
    REQUIRE(file_read(path, 10, &buf, &len) == SD_OK);
    CHECK(len == 10 && !memcmp(buf, "0123456789", 11)); /* NUL-terminated */
    free(buf);
    CHECK(file_read(path, 9, &buf, &len) == SD_ERR_FORMAT && !buf);
    CHECK_STR_CONTAINS(sd_last_error(), "10 bytes is over the 9-byte limit");
    CHECK(file_read("/nonexistent/f.txt", 9, &buf, &len) == SD_ERR_IO);
    CHECK_STR_CONTAINS(sd_last_error(), "/nonexistent/f.txt: cannot open: No such file or directory");
}
