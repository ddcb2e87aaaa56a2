/* page.c — the web page's files and /openapi.json: the document in cli/serve/web/openapi.json with this server's limits
 * written into it (each "x-limit": "max_steps" becomes "maximum": the --max-steps value). */
#include <stdlib.h>
#include <string.h>

#include "assets.h"
#include "http.h"

enum MHD_Result page_asset(req *r) {
    const char *data, *type;
    size_t len;
    if (!assets_find(r->url, &data, &len, &type)) return http_error(r, 404, NULL, "%s: no such page", r->url);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", type);
    /* the page runs its own script and images from data: and blob: URLs, nothing from elsewhere */
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
                            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ok = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    if (ok == MHD_YES) {
        r->answered = 1;
        r->status = 200;
    }
    return ok;
}

enum MHD_Result page_openapi(req *r) { return http_text(r, 200, "application/json", r->s->openapi, r->s->openapi_len, 0); }

static int limit_of(const srv *s, const char *name, double *v) {
    if (!strcmp(name, "max_side")) *v = s->o.max_side;
    else if (!strcmp(name, "max_steps")) *v = s->o.max_steps;
    else if (!strcmp(name, "max_images")) *v = s->o.max_images;
    else return -1;
    return 0;
}

static int patch(const srv *s, cJSON *node) {
    for (cJSON *c = node->child; c; c = c->next)
        if ((cJSON_IsObject(c) || cJSON_IsArray(c)) && patch(s, c) != 0) return -1;
    if (!cJSON_IsObject(node)) return 0;
    cJSON *lim = cJSON_GetObjectItemCaseSensitive(node, "x-limit");
    if (!lim) return 0;
    double v;
    if (!cJSON_IsString(lim) || limit_of(s, lim->valuestring, &v) != 0) return -1;
    cJSON_DeleteItemFromObjectCaseSensitive(node, "x-limit");
    cJSON_DeleteItemFromObjectCaseSensitive(node, "maximum");
    cJSON_AddNumberToObject(node, "maximum", v);
    return 0;
}

/* A default past this server's limit (A1111's 50 steps over --max-steps 20) is refused when the field is left out,
 * so the document says so: the field becomes required and loses its default. */
static void require_over_limit(cJSON *node) {
    for (cJSON *c = node->child; c; c = c->next)
        if (cJSON_IsObject(c) || cJSON_IsArray(c)) require_over_limit(c);
    cJSON *props = cJSON_GetObjectItemCaseSensitive(node, "properties");
    if (!cJSON_IsObject(props)) return;
    for (cJSON *p = props->child; p; p = p->next) {
        cJSON *def = cJSON_GetObjectItemCaseSensitive(p, "default"), *max = cJSON_GetObjectItemCaseSensitive(p, "maximum");
        if (!cJSON_IsNumber(def) || !cJSON_IsNumber(max) || def->valuedouble <= max->valuedouble) continue;
        cJSON_DeleteItemFromObjectCaseSensitive(p, "default");
        cJSON *req = cJSON_GetObjectItemCaseSensitive(node, "required");
        if (!req) req = cJSON_AddArrayToObject(node, "required");
        cJSON_AddItemToArray(req, cJSON_CreateString(p->string));
    }
}

int openapi_build(srv *s) {
    const char *tpl;
    size_t len;
    assets_openapi(&tpl, &len);
    cJSON *doc = cJSON_ParseWithLength(tpl, len);
    if (!doc || patch(s, doc) != 0) {
        cJSON_Delete(doc);
        return -1;
    }
    require_over_limit(doc);
    cJSON *info = cJSON_GetObjectItemCaseSensitive(doc, "info");
    if (info) cJSON_ReplaceItemInObjectCaseSensitive(info, "version", cJSON_CreateString(SD_VERSION));
    s->openapi = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    if (!s->openapi) return -1;
    s->openapi_len = strlen(s->openapi);
    return 0;
}
