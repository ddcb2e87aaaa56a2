/* test_safetensors.c — the safetensors reader/writer: round trips and a table of malformed files. */
#include "test.h"
#include "../core/error.h"
#include "../core/fileio.h"
#include "../core/half.h"
#include "../core/safetensors.h"

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

static void write_raw(const char *path, const void *data, size_t n) {
    FILE *fp = fopen(path, "wb");
    REQUIRE(fp);
    fwrite(data, 1, n, fp);
    fclose(fp);
}

/* A file made of an 8-byte length, the header text as given, then `data_len` bytes of data. */
static void write_st(const char *path, const char *header, size_t data_len) {
    size_t hl = strlen(header);
    uint8_t *buf = calloc(1, 8 + hl + data_len + 1);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, header, hl);
    write_raw(path, buf, 8 + hl + data_len);
    free(buf);
}

TEST(safetensors_roundtrip) {
    const char *dir = test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/a.safetensors", dir);
    float a[6] = {1, -2, 3.5f, 0.25f, -0.125f, 1e-3f};
    int64_t sa[2] = {2, 3}, sb[1] = {6}, s0[1] = {0};
    st_writer *w = st_writer_new();
    REQUIRE(st_writer_add_f32(w, "x.weight", ST_F32, 2, sa, a) == SD_OK);
    REQUIRE(st_writer_add_f32(w, "y.f16", ST_F16, 1, sb, a) == SD_OK);
    REQUIRE(st_writer_add_f32(w, "z.bf16", ST_BF16, 1, sb, a) == SD_OK);
    REQUIRE(st_writer_add(w, "empty", ST_F32, 1, s0, a) == SD_OK);
    REQUIRE(st_writer_add(w, "scalar", ST_F32, 0, NULL, a) == SD_OK);
    REQUIRE(st_writer_meta(w, "format", "pt") == SD_OK);
    REQUIRE(st_writer_save(w, path) == SD_OK);
    st_writer_free(w);

    st_file *f;
    REQUIRE_MSG(st_open(path, &f) == SD_OK, "%s", sd_last_error());
    CHECK_EQ_INT(st_count(f), 5);
    const st_tensor *t = st_find(f, "x.weight");
    REQUIRE(t);
    CHECK(t->dtype == ST_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 && t->numel == 6);
    float got[6];
    REQUIRE(st_read_f32(f, t, got) == SD_OK);
    CHECK_MAXERR(got, a, 6, 0);
    REQUIRE(st_read_f32(f, st_find(f, "y.f16"), got) == SD_OK);
    for (int i = 0; i < 6; i++) CHECK(got[i] == f16_to_f32(f32_to_f16(a[i])));
    REQUIRE(st_read_f32(f, st_find(f, "z.bf16"), got) == SD_OK);
    for (int i = 0; i < 6; i++) CHECK(got[i] == bf16_to_f32(f32_to_bf16(a[i])));
    CHECK(st_find(f, "empty")->numel == 0);
    CHECK(st_find(f, "scalar")->numel == 1 && st_find(f, "scalar")->ndim == 0);
    CHECK(st_find(f, "nope") == NULL);
    CHECK(st_meta(f, "format") && !strcmp(st_meta(f, "format"), "pt"));
    CHECK(st_meta(f, "other") == NULL);
    int64_t n;
    float *l = st_load_f32(f, "x.weight", &n);
    CHECK(l && n == 6);
    free(l);
    CHECK(st_load_f32(f, "missing", &n) == NULL);
    CHECK_STR_CONTAINS(sd_last_error(), "missing");
    st_close(f);
}

/* st_check_finite: NaN and infinities in each float type (bit patterns, not converted values), an F64 that only
 * overflows as a float, and the element's index; finite and non-float tensors pass. */
TEST(safetensors_check_finite) {
    char path[512];
    snprintf(path, sizeof path, "%s/nan.safetensors", test_tmpdir());
    uint32_t f32[3] = {0x3f800000u, 0x80000000u, 0x7fc00001u};        /* 1, -0, a quiet NaN with a payload */
    uint16_t f16[3] = {0x7bffu, 0xfc00u, 0}, bf16[3] = {0, 0, 0x7f80u}; /* 65504, -inf; +inf */
    double f64[2] = {1e38, -1e39};                                     /* the second is -inf as a float */
    uint16_t f16ok[2] = {0x7bffu, 0x0001u};
    int32_t i32[1] = {0x7fc00000};
    int64_t s3[1] = {3}, s2[1] = {2}, s1[1] = {1};
    st_writer *w = st_writer_new();
    REQUIRE(st_writer_add(w, "a.f32", ST_F32, 1, s3, f32) == SD_OK);
    REQUIRE(st_writer_add(w, "b.f16", ST_F16, 1, s3, f16) == SD_OK);
    REQUIRE(st_writer_add(w, "c.bf16", ST_BF16, 1, s3, bf16) == SD_OK);
    REQUIRE(st_writer_add(w, "d.f64", ST_F64, 1, s2, f64) == SD_OK);
    REQUIRE(st_writer_add(w, "e.ok", ST_F16, 1, s2, f16ok) == SD_OK);
    REQUIRE(st_writer_add(w, "f.int", ST_I32, 1, s1, i32) == SD_OK);
    REQUIRE(st_writer_save(w, path) == SD_OK);
    st_writer_free(w);
    st_file *f;
    REQUIRE(st_open(path, &f) == SD_OK);
    static const struct { const char *name, *want; } bad[] = {
        {"a.f32", "nan.safetensors: tensor \"a.f32\" holds NaN at element 2"},
        {"b.f16", "tensor \"b.f16\" holds -inf at element 1"},
        {"c.bf16", "tensor \"c.bf16\" holds inf at element 2"},
        {"d.f64", "tensor \"d.f64\" holds a value past a float's range at element 1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK_MSG(st_check_finite(f, st_find(f, bad[i].name)) != SD_OK, "%s passed", bad[i].name);
        CHECK_STR_CONTAINS(sd_last_error(), bad[i].want);
    }
    CHECK(st_check_finite(f, st_find(f, "e.ok")) == SD_OK);
    CHECK(st_check_finite(f, st_find(f, "f.int")) == SD_OK);
    st_close(f);
}

TEST(safetensors_reads_unaligned_and_padded_header) {
    /* header padded with spaces (as writers do) and a tensor at an odd offset */
    const char *dir = test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/b.safetensors", dir);
    const char *hdr = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[1,9]}}   ";
    size_t hl = strlen(hdr);
    uint8_t buf[512] = {0};
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, hdr, hl);
    float v[2] = {3.0f, -7.5f};
    buf[8 + hl] = 42;
    memcpy(buf + 8 + hl + 1, v, 8);
    write_raw(path, buf, 8 + hl + 9);
    st_file *f;
    REQUIRE_MSG(st_open(path, &f) == SD_OK, "%s", sd_last_error());
    float got[2];
    REQUIRE(st_read_f32(f, st_find(f, "b"), got) == SD_OK);
    CHECK(got[0] == 3.0f && got[1] == -7.5f);
    CHECK(st_read_f32(f, st_find(f, "a"), got) != SD_OK); /* U8 is data, not convertible */
    CHECK_STR_CONTAINS(sd_last_error(), "U8");
    st_close(f);
}

TEST(safetensors_rejects_malformed) {
    static const struct { const char *what, *header; int data_len; const char *msg; } cases[] = {
        {"non-object JSON", "[1,2,3]", 0, "not a JSON object"},
        {"invalid JSON", "{\"a\":", 0, "not valid JSON"},
        {"unknown dtype", "{\"a\":{\"dtype\":\"F17\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unknown dtype"},
        {"missing dtype", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "missing dtype"},
        {"entry not an object", "{\"a\":5}", 0, "not an object"},
        {"negative dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "non-negative integer"},
        {"fractional dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "non-negative integer"},
        /* a whole number past 2^53 is too large, not "not a non-negative integer" */
        {"dim 2^62", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,4]}}", 4,
         "tensor \"a\": shape entry 0 (4611686018427387904) is too large (at most 2^53)"},
        {"dim 1e400", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1e400],\"data_offsets\":[0,4]}}", 4, "shape entry 1 is too large (at most 2^53)"},
        {"offset 2^62", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4611686018427387904]}}", 4, "data_offsets must be two"},
        {"overflowing shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,4]}}", 4, "overflows"},
        {"offsets past end", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, "past the end"},
        {"shape/bytes mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "needs 12 bytes"},
        {"end before begin", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 8, "before begin"},
        {"overlapping offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap"},
        {"duplicate name", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "twice"},
        {"non-string metadata", "{\"__metadata__\":{\"k\":1}}", 0, "not a string"},
        {"metadata not object", "{\"__metadata__\":[\"k\"]}", 0, "__metadata__ is not an object"},
        {"offsets not integers", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",4]}}", 4, "data_offsets"},
        {"too many dims", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "dimensions"},
        /* cJSON keeps duplicate keys: a second, larger block overran the arrays sized for the first */
        {"two metadata blocks", "{\"__metadata__\":{\"k\":\"v\"},\"__metadata__\":{\"k\":\"v\",\"l\":\"w\",\"m\":\"x\"}}", 0, "__metadata__ appears twice"},
    };
    const char *dir = test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_st(path, cases[i].header, cases[i].data_len);
        st_file *f = NULL;
        sd_status st = st_open(path, &f);
        CHECK_MSG(st != SD_OK && f == NULL, "%s: accepted", cases[i].what);
        CHECK_MSG(strstr(sd_last_error(), cases[i].msg) != NULL, "%s: message \"%s\" lacks \"%s\"", cases[i].what, sd_last_error(), cases[i].msg);
        CHECK_MSG(strstr(sd_last_error(), "bad.safetensors") != NULL, "%s: message does not name the file", cases[i].what);
        if (f) st_close(f);
    }
}

/* st_open_memory runs the same checks on a buffer the caller owns (the fuzzer's entry). */
TEST(safetensors_open_memory) {
    const char *dir = test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    write_st(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
    char *buf;
    size_t len;
    REQUIRE(file_read(path, 1 << 20, &buf, &len) == SD_OK);
    st_file *f;
    REQUIRE_MSG(st_open_memory("mem", buf, len, &f) == SD_OK, "%s", sd_last_error());
    const st_tensor *t = st_find(f, "a");
    CHECK(t && t->numel == 2 && (const char *)t->data == buf + len - 8);
    st_release(f, t); /* not mapped by us: a no-op, not madvise on the caller's heap */
    st_close(f);
    CHECK(st_open_memory("mem", buf, 7, &f) != SD_OK && !f);
    CHECK_STR_CONTAINS(sd_last_error(), "mem: 7 bytes is too short");
    free(buf);
}

TEST(safetensors_rejects_bad_framing) {
    const char *dir = test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/f.safetensors", dir);
    st_file *f = NULL;
    write_raw(path, "", 0); /* empty file */
    CHECK(st_open(path, &f) != SD_OK && !f);
    CHECK_STR_CONTAINS(sd_last_error(), "too short");
    write_raw(path, "\x05\0\0", 3); /* truncated length */
    CHECK(st_open(path, &f) != SD_OK && !f);
    CHECK_STR_CONTAINS(sd_last_error(), "too short");
    uint8_t big[16] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}'}; /* header length > file */
    write_raw(path, big, 10);
    CHECK(st_open(path, &f) != SD_OK && !f);
    CHECK_STR_CONTAINS(sd_last_error(), "past the end");
    uint8_t huge[16] = {0, 0, 0, 0, 0, 0, 0, 0x80, '{', '}'}; /* absurd length */
    write_raw(path, huge, 10);
    CHECK(st_open(path, &f) != SD_OK && !f);
    CHECK_STR_CONTAINS(sd_last_error(), "100 MB");
    write_st(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16);
    REQUIRE(st_open(path, &f) == SD_OK); /* valid … */
    st_close(f);
    FILE *fp = fopen(path, "r+b"); /* … then truncated by 3 bytes */
    REQUIRE(fp);
    fseek(fp, 0, SEEK_END);
    long sz = ftell(fp);
    fclose(fp);
    REQUIRE(truncate(path, sz - 3) == 0);
    f = NULL;
    CHECK(st_open(path, &f) != SD_OK && !f);
    CHECK_STR_CONTAINS(sd_last_error(), "truncated");
    CHECK(st_open("/nonexistent/x.safetensors", &f) != SD_OK);
    CHECK_STR_CONTAINS(sd_last_error(), "/nonexistent/x.safetensors");
    CHECK(st_open(dir, &f) != SD_OK); /* a directory */
}

TEST(safetensors_fuzz_no_crash) {
    /* random corruption of a valid file must never crash (run under ASan in CI) */
    const char *dir = test_tmpdir();
    char path[512], path2[512];
    snprintf(path, sizeof path, "%s/v.safetensors", dir);
    snprintf(path2, sizeof path2, "%s/c.safetensors", dir);
    float a[8] = {0};
    int64_t s[1] = {8};
    st_writer *w = st_writer_new();
    st_writer_add_f32(w, "t1", ST_F32, 1, s, a);
    st_writer_add_f32(w, "t2", ST_F16, 1, s, a);
    st_writer_meta(w, "k", "v");
    REQUIRE(st_writer_save(w, path) == SD_OK);
    st_writer_free(w);
    FILE *fp = fopen(path, "rb");
    uint8_t buf[1024];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    uint32_t rs = 7;
    int accepted = 0;
    for (int it = 0; it < 1500; it++) {
        uint8_t c[1024];
        memcpy(c, buf, n);
        int flips = 1 + it % 4;
        for (int k = 0; k < flips; k++) {
            rs = rs * 1103515245u + 12345u;
            size_t pos = (rs >> 8) % n;
            rs = rs * 1103515245u + 12345u;
            c[pos] = (uint8_t)(rs >> 16);
        }
        rs = rs * 1103515245u + 12345u;
        size_t len = it % 5 == 0 ? (rs >> 8) % (n + 1) : n;
        write_raw(path2, c, len);
        st_file *f = NULL;
        if (st_open(path2, &f) == SD_OK) {
            accepted++;
            for (int i = 0; i < st_count(f); i++) { /* whatever was accepted must be readable in bounds */
                const st_tensor *t = st_at(f, i);
                if (st_dtype_is_float(t->dtype)) {
                    float *d = malloc((t->numel + 1) * sizeof(float));
                    st_read_f32(f, t, d);
                    free(d);
                }
            }
            st_close(f);
        }
    }
    test_note("%d of 1500 corrupted files still valid (flips in data bytes)", accepted);
}
