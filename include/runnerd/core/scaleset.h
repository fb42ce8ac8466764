/* scaleset.h: GitHub's runner scale-set broker, the pure part (DESIGN.md section 5).
 *
 * JSON payloads of the broker -> plain structs, request bodies and URLs, and the
 * capacity arithmetic a host advertises and acquires by. "P x.y" in comments names
 * the section of /work/shared/scaleset-protocol.md a rule comes from; docs/fleet.md
 * lists the decisions where the protocol is silent.
 *
 * Parsers: a leading UTF-8 BOM is skipped (P 2), bodies over RD_SS_MAX_BODY are
 * refused, fields we do not use are ignored, ids must be > 0, strings are copied
 * (owned by the result, released by its _free), and every error leaves the result
 * empty and answers RD_EPROTO (RD_ENOENT where the doc says so). */
#ifndef RUNNERD_SCALESET_H
#define RUNNERD_SCALESET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runnerd/core/config.h"
#include "runnerd/core/sched.h"

#define RD_SS_MAX_BODY (4u * 1024u * 1024u) /* a message holds at most 50 jobs (P 3.4) */
#define RD_SS_MAX_JOBS 1000u                /* inner messages kept from one message */
#define RD_SS_API_VERSION "6.0-preview"     /* P 2 */

/** Offset of the JSON text after an optional UTF-8 BOM (0 or 3). */
size_t rd_ss_bom_len(const char *body, size_t len);

/* ---- errors (P 2: {"typeName","message"}, matched by substring) ---- */
typedef enum {
    RD_SS_ERR_OTHER = 0,
    RD_SS_ERR_SESSION_CONFLICT, /* RunnerScaleSetSessionConflictException (409) */
    RD_SS_ERR_SESSION_EXPIRED,  /* RunnerScaleSetSessionExpiredException */
    RD_SS_ERR_AGENT_EXISTS,     /* AgentExistsException */
    RD_SS_ERR_AGENT_NOT_FOUND,  /* AgentNotFoundException */
    RD_SS_ERR_JOB_RUNNING,      /* JobStillRunningException */
    RD_SS_ERR_NOT_FOUND,        /* any other ...NotFoundException (scale set gone: P 6.6) */
} rd_ss_err_kind_t;

/** Classify an error body (JSON or text/plain; never fails). */
rd_ss_err_kind_t rd_ss_parse_error(const char *body, size_t len);

/* ---- bootstrap (P 1.3, 1.4, 1.5) ---- */
typedef struct {
    char *token;
    int64_t expires_ms; /* registration token: expires_at; admin token: JWT exp */
    char *url;          /* runner-registration: the Actions service base URL, ends in '/' */
} rd_ss_token_t;
void rd_ss_token_free(rd_ss_token_t *t);
/** 201 of .../registration-token: {"token","expires_at"}. */
int rd_ss_parse_reg_token(const char *body, size_t len, rd_ss_token_t *out);
/** 2xx of actions/runner-registration: {"url","token"}; expires_ms from the JWT's exp. */
int rd_ss_parse_registration(const char *body, size_t len, rd_ss_token_t *out);
/** exp of a JWT, read without verifying (P 1.5), in ms. RD_EPROTO when absent. */
int rd_ss_jwt_exp_ms(const char *jwt, int64_t *out_ms);

/* ---- scale sets, groups (P 3.1, 3.2) ---- */
typedef struct {
    int64_t id;
    char *name;
    int64_t group_id;
    char **labels; /* label names */
    size_t nlabels;
} rd_ss_scale_set_t;
void rd_ss_scale_set_free(rd_ss_scale_set_t *s);
/** One RunnerScaleSet object. */
int rd_ss_parse_scale_set(const char *body, size_t len, rd_ss_scale_set_t *out);
/** {"count","value":[...]}: the first; RD_ENOENT when count is 0. */
int rd_ss_parse_scale_set_list(const char *body, size_t len, rd_ss_scale_set_t *out);
/** {"count","value":[RunnerGroup]}: the id of the only one; RD_ENOENT when none, RD_EPROTO > 1. */
int rd_ss_parse_group_list(const char *body, size_t len, int64_t *out_id);
/** Whether a scale set's labels equal want (case-insensitive, order ignored; the set's own
 * name may be among its labels without being wanted, P 3.2). */
bool rd_ss_labels_match(const rd_ss_scale_set_t *s, const char *const *want, size_t nwant);

/* ---- statistics (P 4.3) ---- */
typedef struct {
    int64_t available, acquired, assigned, running, registered, busy, idle;
} rd_ss_stats_t;

/* ---- sessions (P 3.3) ---- */
typedef struct {
    char *session_id; /* UUID text */
    char *owner;
    char *queue_url; /* opaque (P 9.9) */
    char *queue_token;
    int64_t queue_token_exp_ms; /* 0 when the token is not a JWT with exp */
    rd_ss_stats_t stats;
} rd_ss_session_t;
void rd_ss_session_free(rd_ss_session_t *s);
/** A session; sessionId and statistics are required (P 3.3: the listener refuses without). */
int rd_ss_parse_session(const char *body, size_t len, rd_ss_session_t *out);

/* ---- messages (P 4) ---- */
typedef enum {
    RD_SS_JOB_OTHER = 0, /* unknown inner types are ignored (P 4.1) */
    RD_SS_JOB_AVAILABLE,
    RD_SS_JOB_ASSIGNED,
    RD_SS_JOB_STARTED,
    RD_SS_JOB_COMPLETED,
} rd_ss_job_kind_t;

typedef struct {
    rd_ss_job_kind_t kind;
    int64_t request_id; /* runnerRequestId; 0 when absent (P 9.4) */
    char *job_id;       /* string (P 4.2); NULL when absent */
    int64_t runner_id;  /* Started/Completed; 0 when absent */
    char *runner_name;  /* NULL when absent */
    char *result;       /* Completed: "succeeded", "canceled", ...; NULL when absent */
    char *owner, *repo; /* NULL when absent */
} rd_ss_job_msg_t;

typedef struct {
    int64_t message_id;
    bool job_messages; /* messageType RunnerScaleSetJobMessages; others carry no jobs */
    bool has_stats;
    rd_ss_stats_t stats;
    rd_ss_job_msg_t *jobs;
    size_t njobs;
    size_t dropped; /* inner messages of unknown type or beyond RD_SS_MAX_JOBS */
} rd_ss_message_t;
void rd_ss_message_free(rd_ss_message_t *m);
/** A 200 of the long poll. body is a JSON string holding a JSON array (double-encoded). */
int rd_ss_parse_message(const char *body, size_t len, rd_ss_message_t *out);

/** acquirejobs 200 {"count","value":[ids]}; *out heap (free()). */
int rd_ss_parse_acquired(const char *body, size_t len, int64_t **out, size_t *n);

/* ---- runners (P 3.7) ---- */
typedef struct {
    int64_t id;
    char *name;
    int64_t scale_set_id; /* 0 when absent */
    bool busy;
    bool online; /* status "online" */
    char *jit;   /* generatejitconfig only: encodedJITConfig (a secret) */
} rd_ss_agent_t;
void rd_ss_agent_free(rd_ss_agent_t *a);
void rd_ss_agents_free(rd_ss_agent_t *v, size_t n);
/** generatejitconfig 200: {"runner":{...},"encodedJITConfig"}. */
int rd_ss_parse_jit(const char *body, size_t len, rd_ss_agent_t *out);
/** One RunnerReference. */
int rd_ss_parse_agent(const char *body, size_t len, rd_ss_agent_t *out);
/** {"count","value":[RunnerReference]}; *out heap array. */
int rd_ss_parse_agent_list(const char *body, size_t len, rd_ss_agent_t **out, size_t *n);

/* ---- request bodies and URLs (heap strings) ---- */
/** {"url": config_url, "runner_event": "register"} (P 1.4). */
char *rd_ss_body_registration(const char *config_url);
/** Create/update body: name, runnerGroupId, labels [{"name","type":"System"}],
 * RunnerSetting {"ephemeral":true,"disableUpdate":true} (P 3.2). */
char *rd_ss_body_scale_set(const char *name, int64_t group_id, const char *const *labels,
                           size_t nlabels);
char *rd_ss_body_session(const char *owner);
char *rd_ss_body_jit(const char *runner_name);
char *rd_ss_body_acquire(const int64_t *ids, size_t n);
/** service base (ends in '/') + rel + "?api-version=" or "&api-version=" (P 2). */
char *rd_ss_service_url(const char *base, const char *rel);
/** The long poll URL: lastMessageId added to the query only when > 0 (P 3.4). */
char *rd_ss_poll_url(const char *queue_url, int64_t last_message_id);
/** The ack URL: "/<id>" appended to the path, the query kept (P 3.5). */
char *rd_ss_ack_url(const char *queue_url, int64_t message_id);
/** github.web_url derived from api_url (DESIGN.md 5): api.HOST -> HOST, HOST/api/v3 -> HOST,
 * anything else as is. */
char *rd_ss_web_url(const char *api_url);
/** Config URL of a target: <web_url>/<org> or <web_url>/<owner>/<repo> (P 1.1). */
char *rd_ss_config_url(const char *web_url, const rd_target_t *t);
/** "runnerd-<instance>-<pool>" (DESIGN.md 5). */
char *rd_ss_set_name(const char *instance, const char *pool);

/* ---- capacity (DESIGN.md 5) ---- */
/**
 * How many more runners of pools[pool] the host could start now, under the pool's
 * max_runners and the host's max_runners, free cpus, memory and gpus, given the runners
 * that hold capacity (rd_supervisor_snapshot). 0 while draining/stopping.
 */
unsigned rd_ss_room(const rd_host_config_t *host, const rd_pool_t *pools, size_t npools,
                    size_t pool, const rd_sched_runner_t *runners, size_t nrunners, bool draining);

typedef struct {
    unsigned live;          /* runners of this scale set on this host (not exited) */
    unsigned busy;          /* of them, running a job */
    unsigned room;          /* rd_ss_room */
    unsigned pending;       /* jobs acquired/assigned to the set that no runner has taken yet */
    int64_t total_assigned; /* statistics.totalAssignedJobs of the last message/session */
    bool stopping;          /* pool draining or daemon stopping */
} rd_ss_cap_input_t;

/** X-ScaleSetMaxCapacity: live + room, 0 while stopping. */
unsigned rd_ss_advertise(const rd_ss_cap_input_t *in);
/** How many of `offered` JobAvailable ids to acquire: up to room - pending, 0 while stopping. */
unsigned rd_ss_acquire_count(const rd_ss_cap_input_t *in, size_t offered);
/** wanted = min(pool max_runners, min_idle + totalAssignedJobs) (P 5); 0 while stopping. */
unsigned rd_ss_wanted(const rd_pool_t *pool, const rd_ss_cap_input_t *in);
/** Runners to start now: wanted - live, capped by room. */
unsigned rd_ss_starts(const rd_pool_t *pool, const rd_ss_cap_input_t *in);
/** Idle runners beyond what is wanted (candidates to stop). */
unsigned rd_ss_surplus(const rd_pool_t *pool, const rd_ss_cap_input_t *in);

#endif
