/* webhook.c: GitHub webhook deliveries: HMAC-SHA256 signatures, replay cache,
 * workflow_job classification (pure; OpenSSL libcrypto for the HMAC). */
#include "runnerd/core/webhook.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runnerd/core/common.h"

#define SHA256_LEN 32
static const char sig_prefix[] = "sha256=";
#define SIG_PREFIX_LEN (sizeof(sig_prefix) - 1)

static void hmac_sha256(const void *secret, size_t secret_len, const void *body, size_t len,
                        unsigned char out[SHA256_LEN])
{
    unsigned int outlen = SHA256_LEN;
    /* HMAC() takes an int key length; a secret file is never that large, but
     * clamp rather than wrap. */
    int klen = secret_len > (size_t)1 << 30 ? 1 << 30 : (int)secret_len;
    static const unsigned char empty = 0;
    if (HMAC(EVP_sha256(), secret, klen, len ? body : &empty, len, out, &outlen) == NULL ||
        outlen != SHA256_LEN) {
        /* Only a broken libcrypto gets here; never let it look like a match. */
        memset(out, 0xff, SHA256_LEN);
    }
}

void rd_webhook_sign(const void *secret, size_t secret_len, const void *body, size_t len,
                     char out[RD_WEBHOOK_SIG_SIZE])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char mac[SHA256_LEN];
    hmac_sha256(secret, secret_len, body, len, mac);
    memcpy(out, sig_prefix, SIG_PREFIX_LEN);
    for (size_t i = 0; i < SHA256_LEN; i++) {
        out[SIG_PREFIX_LEN + 2 * i] = hex[mac[i] >> 4];
        out[SIG_PREFIX_LEN + 2 * i + 1] = hex[mac[i] & 15];
    }
    out[SIG_PREFIX_LEN + 2 * SHA256_LEN] = '\0';
}

int rd_webhook_verify(const void *secret, size_t secret_len, const void *body, size_t len,
                      const char *signature)
{
    unsigned char want[SHA256_LEN], got[SHA256_LEN];

    if (signature == NULL || strncmp(signature, sig_prefix, SIG_PREFIX_LEN) != 0)
        return RD_EINVAL;
    const char *hexs = signature + SIG_PREFIX_LEN;
    if (strlen(hexs) != 2 * SHA256_LEN)
        return RD_EINVAL;
    for (size_t i = 0; i < SHA256_LEN; i++) {
        int hi = rd_hexval(hexs[2 * i]), lo = rd_hexval(hexs[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return RD_EINVAL;
        got[i] = (unsigned char)(hi << 4 | lo);
    }
    if (secret == NULL || secret_len == 0)
        return RD_EAUTH;
    hmac_sha256(secret, secret_len, body, len, want);
    /* Constant time: the comparison must not tell an attacker how many leading
     * bytes of a forged signature were right. */
    return CRYPTO_memcmp(want, got, SHA256_LEN) == 0 ? 0 : RD_EAUTH;
}

/* ---- replay cache ----
 * A ring of `cap` slots written in order (the oldest is overwritten first) and a
 * chained hash index over the live slots. */

typedef struct {
    char *id; /* NULL: empty or forgotten slot */
    int64_t t_ms;
    uint32_t hash;
    int32_t next; /* next slot in the same bucket, -1 at the end */
} dedup_slot_t;

struct rd_webhook_dedup {
    dedup_slot_t *slots;
    size_t cap;
    size_t pos; /* next slot to write */
    size_t live;
    int32_t *buckets;
    size_t mask;
    int64_t max_age_ms;
};

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

rd_webhook_dedup_t *rd_webhook_dedup_new(size_t capacity, int64_t max_age_ms)
{
    if (capacity == 0)
        capacity = 1;
    if (capacity > (1u << 24))
        capacity = 1u << 24;
    rd_webhook_dedup_t *d = rd_xcalloc(1, sizeof(*d));
    d->cap = capacity;
    d->slots = rd_xcalloc(capacity, sizeof(*d->slots));
    size_t nb = 16;
    while (nb < 2 * capacity)
        nb <<= 1;
    d->buckets = rd_xmalloc(nb * sizeof(*d->buckets));
    for (size_t i = 0; i < nb; i++)
        d->buckets[i] = -1;
    d->mask = nb - 1;
    d->max_age_ms = max_age_ms;
    return d;
}

void rd_webhook_dedup_free(rd_webhook_dedup_t *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->cap; i++)
        free(d->slots[i].id);
    free(d->slots);
    free(d->buckets);
    free(d);
}

static int32_t dedup_find(const rd_webhook_dedup_t *d, const char *id, uint32_t h)
{
    for (int32_t i = d->buckets[h & d->mask]; i >= 0; i = d->slots[i].next) {
        if (d->slots[i].hash == h && strcmp(d->slots[i].id, id) == 0)
            return i;
    }
    return -1;
}

static void dedup_forget(rd_webhook_dedup_t *d, int32_t idx)
{
    dedup_slot_t *s = &d->slots[idx];
    int32_t *link = &d->buckets[s->hash & d->mask];
    while (*link != idx)
        link = &d->slots[*link].next;
    *link = s->next;
    free(s->id);
    s->id = NULL;
    s->next = -1;
    d->live--;
}

bool rd_webhook_dedup_contains(rd_webhook_dedup_t *d, const char *id, int64_t now_ms)
{
    int32_t i = dedup_find(d, id, fnv1a(id));
    if (i < 0)
        return false;
    return now_ms - d->slots[i].t_ms < d->max_age_ms;
}

void rd_webhook_dedup_add(rd_webhook_dedup_t *d, const char *id, int64_t now_ms)
{
    uint32_t h = fnv1a(id);
    int32_t old = dedup_find(d, id, h);
    if (old >= 0)
        dedup_forget(d, old);
    int32_t idx = (int32_t)d->pos;
    if (d->slots[idx].id != NULL)
        dedup_forget(d, idx);
    dedup_slot_t *s = &d->slots[idx];
    s->id = rd_xstrdup(id);
    s->t_ms = now_ms;
    s->hash = h;
    s->next = d->buckets[h & d->mask];
    d->buckets[h & d->mask] = idx;
    d->live++;
    d->pos = (d->pos + 1) % d->cap;
}

size_t rd_webhook_dedup_count(const rd_webhook_dedup_t *d)
{
    return d->live;
}

/* ---- classification ---- */

const char *rd_webhook_result_name(rd_webhook_result_t r)
{
    switch (r) {
    case RD_WEBHOOK_ACCEPTED:
        return "accepted";
    case RD_WEBHOOK_DUPLICATE:
        return "duplicate";
    case RD_WEBHOOK_PING:
        return "ping";
    case RD_WEBHOOK_IGNORED:
        return "ignored";
    case RD_WEBHOOK_BAD_SIGNATURE:
        return "bad_signature";
    case RD_WEBHOOK_MALFORMED:
        return "malformed";
    case RD_WEBHOOK_TOO_LARGE:
        return "too_large";
    case RD_WEBHOOK_DISABLED:
        return "disabled";
    case RD_WEBHOOK_RESULT_COUNT:
        break;
    }
    return "unknown";
}

const char *rd_webhook_job_action_name(rd_webhook_job_action_t a)
{
    switch (a) {
    case RD_WEBHOOK_JOB_NONE:
        return "none";
    case RD_WEBHOOK_JOB_QUEUED:
        return "queued";
    case RD_WEBHOOK_JOB_IN_PROGRESS:
        return "in_progress";
    case RD_WEBHOOK_JOB_COMPLETED:
        return "completed";
    case RD_WEBHOOK_JOB_WAITING:
        return "waiting";
    }
    return "unknown";
}

static void set_result(rd_webhook_outcome_t *out, rd_webhook_result_t r, int status,
                       const char *msg)
{
    out->result = r;
    out->http_status = status;
    out->message = msg;
}

/* URL-decode s[0..n) (application/x-www-form-urlencoded: '+' is a space) into out,
 * which has room for n bytes. Returns the decoded length, or -1 on a bad escape. */
static ptrdiff_t form_decode(const char *s, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[k++] = ' ';
        } else if (s[i] == '%') {
            int hi = i + 2 < n ? rd_hexval(s[i + 1]) : -1;
            int lo = hi >= 0 ? rd_hexval(s[i + 2]) : -1;
            if (lo < 0)
                return -1;
            out[k++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[k++] = s[i];
        }
    }
    return (ptrdiff_t)k;
}

int rd_webhook_form_payload(const char *body, size_t len, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    /* Fields are name=value joined by '&'; the name is compared decoded. */
    for (size_t start = 0; start <= len;) {
        const char *f = body + start;
        const char *amp = memchr(f, '&', len - start);
        size_t flen = amp ? (size_t)(amp - f) : len - start;
        const char *eq = memchr(f, '=', flen);
        if (eq != NULL) {
            size_t nlen = (size_t)(eq - f);
            char name[16];
            ptrdiff_t dn = nlen < sizeof(name) ? form_decode(f, nlen, name) : -1;
            if (dn == 7 && memcmp(name, "payload", 7) == 0) {
                size_t vlen = flen - nlen - 1;
                char *v = rd_xmalloc(vlen + 1);
                ptrdiff_t dv = form_decode(eq + 1, vlen, v);
                if (dv < 0) {
                    free(v);
                    return RD_EINVAL;
                }
                v[dv] = '\0';
                *out = v;
                *out_len = (size_t)dv;
                return 0;
            }
        }
        if (amp == NULL)
            break;
        start += flen + 1;
    }
    return RD_EINVAL;
}

bool rd_webhook_is_form(const char *content_type)
{
    static const char form[] = "application/x-www-form-urlencoded";
    if (content_type == NULL)
        return false;
    while (*content_type == ' ' || *content_type == '\t')
        content_type++;
    size_t n = strcspn(content_type, ";");
    while (n > 0 && (content_type[n - 1] == ' ' || content_type[n - 1] == '\t'))
        n--;
    return n == sizeof(form) - 1 && strncasecmp(content_type, form, n) == 0;
}

void rd_webhook_process(const void *secret, size_t secret_len, rd_webhook_dedup_t *dedup,
                        const char *event, const char *delivery, const char *signature,
                        const char *content_type, const char *body, size_t len, int64_t now_ms,
                        rd_webhook_outcome_t *out)
{
    memset(out, 0, sizeof(*out));
    out->action = RD_WEBHOOK_JOB_NONE;

    if (secret == NULL || secret_len == 0) {
        set_result(out, RD_WEBHOOK_DISABLED, 404, "webhook not configured");
        return;
    }
    if (rd_webhook_verify(secret, secret_len, body, len, signature) != 0) {
        set_result(out, RD_WEBHOOK_BAD_SIGNATURE, 401, "bad signature");
        return;
    }
    if (event == NULL || *event == '\0') {
        set_result(out, RD_WEBHOOK_MALFORMED, 400, "missing X-GitHub-Event");
        return;
    }
    if (strcmp(event, "ping") == 0) {
        set_result(out, RD_WEBHOOK_PING, 200, "pong");
        return;
    }
    if (strcmp(event, "workflow_job") != 0) {
        set_result(out, RD_WEBHOOK_IGNORED, 202, "ignored");
        return;
    }
    /* X-GitHub-Delivery is not signed: anyone replaying a captured body can send
     * any id, so requiring one protects nothing. A signed delivery without it is
     * applied; only the replay cache needs it. */
    if (delivery != NULL && *delivery == '\0')
        delivery = NULL;
    if (delivery != NULL && strlen(delivery) > RD_WEBHOOK_DELIVERY_MAX) {
        set_result(out, RD_WEBHOOK_MALFORMED, 400, "bad X-GitHub-Delivery");
        return;
    }
    if (dedup != NULL && delivery != NULL && rd_webhook_dedup_contains(dedup, delivery, now_ms)) {
        set_result(out, RD_WEBHOOK_DUPLICATE, 200, "duplicate");
        return;
    }

    /* GitHub's default content type for a hook is a form whose payload field is the
     * JSON; the signature above was over the form as sent. */
    char *form = NULL;
    if (rd_webhook_is_form(content_type)) {
        if (rd_webhook_form_payload(body, len, &form, &len) != 0) {
            set_result(out, RD_WEBHOOK_MALFORMED, 400, "form body without a payload field");
            return;
        }
        body = form;
    }
    char *action = NULL;
    rd_gh_job_t job;
    memset(&job, 0, sizeof(job));
    int prc = rd_ghjson_parse_workflow_job_event(body, len, &action, &job);
    free(form);
    if (prc != 0) {
        free(action);
        set_result(out, RD_WEBHOOK_MALFORMED, 400, "malformed workflow_job payload");
        return;
    }

    rd_webhook_job_action_t a = RD_WEBHOOK_JOB_NONE;
    if (action == NULL)
        a = RD_WEBHOOK_JOB_NONE;
    else if (strcmp(action, "queued") == 0)
        a = job.status == RD_GH_WAITING ? RD_WEBHOOK_JOB_WAITING : RD_WEBHOOK_JOB_QUEUED;
    else if (strcmp(action, "in_progress") == 0)
        a = RD_WEBHOOK_JOB_IN_PROGRESS;
    else if (strcmp(action, "completed") == 0)
        a = RD_WEBHOOK_JOB_COMPLETED;
    else if (strcmp(action, "waiting") == 0)
        a = RD_WEBHOOK_JOB_WAITING;
    free(action);

    if (dedup != NULL && delivery != NULL)
        rd_webhook_dedup_add(dedup, delivery, now_ms);
    if (a == RD_WEBHOOK_JOB_NONE) {
        rd_gh_job_clear(&job);
        set_result(out, RD_WEBHOOK_IGNORED, 202, "ignored action");
        return;
    }
    out->action = a;
    out->job = job;
    set_result(out, RD_WEBHOOK_ACCEPTED, 200, "accepted");
}

void rd_webhook_outcome_clear(rd_webhook_outcome_t *o)
{
    if (o == NULL)
        return;
    if (o->action != RD_WEBHOOK_JOB_NONE)
        rd_gh_job_clear(&o->job);
    memset(o, 0, sizeof(*o));
}
