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

#include "runnerd/core/common.h"

/* Bodies beyond this are refused before parsing (http caps at 16 MiB too). */
#define GHJSON_MAX_BODY (64u * 1024u * 1024u)

/* Parse a complete JSON document; trailing whitespace is fine, trailing garbage is not. */
static json_object *parse_doc(const char *body, size_t len)
{
    if (body == NULL || len == 0 || len > GHJSON_MAX_BODY || len > INT_MAX)
        return NULL;
    json_tokener *tok = json_tokener_new();
    if (tok == NULL)
        return NULL;
    json_object *obj = json_tokener_parse_ex(tok, body, (int)len);
    if (obj == NULL || json_tokener_get_error(tok) != json_tokener_success) {
        /* An incomplete document (json_tokener_continue) is an error too. */
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

static json_object *field(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (o == NULL || !json_object_is_type(o, json_type_object))
        return NULL;
    if (!json_object_object_get_ex(o, key, &v))
        return NULL;
    return v;
}

/* Required integer (json int, not a float or string). */
static int get_int(json_object *o, const char *key, int64_t *out)
{
    json_object *v = field(o, key);
    if (v == NULL || !json_object_is_type(v, json_type_int))
        return RD_EPROTO;
    *out = json_object_get_int64(v);
    return 0;
}

/* Integer or null/absent (-> 0). */
static int get_int_nullable(json_object *o, const char *key, int64_t *out)
{
    json_object *v = field(o, key);
    *out = 0;
    if (v == NULL)
        return 0;
    if (!json_object_is_type(v, json_type_int))
        return RD_EPROTO;
    *out = json_object_get_int64(v);
    return 0;
}

/* Required string; *out borrowed from o. */
static int get_str(json_object *o, const char *key, const char **out)
{
    json_object *v = field(o, key);
    if (v == NULL || !json_object_is_type(v, json_type_string))
        return RD_EPROTO;
    *out = json_object_get_string(v);
    return 0;
}

/* String or null/absent (-> NULL); borrowed. */
static int get_str_nullable(json_object *o, const char *key, const char **out)
{
    json_object *v = field(o, key);
    *out = NULL;
    if (v == NULL)
        return 0;
    if (!json_object_is_type(v, json_type_string))
        return RD_EPROTO;
    *out = json_object_get_string(v);
    return 0;
}

/* Boolean, absent/null -> def. */
static int get_bool_opt(json_object *o, const char *key, bool def, bool *out)
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
static json_object *get_array(json_object *o, const char *key)
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
static int get_labels(json_object *o, const char *key, bool objects_with_name, char ***out,
                      size_t *nout)
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
            if (!json_object_is_type(e, json_type_object) || get_str(e, "name", &s) != 0)
                goto fail;
        } else {
            if (!json_object_is_type(e, json_type_string))
                goto fail;
            s = json_object_get_string(e);
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

static int job_from(json_object *o, rd_gh_job_t *j)
{
    const char *status, *created, *rname;
    memset(j, 0, sizeof(*j));
    if (!json_object_is_type(o, json_type_object))
        return RD_EPROTO;
    if (get_int(o, "id", &j->id) || get_int(o, "run_id", &j->run_id) ||
        get_str(o, "status", &status) || get_str_nullable(o, "created_at", &created) ||
        get_int_nullable(o, "runner_id", &j->runner_id) ||
        get_str_nullable(o, "runner_name", &rname))
        return RD_EPROTO;
    j->status = rd_gh_status_parse(status);
    if (created != NULL && rd_parse_rfc3339_ms(created, &j->created_ms) != 0)
        return RD_EPROTO;
    if (get_labels(o, "labels", false, &j->labels, &j->nlabels) != 0)
        return RD_EPROTO;
    j->runner_name = dup_or_null(rname);
    return 0;
}

/* A wrapped list {total_count, key: [...]}: the array and total_count. */
static int wrapped_list(json_object *root, const char *key, json_object **arr, int64_t *total)
{
    if (root == NULL || !json_object_is_type(root, json_type_object))
        return RD_EPROTO;
    *arr = get_array(root, key);
    if (*arr == NULL)
        return RD_EPROTO;
    json_object *tc = field(root, "total_count");
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
    if (wrapped_list(root, "jobs", &arr, &total) != 0)
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
    if (get_str(root, "action", &act) != 0)
        goto fail;
    if (get_str(field(root, "repository"), "full_name", &full) != 0)
        goto fail;
    json_object *wj = field(root, "workflow_job");
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
    if (wrapped_list(root, "workflow_runs", &arr, &total) != 0)
        goto fail;
    size_t n = json_object_array_length(arr);
    out->v = rd_xcalloc(n ? n : 1, sizeof(rd_gh_run_t));
    out->total_count = total;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        const char *status;
        rd_gh_run_t *r = &out->v[i];
        /* A run's status is nullable in the schema: treat null as "other". */
        if (!json_object_is_type(e, json_type_object) || get_int(e, "id", &r->id) ||
            get_str_nullable(e, "status", &status))
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
    if (!json_object_is_type(o, json_type_object) || get_int(o, "id", &r->id) ||
        get_str(o, "name", &name) || get_str(o, "status", &status) ||
        get_bool_opt(o, "busy", false, &r->busy))
        return RD_EPROTO;
    if (get_labels(o, "labels", true, &r->labels, &r->nlabels) != 0)
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
    if (wrapped_list(root, "runners", &arr, &total) != 0)
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
    else if (wrapped_list(root, "repositories", &arr, &total) != 0)
        goto fail;
    size_t n = json_object_array_length(arr);
    out->v = rd_xcalloc(n ? n : 1, sizeof(rd_gh_repo_t));
    out->total_count = total;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        const char *name, *full;
        bool archived, disabled;
        if (!json_object_is_type(e, json_type_object) || get_str(e, "name", &name) ||
            get_str(e, "full_name", &full) || get_bool_opt(e, "archived", false, &archived) ||
            get_bool_opt(e, "disabled", false, &disabled))
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
    if (wrapped_list(root, "runner_groups", &arr, &total) != 0)
        goto fail;
    size_t n = json_object_array_length(arr);
    out->v = rd_xcalloc(n ? n : 1, sizeof(rd_gh_group_t));
    out->total_count = total;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        const char *name;
        int64_t id;
        if (!json_object_is_type(e, json_type_object) || get_int(e, "id", &id) ||
            get_str(e, "name", &name))
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
    if (root == NULL || get_int(field(root, "runner"), "id", &id) ||
        get_str(root, "encoded_jit_config", &enc) || enc[0] == '\0') {
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
    if (root == NULL || get_str(root, "token", &tok) || tok[0] == '\0' ||
        get_str(root, "expires_at", &exp) || rd_parse_rfc3339_ms(exp, &ms) != 0) {
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
    json_object *acc = field(o, "account");
    if (!json_object_is_type(o, json_type_object) || get_int(o, "id", id))
        return RD_EPROTO;
    /* account is nullable in the schema. */
    if (acc != NULL && !json_object_is_type(acc, json_type_null) &&
        get_str(acc, "login", &login) != 0)
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
        get_str_nullable(root, "message", &m) || get_str_nullable(root, "documentation_url", &d)) {
        json_object_put(root);
        return RD_EPROTO;
    }
    *message = dup_or_null(m);
    *doc_url = dup_or_null(d);
    json_object_put(root);
    return 0;
}
