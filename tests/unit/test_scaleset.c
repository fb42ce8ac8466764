/* test_scaleset.c: the broker's payloads (examples from scaleset-protocol.md), URLs,
 * bodies and the capacity arithmetic of fleet mode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runnerd/core/auth.h"
#include "runnerd/core/common.h"
#include "runnerd/core/scaleset.h"

#define S(x) x, strlen(x)

/* A JWT whose payload is {"exp":EXP}. */
static char *jwt_with_exp(long long exp)
{
    char *claims = rd_xasprintf("{\"exp\":%lld,\"iat\":1}", exp);
    char *b = rd_base64url_encode(claims, strlen(claims));
    char *jwt = rd_xasprintf("eyJhbGciOiJSUzI1NiJ9.%s.c2ln", b);
    free(claims);
    free(b);
    return jwt;
}

static void test_bom_and_errors(void **state)
{
    (void)state;
    assert_int_equal(rd_ss_bom_len(S("\xEF\xBB\xBF{}")), 3);
    assert_int_equal(rd_ss_bom_len(S("{}")), 0);
    /* P 2 / ARC #4285: the full typeName */
    const char *conflict =
        "\xEF\xBB\xBF{\"typeName\":\"GitHub.Actions.Runtime.WebApi."
        "RunnerScaleSetSessionConflictException, GitHub.Actions.Runtime.WebApi\","
        "\"message\":\"The actions runner scaleset gha-rs already has an active session.\"}";
    assert_int_equal(rd_ss_parse_error(S(conflict)), RD_SS_ERR_SESSION_CONFLICT);
    assert_int_equal(
        rd_ss_parse_error(S("{\"typeName\":\"GitHub.Actions.Runtime.WebApi."
                            "RunnerScaleSetSessionExpiredException, X\",\"message\":\"m\"}")),
        RD_SS_ERR_SESSION_EXPIRED);
    assert_int_equal(rd_ss_parse_error(S("{\"typeName\":\"AgentExistsException\"}")),
                     RD_SS_ERR_AGENT_EXISTS);
    assert_int_equal(rd_ss_parse_error(S("{\"typeName\":\"X.AgentNotFoundException\"}")),
                     RD_SS_ERR_AGENT_NOT_FOUND);
    assert_int_equal(rd_ss_parse_error(S("{\"typeName\":\"X.JobStillRunningException, Y\"}")),
                     RD_SS_ERR_JOB_RUNNING);
    assert_int_equal(rd_ss_parse_error(S("{\"typeName\":\"RunnerScaleSetNotFoundException\"}")),
                     RD_SS_ERR_NOT_FOUND);
    assert_int_equal(rd_ss_parse_error(S("upstream trouble")), RD_SS_ERR_OTHER);
    assert_int_equal(rd_ss_parse_error(NULL, 0), RD_SS_ERR_OTHER);
}

static void test_bootstrap(void **state)
{
    (void)state;
    rd_ss_token_t t;
    assert_int_equal(rd_ss_parse_reg_token(
                         S("{\"token\":\"AREG1\",\"expires_at\":\"2026-05-01T12:00:00Z\"}"), &t),
                     0);
    assert_string_equal(t.token, "AREG1");
    assert_int_equal(t.expires_ms, 1777636800000LL);
    rd_ss_token_free(&t);
    assert_int_equal(rd_ss_parse_reg_token(S("{\"token\":\"x\"}"), &t), RD_EPROTO);
    assert_null(t.token);

    char *jwt = jwt_with_exp(1800000000);
    char *body =
        rd_xasprintf("\xEF\xBB\xBF{\"url\":\"https://broker.actions.githubusercontent.com/rest\","
                     "\"token\":\"%s\",\"token_schema\":\"OAuthAccessToken\"}",
                     jwt);
    assert_int_equal(rd_ss_parse_registration(S(body), &t), 0);
    assert_string_equal(t.url, "https://broker.actions.githubusercontent.com/rest/");
    assert_int_equal(t.expires_ms, 1800000000000LL);
    rd_ss_token_free(&t);
    free(body);
    /* missing token, non-JWT token, non-http url */
    assert_int_equal(rd_ss_parse_registration(S("{\"url\":\"https://x/\"}"), &t), RD_EPROTO);
    assert_int_equal(rd_ss_parse_registration(S("{\"url\":\"https://x/\",\"token\":\"abc\"}"), &t),
                     RD_EPROTO);
    body = rd_xasprintf("{\"url\":\"file:///etc/\",\"token\":\"%s\"}", jwt);
    assert_int_equal(rd_ss_parse_registration(S(body), &t), RD_EPROTO);
    free(body);
    free(jwt);
    int64_t ms;
    assert_int_equal(rd_ss_jwt_exp_ms("a.b", &ms), RD_EPROTO);
    assert_int_equal(rd_ss_jwt_exp_ms(NULL, &ms), RD_EPROTO);
}

static void test_scale_sets_groups(void **state)
{
    (void)state;
    /* P 3.2's example object */
    const char *one =
        "{ \"id\": 42, \"name\": \"my-set\", \"runnerGroupId\": 1, \"runnerGroupName\": "
        "\"Default\", \"labels\": [ {\"type\": \"System\", \"name\": \"my-set\"}, {\"type\": "
        "\"System\", \"name\": \"gpu\"} ], \"RunnerSetting\": { \"ephemeral\": true, "
        "\"isElastic\": false, \"disableUpdate\": true }, \"createdOn\": "
        "\"2026-05-01T12:00:00Z\", \"runnerJitConfigUrl\": \"...\", \"statistics\": {}, "
        "\"status\": null, \"enabled\": true }";
    rd_ss_scale_set_t s;
    assert_int_equal(rd_ss_parse_scale_set(S(one), &s), 0);
    assert_int_equal(s.id, 42);
    assert_string_equal(s.name, "my-set");
    assert_int_equal(s.group_id, 1);
    assert_int_equal(s.nlabels, 2);
    const char *want[] = {"GPU"};
    assert_true(rd_ss_labels_match(&s, want, 1)); /* the set's own name may be a label */
    const char *want2[] = {"gpu", "linux"};
    assert_false(rd_ss_labels_match(&s, want2, 2));
    rd_ss_scale_set_free(&s);
    char *list = rd_xasprintf("{\"count\":1,\"value\":[%s]}", one);
    assert_int_equal(rd_ss_parse_scale_set_list(S(list), &s), 0);
    assert_int_equal(s.id, 42);
    rd_ss_scale_set_free(&s);
    free(list);
    assert_int_equal(rd_ss_parse_scale_set_list(S("{\"count\":0,\"value\":[]}"), &s), RD_ENOENT);
    assert_int_equal(rd_ss_parse_scale_set(S("{\"id\":0,\"name\":\"x\"}"), &s), RD_EPROTO);
    assert_int_equal(rd_ss_parse_scale_set(S("{\"id\":\"1\",\"name\":\"x\"}"), &s), RD_EPROTO);
    int64_t gid = 0;
    assert_int_equal(rd_ss_parse_group_list(S("{\"count\":1,\"value\":[{\"id\":7,\"name\":\"big\","
                                              "\"size\":0,\"isDefaultGroup\":false}]}"),
                                            &gid),
                     0);
    assert_int_equal(gid, 7);
    assert_int_equal(rd_ss_parse_group_list(S("{\"count\":0,\"value\":[]}"), &gid), RD_ENOENT);
    assert_int_equal(
        rd_ss_parse_group_list(S("{\"count\":2,\"value\":[{\"id\":1},{\"id\":2}]}"), &gid),
        RD_EPROTO);
}

static void test_session(void **state)
{
    (void)state;
    char *jwt = jwt_with_exp(1800000000);
    char *body = rd_xasprintf(
        "{ \"sessionId\": \"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\", \"ownerName\": \"host-a\","
        "\"runnerScaleSet\": {\"id\":42,\"name\":\"x\"},"
        "\"messageQueueUrl\": \"https://broker.actions.githubusercontent.com/scalesets/message\","
        "\"messageQueueAccessToken\": \"%s\","
        "\"statistics\": "
        "{\"totalAvailableJobs\":0,\"totalAcquiredJobs\":0,\"totalAssignedJobs\":12,"
        "\"totalRunningJobs\":8,\"totalRegisteredRunners\":10,\"totalBusyRunners\":8,"
        "\"totalIdleRunners\":0} }",
        jwt);
    rd_ss_session_t s;
    assert_int_equal(rd_ss_parse_session(S(body), &s), 0);
    assert_string_equal(s.session_id, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
    assert_int_equal(s.stats.assigned, 12);
    assert_int_equal(s.stats.running, 8);
    assert_int_equal(s.stats.registered, 10);
    assert_int_equal(s.queue_token_exp_ms, 1800000000000LL);
    rd_ss_session_free(&s);
    free(body);
    /* the nil UUID and a missing statistics block are refused (P 3.3) */
    assert_int_equal(
        rd_ss_parse_session(S("{\"sessionId\":\"00000000-0000-0000-0000-000000000000\","
                              "\"messageQueueUrl\":\"https://b/m\",\"messageQueueAccessToken\":"
                              "\"t\",\"statistics\":{}}"),
                            &s),
        RD_EPROTO);
    assert_int_equal(
        rd_ss_parse_session(S("{\"sessionId\":\"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\","
                              "\"messageQueueUrl\":\"https://b/m\",\"messageQueueAccessToken\":"
                              "\"t\"}"),
                            &s),
        RD_EPROTO);
    free(jwt);
}

static void test_message(void **state)
{
    (void)state;
    /* P 4.1 envelope with a double-encoded body of P 4.2 messages, behind a BOM */
    const char *msg =
        "\xEF\xBB\xBF{ \"messageId\": 100000171, \"messageType\": \"RunnerScaleSetJobMessages\","
        "\"body\": \"[{\\\"messageType\\\":\\\"JobAvailable\\\",\\\"runnerRequestId\\\":11,"
        "\\\"jobId\\\":\\\"a-b\\\",\\\"acquireJobUrl\\\":\\\"u\\\",\\\"requestLabels\\\":["
        "\\\"x\\\"]},"
        "{\\\"messageType\\\":\\\"JobAssigned\\\",\\\"runnerRequestId\\\":12},"
        "{\\\"messageType\\\":\\\"JobStarted\\\",\\\"runnerRequestId\\\":12,\\\"runnerId\\\":5,"
        "\\\"runnerName\\\":\\\"r5\\\"},"
        "{\\\"messageType\\\":\\\"SomethingNew\\\"},"
        "{\\\"messageType\\\":\\\"JobCompleted\\\",\\\"runnerRequestId\\\":10,\\\"result\\\":"
        "\\\"canceled\\\",\\\"runnerId\\\":0}]\","
        "\"statistics\": {\"totalAvailableJobs\":1,\"totalAssignedJobs\":2} }";
    rd_ss_message_t m;
    assert_int_equal(rd_ss_parse_message(S(msg), &m), 0);
    assert_int_equal(m.message_id, 100000171);
    assert_true(m.job_messages);
    assert_true(m.has_stats);
    assert_int_equal(m.stats.assigned, 2);
    assert_int_equal(m.njobs, 4);
    assert_int_equal(m.dropped, 1);
    assert_int_equal(m.jobs[0].kind, RD_SS_JOB_AVAILABLE);
    assert_int_equal(m.jobs[0].request_id, 11);
    assert_string_equal(m.jobs[0].job_id, "a-b");
    assert_int_equal(m.jobs[2].kind, RD_SS_JOB_STARTED);
    assert_int_equal(m.jobs[2].runner_id, 5);
    assert_string_equal(m.jobs[2].runner_name, "r5");
    assert_int_equal(m.jobs[3].kind, RD_SS_JOB_COMPLETED);
    assert_string_equal(m.jobs[3].result, "canceled");
    rd_ss_message_free(&m);
    /* empty/absent body, other message types */
    assert_int_equal(rd_ss_parse_message(S("{\"messageId\":1,\"messageType\":"
                                           "\"RunnerScaleSetJobMessages\",\"body\":\"\"}"),
                                         &m),
                     0);
    assert_int_equal(m.njobs, 0);
    rd_ss_message_free(&m);
    assert_int_equal(rd_ss_parse_message(S("{\"messageId\":2,\"messageType\":\"Other\"}"), &m), 0);
    assert_false(m.job_messages);
    rd_ss_message_free(&m);
    /* a body that is an array, not a string; a body string that is not an array; no id */
    assert_int_equal(rd_ss_parse_message(S("{\"messageId\":1,\"messageType\":"
                                           "\"RunnerScaleSetJobMessages\",\"body\":[]}"),
                                         &m),
                     RD_EPROTO);
    assert_int_equal(rd_ss_parse_message(S("{\"messageId\":1,\"messageType\":"
                                           "\"RunnerScaleSetJobMessages\",\"body\":\"{}\"}"),
                                         &m),
                     RD_EPROTO);
    assert_int_equal(rd_ss_parse_message(S("{\"messageType\":\"RunnerScaleSetJobMessages\"}"), &m),
                     RD_EPROTO);
    assert_int_equal(
        rd_ss_parse_message(S("{\"messageId\":1,\"messageType\":\"RunnerScaleSetJobMessages\","
                              "\"body\":\"[{\\\"messageType\\\":\\\"JobStarted\\\","
                              "\\\"runnerRequestId\\\":\\\"7\\\"}]\"}"),
                            &m),
        RD_EPROTO);
    /* trailing garbage, oversize */
    assert_int_equal(rd_ss_parse_message(S("{\"messageId\":1} x"), &m), RD_EPROTO);
    size_t big = RD_SS_MAX_BODY + 10;
    char *huge = rd_xmalloc(big + 1);
    memset(huge, ' ', big);
    memcpy(huge, "{\"messageId\":1}", 15);
    huge[big] = '\0';
    assert_int_equal(rd_ss_parse_message(huge, big, &m), RD_EPROTO);
    free(huge);
}

static void test_acquired_jit_agents(void **state)
{
    (void)state;
    int64_t *ids;
    size_t n;
    assert_int_equal(rd_ss_parse_acquired(S("{\"count\": 2, \"value\": [1, 2]}"), &ids, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ids[1], 2);
    free(ids);
    assert_int_equal(rd_ss_parse_acquired(S("{\"count\":1,\"value\":[\"1\"]}"), &ids, &n),
                     RD_EPROTO);
    assert_null(ids);
    rd_ss_agent_t a;
    assert_int_equal(rd_ss_parse_jit(S("{\"runner\": {\"id\": 9, \"name\": \"r\", "
                                       "\"runnerScaleSetId\": 42}, \"encodedJITConfig\": "
                                       "\"eyJhIjoiYiJ9\"}"),
                                     &a),
                     0);
    assert_int_equal(a.id, 9);
    assert_int_equal(a.scale_set_id, 42);
    assert_string_equal(a.jit, "eyJhIjoiYiJ9");
    rd_ss_agent_free(&a);
    /* a JIT config that could smuggle anything but base64 */
    assert_int_equal(rd_ss_parse_jit(S("{\"runner\":{\"id\":9,\"name\":\"r\"},"
                                       "\"encodedJITConfig\":\"a b\"}"),
                                     &a),
                     RD_EPROTO);
    assert_int_equal(rd_ss_parse_jit(S("{\"runner\":{\"id\":9,\"name\":\"r\"}}"), &a), RD_EPROTO);
    assert_int_equal(rd_ss_parse_agent(S("{\"id\":3,\"name\":\"r3\",\"status\":\"online\","
                                         "\"busy\":true,\"runnerScaleSetId\":42}"),
                                       &a),
                     0);
    assert_true(a.busy);
    assert_true(a.online);
    rd_ss_agent_free(&a);
    rd_ss_agent_t *v;
    assert_int_equal(rd_ss_parse_agent_list(S("{\"count\":2,\"value\":[{\"id\":1,\"name\":\"a\"},"
                                              "{\"id\":2,\"name\":\"b\",\"busy\":false}]}"),
                                            &v, &n),
                     0);
    assert_int_equal(n, 2);
    assert_string_equal(v[1].name, "b");
    rd_ss_agents_free(v, n);
    assert_int_equal(rd_ss_parse_agent_list(S("{\"value\":[{\"id\":-1,\"name\":\"a\"}]}"), &v, &n),
                     RD_EPROTO);
}

static void test_urls_and_bodies(void **state)
{
    (void)state;
    char *u = rd_ss_service_url("https://b/tenant/123/", "_apis/runtime/runnerscalesets/4");
    assert_string_equal(u, "https://b/tenant/123/_apis/runtime/runnerscalesets/4"
                           "?api-version=6.0-preview");
    free(u);
    u = rd_ss_service_url("https://b/rest/", "_apis/runtime/runnerscalesets?name=x");
    assert_string_equal(u, "https://b/rest/_apis/runtime/runnerscalesets?name=x"
                           "&api-version=6.0-preview");
    free(u);
    u = rd_ss_poll_url("https://b/scalesets/message", 0);
    assert_string_equal(u, "https://b/scalesets/message");
    free(u);
    u = rd_ss_poll_url("https://b/scalesets/message?sid=4", 100025890);
    assert_string_equal(u, "https://b/scalesets/message?sid=4&lastMessageId=100025890");
    free(u);
    u = rd_ss_ack_url("https://b/scalesets/message?sid=4", 100025891);
    assert_string_equal(u, "https://b/scalesets/message/100025891?sid=4");
    free(u);
    u = rd_ss_ack_url("https://b/scalesets/message", 7);
    assert_string_equal(u, "https://b/scalesets/message/7");
    free(u);
    static const struct {
        const char *api, *web;
    } web[] = {
        {"https://api.github.com", "https://github.com"},
        {"https://api.github.com/", "https://github.com"},
        {"https://ghes.corp/api/v3", "https://ghes.corp"},
        {"https://ghes.corp/api/v3/", "https://ghes.corp"},
        {"https://api.acme.ghe.com", "https://acme.ghe.com"},
        {"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
    };
    for (size_t i = 0; i < RD_ARRAY_SIZE(web); i++) {
        u = rd_ss_web_url(web[i].api);
        assert_string_equal(u, web[i].web);
        free(u);
    }
    rd_target_t org = {.kind = RD_TARGET_ORG, .owner = "octo-org"};
    rd_target_t repo = {.kind = RD_TARGET_REPO, .owner = "octo-org", .repo = "fw"};
    u = rd_ss_config_url("https://github.com/", &org);
    assert_string_equal(u, "https://github.com/octo-org");
    free(u);
    u = rd_ss_config_url("https://github.com", &repo);
    assert_string_equal(u, "https://github.com/octo-org/fw");
    free(u);
    u = rd_ss_set_name("build-07", "linux-x64");
    assert_string_equal(u, "runnerd-build-07-linux-x64");
    free(u);
    u = rd_ss_body_registration("https://github.com/octo-org");
    assert_string_equal(u,
                        "{\"url\":\"https://github.com/octo-org\",\"runner_event\":\"register\"}");
    free(u);
    const char *labels[] = {"self-hosted", "linux"};
    u = rd_ss_body_scale_set("runnerd-a-p", 1, labels, 2);
    assert_string_equal(u, "{\"name\":\"runnerd-a-p\",\"runnerGroupId\":1,\"labels\":[{\"name\":"
                           "\"self-hosted\",\"type\":\"System\"},{\"name\":\"linux\",\"type\":"
                           "\"System\"}],\"RunnerSetting\":{\"ephemeral\":true,\"disableUpdate\":"
                           "true}}");
    free(u);
    int64_t ids[] = {1, 2};
    u = rd_ss_body_acquire(ids, 2);
    assert_string_equal(u, "[1,2]");
    free(u);
    u = rd_ss_body_session("host-a");
    assert_string_equal(u, "{\"ownerName\":\"host-a\"}");
    free(u);
    u = rd_ss_body_jit("r-1");
    assert_string_equal(u, "{\"name\":\"r-1\",\"workFolder\":\"_work\"}");
    free(u);
}

static void test_capacity(void **state)
{
    (void)state;
    rd_host_config_t host = {.cpus = 4, .memory = 8ull << 30, .gpus = 0, .max_runners = 3};
    rd_pool_t pools[2] = {{.name = "a", .cpus = 1, .memory = 1ull << 30, .max_runners = 2},
                          {.name = "b", .cpus = 2, .memory = 4ull << 30, .max_runners = 4}};
    rd_sched_runner_t r[3] = {{.pool = 0, .cpus = 1, .memory = 1ull << 30},
                              {.pool = 1, .cpus = 2, .memory = 4ull << 30},
                              {.pool = SIZE_MAX, .cpus = 1, .memory = 1ull << 30}};
    /* pool a: max 2, one live -> 1; host max 3 */
    assert_int_equal(rd_ss_room(&host, pools, 2, 0, NULL, 0, false), 2);
    assert_int_equal(rd_ss_room(&host, pools, 2, 0, r, 1, false), 1);
    assert_int_equal(rd_ss_room(&host, pools, 2, 0, r, 1, true), 0);
    /* pool b: 2 cpus of 4 used by a+b -> one more by cpu, but memory 3 GiB left < 4 */
    assert_int_equal(rd_ss_room(&host, pools, 2, 1, r, 2, false), 0);
    /* host max 3 reached (a runner of a removed pool still counts) */
    assert_int_equal(rd_ss_room(&host, pools, 2, 0, r, 3, false), 0);
    /* gpus */
    host.gpus = 1;
    pools[0].gpus = 1;
    assert_int_equal(rd_ss_room(&host, pools, 2, 0, NULL, 0, false), 1);
    pools[0].gpus = 0;

    pools[0].min_idle = 1;
    rd_ss_cap_input_t in = {.live = 1, .busy = 1, .room = 1, .pending = 0, .total_assigned = 3};
    assert_int_equal(rd_ss_advertise(&in), 2);
    assert_int_equal(rd_ss_wanted(&pools[0], &in), 2); /* min(2, 1 + 3) */
    assert_int_equal(rd_ss_starts(&pools[0], &in), 1);
    assert_int_equal(rd_ss_acquire_count(&in, 5), 1);
    in.pending = 1;
    assert_int_equal(rd_ss_acquire_count(&in, 5), 0);
    in.stopping = true;
    assert_int_equal(rd_ss_advertise(&in), 0);
    assert_int_equal(rd_ss_wanted(&pools[0], &in), 0);
    assert_int_equal(rd_ss_starts(&pools[0], &in), 0);
    in = (rd_ss_cap_input_t){.live = 3, .busy = 0, .room = 0, .total_assigned = 0};
    pools[0].min_idle = 1;
    assert_int_equal(rd_ss_surplus(&pools[0], &in), 2);
    in.total_assigned = 5;
    assert_int_equal(rd_ss_surplus(&pools[0], &in), 1); /* wanted = min(2, 6) */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bom_and_errors),    cmocka_unit_test(test_bootstrap),
        cmocka_unit_test(test_scale_sets_groups), cmocka_unit_test(test_session),
        cmocka_unit_test(test_message),           cmocka_unit_test(test_acquired_jit_agents),
        cmocka_unit_test(test_urls_and_bodies),   cmocka_unit_test(test_capacity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
