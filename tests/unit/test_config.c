/* test_config.c: the config loader (src/core/config.c, src/core/yamltree.c). */
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

#include "config_int.h"
#include "runnerd/core/config.h"
#include "runnerd/core/dockerargv.h"
#include "yamltree.h"

#define GIB (1024ULL * 1024 * 1024)
#define MIB (1024ULL * 1024)

static const rd_host_facts_t facts_x64 = {
    .cores = 8, .mem_total = 32 * GIB, .arch = RD_ARCH_X64, .hostname = "Build-01.example.com"};

#define MIN_GITHUB "github:\n  token_env: GITHUB_TOKEN\n"
#define MIN_POOL                                                                                   \
    "pools:\n"                                                                                     \
    "  - name: p\n"                                                                                \
    "    labels: [self-hosted, x64]\n"                                                             \
    "    image: img\n"
#define MIN_TARGET "targets:\n  - repo: o/r\n"
#define MINIMAL MIN_GITHUB MIN_POOL MIN_TARGET

static rd_config_t *load_ok_facts(const char *yaml, const rd_host_facts_t *f)
{
    rd_config_errors_t errs = {0};
    rd_config_t *cfg = NULL;
    int rc = rd_config_load_buffer("t.yaml", yaml, strlen(yaml), f, &cfg, &errs);
    if (rc != 0) {
        char *es = rd_config_errors_format(&errs);
        fputs(es, stdout);
        free(es);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(errs.n, 0);
    assert_non_null(cfg);
    rd_config_errors_free(&errs);
    return cfg;
}

static rd_config_t *load_ok(const char *yaml)
{
    return load_ok_facts(yaml, &facts_x64);
}

/* Load YAML expecting failure; returns every error, one formatted line each. */
static char *load_errors_facts(const char *yaml, const rd_host_facts_t *f)
{
    rd_config_errors_t errs = {0};
    rd_config_t *cfg = NULL;
    int rc = rd_config_load_buffer("t.yaml", yaml, strlen(yaml), f, &cfg, &errs);
    assert_int_equal(rc, -2 /* RD_EINVAL */);
    assert_null(cfg);
    assert_true(errs.n > 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    {
        char *es = rd_config_errors_format(&errs);
        fputs(es, fp);
        free(es);
    }
    fclose(fp);
    rd_config_errors_free(&errs);
    return buf;
}

static char *load_errors(const char *yaml)
{
    return load_errors_facts(yaml, &facts_x64);
}

/* The load fails with exactly the error lines EXPECTED. */
static void expect_errors(const char *yaml, const char *expected)
{
    char *got = load_errors(yaml);
    if (strcmp(got, expected) != 0)
        printf("--- got:\n%s--- want:\n%s---\n", got, expected);
    assert_string_equal(got, expected);
    free(got);
}

/* ------------------------------------------------------------------ units */

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int rc;
        uint64_t ms;
    } cases[] = {
        {"30s", 0, 30000},
        {"5m", 0, 300000},
        {"6h", 0, 21600000},
        {"250ms", 0, 250},
        {"90", 0, 90000},
        {"0", 0, 0},
        {"1d", 0, 86400000},
        {"1h30m", 0, 5400000},
        {"1m30s", 0, 90000},
        {"", -2, 0},
        {"s", -2, 0},
        {"5x", -2, 0},
        {"-5s", -2, 0},
        {"5 s", -2, 0},
        {"1.5h", -2, 0},
        {"5S", -2, 0},
        {"99999999999999", -6, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t ms = 12345;
        int rc = rd_parse_duration_ms(cases[i].s, &ms);
        if (rc != cases[i].rc)
            fail_msg("duration \"%s\": rc %d, want %d", cases[i].s, rc, cases[i].rc);
        if (rc == 0 && ms != cases[i].ms)
            fail_msg("duration \"%s\": %llu ms, want %llu", cases[i].s, (unsigned long long)ms,
                     (unsigned long long)cases[i].ms);
    }
}

static void test_sizes(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int rc;
        uint64_t b;
    } cases[] = {
        {"512MiB", 0, 512 * MIB},
        {"4GiB", 0, 4 * GIB},
        {"1G", 0, GIB},
        {"1g", 0, GIB},
        {"1GB", 0, GIB},
        {"1gb", 0, GIB},
        {"1M", 0, MIB},
        {"1024K", 0, MIB},
        {"1024KiB", 0, MIB},
        {"1048576", 0, MIB},
        {"100b", 0, 100},
        {"100B", 0, 100},
        {"1.5g", 0, GIB + GIB / 2},
        {"2T", 0, 2048 * GIB},
        {"0.5GiB", 0, GIB / 2},
        {"", -2, 0},
        {"G", -2, 0},
        {"1X", -2, 0},
        {"1Gi", -2, 0},
        {"1GiBs", -2, 0},
        {"-1G", -2, 0},
        {"1.5", -2, 0},
        {"1.G", -2, 0},
        {"1 G", -2, 0},
        {"99999999999999999T", -6, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t b = 1;
        int rc = rd_parse_size(cases[i].s, &b);
        if (rc != cases[i].rc)
            fail_msg("size \"%s\": rc %d, want %d", cases[i].s, rc, cases[i].rc);
        if (rc == 0 && b != cases[i].b)
            fail_msg("size \"%s\": %llu, want %llu", cases[i].s, (unsigned long long)b,
                     (unsigned long long)cases[i].b);
    }
}

static void test_arch(void **state)
{
    (void)state;
    assert_int_equal(rd_arch_parse("x64"), RD_ARCH_X64);
    assert_int_equal(rd_arch_parse("AMD64"), RD_ARCH_X64);
    assert_int_equal(rd_arch_parse("x86_64"), RD_ARCH_X64);
    assert_int_equal(rd_arch_parse("arm64"), RD_ARCH_ARM64);
    assert_int_equal(rd_arch_parse("aarch64"), RD_ARCH_ARM64);
    assert_int_equal(rd_arch_parse("arm"), RD_ARCH_ARM);
    assert_int_equal(rd_arch_parse("armv7l"), RD_ARCH_ARM);
    assert_int_equal(rd_arch_parse("riscv64"), RD_ARCH_UNKNOWN);
    assert_int_equal(rd_arch_parse(NULL), RD_ARCH_UNKNOWN);
    assert_string_equal(rd_arch_name(RD_ARCH_X64), "x64");
    assert_string_equal(rd_arch_name(RD_ARCH_ARM64), "arm64");
    assert_string_equal(rd_arch_name(RD_ARCH_ARM), "arm");
}

static void test_names(void **state)
{
    (void)state;
    assert_true(rd_config_owner_valid("octo-org"));
    assert_true(rd_config_owner_valid("A1"));
    assert_true(rd_config_owner_valid("abcdefghijabcdefghijabcdefghijabcdefghi")); /* 39 */
    assert_false(rd_config_owner_valid("abcdefghijabcdefghijabcdefghijabcdefghij"));
    assert_false(rd_config_owner_valid(""));
    assert_false(rd_config_owner_valid("-octo"));
    assert_false(rd_config_owner_valid("octo_org"));
    assert_false(rd_config_owner_valid("octo.org"));
    assert_true(rd_config_repo_name_valid("hello-world"));
    assert_true(rd_config_repo_name_valid(".github"));
    assert_true(rd_config_repo_name_valid("a_b.c-d"));
    assert_false(rd_config_repo_name_valid("."));
    assert_false(rd_config_repo_name_valid(".."));
    assert_false(rd_config_repo_name_valid(""));
    assert_false(rd_config_repo_name_valid("a/b"));
    assert_false(rd_config_repo_name_valid("a b"));
    char longname[102];
    memset(longname, 'a', 101);
    longname[101] = '\0';
    assert_false(rd_config_repo_name_valid(longname));
    longname[100] = '\0';
    assert_true(rd_config_repo_name_valid(longname));
}

/* runnerd-<instance>-<pool>-<14-character suffix> must fit GitHub's 64 characters:
 * instance + pool at most 40. */
static void test_runner_name_length(void **state)
{
    (void)state;
    /* 20 + 20 = 40: fits exactly. */
    rd_config_t *cfg = load_ok(MIN_GITHUB "instance: aaaaaaaaaabbbbbbbbbb\n"
                                          "pools:\n  - name: ccccccccccdddddddddd\n"
                                          "    labels: [self-hosted]\n    image: img\n" MIN_TARGET);
    char *name = NULL;
    assert_int_equal(
        rd_dockerargv_runner_name(cfg->instance, cfg->pools[0].name, 1796000000000LL, 12345, &name),
        0);
    assert_int_equal(strlen(name), 64);
    free(name);
    rd_config_free(cfg);
    /* 20 + 21 = 41: refused at the pool's name, not at run time. */
    expect_errors(MIN_GITHUB "instance: aaaaaaaaaabbbbbbbbbb\n"
                             "pools:\n  - name: ccccccccccdddddddddde\n"
                             "    labels: [self-hosted]\n    image: img\n" MIN_TARGET,
                  "t.yaml:5:11: pools[0].name: runner names "
                  "\"runnerd-aaaaaaaaaabbbbbbbbbb-ccccccccccdddddddddde-\" + a 14-character suffix "
                  "would be 65 characters, over GitHub's 64: instance and pool name together may "
                  "have at most 40 characters\n");
    /* The instance derived from the hostname counts too (at most 32 characters). */
    static const rd_host_facts_t longhost = {.cores = 8,
                                             .mem_total = 32 * GIB,
                                             .arch = RD_ARCH_X64,
                                             .hostname =
                                                 "ci-builder-0123456789abcdefghijkl.example"};
    char *got =
        load_errors_facts(MIN_GITHUB "pools:\n  - name: linux-x64\n"
                                     "    labels: [self-hosted]\n    image: img\n" MIN_TARGET,
                          &longhost);
    assert_non_null(strstr(got, "t.yaml:4:11: pools[0].name: runner names "
                                "\"runnerd-ci-builder-0123456789abcdefghijk-linux-x64-\""));
    free(got);
}

/* ------------------------------------------------------------------ yamltree */

static void test_yamltree_positions(void **state)
{
    (void)state;
    const char *y = "a: 1\nb:\n  - x\n  - {c: 'd'}\n";
    rd_ynode_t *root = NULL;
    rd_yaml_error_t err;
    assert_int_equal(rd_yaml_parse(y, strlen(y), &root, &err), 0);
    assert_non_null(root);
    assert_int_equal(root->kind, RD_YNODE_MAP);
    assert_int_equal(root->u.map.n, 2);
    const rd_ynode_t *b = root->u.map.v[1].value;
    assert_int_equal(b->kind, RD_YNODE_SEQ);
    assert_int_equal(b->line, 3);
    assert_int_equal(b->col, 3);
    const rd_ynode_t *m = b->u.seq.v[1];
    assert_int_equal(m->kind, RD_YNODE_MAP);
    assert_int_equal(m->line, 4);
    assert_int_equal(m->col, 5);
    const rd_ynode_t *d = m->u.map.v[0].value;
    assert_string_equal(d->u.scalar.s, "d");
    assert_true(d->u.scalar.quoted);
    assert_int_equal(d->col, 9);
    rd_ynode_free(root);

    /* Syntax errors carry libyaml's mark, 1-based. */
    const char *bad = "a: 1\nb: [1, 2\n";
    assert_int_equal(rd_yaml_parse(bad, strlen(bad), &root, &err), -2);
    assert_null(root);
    assert_int_equal(err.line, 3);
    assert_non_null(strstr(err.reason, "YAML syntax error"));

    const char *alias = "a: &x 1\nb: *x\n";
    assert_int_equal(rd_yaml_parse(alias, strlen(alias), &root, &err), -2);
    assert_int_equal(err.line, 2);
    assert_int_equal(err.col, 4);

    const char *empty = "";
    assert_int_equal(rd_yaml_parse(empty, 0, &root, &err), 0);
    assert_null(root);

    /* Deep nesting is refused, not recursed into. */
    char deep[300];
    memset(deep, '[', 200);
    deep[200] = '\0';
    assert_int_equal(rd_yaml_parse(deep, 200, &root, &err), -2);
    assert_null(root);
}

/* ------------------------------------------------------------------ loading */

static void test_defaults(void **state)
{
    (void)state;
    rd_config_t *cfg = load_ok(MINIMAL);
    assert_string_equal(cfg->path, "t.yaml");
    assert_string_equal(cfg->github.api_url, "https://api.github.com");
    assert_string_equal(cfg->github.token_env, "GITHUB_TOKEN");
    assert_null(cfg->github.token_file);
    assert_int_equal(cfg->github.app_id, 0);
    assert_int_equal(cfg->github.poll_interval_ms, 15000);
    assert_int_equal(cfg->github.request_budget_per_hour, 4000);
    assert_int_equal(cfg->github.max_connections, 8);
    assert_null(cfg->github.ca_file);
    assert_true(cfg->host.cpus == 8.0);
    assert_int_equal(cfg->host.memory, 31 * GIB);
    assert_int_equal(cfg->host.arch, RD_ARCH_X64);
    assert_int_equal(cfg->host.gpus, 0);
    assert_int_equal(cfg->host.max_runners, 16);
    assert_string_equal(cfg->docker.binary, "docker");
    assert_string_equal(cfg->docker.network, "bridge");
    assert_int_equal(cfg->docker.nextra_args, 0);
    assert_int_equal(cfg->shutdown_grace_ms, 600000);
    assert_string_equal(cfg->instance, "build-01-example-com");
    assert_null(cfg->listen);
    assert_null(cfg->webhook_secret_file);
    assert_int_equal(cfg->npools, 1);
    rd_pool_t *p = &cfg->pools[0];
    assert_string_equal(p->name, "p");
    assert_int_equal(p->nlabels, 2);
    assert_string_equal(p->labels[1], "x64");
    assert_string_equal(p->image, "img");
    assert_int_equal(p->ncommand, 0);
    assert_true(p->cpus == 1.0);
    assert_int_equal(p->memory, 2 * GIB);
    assert_int_equal(p->gpus, 0);
    assert_int_equal(p->pids_limit, 4096);
    assert_int_equal(p->allow_new_privileges, 0); /* no_new_privileges: true by default */
    assert_int_equal(p->memory_swap, 0);          /* docker --memory-swap = memory: no swap */
    assert_string_equal(p->log_driver, "none");
    assert_int_equal(p->pull, RD_PULL_MISSING);
    assert_null(p->runtime);
    assert_null(p->platform);
    assert_int_equal(p->max_runners, 16);
    assert_int_equal(p->min_idle, 0);
    assert_string_equal(p->runner_group, "Default");
    assert_int_equal(p->startup_timeout_ms, 300000);
    assert_int_equal(p->idle_timeout_ms, 600000);
    assert_int_equal(p->job_timeout_ms, 6 * 3600000);
    assert_int_equal(p->nenv, 0);
    assert_int_equal(p->arch, RD_ARCH_X64);
    assert_false(p->emulated);
    assert_int_equal(p->pos.line, 4);
    assert_int_equal(p->pos.col, 5);
    assert_int_equal(cfg->ntargets, 1);
    rd_target_t *t = &cfg->targets[0];
    assert_int_equal(t->kind, RD_TARGET_REPO);
    assert_string_equal(t->owner, "o");
    assert_string_equal(t->repo, "r");
    assert_string_equal(t->scope, "repos/o/r");
    assert_int_equal(t->npools, 1);
    assert_int_equal(t->pools[0], 0);
    rd_config_free(cfg);
}

static const char *full_yaml = "github:\n"
                               "  api_url: https://ghe.example.com/api/v3//\n"
                               "  app_id: 123456\n"
                               "  private_key_file: keys/app.pem\n"
                               "  installation_id: 789\n"
                               "  poll_interval: 1m30s\n"
                               "  request_budget: 100/m\n"
                               "  max_connections: 64\n"
                               "  ca_file: /etc/ssl/ca.pem\n"
                               "host:\n"
                               "  cpus: 3.5\n"
                               "  memory: 12GiB\n"
                               "  arch: aarch64\n"
                               "  gpus: 2\n"
                               "  max_runners: 5\n"
                               "docker:\n"
                               "  binary: /usr/bin/podman\n"
                               "  network: host\n"
                               "  extra_args: [--dns, 10.0.0.53, \"--add-host=a:1.2.3.4\"]\n"
                               "shutdown_grace: 0\n"
                               "instance: ci-1\n"
                               "listen: '[::1]:9464'\n"
                               "webhook_secret_file: /etc/runnerd/hook\n"
                               "pools:\n"
                               "  - name: arm\n"
                               "    labels: [self-hosted, Linux, ARM64, gpu]\n"
                               "    image: ghcr.io/x/runner:1\n"
                               "    command: /run.sh\n"
                               "    cpus: 0.5\n"
                               "    memory: 1.5g\n"
                               "    gpus: 1\n"
                               "    pids_limit: 16\n"
                               "    no_new_privileges: false\n"
                               "    memory_swap: 3GiB\n"
                               "    log_driver: json-file\n"
                               "    pull: never\n"
                               "    runtime: runsc\n"
                               "    max_runners: 3\n"
                               "    min_idle: 3\n"
                               "    runner_group: Builders\n"
                               "    startup_timeout: 1s\n"
                               "    idle_timeout: 90\n"
                               "    job_timeout: 7d\n"
                               "    env:\n"
                               "      FOO: bar\n"
                               "      N: 1\n"
                               "      EMPTY: ''\n"
                               "  - name: x86\n"
                               "    labels: [self-hosted, amd64]\n"
                               "    image: img\n"
                               "    platform: linux/amd64\n"
                               "    command: [a, b]\n"
                               "targets:\n"
                               "  - org: Octo-Org\n"
                               "    repos: [api, web]\n"
                               "    pools: [x86, arm]\n"
                               "  - repo: octo-org/api\n"
                               "    pools: [arm]\n"
                               "  - org: other\n";

static void test_full(void **state)
{
    (void)state;
    rd_config_t *cfg = load_ok(full_yaml);
    rd_github_config_t *g = &cfg->github;
    assert_string_equal(g->api_url, "https://ghe.example.com/api/v3");
    assert_int_equal(g->app_id, 123456);
    assert_string_equal(g->private_key_file, "keys/app.pem"); /* t.yaml has no folder */
    assert_int_equal(g->installation_id, 789);
    assert_int_equal(g->poll_interval_ms, 90000);
    assert_int_equal(g->request_budget_per_hour, 6000);
    assert_int_equal(g->max_connections, 64);
    assert_string_equal(g->ca_file, "/etc/ssl/ca.pem");
    assert_int_equal(g->ca_file_pos.line, 9);
    assert_int_equal(g->ca_file_pos.col, 12);
    assert_true(cfg->host.cpus == 3.5);
    assert_int_equal(cfg->host.memory, 12 * GIB);
    assert_int_equal(cfg->host.arch, RD_ARCH_ARM64);
    assert_int_equal(cfg->host.gpus, 2);
    assert_int_equal(cfg->host.max_runners, 5);
    assert_string_equal(cfg->docker.binary, "/usr/bin/podman");
    assert_string_equal(cfg->docker.network, "host");
    assert_int_equal(cfg->docker.nextra_args, 3);
    assert_string_equal(cfg->docker.extra_args[0], "--dns");
    assert_string_equal(cfg->docker.extra_args[2], "--add-host=a:1.2.3.4");
    assert_int_equal(cfg->shutdown_grace_ms, 0);
    assert_string_equal(cfg->instance, "ci-1");
    assert_string_equal(cfg->listen, "[::1]:9464");
    assert_string_equal(cfg->webhook_secret_file, "/etc/runnerd/hook");

    rd_pool_t *a = &cfg->pools[0];
    assert_int_equal(a->nlabels, 4);
    assert_string_equal(a->labels[2], "ARM64");
    assert_int_equal(a->ncommand, 1);
    assert_string_equal(a->command[0], "/run.sh");
    assert_true(a->cpus == 0.5);
    assert_int_equal(a->memory, GIB + GIB / 2);
    assert_int_equal(a->gpus, 1);
    assert_int_equal(a->pids_limit, 16);
    assert_int_equal(a->allow_new_privileges, 1);
    assert_int_equal(a->memory_swap, 3 * GIB);
    assert_string_equal(a->log_driver, "json-file");
    assert_int_equal(a->pull, RD_PULL_NEVER);
    assert_string_equal(a->runtime, "runsc");
    assert_int_equal(a->max_runners, 3);
    assert_int_equal(a->min_idle, 3);
    assert_string_equal(a->runner_group, "Builders");
    assert_int_equal(a->startup_timeout_ms, 1000);
    assert_int_equal(a->idle_timeout_ms, 90000);
    assert_int_equal(a->job_timeout_ms, 7ULL * 24 * 3600000);
    assert_int_equal(a->nenv, 3);
    assert_string_equal(a->env_keys[1], "N");
    assert_string_equal(a->env_vals[1], "1");
    assert_string_equal(a->env_vals[2], "");
    assert_int_equal(a->arch, RD_ARCH_ARM64);
    assert_false(a->emulated);

    rd_pool_t *x = &cfg->pools[1];
    assert_int_equal(x->arch, RD_ARCH_X64);
    assert_true(x->emulated);
    assert_string_equal(x->platform, "linux/amd64");
    assert_int_equal(x->ncommand, 2);
    assert_int_equal(x->max_runners, 5); /* host.max_runners */

    rd_target_t *t = &cfg->targets[0];
    assert_int_equal(t->kind, RD_TARGET_ORG);
    assert_string_equal(t->scope, "orgs/Octo-Org");
    assert_null(t->repo);
    assert_int_equal(t->nrepos, 2);
    assert_string_equal(t->repos[1], "web");
    assert_int_equal(t->npools, 2);
    assert_int_equal(t->pools[0], 1);
    assert_int_equal(t->pools[1], 0);
    assert_int_equal(cfg->targets[1].npools, 1);
    assert_int_equal(cfg->targets[2].npools, 2);

    /* A repo target wins over an org target covering the repo; case-insensitive. */
    assert_int_equal(rd_config_target_for_repo(cfg, "octo-org/api"), 1);
    assert_int_equal(rd_config_target_for_repo(cfg, "OCTO-ORG/API"), 1);
    assert_int_equal(rd_config_target_for_repo(cfg, "octo-org/web"), 0);
    assert_int_equal(rd_config_target_for_repo(cfg, "octo-org/other"), -1);
    assert_int_equal(rd_config_target_for_repo(cfg, "other/anything"), 2);
    assert_int_equal(rd_config_target_for_repo(cfg, "nobody/x"), -1);
    assert_int_equal(rd_config_target_for_repo(cfg, "noslash"), -1);
    assert_int_equal(rd_config_target_for_repo(cfg, "octo/"), -1);
    assert_int_equal(rd_config_pool_index(cfg, "x86"), 1);
    assert_int_equal(rd_config_pool_index(cfg, "nope"), -1);

    /* Fit: arm: min(3, 5, 3.5/0.5=7, 12/1.5=8, gpus 2/1=2) = 2 by host_gpus. */
    const char *why = NULL;
    assert_int_equal(rd_config_pool_fit(cfg, 0, &why), 2);
    assert_string_equal(why, "host_gpus");
    /* x86: min(5 pool, 5 host, 3.5/1=3, 12/2=6) = 3 by host_cpus. */
    assert_int_equal(rd_config_pool_fit(cfg, 1, &why), 3);
    assert_string_equal(why, "host_cpus");

    char *buf = rd_config_summary(cfg);
    assert_non_null(strstr(buf, "host: arch arm64, cpus 3.5, memory 12GiB, gpus 2, max_runners 5"));
    assert_non_null(strstr(buf, "auth app 123456 (installation 789)"));
    assert_non_null(strstr(buf, "arch x64 (emulated, platform linux/amd64)"));
    assert_non_null(strstr(buf, "fits 2 at once on this host (bound by host_gpus)"));
    assert_non_null(strstr(buf, "orgs/Octo-Org: repos api, web; pools x86, arm"));
    assert_null(strstr(buf, "BEGIN")); /* no key material, of course */
    free(buf);
    rd_config_free(cfg);
}

static void test_relative_paths(void **state)
{
    (void)state;
    const char *y =
        "github:\n  token_file: secrets/token\n  ca_file: ../ca.pem\n" MIN_POOL MIN_TARGET
        "listen: localhost:1\nwebhook_secret_file: hook\n";
    rd_config_errors_t errs = {0};
    rd_config_t *cfg = NULL;
    assert_int_equal(
        rd_config_load_buffer("/etc/runnerd/r.yaml", y, strlen(y), &facts_x64, &cfg, &errs), 0);
    assert_string_equal(cfg->github.token_file, "/etc/runnerd/secrets/token");
    assert_string_equal(cfg->github.ca_file, "/etc/runnerd/../ca.pem");
    assert_string_equal(cfg->webhook_secret_file, "/etc/runnerd/hook");
    rd_config_free(cfg);
    rd_config_errors_free(&errs);
}

static void test_auto_facts(void **state)
{
    (void)state;
    /* Small host: keep half of the memory rather than leave nothing. */
    rd_host_facts_t small = {
        .cores = 2, .mem_total = 2 * GIB, .arch = RD_ARCH_ARM64, .hostname = "--Weird_Host!!--"};
    const char *y = MIN_GITHUB "pools:\n  - name: p\n    labels: [self-hosted]\n    image: i\n"
                               "    memory: 512MiB\n" MIN_TARGET;
    rd_config_t *cfg = load_ok_facts(y, &small);
    assert_true(cfg->host.cpus == 2.0);
    assert_int_equal(cfg->host.memory, GIB);
    assert_int_equal(cfg->host.arch, RD_ARCH_ARM64);
    assert_string_equal(cfg->instance, "weird-host");
    assert_int_equal(cfg->pools[0].arch, RD_ARCH_ARM64); /* no arch label: the host's */
    assert_false(cfg->pools[0].emulated);
    rd_config_free(cfg);

    /* Explicit values win over the facts, even unknowable ones. */
    rd_host_facts_t none = {.cores = 0, .mem_total = 0, .arch = RD_ARCH_UNKNOWN, .hostname = ""};
    const char *y2 = "host: {cpus: 4, memory: 8G, arch: x64}\ninstance: box\n" MINIMAL;
    cfg = load_ok_facts(y2, &none);
    assert_true(cfg->host.cpus == 4.0);
    assert_int_equal(cfg->host.memory, 8 * GIB);
    assert_int_equal(cfg->host.arch, RD_ARCH_X64);
    rd_config_free(cfg);

    /* auto with nothing known is an error per fact. */
    char *got = load_errors_facts(MINIMAL, &none);
    assert_string_equal(got,
                        "t.yaml:1:1: host.cpus: cannot count this host's cores; set cpus "
                        "explicitly\n"
                        "t.yaml:1:1: host.memory: cannot read this host's memory size; set "
                        "memory explicitly\n"
                        "t.yaml:1:1: host.arch: this host's architecture is not one runnerd "
                        "knows; set arch explicitly\n"
                        "t.yaml:1:1: instance: cannot derive it from the hostname; set instance "
                        "explicitly\n");
    free(got);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    expect_errors("github:\n\ttoken_env: X\n",
                  "t.yaml:2:1: YAML syntax error: tab character; indent with spaces\n");
    expect_errors("", "t.yaml:1:1: the file is empty: github, pools and targets are required\n");
    expect_errors("- a\n- b\n", "t.yaml:1:1: must be a mapping, not a list\n");
    expect_errors("a: 1\n---\nb: 2\n", "t.yaml:2:1: only one YAML document is allowed\n");
    expect_errors("github: &g {token_env: X}\nhost: *g\n",
                  "t.yaml:2:7: YAML aliases (*g) are not supported\n");
}

static void test_key_errors(void **state)
{
    (void)state;
    expect_errors(MINIMAL "bogus: 1\ngithub:\n  token_env: Y\n",
                  "t.yaml:9:1: bogus: unknown key\n"
                  "t.yaml:10:1: github: duplicate key (first at line 1)\n");
    expect_errors("github:\n  token_env: A\n  tokenenv: B\n  token_env: C\n" MIN_POOL MIN_TARGET,
                  "t.yaml:3:3: github.tokenenv: unknown key (did you mean token_env?)\n"
                  "t.yaml:4:3: github.token_env: duplicate key (first at line 2)\n");
    expect_errors("github: {token_env: X}\n",
                  "t.yaml:1:1: pools: is required (a list of at least one pool)\n"
                  "t.yaml:1:1: targets: is required (a list of repos and orgs to serve)\n");
    expect_errors(MIN_POOL MIN_TARGET,
                  "t.yaml:1:1: github: is required (it holds the API URL and credentials)\n");
    expect_errors("github: []\n" MIN_POOL MIN_TARGET,
                  "t.yaml:1:9: github: must be a mapping, not a list\n");
    expect_errors(MINIMAL "? [a]\n: 1\n", "t.yaml:9:3: keys must be strings, not a list\n");
}

static void test_auth(void **state)
{
    (void)state;
    expect_errors("github:\n  api_url: https://x\n" MIN_POOL MIN_TARGET,
                  "t.yaml:2:3: github: no credentials: set one of token_file, token_env or "
                  "app_id + private_key_file\n");
    expect_errors("github:\n  token_file: /t\n  token_env: T\n  app_id: 1\n  private_key_file: "
                  "/k\n" MIN_POOL MIN_TARGET,
                  "t.yaml:3:3: github.token_env: only one authentication method may be set "
                  "(token_file is already set at line 2)\n"
                  "t.yaml:4:3: github.app_id: only one authentication method may be set "
                  "(token_file is already set at line 2)\n");
    expect_errors("github:\n  app_id: 5\n" MIN_POOL MIN_TARGET,
                  "t.yaml:2:3: github.app_id: needs private_key_file\n");
    expect_errors("github:\n  private_key_file: k.pem\n" MIN_POOL MIN_TARGET,
                  "t.yaml:2:3: github.private_key_file: needs app_id or client_id\n");
    expect_errors(
        "github:\n  token_env: T\n  installation_id: 4\n" MIN_POOL MIN_TARGET,
        "t.yaml:3:3: github.installation_id: only applies to a GitHub App (app_id or client_id)\n");
    expect_errors("github:\n  token_env: 1X\n" MIN_POOL MIN_TARGET,
                  "t.yaml:2:14: github.token_env: \"1X\" is not an environment variable name\n");
}

static void test_github_values(void **state)
{
    (void)state;
    expect_errors("github:\n  token_env: T\n  api_url: ftp://x\n  poll_interval: 2h\n"
                  "  request_budget: 10/s\n  max_connections: 65\n  app_id: -3\n"
                  "  private_key_file: [a]\n" MIN_POOL MIN_TARGET,
                  "t.yaml:3:12: github.api_url: must be an http:// or https:// URL, not "
                  "\"ftp://x\"\n"
                  "t.yaml:4:18: github.poll_interval: must be between 1s and 1h\n"
                  "t.yaml:5:19: github.request_budget: \"10/s\" is not a rate (use N/h, N/m, "
                  "or N per hour)\n"
                  "t.yaml:6:20: github.max_connections: must be between 1 and 64\n"
                  "t.yaml:7:3: github.app_id: only one authentication method may be set "
                  "(token_env is already set at line 2)\n"
                  "t.yaml:7:11: github.app_id: must be between 1 and 999999999999\n"
                  "t.yaml:8:21: github.private_key_file: must be a string, not a list\n");
    expect_errors("github:\n  token_env: T\n  request_budget: 20000/m\n" MIN_POOL MIN_TARGET,
                  "t.yaml:3:19: github.request_budget: must be between 1/h and 1000000/h\n");
    expect_errors("github:\n  token_env: T\n  poll_interval: soon\n" MIN_POOL MIN_TARGET,
                  "t.yaml:3:18: github.poll_interval: \"soon\" is not a duration (use 30s, 5m, "
                  "6h, 250ms or seconds)\n");
    rd_config_t *cfg = load_ok("github:\n  token_env: T\n  request_budget: 5000\n"
                               "  api_url: http://127.0.0.1:8080/\n" MIN_POOL MIN_TARGET);
    assert_int_equal(cfg->github.request_budget_per_hour, 5000);
    assert_string_equal(cfg->github.api_url, "http://127.0.0.1:8080");
    assert_int_equal(cfg->github.api_url_pos.line, 4);
    rd_config_free(cfg);
    /* Plain http:// only to loopback: the token goes with every request (17 F7). */
    const char *http_ok[] = {"http://localhost", "http://127.9.0.1", "http://[::1]:1/x",
                             "http://u@127.0.0.1:9", "https://10.0.0.1"};
    for (size_t i = 0; i < sizeof http_ok / sizeof *http_ok; i++) {
        char y[256];
        snprintf(y, sizeof y, "github:\n  token_env: T\n  api_url: %s\n" MIN_POOL MIN_TARGET,
                 http_ok[i]);
        rd_config_free(load_ok(y));
    }
    const char *http_bad[] = {"http://api.github.com", "http://127.1", "http://127.0.0.1.x",
                              "http://10.0.0.1/api/v3", "http://127.0.0.1@evil.example"};
    for (size_t i = 0; i < sizeof http_bad / sizeof *http_bad; i++) {
        char y[256];
        snprintf(y, sizeof y, "github:\n  token_env: T\n  api_url: %s\n" MIN_POOL MIN_TARGET,
                 http_bad[i]);
        expect_errors(y, "t.yaml:3:12: github.api_url: plain http:// would send the token in "
                         "clear text: use https:// (http:// is accepted only for a loopback host: "
                         "127.0.0.0/8, ::1, localhost)\n");
    }
}

static void test_host_values(void **state)
{
    (void)state;
    expect_errors("host:\n  cpus: 0\n  memory: 5MiB\n  arch: sparc\n  gpus: x\n"
                  "  max_runners: 0\n" MINIMAL,
                  "t.yaml:2:9: host.cpus: must be > 0\n"
                  "t.yaml:3:11: host.memory: must be at least 6MiB\n"
                  "t.yaml:4:9: host.arch: \"sparc\" is not one of auto, x64, arm64, arm\n"
                  "t.yaml:5:9: host.gpus: must be a whole number, not \"x\"\n"
                  "t.yaml:6:16: host.max_runners: must be between 1 and 1024\n");
    expect_errors("host:\n  cpus: -1\n  memory: lots\n" MINIMAL,
                  "t.yaml:2:9: host.cpus: must be > 0\n"
                  "t.yaml:3:11: host.memory: \"lots\" is not a size (use 512MiB, 4GiB, 1G or "
                  "bytes)\n");
    expect_errors("host:\n  cpus: 1.2345\n" MINIMAL,
                  "t.yaml:2:9: host.cpus: must be a number of CPUs such as 2 or 0.5, not "
                  "\"1.2345\"\n");
}

static void test_pool_values(void **state)
{
    (void)state;
    expect_errors(MIN_GITHUB MIN_TARGET
                  "pools:\n"
                  "  - name: Bad Name\n"
                  "    labels: []\n"
                  "    image: -rm\n"
                  "    cpus: 0\n"
                  "    memory: 1M\n"
                  "    pids_limit: 8\n"
                  "    pull: sometimes\n"
                  "    max_runners: 2\n"
                  "    min_idle: 3\n"
                  "    startup_timeout: 0s\n"
                  "    job_timeout: 8d\n"
                  "    env: {JIT: 1, 2X: a, ACTIONS_RUNNER_INPUT_JITCONFIG: x, "
                  "E: }\n"
                  "    extra: 1\n",
                  "t.yaml:6:11: pools[0].name: \"Bad Name\" is not a pool name "
                  "([a-z0-9][a-z0-9_.-]*, at most 40 characters)\n"
                  "t.yaml:7:13: pools[0].labels: must hold at least one label\n"
                  "t.yaml:8:12: pools[0].image: \"-rm\" is not an image name (no leading '-', no "
                  "spaces)\n"
                  "t.yaml:9:11: pools[0].cpus: must be > 0\n"
                  "t.yaml:10:13: pools[0].memory: must be at least 6MiB\n"
                  "t.yaml:11:17: pools[0].pids_limit: must be between 16 and 4194304\n"
                  "t.yaml:12:11: pools[0].pull: \"sometimes\" is not one of missing, always, "
                  "never\n"
                  "t.yaml:14:15: pools[0].min_idle: 3 is more than max_runners (2)\n"
                  "t.yaml:15:22: pools[0].startup_timeout: must be between 1s and 24h\n"
                  "t.yaml:16:18: pools[0].job_timeout: must be between 1s and 7d\n"
                  "t.yaml:17:19: pools[0].env.2X: not an environment variable name "
                  "([A-Za-z_][A-Za-z0-9_]*)\n"
                  "t.yaml:17:26: pools[0].env.ACTIONS_RUNNER_INPUT_JITCONFIG: reserved: runnerd "
                  "sets it to the runner's JIT configuration\n"
                  "t.yaml:17:64: pools[0].env.E: must be a string (write \"\" for an empty "
                  "value)\n"
                  "t.yaml:18:5: pools[0].extra: unknown key\n");
    expect_errors(MIN_GITHUB MIN_TARGET "pools:\n  - labels: [a]\n  - name: q\n    image: i\n"
                                        "  - 7\n",
                  "t.yaml:6:5: pools[0].name: is required\n"
                  "t.yaml:6:5: pools[0].image: is required\n"
                  "t.yaml:7:5: pools[1].labels: is required\n"
                  "t.yaml:9:5: pools[2]: must be a mapping, not a string\n");
    expect_errors(MIN_GITHUB MIN_TARGET "pools: []\n",
                  "t.yaml:5:8: pools: must hold at least one pool\n");
    expect_errors(MIN_GITHUB MIN_TARGET "pools: {a: 1}\n",
                  "t.yaml:5:8: pools: must be a list of pools, not a mapping\n");
}

static void test_labels(void **state)
{
    (void)state;
    expect_errors(MIN_GITHUB MIN_TARGET "pools:\n  - name: p\n    image: i\n"
                                        "    labels: [ok, 'a,b', '', ' sp', OK, [x], "
                                        "\"tab\\there\"]\n",
                  "t.yaml:8:18: pools[0].labels[1]: not a label GitHub accepts (1-256 "
                  "characters, no commas, no control characters, no leading or trailing space)\n"
                  "t.yaml:8:25: pools[0].labels[2]: not a label GitHub accepts (1-256 "
                  "characters, no commas, no control characters, no leading or trailing space)\n"
                  "t.yaml:8:29: pools[0].labels[3]: not a label GitHub accepts (1-256 "
                  "characters, no commas, no control characters, no leading or trailing space)\n"
                  "t.yaml:8:36: pools[0].labels[4]: duplicate label \"OK\" (labels compare "
                  "case-insensitively)\n"
                  "t.yaml:8:40: pools[0].labels[5]: must be a string, not a list\n"
                  "t.yaml:8:45: pools[0].labels[6]: not a label GitHub accepts (1-256 "
                  "characters, no commas, no control characters, no leading or trailing space)\n");
    /* 101 labels; and a 257-character one. */
    char *y = malloc(8192);
    strcpy(y, MIN_GITHUB MIN_TARGET "pools:\n  - name: p\n    image: i\n    labels: [");
    for (int i = 0; i < 101; i++)
        sprintf(y + strlen(y), "%sl%d", i ? ", " : "", i);
    strcat(y, "]\n");
    expect_errors(y, "t.yaml:8:13: pools[0].labels: 101 labels: GitHub allows at most 100\n");
    free(y);
    char big[400];
    memset(big, 'z', 257);
    big[257] = '\0';
    char *y2 = NULL;
    size_t n = 0;
    FILE *fp = open_memstream(&y2, &n);
    fprintf(fp, MIN_GITHUB MIN_TARGET "pools:\n  - name: p\n    image: i\n    labels: [%s]\n", big);
    fclose(fp);
    char *got = load_errors(y2);
    assert_non_null(strstr(got, "pools[0].labels[0]: not a label GitHub accepts"));
    free(got);
    big[256] = '\0';
    free(y2);
    fp = open_memstream(&y2, &n);
    fprintf(fp, MIN_GITHUB MIN_TARGET "pools:\n  - name: p\n    image: i\n    labels: [%s]\n", big);
    fclose(fp);
    rd_config_t *cfg = load_ok(y2);
    assert_int_equal(strlen(cfg->pools[0].labels[0]), 256);
    rd_config_free(cfg);
    free(y2);
}

static void test_arch_checks(void **state)
{
    (void)state;
    expect_errors(MIN_GITHUB MIN_TARGET "pools:\n  - name: p\n    image: i\n"
                                        "    labels: [self-hosted, linux, arm64]\n",
                  "t.yaml:8:34: pools[0].labels[2]: arm64 runners cannot run natively on this x64 "
                  "host; set platform: linux/arm64 to run them under emulation\n");
    expect_errors(MIN_GITHUB MIN_TARGET "pools:\n  - name: p\n    image: i\n"
                                        "    labels: [x64, aarch64]\n"
                                        "    platform: linux/arm64\n"
                                        "  - name: q\n    image: i\n    labels: [arm]\n"
                                        "    platform: linux/riscv64\n"
                                        "  - name: r\n    image: i\n    labels: [arm]\n"
                                        "    platform: arm64\n",
                  "t.yaml:8:19: pools[0].labels[1]: names a second architecture (arm64, after "
                  "x64)\n"
                  "t.yaml:9:15: pools[0].platform: linux/arm64 does not match the pool's x64 "
                  "label\n"
                  "t.yaml:13:15: pools[1].platform: unknown architecture \"riscv64\" (runnerd "
                  "knows amd64, arm64, arm)\n"
                  "t.yaml:17:15: pools[2].platform: \"arm64\" is not a platform such as "
                  "linux/arm64 (os/arch[/variant])\n");
}

static void test_capacity_checks(void **state)
{
    (void)state;
    expect_errors("host: {cpus: 2, memory: 4GiB, gpus: 0}\n" MIN_GITHUB MIN_TARGET
                  "pools:\n  - name: p\n    image: i\n    labels: [x64]\n"
                  "    cpus: 3\n    memory: 5G\n    gpus: 1\n",
                  "t.yaml:10:11: pools[0].cpus: 3 per runner is more than host.cpus (2): no "
                  "runner could start\n"
                  "t.yaml:11:13: pools[0].memory: 5GiB per runner is more than host.memory "
                  "(4GiB): no runner could start\n"
                  "t.yaml:12:11: pools[0].gpus: 1 per runner is more than host.gpus (0): no "
                  "runner could start\n");
    /* Defaults are checked too, at the pool. */
    expect_errors("host: {memory: 1GiB}\n" MINIMAL,
                  "t.yaml:5:5: pools[0].memory: 2GiB per runner is more than host.memory "
                  "(1GiB): no runner could start\n");
}

static void test_targets(void **state)
{
    (void)state;
    expect_errors(MIN_GITHUB MIN_POOL
                  "targets:\n"
                  "  - repo: octo\n"
                  "  - repo: -octo/x\n"
                  "  - repo: octo/..\n"
                  "  - repo: a/b/c\n"
                  "  - org: octo_org\n"
                  "  - repo: o/r\n    org: o\n"
                  "  - {}\n"
                  "  - repo: o/r\n    repos: [x]\n"
                  "  - org: o\n    repos: [a, A, 'b c']\n    pools: [p, nope, p]\n"
                  "  - repo: O/R\n"
                  "  - org: q\n    pools: []\n",
                  "t.yaml:8:11: targets[0].repo: \"octo\" is not OWNER/REPO\n"
                  "t.yaml:9:11: targets[1].repo: \"-octo\" is not a GitHub owner name (letters, "
                  "digits, '-', 1-39, no leading '-')\n"
                  "t.yaml:10:11: targets[2].repo: \"..\" is not a GitHub repository name "
                  "(letters, digits, '.', '_', '-', 1-100, not . or ..)\n"
                  "t.yaml:11:11: targets[3].repo: \"a/b/c\" is not OWNER/REPO\n"
                  "t.yaml:12:10: targets[4].org: \"octo_org\" is not a GitHub organization name "
                  "(letters, digits, '-', 1-39, no leading '-')\n"
                  "t.yaml:14:5: targets[5].org: a target is either a repo or an org, not both\n"
                  "t.yaml:15:5: targets[6]: needs repo: OWNER/REPO or org: ORG\n"
                  "t.yaml:17:5: targets[7].repos: only applies to org targets\n"
                  "t.yaml:19:16: targets[8].repos[1]: duplicate repository \"A\"\n"
                  "t.yaml:19:19: targets[8].repos[2]: \"b c\" is not a GitHub repository name\n"
                  "t.yaml:20:16: targets[8].pools[1]: unknown pool \"nope\"\n"
                  "t.yaml:20:22: targets[8].pools[2]: pool \"p\" is listed twice\n"
                  "t.yaml:21:5: targets[9]: duplicate target repos/O/R (first at line 16)\n"
                  "t.yaml:23:12: targets[10].pools: must not be empty (leave it out to use every "
                  "pool)\n");
    expect_errors(MIN_GITHUB MIN_POOL "targets: []\n",
                  "t.yaml:7:10: targets: must hold at least one target\n");
}

static void test_misc_values(void **state)
{
    (void)state;
    expect_errors(MINIMAL "instance: -x\nlisten: 9464\nwebhook_secret_file: s\n"
                          "docker: {binary: -d, network: --privileged, extra_args: [a, {b: c}]}\n"
                          "shutdown_grace: 25h\n",
                  "t.yaml:9:11: instance: \"-x\" is not an instance name ([a-z0-9][a-z0-9_.-]*, "
                  "at most 32 characters)\n"
                  "t.yaml:10:9: listen: \"9464\" is not HOST:PORT or [IPv6]:PORT (port 1-65535)\n"
                  "t.yaml:12:18: docker.binary: must not start with '-'\n"
                  "t.yaml:12:31: docker.network: \"--privileged\" is not a network name (no "
                  "leading '-', no spaces)\n"
                  "t.yaml:12:61: docker.extra_args[1]: must be a string, not a mapping\n"
                  "t.yaml:13:17: shutdown_grace: must be between 0s and 24h\n");
    /* webhook_secret_file without listen. */
    expect_errors(MINIMAL "webhook_secret_file: /s\n",
                  "t.yaml:9:22: webhook_secret_file: needs listen: the webhook is served on the "
                  "listen address\n");
    static const char *bad_listen[] = {"listen: ':80'\n",     "listen: 'h:0'\n",
                                       "listen: 'h:65536'\n", "listen: '[::1]80'\n",
                                       "listen: '[zz]:80'\n", "listen: 'a b:80'\n"};
    for (size_t i = 0; i < sizeof(bad_listen) / sizeof(bad_listen[0]); i++) {
        char y[512];
        snprintf(y, sizeof(y), MINIMAL "%s", bad_listen[i]);
        char *got = load_errors(y);
        assert_non_null(strstr(got, "listen: "));
        free(got);
    }
    rd_config_t *cfg = load_ok(MINIMAL "listen: 0.0.0.0:65535\ninstance: a.b_c-1\n");
    assert_string_equal(cfg->listen, "0.0.0.0:65535");
    assert_string_equal(cfg->instance, "a.b_c-1");
    rd_config_free(cfg);
}

static void test_duplicate_pools(void **state)
{
    (void)state;
    expect_errors(MIN_GITHUB MIN_TARGET "pools:\n  - name: p\n    image: i\n    labels: [a]\n"
                                        "  - name: p\n    image: i\n    labels: [b]\n",
                  "t.yaml:9:11: pools[1].name: duplicate pool name \"p\" (first at line 6)\n");
}

/* Many errors at once, in file order; none hides another. */
static void test_all_errors(void **state)
{
    (void)state;
    char *got = load_errors("github:\n  token_env: T\n  token_file: /x\nhost:\n  cpus: none\n"
                            "pools:\n  - name: p\n    image: i\n    labels: [x64]\n    cpu: 1\n"
                            "targets:\n  - repo: o/r\n    pools: [q]\n");
    assert_string_equal(got,
                        "t.yaml:3:3: github.token_file: only one authentication method may be "
                        "set (token_env is already set at line 2)\n"
                        "t.yaml:5:9: host.cpus: must be a number of CPUs such as 2 or 0.5, not "
                        "\"none\"\n"
                        "t.yaml:10:5: pools[0].cpu: unknown key (did you mean cpus?)\n"
                        "t.yaml:13:13: targets[0].pools[0]: unknown pool \"q\"\n");
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_arch),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_runner_name_length),
        cmocka_unit_test(test_yamltree_positions),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_relative_paths),
        cmocka_unit_test(test_auto_facts),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_key_errors),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_github_values),
        cmocka_unit_test(test_host_values),
        cmocka_unit_test(test_pool_values),
        cmocka_unit_test(test_labels),
        cmocka_unit_test(test_arch_checks),
        cmocka_unit_test(test_capacity_checks),
        cmocka_unit_test(test_targets),
        cmocka_unit_test(test_misc_values),
        cmocka_unit_test(test_duplicate_pools),
        cmocka_unit_test(test_all_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
