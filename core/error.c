/* error.c — the per-thread last-error message behind sd_last_error(). */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char g_msg[2048];

const char *sd_last_error(void) { return g_msg; }

void err_clear(void) { g_msg[0] = 0; }

sd_status err_fail(sd_status status, const char *fmt, ...) {
    /* formatted aside first: an argument may be the current message itself (vsnprintf into its own source
     * is undefined), as when a caller adds context to sd_last_error() */
    char msg[sizeof g_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(g_msg, msg, sizeof g_msg);
    return status;
}

void err_prefix(const char *fmt, ...) {
    char pre[512], old[sizeof g_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, g_msg, sizeof old);
    snprintf(g_msg, sizeof g_msg, "%s: %s", pre, old);
}
