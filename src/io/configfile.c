/* configfile.c: the I/O side of the configuration: the YAML file read and handed
 * to the pure loader (src/core/config.c), then the files and environment
 * variables it names checked (readable regular files, who else may read or
 * change them, non-empty secrets, an App key that parses) and read once into the
 * config, the same way for a start, a SIGHUP reload and --check-config. */
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
#define RD_TOKEN_MAX (1024 * 1024)        /* a token file */
#define RD_KEY_MAX (64 * 1024)            /* a PEM RSA key is a few KiB */
#define RD_WEBHOOK_SECRET_MAX (64 * 1024) /* the webhook secret */

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
    if (rc == RD_EINVAL) {
        /* A FIFO or a device: reading it could block (a reload runs on the loop). */
        rd_config_errors_add(errs, file, 0, 0, "",
                             "not a regular file (a FIFO, device or socket is refused)");
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

/* Open PATH without blocking (a FIFO put there must not hang a reload), check
 * that it is a regular file, warn about who else may read or change it, and
 * when CONTENT is not NULL read it whole (at most MAX bytes, as a secret).
 * Returns false (an error added) when any of that fails. */
static bool check_file(const rd_config_t *cfg, const char *path, rd_pos_t pos, const char *key,
                       file_kind_t kind, rd_config_errors_t *errs, rd_config_errors_t *warnings,
                       size_t max, char **content, size_t *clen)
{
    char reason[512];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        snprintf(reason, sizeof(reason), "cannot read %s: %s", path, strerror(errno));
        rd_config_errors_add(errs, cfg->path, pos.line, pos.col, key, reason);
        return false;
    }
    struct stat st;
    bool ok = false;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(reason, sizeof(reason), "%s is not a regular file", path);
        rd_config_errors_add(errs, cfg->path, pos.line, pos.col, key, reason);
        goto out;
    }
    if (warnings != NULL) {
        check_perms(cfg, path, &st, pos, key, kind, warnings);
        check_dirs(cfg, path, pos, key, warnings);
    }
    ok = true;
    if (content == NULL)
        goto out;
    int rc = rd_read_fd(fd, max, RD_READ_SECRET, content, clen);
    if (rc == RD_ERANGE)
        snprintf(reason, sizeof(reason), "%s is larger than %zu KiB", path, max / 1024);
    else if (rc != 0)
        snprintf(reason, sizeof(reason), "cannot read %s: %s", path, strerror(errno));
    if (rc != 0) {
        rd_config_errors_add(errs, cfg->path, pos.line, pos.col, key, reason);
        ok = false;
    }
out:
    close(fd);
    return ok;
}

static void wipe_free(char *buf, size_t len)
{
    if (buf != NULL)
        explicit_bzero(buf, len);
    free(buf);
}

/* Trim BUF[0..*len) in place: leading characters of LEAD, trailing of TRAIL;
 * returns the start. */
static char *trim(char *buf, size_t *len, const char *lead, const char *trail)
{
    size_t a = 0, n = *len;
    while (a < n && buf[a] != '\0' && strchr(lead, buf[a]) != NULL)
        a++;
    while (n > a && buf[n - 1] != '\0' && strchr(trail, buf[n - 1]) != NULL)
        n--;
    *len = n - a;
    return buf + a;
}

#define SPACE " \t\n\v\f\r"

/* token_env variables taken so far. The token is removed from runnerd's
 * environment once read (its bytes wiped where they were, so that neither
 * /proc/PID/environ nor a core nor a child sees them) and kept here for the
 * reloads that name the same variable. Process-wide, as the environment is. */
static struct {
    char *name;
    char *value;
} * taken;
static size_t ntaken;

/* The value of environment variable NAME (a copy stays owned here), or NULL. */
static const char *env_take(const char *name)
{
    char *v = getenv(name);
    size_t i;
    for (i = 0; i < ntaken; i++)
        if (strcmp(taken[i].name, name) == 0)
            break;
    if (v == NULL)
        return i < ntaken ? taken[i].value : NULL;
    if (i == ntaken) {
        taken = rd_xrealloc(taken, (ntaken + 1) * sizeof(*taken));
        taken[ntaken].name = rd_xstrdup(name);
        taken[ntaken].value = NULL;
        ntaken++;
    }
    /* Set again since it was taken (a test, an exec'd wrapper): the new value wins. */
    wipe_free(taken[i].value, taken[i].value ? strlen(taken[i].value) : 0);
    taken[i].value = rd_xstrdup(v);
    explicit_bzero(v, strlen(v));
    unsetenv(name);
    return taken[i].value;
}

/* The secret of a file or variable, trimmed, checked non-empty, kept in *keep
 * (if not NULL). Returns false (an error added) when empty. */
static bool keep_secret(const rd_config_t *cfg, char *buf, size_t len, const char *lead,
                        const char *trail, const char *what, rd_pos_t pos, const char *key,
                        rd_config_errors_t *errs, char **keep, size_t *keep_len)
{
    size_t n = len;
    char *s = trim(buf, &n, lead, trail);
    if (n == 0) {
        char reason[512];
        snprintf(reason, sizeof(reason), "%s is empty", what);
        rd_config_errors_add(errs, cfg->path, pos.line, pos.col, key, reason);
        return false;
    }
    if (keep != NULL) {
        *keep = rd_xstrndup(s, n);
        if (keep_len != NULL)
            *keep_len = n;
    }
    return true;
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

/* The token file, App key and webhook secret are read here, once: what a start
 * uses is what was checked. STORE (if not NULL) keeps them (rd_config_t's
 * secret fields); --check-config's rd_config_check_files only checks. */
static int check_files(const rd_config_t *cfg, rd_config_errors_t *errs,
                       rd_config_errors_t *warnings, rd_config_t *store)
{
    size_t before = errs->n;
    const rd_github_config_t *g = &cfg->github;
    rd_github_config_t *sg = store ? &store->github : NULL;
    char *buf = NULL, reason[512];
    size_t len = 0;
    check_config_file(cfg, warnings);
    if (g->token_file != NULL &&
        check_file(cfg, g->token_file, g->token_file_pos, "github.token_file", FILE_SECRET, errs,
                   warnings, RD_TOKEN_MAX, &buf, &len)) {
        keep_secret(cfg, buf, len, SPACE, SPACE, g->token_file, g->token_file_pos,
                    "github.token_file", errs, sg ? &sg->token : NULL, NULL);
        wipe_free(buf, len);
        buf = NULL;
    }
    if (g->private_key_file != NULL &&
        check_file(cfg, g->private_key_file, g->private_key_file_pos, "github.private_key_file",
                   FILE_SECRET, errs, warnings, RD_KEY_MAX, &buf, &len)) {
        /* Parsed as the start will parse it: a file that is not an RSA private key
         * would otherwise pass the check and fail every start (and restart). */
        rd_auth_key_t *key = NULL;
        if (rd_auth_key_load(buf, len, &key) != 0) {
            snprintf(reason, sizeof(reason),
                     "%s is not an RSA private key in PEM form (PKCS#1 \"BEGIN RSA PRIVATE KEY\" "
                     "or PKCS#8 \"BEGIN PRIVATE KEY\", not encrypted)",
                     g->private_key_file);
            rd_config_errors_add(errs, cfg->path, g->private_key_file_pos.line,
                                 g->private_key_file_pos.col, "github.private_key_file", reason);
        } else if (sg != NULL) {
            sg->private_key_pem = rd_xstrndup(buf, len);
            sg->private_key_len = len;
        }
        rd_auth_key_free(key);
        wipe_free(buf, len);
        buf = NULL;
    }
    if (g->ca_file != NULL)
        check_file(cfg, g->ca_file, g->ca_file_pos, "github.ca_file", FILE_CA, errs, warnings, 0,
                   NULL, NULL);
    if (cfg->webhook_secret_file != NULL &&
        check_file(cfg, cfg->webhook_secret_file, cfg->webhook_secret_file_pos,
                   "webhook_secret_file", FILE_SECRET, errs, warnings, RD_WEBHOOK_SECRET_MAX, &buf,
                   &len)) {
        /* Trailing newlines and spaces are an editor's, not the secret's. */
        keep_secret(cfg, buf, len, "", "\r\n ", cfg->webhook_secret_file,
                    cfg->webhook_secret_file_pos, "webhook_secret_file", errs,
                    store ? &store->webhook_secret : NULL,
                    store ? &store->webhook_secret_len : NULL);
        wipe_free(buf, len);
        buf = NULL;
    }
    if (g->token_env != NULL) {
        const char *v = env_take(g->token_env);
        if (v == NULL || v[0] == '\0') {
            snprintf(reason, sizeof(reason), "environment variable %s is not set", g->token_env);
            rd_config_errors_add(errs, cfg->path, g->token_env_pos.line, g->token_env_pos.col,
                                 "github.token_env", reason);
        } else {
            char *copy = rd_xstrdup(v);
            len = strlen(copy);
            snprintf(reason, sizeof(reason), "environment variable %s", g->token_env);
            keep_secret(cfg, copy, len, SPACE, SPACE, reason, g->token_env_pos, "github.token_env",
                        errs, sg ? &sg->token : NULL, NULL);
            wipe_free(copy, len);
        }
    }
    if (warnings != NULL)
        rd_config_warnings(cfg, warnings);
    return errs->n > before ? RD_EINVAL : RD_OK;
}

int rd_config_check_files(const rd_config_t *cfg, rd_config_errors_t *errs, FILE *warn)
{
    rd_config_errors_t warnings = {0};
    int rc = check_files(cfg, errs, &warnings, NULL);
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
    rc = check_files(cfg, errs, warnings, cfg);
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

void rd_config_print_summary(const rd_config_t *cfg, FILE *fp)
{
    char *s = rd_config_summary(cfg);
    fputs(s, fp);
    free(s);
}

void rd_config_errors_print(const rd_config_errors_t *errs, FILE *fp)
{
    char *s = rd_config_errors_format(errs);
    fputs(s, fp);
    free(s);
}
