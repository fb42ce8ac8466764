/* dockerargv.h: docker CLI argv builders and output parsers (pure).
 *
 * Every argv is a heap array of heap strings ending with NULL, built without a
 * shell. Values that come from the config or from GitHub (names, labels,
 * image, network, runtime, platform) are validated first so that none of them
 * can turn into a flag: they must be non-empty, must not start with '-', and
 * must not contain control characters (newline, tab, ...). The JIT config is
 * never put in argv: `-e ACTIONS_RUNNER_INPUT_JITCONFIG` names the variable,
 * and its value travels in the child's environment. */
#ifndef RUNNERD_DOCKERARGV_H
#define RUNNERD_DOCKERARGV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runnerd/core/common.h"
#include "runnerd/core/config.h"

#define RD_JIT_ENV "ACTIONS_RUNNER_INPUT_JITCONFIG"

/* Container labels runnerd puts on (and reads back from) its containers. */
#define RD_LABEL_INSTANCE "runnerd.instance"
#define RD_LABEL_POOL "runnerd.pool"
#define RD_LABEL_RUNNER_ID "runnerd.runner-id"
#define RD_LABEL_SCOPE "runnerd.scope"

/** What one `docker run` needs besides the config. */
typedef struct {
    const char *binary;   /* docker CLI (argv[0]) */
    const char *name;     /* container and runner name */
    const char *instance; /* runnerd.instance label */
    const char *scope;    /* "repos/o/r" or "orgs/o" */
    int64_t runner_id;    /* GitHub runner id (label) */
    const rd_pool_t *pool;
    const rd_docker_config_t *docker;
} rd_dockerargv_run_t;

/**
 * Build the `docker run` argv of DESIGN.md section 3:
 * BIN run --rm --name NAME --sig-proxy=false --label runnerd.instance=ID
 * --label runnerd.pool=POOL --label runnerd.runner-id=RID --label runnerd.scope=SCOPE
 * --cpus C --memory BYTES --pids-limit N --security-opt no-new-privileges --network NET
 * [--gpus N] [--runtime R] [--platform P] --pull missing|always|never
 * -e ACTIONS_RUNNER_INPUT_JITCONFIG [-e KEY]... [extra_args]... IMAGE [command]...
 * Returns 0 and *out, or RD_EINVAL when a value could become a flag or is malformed.
 */
int rd_dockerargv_run(const rd_dockerargv_run_t *in, char ***out);

/** BIN stop -t GRACE_S NAME */
int rd_dockerargv_stop(const char *binary, const char *name, unsigned grace_s, char ***out);
/** BIN kill NAME */
int rd_dockerargv_kill(const char *binary, const char *name, char ***out);
/** BIN wait NAME */
int rd_dockerargv_wait(const char *binary, const char *name, char ***out);
/** BIN rm -f NAME */
int rd_dockerargv_rm(const char *binary, const char *name, char ***out);
/**
 * BIN ps -a --no-trunc --filter label=runnerd.instance=ID --format
 * '{{.ID}}\t{{.Names}}\t{{.State}}\t{{.Label "runnerd.pool"}}\t{{.Label
 * "runnerd.runner-id"}}\t{{.Label "runnerd.scope"}}'
 */
int rd_dockerargv_ps(const char *binary, const char *instance, char ***out);
/** BIN inspect --format '{{.State.StartedAt}}' NAME (start time for re-arming timers) */
int rd_dockerargv_inspect(const char *binary, const char *name, char ***out);

/** Free an argv from the builders above (NULL is fine). */
void rd_dockerargv_free(char **argv);
/** Number of entries before the terminating NULL. */
size_t rd_dockerargv_len(char *const *argv);

/**
 * True when s is safe as a value that follows a flag or stands alone in argv:
 * non-empty, at most 4096 bytes, first byte not '-', no byte < 0x20 or 0x7f.
 */
bool rd_dockerargv_safe_value(const char *s);
/** True when s is a valid container name: [A-Za-z0-9][A-Za-z0-9_.-]*, at most 128 bytes. */
bool rd_dockerargv_valid_name(const char *s);
/** True when s is a portable environment variable name: [A-Za-z_][A-Za-z0-9_]*. */
bool rd_dockerargv_valid_env_key(const char *s);

/** GitHub's limit on a runner name. */
#define RD_RUNNER_NAME_MAX 64
/** Length of a runner name's suffix: 8 base36 digits of the time in ms (until
 *  2059) and 6 random ones. instance + pool may thus have at most
 *  64 - strlen("runnerd-") - 2 - 14 = 40 characters (checked by the config). */
#define RD_RUNNER_SUFFIX_LEN 14

/**
 * Runner name "runnerd-<instance>-<pool>-<suffix>", the suffix being base36 of
 * now_ms followed by 6 base36 digits of rnd, so two daemons' names (or one
 * daemon's across restarts) do not repeat. The result is a valid container
 * name of at most 64 bytes (GitHub's limit): RD_EINVAL when instance or pool
 * contain other characters than [A-Za-z0-9_.-] or make it too long.
 */
int rd_dockerargv_runner_name(const char *instance, const char *pool, int64_t now_ms, uint64_t rnd,
                              char **out);

/**
 * True when NAME is one of this instance's runner names: "runnerd-<instance>-*"
 * (DESIGN.md), e.g. "runnerd-<instance>-<pool>-<suffix>" with suffix in [a-z0-9]+,
 * or "runnerd-<instance>-orphan-1". Because an instance name may be a prefix of
 * another's, a name of the shape "runnerd-<instance>-<more>-<pool>-<suffix>" for
 * one of the given pools, or "runnerd-<instance>-<more>-<x>-<14-character suffix>"
 * (what another daemon generates), is left to that other daemon.
 */
bool rd_dockerargv_owns_name(const char *name, const char *instance, const char *const *pools,
                             size_t npools);

typedef enum {
    RD_CSTATE_OTHER = 0, /* created, paused, restarting, removing, unknown */
    RD_CSTATE_RUNNING,
    RD_CSTATE_EXITED,
    RD_CSTATE_DEAD,
} rd_cstate_t;

typedef struct {
    char *id;
    char *name;
    rd_cstate_t state;
    char *pool;        /* label, "" when absent */
    int64_t runner_id; /* label, 0 when absent */
    char *scope;       /* label, "" when absent */
} rd_container_t;

typedef struct {
    rd_container_t *v;
    size_t n;
    size_t rejected; /* malformed lines skipped */
} rd_containers_t;

/**
 * Parse the output of rd_dockerargv_ps (len bytes, need not be NUL-terminated).
 * Malformed lines (wrong field count, bad name, bad id, bad runner id) are
 * skipped and counted; empty lines are ignored. Always returns 0 and fills *out.
 */
int rd_dockerargv_parse_ps(const char *buf, size_t len, rd_containers_t *out);
void rd_containers_free(rd_containers_t *l);

/**
 * Parse `docker inspect --format '{{.State.StartedAt}}'` output: an RFC 3339
 * time with optional fraction (any number of digits) and Z or +hh:mm offset.
 * Returns 0 and ms since the epoch, or RD_EINVAL (also for docker's zero time
 * "0001-01-01T00:00:00Z" of a container that never started).
 */
int rd_dockerargv_parse_started_at(const char *buf, size_t len, int64_t *out_ms);

#endif
