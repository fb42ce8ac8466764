/* configfile.c: the I/O side of the configuration: the YAML file read and handed
 * to the pure loader (src/core/config.c), then the files and environment
 * variables it names checked (readable regular files, who else may read or
 * change them), the same way for a start, a SIGHUP reload and --check-config. */
#include "runnerd/io/configfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runnerd/core/common.h"
#include "runnerd/io/readfile.h"

#define RD_CONFIG_MAX_FILE (4 * 1024 * 1024)

int rd_config_load_file(const char *file, const rd_host_facts_t *facts, rd_config_t **out,
                        rd_config_errors_t *errs)
{
    *out = NULL;
    char *buf = NULL;
    size_t len = 0;
    int rc = rd_read_file(file, RD_CONFIG_MAX_FILE, 0, &buf, &len);
    if (rc == RD_ERANGE) {
        rd_config_errors_add(errs, file, 0, 0, "", "larger than 4 MiB: not a configuration file");
        return RD_EINVAL;
    }
    if (rc != 0) {
        char reason[256];
        snprintf(reason, sizeof(reason), "cannot open: %s", strerror(errno));
        rd_config_errors_add(errs, file, 0, 0, "", reason);
        return RD_EIO;
    }
    rc = rd_config_load_buffer(file, buf, len, facts, out, errs);
    free(buf);
    return rc;
}

typedef enum {
    FILE_SECRET, /* token, App key, webhook secret: no access for group or others */
    FILE_CA,     /* ca_file: public, but nobody else may write it */
    FILE_CONFIG, /* the configuration file: nobody else may write it */
} file_kind_t;

/* Warnings (never errors) about who else may read or change a file runnerd
 * trusts. The content is never read here, let alone printed. */
static void check_perms(const rd_config_t *cfg, const char *path, const struct stat *st,
                        rd_pos_t pos, const char *key, file_kind_t kind,
                        rd_config_errors_t *warnings)
{
    char reason[640];
    unsigned mode = (unsigned)(st->st_mode & 0777);
    const char *name = kind == FILE_CONFIG ? "this file" : path;
    if (kind == FILE_SECRET && (mode & 066) != 0) {
        const char *how = (mode & 044) && (mode & 022) ? "readable and writable"
                          : (mode & 044)               ? "readable"
                                                       : "writable";
        snprintf(reason, sizeof(reason),
                 "warning: %s is %s by group or others (mode %03o); chmod 600 it", path, how, mode);
        rd_config_errors_add(warnings, cfg->path, pos.line, pos.col, key, reason);
    } else if (kind != FILE_SECRET && (mode & 022) != 0) {
        snprintf(reason, sizeof(reason),
                 "warning: %s is writable by group or others (mode %03o): whoever can write it %s; "
                 "chmod go-w it",
                 name, mode,
                 kind == FILE_CA ? "decides which servers runnerd trusts with its token"
                                 : "controls docker.extra_args, and so root");
        rd_config_errors_add(warnings, cfg->path, pos.line, pos.col, key, reason);
    }
    uid_t me = geteuid();
    if (st->st_uid != 0 && st->st_uid != me) {
        snprintf(reason, sizeof(reason),
                 "warning: %s is owned by uid %u, neither root nor runnerd's user (uid %u), who "
                 "can change its mode at will; chown it",
                 name, (unsigned)st->st_uid, (unsigned)me);
        rd_config_errors_add(warnings, cfg->path, pos.line, pos.col, key, reason);
    }
}

/* The folders on the way to PATH: whoever can write one of them can replace the
 * file, whatever its own mode. Says so for the first such folder (writable by
 * group or others without the sticky bit, or owned by someone but root and
 * runnerd's user). */
static void check_dirs(const rd_config_t *cfg, const char *path, rd_pos_t pos, const char *key,
                       rd_config_errors_t *warnings)
{
    char *real = realpath(path, NULL);
    if (real == NULL)
        return;
    char reason[PATH_MAX + 256];
    uid_t me = geteuid();
    char *slash;
    while ((slash = strrchr(real, '/')) != NULL) {
        if (slash == real)
            slash[1] = '\0'; /* "/" itself */
        else
            *slash = '\0';
        struct stat st;
        if (stat(real, &st) != 0 || !S_ISDIR(st.st_mode))
            break;
        unsigned mode = (unsigned)(st.st_mode & 07777);
        const char *why = NULL;
        if ((mode & 022) != 0 && (mode & S_ISVTX) == 0)
            why = "is writable by group or others";
        else if (st.st_uid != 0 && st.st_uid != me)
            why = "is owned by another user";
        if (why != NULL) {
            snprintf(reason, sizeof(reason),
                     "warning: folder %s %s (mode %04o, uid %u): they can replace %s; "
                     "chmod go-w / chown it",
                     real, why, mode, (unsigned)st.st_uid, path);
            rd_config_errors_add(warnings, cfg->path, pos.line, pos.col, key, reason);
            break;
        }
        if (strcmp(real, "/") == 0)
            break;
    }
    free(real);
}

static void check_file(const rd_config_t *cfg, const char *path, rd_pos_t pos, const char *key,
                       file_kind_t kind, rd_config_errors_t *errs, rd_config_errors_t *warnings)
{
    if (path == NULL)
        return;
    char reason[512];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        snprintf(reason, sizeof(reason), "cannot read %s: %s", path, strerror(errno));
        rd_config_errors_add(errs, cfg->path, pos.line, pos.col, key, reason);
        return;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(reason, sizeof(reason), "%s is not a regular file", path);
        rd_config_errors_add(errs, cfg->path, pos.line, pos.col, key, reason);
    } else if (warnings != NULL) {
        check_perms(cfg, path, &st, pos, key, kind, warnings);
        check_dirs(cfg, path, pos, key, warnings);
    }
    close(fd);
}

/* The configuration file itself: whoever can write it sets docker.extra_args
 * (--privileged, -v /:/host) and so is root. Nothing to say when it is gone
 * (a config loaded from a buffer, or replaced meanwhile). */
static void check_config_file(const rd_config_t *cfg, rd_config_errors_t *warnings)
{
    struct stat st;
    if (warnings == NULL || cfg->path == NULL || stat(cfg->path, &st) != 0 || !S_ISREG(st.st_mode))
        return;
    check_perms(cfg, cfg->path, &st, (rd_pos_t){0, 0}, "", FILE_CONFIG, warnings);
    check_dirs(cfg, cfg->path, (rd_pos_t){0, 0}, "", warnings);
}

static int check_files(const rd_config_t *cfg, rd_config_errors_t *errs,
                       rd_config_errors_t *warnings)
{
    size_t before = errs->n;
    const rd_github_config_t *g = &cfg->github;
    check_config_file(cfg, warnings);
    check_file(cfg, g->token_file, g->token_file_pos, "github.token_file", FILE_SECRET, errs,
               warnings);
    check_file(cfg, g->private_key_file, g->private_key_file_pos, "github.private_key_file",
               FILE_SECRET, errs, warnings);
    check_file(cfg, g->ca_file, g->ca_file_pos, "github.ca_file", FILE_CA, errs, warnings);
    check_file(cfg, cfg->webhook_secret_file, cfg->webhook_secret_file_pos, "webhook_secret_file",
               FILE_SECRET, errs, warnings);
    if (g->token_env != NULL) {
        const char *v = getenv(g->token_env);
        if (v == NULL || v[0] == '\0') {
            char reason[256];
            snprintf(reason, sizeof(reason), "environment variable %s is not set", g->token_env);
            rd_config_errors_add(errs, cfg->path, g->token_env_pos.line, g->token_env_pos.col,
                                 "github.token_env", reason);
        }
    }
    return errs->n > before ? RD_EINVAL : RD_OK;
}

int rd_config_check_files(const rd_config_t *cfg, rd_config_errors_t *errs, FILE *warn)
{
    rd_config_errors_t warnings = {0};
    int rc = check_files(cfg, errs, &warnings);
    if (warn != NULL)
        rd_config_errors_print(&warnings, warn);
    rd_config_errors_free(&warnings);
    return rc;
}

int rd_config_load_checked(const char *file, const rd_host_facts_t *facts, rd_config_t **out,
                           rd_config_errors_t *errs, rd_config_errors_t *warnings)
{
    rd_config_t *cfg = NULL;
    *out = NULL;
    int rc = rd_config_load_file(file, facts, &cfg, errs);
    if (rc != RD_OK)
        return rc;
    rc = check_files(cfg, errs, warnings);
    if (rc != RD_OK) {
        rd_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return RD_OK;
}

int rd_auth_key_load_file(const char *path, rd_auth_key_t **out)
{
    *out = NULL;
    /* A PEM RSA key is a few KiB; anything much larger is not one. */
    char *buf = NULL;
    size_t len = 0;
    int rc = rd_read_file(path, 64 * 1024, RD_READ_SECRET, &buf, &len);
    if (rc != 0)
        return rc == RD_EIO && errno == ENOENT ? RD_ENOENT : rc == RD_ERANGE ? RD_EINVAL : rc;
    rc = rd_auth_key_load(buf, len, out);
    OPENSSL_cleanse(buf, len);
    free(buf);
    return rc;
}
