/* log.c: leveled logging, text or JSON lines, with redaction of secrets.
 *
 * Every line passes through rd_log_redact() after the message has been fully
 * formatted, so a secret is caught however it reached the message: in the
 * format string, in an argument, or split across both. The logger is the one
 * piece of global state in the core and is meant to be used from the loop
 * thread only. It does no I/O: the shell installs the sink a finished line goes
 * to and the clock it is stamped with (src/io/logsink.c). */
#include "runnerd/core/log.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h> /* gmtime_r, strftime: pure conversions */

#include "runnerd/core/common.h"

#define REDACTED "[REDACTED]"
#define MIN_SECRET_LEN 8
/* An "eyJ..." run at least this long is a JWT or base64-encoded JSON (a JIT
 * config is one); either way it is a credential and never logged. */
#define MIN_EYJ_LEN 20

static struct {
    rd_log_level_t level;
    rd_log_format_t format;
    bool journal;
    rd_log_sink_fn sink; /* NULL: lines are dropped */
    void *sink_ctx;
    rd_log_clock_fn clock; /* NULL: the epoch */
    char **secrets;        /* longest first, so a secret containing another goes whole */
    size_t nsecrets;
} g_log = {RD_LOG_INFO, RD_LOG_TEXT, false, NULL, NULL, NULL, NULL, 0};

static const char *const token_prefixes[] = {"github_pat_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_"};

void rd_log_configure(rd_log_level_t level, rd_log_format_t format)
{
    g_log.level = level;
    g_log.format = format;
}

void rd_log_set_sink(rd_log_sink_fn fn, void *ctx)
{
    g_log.sink = fn;
    g_log.sink_ctx = ctx;
}

void rd_log_set_clock(rd_log_clock_fn fn)
{
    g_log.clock = fn;
}

void rd_log_set_journal(bool on)
{
    g_log.journal = on;
}

int rd_log_parse_level(const char *s, rd_log_level_t *out)
{
    static const struct {
        const char *name;
        rd_log_level_t level;
    } names[] = {{"debug", RD_LOG_DEBUG},
                 {"info", RD_LOG_INFO},
                 {"warn", RD_LOG_WARN},
                 {"warning", RD_LOG_WARN},
                 {"error", RD_LOG_ERROR}};
    if (s == NULL)
        return RD_EINVAL;
    for (size_t i = 0; i < RD_ARRAY_SIZE(names); i++) {
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].level;
            return 0;
        }
    }
    return RD_EINVAL;
}

int rd_log_parse_format(const char *s, rd_log_format_t *out)
{
    if (s == NULL)
        return RD_EINVAL;
    if (strcasecmp(s, "text") == 0) {
        *out = RD_LOG_TEXT;
        return 0;
    }
    if (strcasecmp(s, "json") == 0) {
        *out = RD_LOG_JSON;
        return 0;
    }
    return RD_EINVAL;
}

bool rd_log_enabled(rd_log_level_t level)
{
    return level >= g_log.level;
}

/* Overwrite a secret before freeing it, so it does not linger in freed heap. */
static void wipe_free(char *s)
{
    if (s == NULL)
        return;
    volatile char *p = s;
    while (*p)
        *p++ = '\0';
    free(s);
}

void rd_log_add_secret(const char *secret)
{
    if (secret == NULL)
        return;
    size_t len = strlen(secret);
    if (len < MIN_SECRET_LEN)
        return;
    for (size_t i = 0; i < g_log.nsecrets; i++) {
        if (strcmp(g_log.secrets[i], secret) == 0)
            return;
    }
    size_t at = 0;
    while (at < g_log.nsecrets && strlen(g_log.secrets[at]) >= len)
        at++;
    g_log.secrets = rd_xrealloc(g_log.secrets, (g_log.nsecrets + 1) * sizeof(char *));
    memmove(&g_log.secrets[at + 1], &g_log.secrets[at], (g_log.nsecrets - at) * sizeof(char *));
    g_log.secrets[at] = rd_xstrdup(secret);
    g_log.nsecrets++;
}

void rd_log_forget_secret(const char *secret)
{
    if (secret == NULL)
        return;
    for (size_t i = 0; i < g_log.nsecrets; i++) {
        if (strcmp(g_log.secrets[i], secret) == 0) {
            wipe_free(g_log.secrets[i]);
            memmove(&g_log.secrets[i], &g_log.secrets[i + 1],
                    (g_log.nsecrets - i - 1) * sizeof(char *));
            g_log.nsecrets--;
            return;
        }
    }
}

void rd_log_clear_secrets(void)
{
    for (size_t i = 0; i < g_log.nsecrets; i++)
        wipe_free(g_log.secrets[i]);
    free(g_log.secrets);
    g_log.secrets = NULL;
    g_log.nsecrets = 0;
}

/* Length of SRC matched by SECRET at its start, or 0. A JSON writer may have
 * escaped '/' as "\/" (json-c does by default), and base64 secrets such as JIT
 * configs contain '/', so "\/" in the text matches '/' in the secret. */
static size_t secret_at(const char *src, const char *secret)
{
    const char *s = src;
    for (const char *p = secret; *p; p++) {
        if (*s == *p) {
            s++;
        } else if (*p == '/' && s[0] == '\\' && s[1] == '/') {
            s += 2;
        } else {
            return 0;
        }
    }
    return (size_t)(s - src);
}

static bool is_token_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* Characters of base64, base64url and JWT compact form ('.' between parts). */
static bool is_b64_char(char c)
{
    return is_token_char(c) || c == '-' || c == '+' || c == '/' || c == '=';
}

/* Length of a token-looking string at SRC, or 0. */
static size_t token_at(const char *src)
{
    for (size_t i = 0; i < RD_ARRAY_SIZE(token_prefixes); i++) {
        size_t n = strlen(token_prefixes[i]);
        if (strncmp(src, token_prefixes[i], n) == 0 && is_token_char(src[n])) {
            while (is_token_char(src[n]))
                n++;
            return n;
        }
    }
    if (strncmp(src, "eyJ", 3) == 0) {
        size_t n = 3;
        for (;;) {
            if (is_b64_char(src[n]))
                n++;
            else if ((src[n] == '.' || src[n] == '\\') && is_b64_char(src[n + 1]))
                n += 2; /* a JWT's dots, or a JSON-escaped "\/" */
            else
                break;
        }
        if (n >= MIN_EYJ_LEN)
            return n;
    }
    return 0;
}

size_t rd_log_redact(const char *src, char *dst, size_t dst_size)
{
    size_t o = 0;
    if (dst_size == 0)
        return 0;
    const size_t rlen = strlen(REDACTED);
    while (*src) {
        size_t skip = 0;
        for (size_t i = 0; i < g_log.nsecrets && skip == 0; i++)
            skip = secret_at(src, g_log.secrets[i]);
        if (skip == 0)
            skip = token_at(src);
        if (skip > 0) {
            for (size_t k = 0; k < rlen && o + 1 < dst_size; k++)
                dst[o++] = REDACTED[k];
            src += skip;
            continue;
        }
        if (o + 1 < dst_size)
            dst[o++] = *src;
        src++;
    }
    dst[o] = '\0';
    return o;
}

/* A growable output buffer for one line. */
typedef struct {
    char *p;
    size_t len, cap;
} buf_t;

static void buf_put(buf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = rd_xrealloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_puts(buf_t *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

/* Length of a valid UTF-8 sequence at S (1..4) with its code point in *CP,
 * or 0 when invalid. */
static size_t utf8_decode(const unsigned char *s, uint32_t *out)
{
    if (s[0] < 0x80) {
        *out = s[0];
        return 1;
    }
    size_t n;
    uint32_t cp;
    if ((s[0] & 0xe0) == 0xc0) {
        n = 2;
        cp = s[0] & 0x1f;
    } else if ((s[0] & 0xf0) == 0xe0) {
        n = 3;
        cp = s[0] & 0x0f;
    } else if ((s[0] & 0xf8) == 0xf0) {
        n = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    *out = cp;
    return n;
}

/* Code points a terminal or viewer acts on instead of showing: the C1 controls
 * (U+0080-009F; CSI is U+009B) and the bidi embeddings, overrides and isolates
 * (U+202A-202E, U+2066-2069), which reorder what follows so that a line reads
 * as something else (log line spoofing). They are written escaped. */
static bool is_hidden_cp(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

/* JSON string body: quotes, backslashes and control bytes escaped; invalid
 * UTF-8 (child output can be anything) becomes U+FFFD so the line stays JSON. */
static void put_json_string(buf_t *b, const char *s)
{
    char tmp[8];
    buf_put(b, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            buf_put(b, tmp, 2);
            p++;
        } else if (c == '\n') {
            buf_puts(b, "\\n");
            p++;
        } else if (c == '\r') {
            buf_puts(b, "\\r");
            p++;
        } else if (c == '\t') {
            buf_puts(b, "\\t");
            p++;
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(tmp, sizeof(tmp), "\\u%04x", c);
            buf_puts(b, tmp);
            p++;
        } else {
            uint32_t cp;
            size_t n = utf8_decode(p, &cp);
            if (n == 0) {
                buf_puts(b, "\\ufffd");
                p++;
            } else if (is_hidden_cp(cp)) {
                snprintf(tmp, sizeof(tmp), "\\u%04x", (unsigned)cp);
                buf_puts(b, tmp);
                p += n;
            } else {
                buf_put(b, (const char *)p, n);
                p += n;
            }
        }
    }
    buf_put(b, "\"", 1);
}

/* Text lines: one event a line, so newlines and control bytes are escaped
 * (a child cannot forge a log line or send terminal escapes), and so are the
 * C1 controls and bidi overrides (is_hidden_cp) and bytes that are not UTF-8
 * (a lone 0x9b is CSI to an 8-bit terminal). */
static void put_text(buf_t *b, const char *s)
{
    char tmp[12];
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t cp;
        size_t n = utf8_decode(p, &cp);
        if (*p == '\n') {
            buf_puts(b, "\\n");
        } else if (*p == '\r') {
            buf_puts(b, "\\r");
        } else if ((*p < 0x20 && *p != '\t') || *p == 0x7f || n == 0) {
            snprintf(tmp, sizeof(tmp), "\\x%02x", *p);
            buf_puts(b, tmp);
        } else if (is_hidden_cp(cp)) {
            snprintf(tmp, sizeof(tmp), "\\u%04x", (unsigned)cp);
            buf_puts(b, tmp);
            p += n;
            continue;
        } else {
            buf_put(b, (const char *)p, n);
            p += n;
            continue;
        }
        p++;
    }
}

static void format_time(char *out, size_t n)
{
    int64_t ms = g_log.clock ? g_log.clock() : 0;
    if (ms < 0)
        ms = 0;
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    size_t len = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + len, n - len, ".%03dZ", (int)(ms % 1000));
}

static const char *level_upper(rd_log_level_t l)
{
    switch (l) {
    case RD_LOG_DEBUG:
        return "DEBUG";
    case RD_LOG_INFO:
        return "INFO";
    case RD_LOG_WARN:
        return "WARN";
    case RD_LOG_ERROR:
        return "ERROR";
    }
    return "INFO";
}

/* syslog(3) priorities, as journald reads them from a "<N>" line prefix. */
static const char *level_syslog(rd_log_level_t l)
{
    switch (l) {
    case RD_LOG_DEBUG:
        return "<7>";
    case RD_LOG_INFO:
        return "<6>";
    case RD_LOG_WARN:
        return "<4>";
    case RD_LOG_ERROR:
        return "<3>";
    }
    return "<6>";
}

static const char *level_lower(rd_log_level_t l)
{
    switch (l) {
    case RD_LOG_DEBUG:
        return "debug";
    case RD_LOG_INFO:
        return "info";
    case RD_LOG_WARN:
        return "warn";
    case RD_LOG_ERROR:
        return "error";
    }
    return "info";
}

/* A redacted heap copy of S. The shortest thing replaced is a 5-byte token
 * ("ghp_x") that becomes 10 bytes, so twice the length always fits. */
static char *redact_dup(const char *s)
{
    size_t n = strlen(s);
    size_t cap = 2 * n + sizeof(REDACTED);
    char *out = rd_xmalloc(cap);
    rd_log_redact(s, out, cap);
    return out;
}

/* One JSON member "name":"value" (redacted), when VALUE is set. */
static void put_json_field(buf_t *b, const char *name, const char *value)
{
    if (value == NULL)
        return;
    char *v = redact_dup(value);
    buf_puts(b, ",\"");
    buf_puts(b, name);
    buf_puts(b, "\":");
    put_json_string(b, v);
    free(v);
}

void rd_logcv(rd_log_level_t level, const char *component, const rd_log_ctx_t *ctx, const char *fmt,
              va_list ap)
{
    if (!rd_log_enabled(level) || g_log.sink == NULL)
        return;
    /* Format the whole message first: redacting a truncated message could
     * leave the first half of a secret in the output. */
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        n = 0;
    char *raw = rd_xmalloc((size_t)n + 1);
    vsnprintf(raw, (size_t)n + 1, fmt, ap);
    char *msg = redact_dup(raw);
    wipe_free(raw);
    char *comp = redact_dup(component ? component : "runnerd");

    char ts[40];
    format_time(ts, sizeof(ts));
    buf_t b = {0};
    if (g_log.format == RD_LOG_JSON) {
        buf_puts(&b, "{\"ts\":\"");
        buf_puts(&b, ts);
        buf_puts(&b, "\",\"level\":\"");
        buf_puts(&b, level_lower(level));
        buf_puts(&b, "\",\"component\":");
        put_json_string(&b, comp);
        if (ctx != NULL) {
            put_json_field(&b, "runner", ctx->runner);
            put_json_field(&b, "pool", ctx->pool);
            put_json_field(&b, "scope", ctx->scope);
            if (ctx->job != 0) {
                char num[32];
                snprintf(num, sizeof(num), ",\"job\":%" PRId64, ctx->job);
                buf_puts(&b, num);
            }
        }
        buf_puts(&b, ",\"msg\":");
        put_json_string(&b, msg);
        buf_puts(&b, "}\n");
    } else {
        if (g_log.journal) {
            buf_puts(&b, level_syslog(level));
        } else {
            buf_puts(&b, ts);
            buf_puts(&b, " ");
        }
        buf_puts(&b, level_upper(level));
        buf_puts(&b, " ");
        put_text(&b, comp);
        buf_puts(&b, ": ");
        put_text(&b, msg);
        buf_puts(&b, "\n");
    }
    g_log.sink(g_log.sink_ctx, level, b.p, b.len);
    free(b.p);
    free(msg);
    free(comp);
}

void rd_logv(rd_log_level_t level, const char *component, const char *fmt, va_list ap)
{
    rd_logcv(level, component, NULL, fmt, ap);
}

void rd_log(rd_log_level_t level, const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rd_logcv(level, component, NULL, fmt, ap);
    va_end(ap);
}

void rd_logc(rd_log_level_t level, const char *component, const rd_log_ctx_t *ctx, const char *fmt,
             ...)
{
    va_list ap;
    va_start(ap, fmt);
    rd_logcv(level, component, ctx, fmt, ap);
    va_end(ap);
}
