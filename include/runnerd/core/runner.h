/* runner.h: the life of one runner as a pure state machine.
 *
 *   STARTING --online--> IDLE --busy/job started--> BUSY
 *      |                  |                          |
 *      +---- stop, startup or job timeout -----------+--> STOPPING --child exit--> EXITED
 *
 * The supervisor feeds events (registration created, container spawned,
 * what GitHub's runner list says, job hints, timer expiries, child exit, stop
 * requests) with the current time and gets back actions to perform: arm or
 * cancel a timer, spawn, stop or kill the container, delete the GitHub
 * registration, count a failure or a success for the pool's backoff, release
 * the capacity. Busy/idle come from GitHub (list or job data), never guessed.
 * The idle timeout is the scheduler's decision (it stops idle runners through
 * its stop list); the runner only records idle_since_ms. */
#ifndef RUNNERD_RUNNER_H
#define RUNNERD_RUNNER_H

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    RD_RUNNER_STARTING = 0, /* registering, container starting, or not online yet */
    RD_RUNNER_IDLE,         /* online on GitHub, no job */
    RD_RUNNER_BUSY,         /* running a job (GitHub says busy, or a job names it) */
    RD_RUNNER_STOPPING,     /* stop sent; still holds its capacity */
    RD_RUNNER_EXITED,       /* container gone; capacity released */
} rd_runner_state_t;

const char *rd_runner_state_name(rd_runner_state_t s);

typedef enum {
    RD_REV_REGISTERED,      /* generate-jitconfig succeeded: arg = runner id */
    RD_REV_REGISTER_FAILED, /* generate-jitconfig (or group lookup) failed */
    RD_REV_SPAWNED,         /* `docker run` child started (container start time = now) */
    RD_REV_SPAWN_FAILED,    /* uv_spawn failed (docker binary missing...) */
    RD_REV_GH_ONLINE,       /* GitHub list: online, not busy */
    RD_REV_GH_BUSY,         /* GitHub list: online and busy */
    RD_REV_GH_OFFLINE,      /* GitHub list: listed, offline */
    RD_REV_GH_ABSENT,       /* GitHub list: not listed (deleted, e.g. after its one job) */
    RD_REV_JOB_STARTED,     /* a job (webhook/poll) runs on this runner: arg = job id */
    RD_REV_JOB_COMPLETED,   /* that job completed: arg = job id */
    RD_REV_STARTUP_TIMER,   /* startup timer expired */
    RD_REV_JOB_TIMER,       /* job (container life) timer expired */
    RD_REV_KILL_TIMER,      /* stop grace over: kill */
    RD_REV_STOP,            /* stop unless busy (idle stop, drain) */
    RD_REV_STOP_FORCE,      /* stop even if busy (drain grace over) */
    RD_REV_CHILD_EXIT,      /* the `docker run` / `docker wait` child exited: arg = exit code (-1 =
                               signal) */
    RD_REV_DELETED,         /* the registration is gone (delete answered 204/404, or given up) */
} rd_runner_event_t;

/* Action flags. */
enum {
    RD_RACT_SPAWN = 1u << 0,       /* spawn `docker run` now */
    RD_RACT_ARM_STARTUP = 1u << 1, /* (re)arm the startup timer for startup_ms */
    RD_RACT_CANCEL_STARTUP = 1u << 2,
    RD_RACT_ARM_JOB = 1u << 3, /* (re)arm the job timer for job_ms */
    RD_RACT_CANCEL_JOB = 1u << 4,
    RD_RACT_ARM_KILL = 1u << 5, /* (re)arm the kill timer for kill_ms */
    RD_RACT_CANCEL_KILL = 1u << 6,
    RD_RACT_STOP_CONTAINER = 1u << 7, /* `docker stop -t GRACE NAME` */
    RD_RACT_KILL_CONTAINER = 1u << 8, /* `docker kill NAME` */
    RD_RACT_DELETE_REG = 1u << 9, /* DELETE the runner registration (then feed RD_REV_DELETED) */
    RD_RACT_COUNT_FAILURE = 1u << 10, /* the pool's backoff: one more failure */
    RD_RACT_COUNT_SUCCESS = 1u << 11, /* the pool's backoff: reset */
    RD_RACT_RELEASE = 1u << 12,       /* capacity is free (entered EXITED) */
    RD_RACT_CHANGED = 1u << 13,       /* state changed: tell the scheduler */
    RD_RACT_DONE = 1u << 14,          /* exited and registration gone: forget the runner */
};

typedef struct {
    unsigned flags;
    uint64_t startup_ms; /* with RD_RACT_ARM_STARTUP */
    uint64_t job_ms;     /* with RD_RACT_ARM_JOB */
    uint64_t kill_ms;    /* with RD_RACT_ARM_KILL */
} rd_runner_actions_t;

typedef struct {
    uint64_t startup_timeout_ms; /* container running and runner online within this */
    uint64_t job_timeout_ms;     /* hard limit on the container's life */
    uint64_t stop_grace_ms;      /* docker stop -t; kill after this plus kill_slack_ms */
    uint64_t kill_slack_ms;      /* extra time for docker stop itself; 0 = 5 s */
} rd_runner_limits_t;

typedef struct {
    rd_runner_state_t state;
    rd_runner_limits_t limits;
    int64_t created_ms;         /* when the start was decided */
    int64_t container_start_ms; /* 0 until spawned / adopted */
    int64_t idle_since_ms;      /* IDLE: when it went idle */
    int64_t job_id;             /* job it was started for, then the job it runs; 0 = none */
    int64_t runner_id;          /* GitHub runner id; 0 until registered */
    bool registering;           /* generate-jitconfig in flight */
    bool has_container;         /* a `docker run` or `docker wait` child is supervising it */
    bool ever_online;
    bool ever_busy;
    bool stop_requested; /* STOP / STOP_FORCE / a timeout made us stop it */
    bool startup_timed_out;
    bool job_timed_out;
    bool reg_gone; /* GitHub no longer has the registration */
    bool deleting; /* a delete is in flight (supervisor retries it) */
    bool failed;   /* counted as a failure */
    int exit_code; /* valid in EXITED; -2 = never ran */
} rd_runner_t;

/**
 * A runner about to be registered and spawned. Actions: ARM_STARTUP (the
 * startup timeout covers registration, image pull and coming online).
 */
void rd_runner_init(rd_runner_t *r, const rd_runner_limits_t *limits, int64_t job_id,
                    int64_t now_ms, rd_runner_actions_t *act);

/* What GitHub said about an adopted runner at restart. */
typedef enum {
    RD_GH_UNKNOWN = 0, /* the list failed */
    RD_GH_ONLINE_IDLE,
    RD_GH_ONLINE_BUSY,
    RD_GH_OFFLINE,
    RD_GH_ABSENT,
} rd_runner_gh_t;

/**
 * A running container found at restart (its `docker wait` child is being
 * spawned). Timers are re-armed from the container's start time: the job timer
 * for what is left of job_timeout, the startup timer (only when not online)
 * for what is left of startup_timeout, but at least min_startup_ms when GitHub
 * could not be asked, so a busy runner is not stopped blind.
 */
void rd_runner_adopt(rd_runner_t *r, const rd_runner_limits_t *limits, int64_t runner_id,
                     int64_t started_ms, rd_runner_gh_t gh, uint64_t min_startup_ms, int64_t now_ms,
                     rd_runner_actions_t *act);

/** Feed one event; arg as documented per event. Actions are written to *act. */
void rd_runner_event(rd_runner_t *r, rd_runner_event_t ev, int64_t arg, int64_t now_ms,
                     rd_runner_actions_t *act);

/** True while the runner holds host capacity (not EXITED). */
bool rd_runner_holds_capacity(const rd_runner_t *r);

#endif
