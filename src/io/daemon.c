/* daemon.c: the service. One uv loop; signals; config load and reload; the
 * poller feeds the demand ledger, the scheduler decides, the supervisor runs
 * the runners, the listener serves /metrics /healthz /status /webhook.
 *
 * The daemon owns one root struct (no globals). Every decision is taken by
 * the pure modules (planner + sched, webhook); this file moves data between
 * them and the I/O modules and sequences start-up, reload and shutdown:
 *
 *   load config -> github, ledger, poller, supervisor, listener
 *   -> supervisor adopts what a previous run left -> poller starts -> READY
 *   -> (poll results | webhooks | runner changes | 1 s tick) -> schedule
 *   SIGHUP: load off to the side; on success reconfigure every module, swap
 *   SIGTERM/SIGINT: stop polling and starting, drain the supervisor, close all
 *
 * This file: config load, reload, start-up and shutdown. The scheduling pass
 * is in daemon_plan.c, the listener's views in daemon_status.c, /webhook in
 * daemon_webhook.c; daemon_int.h holds the root struct they share. */
#include "daemon_int.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "runnerd/core/common.h"
#include "runnerd/core/config.h"
#include "runnerd/core/ledger.h"
#include "runnerd/core/log.h"
#include "runnerd/core/planner.h"
#include "runnerd/core/sched.h"
#include "runnerd/core/webhook.h"
#include "runnerd/io/configfile.h"
#include "runnerd/io/github.h"
#include "runnerd/io/hostfacts.h"
#include "runnerd/io/listener.h"
#include "runnerd/io/notify.h"
#include "runnerd/io/poller.h"
#include "runnerd/io/supervisor.h"

#define LOGC "daemon"

/* ------------------------------------------------------------------ */
/* Config                                                              */

static rd_config_t *load_config(rd_daemon_t *d, bool fatal)
{
    rd_config_errors_t errs = {0};
    rd_config_errors_t warns = {0};
    rd_config_t *cfg = NULL;
    /* The same path as --check-config: the file, then the host side of validation
     * (secret files readable, token_env set). */
    int rc = rd_config_load_checked(d->opts.config_path, &d->facts, &cfg, &errs, &warns);
    for (size_t i = 0; i < warns.n; i++) {
        char *line = rd_config_error_str(&warns.v[i]);
        rd_warn("config", "%s", line);
        free(line);
    }
    rd_config_errors_free(&warns);
    free(d->reload_errors);
    d->reload_errors = NULL;
    if (rc != 0) {
        for (size_t i = 0; i < errs.n; i++) {
            char *line = rd_config_error_str(&errs.v[i]);
            char *all = rd_xasprintf("%s%s\n", d->reload_errors ? d->reload_errors : "", line);
            free(d->reload_errors);
            d->reload_errors = all;
            /* ERROR also on a reload: the file would fail the next start too, and an
             * operator running with --log-level error must still see it. */
            rd_log(RD_LOG_ERROR, "config", "%s", line);
            if (i == 0) {
                free(d->last_reload_error);
                d->last_reload_error = line;
            } else {
                free(line);
            }
        }
        if (errs.n == 0) {
            rd_log(RD_LOG_ERROR, "config", "%s: %s", d->opts.config_path, rd_strerror(rc));
            free(d->last_reload_error);
            d->last_reload_error = rd_xasprintf("%s: %s", d->opts.config_path, rd_strerror(rc));
            free(d->reload_errors);
            d->reload_errors = rd_xasprintf("%s\n", d->last_reload_error);
        }
        rd_config_errors_free(&errs);
        return NULL;
    }
    rd_config_errors_free(&errs);
    return cfg;
}

/* The webhook secret, read and checked with the config (rd_config_load_checked:
 * the file's content without trailing newlines, not empty): a copy the daemon
 * owns, registered with the log redactor. */
static int read_secret(const rd_config_t *cfg, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (cfg->webhook_secret_file == NULL)
        return 0;
    if (cfg->webhook_secret == NULL) {
        rd_error("config", "webhook_secret_file %s: not loaded", cfg->webhook_secret_file);
        return RD_EINVAL;
    }
    *out = rd_xstrndup(cfg->webhook_secret, cfg->webhook_secret_len);
    *out_len = cfg->webhook_secret_len;
    rd_log_add_secret(*out);
    return 0;
}

static void free_secret(char *s, size_t len)
{
    if (s == NULL)
        return;
    rd_log_forget_secret(s);
    explicit_bzero(s, len);
    free(s);
}

/* ------------------------------------------------------------------ */
/* Reload                                                              */

int rd_daemon_reload(rd_daemon_t *d)
{
    rd_info(LOGC, "SIGHUP: reloading %s", d->opts.config_path);
    if (d->notify != NULL)
        rd_notify_reloading(d->notify, "reloading configuration");
    rd_config_t *cfg = load_config(d, false);
    char *secret = NULL;
    size_t secret_len = 0;
    if (cfg != NULL && read_secret(cfg, &secret, &secret_len) != 0) {
        rd_config_free(cfg);
        cfg = NULL;
    }
    if (cfg != NULL && rd_github_reconfigure(d->gh, &cfg->github) != 0) {
        rd_error("config", "reload: github settings unusable");
        free(d->reload_errors);
        d->reload_errors = rd_xstrdup("github settings unusable (see the log)\n");
        free_secret(secret, secret_len);
        rd_config_free(cfg);
        cfg = NULL;
    }
    if (cfg == NULL) {
        d->reloads_failed++;
        rd_error(LOGC, "reload failed: still running the previous configuration");
        if (d->notify != NULL)
            rd_notify_ready(d->notify, "reload failed; running the previous configuration");
        return -1;
    }

    bool listen_changed = (cfg->listen == NULL) != (d->cfg->listen == NULL) ||
                          (cfg->listen != NULL && strcmp(cfg->listen, d->cfg->listen) != 0);
    rd_config_t *old = d->cfg;
    d->cfg = cfg;
    /* The one pairing of old and new pools and targets (by name and scope): every
     * reference held across the reload now points into cfg, or says removed. */
    rd_idents_apply(d->ids, cfg);
    /* The ledger's target positions next, so that what the modules below report about
     * runners (positions of cfg, from their references) matches the ledger's. */
    rd_ledger_set_config(d->ledger, cfg);
    if (d->poller != NULL)
        rd_poller_reconfigure(d->poller, cfg);
    if (d->sup != NULL)
        rd_supervisor_reconfigure(d->sup, cfg);
    if (d->fleet != NULL) {
        rd_fleet_reconfigure(d->fleet, cfg);
    } else if (rd_fleet_wanted(cfg) && !d->opts.once) {
        rd_fleet_options_t fo = {.dry_run = d->opts.dry_run, .idents = d->ids};
        if (rd_fleet_new(&d->loop, cfg, d->gh, d->opts.dry_run ? NULL : d->sup, &fo, &d->fleet) ==
            0) {
            if (d->sup != NULL)
                rd_supervisor_set_registry(d->sup, rd_fleet_registry(d->fleet));
            rd_fleet_start(d->fleet);
        }
    }
    free_secret(d->webhook_secret, d->webhook_secret_len);
    d->webhook_secret = secret;
    d->webhook_secret_len = secret_len;
    if (listen_changed) {
        if (d->listener != NULL)
            rd_listener_close(d->listener, NULL, NULL);
        d->listener = NULL;
        rd_daemon_start_listener(d);
    }
    rd_config_free(old);
    d->reloads_ok++;
    d->last_reload_s = (double)rd_daemon_wall_ms() / 1000.0;
    d->loaded_at_s = rd_daemon_wall_ms() / 1000;
    free(d->last_reload_error);
    d->last_reload_error = NULL;
    rd_info(LOGC, "reloaded: %zu pools, %zu targets", cfg->npools, cfg->ntargets);
    if (d->notify != NULL)
        rd_notify_status(d->notify, "running: %zu pools, %zu targets", cfg->npools, cfg->ntargets);
    if (d->notify != NULL)
        rd_notify_ready(d->notify, NULL);
    rd_daemon_schedule_soon(d);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Start-up and shutdown                                               */

static void on_module_closed(void *ud)
{
    rd_daemon_t *d = ud;
    d->open_modules--;
}

static void close_signal(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Close every module and handle; the loop then runs out of work and ends. */
static void begin_close(rd_daemon_t *d)
{
    if (d->phase == PHASE_CLOSING)
        return;
    d->phase = PHASE_CLOSING;
    if (d->listener != NULL) {
        d->open_modules++;
        rd_listener_close(d->listener, on_module_closed, d);
        d->listener = NULL;
    }
    if (d->poller != NULL) {
        d->open_modules++;
        rd_poller_close(d->poller, on_module_closed, d);
        d->poller = NULL;
    }
    if (d->fleet != NULL) {
        d->open_modules++;
        rd_fleet_close(d->fleet, on_module_closed, d);
        d->fleet = NULL;
    }
    if (d->sup != NULL) {
        d->open_modules++;
        rd_supervisor_close(d->sup, on_module_closed, d);
        d->sup = NULL;
    }
    if (d->gh != NULL) {
        d->open_modules++;
        rd_github_close(d->gh, on_module_closed, d);
        d->gh = NULL;
    }
    if (d->notify != NULL) {
        rd_notify_close(d->notify);
        d->notify = NULL;
    }
    rd_daemon_control_close(d);
    uv_timer_stop(&d->sched_timer);
    close_signal((uv_handle_t *)&d->sched_timer);
    close_signal((uv_handle_t *)&d->tick_timer);
    close_signal((uv_handle_t *)&d->once_timer);
    close_signal((uv_handle_t *)&d->adopt_timer);
    close_signal((uv_handle_t *)&d->sighup);
    close_signal((uv_handle_t *)&d->sigterm);
    close_signal((uv_handle_t *)&d->sigint);
}

static void on_drained(void *ud)
{
    rd_daemon_t *d = ud;
    rd_info(LOGC, "drained: every runner has exited");
    begin_close(d);
}

static void stop(rd_daemon_t *d, const char *why)
{
    if (d->phase >= PHASE_DRAINING) {
        if (d->sup != NULL && !d->opts.dry_run && d->phase == PHASE_DRAINING) {
            rd_info(LOGC, "%s again: stopping busy runners now", why);
            rd_supervisor_drain(d->sup, 0, on_drained, d);
        }
        return;
    }
    rd_info(LOGC, "%s: stopping (busy runners may finish for up to %" PRIu64 " s)", why,
            d->cfg->shutdown_grace_ms / 1000);
    d->phase = PHASE_DRAINING;
    if (d->fleet != NULL)
        rd_fleet_drain(d->fleet); /* advertise 0, acquire nothing; sessions go at close */
    if (d->notify != NULL)
        rd_notify_stopping(d->notify, "draining runners");
    uv_timer_stop(&d->tick_timer);
    uv_timer_stop(&d->adopt_timer);
    if (d->poller != NULL) {
        d->open_modules++;
        rd_poller_close(d->poller, on_module_closed, d);
        d->poller = NULL;
    }
    if (d->sup != NULL && !d->opts.dry_run)
        rd_supervisor_drain(d->sup, d->cfg->shutdown_grace_ms, on_drained, d);
    else
        begin_close(d);
}

static void on_sighup(uv_signal_t *s, int signum)
{
    rd_daemon_t *d = rd_container_of(s, rd_daemon_t, sighup);
    (void)signum;
    if (d->phase >= PHASE_DRAINING)
        return;
    rd_daemon_reload(d);
}

static void on_sigterm(uv_signal_t *s, int signum)
{
    (void)signum;
    stop(rd_container_of(s, rd_daemon_t, sigterm), "SIGTERM");
}

static void on_sigint(uv_signal_t *s, int signum)
{
    (void)signum;
    stop(rd_container_of(s, rd_daemon_t, sigint), "SIGINT");
}

/* --once without --dry-run: the starts were handed to the supervisor; exit
 * once every new runner has its registration and its container (they keep
 * running, and the next start adopts them). */
static void check_registering(void *ud, const rd_supervisor_runner_info_t *ri)
{
    bool *registering = ud;
    if (ri->state == RD_RUNNER_STARTING && ri->runner_id == 0 && !ri->adopted)
        *registering = true;
}

static void on_once_timer(uv_timer_t *t)
{
    rd_daemon_t *d = rd_container_of(t, rd_daemon_t, once_timer);
    bool registering = false;
    if (d->sup != NULL)
        rd_supervisor_foreach(d->sup, check_registering, &registering);
    if (!registering) {
        uv_timer_stop(t);
        begin_close(d);
    }
}

static void on_once_fleet_timer(uv_timer_t *t)
{
    rd_daemon_t *d = rd_container_of(t, rd_daemon_t, once_timer);
    if (!rd_fleet_settled(d->fleet))
        return;
    uv_timer_stop(t);
    rd_fleet_print_dry(d->fleet, stdout);
    fflush(stdout);
    begin_close(d);
}

static void on_once_cycle(void *ud, size_t failed)
{
    rd_daemon_t *d = ud;
    if (failed > 0) {
        rd_warn(LOGC, "%zu polls failed in this cycle: the plan may miss jobs", failed);
        d->exit_code = 1;
    }
    if (d->opts.dry_run) {
        rd_planner_input_t pi;
        rd_sched_runner_t *snap = NULL;
        rd_daemon_build_input(d, &pi, &snap);
        rd_sched_plan_t plan;
        rd_sched_plan(&pi.in, &plan);
        char *lines = rd_planner_format_plan(&pi, &plan);
        fputs(lines, stdout);
        fflush(stdout);
        free(lines);
        rd_daemon_log_unmatched(d, &plan);
        rd_sched_plan_free(&plan);
        rd_planner_input_free(&pi);
        free(snap);
        if (d->fleet != NULL) {
            /* docs/fleet.md: the plan says whether each scale set exists. */
            uv_timer_start(&d->once_timer, on_once_fleet_timer, 50, 50);
            return;
        }
        begin_close(d);
        return;
    }
    d->phase = PHASE_RUNNING;
    rd_daemon_run_schedule(d);
    uv_timer_start(&d->once_timer, on_once_timer, 100, 100);
}

static void on_adopt_timer(uv_timer_t *t);

/* Containers of a previous run that could not be listed at start (docker down)
 * are looked for again, 5 s then doubling up to 5 min, until a listing works:
 * until then they run unsupervised and their capacity is not counted. */
static void adopt_retry_later(rd_daemon_t *d)
{
    d->adopt_retry_ms = d->adopt_retry_ms == 0 ? 5000 : d->adopt_retry_ms * 2;
    if (d->adopt_retry_ms > 300000)
        d->adopt_retry_ms = 300000;
    uv_timer_start(&d->adopt_timer, on_adopt_timer, d->adopt_retry_ms, 0);
}

static void on_readopted(void *ud, int err)
{
    rd_daemon_t *d = ud;
    if (d->phase != PHASE_RUNNING)
        return;
    if (err != 0) {
        adopt_retry_later(d);
        rd_warn(LOGC, "could not list containers (%s) again: retrying in %" PRIu64 " s",
                rd_strerror(err), d->adopt_retry_ms / 1000);
        return;
    }
    rd_info(LOGC, "containers listed: adoption of a previous run's runners done");
    d->adopt_retry_ms = 0;
    rd_daemon_run_schedule(d);
}

static void on_adopt_timer(uv_timer_t *t)
{
    rd_daemon_t *d = rd_container_of(t, rd_daemon_t, adopt_timer);
    if (d->phase != PHASE_RUNNING || d->sup == NULL)
        return;
    int rc = rd_supervisor_adopt(d->sup, on_readopted, d);
    if (rc != 0)
        on_readopted(d, rc);
}

static void on_adopted(void *ud, int err)
{
    rd_daemon_t *d = ud;
    if (d->phase != PHASE_ADOPTING)
        return;
    if (err != 0 && !d->opts.once) {
        adopt_retry_later(d);
        rd_warn(LOGC,
                "could not list containers (%s): nothing adopted yet; retrying in %" PRIu64
                " s (runners of a previous run are left as they are until then)",
                rd_strerror(err), d->adopt_retry_ms / 1000);
    } else if (err != 0) {
        rd_warn(LOGC,
                "could not list containers (%s): nothing adopted; runners of a previous run"
                " are left as they are",
                rd_strerror(err));
    }
    if (d->opts.once) {
        if (d->fleet != NULL)
            rd_fleet_start(d->fleet);
        int rc = rd_poller_run_once(d->poller, on_once_cycle, d);
        if (rc != 0) {
            d->exit_code = 1;
            begin_close(d);
        }
        return;
    }
    d->phase = PHASE_RUNNING;
    rd_poller_start(d->poller);
    if (d->fleet != NULL)
        rd_fleet_start(d->fleet);
    uv_timer_start(&d->tick_timer, rd_daemon_on_tick, 1000, 1000);
    if (d->notify != NULL) {
        rd_notify_status(d->notify, "running: %zu pools, %zu targets", d->cfg->npools,
                         d->cfg->ntargets);
        rd_notify_ready(d->notify, NULL);
    }
    rd_info(LOGC, "running: %zu pools, %zu targets, host %.2f cpus %" PRIu64 " MiB %s",
            d->cfg->npools, d->cfg->ntargets, d->cfg->host.cpus, d->cfg->host.memory >> 20,
            rd_arch_name(d->cfg->host.arch));
    rd_daemon_schedule_soon(d);
}

int rd_daemon_run(const rd_daemon_opts_t *opts)
{
    rd_daemon_t *d = rd_xcalloc(1, sizeof(*d));
    int code = 1;
    d->opts = *opts;
    d->start_time_s = (double)rd_daemon_wall_ms() / 1000.0;

    signal(SIGPIPE, SIG_IGN);
    /* A SIGHUP before the loop's handler is installed must not kill the service
     * (systemd may reload it as soon as it has started). */
    signal(SIGHUP, SIG_IGN);
    uv_disable_stdio_inheritance();
    rd_hostfacts_gather(&d->facts, d->hostname, sizeof(d->hostname));

    d->cfg = load_config(d, true);
    if (d->cfg == NULL)
        goto fail_early;
    d->loaded_at_s = rd_daemon_wall_ms() / 1000;
    d->last_reload_s = d->start_time_s; /* docs/metrics.md: start or reload */
    if (read_secret(d->cfg, &d->webhook_secret, &d->webhook_secret_len) != 0)
        goto fail_early;
    if (uv_loop_init(&d->loop) != 0) {
        rd_error(LOGC, "cannot initialise the event loop");
        goto fail_early;
    }
    uv_timer_init(&d->loop, &d->sched_timer);
    uv_timer_init(&d->loop, &d->tick_timer);
    uv_timer_init(&d->loop, &d->once_timer);
    uv_timer_init(&d->loop, &d->adopt_timer);
    uv_signal_init(&d->loop, &d->sighup);
    uv_signal_init(&d->loop, &d->sigterm);
    uv_signal_init(&d->loop, &d->sigint);
    uv_signal_start(&d->sighup, on_sighup, SIGHUP);
    uv_signal_start(&d->sigterm, on_sigterm, SIGTERM);
    uv_signal_start(&d->sigint, on_sigint, SIGINT);
    d->ids = rd_idents_new();
    rd_idents_apply(d->ids, d->cfg);
    d->ledger = rd_ledger_new();
    rd_ledger_set_config(d->ledger, d->cfg);
    d->dedup = rd_webhook_dedup_new(RD_WEBHOOK_DEDUP_CAPACITY, RD_WEBHOOK_DEDUP_MAX_AGE_MS);
    d->phase = PHASE_ADOPTING;

    int rc = rd_github_new(&d->loop, &d->cfg->github, &d->gh);
    if (rc != 0) {
        rd_error(LOGC, "GitHub client: %s", rd_strerror(rc));
        begin_close(d);
        goto run;
    }
    rc = rd_poller_new(&d->loop, d->gh, d->ledger, d->ids, d->cfg, rd_daemon_on_demand_changed, d,
                       &d->poller);
    if (rc != 0) {
        rd_error(LOGC, "poller: %s", rd_strerror(rc));
        begin_close(d);
        goto run;
    }
    rd_poller_set_actions_cb(d->poller, rd_daemon_on_poll_actions);
    rd_poller_set_started_cb(d->poller, rd_daemon_on_poll_started);
    /* --once --dry-run (the plan) looks at this instance's runners, read-only, so that
     * supply and the capacity they hold are counted as --once would count them. */
    if (!opts->dry_run || opts->once) {
        rd_supervisor_callbacks_t cbs = {
            .changed = rd_daemon_on_runners_changed, .exited = rd_daemon_on_runner_exited, .ud = d};
        rd_supervisor_options_t so = {.read_only = opts->dry_run, .idents = d->ids};
        /* Tests shorten the docker command deadline (default 60 s). */
        const char *dt = getenv("RUNNERD_DOCKER_TIMEOUT_MS");
        if (dt != NULL && *dt)
            so.docker_timeout_ms = strtoull(dt, NULL, 10);
        rc = rd_supervisor_new(&d->loop, d->cfg, d->gh, &cbs, &so, &d->sup);
        if (rc != 0) {
            rd_error(LOGC, "supervisor: %s", rd_strerror(rc));
            begin_close(d);
            goto run;
        }
    }
    /* --once serves poll targets only; --once --dry-run looks the scale sets up. */
    if (rd_fleet_wanted(d->cfg) && (!opts->once || opts->dry_run)) {
        rd_fleet_options_t fo = {.dry_run = opts->dry_run, .idents = d->ids};
        rc = rd_fleet_new(&d->loop, d->cfg, d->gh, opts->dry_run ? NULL : d->sup, &fo, &d->fleet);
        if (rc != 0) {
            rd_error(LOGC, "scale-set client: %s", rd_strerror(rc));
            begin_close(d);
            goto run;
        }
        if (d->sup != NULL)
            rd_supervisor_set_registry(d->sup, rd_fleet_registry(d->fleet));
    }
    if (!opts->once && rd_daemon_start_listener(d) != 0) {
        begin_close(d);
        goto run;
    }
    rd_daemon_control_start(d);
    if (!opts->once)
        rd_notify_open(&d->loop, &d->notify);
    code = 0;
    if (d->sup != NULL) {
        rc = rd_supervisor_adopt(d->sup, on_adopted, d);
        if (rc != 0)
            on_adopted(d, rc);
    } else {
        on_adopted(d, 0);
    }

run:
    uv_run(&d->loop, UV_RUN_DEFAULT);
    if (d->phase != PHASE_CLOSING) {
        begin_close(d);
        uv_run(&d->loop, UV_RUN_DEFAULT);
    }
    if (uv_loop_close(&d->loop) != 0)
        rd_warn(LOGC, "event loop closed with handles still open");
    if (code == 0)
        code = d->exit_code;
    rd_webhook_dedup_free(d->dedup);
    rd_ledger_free(d->ledger);
    rd_idents_free(d->ids);
    free(d->pool_queued);
    free(d->dry_plan);
fail_early:
    rd_daemon_control_free(d);
    free(d->reload_errors);
    free(d->last_reload_error);
    free_secret(d->webhook_secret, d->webhook_secret_len);
    rd_config_free(d->cfg);
    free(d);
    return code;
}
