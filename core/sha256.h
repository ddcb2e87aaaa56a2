/* sha256.h — SHA-256 (FIPS 180-4), for model hashes in PNG metadata and file checks in batch manifests. */
#ifndef CORE_SHA256_H
#define CORE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef struct sha256_ctx {
    uint32_t h[8];
    uint64_t len;
    uint8_t buf[64];
    size_t nbuf;
} sha256_ctx;

void sha256_init(sha256_ctx *s);
void sha256_update(sha256_ctx *s, const void *data, size_t n);
void sha256_final(sha256_ctx *s, uint8_t out[32]);
void sha256_hex(const uint8_t digest[32], char hex[65]);
/* Whole file / byte string to 64 hex digits + NUL. Public: sd.h declares both too. */
sd_status sd_sha256_file(const char *path, char hex[65]);
void sd_sha256_string(const void *data, size_t n, char hex[65]);

#endif
