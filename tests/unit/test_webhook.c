/* test_webhook.c: signature vectors, replay cache, workflow_job classification. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runnerd/core/common.h"
#include "runnerd/core/webhook.h"

static const char vec_secret[] = "It's a Secret to Everybody";
static const char vec_body[] = "Hello, World!";
static const char vec_sig[] =
    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

static char *read_fixture(const char *name, size_t *len)
{
    char *path = rd_xasprintf("%s/tests/fixtures/github/%s", RD_SRC_DIR, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    free(path);
    size_t cap = 4096, n = 0;
    char *buf = rd_xmalloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap)
            buf = rd_xrealloc(buf, cap *= 2);
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static void test_sign_vector(void **state)
{
    char out[RD_WEBHOOK_SIG_SIZE];
    rd_webhook_sign(vec_secret, strlen(vec_secret), vec_body, strlen(vec_body), out);
    assert_string_equal(out, vec_sig);
}

static void test_verify_vector(void **state)
{
    assert_int_equal(
        rd_webhook_verify(vec_secret, strlen(vec_secret), vec_body, strlen(vec_body), vec_sig), 0);
}

static void test_verify_wrong_secret(void **state)
{
    static const char other[] = "It's a Secret to Nobody";
    assert_int_equal(rd_webhook_verify(other, strlen(other), vec_body, strlen(vec_body), vec_sig),
                     RD_EAUTH);
}

static void test_verify_wrong_body(void **state)
{
    static const char body[] = "Hello, World?";
    assert_int_equal(rd_webhook_verify(vec_secret, strlen(vec_secret), body, strlen(body), vec_sig),
                     RD_EAUTH);
    /* One byte more (a trailing newline) must also fail: the HMAC is over the raw bytes. */
    static const char body2[] = "Hello, World!\n";
    assert_int_equal(
        rd_webhook_verify(vec_secret, strlen(vec_secret), body2, strlen(body2), vec_sig), RD_EAUTH);
}

static void test_verify_missing_prefix(void **state)
{
    const char *hex = vec_sig + strlen("sha256=");
    assert_int_equal(
        rd_webhook_verify(vec_secret, strlen(vec_secret), vec_body, strlen(vec_body), hex),
        RD_EINVAL);
    char sha1[128];
    snprintf(sha1, sizeof(sha1), "sha1=%s", hex);
    assert_int_equal(
        rd_webhook_verify(vec_secret, strlen(vec_secret), vec_body, strlen(vec_body), sha1),
        RD_EINVAL);
    char upper_prefix[128];
    snprintf(upper_prefix, sizeof(upper_prefix), "SHA256=%s", hex);
    assert_int_equal(
        rd_webhook_verify(vec_secret, strlen(vec_secret), vec_body, strlen(vec_body), upper_prefix),
        RD_EINVAL);
    assert_int_equal(
        rd_webhook_verify(vec_secret, strlen(vec_secret), vec_body, strlen(vec_body), NULL),
        RD_EINVAL);
    assert_int_equal(
        rd_webhook_verify(vec_secret, strlen(vec_secret), vec_body, strlen(vec_body), ""),
        RD_EINVAL);
}

static void test_verify_uppercase_hex(void **state)
{
    /* Hex digits are case-insensitive: the digest bytes are what is compared. */
    char up[RD_WEBHOOK_SIG_SIZE];
    strcpy(up, vec_sig);
    for (char *p = up + 7; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    assert_int_equal(
        rd_webhook_verify(vec_secret, strlen(vec_secret), vec_body, strlen(vec_body), up), 0);
}

static void test_verify_truncated_and_garbage(void **state)
{
    char buf[RD_WEBHOOK_SIG_SIZE + 8];
    /* Truncated by one and by half a digest. */
    snprintf(buf, sizeof(buf), "%.*s", (int)strlen(vec_sig) - 1, vec_sig);
    assert_int_equal(
        rd_webhook_verify(vec_secret, strlen(vec_secret), vec_body, strlen(vec_body), buf),
        RD_EINVAL);
    snprintf(buf, sizeof(buf), "%.*s", 7 + 32, vec_sig);
    assert_int_equal(
        rd_webhook_verify(vec_secret, strlen(vec_secret), vec_body, strlen(vec_body), buf),
        RD_EINVAL);
    /* Too long. */
    snprintf(buf, sizeof(buf), "%s00", vec_sig);
    assert_int_equal(
        rd_webhook_verify(vec_secret, strlen(vec_secret), vec_body, strlen(vec_body), buf),
        RD_EINVAL);
    /* Not hex. */
    strcpy(buf, vec_sig);
    buf[20] = 'g';
    assert_int_equal(
        rd_webhook_verify(vec_secret, strlen(vec_secret), vec_body, strlen(vec_body), buf),
        RD_EINVAL);
    /* Last digit flipped: well formed, wrong. */
    strcpy(buf, vec_sig);
    buf[strlen(buf) - 1] = '6';
    assert_int_equal(
        rd_webhook_verify(vec_secret, strlen(vec_secret), vec_body, strlen(vec_body), buf),
        RD_EAUTH);
}

static void test_verify_empty_secret(void **state)
{
    char sig[RD_WEBHOOK_SIG_SIZE];
    rd_webhook_sign("", 0, vec_body, strlen(vec_body), sig);
    assert_int_equal(rd_webhook_verify("", 0, vec_body, strlen(vec_body), sig), RD_EAUTH);
    assert_int_equal(rd_webhook_verify(NULL, 0, vec_body, strlen(vec_body), sig), RD_EAUTH);
}

static void test_verify_empty_body(void **state)
{
    char sig[RD_WEBHOOK_SIG_SIZE];
    rd_webhook_sign(vec_secret, strlen(vec_secret), "", 0, sig);
    assert_int_equal(rd_webhook_verify(vec_secret, strlen(vec_secret), "", 0, sig), 0);
    assert_int_equal(rd_webhook_verify(vec_secret, strlen(vec_secret), vec_body, 1, sig), RD_EAUTH);
}

static void test_dedup_basic(void **state)
{
    rd_webhook_dedup_t *d = rd_webhook_dedup_new(4, 1000);
    assert_false(rd_webhook_dedup_contains(d, "a", 0));
    rd_webhook_dedup_add(d, "a", 0);
    assert_true(rd_webhook_dedup_contains(d, "a", 0));
    assert_true(rd_webhook_dedup_contains(d, "a", 999));
    /* Age limit. */
    assert_false(rd_webhook_dedup_contains(d, "a", 1000));
    /* Refresh: re-adding an expired id makes it fresh again and does not double count. */
    rd_webhook_dedup_add(d, "a", 1000);
    assert_true(rd_webhook_dedup_contains(d, "a", 1500));
    assert_int_equal(rd_webhook_dedup_count(d), 1);
    rd_webhook_dedup_free(d);
}

static void test_dedup_capacity(void **state)
{
    rd_webhook_dedup_t *d = rd_webhook_dedup_new(3, 1000000);
    rd_webhook_dedup_add(d, "id-1", 1);
    rd_webhook_dedup_add(d, "id-2", 2);
    rd_webhook_dedup_add(d, "id-3", 3);
    assert_int_equal(rd_webhook_dedup_count(d), 3);
    rd_webhook_dedup_add(d, "id-4", 4);
    assert_int_equal(rd_webhook_dedup_count(d), 3);
    /* The oldest was forgotten first. */
    assert_false(rd_webhook_dedup_contains(d, "id-1", 5));
    assert_true(rd_webhook_dedup_contains(d, "id-2", 5));
    assert_true(rd_webhook_dedup_contains(d, "id-3", 5));
    assert_true(rd_webhook_dedup_contains(d, "id-4", 5));
    rd_webhook_dedup_free(d);
}

static void test_dedup_many(void **state)
{
    /* Fill far past capacity: the index stays consistent (ASan checks the memory). */
    rd_webhook_dedup_t *d =
        rd_webhook_dedup_new(RD_WEBHOOK_DEDUP_CAPACITY, RD_WEBHOOK_DEDUP_MAX_AGE_MS);
    char id[64];
    for (int i = 0; i < 3 * RD_WEBHOOK_DEDUP_CAPACITY; i++) {
        snprintf(id, sizeof(id), "72d3162e-cc78-11e3-81ab-%012d", i);
        assert_false(rd_webhook_dedup_contains(d, id, i));
        rd_webhook_dedup_add(d, id, i);
    }
    assert_int_equal(rd_webhook_dedup_count(d), RD_WEBHOOK_DEDUP_CAPACITY);
    for (int i = 0; i < 3 * RD_WEBHOOK_DEDUP_CAPACITY; i++) {
        snprintf(id, sizeof(id), "72d3162e-cc78-11e3-81ab-%012d", i);
        bool want = i >= 2 * RD_WEBHOOK_DEDUP_CAPACITY;
        if (rd_webhook_dedup_contains(d, id, 3 * RD_WEBHOOK_DEDUP_CAPACITY) != want)
            fail_msg("id %d: contains != %d", i, want);
    }
    rd_webhook_dedup_free(d);
}

typedef struct {
    rd_webhook_dedup_t *dedup;
} ctx_t;

static int setup(void **state)
{
    ctx_t *c = rd_xcalloc(1, sizeof(*c));
    c->dedup = rd_webhook_dedup_new(RD_WEBHOOK_DEDUP_CAPACITY, RD_WEBHOOK_DEDUP_MAX_AGE_MS);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    ctx_t *c = *state;
    rd_webhook_dedup_free(c->dedup);
    free(c);
    return 0;
}

/* Sign body with the test secret and run it through rd_webhook_process. */
static void deliver(ctx_t *c, const char *event, const char *delivery, const char *body, size_t len,
                    rd_webhook_outcome_t *out)
{
    char sig[RD_WEBHOOK_SIG_SIZE];
    rd_webhook_sign(vec_secret, strlen(vec_secret), body, len, sig);
    rd_webhook_process(vec_secret, strlen(vec_secret), c->dedup, event, delivery, sig,
                       "application/json", body, len, 1000, out);
}

static void expect_fixture(ctx_t *c, const char *fixture, const char *delivery,
                           rd_webhook_job_action_t action, int64_t job_id)
{
    size_t len;
    char *body = read_fixture(fixture, &len);
    rd_webhook_outcome_t o;
    deliver(c, "workflow_job", delivery, body, len, &o);
    if (o.result != RD_WEBHOOK_ACCEPTED)
        fail_msg("%s: result %s (%s), want accepted", fixture, rd_webhook_result_name(o.result),
                 o.message);
    assert_int_equal(o.http_status, 200);
    if (o.action != action)
        fail_msg("%s: action %s, want %s", fixture, rd_webhook_job_action_name(o.action),
                 rd_webhook_job_action_name(action));
    assert_int_equal(o.job.id, job_id);
    assert_non_null(o.job.repo);
    rd_webhook_outcome_clear(&o);
    free(body);
}

static void test_process_fixtures(void **state)
{
    ctx_t *c = *state;
    expect_fixture(c, "webhook-workflow_job-queued.json", "d-1", RD_WEBHOOK_JOB_QUEUED, 289782451);
    expect_fixture(c, "webhook-workflow_job-in_progress.json", "d-2", RD_WEBHOOK_JOB_IN_PROGRESS,
                   289782451);
    expect_fixture(c, "webhook-workflow_job-in_progress-with-queued-steps.json", "d-3",
                   RD_WEBHOOK_JOB_IN_PROGRESS, 14541957942);
    expect_fixture(c, "webhook-workflow_job-completed.json", "d-4", RD_WEBHOOK_JOB_COMPLETED,
                   289782451);
    expect_fixture(c, "webhook-workflow_job-completed-failure.json", "d-5",
                   RD_WEBHOOK_JOB_COMPLETED, 289782451);
    expect_fixture(c, "webhook-workflow_job-waiting.json", "d-6", RD_WEBHOOK_JOB_WAITING,
                   12877621891);
    /* queued with status "waiting" (environment approval): not demand yet. */
    expect_fixture(c, "webhook-workflow_job-queued-with-deployment.json", "d-7",
                   RD_WEBHOOK_JOB_WAITING, 12877621891);
}

static void test_process_queued_labels(void **state)
{
    ctx_t *c = *state;
    size_t len;
    char *body = read_fixture("webhook-workflow_job-queued.json", &len);
    rd_webhook_outcome_t o;
    deliver(c, "workflow_job", "lbl-1", body, len, &o);
    assert_int_equal(o.result, RD_WEBHOOK_ACCEPTED);
    assert_int_equal(o.job.nlabels, 1);
    assert_string_equal(o.job.labels[0], "ubuntu-latest");
    assert_string_equal(o.job.repo, "Codertocat/Hello-World");
    rd_webhook_outcome_clear(&o);
    free(body);
}

static void test_process_replay(void **state)
{
    ctx_t *c = *state;
    size_t len;
    char *body = read_fixture("webhook-workflow_job-queued.json", &len);
    rd_webhook_outcome_t o;
    deliver(c, "workflow_job", "72d3162e-cc78-11e3-81ab-4c9367dc0958", body, len, &o);
    assert_int_equal(o.result, RD_WEBHOOK_ACCEPTED);
    rd_webhook_outcome_clear(&o);
    deliver(c, "workflow_job", "72d3162e-cc78-11e3-81ab-4c9367dc0958", body, len, &o);
    assert_int_equal(o.result, RD_WEBHOOK_DUPLICATE);
    assert_int_equal(o.http_status, 200);
    assert_string_equal(o.message, "duplicate");
    assert_int_equal(o.action, RD_WEBHOOK_JOB_NONE);
    rd_webhook_outcome_clear(&o);
    /* Another id with the same body is a new delivery. */
    deliver(c, "workflow_job", "72d3162e-cc78-11e3-81ab-4c9367dc0959", body, len, &o);
    assert_int_equal(o.result, RD_WEBHOOK_ACCEPTED);
    rd_webhook_outcome_clear(&o);
    free(body);
}

/* X-GitHub-Delivery is not signed, so it is not required: a signed delivery
 * without it (or with an empty one) is applied and not remembered. */
static void test_process_no_delivery_id(void **state)
{
    ctx_t *c = *state;
    rd_webhook_outcome_t o;
    expect_fixture(c, "webhook-workflow_job-queued.json", NULL, RD_WEBHOOK_JOB_QUEUED, 289782451);
    expect_fixture(c, "webhook-workflow_job-queued.json", "", RD_WEBHOOK_JOB_QUEUED, 289782451);
    assert_int_equal(rd_webhook_dedup_count(c->dedup), 0);
    /* The signature is still required. */
    size_t len;
    char *body = read_fixture("webhook-workflow_job-queued.json", &len);
    rd_webhook_process(vec_secret, strlen(vec_secret), c->dedup, "workflow_job", NULL,
                       "sha256=0000000000000000000000000000000000000000000000000000000000000000",
                       NULL, body, len, 1000, &o);
    assert_int_equal(o.result, RD_WEBHOOK_BAD_SIGNATURE);
    rd_webhook_outcome_clear(&o);
    free(body);
}

static void test_process_bad_signature(void **state)
{
    ctx_t *c = *state;
    size_t len;
    char *body = read_fixture("webhook-workflow_job-queued.json", &len);
    rd_webhook_outcome_t o;
    char sig[RD_WEBHOOK_SIG_SIZE];
    rd_webhook_sign("wrong secret", 12, body, len, sig);
    rd_webhook_process(vec_secret, strlen(vec_secret), c->dedup, "workflow_job", "bs-1", sig, NULL,
                       body, len, 1000, &o);
    assert_int_equal(o.result, RD_WEBHOOK_BAD_SIGNATURE);
    assert_int_equal(o.http_status, 401);
    rd_webhook_outcome_clear(&o);
    rd_webhook_process(vec_secret, strlen(vec_secret), c->dedup, "workflow_job", "bs-1", NULL, NULL,
                       body, len, 1000, &o);
    assert_int_equal(o.http_status, 401);
    rd_webhook_outcome_clear(&o);
    /* A refused delivery is not remembered: its genuine redelivery is accepted. */
    assert_int_equal(rd_webhook_dedup_count(c->dedup), 0);
    deliver(c, "workflow_job", "bs-1", body, len, &o);
    assert_int_equal(o.result, RD_WEBHOOK_ACCEPTED);
    rd_webhook_outcome_clear(&o);
    free(body);
}

static void test_process_disabled(void **state)
{
    ctx_t *c = *state;
    rd_webhook_outcome_t o;
    rd_webhook_process(NULL, 0, c->dedup, "workflow_job", "x", vec_sig, NULL, vec_body,
                       strlen(vec_body), 0, &o);
    assert_int_equal(o.result, RD_WEBHOOK_DISABLED);
    assert_int_equal(o.http_status, 404);
    rd_webhook_outcome_clear(&o);
}

static void test_process_events(void **state)
{
    ctx_t *c = *state;
    static const char ping[] = "{\"zen\":\"Design for failure.\",\"hook_id\":1}";
    rd_webhook_outcome_t o;
    deliver(c, "ping", "p-1", ping, strlen(ping), &o);
    assert_int_equal(o.result, RD_WEBHOOK_PING);
    assert_int_equal(o.http_status, 200);
    rd_webhook_outcome_clear(&o);
    deliver(c, "push", "p-2", ping, strlen(ping), &o);
    assert_int_equal(o.result, RD_WEBHOOK_IGNORED);
    assert_int_equal(o.http_status, 202);
    rd_webhook_outcome_clear(&o);
    deliver(c, NULL, "p-3", ping, strlen(ping), &o);
    assert_int_equal(o.result, RD_WEBHOOK_MALFORMED);
    assert_int_equal(o.http_status, 400);
    rd_webhook_outcome_clear(&o);
}

static void test_process_malformed(void **state)
{
    ctx_t *c = *state;
    static const char *bodies[] = {
        "",
        "{",
        "not json",
        "[]",
        "{\"action\":\"queued\"}",
        "{\"action\":\"queued\",\"workflow_job\":\"x\"}",
    };
    rd_webhook_outcome_t o;
    for (size_t i = 0; i < RD_ARRAY_SIZE(bodies); i++) {
        deliver(c, "workflow_job", "m-1", bodies[i], strlen(bodies[i]), &o);
        if (o.result != RD_WEBHOOK_MALFORMED || o.http_status != 400)
            fail_msg("body %zu '%s': result %s status %d", i, bodies[i],
                     rd_webhook_result_name(o.result), o.http_status);
        rd_webhook_outcome_clear(&o);
    }
    /* Truncated fixture. */
    size_t len;
    char *body = read_fixture("webhook-workflow_job-queued.json", &len);
    deliver(c, "workflow_job", "m-2", body, len / 2, &o);
    assert_int_equal(o.result, RD_WEBHOOK_MALFORMED);
    rd_webhook_outcome_clear(&o);
    free(body);
    assert_int_equal(rd_webhook_dedup_count(c->dedup), 0);
}

static void test_process_unknown_action(void **state)
{
    ctx_t *c = *state;
    static const char body[] =
        "{\"action\":\"requested\",\"workflow_job\":{\"id\":7,\"run_id\":8,\"status\":"
        "\"requested\",\"labels\":[\"x\"],\"created_at\":\"2021-09-13T02:21:13Z\","
        "\"runner_id\":null,\"runner_name\":null},\"repository\":{\"full_name\":\"o/r\"}}";
    rd_webhook_outcome_t o;
    deliver(c, "workflow_job", "u-1", body, strlen(body), &o);
    assert_int_equal(o.result, RD_WEBHOOK_IGNORED);
    assert_int_equal(o.http_status, 202);
    assert_int_equal(o.action, RD_WEBHOOK_JOB_NONE);
    rd_webhook_outcome_clear(&o);
}

static void test_names(void **state)
{
    for (int r = 0; r < RD_WEBHOOK_RESULT_COUNT; r++)
        assert_string_not_equal(rd_webhook_result_name((rd_webhook_result_t)r), "unknown");
    assert_string_equal(rd_webhook_result_name(RD_WEBHOOK_BAD_SIGNATURE), "bad_signature");
    assert_string_equal(rd_webhook_job_action_name(RD_WEBHOOK_JOB_IN_PROGRESS), "in_progress");
}

/* GitHub's default content type for a hook: application/x-www-form-urlencoded,
 * the JSON URL-encoded in the payload field (issue 14 item 4). */

static void test_form_payload(void **state)
{
    (void)state;
    static const struct {
        const char *body, *want; /* want NULL: RD_EINVAL */
    } cases[] = {
        {"payload=%7B%22a%22%3A1%7D", "{\"a\":1}"},
        {"a=b&payload=x+y%21&c=d", "x y!"},
        {"pay%6Coad=%7b%7D", "{}"}, /* the name is decoded too; escapes in either case */
        {"payload=", ""},
        {"payloads=1", NULL},
        {"xpayload=1", NULL},
        {"payload", NULL},
        {"payload=%4", NULL},
        {"payload=%zz", NULL},
        {"payload=%", NULL},
        {"", NULL},
        {"a=1&b=2", NULL},
    };
    for (size_t i = 0; i < RD_ARRAY_SIZE(cases); i++) {
        char *out = NULL;
        size_t n = 7;
        int rc = rd_webhook_form_payload(cases[i].body, strlen(cases[i].body), &out, &n);
        if (cases[i].want == NULL) {
            if (rc != RD_EINVAL || out != NULL)
                fail_msg("'%s': rc %d, want RD_EINVAL", cases[i].body, rc);
            continue;
        }
        if (rc != 0)
            fail_msg("'%s': rc %d", cases[i].body, rc);
        assert_int_equal(n, strlen(cases[i].want));
        assert_string_equal(out, cases[i].want);
        free(out);
    }
    /* A %00 decodes to a NUL byte inside the length (JSON parsing then refuses it). */
    char *out = NULL;
    size_t n = 0;
    assert_int_equal(rd_webhook_form_payload("payload=a%00b", 13, &out, &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "a\0b", 3);
    free(out);
}

static void test_is_form(void **state)
{
    (void)state;
    assert_true(rd_webhook_is_form("application/x-www-form-urlencoded"));
    assert_true(rd_webhook_is_form("Application/X-WWW-Form-Urlencoded; charset=utf-8"));
    assert_true(rd_webhook_is_form(" application/x-www-form-urlencoded ;"));
    assert_false(rd_webhook_is_form("application/json"));
    assert_false(rd_webhook_is_form("application/x-www-form-urlencodedx"));
    assert_false(rd_webhook_is_form("multipart/form-data"));
    assert_false(rd_webhook_is_form(""));
    assert_false(rd_webhook_is_form(NULL));
}

/* body as GitHub sends it with content type form: payload=<JSON, URL-encoded>
 * (spaces as '+', every byte but the unreserved ones as %XX, as Ruby's URI does). */
static char *form_encode(const char *json, size_t len, size_t *out_len)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = rd_xmalloc(8 + 3 * len + 1);
    size_t k = 0;
    memcpy(out, "payload=", 8);
    k = 8;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)json[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '*') {
            out[k++] = (char)ch;
        } else if (ch == ' ') {
            out[k++] = '+';
        } else {
            out[k++] = '%';
            out[k++] = hex[ch >> 4];
            out[k++] = hex[ch & 15];
        }
    }
    out[k] = '\0';
    *out_len = k;
    return out;
}

static void test_process_form(void **state)
{
    ctx_t *c = *state;
    static const char *const fixtures[] = {
        "webhook-workflow_job-queued.json",
        "webhook-workflow_job-queued-with-deployment.json",
        "webhook-workflow_job-in_progress.json",
        "webhook-workflow_job-in_progress-with-queued-steps.json",
        "webhook-workflow_job-completed.json",
        "webhook-workflow_job-completed-failure.json",
        "webhook-workflow_job-waiting.json",
    };
    static const char form_type[] = "application/x-www-form-urlencoded";
    for (size_t i = 0; i < RD_ARRAY_SIZE(fixtures); i++) {
        size_t len, flen;
        char *json = read_fixture(fixtures[i], &len);
        char *form = form_encode(json, len, &flen);
        char sig[RD_WEBHOOK_SIG_SIZE];
        rd_webhook_outcome_t a, b;
        /* The JSON delivery and the form delivery of the same payload agree. */
        rd_webhook_sign(vec_secret, strlen(vec_secret), json, len, sig);
        rd_webhook_process(vec_secret, strlen(vec_secret), NULL, "workflow_job", NULL, sig,
                           "application/json", json, len, 1000, &a);
        rd_webhook_sign(vec_secret, strlen(vec_secret), form, flen, sig);
        rd_webhook_process(vec_secret, strlen(vec_secret), NULL, "workflow_job", NULL, sig,
                           form_type, form, flen, 1000, &b);
        if (b.result != RD_WEBHOOK_ACCEPTED)
            fail_msg("%s as a form: %s (%s)", fixtures[i], rd_webhook_result_name(b.result),
                     b.message);
        assert_int_equal(a.result, RD_WEBHOOK_ACCEPTED);
        assert_int_equal(b.http_status, 200);
        assert_int_equal(b.action, a.action);
        assert_int_equal(b.job.id, a.job.id);
        assert_int_equal(b.job.run_id, a.job.run_id);
        assert_string_equal(b.job.repo, a.job.repo);
        assert_int_equal(b.job.nlabels, a.job.nlabels);
        for (size_t k = 0; k < a.job.nlabels; k++)
            assert_string_equal(b.job.labels[k], a.job.labels[k]);
        rd_webhook_outcome_clear(&a);
        rd_webhook_outcome_clear(&b);
        /* The signature is over the form as sent, not over the JSON inside it. */
        rd_webhook_sign(vec_secret, strlen(vec_secret), json, len, sig);
        rd_webhook_process(vec_secret, strlen(vec_secret), NULL, "workflow_job", NULL, sig,
                           form_type, form, flen, 1000, &b);
        assert_int_equal(b.result, RD_WEBHOOK_BAD_SIGNATURE);
        rd_webhook_outcome_clear(&b);
        /* Said to be a form, a JSON body has no payload field: 400. */
        rd_webhook_process(vec_secret, strlen(vec_secret), NULL, "workflow_job", NULL, sig,
                           form_type, json, len, 1000, &b);
        assert_int_equal(b.result, RD_WEBHOOK_MALFORMED);
        assert_int_equal(b.http_status, 400);
        rd_webhook_outcome_clear(&b);
        free(form);
        free(json);
    }
    /* The replay cache works the same for forms. */
    size_t len, flen;
    char *json = read_fixture("webhook-workflow_job-queued.json", &len);
    char *form = form_encode(json, len, &flen);
    char sig[RD_WEBHOOK_SIG_SIZE];
    rd_webhook_sign(vec_secret, strlen(vec_secret), form, flen, sig);
    rd_webhook_outcome_t o;
    rd_webhook_process(vec_secret, strlen(vec_secret), c->dedup, "workflow_job", "f-1", sig,
                       form_type, form, flen, 1000, &o);
    assert_int_equal(o.result, RD_WEBHOOK_ACCEPTED);
    rd_webhook_outcome_clear(&o);
    rd_webhook_process(vec_secret, strlen(vec_secret), c->dedup, "workflow_job", "f-1", sig,
                       form_type, form, flen, 2000, &o);
    assert_int_equal(o.result, RD_WEBHOOK_DUPLICATE);
    rd_webhook_outcome_clear(&o);
    /* A malformed escape in the payload: 400, and not remembered. */
    char bad[] = "payload=%7B%2";
    rd_webhook_sign(vec_secret, strlen(vec_secret), bad, strlen(bad), sig);
    rd_webhook_process(vec_secret, strlen(vec_secret), c->dedup, "workflow_job", "f-2", sig,
                       form_type, bad, strlen(bad), 1000, &o);
    assert_int_equal(o.result, RD_WEBHOOK_MALFORMED);
    rd_webhook_outcome_clear(&o);
    assert_false(rd_webhook_dedup_contains(c->dedup, "f-2", 1000));
    free(form);
    free(json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_vector),
        cmocka_unit_test(test_verify_vector),
        cmocka_unit_test(test_verify_wrong_secret),
        cmocka_unit_test(test_verify_wrong_body),
        cmocka_unit_test(test_verify_missing_prefix),
        cmocka_unit_test(test_verify_uppercase_hex),
        cmocka_unit_test(test_verify_truncated_and_garbage),
        cmocka_unit_test(test_verify_empty_secret),
        cmocka_unit_test(test_verify_empty_body),
        cmocka_unit_test(test_dedup_basic),
        cmocka_unit_test(test_dedup_capacity),
        cmocka_unit_test(test_dedup_many),
        cmocka_unit_test_setup_teardown(test_process_fixtures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_process_queued_labels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_process_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_process_no_delivery_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_process_bad_signature, setup, teardown),
        cmocka_unit_test_setup_teardown(test_process_disabled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_process_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_process_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_process_unknown_action, setup, teardown),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_form_payload),
        cmocka_unit_test(test_is_form),
        cmocka_unit_test_setup_teardown(test_process_form, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
