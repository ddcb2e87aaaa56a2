/* assets.h — the web page's files and the OpenAPI document, compiled into the binary (cli/serve/web/). */
#ifndef SERVER_ASSETS_H
#define SERVER_ASSETS_H

#include <stddef.h>

/* The file served at url ("/" is index.html): 1 and its bytes and type, or 0. Any output may be NULL. */
int assets_find(const char *url, const char **data, size_t *len, const char **content_type);

/* The OpenAPI template (cli/serve/web/openapi.json) */
void assets_openapi(const char **data, size_t *len);

#endif
