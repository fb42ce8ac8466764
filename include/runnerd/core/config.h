/* config.h: the parsed, validated runnerd configuration (DESIGN.md section 2).
 *
 * rd_config_load_buffer() builds a complete rd_config_t off to the side from
 * YAML text; every string and array in it is owned by the config and released by one
 * rd_config_free(). Host facts are handed in (the core never reads the host). */
#ifndef RUNNERD_CONFIG_H
#define RUNNERD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { RD_ARCH_UNKNOWN = 0, RD_ARCH_X64, RD_ARCH_ARM64, RD_ARCH_ARM } rd_arch_t;

typedef enum { RD_PULL_MISSING = 0, RD_PULL_ALWAYS, RD_PULL_NEVER } rd_pull_t;

typedef enum { RD_TARGET_REPO = 0, RD_TARGET_ORG } rd_target_kind_t;

/* How a target's jobs are found: REST polling, or GitHub's scale-set broker (docs/fleet.md). */
typedef enum { RD_DISCOVERY_POLL = 0, RD_DISCOVERY_SCALESET } rd_discovery_t;

/* Where a node came from, for messages about it. */
typedef struct {
    int line; /* 1-based */
    int col;  /* 1-based */
} rd_pos_t;

typedef struct {
    char *name;
    char **labels; /* as written; matched case-insensitively */
    size_t nlabels;
    char *image;
    char **command; /* optional; NULL/0 = image default */
    size_t ncommand;
    double cpus;     /* reserved per runner, > 0 */
    uint64_t memory; /* bytes reserved per runner, > 0 */
    unsigned gpus;
    int64_t pids_limit; /* > 0 */
    /* docker --memory-swap (memory plus swap), >= memory; 0 = equal to memory: no swap */
    uint64_t memory_swap;
    /* docker --log-driver (default "none": runnerd reads the output itself); NULL = "none" */
    char *log_driver;
    rd_pull_t pull;
    char *runtime;  /* optional, NULL when unset */
    char *platform; /* optional, e.g. "linux/arm64" */
    unsigned max_runners;
    unsigned min_idle;
    char *runner_group; /* default "Default" */
    uint64_t startup_timeout_ms;
    uint64_t idle_timeout_ms;
    uint64_t job_timeout_ms;
    /* no_new_privileges: false. 0 (the default, and a zeroed pool): docker run gets
     * --security-opt no-new-privileges; 1: it does not (jobs may use sudo). */
    int allow_new_privileges;
    char **env_keys; /* extra container environment, nenv pairs */
    char **env_vals;
    size_t nenv;
    rd_arch_t arch; /* from the arch label, else the platform, else the host's */
    bool emulated;  /* arch differs from the host's (platform: set) */
    rd_pos_t pos;
} rd_pool_t;

typedef struct {
    rd_target_kind_t kind;
    char *owner;  /* org or repo owner */
    char *repo;   /* repo name for RD_TARGET_REPO, NULL for orgs */
    char *scope;  /* "repos/OWNER/REPO" or "orgs/ORG" */
    char **repos; /* org targets: watched repo names; NULL/0 = all */
    size_t nrepos;
    size_t *pools; /* indexes into rd_config_t.pools that serve it (all when unset) */
    size_t npools;
    rd_discovery_t discovery; /* discovery: poll (default) | scaleset */
    rd_pos_t pos;
} rd_target_t;

typedef struct {
    char *api_url; /* no trailing slash */
    char *web_url; /* github.web_url, or derived from api_url (docs/fleet.md); no trailing slash */
    char *token_file;
    char *token_env;
    int64_t app_id;  /* 0 when unset */
    char *client_id; /* the App's client ID (JWT iss), instead of app_id; NULL when unset */
    char *private_key_file;
    int64_t installation_id; /* 0 when unset */
    uint64_t poll_interval_ms;
    unsigned request_budget_per_hour;
    unsigned max_connections;
    char *ca_file;
    /* Where the file/env keys were written, for rd_config_check_files() (io/configfile.h). */
    rd_pos_t token_file_pos, token_env_pos, private_key_file_pos, ca_file_pos, api_url_pos,
        client_id_pos;
    /* The credentials themselves, filled by the I/O shell (rd_config_load_checked reads
     * token_file / token_env / private_key_file once, checked), never by the loader.
     * Secrets: never logged, wiped by rd_config_free. */
    char *token;           /* the PAT, surrounding whitespace trimmed; NULL for an App */
    char *private_key_pem; /* the App key's PEM text (an RSA private key); NULL for a PAT */
    size_t private_key_len;
} rd_github_config_t;

typedef struct {
    double cpus;     /* resolved ("auto" = online cores) */
    uint64_t memory; /* resolved ("auto" = MemTotal - 1GiB) */
    rd_arch_t arch;  /* resolved ("auto" = uname -m) */
    unsigned gpus;
    unsigned max_runners;
} rd_host_config_t;

typedef struct {
    char *binary;
    char *network;
    char **extra_args;
    size_t nextra_args;
} rd_docker_config_t;

typedef struct {
    char *path; /* the file it was loaded from */
    rd_github_config_t github;
    rd_host_config_t host;
    rd_docker_config_t docker;
    uint64_t shutdown_grace_ms;
    char *instance;            /* resolved ("auto" = hostname, sanitised) */
    bool instance_explicit;    /* instance: was written (not auto): fleet mode needs it */
    char *listen;              /* "HOST:PORT" or NULL */
    char *control_socket;      /* absolute path, "" = none, NULL = the default (daemon) */
    char *webhook_secret_file; /* or NULL */
    rd_pos_t webhook_secret_file_pos, listen_pos;
    /* webhook_secret_file's content without trailing newlines, filled by the I/O shell
     * (rd_config_load_checked), never by the loader; a secret, wiped by rd_config_free. */
    char *webhook_secret;
    size_t webhook_secret_len;
    rd_pool_t *pools;
    size_t npools;
    rd_target_t *targets;
    size_t ntargets;
} rd_config_t;

/* What the host looks like; gathered by the I/O side (hostfacts.c) and handed in. */
typedef struct {
    unsigned cores;     /* uv_available_parallelism() */
    uint64_t mem_total; /* bytes, from /proc/meminfo */
    rd_arch_t arch;     /* from uname -m */
    const char *hostname;
} rd_host_facts_t;

/* One error: "file:line:col: path: reason". */
typedef struct {
    char *file;
    int line;
    int col;
    char *path; /* key path, e.g. "pools[1].cpus"; may be "" for syntax errors */
    char *reason;
} rd_config_error_t;

typedef struct {
    rd_config_error_t *v;
    size_t n;
} rd_config_errors_t;

/**
 * Load and validate the configuration text BUF (LEN bytes); `file` names it in
 * messages and relative paths in it are taken relative to its folder. On success
 * returns 0 and sets *out. On failure returns RD_EINVAL, *out stays NULL and
 * every problem found is appended to errs (all of them, not just the first).
 * Reading the file, the files it names and the environment is the I/O shell's
 * (runnerd/io/configfile.h).
 */
int rd_config_load_buffer(const char *file, const char *buf, size_t len,
                          const rd_host_facts_t *facts, rd_config_t **out,
                          rd_config_errors_t *errs);

void rd_config_free(rd_config_t *cfg);
void rd_config_errors_free(rd_config_errors_t *errs);
/** Append one error (or warning: reason "warning: ..."); line 0 = about the whole file. */
void rd_config_errors_add(rd_config_errors_t *errs, const char *file, int line, int col,
                          const char *path, const char *reason);
/** Every error, one "file:line:col: path: reason\n" line each, as one heap
 * string (caller frees; "" when there are none). The shell prints it:
 * rd_config_errors_print in runnerd/io/configfile.h. */
char *rd_config_errors_format(const rd_config_errors_t *errs);
/**
 * One error as "file:line:col: path: reason" (heap string, caller frees), for
 * logging. "file: reason" when the file itself could not be read (line 0).
 */
char *rd_config_error_str(const rd_config_error_t *e);

/**
 * Warnings about a loaded config that need no I/O, appended to WARNINGS as
 * entries whose reason starts with "warning: ": listen on an address other than
 * loopback (the listener has no authentication); api_url on a host other than
 * api.github.com, *.ghe.com or loopback whose path lacks /api/v3 (GHES).
 */
void rd_config_warnings(const rd_config_t *cfg, rd_config_errors_t *warnings);

/**
 * True when HOST (LEN bytes: "localhost", a 127.0.0.0/8 address, "::1" or
 * "[::1]") names this machine's loopback interface.
 */
bool rd_config_host_is_loopback(const char *host, size_t len);

/** The --check-config summary (pools, targets, resolved host capacity): a heap string. */
char *rd_config_summary(const rd_config_t *cfg);

/**
 * How many runners of pool IDX fit on the empty host: the least of the pool's
 * max_runners, host max_runners, host cpus / pool cpus, host memory / pool memory
 * and (when the pool asks for GPUs) host gpus / pool gpus. *limit (if not NULL)
 * gets the binding cap: "pool_max", "host_max", "host_cpus", "host_memory", "host_gpus".
 */
unsigned rd_config_pool_fit(const rd_config_t *cfg, size_t idx, const char **limit);

/** GitHub account (user/org) name: [A-Za-z0-9-], 1..39 characters, no leading hyphen. */
bool rd_config_owner_valid(const char *s);
/** GitHub repository name: [A-Za-z0-9._-], 1..100 characters, not "." or "..". */
bool rd_config_repo_name_valid(const char *s);

/** Index of the pool named NAME, or -1. */
int rd_config_pool_index(const rd_config_t *cfg, const char *name);

/**
 * Index of the target whose runners serve jobs of repository "OWNER/REPO", or -1.
 * A repo target wins over an org target that also covers the repo; among equals
 * the first in the file wins. Owner and repo compare case-insensitively.
 */
int rd_config_target_for_repo(const rd_config_t *cfg, const char *full_name);

/** Parse "30s" / "5m" / "6h" / "250ms" / "1d" / "1h30m" / "90" (seconds) into ms. 0 on success. */
int rd_parse_duration_ms(const char *s, uint64_t *out_ms);
/**
 * Parse "512MiB" / "4GiB" / "1G" / "1.5g" / "1048576" into bytes. 0 on success.
 * As in docker, every unit is binary and case-insensitive: K = KB = KiB = 1024.
 */
int rd_parse_size(const char *s, uint64_t *out_bytes);
/** "x64" for RD_ARCH_X64 etc. */
const char *rd_arch_name(rd_arch_t arch);
/** Map an arch word ("x64", "amd64", "x86_64", "arm64", "aarch64", "arm", "armv7l") or
 * RD_ARCH_UNKNOWN. */
rd_arch_t rd_arch_parse(const char *word);

#endif
