/* daemon_webhook.c: /webhook (a verified workflow_job delivery is an event for
 * the demand ledger, and a queued job is scheduled at once) and the
 * listener's start with the daemon's callbacks. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon_int.h"
#include "runnerd/core/common.h"
#include "runnerd/core/log.h"

#define LOGC "daemon"

static int cb_webhook(void *ud, const char *event, const char *delivery, const char *signature,
                      const char *content_type, const char *body, size_t len, const char **message)
{
    rd_daemon_t *d = ud;
    rd_webhook_outcome_t o;
    int64_t now = rd_daemon_wall_ms();
    rd_webhook_process(d->webhook_secret, d->webhook_secret_len, d->dedup, event, delivery,
                       signature, content_type, body, len, now, &o);
    if (o.result < RD_WEBHOOK_RESULT_COUNT)
        d->webhook_results[o.result]++;
    *message = o.message;
    int status = o.http_status;
    if (o.result == RD_WEBHOOK_ACCEPTED)
        d->last_delivery_s = now / 1000;
    if (o.result != RD_WEBHOOK_ACCEPTED) {
        if (o.result == RD_WEBHOOK_BAD_SIGNATURE || o.result == RD_WEBHOOK_MALFORMED)
            rd_warn("webhook", "delivery %s refused: %s", delivery ? delivery : "-",
                    rd_webhook_result_name(o.result));
        rd_webhook_outcome_clear(&o);
        return status;
    }
    const rd_gh_job_t *job = &o.job;
    rd_ledger_actions_t acts = {0};
    bool queued = rd_ledger_webhook(d->ledger, o.action, job, now, &acts);
    rd_daemon_apply(d, &acts);
    rd_ledger_actions_clear(&acts);
    /* runnerd_job_queue_wait_seconds: how long the job waited, once per runner */
    if (o.action == RD_WEBHOOK_JOB_IN_PROGRESS && job->runner_name != NULL && d->sup != NULL &&
        job->created_ms > 0 && job->started_ms > 0)
        rd_supervisor_job_waited(d->sup, job->runner_name, job->id,
                                 job->started_ms - job->created_ms);
    if (o.action == RD_WEBHOOK_JOB_QUEUED && !queued) {
        rd_debug("webhook", "job %" PRId64 " queued in %s: not watched or already done", job->id,
                 job->repo ? job->repo : "?");
    } else if (o.action == RD_WEBHOOK_JOB_QUEUED) {
        if (d->poller != NULL)
            rd_poller_note_activity(d->poller, job->repo);
        rd_logc(RD_LOG_INFO, "webhook", &(const rd_log_ctx_t){.job = job->id},
                "job %" PRId64 " queued in %s", job->id, job->repo);
        /* Schedule now rather than on the next loop turn: this is the fast path. */
        rd_daemon_schedule_now(d);
    } else if (o.action != RD_WEBHOOK_JOB_NONE) {
        rd_daemon_schedule_soon(d);
    }
    rd_webhook_outcome_clear(&o);
    return status;
}

int rd_daemon_start_listener(rd_daemon_t *d)
{
    if (d->cfg->listen == NULL)
        return 0;
    rd_listener_opts_t lo;
    rd_listener_opts_default(&lo);
    lo.listen = d->cfg->listen;
    rd_listener_cbs_t cbs = {.ud = d,
                             .metrics = rd_daemon_cb_metrics,
                             .healthz = rd_daemon_cb_healthz,
                             .status = rd_daemon_cb_status,
                             .webhook = cb_webhook};
    int rc = rd_listener_start(&d->loop, &lo, &cbs, &d->listener);
    if (rc != 0) {
        rd_error(LOGC, "cannot listen on %s: %s", d->cfg->listen, rd_strerror(rc));
        d->listener = NULL;
        return rc;
    }
    rd_info(LOGC, "listening on %s (port %d)", d->cfg->listen, rd_listener_port(d->listener));
    return 0;
}
