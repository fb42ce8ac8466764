/* fuzz_ghjson: every GitHub JSON parser of include/runnerd/ghjson.h.
 *
 * Input: byte 0 picks the parser (modulo the number of parsers), the rest is
 * the body, handed over with its exact length (not NUL-terminated, as the
 * HTTP layer does). Results are checked for the shapes the contract promises
 * and freed (a list also from its compacted form); on an error return the parser must have released
 * everything itself (LeakSanitizer checks). */
#include <ctype.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz_common.h"
#include "runnerd/core/common.h"
#include "runnerd/core/ghjson.h"

static void check_job(const rd_gh_job_t *j)
{
    FZ_CHECK(j->nlabels == 0 || j->labels != NULL);
    for (size_t i = 0; i < j->nlabels; i++)
        FZ_CHECK(j->labels[i] != NULL);
    FZ_CHECK(j->status >= RD_GH_QUEUED && j->status <= RD_GH_OTHER);
}

static void check_runner(const rd_gh_runner_t *r)
{
    FZ_CHECK(r->nlabels == 0 || r->labels != NULL);
    for (size_t i = 0; i < r->nlabels; i++)
        FZ_CHECK(r->labels[i] != NULL);
}

/* json-c in its strict mode accepts body as one document (trailing whitespace
 * and NULs aside, as rd_ghjson_parse_doc allows). */
static bool strict_json(const char *body, size_t len)
{
    json_tokener *tok = json_tokener_new();
    FZ_CHECK(tok != NULL);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *o = json_tokener_parse_ex(tok, body, (int)len);
    bool ok = o != NULL && json_tokener_get_error(tok) == json_tokener_success;
    size_t off = json_tokener_get_parse_end(tok);
    for (; ok && off < len; off++)
        ok = isspace((unsigned char)body[off]) || body[off] == '\0';
    json_object_put(o);
    json_tokener_free(tok);
    return ok;
}

/* A list the parser accepted must parse to as many items from its compacted
 * form (rd_ghjson_compact keeps what the list parsers read; the ETag cache
 * keeps bodies that way). The compactor (a scanner of its own, not json-c)
 * may refuse only what json-c's strict mode refuses too: comments, single
 * quotes, "True" and the like, which GitHub never sends. */
#define CHECK_COMPACT(type, parse, freefn, n_expected)                                             \
    do {                                                                                           \
        size_t clen_ = 0;                                                                          \
        char *c_ = rd_ghjson_compact(body, len, &clen_);                                           \
        if (c_ == NULL) {                                                                          \
            FZ_CHECK(!strict_json(body, len));                                                     \
            break;                                                                                 \
        }                                                                                          \
        type l2_ = {0};                                                                            \
        FZ_CHECK(parse(c_, clen_, &l2_) == 0);                                                     \
        FZ_CHECK(l2_.n == (n_expected));                                                           \
        freefn(&l2_);                                                                              \
        free(c_);                                                                                  \
    } while (0)

enum {
    P_RUNS,
    P_JOBS,
    P_JOB,
    P_RUNNERS,
    P_RUNNER,
    P_REPOS,
    P_GROUPS,
    P_JIT,
    P_TOKEN,
    P_INSTALLATION,
    P_INSTALLATIONS,
    P_ERROR,
    P_WORKFLOW_JOB_EVENT,
    P_STRINGS,
    P_ORG_REPOS,
    P_COUNT
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_quiet_logs();
    if (size < 1)
        return 0;
    unsigned which = data[0] % P_COUNT;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    int rc;

    switch (which) {
    case P_RUNS: {
        rd_gh_runs_t l = {0};
        if ((rc = rd_ghjson_parse_runs(body, len, &l)) == 0) {
            FZ_CHECK(l.n == 0 || l.v != NULL);
            CHECK_COMPACT(rd_gh_runs_t, rd_ghjson_parse_runs, rd_gh_runs_free, l.n);
            rd_gh_runs_free(&l);
        }
        break;
    }
    case P_JOBS: {
        rd_gh_jobs_t l = {0};
        if ((rc = rd_ghjson_parse_jobs(body, len, &l)) == 0) {
            FZ_CHECK(l.n == 0 || l.v != NULL);
            CHECK_COMPACT(rd_gh_jobs_t, rd_ghjson_parse_jobs, rd_gh_jobs_free, l.n);
            for (size_t i = 0; i < l.n; i++)
                check_job(&l.v[i]);
            rd_gh_jobs_free(&l);
        }
        break;
    }
    case P_JOB: {
        rd_gh_job_t j = {0};
        if ((rc = rd_ghjson_parse_job(body, len, &j)) == 0) {
            check_job(&j);
            rd_gh_job_clear(&j);
        }
        break;
    }
    case P_RUNNERS: {
        rd_gh_runners_t l = {0};
        if ((rc = rd_ghjson_parse_runners(body, len, &l)) == 0) {
            FZ_CHECK(l.n == 0 || l.v != NULL);
            CHECK_COMPACT(rd_gh_runners_t, rd_ghjson_parse_runners, rd_gh_runners_free, l.n);
            for (size_t i = 0; i < l.n; i++)
                check_runner(&l.v[i]);
            rd_gh_runners_free(&l);
        }
        break;
    }
    case P_RUNNER: {
        rd_gh_runner_t r = {0};
        if ((rc = rd_ghjson_parse_runner(body, len, &r)) == 0) {
            check_runner(&r);
            rd_gh_runner_clear(&r);
        }
        break;
    }
    case P_REPOS: {
        rd_gh_repos_t l = {0};
        if ((rc = rd_ghjson_parse_repos(body, len, &l)) == 0) {
            FZ_CHECK(l.n == 0 || l.v != NULL);
            CHECK_COMPACT(rd_gh_repos_t, rd_ghjson_parse_repos, rd_gh_repos_free, l.n);
            rd_gh_repos_free(&l);
        }
        break;
    }
    case P_GROUPS: {
        rd_gh_groups_t l = {0};
        if ((rc = rd_ghjson_parse_groups(body, len, &l)) == 0) {
            FZ_CHECK(l.n == 0 || l.v != NULL);
            CHECK_COMPACT(rd_gh_groups_t, rd_ghjson_parse_groups, rd_gh_groups_free, l.n);
            rd_gh_groups_free(&l);
        }
        break;
    }
    case P_JIT: {
        int64_t id = 0;
        char *jit = NULL;
        if ((rc = rd_ghjson_parse_jitconfig(body, len, &id, &jit)) == 0) {
            FZ_CHECK(jit != NULL);
            free(jit);
        }
        break;
    }
    case P_TOKEN: {
        char *tok = NULL;
        int64_t exp = 0;
        if ((rc = rd_ghjson_parse_token(body, len, &tok, &exp)) == 0) {
            FZ_CHECK(tok != NULL);
            free(tok);
        }
        break;
    }
    case P_INSTALLATION: {
        int64_t id = 0;
        char *acc = NULL;
        if ((rc = rd_ghjson_parse_installation(body, len, &id, &acc)) == 0)
            free(acc);
        break;
    }
    case P_INSTALLATIONS: {
        int64_t *ids = NULL;
        char **accs = NULL;
        size_t n = 0;
        if ((rc = rd_ghjson_parse_installations(body, len, &ids, &accs, &n)) == 0) {
            FZ_CHECK(n == 0 || (ids != NULL && accs != NULL));
            free(ids);
            rd_strv_free(accs, n);
        } else {
            FZ_CHECK(ids == NULL && accs == NULL && n == 0);
        }
        break;
    }
    case P_ERROR: {
        char *msg = NULL, *doc = NULL;
        if ((rc = rd_ghjson_parse_error(body, len, &msg, &doc)) == 0) {
            free(msg);
            free(doc);
        }
        break;
    }
    case P_WORKFLOW_JOB_EVENT: {
        char *action = NULL;
        rd_gh_job_t j = {0};
        if ((rc = rd_ghjson_parse_workflow_job_event(body, len, &action, &j)) == 0) {
            FZ_CHECK(action != NULL);
            check_job(&j);
            free(action);
            rd_gh_job_clear(&j);
        }
        break;
    }
    case P_ORG_REPOS: {
        /* An org listing checked against its org (issue 17 F8): the org name is the
         * first line, the listing the rest. What is kept is the org's own. */
        const char *nl = memchr(body, '\n', len);
        if (nl == NULL)
            break;
        char *org = fz_strndup((const uint8_t *)body, (size_t)(nl - body));
        rd_gh_repos_t l = {0};
        if (strlen(org) == (size_t)(nl - body) &&
            rd_ghjson_parse_repos(nl + 1, len - (size_t)(nl - body) - 1, &l) == 0) {
            size_t before = l.n;
            char *first = NULL;
            size_t dropped = rd_ghjson_repos_keep_org(&l, org, &first);
            FZ_CHECK(dropped + l.n == before);
            FZ_CHECK((dropped > 0) == (first != NULL));
            size_t ol = strlen(org);
            for (size_t i = 0; i < l.n; i++) {
                const char *f = l.v[i].full_name;
                FZ_CHECK(ol > 0 && strncasecmp(f, org, ol) == 0 && f[ol] == '/');
                FZ_CHECK(strchr(f + ol + 1, '/') == NULL || strchr(org, '/') != NULL);
                FZ_CHECK(strchr(l.v[i].name, '/') == NULL);
            }
            free(first);
            rd_gh_repos_free(&l);
        }
        free(org);
        break;
    }
    case P_STRINGS: {
        /* The small string parsers the JSON parsers use, on a C string. */
        char *s = fz_strndup(data + 1, len);
        int64_t ms = 0;
        (void)rd_parse_rfc3339_ms(s, &ms);
        rd_gh_status_t st = rd_gh_status_parse(s);
        FZ_CHECK(st >= RD_GH_QUEUED && st <= RD_GH_OTHER);
        free(s);
        break;
    }
    }
    (void)rc;
    return 0;
}
