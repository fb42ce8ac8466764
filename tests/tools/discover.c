/* discover.c: test driver for discovery (not installed).
 *
 *   rd_discover -c FILE [--cycles N] [--interval-ms MS] [--step] [--reload FILE2]
 *               [--log-level L]
 *
 * --step: after each cycle but the last, wait for a line on stdin before the
 * next one (the test changes the fake between cycles, however slow it runs).
 *
 * --reload: before the second cycle, load FILE2 and apply it as SIGHUP would
 * (rd_github_reconfigure + rd_poller_reconfigure + rd_ledger_set_config).
 * Loads the config, runs N (default 1) full poll cycles with the real github
 * client and poller against whatever api_url says (the fake GitHub in tests),
 * MS apart (default 0), and after each cycle prints on stdout one JSON line per queued job in the
 * demand ledger, then one summary line:
 *   {"job":ID,"run":ID,"repo":"o/r","labels":[...],"target":N}
 *   {"cycle":1,"failed":0,"jobs":N,"requests":N,"not_modified":N,"jobs_reused":N,"targets":[...]}
 * Logs go to stderr. Exit 0 when the cycles ran (failures are in "failed"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "runnerd/core/common.h"
#include "runnerd/core/config.h"
#include "runnerd/core/ident.h"
#include "runnerd/core/ledger.h"
#include "runnerd/core/log.h"
#include "runnerd/io/configfile.h"
#include "runnerd/io/github.h"
#include "runnerd/io/logsink.h"
#include "runnerd/io/poller.h"

typedef struct {
    uv_loop_t *loop;
    rd_config_t *cfg;
    rd_github_t *gh;
    rd_ledger_t *demand;
    rd_poller_t *poller;
    int cycles, done;
    int closing;
    long interval_ms;
    bool step;
    uv_timer_t timer;
    const char *reload;
    rd_config_t *old_cfg;
    rd_idents_t *ids; /* the daemon's pairing of targets across reloads */
} app_t;

static rd_config_t *load(const char *file)
{
    rd_host_facts_t facts = {
        .cores = 64, .mem_total = (uint64_t)256 << 30, .arch = RD_ARCH_X64, .hostname = "discover"};
    rd_config_errors_t errs = {0};
    rd_config_t *cfg = NULL;
    if (rd_config_load_checked(file, &facts, &cfg, &errs, NULL) != 0)
        rd_config_errors_print(&errs, stderr);
    rd_config_errors_free(&errs);
    return cfg;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* Peak RSS of this process image: VmHWM (ru_maxrss would include the RSS of
 * whatever process forked us, since Linux keeps the maximum across exec). */
static long vmhwm_kib(void)
{
    FILE *fp = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (fp && fgets(line, sizeof(line), fp))
        if (strncmp(line, "VmHWM:", 6) == 0)
            v = strtol(line + 6, NULL, 10);
    if (fp)
        fclose(fp);
    return v;
}

static double cycle_start_cpu;
static uint64_t cycle_start_ns;

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void on_closed(void *ud)
{
    app_t *a = ud;
    if (++a->closing == 3)
        uv_stop(a->loop);
}

static void on_timer_closed(uv_handle_t *h)
{
    on_closed(h->data);
}

static void on_cycle(void *ud, size_t failed);

static void on_timer(uv_timer_t *t)
{
    app_t *a = t->data;
    if (a->reload && a->done == 1) {
        rd_config_t *cfg = load(a->reload);
        if (cfg != NULL)
            rd_idents_apply(a->ids, cfg); /* the daemon's one pairing, first */
        if (cfg == NULL || rd_github_reconfigure(a->gh, &cfg->github) != 0 ||
            rd_poller_reconfigure(a->poller, cfg) != 0) {
            fprintf(stderr, "rd_discover: reload failed\n");
            exit(1);
        }
        a->old_cfg = a->cfg;
        a->cfg = cfg;
        rd_ledger_set_config(a->demand, cfg); /* as the daemon's reload does */
    }
    cycle_start_cpu = cpu_s();
    cycle_start_ns = uv_hrtime();
    int rc = rd_poller_run_once(a->poller, on_cycle, a);
    if (rc != 0) {
        fprintf(stderr, "rd_discover: run_once: %s\n", rd_strerror(rc));
        exit(1);
    }
}

static void on_cycle(void *ud, size_t failed)
{
    app_t *a = ud;
    a->done++;
    size_t it = 0;
    const rd_job_t *j;
    while ((j = rd_ledger_next(a->demand, &it)) != NULL) {
        printf("{\"job\":%lld,\"run\":%lld,\"repo\":", (long long)j->id, (long long)j->run_id);
        json_str(j->repo);
        printf(",\"labels\":[");
        for (size_t i = 0; i < j->nlabels; i++) {
            if (i)
                putchar(',');
            json_str(j->labels[i]);
        }
        printf("],\"target\":%d}\n", j->target);
    }
    rd_github_stats_t st;
    rd_github_get_stats(a->gh, &st);
    double cpu = cpu_s();
    printf("{\"cycle\":%d,\"failed\":%zu,\"jobs\":%zu,\"requests\":%llu,\"not_modified\":%llu,"
           "\"jobs_reused\":%llu,\"budget_used\":%llu,\"cpu_ms\":%.1f,\"wall_ms\":%.1f,\"vmhwm_"
           "kib\":%ld,\"targets\":[",
           a->done, failed, rd_ledger_count(a->demand), (unsigned long long)st.requests,
           (unsigned long long)st.not_modified, (unsigned long long)st.jobs_reused,
           (unsigned long long)st.budget_used_last_hour, (cpu - cycle_start_cpu) * 1000.0,
           (double)(uv_hrtime() - cycle_start_ns) / 1e6, vmhwm_kib());
    cycle_start_cpu = cpu;
    rd_poller_status_t ss[256];
    size_t n = rd_poller_status(a->poller, ss, 256);
    for (size_t i = 0; i < n && i < 256; i++) {
        printf("%s{\"scope\":", i ? "," : "");
        json_str(ss[i].scope);
        printf(",\"repos\":%zu,\"queued\":%zu,\"error\":", ss[i].repos, ss[i].queued);
        if (ss[i].last_error)
            json_str(ss[i].last_error);
        else
            printf("null");
        printf(",\"backoff\":%s}", ss[i].backoff_until_ms ? "true" : "false");
    }
    printf("]}\n");
    fflush(stdout);
    if (a->done < a->cycles) {
        char line[64];
        if (a->step && fgets(line, sizeof(line), stdin) == NULL)
            a->cycles = a->done; /* stdin closed: stop after this cycle */
    }
    if (a->done < a->cycles) {
        uv_timer_start(&a->timer, on_timer, (uint64_t)a->interval_ms, 0);
        return;
    }
    uv_close((uv_handle_t *)&a->timer, on_timer_closed);
    rd_poller_close(a->poller, on_closed, a);
    rd_github_close(a->gh, on_closed, a);
}

int main(int argc, char **argv)
{
    const char *file = NULL, *level = "info";
    app_t a = {0};
    a.cycles = 1;
    rd_logsink_install_abort_hook();
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            file = argv[++i];
        else if (strcmp(argv[i], "--cycles") == 0 && i + 1 < argc)
            a.cycles = atoi(argv[++i]);
        else if (strcmp(argv[i], "--reload") == 0 && i + 1 < argc)
            a.reload = argv[++i];
        else if (strcmp(argv[i], "--interval-ms") == 0 && i + 1 < argc)
            a.interval_ms = atol(argv[++i]);
        else if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc)
            level = argv[++i];
        else if (strcmp(argv[i], "--step") == 0)
            a.step = true;
        else {
            fprintf(stderr,
                    "usage: rd_discover -c FILE [--cycles N] [--interval-ms MS] [--step] [--reload "
                    "FILE2] [--log-level L]\n");
            return 2;
        }
    }
    if (file == NULL || a.cycles < 1) {
        fprintf(stderr,
                "usage: rd_discover -c FILE [--cycles N] [--interval-ms MS] [--step] [--reload "
                "FILE2] [--log-level L]\n");
        return 2;
    }
    rd_log_level_t lv = RD_LOG_INFO;
    rd_log_parse_level(level, &lv);
    rd_logsink_setup(lv, RD_LOG_TEXT, stderr);
    a.cfg = load(file);
    if (a.cfg == NULL)
        return 1;
    uv_loop_t loop;
    uv_loop_init(&loop);
    a.loop = &loop;
    uv_timer_init(&loop, &a.timer);
    a.timer.data = &a;
    int rc = rd_github_new(&loop, &a.cfg->github, &a.gh);
    if (rc != 0) {
        fprintf(stderr, "rd_discover: github: %s\n", rd_strerror(rc));
        return 1;
    }
    a.demand = rd_ledger_new();
    rd_ledger_set_config(a.demand, a.cfg);
    a.ids = rd_idents_new();
    rd_idents_apply(a.ids, a.cfg);
    rc = rd_poller_new(&loop, a.gh, a.demand, a.ids, a.cfg, NULL, NULL, &a.poller);
    cycle_start_cpu = cpu_s();
    cycle_start_ns = uv_hrtime();
    if (rc == 0)
        rc = rd_poller_run_once(a.poller, on_cycle, &a);
    if (rc != 0) {
        fprintf(stderr, "rd_discover: poller: %s\n", rd_strerror(rc));
        return 1;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    /* Let close callbacks finish, then check nothing is left open. */
    uv_run(&loop, UV_RUN_DEFAULT);
    int lc = uv_loop_close(&loop);
    rd_ledger_free(a.demand);
    rd_idents_free(a.ids);
    rd_config_free(a.cfg);
    rd_config_free(a.old_cfg);
    if (lc != 0) {
        fprintf(stderr, "rd_discover: loop still has handles open\n");
        return 1;
    }
    fprintf(stderr, "rd_discover: cpu %.3f s, peak RSS %ld KiB\n", cpu_s(), vmhwm_kib());
    return 0;
}
