/* configfile.h: the I/O side of the configuration. It reads the YAML file and
 * hands its text to the pure loader (rd_config_load_buffer), then checks the
 * files and environment variables the config names, as a start, a SIGHUP reload
 * and --check-config all must (DESIGN.md section 2). */
#ifndef RUNNERD_IO_CONFIGFILE_H
#define RUNNERD_IO_CONFIGFILE_H

#include <stdio.h>

#include "runnerd/core/auth.h"
#include "runnerd/core/config.h"

/**
 * Read FILE and rd_config_load_buffer() it. On success returns 0 and sets *out.
 * On failure returns RD_EINVAL (or RD_EIO when the file cannot be read), *out
 * stays NULL and every problem found is appended to errs.
 */
int rd_config_load_file(const char *file, const rd_host_facts_t *facts, rd_config_t **out,
                        rd_config_errors_t *errs);

/**
 * The side of validation that reads the host: token_file, private_key_file,
 * ca_file and webhook_secret_file must be readable regular files and token_env
 * must name a non-empty variable; each failure is appended to errs. Warning
 * lines "file:line:col: key: warning: ..." go to WARN (if not NULL): a secret
 * file readable or writable by group or others; the config file itself
 * ("file: warning: ...") or ca_file writable by group or others; any of them
 * owned by neither root nor the effective user. Returns 0 or RD_EINVAL.
 */
int rd_config_check_files(const rd_config_t *cfg, rd_config_errors_t *errs, FILE *warn);

/**
 * rd_config_load_file() then rd_config_check_files(): what a start, a SIGHUP
 * reload and --check-config all run, so that they agree. On any error the config
 * is freed, *out stays NULL and every error is in errs; warnings (if not NULL)
 * collects the permission warnings either way, as entries whose reason starts
 * with "warning: " (log them with rd_config_error_str()).
 */
int rd_config_load_checked(const char *file, const rd_host_facts_t *facts, rd_config_t **out,
                           rd_config_errors_t *errs, rd_config_errors_t *warnings);

/** Print rd_config_summary() to FP. */
void rd_config_print_summary(const rd_config_t *cfg, FILE *fp);
/** Print every error, one "file:line:col: path: reason" line each (the text
 * of rd_config_errors_format). */
void rd_config_errors_print(const rd_config_errors_t *errs, FILE *fp);

/** Read PATH and rd_auth_key_load() it. RD_EIO when unreadable. The key text is wiped from memory.
 */
int rd_auth_key_load_file(const char *path, rd_auth_key_t **out);

#endif
