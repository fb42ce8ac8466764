/* supervise.c: a small driver of the supervisor for tests, before and beside the daemon.
 *
 *   rd_supervise -c CONFIG [--adopt] [--start N] [--job ID]... [--target T] [--pool P]
 *                [--keep-one] [--run-for MS] [--grace MS] [--reconcile MS] [--abandon]
 *                [--log-level debug|info|warn|error]
 *
 * Loads CONFIG, creates the GitHub client and the supervisor, optionally adopts
 * what a previous run left (--adopt), starts N runners (one per --job, else
 * --start N warm ones) for targets[T] / pools[P], then waits until every runner
 * is gone or --run-for ms passed, drains with --grace, closes everything and
 * checks uv_loop_close() == 0. With --abandon, the end of the run (--run-for or
 * a signal) closes the supervisor without draining (children keep running, for
 * adoption by the next run). --keep-one restarts a runner whenever none is
 * running and the pool is not backing off (for the backoff test).
 * SIGTERM/SIGINT drain at once. stdout gets one JSON line at the end. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <uv.h>

#include "runnerd/core/common.h"
#include "runnerd/core/config.h"
#include "runnerd/core/log.h"
#include "runnerd/io/configfile.h"
#include "runnerd/io/github.h"
#include "runnerd/io/logsink.h"
#include "runnerd/io/supervisor.h"

typedef struct {
    uv_loop_t loop;
    rd_config_t *cfg;
    rd_idents_t *ids;
    rd_github_t *gh;
    rd_supervisor_t *sup;
    uv_timer_t t_run;
    uv_signal_t sig_term, sig_int;
    size_t target, pool;
    int64_t *jobs;
    size_t njobs;
    unsigned nstart;
    bool keep_one, adopt, started, draining, drained;
    bool abandon;
    uint64_t run_for_ms, grace_ms;
    int exit_code;
    unsigned starts;
} drv_t;

static drv_t D;

static void start_all(void)
{
    D.started = true;
    for (size_t i = 0; i < D.njobs; i++) {
        uint64_t key;
        int rc = rd_supervisor_start(D.sup, rd_idents_target(D.ids, D.target),
                                     rd_idents_pool(D.ids, D.pool), D.jobs[i], &key);
        if (rc != 0)
            rd_error("supervise", "start for job %" PRId64 ": %s", D.jobs[i], rd_strerror(rc));
        else
            D.starts++;
    }
    for (unsigned i = 0; i < D.nstart; i++) {
        uint64_t key;
        int rc = rd_supervisor_start(D.sup, rd_idents_target(D.ids, D.target),
                                     rd_idents_pool(D.ids, D.pool), 0, &key);
        if (rc != 0)
            rd_error("supervise", "start: %s", rd_strerror(rc));
        else
            D.starts++;
    }
}

static void github_closed(void *ud)
{
    (void)ud;
}

static void sup_closed(void *ud)
{
    (void)ud;
    rd_github_close(D.gh, github_closed, NULL);
    uv_close((uv_handle_t *)&D.t_run, NULL);
    uv_close((uv_handle_t *)&D.sig_term, NULL);
    uv_close((uv_handle_t *)&D.sig_int, NULL);
}

static void drained(void *ud)
{
    (void)ud;
    D.drained = true;
    rd_supervisor_pool_info_t pi;
    rd_supervisor_pool_info(D.sup, D.pool, &pi);
    printf("{\"runners_left\":%zu,\"starts\":%" PRIu64 ",\"failures\":%" PRIu64
           ",\"degraded\":%s,\"driver_starts\":%u}\n",
           rd_supervisor_count(D.sup), pi.starts_total, pi.failures_total,
           pi.degraded ? "true" : "false", D.starts);
    fflush(stdout);
    rd_supervisor_close(D.sup, sup_closed, NULL);
}

static void drain(void)
{
    if (D.draining)
        return;
    D.draining = true;
    uv_timer_stop(&D.t_run);
    rd_supervisor_drain(D.sup, D.grace_ms, drained, NULL);
}

static void on_changed(void *ud)
{
    (void)ud;
    if (!D.started || D.draining)
        return;
    if (D.keep_one) {
        rd_supervisor_pool_info_t pi;
        rd_supervisor_pool_info(D.sup, D.pool, &pi);
        if (pi.runners == 0 && !pi.backoff) {
            uint64_t key;
            if (rd_supervisor_start(D.sup, rd_idents_target(D.ids, D.target),
                                    rd_idents_pool(D.ids, D.pool), 0, &key) == 0)
                D.starts++;
        }
        return;
    }
    if (rd_supervisor_count(D.sup) == 0) {
        rd_info("supervise", "every runner is gone");
        drain();
    }
}

static void abandon_or_drain(void)
{
    if (D.abandon) {
        /* Close without draining: containers keep running for the next start to adopt. */
        rd_info("supervise", "abandoning %zu runners", rd_supervisor_count(D.sup));
        printf("{\"abandoned\":%zu}\n", rd_supervisor_count(D.sup));
        fflush(stdout);
        D.draining = true;
        rd_supervisor_close(D.sup, sup_closed, NULL);
        return;
    }
    drain();
}

static void on_run_timer(uv_timer_t *t)
{
    (void)t;
    rd_info("supervise", "run-for elapsed");
    abandon_or_drain();
}

static void on_signal(uv_signal_t *h, int signum)
{
    (void)h;
    rd_info("supervise", "signal %d", signum);
    if (!D.draining)
        abandon_or_drain();
}

static void adopted(void *ud, int err)
{
    (void)ud;
    if (err)
        rd_warn("supervise", "adoption: %s", rd_strerror(err));
    printf("{\"adopted\":%zu}\n", rd_supervisor_count(D.sup));
    fflush(stdout);
    start_all();
    on_changed(NULL);
}

static uint64_t mem_total(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    uint64_t kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemTotal: %" SCNu64 " kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb * 1024;
}

int main(int argc, char **argv)
{
    const char *cfgpath = NULL;
    rd_log_level_t level = RD_LOG_INFO;
    uint64_t reconcile_ms = 0;
    D.run_for_ms = 60000;
    D.grace_ms = 10000;
    rd_logsink_install_abort_hook();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-c") == 0 && v)
            cfgpath = v, i++;
        else if (strcmp(a, "--adopt") == 0)
            D.adopt = true;
        else if (strcmp(a, "--keep-one") == 0)
            D.keep_one = true;
        else if (strcmp(a, "--start") == 0 && v)
            D.nstart = (unsigned)atoi(v), i++;
        else if (strcmp(a, "--job") == 0 && v) {
            D.jobs = rd_xrealloc(D.jobs, (D.njobs + 1) * sizeof *D.jobs);
            D.jobs[D.njobs++] = strtoll(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--target") == 0 && v)
            D.target = (size_t)atoi(v), i++;
        else if (strcmp(a, "--pool") == 0 && v)
            D.pool = (size_t)atoi(v), i++;
        else if (strcmp(a, "--run-for") == 0 && v)
            D.run_for_ms = strtoull(v, NULL, 10), i++;
        else if (strcmp(a, "--grace") == 0 && v)
            D.grace_ms = strtoull(v, NULL, 10), i++;
        else if (strcmp(a, "--abandon") == 0)
            D.abandon = true;
        else if (strcmp(a, "--reconcile") == 0 && v)
            reconcile_ms = strtoull(v, NULL, 10), i++;
        else if (strcmp(a, "--log-level") == 0 && v) {
            if (rd_log_parse_level(v, &level) != 0) {
                fprintf(stderr, "bad log level %s\n", v);
                return 2;
            }
            i++;
        } else {
            fprintf(stderr,
                    "usage: %s -c CONFIG [--adopt] [--start N] [--job ID]... [--target T] "
                    "[--pool P] [--keep-one] [--run-for MS] [--grace MS] [--reconcile MS]\n",
                    argv[0]);
            return 2;
        }
    }
    if (cfgpath == NULL) {
        fprintf(stderr, "-c CONFIG is required\n");
        return 2;
    }
    uv_disable_stdio_inheritance();
    rd_logsink_setup(level, RD_LOG_TEXT, stderr);

    struct utsname un;
    uname(&un);
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    rd_host_facts_t facts = {
        .cores = (unsigned)sysconf(_SC_NPROCESSORS_ONLN),
        .mem_total = mem_total(),
        .arch = rd_arch_parse(un.machine),
        .hostname = host,
    };
    rd_config_errors_t errs = {0};
    if (rd_config_load_checked(cfgpath, &facts, &D.cfg, &errs, NULL) != 0) {
        rd_config_errors_print(&errs, stderr);
        rd_config_errors_free(&errs);
        return 1;
    }
    rd_config_errors_free(&errs);
    if (D.target >= D.cfg->ntargets || D.pool >= D.cfg->npools) {
        fprintf(stderr, "no such target/pool\n");
        rd_config_free(D.cfg);
        return 2;
    }
    uv_loop_init(&D.loop);
    int rc = rd_github_new(&D.loop, &D.cfg->github, &D.gh);
    if (rc != 0) {
        fprintf(stderr, "github: %s\n", rd_strerror(rc));
        return 1;
    }
    rd_supervisor_callbacks_t cbs = {.changed = on_changed, .ud = NULL};
    D.ids = rd_idents_new();
    rd_idents_apply(D.ids, D.cfg);
    rd_supervisor_options_t opts = {.reconcile_ms = reconcile_ms,
                                    .stop_grace_ms = 2000,
                                    .kill_slack_ms = 2000,
                                    .idents = D.ids};
    rc = rd_supervisor_new(&D.loop, D.cfg, D.gh, &cbs, &opts, &D.sup);
    if (rc != 0) {
        fprintf(stderr, "supervisor: %s\n", rd_strerror(rc));
        return 1;
    }
    uv_timer_init(&D.loop, &D.t_run);
    uv_timer_start(&D.t_run, on_run_timer, D.run_for_ms, 0);
    uv_signal_init(&D.loop, &D.sig_term);
    uv_signal_start(&D.sig_term, on_signal, SIGTERM);
    uv_signal_init(&D.loop, &D.sig_int);
    uv_signal_start(&D.sig_int, on_signal, SIGINT);
    if (D.adopt) {
        rc = rd_supervisor_adopt(D.sup, adopted, NULL);
        if (rc != 0) {
            rd_error("supervise", "adopt: %s", rd_strerror(rc));
            adopted(NULL, rc);
        }
    } else {
        start_all();
        on_changed(NULL);
    }
    uv_run(&D.loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&D.loop);
    if (rc != 0) {
        fprintf(stderr, "uv_loop_close: %s (handles left open)\n", uv_strerror(rc));
        uv_print_all_handles(&D.loop, stderr);
        D.exit_code = 3;
    }
    rd_idents_free(D.ids);
    rd_config_free(D.cfg);
    free(D.jobs);
    return D.exit_code;
}
