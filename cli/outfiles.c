/* outfiles.c — output paths checked before any work, and temp files of interrupted runs removed. */
#include "outfiles.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* The folder part of `path` ("." when it has none; "/" for "/x"). */
static void folder_of(const char *path, char *out, size_t cap) {
    snprintf(out, cap, "%s", path);
    char *s = strrchr(out, '/');
    if (!s) snprintf(out, cap, ".");
    else if (s == out) out[1] = 0;
    else *s = 0;
}

/* Makes and removes a file in `dir`: the only test that /proc, a read-only mount, permissions, ACLs and quotas
 * all answer truthfully (access() says yes to root almost everywhere). */
static int probe(const char *dir, const char *what) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s/.sd-probe.XXXXXX", dir);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "error: %s: cannot write in %s: %s\n", what, dir, strerror(errno));
        return -1;
    }
    close(fd);
    unlink(tmp);
    return 0;
}

/* `dir` must be a folder that takes files; when missing and `mkdirs`, its nearest existing ancestor must. */
static int check_folder(const char *dir, int mkdirs, const char *what) {
    char cur[4096];
    snprintf(cur, sizeof cur, "%s", dir);
    for (;;) {
        struct stat sb;
        if (stat(cur, &sb) == 0) {
            if (!S_ISDIR(sb.st_mode)) {
                fprintf(stderr, "error: %s: %s is not a folder\n", what, cur);
                return -1;
            }
            return probe(cur, what);
        }
        int e = errno; /* ENOTDIR: a file on the way, which the walk up names */
        if (e != ENOTDIR && (e != ENOENT || !mkdirs)) {
            if (e == ENOENT) fprintf(stderr, "error: %s: output folder does not exist\n", what);
            else fprintf(stderr, "error: %s: %s: %s\n", what, cur, strerror(e));
            return -1;
        }
        char up[4096];
        folder_of(cur, up, sizeof up);
        if (!strcmp(up, cur)) { fprintf(stderr, "error: %s: no existing folder above it\n", what); return -1; }
        snprintf(cur, sizeof cur, "%s", up);
    }
}

int outfiles_check_file(const char *path, int overwrite, int mkdirs) {
    size_t n = strlen(path);
    if (!n) { fprintf(stderr, "error: the output path is empty\n"); return -1; }
    if (n >= 4000) { fprintf(stderr, "error: %.60s...: the output path is too long\n", path); return -1; }
    if (path[n - 1] == '/') { fprintf(stderr, "error: %s: names a folder, not a file\n", path); return -1; }
    struct stat sb;
    if (lstat(path, &sb) == 0) {
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            fprintf(stderr, "error: %s: %s (not replaced, even with --overwrite)\n", path,
                    S_ISDIR(sb.st_mode) ? "is a folder" : "exists and is not a regular file");
            return -1;
        }
        if (!overwrite) {
            fprintf(stderr, "error: %s: already exists (use --overwrite to replace it)\n", path);
            return -1;
        }
    } else if (errno != ENOENT && errno != ENOTDIR) {
        fprintf(stderr, "error: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char dir[4096];
    folder_of(path, dir, sizeof dir);
    return check_folder(dir, mkdirs, path);
}

/* Resolves "." and ".." and doubled slashes of the absolute path `p` in place, without looking at the disk. */
static void lexical_norm(char *p) {
    char *out = p, *c = p;
    while (*c) {
        while (*c == '/') c++;
        char *e = c;
        while (*e && *e != '/') e++;
        size_t len = (size_t)(e - c);
        if (len == 0) break;
        if (len == 1 && c[0] == '.') {
        } else if (len == 2 && c[0] == '.' && c[1] == '.') {
            while (out > p && *--out != '/') {}
        } else {
            *out++ = '/';
            memmove(out, c, len);
            out += len;
        }
        c = e;
    }
    if (out == p) *out++ = '/';
    *out = 0;
}

int outfiles_resolve(const char *path, char *out, size_t cap) {
    char abs[8192], cwd[4096], real[PATH_MAX];
    if (path[0] == '/') snprintf(abs, sizeof abs, "%s", path);
    else if (getcwd(cwd, sizeof cwd)) snprintf(abs, sizeof abs, "%s/%s", cwd, path);
    else return -1;
    size_t cut = strlen(abs);
    for (;;) {
        char saved = abs[cut];
        abs[cut] = 0;
        int found = realpath(cut ? abs : "/", real) != NULL;
        abs[cut] = saved;
        if (found) break;
        while (cut > 0 && abs[cut - 1] != '/') cut--;
        if (cut > 0) cut--; /* the slash: the next try is the folder above */
    }
    if ((size_t)snprintf(out, cap, "%s/%s", real, abs + cut) >= cap) return -1;
    lexical_norm(out);
    return 0;
}

int outfiles_same_file(const char *a, const char *b) {
    struct stat sa, sb;
    int ea = stat(a, &sa), eb = stat(b, &sb);
    if (ea == 0 && eb == 0) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino; /* hard links, symlinks too */
    if (ea == 0 || eb == 0) return 0;
    char ra[8192], rb[8192];
    if (outfiles_resolve(a, ra, sizeof ra) != 0 || outfiles_resolve(b, rb, sizeof rb) != 0) return !strcmp(a, b);
    return !strcmp(ra, rb);
}

int outfiles_within(const char *path, const char *top) {
    char cur[4096], up[4096];
    snprintf(cur, sizeof cur, "%s", path);
    for (;;) {
        if (outfiles_same_file(cur, top)) return 1;
        folder_of(cur, up, sizeof up);
        if (!strcmp(up, cur) || !strcmp(up, ".")) return 0;
        snprintf(cur, sizeof cur, "%s", up);
    }
}

int outfiles_check_png(const char *path, const char *flag) {
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path, *dot = strrchr(base, '.');
    if (dot && dot > base && !strcasecmp(dot, ".png")) return 0; /* ".png" alone is a hidden file, not a PNG name */
    fprintf(stderr, "error: %s %s: sd writes PNG files; use a .png name\n", flag, path);
    return -1;
}

int outfiles_check_dir(const char *dir) {
    size_t n = strlen(dir);
    if (!n) { fprintf(stderr, "error: the output folder is empty\n"); return -1; }
    if (n >= 4000) { fprintf(stderr, "error: %.60s...: the output folder is too long\n", dir); return -1; }
    return check_folder(dir, 1, dir);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The name a temp file ".NAME.XXXXXX" stands in for, into out (cap bytes); 0 when `name` is not one. */
static int temp_target(const char *name, char *out, size_t cap) {
    size_t l = strlen(name);
    if (name[0] != '.' || l < 9 || name[l - 7] != '.' || l - 8 >= cap) return 0;
    for (size_t i = l - 6; i < l; i++) /* mkstemp's six letters and digits */
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') || (name[i] >= '0' && name[i] <= '9')))
            return 0;
    memcpy(out, name + 1, l - 8);
    out[l - 8] = 0;
    return 1;
}

void outfiles_clean_temps(const char *root, char **names, int n) {
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    char last_dir[4096] = "\1";
    for (int i = 0; i < n; i++) {
        /* prefix: the folder of the name, with its '/'; sorting keeps the names of a folder together, mostly */
        const char *slash = strrchr(names[i], '/');
        int plen = slash ? (int)(slash - names[i]) + 1 : 0;
        char prefix[4096], dir[8192];
        snprintf(prefix, sizeof prefix, "%.*s", plen, names[i]);
        if (!strcmp(prefix, last_dir)) continue;
        snprintf(last_dir, sizeof last_dir, "%s", prefix);
        if (*root) snprintf(dir, sizeof dir, "%s%s%s", root, plen ? "/" : "", prefix);
        else snprintf(dir, sizeof dir, "%s", plen ? prefix : ".");
        DIR *d = opendir(dir);
        if (!d) continue;
        struct dirent *de;
        while ((de = readdir(d))) {
            char target[4096], inner[4096], rel[8192], *key = rel;
            if (!temp_target(de->d_name, target, sizeof target)) continue;
            /* a temp of a temp (".NAME.XXXXXX" being written as "..NAME.XXXXXX.YYYYYY") stands for NAME too */
            if (target[0] == '.' && temp_target(target, inner, sizeof inner)) snprintf(target, sizeof target, "%s", inner);
            snprintf(rel, sizeof rel, "%s%s", prefix, target);
            if (bsearch(&key, names, (size_t)n, sizeof *names, cmp_str)) {
                char full[12288];
                snprintf(full, sizeof full, "%s/%s", dir, de->d_name);
                unlink(full);
            }
        }
        closedir(d);
    }
}
