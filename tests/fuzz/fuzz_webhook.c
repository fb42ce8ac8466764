/* fuzz_webhook: the webhook delivery path of rd_webhook_process (signature
 * check, event and delivery headers, replay cache, workflow_job JSON).
 *
 * Input: byte 0 holds flags, then the header values the flags ask for, one per
 * '\n'-terminated line, then the body (the rest, exact length):
 *   bit 0-1 = 3   replay-cache mode instead (see dedup_ops below)
 *   bit 2         the target signs the body with the secret itself, so that the
 *                 fuzzer reaches the JSON; else a signature line is read
 *   bit 3         an X-GitHub-Event line is read; else "workflow_job"
 *   bit 4         an X-GitHub-Delivery line is read; else a fixed id
 *   bit 5         no secret configured
 *   bit 6         (not signing) no signature header at all: no line is read
 *   bit 7         (no delivery line) no delivery header at all
 * A body that starts with "payload=" is sent as application/x-www-form-urlencoded
 * (GitHub's default content type: the JSON URL-encoded in the payload field).
 * The outcome is checked against the order of rules in webhook.h, and an
 * accepted delivery is replayed to check the replay cache. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "runnerd/core/webhook.h"

#define SECRET "fuzz-webhook-secret"
#define MAX_AGE_MS 60000

static int expected_status(rd_webhook_result_t r)
{
    switch (r) {
    case RD_WEBHOOK_ACCEPTED:
    case RD_WEBHOOK_DUPLICATE:
    case RD_WEBHOOK_PING:
        return 200;
    case RD_WEBHOOK_IGNORED:
        return 202;
    case RD_WEBHOOK_BAD_SIGNATURE:
        return 401;
    case RD_WEBHOOK_MALFORMED:
        return 400;
    case RD_WEBHOOK_TOO_LARGE:
        return 413;
    case RD_WEBHOOK_DISABLED:
        return 404;
    default:
        return -1;
    }
}

static void check_outcome(const rd_webhook_outcome_t *o)
{
    FZ_CHECK(o->result >= 0 && o->result < RD_WEBHOOK_RESULT_COUNT);
    FZ_CHECK(o->result != RD_WEBHOOK_TOO_LARGE);
    FZ_CHECK(o->http_status == expected_status(o->result));
    FZ_CHECK(o->message != NULL);
    FZ_CHECK(rd_webhook_result_name(o->result) != NULL);
    FZ_CHECK((o->action != RD_WEBHOOK_JOB_NONE) == (o->result == RD_WEBHOOK_ACCEPTED));
    FZ_CHECK(rd_webhook_job_action_name(o->action) != NULL);
    if (o->action != RD_WEBHOOK_JOB_NONE) {
        for (size_t i = 0; i < o->job.nlabels; i++)
            FZ_CHECK(o->job.labels[i] != NULL);
    }
}

/* Replay cache against what its contract promises: an id never added (or added
 * longer than max_age ago) is never reported, the id just added always is, and
 * it never holds more than its capacity. Ops: 2 bytes each, op byte (bit 0:
 * add/contains, bits 1-7 time step) and an id byte (ids come from a small set
 * so that they repeat). */
static void dedup_ops(const uint8_t *data, size_t size)
{
    size_t cap = 1 + (size > 0 ? data[0] % 8 : 0);
    int64_t max_age = 50;
    rd_webhook_dedup_t *d = rd_webhook_dedup_new(cap, max_age);
    int64_t last_add[16];
    for (int i = 0; i < 16; i++)
        last_add[i] = INT64_MIN;
    int64_t now = 1000;
    for (size_t i = 1; i + 1 < size; i += 2) {
        uint8_t op = data[i], idb = data[i + 1] % 16;
        char id[16];
        snprintf(id, sizeof id, "id-%u", idb);
        now += op >> 1;
        if (op & 1) {
            rd_webhook_dedup_add(d, id, now);
            last_add[idb] = now;
            FZ_CHECK(rd_webhook_dedup_contains(d, id, now));
        } else {
            bool in = rd_webhook_dedup_contains(d, id, now);
            if (last_add[idb] == INT64_MIN || now - last_add[idb] >= max_age)
                FZ_CHECK(!in);
        }
        FZ_CHECK(rd_webhook_dedup_count(d) <= cap);
    }
    rd_webhook_dedup_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_quiet_logs();
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    data++;
    size--;
    if ((flags & 3) == 3) {
        dedup_ops(data, size);
        return 0;
    }
    bool sign = flags & 4, no_secret = flags & 32;
    char *event = (flags & 8) ? fz_take_line(&data, &size) : strdup("workflow_job");
    char *delivery = (flags & 16)    ? fz_take_line(&data, &size)
                     : (flags & 128) ? NULL
                                     : strdup("72d3162e-cc78-11e3-81ab-4c9367dc0958");
    char *signature = NULL;
    if (!sign && !(flags & 64))
        signature = fz_take_line(&data, &size);
    /* The body: an exact-length copy, so that any read past it is caught. */
    char *body = malloc(size ? size : 1);
    if (size)
        memcpy(body, data, size);

    const char *secret = no_secret ? "" : SECRET;
    size_t secret_len = strlen(secret);
    char sig[RD_WEBHOOK_SIG_SIZE];
    if (sign) {
        rd_webhook_sign(SECRET, strlen(SECRET), body, size, sig);
        FZ_CHECK(rd_webhook_verify(SECRET, strlen(SECRET), body, size, sig) == 0);
    }
    const char *sigp = sign ? sig : signature;

    rd_webhook_dedup_t *dedup = rd_webhook_dedup_new(4, MAX_AGE_MS);
    rd_webhook_outcome_t o;
    int64_t now = 1700000000000LL;
    const char *ctype = size >= 8 && memcmp(body, "payload=", 8) == 0
                            ? "application/x-www-form-urlencoded"
                            : "application/json";
    rd_webhook_process(secret, secret_len, dedup, event, delivery, sigp, ctype, body, size, now,
                       &o);
    check_outcome(&o);
    if (o.result == RD_WEBHOOK_ACCEPTED && ctype[12] == 'x') {
        /* Accepted as a form: its payload field decodes. */
        char *json = NULL;
        size_t jl = 0;
        FZ_CHECK(rd_webhook_form_payload(body, size, &json, &jl) == 0 && json[jl] == '\0');
        free(json);
    }
    if (no_secret)
        FZ_CHECK(o.result == RD_WEBHOOK_DISABLED);
    else if (sign)
        FZ_CHECK(o.result != RD_WEBHOOK_BAD_SIGNATURE && o.result != RD_WEBHOOK_DISABLED);
    if (sigp == NULL && !no_secret)
        FZ_CHECK(o.result == RD_WEBHOOK_BAD_SIGNATURE);
    rd_webhook_result_t first = o.result;
    rd_webhook_outcome_clear(&o);

    if (first == RD_WEBHOOK_ACCEPTED) {
        /* GitHub redelivers with the same id: the second is a duplicate (a delivery
         * without an id, or with an empty one, is applied again: nothing to match) ... */
        bool has_id = delivery != NULL && delivery[0] != '\0';
        rd_webhook_process(secret, secret_len, dedup, event, delivery, sigp, ctype, body, size,
                           now + 1000, &o);
        check_outcome(&o);
        FZ_CHECK(o.result == (has_id ? RD_WEBHOOK_DUPLICATE : RD_WEBHOOK_ACCEPTED));
        rd_webhook_outcome_clear(&o);
        /* ... until the id has aged out of the cache. */
        rd_webhook_process(secret, secret_len, dedup, event, delivery, sigp, ctype, body, size,
                           now + MAX_AGE_MS + 1000, &o);
        check_outcome(&o);
        FZ_CHECK(o.result == RD_WEBHOOK_ACCEPTED);
        rd_webhook_outcome_clear(&o);
    }

    rd_webhook_dedup_free(dedup);
    free(body);
    free(signature);
    free(delivery);
    free(event);
    return 0;
}
