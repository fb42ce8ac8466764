/* log.h: leveled logging to stderr, text or JSON lines, with redaction. */
#ifndef RUNNERD_LOG_H
#define RUNNERD_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { RD_LOG_DEBUG = 0, RD_LOG_INFO, RD_LOG_WARN, RD_LOG_ERROR } rd_log_level_t;
typedef enum { RD_LOG_TEXT = 0, RD_LOG_JSON } rd_log_format_t;

/** Configure the process-wide logger (the one piece of global state: stderr is global). */
void rd_log_setup(rd_log_level_t level, rd_log_format_t format, FILE *out);
int rd_log_parse_level(const char *s, rd_log_level_t *out);
int rd_log_parse_format(const char *s, rd_log_format_t *out);
bool rd_log_enabled(rd_log_level_t level);
/** Test hook: stamp every line with this time (ms since the epoch); negative = the real clock. */
void rd_log_set_time_ms(int64_t ms);

/**
 * Register a secret (token, JIT config, webhook secret): every later log line has
 * each occurrence replaced by "[REDACTED]". Strings shorter than 8 bytes are ignored.
 * rd_log_forget_secret removes one again (e.g. an expired installation token).
 */
void rd_log_add_secret(const char *secret);
void rd_log_forget_secret(const char *secret);
void rd_log_clear_secrets(void);

/**
 * Copy src into dst (size dst_size, always NUL-terminated), replacing every
 * registered secret and anything that looks like a GitHub token (ghp_, gho_, ghu_,
 * ghs_, ghr_, github_pat_ prefixes) or a JWT (eyJ...) with "[REDACTED]". Returns strlen(dst).
 */
size_t rd_log_redact(const char *src, char *dst, size_t dst_size);

/** Emit one event: text "2026-11-29T20:00:00.123Z INFO component: message" or a JSON object. */
void rd_log(rd_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void rd_logv(rd_log_level_t level, const char *component, const char *fmt, va_list ap);

#define rd_debug(c, ...) rd_log(RD_LOG_DEBUG, c, __VA_ARGS__)
#define rd_info(c, ...) rd_log(RD_LOG_INFO, c, __VA_ARGS__)
#define rd_warn(c, ...) rd_log(RD_LOG_WARN, c, __VA_ARGS__)
#define rd_error(c, ...) rd_log(RD_LOG_ERROR, c, __VA_ARGS__)

#endif
