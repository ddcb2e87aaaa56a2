/* error.h — error reporting: functions return sd_status (or NULL) and leave a message for sd_last_error(). */
#ifndef CORE_ERROR_H
#define CORE_ERROR_H

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Record a printf-style message for sd_last_error() and return `status`, so callers can write
 * `return err_fail(SD_ERR_FORMAT, "%s: header is not a JSON object", path);`. */
sd_status err_fail(sd_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefix the current message with "<prefix>: " (adds context while an error travels up). */
void err_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void err_clear(void);

#ifdef __cplusplus
}
#endif

#endif
