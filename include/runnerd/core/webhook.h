/* webhook.h: GitHub webhook deliveries (pure): signature check, replay cache,
 * workflow_job classification.
 *
 * The listener hands a delivery (event name, delivery id, signature header,
 * raw body) to the daemon; the daemon calls rd_webhook_process(), which decides
 * the HTTP answer and, for an accepted workflow_job delivery, what happened to
 * which job. Nothing here reads a clock or a file: the secret and now_ms are
 * passed in. */
#ifndef RUNNERD_WEBHOOK_H
#define RUNNERD_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runnerd/core/ghjson.h"

/* "sha256=" + 64 hex digits + NUL. */
#define RD_WEBHOOK_SIG_SIZE 72

/* Defaults for the replay cache: GitHub retries and manual redeliveries reuse the
 * delivery id; 4096 ids over 24 h covers a busy host's redelivery window. */
#define RD_WEBHOOK_DEDUP_CAPACITY 4096
#define RD_WEBHOOK_DEDUP_MAX_AGE_MS (24LL * 3600 * 1000)
/* Longer delivery ids than this are refused as malformed (GitHub's are GUIDs). */
#define RD_WEBHOOK_DELIVERY_MAX 128

/**
 * Compute "sha256=<64 lower-case hex>" of HMAC-SHA256(secret, body) into out
 * (RD_WEBHOOK_SIG_SIZE bytes). Used by tests and the bench to sign deliveries.
 */
void rd_webhook_sign(const void *secret, size_t secret_len, const void *body, size_t len,
                     char out[RD_WEBHOOK_SIG_SIZE]);

/**
 * Check an X-Hub-Signature-256 header value against the raw body.
 * The value must be "sha256=" followed by exactly 64 hex digits (either case).
 * The digests are compared in constant time (CRYPTO_memcmp).
 * Returns 0 when it matches, RD_EINVAL when the header is missing or malformed,
 * RD_EAUTH when it does not match. An empty secret never matches.
 */
int rd_webhook_verify(const void *secret, size_t secret_len, const void *body, size_t len,
                      const char *signature);

/* Replay cache of delivery ids: bounded in count and age, O(1) lookups. */
typedef struct rd_webhook_dedup rd_webhook_dedup_t;

/** capacity ids at most (the oldest is forgotten first), each for max_age_ms at most. */
rd_webhook_dedup_t *rd_webhook_dedup_new(size_t capacity, int64_t max_age_ms);
void rd_webhook_dedup_free(rd_webhook_dedup_t *d);
/** True when id was added less than max_age_ms before now_ms and not yet evicted. */
bool rd_webhook_dedup_contains(rd_webhook_dedup_t *d, const char *id, int64_t now_ms);
/** Remember id as seen at now_ms (refreshes it when already there). */
void rd_webhook_dedup_add(rd_webhook_dedup_t *d, const char *id, int64_t now_ms);
/** Ids currently remembered (including expired ones not yet evicted). */
size_t rd_webhook_dedup_count(const rd_webhook_dedup_t *d);

/* What a delivery came to; also the `result` label of runnerd_webhook_deliveries_total. */
typedef enum {
    RD_WEBHOOK_ACCEPTED = 0,  /* 200: a workflow_job delivery the daemon must apply */
    RD_WEBHOOK_DUPLICATE,     /* 200: delivery id seen before; nothing changes */
    RD_WEBHOOK_PING,          /* 200: the "ping" event sent when a hook is created */
    RD_WEBHOOK_IGNORED,       /* 202: another event, or a workflow_job action we do not use */
    RD_WEBHOOK_BAD_SIGNATURE, /* 401: signature missing, malformed or wrong */
    RD_WEBHOOK_MALFORMED,     /* 400: missing headers, JSON that is not a workflow_job event */
    RD_WEBHOOK_TOO_LARGE,     /* 413: set by the listener, never by rd_webhook_process */
    RD_WEBHOOK_DISABLED,      /* 404: no webhook_secret_file configured */
    RD_WEBHOOK_RESULT_COUNT
} rd_webhook_result_t;

/** "accepted", "duplicate", "ping", "ignored", "bad_signature", "malformed", "too_large",
 * "disabled". */
const char *rd_webhook_result_name(rd_webhook_result_t r);

/* What an accepted workflow_job delivery says about its job. */
typedef enum {
    RD_WEBHOOK_JOB_NONE = 0,
    RD_WEBHOOK_JOB_QUEUED,      /* add to demand (status "queued") */
    RD_WEBHOOK_JOB_IN_PROGRESS, /* a runner took it: remove from demand */
    RD_WEBHOOK_JOB_COMPLETED,   /* finished or cancelled: remove from demand */
    RD_WEBHOOK_JOB_WAITING,     /* waiting for an environment approval: not demand */
} rd_webhook_job_action_t;

/** "none", "queued", "in_progress", "completed", "waiting". */
const char *rd_webhook_job_action_name(rd_webhook_job_action_t a);

typedef struct {
    rd_webhook_result_t result;
    int http_status;                /* 200, 202, 400, 401, 404 */
    const char *message;            /* static text for the response body */
    rd_webhook_job_action_t action; /* RD_WEBHOOK_JOB_NONE unless result is ACCEPTED */
    rd_gh_job_t job; /* valid when action != NONE; rd_webhook_outcome_clear frees it */
} rd_webhook_outcome_t;

/**
 * The JSON of a form-encoded delivery: body is application/x-www-form-urlencoded
 * (GitHub's default content type for a webhook) and its `payload` field holds the
 * URL-encoded JSON. *out (heap, NUL-terminated, *out_len bytes) is that field
 * decoded ('+' is a space, %XX a byte). RD_EINVAL when there is no payload field
 * or a %-escape is malformed.
 */
int rd_webhook_form_payload(const char *body, size_t len, char **out, size_t *out_len);

/** True when a Content-Type value names application/x-www-form-urlencoded (any case,
 * parameters such as charset allowed). */
bool rd_webhook_is_form(const char *content_type);

/**
 * Decide what to do with one delivery, in this order:
 *   no secret (NULL or empty)             -> 404 disabled
 *   signature missing/malformed/wrong     -> 401 bad_signature
 *   no X-GitHub-Event                     -> 400 malformed
 *   event "ping"                          -> 200 ping
 *   event other than "workflow_job"       -> 202 ignored
 *   no or overlong X-GitHub-Delivery      -> 400 malformed
 *   delivery id in the replay cache       -> 200 duplicate
 *   form body (content_type application/x-www-form-urlencoded) without a
 *   well-formed payload field             -> 400 malformed
 *   body (or its payload) not a workflow_job event -> 400 malformed
 *   action not queued/in_progress/completed/waiting -> 202 ignored (id remembered)
 *   otherwise                             -> 200 accepted, id remembered, action + job set.
 * A queued action whose job status is "waiting" (an environment approval) is
 * reported as RD_WEBHOOK_JOB_WAITING. Only deliveries that were authenticated
 * and parsed enter the replay cache, so a failed delivery can be redelivered.
 * The signature is over the raw body whatever the content type; content_type
 * (the Content-Type header, NULL when absent) chooses how the body is read:
 * form-encoded (rd_webhook_is_form) or, otherwise, JSON as GitHub's
 * application/json deliveries.
 * Always fills *out; the caller calls rd_webhook_outcome_clear afterwards.
 */
void rd_webhook_process(const void *secret, size_t secret_len, rd_webhook_dedup_t *dedup,
                        const char *event, const char *delivery, const char *signature,
                        const char *content_type, const char *body, size_t len, int64_t now_ms,
                        rd_webhook_outcome_t *out);

void rd_webhook_outcome_clear(rd_webhook_outcome_t *o);

#endif
