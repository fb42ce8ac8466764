/* test_io_configfile.c: the I/O side of the configuration (src/io/configfile.c):
 * reading the file, checking the files and environment variables it names, and
 * the permission warnings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "runnerd/core/config.h"
#include "runnerd/io/configfile.h"

#define GIB (1024ULL * 1024 * 1024)

static const rd_host_facts_t facts_x64 = {
    .cores = 8, .mem_total = 32 * GIB, .arch = RD_ARCH_X64, .hostname = "Build-01.example.com"};

#define MIN_POOL                                                                                   \
    "pools:\n"                                                                                     \
    "  - name: p\n"                                                                                \
    "    labels: [self-hosted, x64]\n"                                                             \
    "    image: img\n"
#define MIN_TARGET "targets:\n  - repo: o/r\n"

/* A fresh RSA private key as PKCS#8 PEM (heap string). */
static char *rsa_pem(void)
{
    EVP_PKEY *k = EVP_RSA_gen(1024);
    assert_non_null(k);
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    /* not strndup: the BIO's data is not NUL-terminated and ASan's
     * strict_string_checks makes strndup read the whole source */
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    BIO_free(b);
    EVP_PKEY_free(k);
    return s;
}

static rd_config_t *load_ok(const char *yaml)
{
    rd_config_errors_t errs = {0};
    rd_config_t *cfg = NULL;
    int rc = rd_config_load_buffer("t.yaml", yaml, strlen(yaml), &facts_x64, &cfg, &errs);
    if (rc != 0)
        rd_config_errors_print(&errs, stdout);
    assert_int_equal(rc, 0);
    assert_non_null(cfg);
    rd_config_errors_free(&errs);
    return cfg;
}

static void test_check_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/rdcfgXXXXXX";
    assert_non_null(mkdtemp(dir));
    char tok[256], yaml[1024];
    snprintf(tok, sizeof(tok), "%s/token", dir);
    FILE *fp = fopen(tok, "w");
    assert_non_null(fp);
    fputs("ghp_secret\n", fp);
    fclose(fp);
    chmod(tok, 0644);
    snprintf(yaml, sizeof(yaml),
             "github:\n  token_file: token\n  ca_file: missing.pem\n" MIN_POOL MIN_TARGET);
    char cfgpath[300];
    snprintf(cfgpath, sizeof(cfgpath), "%s/r.yaml", dir);
    fp = fopen(cfgpath, "w");
    assert_non_null(fp);
    fputs(yaml, fp);
    fclose(fp);
    chmod(cfgpath, 0644); /* whatever the umask: only the token is warned about here */
    rd_config_errors_t errs = {0};
    rd_config_t *cfg = NULL, *cfg2 = NULL;
    assert_int_equal(rd_config_load_file(cfgpath, &facts_x64, &cfg, &errs), 0);
    char *wbuf = NULL;
    size_t wlen = 0;
    FILE *wf = open_memstream(&wbuf, &wlen);
    assert_int_equal(rd_config_check_files(cfg, &errs, wf), -2);
    fclose(wf);
    rd_config_errors_free(&errs);
    rd_config_errors_t warns = {0};
    assert_int_equal(rd_config_load_checked(cfgpath, &facts_x64, &cfg2, &errs, &warns), -2);
    assert_null(cfg2);
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.v[0].path, "github.ca_file");
    assert_int_equal(errs.v[0].line, 3);
    assert_int_equal(errs.v[0].col, 12);
    assert_non_null(strstr(errs.v[0].reason, "No such file or directory"));
    assert_int_equal(warns.n, 1);
    assert_string_equal(warns.v[0].path, "github.token_file");
    assert_int_equal(warns.v[0].line, 2);
    char *w = rd_config_error_str(&warns.v[0]);
    char want[1200];
    snprintf(want, sizeof(want),
             "%s:2:15: github.token_file: warning: %s is readable by group or others (mode "
             "644); chmod 600 it",
             cfgpath, tok);
    assert_string_equal(w, want);
    assert_null(strstr(w, "ghp_secret"));
    /* The FILE variant prints the same line. */
    assert_int_equal(strlen(wbuf), strlen(w) + 1);
    assert_memory_equal(wbuf, w, strlen(w));
    free(wbuf);
    free(w);
    rd_config_errors_free(&warns);
    rd_config_errors_free(&errs);

    /* mode 600 and the CA present: clean. */
    chmod(tok, 0600);
    char ca[300];
    snprintf(ca, sizeof(ca), "%s/missing.pem", dir);
    fp = fopen(ca, "w");
    fclose(fp);
    assert_int_equal(rd_config_check_files(cfg, &errs, NULL), 0);
    assert_int_equal(errs.n, 0);
    rd_config_free(cfg);

    /* The checked load runs both halves and frees on a failed check. */
    char *cfgfile = cfgpath;
    fp = fopen(cfgfile, "w");
    fputs("github:\n  token_file: token\n  ca_file: nope.pem\n" MIN_POOL MIN_TARGET, fp);
    fclose(fp);
    assert_int_equal(rd_config_load_checked(cfgfile, &facts_x64, &cfg, &errs, NULL), -2);
    assert_null(cfg);
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.v[0].path, "github.ca_file");
    rd_config_errors_free(&errs);
    fp = fopen(cfgfile, "w");
    fputs("github:\n  token_file: token\n  ca_file: missing.pem\n" MIN_POOL MIN_TARGET, fp);
    fclose(fp);
    assert_int_equal(rd_config_load_checked(cfgfile, &facts_x64, &cfg, &errs, &warns), 0);
    assert_non_null(cfg);
    assert_int_equal(errs.n + warns.n, 0);
    rd_config_free(cfg);
    unlink(cfgfile);

    /* token_env must be set and non-empty. */
    cfg = load_ok("github:\n  token_env: RD_TEST_TOKEN_UNSET_X\n" MIN_POOL MIN_TARGET);
    unsetenv("RD_TEST_TOKEN_UNSET_X");
    assert_int_equal(rd_config_check_files(cfg, &errs, NULL), -2);
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.v[0].reason, "environment variable RD_TEST_TOKEN_UNSET_X is not set");
    rd_config_errors_free(&errs);
    setenv("RD_TEST_TOKEN_UNSET_X", "v", 1);
    assert_int_equal(rd_config_check_files(cfg, &errs, NULL), 0);
    rd_config_free(cfg);

    unlink(tok);
    unlink(ca);
    rmdir(dir);
}

/* Who else may read or write the files runnerd trusts: warnings, never errors. */
static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    assert_int_equal(chmod(path, mode), 0);
}

static char *warnings_of(const char *cfgpath)
{
    rd_config_errors_t errs = {0}, warns = {0};
    rd_config_t *cfg = NULL;
    assert_int_equal(rd_config_load_checked(cfgpath, &facts_x64, &cfg, &errs, &warns), 0);
    assert_int_equal(errs.n, 0);
    rd_config_free(cfg);
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    rd_config_errors_print(&warns, fp);
    fclose(fp);
    rd_config_errors_free(&warns);
    return buf;
}

static void test_file_permissions(void **state)
{
    (void)state;
    char dir[] = "/tmp/rdcfgpermXXXXXX";
    assert_non_null(mkdtemp(dir));
    char cfgpath[64], tok[64], key[64], ca[64], hook[64];
    snprintf(cfgpath, sizeof(cfgpath), "%s/r.yaml", dir);
    snprintf(tok, sizeof(tok), "%s/token", dir);
    snprintf(key, sizeof(key), "%s/app.pem", dir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    snprintf(hook, sizeof(hook), "%s/hook", dir);
    write_file(cfgpath,
               "github:\n  token_file: token\n  ca_file: ca.pem\n" MIN_POOL MIN_TARGET
               "listen: 127.0.0.1:9999\nwebhook_secret_file: hook\n",
               0666);
    write_file(tok, "ghp_secret_token_value\n", 0620);
    write_file(ca, "not a real CA\n", 0664);
    write_file(hook, "webhook-secret-value\n", 0640);
    char *got = warnings_of(cfgpath);
    char want[2048];
    snprintf(want, sizeof(want),
             "%s: warning: this file is writable by group or others (mode 666): whoever can "
             "write it controls docker.extra_args, and so root; chmod go-w it\n"
             "%s:2:15: github.token_file: warning: %s is writable by group or others (mode "
             "620); chmod 600 it\n"
             "%s:3:12: github.ca_file: warning: %s is writable by group or others (mode 664): "
             "whoever can write it decides which servers runnerd trusts with its token; chmod "
             "go-w it\n"
             "%s:11:22: webhook_secret_file: warning: %s is readable by group or others (mode "
             "640); chmod 600 it\n",
             cfgpath, cfgpath, tok, cfgpath, ca, cfgpath, hook);
    if (strcmp(got, want) != 0)
        printf("--- got:\n%s--- want:\n%s---\n", got, want);
    assert_string_equal(got, want);
    assert_null(strstr(got, "ghp_secret_token_value"));
    assert_null(strstr(got, "webhook-secret-value"));
    free(got);

    /* Readable by all is fine for the config file and the CA (no secrets in
     * them); a key readable and writable by others is both. */
    chmod(cfgpath, 0644);
    chmod(ca, 0644);
    chmod(tok, 0600);
    chmod(hook, 0400);
    got = warnings_of(cfgpath);
    assert_string_equal(got, "");
    free(got);
    write_file(cfgpath, "github:\n  app_id: 1\n  private_key_file: app.pem\n" MIN_POOL MIN_TARGET,
               0640);
    char *pem = rsa_pem();
    write_file(key, pem, 0666);
    free(pem);
    got = warnings_of(cfgpath);
    snprintf(want, sizeof(want),
             "%s:3:21: github.private_key_file: warning: %s is readable and writable by group or "
             "others (mode 666); chmod 600 it\n",
             cfgpath, key);
    assert_string_equal(got, want);
    free(got);

    /* Owned by someone else: that user can chmod it at will (needs root to set up). */
    chmod(key, 0600);
    if (geteuid() == 0) {
        assert_int_equal(chown(cfgpath, 4242, 4242), 0);
        got = warnings_of(cfgpath);
        snprintf(want, sizeof(want),
                 "%s: warning: this file is owned by uid 4242, neither root nor runnerd's user "
                 "(uid 0), who can change its mode at will; chown it\n",
                 cfgpath);
        assert_string_equal(got, want);
        free(got);
    } else {
        printf("note: not root, the owner check is not exercised\n");
    }
    unlink(cfgpath);
    unlink(tok);
    unlink(key);
    unlink(ca);
    unlink(hook);
    rmdir(dir);
}

static void test_load_file(void **state)
{
    (void)state;
    rd_config_errors_t errs = {0};
    rd_config_t *cfg = NULL;
    assert_int_equal(rd_config_load_file("/nonexistent/x.yaml", &facts_x64, &cfg, &errs), -3);
    assert_null(cfg);
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    rd_config_errors_print(&errs, fp);
    fclose(fp);
    assert_string_equal(buf, "/nonexistent/x.yaml: cannot open: No such file or directory\n");
    free(buf);
    rd_config_errors_free(&errs);

    /* The shipped example loads (files are not checked by the loader). */
    assert_int_equal(rd_config_load_file(RD_SRC_DIR "/conf/runnerd.yaml", &facts_x64, &cfg, &errs),
                     0);
    assert_int_equal(errs.n, 0);
    rd_config_free(cfg);
}

/* The secrets are read once with the config and kept in it (what was checked is
 * what a start uses); a check refuses what a start would (issue 17 F5/F11/F12). */
static void test_secrets(void **state)
{
    (void)state;
    char dir[] = "/tmp/rdcfgsecXXXXXX";
    assert_non_null(mkdtemp(dir));
    char cfgpath[64], tok[64], key[64], hook[64], fifo[64];
    snprintf(cfgpath, sizeof(cfgpath), "%s/r.yaml", dir);
    snprintf(tok, sizeof(tok), "%s/token", dir);
    snprintf(key, sizeof(key), "%s/app.pem", dir);
    snprintf(hook, sizeof(hook), "%s/hook", dir);
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    rd_config_errors_t errs = {0};
    rd_config_t *cfg = NULL;

    /* token_file trimmed, webhook secret without its trailing newline. */
    write_file(tok, "  ghp_file_token \n", 0600);
    write_file(hook, "hook secret\r\n", 0600);
    write_file(cfgpath,
               "github:\n  token_file: token\n" MIN_POOL MIN_TARGET
               "listen: 127.0.0.1:9\nwebhook_secret_file: hook\n",
               0644);
    assert_int_equal(rd_config_load_checked(cfgpath, &facts_x64, &cfg, &errs, NULL), 0);
    assert_string_equal(cfg->github.token, "ghp_file_token");
    assert_int_equal(cfg->webhook_secret_len, 11);
    assert_memory_equal(cfg->webhook_secret, "hook secret", 11);
    rd_config_free(cfg);

    /* Empty secrets are refused, with file:line:col. */
    write_file(tok, " \n", 0600);
    write_file(hook, "\n\n", 0600);
    assert_int_equal(rd_config_load_checked(cfgpath, &facts_x64, &cfg, &errs, NULL), -2);
    assert_null(cfg);
    assert_int_equal(errs.n, 2);
    assert_string_equal(errs.v[0].path, "github.token_file");
    assert_int_equal(errs.v[0].line, 2);
    assert_non_null(strstr(errs.v[0].reason, " is empty"));
    assert_string_equal(errs.v[1].path, "webhook_secret_file");
    assert_int_equal(errs.v[1].line, 10);
    rd_config_errors_free(&errs);

    /* An App key that is not an RSA PEM; a FIFO as the key file does not block. */
    write_file(key, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", 0600);
    write_file(cfgpath,
               "github:\n  client_id: Iv1.abc\n  private_key_file: app.pem\n" MIN_POOL MIN_TARGET,
               0644);
    assert_int_equal(rd_config_load_checked(cfgpath, &facts_x64, &cfg, &errs, NULL), -2);
    assert_int_equal(errs.n, 1);
    assert_int_equal(errs.v[0].line, 3);
    assert_non_null(strstr(errs.v[0].reason, "is not an RSA private key in PEM form"));
    rd_config_errors_free(&errs);
    char *pem = rsa_pem();
    write_file(key, pem, 0600);
    assert_int_equal(rd_config_load_checked(cfgpath, &facts_x64, &cfg, &errs, NULL), 0);
    assert_string_equal(cfg->github.client_id, "Iv1.abc");
    assert_int_equal(cfg->github.private_key_len, strlen(pem));
    assert_memory_equal(cfg->github.private_key_pem, pem, strlen(pem));
    rd_config_free(cfg);
    free(pem);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    write_file(cfgpath, "github:\n  app_id: 1\n  private_key_file: fifo\n" MIN_POOL MIN_TARGET,
               0644);
    assert_int_equal(rd_config_load_checked(cfgpath, &facts_x64, &cfg, &errs, NULL), -2);
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.v[0].reason, "is not a regular file"));
    rd_config_errors_free(&errs);
    /* The config file itself a FIFO: refused at once. */
    assert_int_equal(rd_config_load_checked(fifo, &facts_x64, &cfg, &errs, NULL), -2);
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.v[0].reason,
                        "not a regular file (a FIFO, device or socket is refused)");
    rd_config_errors_free(&errs);

    /* token_env: copied, wiped and removed from the environment; a reload naming
     * the same variable still gets it. */
    setenv("RD_TEST_TAKEN_TOKEN", " ghp_env_token\n", 1);
    char *raw = getenv("RD_TEST_TAKEN_TOKEN");
    write_file(cfgpath, "github:\n  token_env: RD_TEST_TAKEN_TOKEN\n" MIN_POOL MIN_TARGET, 0644);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(rd_config_load_checked(cfgpath, &facts_x64, &cfg, &errs, NULL), 0);
        assert_string_equal(cfg->github.token, "ghp_env_token");
        assert_null(getenv("RD_TEST_TAKEN_TOKEN"));
        rd_config_free(cfg);
    }
    assert_null(strstr(raw, "ghp_env_token")); /* the bytes were wiped where they were */
    setenv("RD_TEST_EMPTY_TOKEN", "  ", 1);
    write_file(cfgpath, "github:\n  token_env: RD_TEST_EMPTY_TOKEN\n" MIN_POOL MIN_TARGET, 0644);
    assert_int_equal(rd_config_load_checked(cfgpath, &facts_x64, &cfg, &errs, NULL), -2);
    assert_string_equal(errs.v[0].reason, "environment variable RD_TEST_EMPTY_TOKEN is empty");
    rd_config_errors_free(&errs);

    unlink(cfgpath);
    unlink(tok);
    unlink(key);
    unlink(hook);
    unlink(fifo);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_files),
        cmocka_unit_test(test_file_permissions),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_secrets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
