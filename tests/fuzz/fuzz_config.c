/* fuzz_config: the YAML config loader (rd_config_load_buffer) with fixed host
 * facts. The input is the file's text; seeds are conf/ and the bad-config
 * fixtures. A config that loads is also pushed through what the daemon does
 * with it next (summary, fit, target lookup, docker argv) to check that
 * whatever the loader accepts the rest can use. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "runnerd/core/common.h"
#include "runnerd/core/config.h"
#include "runnerd/core/dockerargv.h"

static const rd_host_facts_t facts = {
    .cores = 8, .mem_total = 32ULL << 30, .arch = RD_ARCH_X64, .hostname = "Fuzz-Host.example"};

static FILE *devnull;

static void use_config(const rd_config_t *cfg)
{
    FZ_CHECK(cfg->npools >= 1 && cfg->ntargets >= 1);
    FZ_CHECK(cfg->instance != NULL && cfg->github.api_url != NULL);
    char *summary = rd_config_summary(cfg);
    FZ_CHECK(strstr(summary, "configuration OK") != NULL);
    free(summary);
    for (size_t i = 0; i < cfg->npools; i++) {
        const rd_pool_t *p = &cfg->pools[i];
        FZ_CHECK(p->name != NULL && p->image != NULL);
        FZ_CHECK(p->cpus > 0 && p->memory > 0 && p->pids_limit > 0);
        FZ_CHECK(rd_config_pool_index(cfg, p->name) == (int)i);
        const char *limit = NULL;
        (void)rd_config_pool_fit(cfg, i, &limit);
        FZ_CHECK(limit != NULL);

        /* A pool the loader accepts must be startable: every value that reaches
         * docker's argv was validated so that none can become a flag. */
        rd_dockerargv_run_t in = {.binary = cfg->docker.binary,
                                  .name = "runnerd-fuzz-pool-0",
                                  .instance = cfg->instance,
                                  .scope = cfg->targets[0].scope,
                                  .runner_id = 42,
                                  .pool = p,
                                  .docker = &cfg->docker};
        char **argv = NULL;
        int rc = rd_dockerargv_run(&in, &argv);
        if (rc != 0) {
            fprintf(stderr, "config accepted pool %zu (%s) but rd_dockerargv_run refused it: %s\n",
                    i, p->name, rd_strerror(rc));
            abort();
        }
        rd_dockerargv_free(argv);
    }
    for (size_t i = 0; i < cfg->ntargets; i++) {
        const rd_target_t *t = &cfg->targets[i];
        FZ_CHECK(t->scope != NULL && t->owner != NULL);
        for (size_t j = 0; j < t->npools; j++)
            FZ_CHECK(t->pools[j] < cfg->npools);
        if (t->kind == RD_TARGET_REPO) {
            char *full = rd_xasprintf("%s/%s", t->owner, t->repo);
            int idx = rd_config_target_for_repo(cfg, full);
            FZ_CHECK(idx >= 0 && idx <= (int)i);
            free(full);
        }
    }
    (void)rd_config_target_for_repo(cfg, "octo-org/hello-world");
    (void)rd_config_target_for_repo(cfg, "no-slash");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (devnull == NULL) {
        fz_quiet_logs();
        devnull = fopen("/dev/null", "w");
        if (devnull == NULL)
            abort();
    }
    rd_config_t *cfg = NULL;
    rd_config_errors_t errs = {0};
    int rc = rd_config_load_buffer("fuzz.yaml", (const char *)data, size, &facts, &cfg, &errs);
    if (rc == 0) {
        FZ_CHECK(cfg != NULL);
        use_config(cfg);
        rd_config_free(cfg);
    } else {
        FZ_CHECK(cfg == NULL);
        FZ_CHECK(errs.n > 0);
        for (size_t i = 0; i < errs.n; i++)
            FZ_CHECK(errs.v[i].reason != NULL && errs.v[i].line >= 0 && errs.v[i].col >= 0);
    }
    {
        char *es = rd_config_errors_format(&errs);
        fputs(es, devnull);
        free(es);
    }
    rd_config_errors_free(&errs);
    return 0;
}
