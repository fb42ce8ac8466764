/* runner.c: the per-runner state machine (pure; see runner.h). */
#include "runnerd/core/runner.h"

#include <string.h>

const char *rd_runner_state_name(rd_runner_state_t s)
{
    switch (s) {
    case RD_RUNNER_STARTING:
        return "starting";
    case RD_RUNNER_IDLE:
        return "idle";
    case RD_RUNNER_BUSY:
        return "busy";
    case RD_RUNNER_STOPPING:
        return "stopping";
    case RD_RUNNER_EXITED:
        return "exited";
    }
    return "unknown";
}

static uint64_t kill_after(const rd_runner_t *r)
{
    uint64_t slack = r->limits.kill_slack_ms ? r->limits.kill_slack_ms : 5000;
    return r->limits.stop_grace_ms + slack;
}

static uint64_t left(uint64_t limit_ms, int64_t since_ms, int64_t now_ms)
{
    int64_t elapsed = now_ms - since_ms;
    if (elapsed < 0)
        elapsed = 0;
    return (uint64_t)elapsed >= limit_ms ? 0 : limit_ms - (uint64_t)elapsed;
}

static void set_state(rd_runner_t *r, rd_runner_state_t s, rd_runner_actions_t *act)
{
    if (r->state != s) {
        r->state = s;
        act->flags |= RD_RACT_CHANGED;
    }
}

static void count_failure(rd_runner_t *r, rd_runner_actions_t *act)
{
    if (!r->failed) {
        r->failed = true;
        act->flags |= RD_RACT_COUNT_FAILURE;
    }
}

/* Enter EXITED: free the capacity, drop the timers, and delete the registration if one exists. */
static void to_exited(rd_runner_t *r, rd_runner_actions_t *act)
{
    set_state(r, RD_RUNNER_EXITED, act);
    r->has_container = false;
    act->flags |=
        RD_RACT_RELEASE | RD_RACT_CANCEL_STARTUP | RD_RACT_CANCEL_JOB | RD_RACT_CANCEL_KILL;
    if (r->registering)
        return; /* the registration result decides */
    if (r->runner_id != 0 && !r->reg_gone) {
        if (!r->deleting) {
            r->deleting = true;
            act->flags |= RD_RACT_DELETE_REG;
        }
    } else if (!r->deleting) {
        act->flags |= RD_RACT_DONE;
    }
}

static void begin_stop(rd_runner_t *r, rd_runner_actions_t *act)
{
    r->stop_requested = true;
    act->flags |= RD_RACT_CANCEL_STARTUP | RD_RACT_CANCEL_JOB;
    if (r->has_container) {
        set_state(r, RD_RUNNER_STOPPING, act);
        act->flags |= RD_RACT_STOP_CONTAINER | RD_RACT_ARM_KILL;
        act->kill_ms = kill_after(r);
    } else if (r->registering) {
        /* Nothing runs yet: wait for the registration answer, then delete it. */
        set_state(r, RD_RUNNER_STOPPING, act);
    } else {
        to_exited(r, act);
    }
}

static void went_live(rd_runner_t *r, rd_runner_actions_t *act)
{
    if (!r->ever_online && !r->ever_busy)
        act->flags |= RD_RACT_COUNT_SUCCESS;
    act->flags |= RD_RACT_CANCEL_STARTUP;
}

void rd_runner_init(rd_runner_t *r, const rd_runner_limits_t *limits, int64_t job_id,
                    int64_t now_ms, rd_runner_actions_t *act)
{
    memset(r, 0, sizeof *r);
    memset(act, 0, sizeof *act);
    r->state = RD_RUNNER_STARTING;
    r->limits = *limits;
    r->created_ms = now_ms;
    r->job_id = job_id;
    r->registering = true;
    r->exit_code = -2;
    act->flags = RD_RACT_ARM_STARTUP | RD_RACT_CHANGED;
    act->startup_ms = limits->startup_timeout_ms;
}

void rd_runner_adopt(rd_runner_t *r, const rd_runner_limits_t *limits, int64_t runner_id,
                     int64_t started_ms, rd_runner_gh_t gh, uint64_t min_startup_ms, int64_t now_ms,
                     rd_runner_actions_t *act)
{
    memset(r, 0, sizeof *r);
    memset(act, 0, sizeof *act);
    r->limits = *limits;
    r->created_ms = started_ms;
    r->container_start_ms = started_ms;
    r->runner_id = runner_id;
    r->has_container = true;
    r->exit_code = -2;
    act->flags = RD_RACT_CHANGED | RD_RACT_ARM_JOB;
    act->job_ms = left(limits->job_timeout_ms, started_ms, now_ms);
    switch (gh) {
    case RD_GH_ONLINE_IDLE:
        r->state = RD_RUNNER_IDLE;
        r->ever_online = true;
        r->idle_since_ms = now_ms;
        break;
    case RD_GH_ONLINE_BUSY:
        r->state = RD_RUNNER_BUSY;
        r->ever_online = true;
        r->ever_busy = true;
        break;
    case RD_GH_ABSENT:
    case RD_GH_OFFLINE:
    case RD_GH_UNKNOWN:
        r->state = RD_RUNNER_STARTING;
        r->reg_gone = gh == RD_GH_ABSENT || runner_id == 0;
        act->flags |= RD_RACT_ARM_STARTUP;
        act->startup_ms = left(limits->startup_timeout_ms, started_ms, now_ms);
        if (gh == RD_GH_UNKNOWN && act->startup_ms < min_startup_ms)
            act->startup_ms = min_startup_ms;
        break;
    }
}

void rd_runner_event(rd_runner_t *r, rd_runner_event_t ev, int64_t arg, int64_t now_ms,
                     rd_runner_actions_t *act)
{
    memset(act, 0, sizeof *act);
    rd_runner_state_t st = r->state;
    if (st == RD_RUNNER_EXITED && ev != RD_REV_DELETED && ev != RD_REV_REGISTERED &&
        ev != RD_REV_REGISTER_FAILED)
        return;
    switch (ev) {
    case RD_REV_REGISTERED:
        if (!r->registering)
            return;
        r->registering = false;
        r->runner_id = arg;
        if (r->stop_requested || st == RD_RUNNER_EXITED)
            to_exited(r, act);
        else
            act->flags |= RD_RACT_SPAWN;
        return;
    case RD_REV_REGISTER_FAILED:
        if (!r->registering)
            return;
        r->registering = false;
        if (!r->stop_requested)
            count_failure(r, act);
        to_exited(r, act);
        return;
    case RD_REV_SPAWNED:
        r->has_container = true;
        r->container_start_ms = now_ms;
        act->flags |= RD_RACT_ARM_JOB;
        act->job_ms = r->limits.job_timeout_ms;
        return;
    case RD_REV_SPAWN_FAILED:
        if (!r->stop_requested)
            count_failure(r, act);
        to_exited(r, act);
        return;
    case RD_REV_GH_ONLINE:
        if (st == RD_RUNNER_STARTING) {
            went_live(r, act);
            r->idle_since_ms = now_ms;
            set_state(r, RD_RUNNER_IDLE, act);
        }
        r->ever_online = true;
        return;
    case RD_REV_GH_BUSY:
    case RD_REV_JOB_STARTED:
        if (ev == RD_REV_JOB_STARTED && arg != 0)
            r->job_id = arg;
        if (st == RD_RUNNER_STARTING || st == RD_RUNNER_IDLE) {
            went_live(r, act);
            set_state(r, RD_RUNNER_BUSY, act);
        }
        if (ev == RD_REV_GH_BUSY)
            r->ever_online = true;
        r->ever_busy = true;
        return;
    case RD_REV_GH_OFFLINE:
        return;
    case RD_REV_GH_ABSENT:
        /* GitHub removes a JIT runner after its one job; nothing left to delete. */
        if (!r->registering && r->runner_id != 0)
            r->reg_gone = true;
        return;
    case RD_REV_JOB_COMPLETED:
        /* An ephemeral runner never takes a second job: it stays busy until it exits. */
        if (r->ever_busy || st == RD_RUNNER_BUSY)
            return;
        r->ever_busy = true;
        if (st == RD_RUNNER_STARTING || st == RD_RUNNER_IDLE) {
            went_live(r, act);
            set_state(r, RD_RUNNER_BUSY, act);
        }
        return;
    case RD_REV_STARTUP_TIMER:
        if (st != RD_RUNNER_STARTING)
            return;
        r->startup_timed_out = true;
        count_failure(r, act);
        begin_stop(r, act);
        return;
    case RD_REV_JOB_TIMER:
        if (st == RD_RUNNER_STOPPING)
            return;
        r->job_timed_out = true;
        begin_stop(r, act);
        return;
    case RD_REV_KILL_TIMER:
        if (st != RD_RUNNER_STOPPING || !r->has_container)
            return;
        /* Keep killing until the child reports the exit: a stop may have raced container creation.
         */
        act->flags |= RD_RACT_KILL_CONTAINER | RD_RACT_ARM_KILL;
        act->kill_ms = r->limits.kill_slack_ms ? r->limits.kill_slack_ms : 5000;
        return;
    case RD_REV_STOP:
        if (st == RD_RUNNER_STARTING || st == RD_RUNNER_IDLE)
            begin_stop(r, act);
        return;
    case RD_REV_STOP_FORCE:
        if (st == RD_RUNNER_STARTING || st == RD_RUNNER_IDLE || st == RD_RUNNER_BUSY)
            begin_stop(r, act);
        return;
    case RD_REV_CHILD_EXIT:
        if (!r->has_container)
            return;
        r->exit_code = (int)arg;
        if (arg == 0 && !r->stop_requested && !r->failed) {
            if (!r->ever_online && !r->ever_busy)
                act->flags |= RD_RACT_COUNT_SUCCESS;
        } else if (arg != 0 && !r->stop_requested && !r->ever_busy) {
            count_failure(r, act);
        }
        to_exited(r, act);
        return;
    case RD_REV_DELETED:
        r->reg_gone = true;
        if (!r->deleting)
            return;
        r->deleting = false;
        if (st == RD_RUNNER_EXITED)
            act->flags |= RD_RACT_DONE;
        return;
    }
}

bool rd_runner_holds_capacity(const rd_runner_t *r)
{
    return r->state != RD_RUNNER_EXITED;
}
