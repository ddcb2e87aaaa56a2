/* manifest.c — appending and re-reading the batch manifest (JSON Lines) crash-safely. */
#include "manifest.h"

#include "../sd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


void manifest_name(int shard_index, int shard_count, char *out, size_t cap) {
    if (shard_count <= 1) snprintf(out, cap, "manifest.jsonl");
    else snprintf(out, cap, "manifest.shard-%d-of-%d.jsonl", shard_index, shard_count);
}

static int is_hex64(const char *s) {
    if (!s || strlen(s) != 64) return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) return 0;
    return 1;
}

/* Adds one complete line. Returns 0, -1 when it is not a manifest line, -2 when out of memory. */
static int add_line(manifest *m, const char *line) {
    cJSON *o = cJSON_Parse(line);
    const cJSON *file = cJSON_GetObjectItemCaseSensitive(o, "file");
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(o, "key");
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(o, "sha256");
    int rc = 0;
    if (!cJSON_IsString(file) || !*file->valuestring || !cJSON_IsString(key) || !cJSON_IsString(sha) ||
        !is_hex64(key->valuestring) || !is_hex64(sha->valuestring)) {
        rc = -1;
    } else if (m->n == m->cap) {
        int cap = m->cap ? m->cap * 2 : 64;
        manifest_entry *g = realloc(m->e, (size_t)cap * sizeof *g);
        if (g) m->e = g, m->cap = cap;
        else rc = -2;
    }
    if (rc == 0) {
        manifest_entry *e = &m->e[m->n];
        e->file = strdup(file->valuestring);
        e->line = m->keep_lines && e->file ? strdup(line) : NULL;
        if (!e->file || (m->keep_lines && !e->line)) {
            free(e->file);
            rc = -2;
        } else {
            memcpy(e->key, key->valuestring, 65);
            memcpy(e->sha256, sha->valuestring, 65);
            e->seq = m->n;
            e->src = m->files - 1;
            m->n++;
        }
    }
    cJSON_Delete(o);
    return rc;
}

int manifest_open_regular(const char *path, int flags, char *err, size_t errlen) {
    /* O_NOFOLLOW: a link named manifest.jsonl would have the batch append to whatever it points at (a user's notes,
     * an image); O_NONBLOCK: opening a FIFO would wait for a writer before fstat could refuse it */
    int fd = open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
    if (fd < 0) {
        if (errno == ELOOP) snprintf(err, errlen, "%s: is a symbolic link; a manifest must be a regular file (move the link away)", path);
        else snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    const char *why = NULL;
    if (fstat(fd, &st) != 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) why = strerror(errno);
    else if (!S_ISREG(st.st_mode)) why = S_ISDIR(st.st_mode) ? "is a folder" : S_ISFIFO(st.st_mode) ? "is a FIFO" : "is not a regular file";
    if (why) {
        snprintf(err, errlen, "%s: %s; a manifest must be a regular file (move it away)", path, why);
        close(fd);
        return -1;
    }
    return fd;
}

int manifest_load_file(const char *path, manifest *m, char *err, size_t errlen) {
    errno = 0;
    int fd = manifest_open_regular(path, O_RDONLY, err, errlen);
    FILE *fp = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (!fp) {
        if (fd >= 0) { snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno)); close(fd); }
        return -1;
    }
    m->files++;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, rc = 0;
    while (rc == 0 && (len = getline(&line, &cap, fp)) > 0) {
        lineno++;
        /* a run killed mid-append leaves a last line without its newline (the next run cuts it): not an error */
        if (line[len - 1] != '\n') { m->bad_lines++; break; }
        line[len - 1] = 0;
        if (len == 1) continue;
        int r = add_line(m, line);
        /* a complete line sd did not write (a hand edit, a file that is no manifest): which images are done, and whose
         * files may be replaced, cannot be trusted to the rest */
        if (r == -1) snprintf(err, errlen, "%s:%d: not a manifest line (a JSON object with \"file\", \"key\" and \"sha256\"); "
                              "fix or remove it", path, lineno);
        else if (r == -2) snprintf(err, errlen, "%s: out of memory", path);
        if (r) rc = -1;
    }
    if (rc == 0 && ferror(fp)) { snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno)); rc = -1; }
    free(line);
    fclose(fp);
    return rc;
}

static int by_file_seq(const void *a, const void *b) {
    const manifest_entry *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

void manifest_finish(manifest *m) {
    if (m->n) qsort(m->e, (size_t)m->n, sizeof *m->e, by_file_seq);
}

int manifest_is_name(const char *n) {
    size_t l = strlen(n);
    return !strncmp(n, "manifest", 8) && l >= 14 && !strcmp(n + l - 6, ".jsonl");
}

static int by_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int manifest_list_dir(const char *dir, char ***names, char *err, size_t errlen) {
    *names = NULL;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) return 0;
        snprintf(err, errlen, "%s: cannot read folder: %s", dir, strerror(errno));
        return -1;
    }
    int nn = 0, cap = 0;
    char **v = NULL;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!manifest_is_name(de->d_name)) continue;
        if (nn == cap) {
            char **g = realloc(v, (size_t)(cap = cap ? cap * 2 : 16) * sizeof *g);
            if (!g) break;
            v = g;
        }
        if ((v[nn] = strdup(de->d_name))) nn++;
    }
    closedir(d);
    if (nn) qsort(v, (size_t)nn, sizeof *v, by_str); /* a fixed reading order */
    *names = v;
    return nn;
}

int manifest_load_dir(const char *dir, manifest *m, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    char **names;
    int nn = manifest_list_dir(dir, &names, err, errlen);
    if (nn < 0) return -1;
    int rc = 0;
    for (int i = 0; i < nn; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (rc == 0 && manifest_load_file(path, m, err, errlen) != 0) rc = -1;
        free(names[i]);
    }
    free(names);
    manifest_finish(m);
    return rc;
}

void manifest_free(manifest *m) {
    for (int i = 0; i < m->n; i++) {
        free(m->e[i].file);
        free(m->e[i].line);
    }
    free(m->e);
    memset(m, 0, sizeof *m);
}

/* The first entry of `file` (entries are sorted by file). */
int manifest_first(const manifest *m, const char *file) {
    int lo = 0, hi = m->n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (strcmp(m->e[mid].file, file) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* 1 when an entry of `file` (with this key, unless key is NULL) has the SHA-256 of the file on disk. */
static int has_entry(const manifest *m, const char *dir, const char *file, const char *key) {
    char path[4096], hex[65];
    int hashed = 0;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    for (int i = manifest_first(m, file); i < m->n && !strcmp(m->e[i].file, file); i++) {
        if (key && strcmp(m->e[i].key, key)) continue;
        if (!hashed) {
            if (sd_sha256_file(path, hex) != SD_OK) return 0;
            hashed = 1;
        }
        if (!strcmp(hex, m->e[i].sha256)) return 1;
    }
    return 0;
}

int manifest_done(const manifest *m, const char *dir, const char *file, const char *key) {
    return has_entry(m, dir, file, key);
}

int manifest_owns(const manifest *m, const char *dir, const char *file) { return has_entry(m, dir, file, NULL); }

int manifest_has(const manifest *m, const char *file, const char *key, const char *sha256) {
    for (int i = manifest_first(m, file); i < m->n && !strcmp(m->e[i].file, file); i++)
        if (!strcmp(m->e[i].key, key) && !strcmp(m->e[i].sha256, sha256)) return 1;
    return 0;
}

/* ---- appending ---- */

int manifest_sync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int manifest_open(manifest_writer *w, const char *path, char *err, size_t errlen) {
    snprintf(w->path, sizeof w->path, "%s", path);
    w->fd = manifest_open_regular(path, O_RDWR | O_CREAT | O_APPEND, err, errlen);
    if (w->fd < 0) return -1;
    struct stat st;
    if (fstat(w->fd, &st) != 0) goto io;
    /* cut a torn tail back to the last newline: scan backwards in blocks */
    off_t end = st.st_size, keep = 0;
    char buf[4096];
    while (end > 0) {
        off_t start = end > (off_t)sizeof buf ? end - (off_t)sizeof buf : 0;
        ssize_t got = pread(w->fd, buf, (size_t)(end - start), start);
        if (got != end - start) goto io;
        int k = (int)got - 1;
        while (k >= 0 && buf[k] != '\n') k--;
        if (k >= 0) { keep = start + k + 1; break; }
        end = start;
    }
    if (keep != st.st_size && (ftruncate(w->fd, keep) != 0 || fsync(w->fd) != 0)) goto io;
    return 0;
io:
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    close(w->fd);
    w->fd = -1;
    return -1;
}

int manifest_append(manifest_writer *w, const cJSON *entry, char *err, size_t errlen) {
    char *s = cJSON_PrintUnformatted(entry);
    if (!s) { snprintf(err, errlen, "%s: out of memory", w->path); return -1; }
    size_t len = strlen(s);
    char *line = realloc(s, len + 2);
    if (!line) { free(s); snprintf(err, errlen, "%s: out of memory", w->path); return -1; }
    line[len++] = '\n';
    line[len] = 0;
    off_t before = lseek(w->fd, 0, SEEK_END);
    size_t done = 0;
    int rc = 0;
    while (done < len) {
        ssize_t k = write(w->fd, line + done, len - done);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) { rc = -1; break; }
        done += (size_t)k;
    }
    if (rc == 0 && fsync(w->fd) != 0) rc = -1;
    if (rc != 0) {
        snprintf(err, errlen, "%s: write failed: %s", w->path, strerror(errno));
        if (before >= 0 && ftruncate(w->fd, before) == 0) fsync(w->fd);
    }
    free(line);
    return rc;
}

void manifest_close(manifest_writer *w) {
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
}
