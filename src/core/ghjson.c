/* ghjson.c: GitHub JSON payloads -> plain structs (pure).
 *
 * Every parser checks the shape it relies on (object vs array, field types)
 * and answers RD_EPROTO when GitHub (or something pretending to be it) sends
 * anything else. Fields we do not use are ignored, so additions on GitHub's
 * side never break us. On every error path the partially built result is
 * released and the out-parameters are left empty. */
#include "runnerd/core/ghjson.h"

#include <ctype.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ghjson_int.h"
#include "runnerd/core/common.h"

/* Every key a parser reads, in one table. `kept`: the list parsers (runs, jobs,
 * runners, repositories, runner groups) read it, so rd_ghjson_compact
 * (ghjson_compact.c) keeps it;
 * parsers name keys only through this table, so compaction and parsing cannot
 * disagree (test_ghjson and fuzz_ghjson parse every list both ways). */
#define GH_KEYS(X)                                                                                 \
    X(K_ID, "id", true)                                                                            \
    X(K_RUN_ID, "run_id", true)                                                                    \
    X(K_STATUS, "status", true)                                                                    \
    X(K_LABELS, "labels", true)                                                                    \
    X(K_CREATED_AT, "created_at", true)                                                            \
    X(K_STARTED_AT, "started_at", true)                                                            \
    X(K_RUNNER_ID, "runner_id", true)                                                              \
    X(K_RUNNER_NAME, "runner_name", true)                                                          \
    X(K_NAME, "name", true)                                                                        \
    X(K_FULL_NAME, "full_name", true)                                                              \
    X(K_ARCHIVED, "archived", true)                                                                \
    X(K_DISABLED, "disabled", true)                                                                \
    X(K_BUSY, "busy", true)                                                                        \
    X(K_TOTAL_COUNT, "total_count", true)                                                          \
    X(K_WORKFLOW_RUNS, "workflow_runs", true)                                                      \
    X(K_JOBS, "jobs", true)                                                                        \
    X(K_RUNNERS, "runners", true)                                                                  \
    X(K_RUNNER_GROUPS, "runner_groups", true)                                                      \
    X(K_REPOSITORIES, "repositories", true)                                                        \
    X(K_ACCOUNT, "account", false)                                                                 \
    X(K_LOGIN, "login", false)                                                                     \
    X(K_ACTION, "action", false)                                                                   \
    X(K_REPOSITORY, "repository", false)                                                           \
    X(K_WORKFLOW_JOB, "workflow_job", false)                                                       \
    X(K_RUNNER, "runner", false)                                                                   \
    X(K_ENCODED_JIT_CONFIG, "encoded_jit_config", false)                                           \
    X(K_TOKEN, "token", false)                                                                     \
    X(K_EXPIRES_AT, "expires_at", false)                                                           \
    X(K_MESSAGE, "message", false)                                                                 \
    X(K_DOCUMENTATION_URL, "documentation_url", false)

#define GH_KEY_ENUM(e, n, k) e,
typedef enum { GH_KEYS(GH_KEY_ENUM) K_COUNT } gk_t;
#define GH_KEY_ROW(e, n, k) {n, sizeof(n) - 1, k},
static const struct {
    const char *name;
    size_t len;
    bool kept;
} keys[K_COUNT] = {GH_KEYS(GH_KEY_ROW)};

/* Parse a complete JSON document of at most max bytes; trailing whitespace is
 * fine, trailing garbage (or an incomplete document) is not. */
json_object *rd_ghjson_parse_doc(const char *body, size_t len, size_t max)
{
    if (body == NULL || len == 0 || len > max || len > INT_MAX)
        return NULL;
    json_tokener *tok = json_tokener_new();
    if (tok == NULL)
        return NULL;
    json_object *obj = json_tokener_parse_ex(tok, body, (int)len);
    if (obj == NULL || json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(obj);
        json_tokener_free(tok);
        return NULL;
    }
    size_t off = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    for (; off < len; off++) {
        if (!isspace((unsigned char)body[off]) && body[off] != '\0') {
            json_object_put(obj);
            return NULL;
        }
    }
    return obj;
}

static json_object *parse_doc(const char *body, size_t len)
{
    return rd_ghjson_parse_doc(body, len, RD_GHJSON_MAX_BODY);
}

static json_object *field(json_object *o, gk_t key)
{
    json_object *v = NULL;
    if (o == NULL || !json_object_is_type(o, json_type_object))
        return NULL;
    if (!json_object_object_get_ex(o, keys[key].name, &v))
        return NULL;
    return v;
}

/* GitHub's ids are positive and below 2^53 (JavaScript's safe integers). json-c
 * saturates an integer that does not fit (2^70 reads as INT64_MAX), so the
 * range check also refuses every overflowed value. */
#define GH_ID_MAX ((int64_t)1 << 53)

/* The id in v: a json int in 1..2^53 (min_id 0 also admits 0: "none"). */
static int id_of(json_object *v, int64_t min_id, int64_t *out)
{
    if (v == NULL || !json_object_is_type(v, json_type_int))
        return RD_EPROTO;
    int64_t x = json_object_get_int64(v);
    if (x < min_id || x > GH_ID_MAX)
        return RD_EPROTO;
    *out = x;
    return 0;
}

/* Required id (json int in 1..2^53, not a float or string). */
static int get_int(json_object *o, gk_t key, int64_t *out)
{
    return id_of(field(o, key), 1, out);
}

/* An id or null/absent (-> 0); 0 itself also means none. */
static int get_int_nullable(json_object *o, gk_t key, int64_t *out)
{
    json_object *v = field(o, key);
    *out = 0;
    if (v == NULL)
        return 0;
    return id_of(v, 0, out);
}

/* The text of a json string, refused when it holds a NUL: as a C string it would
 * silently end there ("self-hosted\u0000x" would read as "self-hosted"). */
static int str_of(json_object *v, const char **out)
{
    if (v == NULL || !json_object_is_type(v, json_type_string))
        return RD_EPROTO;
    const char *s = json_object_get_string(v);
    if (strlen(s) != (size_t)json_object_get_string_len(v))
        return RD_EPROTO;
    *out = s;
    return 0;
}

/* Required string; *out borrowed from o. */
static int get_str(json_object *o, gk_t key, const char **out)
{
    return str_of(field(o, key), out);
}

/* String or null/absent (-> NULL); borrowed. */
static int get_str_nullable(json_object *o, gk_t key, const char **out)
{
    json_object *v = field(o, key);
    *out = NULL;
    if (v == NULL)
        return 0;
    return str_of(v, out);
}

/* Boolean, absent/null -> def. */
static int get_bool_opt(json_object *o, gk_t key, bool def, bool *out)
{
    json_object *v = field(o, key);
    *out = def;
    if (v == NULL)
        return 0;
    if (!json_object_is_type(v, json_type_boolean))
        return RD_EPROTO;
    *out = json_object_get_boolean(v);
    return 0;
}

static char *dup_or_null(const char *s)
{
    return s ? rd_xstrdup(s) : NULL;
}

/* The array under key, or NULL when it is absent or not an array. */
static json_object *get_array(json_object *o, gk_t key)
{
    json_object *v = field(o, key);
    if (v == NULL || !json_object_is_type(v, json_type_array))
        return NULL;
    return v;
}

rd_gh_status_t rd_gh_status_parse(const char *s)
{
    static const struct {
        const char *name;
        rd_gh_status_t st;
    } map[] = {
        {"queued", RD_GH_QUEUED},       {"in_progress", RD_GH_IN_PROGRESS},
        {"completed", RD_GH_COMPLETED}, {"waiting", RD_GH_WAITING},
        {"requested", RD_GH_REQUESTED}, {"pending", RD_GH_PENDING},
    };
    if (s == NULL)
        return RD_GH_OTHER;
    for (size_t i = 0; i < RD_ARRAY_SIZE(map); i++)
        if (strcmp(s, map[i].name) == 0)
            return map[i].st;
    return RD_GH_OTHER;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int rd_parse_rfc3339_ms(const char *s, int64_t *out_ms)
{
    int Y, M, D, h, mi, sec;
    if (s == NULL || strlen(s) < 20)
        return RD_EINVAL;
    if (digits(s, 4, &Y) || s[4] != '-' || digits(s + 5, 2, &M) || s[7] != '-' ||
        digits(s + 8, 2, &D) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
        digits(s + 17, 2, &sec))
        return RD_EINVAL;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (M < 1 || M > 12 || D < 1 || D > mdays[M - 1] || h > 23 || mi > 59 || sec > 60)
        return RD_EINVAL;
    bool leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
    if (M == 2 && D == 29 && !leap)
        return RD_EINVAL;
    const char *p = s + 19;
    int64_t ms = 0;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return RD_EINVAL;
        /* Keep milliseconds, drop finer digits (truncation). */
        int scale = 100;
        for (; isdigit((unsigned char)*p); p++) {
            ms += (*p - '0') * scale;
            scale /= 10;
        }
    }
    int64_t off_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        int sign = *p == '-' ? -1 : 1;
        if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return RD_EINVAL;
        off_min = sign * (oh * 60 + om);
        p += 6;
    } else {
        return RD_EINVAL;
    }
    if (*p != '\0')
        return RD_EINVAL;
    if (sec == 60)
        sec = 59; /* a leap second folds onto the second before */
    int64_t days = days_from_civil(Y, (unsigned)M, (unsigned)D);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - off_min * 60;
    *out_ms = secs * 1000 + ms;
    return 0;
}

/* ---- string arrays ---- */

/* Array of strings, or (objects_with_name) array of {name: string}. */
static int get_labels(json_object *o, gk_t key, bool objects_with_name, char ***out, size_t *nout)
{
    json_object *arr = get_array(o, key);
    *out = NULL;
    *nout = 0;
    if (arr == NULL)
        return RD_EPROTO;
    size_t n = json_object_array_length(arr);
    char **v = rd_xcalloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        const char *s = NULL;
        if (objects_with_name) {
            if (!json_object_is_type(e, json_type_object) || get_str(e, K_NAME, &s) != 0)
                goto fail;
        } else {
            if (str_of(e, &s) != 0)
                goto fail;
        }
        v[i] = rd_xstrdup(s);
    }
    *out = v;
    *nout = n;
    return 0;
fail:
    rd_strv_free(v, n);
    return RD_EPROTO;
}

/* ---- jobs ---- */

void rd_gh_job_clear(rd_gh_job_t *j)
{
    if (j == NULL)
        return;
    rd_strv_free(j->labels, j->nlabels);
    free(j->runner_name);
    free(j->repo);
    memset(j, 0, sizeof(*j));
}

void rd_gh_job_copy(rd_gh_job_t *dst, const rd_gh_job_t *src)
{
    *dst = *src;
    dst->labels = src->nlabels ? rd_xcalloc(src->nlabels, sizeof(char *)) : NULL;
    for (size_t i = 0; i < src->nlabels; i++)
        dst->labels[i] = rd_xstrdup(src->labels[i]);
    dst->runner_name = src->runner_name ? rd_xstrdup(src->runner_name) : NULL;
    dst->repo = src->repo ? rd_xstrdup(src->repo) : NULL;
}

static int job_from(json_object *o, rd_gh_job_t *j)
{
    const char *status, *created, *started = NULL, *rname;
    memset(j, 0, sizeof(*j));
    if (!json_object_is_type(o, json_type_object))
        return RD_EPROTO;
    if (get_int(o, K_ID, &j->id) || get_int(o, K_RUN_ID, &j->run_id) ||
        get_str(o, K_STATUS, &status) || get_str_nullable(o, K_CREATED_AT, &created) ||
        get_int_nullable(o, K_RUNNER_ID, &j->runner_id) ||
        get_str_nullable(o, K_RUNNER_NAME, &rname))
        return RD_EPROTO;
    j->status = rd_gh_status_parse(status);
    if (created != NULL && rd_parse_rfc3339_ms(created, &j->created_ms) != 0)
        return RD_EPROTO;
    /* started_at is optional (a queued job has none; older fixtures lack it): only a
     * string of the right shape counts. */
    json_object *so;
    if (json_object_object_get_ex(o, keys[K_STARTED_AT].name, &so) && str_of(so, &started) != 0)
        started = NULL;
    if (started != NULL && rd_parse_rfc3339_ms(started, &j->started_ms) != 0)
        j->started_ms = 0;
    if (get_labels(o, K_LABELS, false, &j->labels, &j->nlabels) != 0)
        return RD_EPROTO;
    j->runner_name = dup_or_null(rname);
    return 0;
}

/* A wrapped list {total_count, key: [...]}: the array and total_count. */
static int wrapped_list(json_object *root, gk_t key, json_object **arr, int64_t *total)
{
    if (root == NULL || !json_object_is_type(root, json_type_object))
        return RD_EPROTO;
    *arr = get_array(root, key);
    if (*arr == NULL)
        return RD_EPROTO;
    json_object *tc = field(root, K_TOTAL_COUNT);
    *total = -1;
    if (tc != NULL) {
        if (!json_object_is_type(tc, json_type_int))
            return RD_EPROTO;
        *total = json_object_get_int64(tc);
    }
    return 0;
}

void rd_gh_jobs_free(rd_gh_jobs_t *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++)
        rd_gh_job_clear(&l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

int rd_ghjson_parse_jobs(const char *body, size_t len, rd_gh_jobs_t *out)
{
    memset(out, 0, sizeof(*out));
    json_object *root = parse_doc(body, len), *arr;
    int64_t total;
    if (wrapped_list(root, K_JOBS, &arr, &total) != 0)
        goto fail;
    size_t n = json_object_array_length(arr);
    out->v = rd_xcalloc(n ? n : 1, sizeof(rd_gh_job_t));
    out->total_count = total;
    for (size_t i = 0; i < n; i++) {
        rd_gh_job_t j;
        if (job_from(json_object_array_get_idx(arr, i), &j) != 0) {
            rd_gh_job_clear(&j);
            goto fail;
        }
        out->v[out->n++] = j;
    }
    json_object_put(root);
    return 0;
fail:
    json_object_put(root);
    rd_gh_jobs_free(out);
    return RD_EPROTO;
}

int rd_ghjson_parse_job(const char *body, size_t len, rd_gh_job_t *out)
{
    json_object *root = parse_doc(body, len);
    int rc = root ? job_from(root, out) : (memset(out, 0, sizeof(*out)), RD_EPROTO);
    if (rc != 0)
        rd_gh_job_clear(out);
    json_object_put(root);
    return rc;
}

int rd_ghjson_parse_workflow_job_event(const char *body, size_t len, char **action,
                                       rd_gh_job_t *job)
{
    const char *act, *full;
    *action = NULL;
    memset(job, 0, sizeof(*job));
    json_object *root = parse_doc(body, len);
    if (root == NULL || !json_object_is_type(root, json_type_object))
        goto fail;
    if (get_str(root, K_ACTION, &act) != 0)
        goto fail;
    if (get_str(field(root, K_REPOSITORY), K_FULL_NAME, &full) != 0)
        goto fail;
    json_object *wj = field(root, K_WORKFLOW_JOB);
    if (wj == NULL || job_from(wj, job) != 0)
        goto fail;
    job->repo = rd_xstrdup(full);
    *action = rd_xstrdup(act);
    json_object_put(root);
    return 0;
fail:
    rd_gh_job_clear(job);
    json_object_put(root);
    return RD_EPROTO;
}

/* ---- runs ---- */

void rd_gh_runs_free(rd_gh_runs_t *l)
{
    if (l == NULL)
        return;
    free(l->v);
    memset(l, 0, sizeof(*l));
}

int rd_ghjson_parse_runs(const char *body, size_t len, rd_gh_runs_t *out)
{
    memset(out, 0, sizeof(*out));
    json_object *root = parse_doc(body, len), *arr;
    int64_t total;
    if (wrapped_list(root, K_WORKFLOW_RUNS, &arr, &total) != 0)
        goto fail;
    size_t n = json_object_array_length(arr);
    out->v = rd_xcalloc(n ? n : 1, sizeof(rd_gh_run_t));
    out->total_count = total;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        const char *status;
        rd_gh_run_t *r = &out->v[i];
        /* A run's status is nullable in the schema: treat null as "other". */
        if (!json_object_is_type(e, json_type_object) || get_int(e, K_ID, &r->id) ||
            get_str_nullable(e, K_STATUS, &status))
            goto fail;
        r->status = rd_gh_status_parse(status);
        out->n++;
    }
    json_object_put(root);
    return 0;
fail:
    json_object_put(root);
    rd_gh_runs_free(out);
    return RD_EPROTO;
}

/* ---- runners ---- */

void rd_gh_runner_clear(rd_gh_runner_t *r)
{
    if (r == NULL)
        return;
    free(r->name);
    rd_strv_free(r->labels, r->nlabels);
    memset(r, 0, sizeof(*r));
}

static int runner_from(json_object *o, rd_gh_runner_t *r)
{
    const char *name, *status;
    memset(r, 0, sizeof(*r));
    if (!json_object_is_type(o, json_type_object) || get_int(o, K_ID, &r->id) ||
        get_str(o, K_NAME, &name) || get_str(o, K_STATUS, &status) ||
        get_bool_opt(o, K_BUSY, false, &r->busy))
        return RD_EPROTO;
    if (get_labels(o, K_LABELS, true, &r->labels, &r->nlabels) != 0)
        return RD_EPROTO;
    r->online = strcmp(status, "online") == 0;
    r->name = rd_xstrdup(name);
    return 0;
}

void rd_gh_runners_free(rd_gh_runners_t *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++)
        rd_gh_runner_clear(&l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

int rd_ghjson_parse_runners(const char *body, size_t len, rd_gh_runners_t *out)
{
    memset(out, 0, sizeof(*out));
    json_object *root = parse_doc(body, len), *arr;
    int64_t total;
    if (wrapped_list(root, K_RUNNERS, &arr, &total) != 0)
        goto fail;
    size_t n = json_object_array_length(arr);
    out->v = rd_xcalloc(n ? n : 1, sizeof(rd_gh_runner_t));
    out->total_count = total;
    for (size_t i = 0; i < n; i++) {
        rd_gh_runner_t r;
        if (runner_from(json_object_array_get_idx(arr, i), &r) != 0) {
            rd_gh_runner_clear(&r);
            goto fail;
        }
        out->v[out->n++] = r;
    }
    json_object_put(root);
    return 0;
fail:
    json_object_put(root);
    rd_gh_runners_free(out);
    return RD_EPROTO;
}

int rd_ghjson_parse_runner(const char *body, size_t len, rd_gh_runner_t *out)
{
    json_object *root = parse_doc(body, len);
    int rc = root ? runner_from(root, out) : (memset(out, 0, sizeof(*out)), RD_EPROTO);
    if (rc != 0)
        rd_gh_runner_clear(out);
    json_object_put(root);
    return rc;
}

/* ---- repositories ---- */

void rd_gh_repos_free(rd_gh_repos_t *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].name);
        free(l->v[i].full_name);
    }
    free(l->v);
    memset(l, 0, sizeof(*l));
}

int rd_ghjson_parse_repos(const char *body, size_t len, rd_gh_repos_t *out)
{
    memset(out, 0, sizeof(*out));
    json_object *root = parse_doc(body, len), *arr = NULL;
    int64_t total = -1;
    if (root == NULL)
        goto fail;
    if (json_object_is_type(root, json_type_array))
        arr = root;
    else if (wrapped_list(root, K_REPOSITORIES, &arr, &total) != 0)
        goto fail;
    size_t n = json_object_array_length(arr);
    out->v = rd_xcalloc(n ? n : 1, sizeof(rd_gh_repo_t));
    out->total_count = total;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        const char *name, *full;
        bool archived, disabled;
        if (!json_object_is_type(e, json_type_object) || get_str(e, K_NAME, &name) ||
            get_str(e, K_FULL_NAME, &full) || get_bool_opt(e, K_ARCHIVED, false, &archived) ||
            get_bool_opt(e, K_DISABLED, false, &disabled))
            goto fail;
        rd_gh_repo_t *r = &out->v[out->n++];
        r->name = rd_xstrdup(name);
        r->full_name = rd_xstrdup(full);
        r->archived = archived;
        r->disabled = disabled;
    }
    json_object_put(root);
    return 0;
fail:
    json_object_put(root);
    rd_gh_repos_free(out);
    return RD_EPROTO;
}

size_t rd_ghjson_repos_keep_org(rd_gh_repos_t *l, const char *org, char **first_dropped)
{
    size_t ol = strlen(org), w = 0, dropped = 0;
    if (first_dropped)
        *first_dropped = NULL;
    for (size_t i = 0; i < l->n; i++) {
        rd_gh_repo_t *r = &l->v[i];
        const char *f = r->full_name;
        bool ok = ol > 0 && strncasecmp(f, org, ol) == 0 && f[ol] == '/' && r->name[0] != '\0' &&
                  strchr(r->name, '/') == NULL && strcasecmp(f + ol + 1, r->name) == 0;
        if (ok) {
            l->v[w++] = *r;
            continue;
        }
        if (dropped++ == 0 && first_dropped)
            *first_dropped = rd_xstrdup(f);
        free(r->name);
        free(r->full_name);
    }
    l->n = w;
    if (l->total_count > (int64_t)w)
        l->total_count -= (int64_t)dropped;
    return dropped;
}

/* ---- runner groups ---- */

void rd_gh_groups_free(rd_gh_groups_t *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].name);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

int rd_ghjson_parse_groups(const char *body, size_t len, rd_gh_groups_t *out)
{
    memset(out, 0, sizeof(*out));
    json_object *root = parse_doc(body, len), *arr;
    int64_t total;
    if (wrapped_list(root, K_RUNNER_GROUPS, &arr, &total) != 0)
        goto fail;
    size_t n = json_object_array_length(arr);
    out->v = rd_xcalloc(n ? n : 1, sizeof(rd_gh_group_t));
    out->total_count = total;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        const char *name;
        int64_t id;
        if (!json_object_is_type(e, json_type_object) || get_int(e, K_ID, &id) ||
            get_str(e, K_NAME, &name))
            goto fail;
        out->v[out->n].id = id;
        out->v[out->n++].name = rd_xstrdup(name);
    }
    json_object_put(root);
    return 0;
fail:
    json_object_put(root);
    rd_gh_groups_free(out);
    return RD_EPROTO;
}

/* ---- single objects ---- */

int rd_ghjson_parse_jitconfig(const char *body, size_t len, int64_t *runner_id, char **encoded_jit)
{
    const char *enc;
    *runner_id = 0;
    *encoded_jit = NULL;
    json_object *root = parse_doc(body, len);
    int64_t id;
    if (root == NULL || get_int(field(root, K_RUNNER), K_ID, &id) ||
        get_str(root, K_ENCODED_JIT_CONFIG, &enc) || enc[0] == '\0') {
        json_object_put(root);
        return RD_EPROTO;
    }
    *runner_id = id;
    *encoded_jit = rd_xstrdup(enc);
    json_object_put(root);
    return 0;
}

int rd_ghjson_parse_token(const char *body, size_t len, char **token, int64_t *expires_ms)
{
    const char *tok, *exp;
    int64_t ms;
    *token = NULL;
    *expires_ms = 0;
    json_object *root = parse_doc(body, len);
    if (root == NULL || get_str(root, K_TOKEN, &tok) || tok[0] == '\0' ||
        get_str(root, K_EXPIRES_AT, &exp) || rd_parse_rfc3339_ms(exp, &ms) != 0) {
        json_object_put(root);
        return RD_EPROTO;
    }
    *token = rd_xstrdup(tok);
    *expires_ms = ms;
    json_object_put(root);
    return 0;
}

static int installation_from(json_object *o, int64_t *id, char **account)
{
    const char *login = NULL;
    json_object *acc = field(o, K_ACCOUNT);
    if (!json_object_is_type(o, json_type_object) || get_int(o, K_ID, id))
        return RD_EPROTO;
    /* account is nullable in the schema. */
    if (acc != NULL && !json_object_is_type(acc, json_type_null) &&
        get_str(acc, K_LOGIN, &login) != 0)
        return RD_EPROTO;
    *account = dup_or_null(login);
    return 0;
}

int rd_ghjson_parse_installation(const char *body, size_t len, int64_t *id, char **account)
{
    *id = 0;
    *account = NULL;
    json_object *root = parse_doc(body, len);
    int rc = root ? installation_from(root, id, account) : RD_EPROTO;
    if (rc != 0)
        *id = 0;
    json_object_put(root);
    return rc;
}

int rd_ghjson_parse_installations(const char *body, size_t len, int64_t **ids, char ***accounts,
                                  size_t *n)
{
    *ids = NULL;
    *accounts = NULL;
    *n = 0;
    json_object *root = parse_doc(body, len);
    if (root == NULL || !json_object_is_type(root, json_type_array)) {
        json_object_put(root);
        return RD_EPROTO;
    }
    size_t cnt = json_object_array_length(root), i;
    int64_t *iv = rd_xcalloc(cnt ? cnt : 1, sizeof(int64_t));
    char **av = rd_xcalloc(cnt ? cnt : 1, sizeof(char *));
    for (i = 0; i < cnt; i++) {
        if (installation_from(json_object_array_get_idx(root, i), &iv[i], &av[i]) != 0)
            goto fail;
    }
    json_object_put(root);
    *ids = iv;
    *accounts = av;
    *n = cnt;
    return 0;
fail:
    rd_strv_free(av, i);
    free(iv);
    json_object_put(root);
    return RD_EPROTO;
}

int rd_ghjson_parse_error(const char *body, size_t len, char **message, char **doc_url)
{
    const char *m, *d;
    *message = NULL;
    *doc_url = NULL;
    json_object *root = parse_doc(body, len);
    if (root == NULL || !json_object_is_type(root, json_type_object) ||
        get_str_nullable(root, K_MESSAGE, &m) || get_str_nullable(root, K_DOCUMENTATION_URL, &d)) {
        json_object_put(root);
        return RD_EPROTO;
    }
    *message = dup_or_null(m);
    *doc_url = dup_or_null(d);
    json_object_put(root);
    return 0;
}

/* ---- the kept keys, for compaction ---- */

bool rd_ghjson_key_kept(const char *k, size_t n)
{
    /* Called for every key of every list page: compare only keys of the same
     * length (a ~5 KB run has ~80 keys, few of them kept). */
    for (size_t i = 0; i < K_COUNT; i++)
        if (keys[i].kept && keys[i].len == n && memcmp(k, keys[i].name, n) == 0)
            return true;
    return false;
}
