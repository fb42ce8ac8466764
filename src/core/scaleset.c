/* scaleset.c: the broker's JSON payloads -> plain structs (pure; see scaleset.h).
 *
 * "P x.y" names the section of the protocol file (/work/shared/scaleset-protocol.md)
 * that a shape comes from. Only the fields runnerd uses are read; everything else
 * is ignored so that additions on GitHub's side never break us. */
#include "runnerd/core/scaleset.h"

#include <ctype.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runnerd/core/auth.h"
#include "runnerd/core/common.h"
#include "runnerd/core/ghjson.h"

/* Strings kept from the broker (names, ids, URLs, tokens) are capped: a JIT config
 * is a few KiB, a JWT about 1 KiB; nothing legitimate comes near this. */
#define MAX_STR (256u * 1024u)

size_t rd_ss_bom_len(const char *body, size_t len)
{
    if (body != NULL && len >= 3 && (unsigned char)body[0] == 0xEF &&
        (unsigned char)body[1] == 0xBB && (unsigned char)body[2] == 0xBF)
        return 3;
    return 0;
}

/* Parse one complete JSON document after an optional BOM (P 2). */
static json_object *parse_doc(const char *body, size_t len)
{
    size_t off = rd_ss_bom_len(body, len);
    if (body == NULL || len <= off)
        return NULL;
    return rd_ghjson_parse_doc(body + off, len - off, RD_SS_MAX_BODY);
}

static json_object *field(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (o == NULL || !json_object_is_type(o, json_type_object))
        return NULL;
    if (!json_object_object_get_ex(o, key, &v))
        return NULL;
    return v;
}

/* Required id: a JSON integer > 0. */
static int get_id(json_object *o, const char *key, int64_t *out)
{
    json_object *v = field(o, key);
    if (v == NULL || !json_object_is_type(v, json_type_int))
        return RD_EPROTO;
    int64_t x = json_object_get_int64(v);
    if (x <= 0 || x == INT64_MAX)
        return RD_EPROTO;
    *out = x;
    return 0;
}

/* Optional integer >= 0 (absent/null -> 0). */
static int get_count_opt(json_object *o, const char *key, int64_t *out)
{
    json_object *v = field(o, key);
    *out = 0;
    if (v == NULL || json_object_is_type(v, json_type_null))
        return 0;
    if (!json_object_is_type(v, json_type_int))
        return RD_EPROTO;
    int64_t x = json_object_get_int64(v);
    if (x < 0 || x == INT64_MAX)
        return RD_EPROTO;
    *out = x;
    return 0;
}

/* Optional string of printable text, copied (absent/null -> NULL). */
static int get_str_opt(json_object *o, const char *key, char **out)
{
    json_object *v = field(o, key);
    *out = NULL;
    if (v == NULL || json_object_is_type(v, json_type_null))
        return 0;
    if (!json_object_is_type(v, json_type_string))
        return RD_EPROTO;
    size_t n = (size_t)json_object_get_string_len(v);
    const char *s = json_object_get_string(v);
    if (n > MAX_STR || strlen(s) != n)
        return RD_EPROTO;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return RD_EPROTO;
    *out = rd_xstrdup(s);
    return 0;
}

/* Required non-empty string, copied. */
static int get_str(json_object *o, const char *key, char **out)
{
    int rc = get_str_opt(o, key, out);
    if (rc == 0 && (*out == NULL || **out == '\0')) {
        free(*out);
        *out = NULL;
        return RD_EPROTO;
    }
    return rc;
}

static bool is_http_url(const char *s)
{
    return s != NULL && (strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0) &&
           strpbrk(s, " \t\r\n#") == NULL;
}

/* ---- errors ---- */

rd_ss_err_kind_t rd_ss_parse_error(const char *body, size_t len)
{
    json_object *root = parse_doc(body, len);
    char *type = NULL;
    rd_ss_err_kind_t k = RD_SS_ERR_OTHER;
    if (root == NULL || get_str(root, "typeName", &type) != 0)
        goto done;
    /* P 2: clients match substrings of typeName. */
    if (strstr(type, "SessionConflictException"))
        k = RD_SS_ERR_SESSION_CONFLICT;
    else if (strstr(type, "SessionExpiredException"))
        k = RD_SS_ERR_SESSION_EXPIRED;
    else if (strstr(type, "AgentExistsException"))
        k = RD_SS_ERR_AGENT_EXISTS;
    else if (strstr(type, "AgentNotFoundException"))
        k = RD_SS_ERR_AGENT_NOT_FOUND;
    else if (strstr(type, "JobStillRunningException"))
        k = RD_SS_ERR_JOB_RUNNING;
    else if (strstr(type, "NotFoundException"))
        k = RD_SS_ERR_NOT_FOUND;
done:
    free(type);
    json_object_put(root);
    return k;
}

/* ---- bootstrap ---- */

void rd_ss_token_free(rd_ss_token_t *t)
{
    if (t == NULL)
        return;
    free(t->token);
    free(t->url);
    memset(t, 0, sizeof(*t));
}

int rd_ss_parse_reg_token(const char *body, size_t len, rd_ss_token_t *out)
{
    memset(out, 0, sizeof(*out));
    json_object *root = parse_doc(body, len);
    char *exp = NULL;
    int rc = RD_EPROTO;
    if (root == NULL || get_str(root, "token", &out->token) != 0 ||
        get_str(root, "expires_at", &exp) != 0 || rd_parse_rfc3339_ms(exp, &out->expires_ms) != 0)
        goto fail;
    rc = 0;
fail:
    free(exp);
    json_object_put(root);
    if (rc != 0)
        rd_ss_token_free(out);
    return rc;
}

int rd_ss_jwt_exp_ms(const char *jwt, int64_t *out_ms)
{
    const char *a = jwt ? strchr(jwt, '.') : NULL;
    const char *b = a ? strchr(a + 1, '.') : NULL;
    if (b == NULL || (size_t)(b - a - 1) > 64 * 1024)
        return RD_EPROTO;
    unsigned char *raw = NULL;
    size_t n = 0;
    if (rd_base64url_decode(a + 1, (size_t)(b - a - 1), &raw, &n) != 0)
        return RD_EPROTO;
    json_object *claims = parse_doc((const char *)raw, n);
    free(raw);
    json_object *exp = field(claims, "exp");
    int rc = RD_EPROTO;
    if (exp != NULL && json_object_is_type(exp, json_type_int)) {
        int64_t s = json_object_get_int64(exp);
        if (s > 0 && s < INT64_MAX / 1000) {
            *out_ms = s * 1000;
            rc = 0;
        }
    }
    json_object_put(claims);
    return rc;
}

int rd_ss_parse_registration(const char *body, size_t len, rd_ss_token_t *out)
{
    memset(out, 0, sizeof(*out));
    json_object *root = parse_doc(body, len);
    int rc = RD_EPROTO;
    /* P 1.4: the client fails if url or token is missing; url is an opaque base. */
    if (root == NULL || get_str(root, "url", &out->url) != 0 || !is_http_url(out->url) ||
        get_str(root, "token", &out->token) != 0 ||
        rd_ss_jwt_exp_ms(out->token, &out->expires_ms) != 0)
        goto fail;
    size_t n = strlen(out->url);
    if (out->url[n - 1] != '/') {
        char *u = rd_xasprintf("%s/", out->url);
        free(out->url);
        out->url = u;
    }
    rc = 0;
fail:
    json_object_put(root);
    if (rc != 0)
        rd_ss_token_free(out);
    return rc;
}

/* ---- scale sets and groups ---- */

void rd_ss_scale_set_free(rd_ss_scale_set_t *s)
{
    if (s == NULL)
        return;
    free(s->name);
    rd_strv_free(s->labels, s->nlabels);
    memset(s, 0, sizeof(*s));
}

static int scale_set_from(json_object *o, rd_ss_scale_set_t *out)
{
    memset(out, 0, sizeof(*out));
    if (get_id(o, "id", &out->id) != 0 || get_str(o, "name", &out->name) != 0 ||
        get_count_opt(o, "runnerGroupId", &out->group_id) != 0)
        goto fail;
    json_object *labels = field(o, "labels");
    if (labels != NULL && !json_object_is_type(labels, json_type_null)) {
        if (!json_object_is_type(labels, json_type_array))
            goto fail;
        size_t n = json_object_array_length(labels);
        if (n > 1000)
            goto fail;
        out->labels = rd_xcalloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++) {
            if (get_str(json_object_array_get_idx(labels, i), "name", &out->labels[i]) != 0)
                goto fail;
            out->nlabels++;
        }
    }
    return 0;
fail:
    rd_ss_scale_set_free(out);
    return RD_EPROTO;
}

int rd_ss_parse_scale_set(const char *body, size_t len, rd_ss_scale_set_t *out)
{
    json_object *root = parse_doc(body, len);
    int rc = root ? scale_set_from(root, out) : (memset(out, 0, sizeof(*out)), RD_EPROTO);
    json_object_put(root);
    return rc;
}

/* {"count":n,"value":[...]}: the array, NULL on a bad shape. */
static json_object *list_value(json_object *root)
{
    json_object *v = field(root, "value");
    if (v == NULL || !json_object_is_type(v, json_type_array))
        return NULL;
    return v;
}

int rd_ss_parse_scale_set_list(const char *body, size_t len, rd_ss_scale_set_t *out)
{
    memset(out, 0, sizeof(*out));
    json_object *root = parse_doc(body, len);
    json_object *v = list_value(root);
    int rc = RD_EPROTO;
    if (v != NULL) {
        /* P 3.2: count 0 = not found. A name is unique within a group. */
        rc = json_object_array_length(v) == 0
                 ? RD_ENOENT
                 : scale_set_from(json_object_array_get_idx(v, 0), out);
    }
    json_object_put(root);
    return rc;
}

int rd_ss_parse_group_list(const char *body, size_t len, int64_t *out_id)
{
    json_object *root = parse_doc(body, len);
    json_object *v = list_value(root);
    int rc = RD_EPROTO;
    if (v != NULL) {
        size_t n = json_object_array_length(v);
        /* P 3.1: count 0 and count > 1 are errors. */
        if (n == 0)
            rc = RD_ENOENT;
        else if (n == 1)
            rc = get_id(json_object_array_get_idx(v, 0), "id", out_id);
    }
    json_object_put(root);
    return rc;
}

bool rd_ss_labels_match(const rd_ss_scale_set_t *s, const char *const *want, size_t nwant)
{
    for (size_t i = 0; i < nwant; i++) {
        bool found = false;
        for (size_t j = 0; j < s->nlabels && !found; j++)
            found = strcasecmp(want[i], s->labels[j]) == 0;
        if (!found)
            return false;
    }
    for (size_t j = 0; j < s->nlabels; j++) {
        bool found = strcasecmp(s->labels[j], s->name) == 0;
        for (size_t i = 0; i < nwant && !found; i++)
            found = strcasecmp(want[i], s->labels[j]) == 0;
        if (!found)
            return false;
    }
    return true;
}

/* ---- statistics, sessions ---- */

static int stats_from(json_object *o, rd_ss_stats_t *st)
{
    memset(st, 0, sizeof(*st));
    if (o == NULL || !json_object_is_type(o, json_type_object))
        return RD_EPROTO;
    /* P 4.3: camelCase, all ints. */
    if (get_count_opt(o, "totalAvailableJobs", &st->available) ||
        get_count_opt(o, "totalAcquiredJobs", &st->acquired) ||
        get_count_opt(o, "totalAssignedJobs", &st->assigned) ||
        get_count_opt(o, "totalRunningJobs", &st->running) ||
        get_count_opt(o, "totalRegisteredRunners", &st->registered) ||
        get_count_opt(o, "totalBusyRunners", &st->busy) ||
        get_count_opt(o, "totalIdleRunners", &st->idle))
        return RD_EPROTO;
    return 0;
}

static bool is_uuid(const char *s)
{
    if (s == NULL || strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return strcmp(s, "00000000-0000-0000-0000-000000000000") != 0;
}

void rd_ss_session_free(rd_ss_session_t *s)
{
    if (s == NULL)
        return;
    free(s->session_id);
    free(s->owner);
    free(s->queue_url);
    free(s->queue_token);
    memset(s, 0, sizeof(*s));
}

int rd_ss_parse_session(const char *body, size_t len, rd_ss_session_t *out)
{
    memset(out, 0, sizeof(*out));
    json_object *root = parse_doc(body, len);
    int rc = RD_EPROTO;
    if (root == NULL || get_str(root, "sessionId", &out->session_id) != 0 ||
        !is_uuid(out->session_id) || get_str_opt(root, "ownerName", &out->owner) != 0 ||
        get_str(root, "messageQueueUrl", &out->queue_url) != 0 || !is_http_url(out->queue_url) ||
        get_str(root, "messageQueueAccessToken", &out->queue_token) != 0 ||
        stats_from(field(root, "statistics"), &out->stats) != 0)
        goto fail;
    if (rd_ss_jwt_exp_ms(out->queue_token, &out->queue_token_exp_ms) != 0)
        out->queue_token_exp_ms = 0; /* P 3.3: a JWT with exp, but only 401 is relied on */
    rc = 0;
fail:
    json_object_put(root);
    if (rc != 0)
        rd_ss_session_free(out);
    return rc;
}

/* ---- messages ---- */

static void job_msg_free(rd_ss_job_msg_t *j)
{
    free(j->job_id);
    free(j->runner_name);
    free(j->result);
    free(j->owner);
    free(j->repo);
}

void rd_ss_message_free(rd_ss_message_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->njobs; i++)
        job_msg_free(&m->jobs[i]);
    free(m->jobs);
    memset(m, 0, sizeof(*m));
}

static rd_ss_job_kind_t job_kind(const char *t)
{
    if (t == NULL)
        return RD_SS_JOB_OTHER;
    if (strcmp(t, "JobAvailable") == 0)
        return RD_SS_JOB_AVAILABLE;
    if (strcmp(t, "JobAssigned") == 0)
        return RD_SS_JOB_ASSIGNED;
    if (strcmp(t, "JobStarted") == 0)
        return RD_SS_JOB_STARTED;
    if (strcmp(t, "JobCompleted") == 0)
        return RD_SS_JOB_COMPLETED;
    return RD_SS_JOB_OTHER;
}

static int job_from(json_object *o, rd_ss_job_msg_t *j)
{
    char *type = NULL;
    memset(j, 0, sizeof(*j));
    if (o == NULL || !json_object_is_type(o, json_type_object) ||
        get_str_opt(o, "messageType", &type) != 0)
        return RD_EPROTO;
    j->kind = job_kind(type);
    free(type);
    if (j->kind == RD_SS_JOB_OTHER)
        return 0;
    /* P 4.2: runnerRequestId int64 (may be 0, P 9.4), jobId a string, runnerId int. */
    if (get_count_opt(o, "runnerRequestId", &j->request_id) ||
        get_str_opt(o, "jobId", &j->job_id) || get_count_opt(o, "runnerId", &j->runner_id) ||
        get_str_opt(o, "runnerName", &j->runner_name) || get_str_opt(o, "result", &j->result) ||
        get_str_opt(o, "ownerName", &j->owner) || get_str_opt(o, "repositoryName", &j->repo)) {
        job_msg_free(j);
        memset(j, 0, sizeof(*j));
        return RD_EPROTO;
    }
    return 0;
}

int rd_ss_parse_message(const char *body, size_t len, rd_ss_message_t *out)
{
    memset(out, 0, sizeof(*out));
    json_object *root = parse_doc(body, len);
    json_object *inner = NULL;
    char *type = NULL, *text = NULL;
    int rc = RD_EPROTO;
    if (root == NULL || get_id(root, "messageId", &out->message_id) != 0 ||
        get_str_opt(root, "messageType", &type) != 0)
        goto fail;
    json_object *st = field(root, "statistics");
    if (st != NULL && !json_object_is_type(st, json_type_null)) {
        if (stats_from(st, &out->stats) != 0)
            goto fail;
        out->has_stats = true;
    }
    /* P 4.1: other message types carry no jobs (garm ignores them; decision: ack and go on). */
    out->job_messages = type != NULL && strcmp(type, "RunnerScaleSetJobMessages") == 0;
    if (!out->job_messages) {
        rc = 0;
        goto fail;
    }
    /* P 4.1: body is a JSON string holding a JSON array; may be empty or absent. */
    if (get_str_opt(root, "body", &text) != 0)
        goto fail;
    if (text == NULL || text[0] == '\0') {
        rc = 0;
        goto fail;
    }
    inner = parse_doc(text, strlen(text));
    if (inner == NULL || !json_object_is_type(inner, json_type_array))
        goto fail;
    size_t n = json_object_array_length(inner);
    out->jobs = rd_xcalloc(n ? (n < RD_SS_MAX_JOBS ? n : RD_SS_MAX_JOBS) : 1, sizeof(*out->jobs));
    for (size_t i = 0; i < n; i++) {
        if (out->njobs >= RD_SS_MAX_JOBS) {
            out->dropped += n - i;
            break;
        }
        rd_ss_job_msg_t j;
        if (job_from(json_object_array_get_idx(inner, i), &j) != 0)
            goto fail;
        if (j.kind == RD_SS_JOB_OTHER) {
            out->dropped++;
            continue;
        }
        out->jobs[out->njobs++] = j;
    }
    rc = 0;
fail:
    free(type);
    free(text);
    json_object_put(inner);
    json_object_put(root);
    if (rc != 0)
        rd_ss_message_free(out);
    return rc;
}

int rd_ss_parse_acquired(const char *body, size_t len, int64_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    json_object *root = parse_doc(body, len);
    json_object *v = list_value(root);
    int rc = RD_EPROTO;
    if (v == NULL)
        goto done;
    size_t k = json_object_array_length(v);
    if (k > RD_SS_MAX_JOBS)
        goto done;
    *out = rd_xcalloc(k + 1, sizeof(int64_t));
    for (size_t i = 0; i < k; i++) {
        json_object *x = json_object_array_get_idx(v, i);
        if (!json_object_is_type(x, json_type_int) || json_object_get_int64(x) <= 0) {
            free(*out);
            *out = NULL;
            *n = 0;
            goto done;
        }
        (*out)[(*n)++] = json_object_get_int64(x);
    }
    rc = 0;
done:
    json_object_put(root);
    return rc;
}

/* ---- runners ---- */

void rd_ss_agent_free(rd_ss_agent_t *a)
{
    if (a == NULL)
        return;
    free(a->name);
    if (a->jit != NULL) {
        /* A secret: leave no copy behind. */
        memset(a->jit, 0, strlen(a->jit));
        free(a->jit);
    }
    memset(a, 0, sizeof(*a));
}

void rd_ss_agents_free(rd_ss_agent_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rd_ss_agent_free(&v[i]);
    free(v);
}

static int agent_from(json_object *o, rd_ss_agent_t *a)
{
    char *status = NULL;
    memset(a, 0, sizeof(*a));
    json_object *busy = field(o, "busy");
    if (get_id(o, "id", &a->id) != 0 || get_str(o, "name", &a->name) != 0 ||
        get_count_opt(o, "runnerScaleSetId", &a->scale_set_id) != 0 ||
        get_str_opt(o, "status", &status) != 0 ||
        (busy != NULL && !json_object_is_type(busy, json_type_boolean) &&
         !json_object_is_type(busy, json_type_null))) {
        free(status);
        rd_ss_agent_free(a);
        return RD_EPROTO;
    }
    a->busy = busy != NULL && json_object_is_type(busy, json_type_boolean) &&
              json_object_get_boolean(busy);
    a->online = status != NULL && strcasecmp(status, "online") == 0;
    free(status);
    return 0;
}

int rd_ss_parse_agent(const char *body, size_t len, rd_ss_agent_t *out)
{
    json_object *root = parse_doc(body, len);
    int rc = root ? agent_from(root, out) : (memset(out, 0, sizeof(*out)), RD_EPROTO);
    json_object_put(root);
    return rc;
}

int rd_ss_parse_jit(const char *body, size_t len, rd_ss_agent_t *out)
{
    memset(out, 0, sizeof(*out));
    json_object *root = parse_doc(body, len);
    char *jit = NULL;
    int rc = RD_EPROTO;
    if (root == NULL || agent_from(field(root, "runner"), out) != 0)
        goto done;
    if (get_str(root, "encodedJITConfig", &jit) != 0) {
        rd_ss_agent_free(out);
        goto done;
    }
    /* base64 text only: it goes into a child's environment. */
    for (const char *p = jit; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '+' && *p != '/' && *p != '=' && *p != '-' &&
            *p != '_') {
            memset(jit, 0, strlen(jit));
            free(jit);
            rd_ss_agent_free(out);
            goto done;
        }
    }
    out->jit = jit;
    rc = 0;
done:
    json_object_put(root);
    return rc;
}

int rd_ss_parse_agent_list(const char *body, size_t len, rd_ss_agent_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    json_object *root = parse_doc(body, len);
    json_object *v = list_value(root);
    int rc = RD_EPROTO;
    if (v == NULL)
        goto done;
    size_t k = json_object_array_length(v);
    if (k > 100000)
        goto done;
    *out = rd_xcalloc(k + 1, sizeof(rd_ss_agent_t));
    for (size_t i = 0; i < k; i++) {
        if (agent_from(json_object_array_get_idx(v, i), &(*out)[i]) != 0) {
            rd_ss_agents_free(*out, *n);
            *out = NULL;
            *n = 0;
            goto done;
        }
        (*n)++;
    }
    rc = 0;
done:
    json_object_put(root);
    return rc;
}
