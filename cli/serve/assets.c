/* assets.c — embeds cli/serve/web/ in the binary with .incbin (the paths are relative to the repository root, where
 * the Makefile runs the compiler; the Makefile lists the files as prerequisites of this object). */
#include "assets.h"

#include <string.h>

#define EMBED(sym, file)                                                                                     \
    __asm__(".section .rodata\n.balign 16\n.global " #sym "\n.type " #sym ", @object\n" #sym ":\n"          \
            ".incbin \"" file "\"\n.global " #sym "_end\n.type " #sym "_end, @object\n" #sym "_end:\n"      \
            ".byte 0\n.previous\n");                                                                         \
    extern const char sym[], sym##_end[];

EMBED(web_index_html, "cli/serve/web/index.html")
EMBED(web_app_js, "cli/serve/web/app.js")
EMBED(web_style_css, "cli/serve/web/style.css")
EMBED(web_openapi_json, "cli/serve/web/openapi.json")

static const struct {
    const char *url, *type;
    const char *start, *end;
} FILES[] = {
    {"/", "text/html; charset=utf-8", web_index_html, web_index_html_end},
    {"/index.html", "text/html; charset=utf-8", web_index_html, web_index_html_end},
    {"/app.js", "text/javascript; charset=utf-8", web_app_js, web_app_js_end},
    {"/style.css", "text/css; charset=utf-8", web_style_css, web_style_css_end},
};

int assets_find(const char *url, const char **data, size_t *len, const char **content_type) {
    for (size_t i = 0; i < sizeof FILES / sizeof *FILES; i++) {
        if (strcmp(FILES[i].url, url)) continue;
        if (data) *data = FILES[i].start;
        if (len) *len = (size_t)(FILES[i].end - FILES[i].start);
        if (content_type) *content_type = FILES[i].type;
        return 1;
    }
    return 0;
}

void assets_openapi(const char **data, size_t *len) {
    *data = web_openapi_json;
    *len = (size_t)(web_openapi_json_end - web_openapi_json);
}
