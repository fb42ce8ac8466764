/* daemon_int.h: the daemon's root struct and the functions its files share
 * (daemon.c: start-up, signals, reload, shutdown; daemon_plan.c: ledger
 * events from the supervisor and the scheduling pass; daemon_status.c: /metrics /healthz
 * /status; daemon_webhook.c: /webhook and the listener). Private to src/io. */
#ifndef RUNNERD_DAEMON_INT_H
#define RUNNERD_DAEMON_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>

#include "runnerd/core/config.h"
#include "runnerd/core/ident.h"
#include "runnerd/core/ledger.h"
#include "runnerd/core/planner.h"
#include "runnerd/core/sched.h"
#include "runnerd/core/webhook.h"
#include "runnerd/io/daemon.h"
#include "runnerd/io/github.h"
#include "runnerd/io/hostfacts.h"
#include "runnerd/io/listener.h"
#include "runnerd/io/notify.h"
#include "runnerd/io/poller.h"
#include "runnerd/io/scaleset_client.h"
#include "runnerd/io/supervisor.h"

typedef enum {
    PHASE_ADOPTING = 0, /* looking at what a previous run left behind */
    PHASE_RUNNING,
    PHASE_DRAINING, /* SIGTERM: busy runners finishing */
    PHASE_CLOSING,  /* closing handles; the loop ends when they are closed */
} phase_t;

typedef struct rd_daemon {
    uv_loop_t loop;
    rd_daemon_opts_t opts;
    char hostname[256];
    rd_host_facts_t facts;
    rd_config_t *cfg;
    /* The pools and targets as objects that survive a reload (ident.h): paired with
     * each applied config once, before any module sees it. */
    rd_idents_t *ids;
    char *webhook_secret;
    size_t webhook_secret_len;

    rd_github_t *gh;
    rd_ledger_t *ledger; /* demand: fed by poller, webhooks and the supervisor */
    rd_poller_t *poller;
    rd_supervisor_t *sup;
    rd_fleet_t *fleet; /* discovery: scaleset targets (docs/fleet.md); NULL when none */
    rd_listener_t *listener;
    rd_notify_t *notify;
    rd_webhook_dedup_t *dedup;

    uv_signal_t sighup;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    uv_timer_t sched_timer; /* coalesces "something changed" into one pass */
    uv_timer_t tick_timer;  /* periodic pass: idle timeouts, backoff expiry */
    uv_timer_t once_timer;  /* --once: waits for registrations in flight */
    uv_timer_t adopt_timer; /* retries the restart adoption when docker ps failed */
    uint64_t adopt_retry_ms;
    bool sched_pending;
    uint64_t pass_ns;     /* CPU-bound length of the last scheduling pass (uv_hrtime) */
    uint64_t pass_end_ns; /* when it ended */
    phase_t phase;
    int exit_code;
    size_t open_modules; /* modules whose close callback is pending */

    /* Figures for /metrics and /status. */
    double start_time_s;
    uint64_t reloads_ok;
    uint64_t reloads_failed;
    double last_reload_s;
    uint64_t webhook_results[RD_WEBHOOK_RESULT_COUNT];
    int64_t last_delivery_s;
    int64_t loaded_at_s;
    char *last_reload_error; /* first error of the last failed reload, NULL after a good one */
    int64_t last_cycle_ms;   /* end of the last full poll cycle or poll result */
    unsigned last_unmatched;
    unsigned *pool_queued; /* per cfg pool: queued jobs it was chosen for, last plan */
    size_t npool_queued;
    char *dry_plan;            /* the plan lines a dry run logged last (NULL: none) */
    struct rd_daemon_ctl *ctl; /* the control socket and its drains/pauses (daemon_control.c) */
    char *reload_errors;       /* every error line of the last refused (re)load, '\n'-separated */
} rd_daemon_t;

static inline int64_t rd_daemon_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* daemon_plan.c */
/** Apply the ledger's actions to the supervisor. */
void rd_daemon_apply(rd_daemon_t *d, const rd_ledger_actions_t *acts);
void rd_daemon_on_runner_exited(void *ud, const rd_supervisor_runner_info_t *ri);
void rd_daemon_build_input(rd_daemon_t *d, rd_planner_input_t *pi, rd_sched_runner_t **snap_out);
void rd_daemon_log_unmatched(rd_daemon_t *d, const rd_sched_plan_t *plan);
void rd_daemon_run_schedule(rd_daemon_t *d);
/** Run a scheduling pass now, cancelling one scheduled for the next loop turn. */
void rd_daemon_schedule_now(rd_daemon_t *d);
void rd_daemon_schedule_soon(rd_daemon_t *d);
void rd_daemon_on_tick(uv_timer_t *t);
void rd_daemon_on_demand_changed(void *ud);
void rd_daemon_on_poll_actions(void *ud, const rd_ledger_actions_t *acts);
void rd_daemon_on_poll_started(void *ud, const char *runner_name, int64_t job_id, int64_t wait_ms);
void rd_daemon_on_runners_changed(void *ud);

/* daemon_status.c */
char *rd_daemon_cb_metrics(void *ud, size_t *len);
bool rd_daemon_cb_healthz(void *ud, char *reason, size_t reason_size);
char *rd_daemon_cb_status(void *ud, size_t *len);

/* daemon.c */
/** Reload the config as SIGHUP does: 0 when applied, -1 when refused (d->reload_errors). */
int rd_daemon_reload(rd_daemon_t *d);
/* daemon_control.c */
void rd_daemon_control_start(rd_daemon_t *d);
void rd_daemon_control_close(rd_daemon_t *d);
void rd_daemon_control_free(rd_daemon_t *d);
bool rd_daemon_control_pool_drained(const rd_daemon_t *d, const char *pool);
/** Drained pools back off (start nothing); paused targets' jobs and pools leave PI. */
void rd_daemon_control_plan(const rd_daemon_t *d, bool *backoff, rd_planner_input_t *pi);
/* daemon_webhook.c */
int rd_daemon_start_listener(rd_daemon_t *d);

#endif
