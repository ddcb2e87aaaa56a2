/* test_image.c — PNG write/read with text chunks, image decoding errors, SHA-256 against FIPS vectors. */
#include "test.h"
#include "../core/error.h"
#include "../core/fileio.h"
#include "../core/image.h"
#include "../core/sha256.h"
#include "../sd.h"

#include <stdlib.h>
#include <zlib.h>

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

/* Text after the image data is found too (other tools write it there), without decoding the pixels: a PNG whose
 * rows are broken (the file that leaked libpng's row buffer) still gives its text, and truncations are refused
 * cleanly (no leak under LeakSanitizer). */
TEST(png_text_after_idat_and_broken_rows) {
    const char *dir = test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/t.png", dir);
    sd_image img = {5, 3, 3, calloc(5 * 3, 3)};
    image_text kv = {"parameters", "a cat\nSteps: 7, Seed: 3"};
    REQUIRE(image_write_png(path, &img, &kv, 1, 0) == SD_OK);
    free(img.data);
    char *buf;
    size_t len;
    REQUIRE(file_read(path, 1 << 20, &buf, &len) == SD_OK);
    /* move the tEXt chunk (length, type, data, CRC) to just before IEND */
    size_t at = 8, text_at = 0, text_len = 0;
    while (at + 8 <= len) {
        uint32_t n = (uint32_t)(uint8_t)buf[at] << 24 | (uint32_t)(uint8_t)buf[at + 1] << 16 | (uint32_t)(uint8_t)buf[at + 2] << 8 | (uint8_t)buf[at + 3];
        if (!memcmp(buf + at + 4, "tEXt", 4)) { text_at = at; text_len = n + 12; }
        at += n + 12;
    }
    REQUIRE(text_at && at == len);
    char *moved = malloc(len), *q = moved;
    memcpy(q, buf, text_at); q += text_at;
    memcpy(q, buf + text_at + text_len, len - 12 - text_at - text_len); q += len - 12 - text_at - text_len;
    memcpy(q, buf + text_at, text_len); q += text_len;
    memcpy(q, buf + len - 12, 12);
    image_text *t;
    int n;
    REQUIRE_MSG(image_png_text_decode("moved.png", (const uint8_t *)moved, len, &t, &n) == SD_OK, "%s", sd_last_error());
    CHECK(n == 1 && !strcmp(t[0].key, "parameters") && !strcmp(t[0].value, kv.value));
    image_text_free(t, n);
    for (size_t cut = 0; cut < len - 12; cut++) { /* every cut before IEND loses text or data: refused, nothing held */
        int ok = image_png_text_decode("cut.png", (const uint8_t *)moved, cut, &t, &n) == SD_OK;
        CHECK_MSG(!ok || n == 0, "cut at %zu: %d text chunks", cut, n);
        if (ok) image_text_free(t, n);
        else CHECK_STR_CONTAINS(sd_last_error(), "cut.png");
    }
    free(moved);
    free(buf);
    REQUIRE_MSG(image_read_png_text(test_path("data/hostile/png-text-row-leak.png"), &t, &n) == SD_OK, "%s", sd_last_error());
    CHECK(n == 1 && !strcmp(t[0].key, "parameters") && !strcmp(t[0].value, "x\nSteps: 5, Seed: 1"));
    image_text_free(t, n);
    sd_image px;
    CHECK(sd_image_load(test_path("data/hostile/png-text-row-leak.png"), 3, &px) == SD_ERR_FORMAT && !px.data);
    CHECK_STR_CONTAINS(sd_last_error(), "png-text-row-leak.png: unreadable PNG: bad adaptive filter value");
}

static void put_chunk(uint8_t *buf, size_t *at, const char *type, const uint8_t *data, uint32_t n) {
    uint8_t *c = buf + *at;
    c[0] = (uint8_t)(n >> 24); c[1] = (uint8_t)(n >> 16); c[2] = (uint8_t)(n >> 8); c[3] = (uint8_t)n;
    memcpy(c + 4, type, 4);
    if (n) memcpy(c + 8, data, n);
    uLong crc = crc32(crc32(0, NULL, 0), c + 4, n + 4);
    c[8 + n] = (uint8_t)(crc >> 24); c[9 + n] = (uint8_t)(crc >> 16); c[10 + n] = (uint8_t)(crc >> 8); c[11 + n] = (uint8_t)crc;
    *at += n + 12;
}

/* zTXt chunks that inflate to megabytes (found by fuzzing: a 46 KB file took 200 MB and `sd info` printed 47 MB)
 * are dropped; a real prompt beside them is still read; a chunk longer than the file is refused before libpng
 * allocates its length (found by fuzzing too). */
TEST(png_text_bombs_are_dropped) {
    size_t big = 3u << 20, zcap = compressBound(big) + 64, at = 0;
    uint8_t *plain = malloc(big), *z = malloc(zcap), *png = malloc(8 * zcap + 4096);
    REQUIRE(plain && z && png);
    memset(plain, 'a', big);
    memcpy(plain, "k\0\0", 3); /* keyword "k", NUL, compression method 0, then the deflate stream */
    uLongf zl = zcap - 3;
    REQUIRE(compress2(z + 3, &zl, plain + 3, big - 3, 9) == Z_OK);
    memcpy(z, "k\0\0", 3);
    memcpy(png, "\x89PNG\r\n\x1a\n", 8);
    at = 8;
    put_chunk(png, &at, "IHDR", (const uint8_t *)"\0\0\0\1\0\0\0\1\x08\0\0\0\0", 13);
    for (int i = 0; i < 6; i++) put_chunk(png, &at, "zTXt", z, (uint32_t)zl + 3);
    uint8_t small[64];
    const char *prompt = "parameters\0\0x\nSteps: 5";
    uLongf sl = sizeof small - 12;
    REQUIRE(compress2(small + 12, &sl, (const Bytef *)prompt + 12, 10, 9) == Z_OK);
    memcpy(small, prompt, 12);
    put_chunk(png, &at, "zTXt", small, (uint32_t)sl + 12);
    uint8_t idat[64];
    uLongf il = sizeof idat;
    REQUIRE(compress2(idat, &il, (const Bytef *)"\0\0", 2, 9) == Z_OK);
    put_chunk(png, &at, "IDAT", idat, (uint32_t)il);
    put_chunk(png, &at, "IEND", NULL, 0);
    image_text *t;
    int n;
    REQUIRE_MSG(image_png_text_decode("bomb.png", png, at, &t, &n) == SD_OK, "%s", sd_last_error());
    CHECK_EQ_INT(n, 1);
    CHECK(n >= 1 && !strcmp(t[0].key, "parameters") && !strcmp(t[0].value, "x\nSteps: 5"));
    image_text_free(t, n);
    /* a chunk whose length runs past the end of the file (libpng allocated the length first: 1.5 GB for this one) */
    uint8_t saved[4];
    memcpy(saved, png + 33, 4);
    memcpy(png + 33, "\x59\x00\x00\xf7", 4); /* the first zTXt's length field */
    CHECK(image_png_text_decode("long.png", png, at, &t, &n) == SD_ERR_FORMAT);
    CHECK_STR_CONTAINS(sd_last_error(), "long.png: unreadable PNG: a chunk of 1493172471 bytes at offset 33 runs past the end");
    sd_image img;
    CHECK(image_decode("long.png", png, at, 3, &img) == SD_ERR_FORMAT && !img.data);
    CHECK_STR_CONTAINS(sd_last_error(), "runs past the end");
    memcpy(png + 33, saved, 4);
    /* the pixel decoder skips text chunks unread */
    REQUIRE_MSG(image_decode("bomb.png", png, at, 1, &img) == SD_OK, "%s", sd_last_error());
    CHECK(img.w == 1 && img.h == 1 && img.data[0] == 0);
    sd_image_free(&img);
    free(plain);
    free(z);
    free(png);
}

/* sd_png_encode is the PNG sd_save_png writes, byte for byte; sd_image_decode reads it back from memory and names
 * the data in its errors (the server's uploads and responses go through these two). */
TEST(png_in_memory_matches_file) {
    const char *dir = test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/m.png", dir);
    sd_image img = {21, 5, 3, malloc(21 * 5 * 3)};
    for (int i = 0; i < 21 * 5 * 3; i++) img.data[i] = (uint8_t)(i * 53 + 3);
    const char *info = "a red circle\nSteps: 4, Sampler: Euler, Seed: 7", *json = "{\"prompt\": \"\xe7\x8c\xab\"}";
    REQUIRE_MSG(sd_save_png(path, &img, info, json, 0) == SD_OK, "%s", sd_last_error());
    uint8_t *png;
    size_t len;
    REQUIRE_MSG(sd_png_encode(&img, info, json, &png, &len) == SD_OK, "%s", sd_last_error());
    char *file;
    size_t flen;
    REQUIRE(file_read(path, 1 << 20, &file, &flen) == SD_OK);
    CHECK(flen == len && !memcmp(file, png, len));
    sd_image back;
    REQUIRE_MSG(sd_image_decode(png, len, 3, 0, "upload", &back) == SD_OK, "%s", sd_last_error());
    CHECK(back.w == 21 && back.h == 5 && back.c == 3 && !memcmp(back.data, img.data, 21 * 5 * 3));
    sd_image_free(&back);
    CHECK(sd_image_decode(png, len / 2, 3, 0, "init_images[0]", &back) != SD_OK && back.data == NULL);
    CHECK_STR_CONTAINS(sd_last_error(), "init_images[0]");
    CHECK(sd_image_decode("GIF89a", 6, 1, 0, "mask", &back) != SD_OK);
    CHECK_STR_CONTAINS(sd_last_error(), "mask");
    CHECK(sd_image_decode(png, len, 3, 20, "upload", &back) != SD_OK && back.data == NULL); /* 21 wide: over the limit */
    CHECK_STR_CONTAINS(sd_last_error(), "at most 20 per side");
    sd_image two = {2, 2, 2, img.data};
    free(png);
    CHECK(sd_png_encode(&two, NULL, NULL, &png, &len) != SD_OK && png == NULL);
    free(file);
    free(img.data);
}

TEST(a1111_names_of_samplers_and_schedulers) {
    CHECK(!strcmp(sd_sampler_a1111("euler_a"), "Euler a"));
    CHECK(!strcmp(sd_sampler_a1111("dpm++2m"), "DPM++ 2M"));
    CHECK(sd_sampler_a1111("nope") == NULL);
    CHECK(!strcmp(sd_scheduler_a1111("discrete"), "Automatic"));
    CHECK(!strcmp(sd_scheduler_a1111("karras"), "Karras"));
    CHECK(sd_scheduler_a1111("nope") == NULL);
    /* every sampler the library lists has an A1111 name (the server's /sdapi/v1/samplers lists them all) */
    for (int i = 0; i < sd_sampler_count(); i++) CHECK_MSG(sd_sampler_a1111(sd_sampler_name(i, NULL)), "%s", sd_sampler_name(i, NULL));
    for (int i = 0; i < sd_scheduler_count(); i++) CHECK_MSG(sd_scheduler_a1111(sd_scheduler_name(i, NULL)), "%s", sd_scheduler_name(i, NULL));
}
