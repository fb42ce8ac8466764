/* ghjson.h: GitHub JSON payloads -> plain structs (pure; json-c inside).
 * Every parser validates types and ranges and returns RD_EPROTO on a bad shape
 * without leaking; results own their strings. */
#ifndef RUNNERD_GHJSON_H
#define RUNNERD_GHJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    RD_GH_QUEUED = 0,
    RD_GH_IN_PROGRESS,
    RD_GH_COMPLETED,
    RD_GH_WAITING,
    RD_GH_REQUESTED,
    RD_GH_PENDING,
    RD_GH_OTHER
} rd_gh_status_t;

typedef struct {
    int64_t id;
    int64_t run_id;
    rd_gh_status_t status;
    char **labels;
    size_t nlabels;
    int64_t created_ms; /* created_at; 0 when absent */
    int64_t started_ms; /* started_at; 0 when absent or null */
    int64_t runner_id;  /* 0 when null */
    char *runner_name;  /* NULL when null */
    char *repo;         /* "owner/name" when the payload says (webhooks), else NULL */
} rd_gh_job_t;

typedef struct {
    int64_t id;
    rd_gh_status_t status;
} rd_gh_run_t;

typedef struct {
    int64_t id;
    char *name;
    bool online;
    bool busy;
    char **labels;
    size_t nlabels;
} rd_gh_runner_t;

typedef struct {
    char *name;      /* "hello-world" */
    char *full_name; /* "octo-org/hello-world" */
    bool archived;
    bool disabled;
} rd_gh_repo_t;

typedef struct {
    int64_t id;
    char *name;
} rd_gh_group_t;

/* Lists: .v/.n; total_count when the payload has it, else -1. */
typedef struct {
    rd_gh_job_t *v;
    size_t n;
    int64_t total_count;
} rd_gh_jobs_t;
typedef struct {
    rd_gh_run_t *v;
    size_t n;
    int64_t total_count;
} rd_gh_runs_t;
typedef struct {
    rd_gh_runner_t *v;
    size_t n;
    int64_t total_count;
} rd_gh_runners_t;
typedef struct {
    rd_gh_repo_t *v;
    size_t n;
    int64_t total_count;
} rd_gh_repos_t;
typedef struct {
    rd_gh_group_t *v;
    size_t n;
    int64_t total_count;
} rd_gh_groups_t;

int rd_ghjson_parse_runs(const char *body, size_t len,
                         rd_gh_runs_t *out); /* {total_count, workflow_runs} */
int rd_ghjson_parse_jobs(const char *body, size_t len, rd_gh_jobs_t *out); /* {total_count, jobs} */
int rd_ghjson_parse_job(const char *body, size_t len, rd_gh_job_t *out);   /* one job */
int rd_ghjson_parse_runners(const char *body, size_t len,
                            rd_gh_runners_t *out); /* {total_count, runners} */
int rd_ghjson_parse_runner(const char *body, size_t len, rd_gh_runner_t *out);
/** Bare array (/orgs/{org}/repos) or {repositories:[...]} (/installation/repositories). */
int rd_ghjson_parse_repos(const char *body, size_t len, rd_gh_repos_t *out);
/**
 * Keep only the repositories of org in l: full_name "ORG/NAME" (owner compared
 * without case) agreeing with name, which holds no '/'. Returns how many were
 * dropped; *first_dropped (when not NULL) gets a copy of the first dropped
 * full_name, or NULL. An org listing naming another owner's repository must not
 * make runnerd poll it (issue 17 F8).
 */
size_t rd_ghjson_repos_keep_org(rd_gh_repos_t *l, const char *org, char **first_dropped);
int rd_ghjson_parse_groups(const char *body, size_t len, rd_gh_groups_t *out);
/** 201 of generate-jitconfig: runner id and the encoded config (a secret: caller registers it with
 * rd_log_add_secret). */
int rd_ghjson_parse_jitconfig(const char *body, size_t len, int64_t *runner_id, char **encoded_jit);
/** {token, expires_at} (installation or registration token). */
int rd_ghjson_parse_token(const char *body, size_t len, char **token, int64_t *expires_ms);
/** GET .../installation or one item of /app/installations: id and account.login. */
int rd_ghjson_parse_installation(const char *body, size_t len, int64_t *id, char **account);
int rd_ghjson_parse_installations(const char *body, size_t len, int64_t **ids, char ***accounts,
                                  size_t *n);
/** Error body: message and documentation_url (either may be NULL). */
int rd_ghjson_parse_error(const char *body, size_t len, char **message, char **doc_url);
/** workflow_job webhook: action ("queued", ...), the job (with repo from repository.full_name). */
int rd_ghjson_parse_workflow_job_event(const char *body, size_t len, char **action,
                                       rd_gh_job_t *job);

/**
 * A list body (runs, jobs, runners, repositories, runner groups) reduced to the
 * keys the list parsers read (heap, *out_len set), or NULL when it is not one
 * complete JSON document. The ETag cache keeps bodies in this form: a workflow
 * run object shrinks from ~5 KB to ~40 bytes. One pass, no tree (ghjson_compact.c);
 * refuses what json-c's strict mode refuses, and comments, single quotes, "True".
 */
char *rd_ghjson_compact(const char *body, size_t len, size_t *out_len);

/** Parse one complete JSON document of at most max bytes (json-c object, the
 * caller's to put), or NULL when it is empty, too long, incomplete or followed
 * by anything but whitespace. Shared with the broker's parsers (scaleset.c). */
struct json_object;
struct json_object *rd_ghjson_parse_doc(const char *body, size_t len, size_t max);

/** Parse an RFC 3339 time ("2020-01-22T12:13:35.123-08:00", "...Z") into ms since the epoch. */
int rd_parse_rfc3339_ms(const char *s, int64_t *out_ms);
rd_gh_status_t rd_gh_status_parse(const char *s);

void rd_gh_job_clear(rd_gh_job_t *j);
/** dst = a deep copy of src (dst's old contents are not freed). */
void rd_gh_job_copy(rd_gh_job_t *dst, const rd_gh_job_t *src);
void rd_gh_jobs_free(rd_gh_jobs_t *l);
void rd_gh_runs_free(rd_gh_runs_t *l);
void rd_gh_runner_clear(rd_gh_runner_t *r);
void rd_gh_runners_free(rd_gh_runners_t *l);
void rd_gh_repos_free(rd_gh_repos_t *l);
void rd_gh_groups_free(rd_gh_groups_t *l);

#endif
