/* sha256.h — SHA-256 (FIPS 180-4) for the batch manifest: cli/ sees only sd.h, which has no hash function. */
#ifndef CLI_SHA256_H
#define CLI_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct cli_sha256 {
    uint32_t h[8];
    uint64_t len;       /* bytes hashed so far */
    uint8_t buf[64];
    size_t nbuf;
} cli_sha256;

void cli_sha256_init(cli_sha256 *s);
void cli_sha256_update(cli_sha256 *s, const void *data, size_t n);
void cli_sha256_final(cli_sha256 *s, char hex[65]); /* lowercase hex digest, NUL-terminated */
void cli_sha256_string(const void *data, size_t n, char hex[65]);
/* Digest of a whole file; returns 0, or -1 if it cannot be read. */
int cli_sha256_file(const char *path, char hex[65]);

#endif
