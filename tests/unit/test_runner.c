/* test_runner.c: the runner state machine with an injected clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "runnerd/core/runner.h"

static const rd_runner_limits_t L = {
    .startup_timeout_ms = 300000,
    .job_timeout_ms = 6 * 3600000ull,
    .stop_grace_ms = 10000,
    .kill_slack_ms = 5000,
};

#define HAS(a, f) (((a).flags & (f)) == (f))
#define NOT(a, f) (((a).flags & (f)) == 0)

static void ev(rd_runner_t *r, rd_runner_event_t e, int64_t arg, int64_t now,
               rd_runner_actions_t *a)
{
    rd_runner_event(r, e, arg, now, a);
}

/* Start a runner and bring it to a spawned container; returns the time. */
static int64_t spawned(rd_runner_t *r, int64_t job)
{
    rd_runner_actions_t a;
    rd_runner_init(r, &L, job, 1000, &a);
    assert_true(HAS(a, RD_RACT_ARM_STARTUP | RD_RACT_CHANGED));
    assert_int_equal(a.startup_ms, 300000);
    assert_int_equal(r->state, RD_RUNNER_STARTING);
    ev(r, RD_REV_REGISTERED, 77, 1200, &a);
    assert_int_equal(a.flags, RD_RACT_SPAWN);
    assert_int_equal(r->runner_id, 77);
    ev(r, RD_REV_SPAWNED, 0, 1300, &a);
    assert_true(HAS(a, RD_RACT_ARM_JOB));
    assert_int_equal(a.job_ms, 6 * 3600000ull);
    assert_int_equal(r->container_start_ms, 1300);
    return 1300;
}

static void test_happy_path(void **state)
{
    (void)state;
    rd_runner_t r;
    rd_runner_actions_t a;
    spawned(&r, 5);
    ev(&r, RD_REV_GH_OFFLINE, 0, 2000, &a);
    assert_int_equal(a.flags, 0);
    assert_int_equal(r.state, RD_RUNNER_STARTING);
    ev(&r, RD_REV_GH_ONLINE, 0, 3000, &a);
    assert_true(HAS(a, RD_RACT_CANCEL_STARTUP | RD_RACT_COUNT_SUCCESS | RD_RACT_CHANGED));
    assert_int_equal(r.state, RD_RUNNER_IDLE);
    assert_int_equal(r.idle_since_ms, 3000);
    ev(&r, RD_REV_GH_ONLINE, 0, 4000, &a);
    assert_int_equal(a.flags, 0);
    ev(&r, RD_REV_JOB_STARTED, 99, 5000, &a);
    assert_int_equal(r.state, RD_RUNNER_BUSY);
    assert_int_equal(r.job_id, 99);
    assert_true(HAS(a, RD_RACT_CHANGED));
    assert_true(NOT(a, RD_RACT_COUNT_SUCCESS));
    /* after its job GitHub may show it online and not busy for a moment: stays busy */
    ev(&r, RD_REV_GH_ONLINE, 0, 6000, &a);
    assert_int_equal(r.state, RD_RUNNER_BUSY);
    /* STOP (idle stop) does not touch a busy runner */
    ev(&r, RD_REV_STOP, 0, 6500, &a);
    assert_int_equal(a.flags, 0);
    ev(&r, RD_REV_JOB_COMPLETED, 99, 7000, &a);
    ev(&r, RD_REV_GH_ABSENT, 0, 7500, &a);
    assert_true(r.reg_gone);
    ev(&r, RD_REV_CHILD_EXIT, 0, 8000, &a);
    assert_int_equal(r.state, RD_RUNNER_EXITED);
    assert_true(HAS(a, RD_RACT_RELEASE | RD_RACT_DONE | RD_RACT_CANCEL_JOB | RD_RACT_CANCEL_KILL));
    assert_true(NOT(a, RD_RACT_DELETE_REG | RD_RACT_COUNT_FAILURE));
    assert_false(rd_runner_holds_capacity(&r));
    /* late events after exit are ignored */
    ev(&r, RD_REV_STOP_FORCE, 0, 9000, &a);
    assert_int_equal(a.flags, 0);
    ev(&r, RD_REV_CHILD_EXIT, 1, 9000, &a);
    assert_int_equal(a.flags, 0);
}

static void test_exit_deletes_registration(void **state)
{
    (void)state;
    rd_runner_t r;
    rd_runner_actions_t a;
    spawned(&r, 5);
    ev(&r, RD_REV_GH_BUSY, 0, 3000, &a);
    assert_int_equal(r.state, RD_RUNNER_BUSY);
    assert_true(HAS(a, RD_RACT_COUNT_SUCCESS));
    ev(&r, RD_REV_CHILD_EXIT, 1, 8000, &a); /* job failed: not a runner failure */
    assert_true(HAS(a, RD_RACT_DELETE_REG | RD_RACT_RELEASE));
    assert_true(NOT(a, RD_RACT_DONE | RD_RACT_COUNT_FAILURE));
    assert_true(r.deleting);
    ev(&r, RD_REV_DELETED, 0, 9000, &a);
    assert_int_equal(a.flags, RD_RACT_DONE);
}

static void test_startup_timeout(void **state)
{
    (void)state;
    rd_runner_t r;
    rd_runner_actions_t a;
    spawned(&r, 5);
    ev(&r, RD_REV_STARTUP_TIMER, 0, 301000, &a);
    assert_int_equal(r.state, RD_RUNNER_STOPPING);
    assert_true(HAS(a, RD_RACT_COUNT_FAILURE | RD_RACT_STOP_CONTAINER | RD_RACT_ARM_KILL |
                           RD_RACT_CANCEL_JOB | RD_RACT_CHANGED));
    assert_int_equal(a.kill_ms, 15000);
    assert_true(rd_runner_holds_capacity(&r));
    /* stop twice: nothing more */
    ev(&r, RD_REV_STOP, 0, 302000, &a);
    assert_int_equal(a.flags, 0);
    ev(&r, RD_REV_STOP_FORCE, 0, 302000, &a);
    assert_int_equal(a.flags, 0);
    ev(&r, RD_REV_KILL_TIMER, 0, 316000, &a);
    assert_true(HAS(a, RD_RACT_KILL_CONTAINER | RD_RACT_ARM_KILL));
    assert_int_equal(a.kill_ms, 5000);
    ev(&r, RD_REV_CHILD_EXIT, 137, 317000, &a);
    assert_true(HAS(a, RD_RACT_DELETE_REG | RD_RACT_RELEASE));
    assert_true(NOT(a, RD_RACT_COUNT_FAILURE)); /* counted once */
}

static void test_startup_timer_after_online_ignored(void **state)
{
    (void)state;
    rd_runner_t r;
    rd_runner_actions_t a;
    spawned(&r, 5);
    ev(&r, RD_REV_GH_ONLINE, 0, 3000, &a);
    ev(&r, RD_REV_STARTUP_TIMER, 0, 301000, &a);
    assert_int_equal(a.flags, 0);
    assert_int_equal(r.state, RD_RUNNER_IDLE);
}

static void test_image_missing_counts_failure(void **state)
{
    (void)state;
    rd_runner_t r;
    rd_runner_actions_t a;
    spawned(&r, 5);
    ev(&r, RD_REV_CHILD_EXIT, 125, 1500, &a);
    assert_int_equal(r.state, RD_RUNNER_EXITED);
    assert_int_equal(r.exit_code, 125);
    assert_true(HAS(a, RD_RACT_COUNT_FAILURE | RD_RACT_RELEASE | RD_RACT_DELETE_REG |
                           RD_RACT_CANCEL_STARTUP | RD_RACT_CHANGED));
}

static void test_fast_job_exit_zero_is_success(void **state)
{
    (void)state;
    rd_runner_t r;
    rd_runner_actions_t a;
    spawned(&r, 5);
    ev(&r, RD_REV_CHILD_EXIT, 0, 2500, &a);
    assert_true(HAS(a, RD_RACT_COUNT_SUCCESS | RD_RACT_DELETE_REG));
    assert_true(NOT(a, RD_RACT_COUNT_FAILURE));
}

static void test_job_timeout(void **state)
{
    (void)state;
    rd_runner_t r;
    rd_runner_actions_t a;
    spawned(&r, 5);
    ev(&r, RD_REV_JOB_STARTED, 5, 3000, &a);
    ev(&r, RD_REV_JOB_TIMER, 0, 1300 + 6 * 3600000LL, &a);
    assert_int_equal(r.state, RD_RUNNER_STOPPING);
    assert_true(r.job_timed_out);
    assert_true(HAS(a, RD_RACT_STOP_CONTAINER | RD_RACT_ARM_KILL));
    assert_true(NOT(a, RD_RACT_COUNT_FAILURE));
    ev(&r, RD_REV_JOB_TIMER, 0, 1400 + 6 * 3600000LL, &a);
    assert_int_equal(a.flags, 0);
    ev(&r, RD_REV_CHILD_EXIT, 143, 1500 + 6 * 3600000LL, &a);
    assert_true(HAS(a, RD_RACT_DELETE_REG | RD_RACT_RELEASE));
    assert_true(NOT(a, RD_RACT_COUNT_FAILURE));
}

static void test_stop_idle_and_force_busy(void **state)
{
    (void)state;
    rd_runner_t r;
    rd_runner_actions_t a;
    spawned(&r, 0);
    ev(&r, RD_REV_GH_ONLINE, 0, 3000, &a);
    ev(&r, RD_REV_STOP, 0, 4000, &a);
    assert_int_equal(r.state, RD_RUNNER_STOPPING);
    assert_true(HAS(a, RD_RACT_STOP_CONTAINER | RD_RACT_ARM_KILL));
    ev(&r, RD_REV_CHILD_EXIT, 143, 5000, &a);
    assert_true(NOT(a, RD_RACT_COUNT_FAILURE));

    spawned(&r, 0);
    ev(&r, RD_REV_GH_BUSY, 0, 3000, &a);
    ev(&r, RD_REV_STOP, 0, 4000, &a);
    assert_int_equal(r.state, RD_RUNNER_BUSY);
    ev(&r, RD_REV_STOP_FORCE, 0, 4000, &a);
    assert_int_equal(r.state, RD_RUNNER_STOPPING);
    assert_true(HAS(a, RD_RACT_STOP_CONTAINER));
}

static void test_stop_while_registering(void **state)
{
    (void)state;
    rd_runner_t r;
    rd_runner_actions_t a;
    rd_runner_init(&r, &L, 5, 1000, &a);
    ev(&r, RD_REV_STOP, 0, 1100, &a);
    assert_int_equal(r.state, RD_RUNNER_STOPPING);
    assert_true(NOT(a, RD_RACT_STOP_CONTAINER | RD_RACT_DONE));
    ev(&r, RD_REV_REGISTERED, 77, 1200, &a);
    assert_true(NOT(a, RD_RACT_SPAWN | RD_RACT_COUNT_FAILURE));
    assert_true(HAS(a, RD_RACT_DELETE_REG | RD_RACT_RELEASE));
    assert_int_equal(r.state, RD_RUNNER_EXITED);
    ev(&r, RD_REV_DELETED, 0, 1300, &a);
    assert_int_equal(a.flags, RD_RACT_DONE);

    rd_runner_init(&r, &L, 5, 1000, &a);
    ev(&r, RD_REV_STOP, 0, 1100, &a);
    ev(&r, RD_REV_REGISTER_FAILED, 0, 1200, &a);
    assert_true(HAS(a, RD_RACT_DONE | RD_RACT_RELEASE));
    assert_true(NOT(a, RD_RACT_COUNT_FAILURE | RD_RACT_DELETE_REG));
}

static void test_register_and_spawn_failures(void **state)
{
    (void)state;
    rd_runner_t r;
    rd_runner_actions_t a;
    rd_runner_init(&r, &L, 5, 1000, &a);
    ev(&r, RD_REV_REGISTER_FAILED, 0, 1200, &a);
    assert_true(HAS(a, RD_RACT_COUNT_FAILURE | RD_RACT_DONE | RD_RACT_RELEASE));
    assert_int_equal(r.state, RD_RUNNER_EXITED);

    rd_runner_init(&r, &L, 5, 1000, &a);
    ev(&r, RD_REV_REGISTERED, 8, 1200, &a);
    ev(&r, RD_REV_SPAWN_FAILED, 0, 1200, &a);
    assert_true(HAS(a, RD_RACT_COUNT_FAILURE | RD_RACT_DELETE_REG | RD_RACT_RELEASE));
    assert_true(NOT(a, RD_RACT_DONE));
    /* startup timer firing in registration: stop with nothing to stop yet */
    rd_runner_init(&r, &L, 5, 1000, &a);
    ev(&r, RD_REV_STARTUP_TIMER, 0, 301000, &a);
    assert_true(HAS(a, RD_RACT_COUNT_FAILURE));
    assert_int_equal(r.state, RD_RUNNER_STOPPING);
    ev(&r, RD_REV_REGISTERED, 8, 302000, &a);
    assert_true(HAS(a, RD_RACT_DELETE_REG));
    assert_true(NOT(a, RD_RACT_SPAWN | RD_RACT_COUNT_FAILURE));
}

static void test_crash_after_online_is_failure(void **state)
{
    (void)state;
    rd_runner_t r;
    rd_runner_actions_t a;
    spawned(&r, 5);
    ev(&r, RD_REV_GH_ONLINE, 0, 2000, &a);
    ev(&r, RD_REV_CHILD_EXIT, 1, 2500, &a);
    assert_true(HAS(a, RD_RACT_COUNT_FAILURE));
}

static void test_adopt(void **state)
{
    (void)state;
    rd_runner_t r;
    rd_runner_actions_t a;
    int64_t now = 10000000;
    /* busy: job timer re-armed from the container's start, no startup timer */
    rd_runner_adopt(&r, &L, 42, now - 3600000, RD_GH_ONLINE_BUSY, 60000, now, &a);
    assert_int_equal(r.state, RD_RUNNER_BUSY);
    assert_true(HAS(a, RD_RACT_ARM_JOB));
    assert_true(NOT(a, RD_RACT_ARM_STARTUP));
    assert_int_equal(a.job_ms, 5 * 3600000ull);
    assert_true(r.has_container);
    ev(&r, RD_REV_STOP, 0, now, &a);
    assert_int_equal(a.flags, 0);
    /* idle */
    rd_runner_adopt(&r, &L, 42, now - 1000, RD_GH_ONLINE_IDLE, 60000, now, &a);
    assert_int_equal(r.state, RD_RUNNER_IDLE);
    assert_int_equal(r.idle_since_ms, now);
    /* offline, past its startup timeout: timer fires at once */
    rd_runner_adopt(&r, &L, 42, now - 400000, RD_GH_OFFLINE, 60000, now, &a);
    assert_int_equal(r.state, RD_RUNNER_STARTING);
    assert_true(HAS(a, RD_RACT_ARM_STARTUP));
    assert_int_equal(a.startup_ms, 0);
    /* GitHub unknown: at least min_startup */
    rd_runner_adopt(&r, &L, 42, now - 400000, RD_GH_UNKNOWN, 60000, now, &a);
    assert_int_equal(a.startup_ms, 60000);
    /* job timeout long over: fires at once */
    rd_runner_adopt(&r, &L, 42, now - 7 * 3600000LL, RD_GH_ONLINE_BUSY, 60000, now, &a);
    assert_int_equal(a.job_ms, 0);
    /* absent: nothing to delete on exit */
    rd_runner_adopt(&r, &L, 42, now - 1000, RD_GH_ABSENT, 60000, now, &a);
    ev(&r, RD_REV_CHILD_EXIT, 0, now, &a);
    assert_true(HAS(a, RD_RACT_DONE | RD_RACT_RELEASE));
    assert_true(NOT(a, RD_RACT_DELETE_REG));
}

static void test_state_names(void **state)
{
    (void)state;
    assert_string_equal(rd_runner_state_name(RD_RUNNER_STARTING), "starting");
    assert_string_equal(rd_runner_state_name(RD_RUNNER_IDLE), "idle");
    assert_string_equal(rd_runner_state_name(RD_RUNNER_BUSY), "busy");
    assert_string_equal(rd_runner_state_name(RD_RUNNER_STOPPING), "stopping");
    assert_string_equal(rd_runner_state_name(RD_RUNNER_EXITED), "exited");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_happy_path),
        cmocka_unit_test(test_exit_deletes_registration),
        cmocka_unit_test(test_startup_timeout),
        cmocka_unit_test(test_startup_timer_after_online_ignored),
        cmocka_unit_test(test_image_missing_counts_failure),
        cmocka_unit_test(test_fast_job_exit_zero_is_success),
        cmocka_unit_test(test_job_timeout),
        cmocka_unit_test(test_stop_idle_and_force_busy),
        cmocka_unit_test(test_stop_while_registering),
        cmocka_unit_test(test_register_and_spawn_failures),
        cmocka_unit_test(test_crash_after_online_is_failure),
        cmocka_unit_test(test_adopt),
        cmocka_unit_test(test_state_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
