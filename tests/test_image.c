/* test_image.c — PNG write/read with text chunks, image decoding errors, SHA-256 against FIPS vectors. */
#include "test.h"
#include "../core/error.h"
#include "../core/fileio.h"
#include "../core/image.h"
#include "../core/sha256.h"

#include <stdlib.h>

static void sha_hex(const char *msg, size_t n, char hex[65]) {
    sha256_ctx s;
    uint8_t d[32];
    sha256_init(&s);
    sha256_update(&s, msg, n);
    sha256_final(&s, d);
    sha256_hex(d, hex);
}

TEST(sha256_fips_vectors) {
    char hex[65];
    sha_hex("abc", 3, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    sha_hex("", 0, hex);
    CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha_hex(m, strlen(m), hex);
    CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    /* one million 'a', fed in uneven pieces */
    sha256_ctx s;
    uint8_t d[32];
    char a[997];
    memset(a, 'a', sizeof a);
    sha256_init(&s);
    size_t left = 1000000;
    while (left) { size_t k = left < sizeof a ? left : sizeof a; sha256_update(&s, a, k); left -= k; }
    sha256_final(&s, d);
    sha256_hex(d, hex);
    CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
}

static int file_contains(const char *path, const char *needle, size_t nl) {
    char *buf;
    size_t len;
    if (file_read(path, 1 << 24, &buf, &len) != SD_OK) return 0;
    int found = 0;
    for (size_t i = 0; i + nl <= len && !found; i++) found = !memcmp(buf + i, needle, nl);
    free(buf);
    return found;
}

TEST(png_roundtrip_with_text) {
    const char *dir = test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/out.png", dir);
    sd_image img = {13, 7, 3, malloc(13 * 7 * 3)};
    for (int i = 0; i < 13 * 7 * 3; i++) img.data[i] = (uint8_t)(i * 37 + 11);
    image_text kv[3] = {{"parameters", "a cat, caf\xc3\xa9\nSteps: 20, Seed: 42"}, /* Latin-1 representable -> tEXt */
                        {"sd", "{\"prompt\": \"\xe7\x8c\xab\"}"},                     /* CJK -> iTXt */
                        {"empty", ""}};
    REQUIRE_MSG(image_write_png(path, &img, kv, 3, 0) == SD_OK, "%s", sd_last_error());
    CHECK(file_contains(path, "tEXtparameters", 14));
    CHECK(file_contains(path, "iTXtsd", 6));
    CHECK(file_contains(path, "caf\xe9", 4)); /* stored as Latin-1 like Pillow */
    sd_image back;
    REQUIRE(sd_image_load(path, 3, &back) == SD_OK);
    CHECK(back.w == 13 && back.h == 7 && back.c == 3);
    CHECK(!memcmp(back.data, img.data, 13 * 7 * 3));
    sd_image_free(&back);
    image_text *t;
    int n;
    REQUIRE(image_read_png_text(path, &t, &n) == SD_OK);
    CHECK_EQ_INT(n, 3);
    for (int i = 0; i < n && i < 3; i++) {
        CHECK(!strcmp(t[i].key, kv[i].key));
        CHECK_MSG(!strcmp(t[i].value, kv[i].value), "%s: \"%s\"", t[i].key, t[i].value);
    }
    image_text_free(t, n);
    /* never overwrite when asked not to; the old file is intact */
    uint8_t first = img.data[0];
    img.data[0] = (uint8_t)(first + 1);
    CHECK(image_write_png(path, &img, NULL, 0, 1) != SD_OK);
    CHECK_STR_CONTAINS(sd_last_error(), "already exists");
    REQUIRE(sd_image_load(path, 3, &back) == SD_OK);
    CHECK(back.data[0] == first);
    sd_image_free(&back);
    /* no temporary files left behind */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "test $(ls -A %s | wc -l) -eq 1", dir);
    CHECK(system(cmd) == 0);
    free(img.data);
}

TEST(image_read_errors) {
    const char *dir = test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/bad.png", dir);
    sd_image img;
    FILE *fp = fopen(path, "wb");
    fputs("this is not an image", fp);
    fclose(fp);
    CHECK(sd_image_load(path, 3, &img) != SD_OK && img.data == NULL);
    CHECK_STR_CONTAINS(sd_last_error(), "bad.png");
    fp = fopen(path, "wb");
    fclose(fp);
    CHECK(sd_image_load(path, 3, &img) != SD_OK);
    CHECK(sd_image_load("/nonexistent/x.png", 3, &img) != SD_OK);
    CHECK_STR_CONTAINS(sd_last_error(), "/nonexistent/x.png");
    /* a truncated PNG */
    char good[512];
    snprintf(good, sizeof good, "%s/good.png", dir);
    sd_image g = {64, 64, 3, calloc(64 * 64, 3)};
    for (int i = 0; i < 64 * 64 * 3; i++) g.data[i] = (uint8_t)(i * 7);
    REQUIRE(image_write_png(good, &g, NULL, 0, 0) == SD_OK);
    char *buf;
    size_t len;
    REQUIRE(file_read(good, 1 << 20, &buf, &len) == SD_OK);
    fp = fopen(path, "wb");
    fwrite(buf, 1, len / 2, fp);
    fclose(fp);
    CHECK(sd_image_load(path, 3, &img) != SD_OK);
    /* an IHDR that claims 100000 x 100000 pixels */
    memcpy(buf + 16, "\x00\x01\x86\xa0\x00\x01\x86\xa0", 8);
    fp = fopen(path, "wb");
    fwrite(buf, 1, len, fp);
    fclose(fp);
    CHECK(sd_image_load(path, 3, &img) != SD_OK);
    free(buf);
    free(g.data);
    /* grey read of an RGB image and PNG text of a non-PNG */
    REQUIRE(sd_image_load(good, 1, &img) == SD_OK);
    CHECK(img.c == 1 && img.w == 64);
    sd_image_free(&img);
    image_text *t;
    int n;
    CHECK(image_read_png_text(path, &t, &n) != SD_OK || n == 0);
    snprintf(path, sizeof path, "%s/x.txt", dir);
    fp = fopen(path, "wb");
    fputs("hello", fp);
    fclose(fp);
    CHECK(image_read_png_text(path, &t, &n) != SD_OK);
    CHECK_STR_CONTAINS(sd_last_error(), "not a PNG");
}
