/* cmd_info.c — `sd info PATH...`: describe models, safetensors files and generated PNGs. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../sd.h"
#include "cli.h"

/* What an image file other than a PNG is, from its first bytes ("JPEG" ...), and whether sd_image_load reads it;
 * NULL for anything else. The library's sd_describe knows PNGs (by name or signature) and model files, so a
 * photo.jpg would be read as a safetensors header of absurd length. */
static const char *image_kind(const char *path, int *readable) {
    struct stat sb;
    unsigned char b[12] = {0};
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) return NULL; /* a FIFO is never opened: sd_describe refuses it */
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    *readable = 1;
    if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return "JPEG";
    if (n >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4)) return "WebP";
    if (n >= 2 && !memcmp(b, "BM", 2)) return "BMP";
    *readable = 0;
    if (n >= 4 && !memcmp(b, "GIF8", 4)) return "GIF";
    if (n >= 4 && (!memcmp(b, "II*\0", 4) || !memcmp(b, "MM\0*", 4))) return "TIFF";
    return NULL;
}

/* An image that holds no settings sd reads: its kind and size. Returns 0 or -1 (printed). */
static int describe_image(const char *path, const char *kind, int readable) {
    if (!readable) {
        printf("%s: %s image (sd reads PNG, JPEG, WebP and BMP images)\n  no generation parameters\n", path, kind);
        return 0;
    }
    sd_image img;
    if (sd_image_load(path, 3, &img) != SD_OK) {
        fprintf(stderr, "error: %s\n", sd_last_error());
        return -1;
    }
    printf("%s: %s image, %dx%d\n  no generation parameters (sd reads them from the text chunks of PNGs)\n", path, kind, img.w, img.h);
    sd_image_free(&img);
    return 0;
}

int cmd_info(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fprintf(argc < 2 ? stderr : stdout, "usage: sd info PATH...   (model file or folder, .safetensors, or an image: .png, .jpg, .webp, .bmp)\n");
        return argc < 2 ? 1 : 0;
    }
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        int readable;
        const char *kind = image_kind(argv[i], &readable);
        if (kind) {
            if (describe_image(argv[i], kind, readable) != 0) rc = 1;
        } else if (sd_describe(argv[i], stdout) != SD_OK) {
            fprintf(stderr, "error: %s\n", sd_last_error());
            rc = 1;
        }
    }
    return rc;
}
