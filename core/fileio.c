/* fileio.c — whole-file reads and crash-safe writes. */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

sd_status file_begin(file_writer *w, const char *path) {
    memset(w, 0, sizeof *w);
    if (strlen(path) + 16 >= sizeof w->tmp) return err_fail(SD_ERR_ARG, "%s: path too long", path);
    snprintf(w->path, sizeof w->path, "%s", path);
    /* the temp name starts with '.' and sits in the same folder, so rename() is atomic */
    char dir[4096], base[4096];
    snprintf(dir, sizeof dir, "%s", path);
    snprintf(base, sizeof base, "%s", path);
    snprintf(w->tmp, sizeof w->tmp, "%s/.%s.XXXXXX", dirname(dir), basename(base));
    int fd = mkstemp(w->tmp);
    if (fd < 0) return err_fail(SD_ERR_IO, "%s: cannot create file: %s", path, strerror(errno));
    fchmod(fd, 0644);
    w->fp = fdopen(fd, "wb");
    if (!w->fp) { close(fd); unlink(w->tmp); return err_fail(SD_ERR_IO, "%s: cannot open: %s", path, strerror(errno)); }
    return SD_OK;
}

void file_write(file_writer *w, const void *data, size_t n) {
    if (!w->failed && n && fwrite(data, 1, n, w->fp) != n) w->failed = errno ? errno : EIO;
}

void file_abort(file_writer *w) {
    if (w->fp) fclose(w->fp);
    w->fp = NULL;
    unlink(w->tmp);
}

sd_status file_commit(file_writer *w) {
    int err = w->failed;
    if (!err && fflush(w->fp) != 0) err = errno;
    if (!err && fsync(fileno(w->fp)) != 0) err = errno;
    if (fclose(w->fp) != 0 && !err) err = errno;
    w->fp = NULL;
    if (!err) {
        if (w->no_replace) {
            /* link() fails with EEXIST instead of replacing: the never-overwrite guarantee */
            if (link(w->tmp, w->path) != 0) err = errno;
            unlink(w->tmp);
            if (err == EEXIST) return err_fail(SD_ERR_IO, "%s: already exists (not overwritten)", w->path);
        } else if (rename(w->tmp, w->path) != 0) {
            err = errno;
        }
    }
    if (err) {
        unlink(w->tmp);
        return err_fail(SD_ERR_IO, "%s: write failed: %s", w->path, strerror(err));
    }
    return SD_OK;
}

sd_status file_open_regular(const char *path, int *fd, uint64_t *size) {
    *fd = -1;
    if (size) *size = 0;
    int f = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (f < 0) return err_fail(SD_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(f, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(f);
        return err_fail(SD_ERR_IO, "%s: not a regular file", path);
    }
    /* O_NONBLOCK means nothing for a regular file's reads, but a lock or a FUSE file could still see it */
    int fl = fcntl(f, F_GETFL);
    if (fl != -1) fcntl(f, F_SETFL, fl & ~O_NONBLOCK);
    *fd = f;
    if (size) *size = (uint64_t)sb.st_size;
    return SD_OK;
}

sd_status file_read(const char *path, size_t max_bytes, char **data, size_t *len) {
    *data = NULL;
    if (len) *len = 0;
    int fd;
    uint64_t size;
    sd_status st = file_open_regular(path, &fd, &size);
    if (st != SD_OK) return st;
    if (size > max_bytes) {
        close(fd);
        return err_fail(SD_ERR_FORMAT, "%s: %llu bytes is over the %zu-byte limit", path, (unsigned long long)size, max_bytes);
    }
    size_t n = (size_t)size, got = 0;
    char *buf = malloc(n + 1);
    if (!buf) { close(fd); return err_fail(SD_ERR_MEMORY, "%s: out of memory", path); }
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) { /* an error, or the file shrank while we read it */
            int e = r < 0 ? errno : 0;
            free(buf);
            close(fd);
            return err_fail(SD_ERR_IO, "%s: read failed: %s", path, e ? strerror(e) : "the file became shorter");
        }
        got += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    *data = buf;
    if (len) *len = n;
    return SD_OK;
}

int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

int file_is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}
