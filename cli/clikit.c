/* clikit.c — option values, numbers, comma lists and file reading for the `sd` subcommands. */
#include "clikit.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int g_failed;

int clikit_failed(void) {
    int f = g_failed;
    g_failed = 0;
    return f;
}

const char *clikit_value(int argc, char **argv, int *i, const char *short_name, const char *long_name) {
    const char *a = argv[*i];
    size_t ll = long_name ? strlen(long_name) : 0;
    if (long_name && !strncmp(a, long_name, ll) && a[ll] == '=') return a + ll + 1;
    if ((long_name && !strcmp(a, long_name)) || (short_name && !strcmp(a, short_name))) {
        if (*i + 1 >= argc) {
            fprintf(stderr, "error: %s needs a value\n", a);
            g_failed = 1;
            return NULL;
        }
        return argv[++*i];
    }
    return NULL;
}

int clikit_edit_distance(const char *a, const char *b) {
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (la > 63 || lb > 63) return 99;
    int d[64][64];
    for (int i = 0; i <= la; i++) d[i][0] = i;
    for (int j = 0; j <= lb; j++) d[0][j] = j;
    for (int i = 1; i <= la; i++)
        for (int j = 1; j <= lb; j++) {
            int c = d[i - 1][j - 1] + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            if (d[i - 1][j] + 1 < c) c = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < c) c = d[i][j - 1] + 1;
            d[i][j] = c;
        }
    return d[la][lb];
}

int clikit_int(const char *s, long lo, long hi, int *out, const char *what) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "error: %s \"%s\" is not a whole number from %ld to %ld\n", what, s, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int clikit_backend(const char *s, sd_backend_kind *out) {
    if (!strcmp(s, "auto")) *out = SD_BACKEND_AUTO;
    else if (!strcmp(s, "cpu")) *out = SD_BACKEND_CPU;
    else if (!strcmp(s, "cuda")) *out = SD_BACKEND_CUDA;
    else {
        fprintf(stderr, "error: --backend \"%s\" is not auto, cpu or cuda\n", s);
        return -1;
    }
    return 0;
}

int clikit_split(const char *s, char **items, int max, char **storage, const char *what) {
    *storage = strdup(s);
    if (!*storage) { fprintf(stderr, "error: out of memory\n"); return -1; }
    int n = 0;
    char *p = *storage;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma) *comma = 0;
        while (*p == ' ') p++;
        char *e = p + strlen(p);
        while (e > p && e[-1] == ' ') *--e = 0;
        if (!*p) { fprintf(stderr, "error: %s \"%s\" has an empty item\n", what, s); return -1; }
        if (n == max) { fprintf(stderr, "error: %s \"%s\" has more than %d items\n", what, s, max); return -1; }
        items[n++] = p;
        if (!comma) break;
        p = comma + 1;
    }
    return n;
}

int clikit_input_path(const char *path, int folders_ok) {
    struct stat sb;
    if (stat(path, &sb) != 0) return 0; /* missing: the opener says so */
    if (S_ISREG(sb.st_mode) || (folders_ok && S_ISDIR(sb.st_mode))) return 0;
    fprintf(stderr, "error: %s: %s\n", path,
            S_ISDIR(sb.st_mode) ? "is a folder, not a file"
            : S_ISFIFO(sb.st_mode) ? "is a FIFO, not a regular file"
            : folders_ok ? "is not a regular file or a folder" : "is not a regular file");
    return -1;
}

int clikit_read_text(const char *path, size_t limit, char **text, size_t *len) {
    *text = NULL;
    *len = 0;
    FILE *fp = stdin;
    if (strcmp(path, "-")) {
        /* O_NONBLOCK: opening a FIFO would otherwise wait for a writer before fstat could refuse it */
        int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        struct stat sb;
        if (fd < 0) { fprintf(stderr, "error: %s: cannot open: %s\n", path, strerror(errno)); return -1; }
        int st = fstat(fd, &sb);
        if (st != 0 || !S_ISREG(sb.st_mode)) {
            fprintf(stderr, "error: %s: %s\n", path, st != 0 ? strerror(errno) : S_ISDIR(sb.st_mode) ? "is a folder, not a file"
                                                  : S_ISFIFO(sb.st_mode) ? "is a FIFO, not a regular file" : "is not a regular file");
            close(fd);
            return -1;
        }
        if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0 || !(fp = fdopen(fd, "rb"))) {
            fprintf(stderr, "error: %s: cannot open: %s\n", path, strerror(errno));
            close(fd);
            return -1;
        }
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            if (cap > limit) break;
            char *g = realloc(buf, cap * 2);
            if (!g) { free(buf); buf = NULL; break; }
            buf = g;
            cap *= 2;
        }
        size_t k = fread(buf + n, 1, cap - 1 - n, fp);
        n += k;
        if (k == 0) break;
    }
    int bad = ferror(fp);
    if (fp != stdin) fclose(fp);
    if (!buf) { fprintf(stderr, "error: %s: out of memory\n", path); return -1; }
    if (bad) { free(buf); fprintf(stderr, "error: %s: cannot read\n", path); return -1; }
    if (n > limit) { free(buf); fprintf(stderr, "error: %s: over the %zu-byte limit\n", path, limit); return -1; }
    buf[n] = 0;
    *text = buf;
    *len = n;
    return 0;
}

int clikit_write_file(const char *path, const void *data, size_t len) {
    char tmp[4200];
    const char *slash = strrchr(path, '/');
    snprintf(tmp, sizeof tmp, "%.*s.%s.XXXXXX", slash ? (int)(slash - path + 1) : 0, path, slash ? slash + 1 : path);
    int fd = mkstemp(tmp);
    if (fd < 0) { fprintf(stderr, "error: %s: cannot create: %s\n", path, strerror(errno)); return -1; }
    fchmod(fd, 0644);
    size_t done = 0;
    while (done < len) {
        ssize_t k = write(fd, (const char *)data + done, len - done);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        done += (size_t)k;
    }
    int ok = done == len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "error: %s: write failed: %s\n", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int clikit_mkdirs_for(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return 0;
}

void clikit_model_name(const char *path, char *out, size_t cap) {
    if (!path) snprintf(out, cap, "(bundled)");
    else sd_model_name(path, out, cap);
}
