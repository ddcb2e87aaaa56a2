/* test_batch_manifest.c — the batch manifest: append/re-read, a torn last
 * line after a crash, files that changed or vanished, per-shard manifest files. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../cli/manifest.h"
#include "../sd.h"
#include "test.h"

static void write_file(const char *path, const char *text) {
    FILE *fp = fopen(path, "wb");
    REQUIRE(fp);
    fputs(text, fp);
    fclose(fp);
}

static char *read_all(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = 0;
    fclose(fp);
    return buf;
}

static const char *KEY_A = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char *KEY_B = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

static void append(manifest_writer *w, const char *dir, const char *file, const char *key) {
    char path[4096], hex[65], err[256];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    REQUIRE(sd_sha256_file(path, hex) == SD_OK);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "file", file);
    cJSON_AddStringToObject(o, "key", key);
    cJSON_AddStringToObject(o, "sha256", hex);
    cJSON_AddNumberToObject(o, "seed", 1);
    REQUIRE_MSG(manifest_append(w, o, err, sizeof err) == 0, "%s", err);
    cJSON_Delete(o);
}

TEST(batch_manifest_roundtrip_and_checks) {
    const char *dir = test_tmpdir();
    char path[4096], mpath[4096], err[256];
    const char *files[] = {"a.png", "b.png", "c.png"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        write_file(path, files[i]);
    }
    snprintf(mpath, sizeof mpath, "%s/manifest.jsonl", dir);
    manifest_writer w;
    REQUIRE(manifest_open(&w, mpath, err, sizeof err) == 0);
    for (int i = 0; i < 3; i++) append(&w, dir, files[i], KEY_A);
    manifest_close(&w);

    manifest m;
    REQUIRE(manifest_load_dir(dir, &m, err, sizeof err) == 0);
    CHECK_EQ_INT(m.n, 3);
    CHECK_EQ_INT(m.bad_lines, 0);
    CHECK(manifest_done(&m, dir, "a.png", KEY_A));
    CHECK(!manifest_done(&m, dir, "a.png", KEY_B)); /* other parameters: not this image */
    CHECK(!manifest_done(&m, dir, "d.png", KEY_A)); /* not in the manifest */
    snprintf(path, sizeof path, "%s/b.png", dir);
    write_file(path, "changed");
    CHECK(!manifest_done(&m, dir, "b.png", KEY_A)); /* content no longer matches */
    snprintf(path, sizeof path, "%s/c.png", dir);
    unlink(path);
    CHECK(!manifest_done(&m, dir, "c.png", KEY_A)); /* gone */
    manifest_free(&m);

    /* every line is one JSON object ending in a newline */
    char *text = read_all(mpath);
    int lines = 0;
    for (char *p = text; *p; p++) lines += *p == '\n';
    CHECK_EQ_INT(lines, 3);
    CHECK(text[strlen(text) - 1] == '\n');
}

TEST(batch_manifest_torn_tail) {
    const char *dir = test_tmpdir();
    char path[4096], mpath[4096], err[256];
    snprintf(path, sizeof path, "%s/x.png", dir);
    write_file(path, "x");
    snprintf(path, sizeof path, "%s/y.png", dir);
    write_file(path, "y");
    snprintf(mpath, sizeof mpath, "%s/manifest.jsonl", dir);
    manifest_writer w;
    REQUIRE(manifest_open(&w, mpath, err, sizeof err) == 0);
    append(&w, dir, "x.png", KEY_A);
    manifest_close(&w);
    struct stat st;
    stat(mpath, &st);
    off_t good = st.st_size;
    /* a crash in the middle of a line: no newline at the end */
    int fd = open(mpath, O_WRONLY | O_APPEND);
    REQUIRE(fd >= 0);
    const char torn[] = "{\"file\":\"y.png\",\"key\":\"bbbb";
    REQUIRE(write(fd, torn, sizeof torn - 1) == (ssize_t)(sizeof torn - 1));
    close(fd);

    manifest m;
    REQUIRE(manifest_load_dir(dir, &m, err, sizeof err) == 0);
    CHECK_EQ_INT(m.n, 1);
    CHECK_EQ_INT(m.bad_lines, 1);
    CHECK(manifest_done(&m, dir, "x.png", KEY_A));
    manifest_free(&m);

    /* re-opening cuts the torn tail, so the next line stands alone */
    REQUIRE(manifest_open(&w, mpath, err, sizeof err) == 0);
    stat(mpath, &st);
    CHECK_EQ_INT(st.st_size, good);
    append(&w, dir, "y.png", KEY_B);
    manifest_close(&w);
    REQUIRE(manifest_load_dir(dir, &m, err, sizeof err) == 0);
    CHECK_EQ_INT(m.n, 2);
    CHECK_EQ_INT(m.bad_lines, 0);
    CHECK(manifest_done(&m, dir, "y.png", KEY_B));
    manifest_free(&m);
}

TEST(batch_manifest_reads_shards) {
    const char *dir = test_tmpdir();
    char path[4096], err[256], name[64];
    snprintf(path, sizeof path, "%s/p.png", dir);
    write_file(path, "p");
    snprintf(path, sizeof path, "%s/q.png", dir);
    write_file(path, "q");
    manifest_name(0, 1, name, sizeof name);
    CHECK(!strcmp(name, "manifest.jsonl"));
    manifest_name(2, 8, name, sizeof name);
    CHECK(!strcmp(name, "manifest.shard-2-of-8.jsonl"));

    /* two shard manifests (one with a blank line); a look-alike file that is not a manifest */
    manifest_writer w;
    snprintf(path, sizeof path, "%s/manifest.shard-0-of-2.jsonl", dir);
    write_file(path, "\n");
    REQUIRE(manifest_open(&w, path, err, sizeof err) == 0);
    append(&w, dir, "p.png", KEY_A);
    manifest_close(&w);
    snprintf(path, sizeof path, "%s/manifest.shard-1-of-2.jsonl", dir);
    REQUIRE(manifest_open(&w, path, err, sizeof err) == 0);
    append(&w, dir, "q.png", KEY_B);
    manifest_close(&w);
    snprintf(path, sizeof path, "%s/other.jsonl", dir);
    write_file(path, "{\"file\":\"p.png\"}\n");

    manifest m;
    REQUIRE(manifest_load_dir(dir, &m, err, sizeof err) == 0);
    CHECK_EQ_INT(m.files, 2);
    CHECK_EQ_INT(m.n, 2);
    CHECK_EQ_INT(m.bad_lines, 0);
    CHECK(manifest_done(&m, dir, "p.png", KEY_A));
    CHECK(manifest_done(&m, dir, "q.png", KEY_B));
    manifest_free(&m);

    /* a missing folder is an empty manifest */
    snprintf(path, sizeof path, "%s/none", dir);
    REQUIRE(manifest_load_dir(path, &m, err, sizeof err) == 0);
    CHECK_EQ_INT(m.n, 0);
    manifest_free(&m);
}

/* A complete line that is not a manifest line is an error naming file:line (only a torn LAST line is tolerated). */
TEST(batch_manifest_garbage_line_is_an_error) {
    const char *bad[] = {"not json\n", "{\"file\": 3}\n", "{\"file\":\"p.png\",\"key\":\"short\",\"sha256\":\"x\"}\n",
                         "{\"x\":1}\n"};
    for (int i = 0; i < 4; i++) {
        const char *dir = test_tmpdir();
        char path[4096], text[512], err[512], want[4200];
        snprintf(path, sizeof path, "%s/manifest.jsonl", dir);
        snprintf(text, sizeof text, "\n%s{\"torn", bad[i]); /* line 2 is bad; the torn tail alone would be fine */
        write_file(path, text);
        manifest m;
        err[0] = 0;
        CHECK(manifest_load_dir(dir, &m, err, sizeof err) == -1);
        snprintf(want, sizeof want, "%s:2: not a manifest line", path);
        CHECK_MSG(strstr(err, want) != NULL, "case %d: %s", i, err);
        manifest_free(&m);
    }
}

/* A manifest that is a symbolic link (it would be appended to wherever it points) or a FIFO (opening it would wait
 * forever) is refused, for reading and for appending, and the link's target is left as it was. */
TEST(batch_manifest_not_regular_refused) {
    const char *dir = test_tmpdir();
    char sub[4096], path[4200], target[4200], err[512];
    snprintf(sub, sizeof sub, "%s/out", dir);
    REQUIRE(mkdir(sub, 0755) == 0);
    snprintf(target, sizeof target, "%s/notes.txt", dir);
    write_file(target, "important notes\n");
    snprintf(path, sizeof path, "%s/manifest.jsonl", sub);
    REQUIRE(symlink(target, path) == 0);
    manifest m;
    err[0] = 0;
    CHECK(manifest_load_dir(sub, &m, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "manifest.jsonl: is a symbolic link") != NULL, "%s", err);
    manifest_free(&m);
    manifest_writer w;
    CHECK(manifest_open(&w, path, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "is a symbolic link") != NULL, "%s", err);
    CHECK(!strcmp(read_all(target), "important notes\n"));
    unlink(path);
    /* a dangling link is not followed to create its target either */
    snprintf(target, sizeof target, "%s/created-through-link", dir);
    REQUIRE(symlink(target, path) == 0);
    CHECK(manifest_open(&w, path, err, sizeof err) == -1);
    CHECK(access(target, F_OK) != 0);
    unlink(path);

    REQUIRE(mkfifo(path, 0644) == 0);
    CHECK(manifest_load_dir(sub, &m, err, sizeof err) == -1); /* returns: it does not wait for a writer */
    CHECK_MSG(strstr(err, "manifest.jsonl: is a FIFO") != NULL, "%s", err);
    manifest_free(&m);
    CHECK(manifest_open(&w, path, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "is a FIFO") != NULL, "%s", err);
}
