/* ghjson_compact.c: a list body reduced to the keys the list parsers read (pure).
 *
 * One pass over the text, no tree: json-c built an object for every key of a
 * ~5 KB workflow run (and its nested repository, actor, head commit...) only to
 * drop almost all of them, which made compaction and malloc the largest cost of
 * a cold poll cycle (issue 14). This scanner validates the whole document as
 * RFC 8259 JSON (what GitHub sends) and copies the kept keys' values verbatim,
 * descending into their objects and arrays to filter keys there too; everything
 * else is checked and skipped without allocating. The list parsers then read
 * the small result with json-c.
 *
 * What it mirrors of the json-c path it replaced (test_ghjson, fuzz_ghjson):
 * numbers as json-c reads them (see number()); raw control bytes and any byte >= 0x80 may appear in
 * strings (json-c checks neither); NaN, Infinity and -Infinity pass as numbers (json-c's strict
 * mode takes them too); a key compares as json-c stores it, decoded and cut at a NUL
 * ("id\u0000x" is "id"); values nested deeper than COMPACT_KEEP_DEPTH become
 * null; the document may be followed by whitespace and NULs only; a bare
 * top-level null is refused (json-c's parse gives no object for it). What json-c
 * takes only outside its strict mode (comments, single quotes, "True") is refused. */
#include <ctype.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ghjson_int.h"
#include "runnerd/core/common.h"
#include "runnerd/core/ghjson.h"

/* Values below this depth (the root is 0) are kept; deeper ones read as null. */
#define COMPACT_KEEP_DEPTH 8
/* Nesting beyond this is refused (json-c's default limit is 32; the scanner
 * recurses, so it needs a bound of its own). */
#define COMPACT_MAX_DEPTH 64

typedef struct {
    const unsigned char *p, *end;
    rd_sbuf_t out;
} cz_t;

static void put(cz_t *z, const void *s, size_t n)
{
    rd_sbuf_append(&z->out, s, n);
}

/* Inside the document json-c skips the four RFC 8259 whitespace bytes only. */
static void ws(cz_t *z)
{
    while (z->p < z->end && (*z->p == ' ' || *z->p == '\t' || *z->p == '\n' || *z->p == '\r'))
        z->p++;
}

/* At the opening quote: move past the closing one. *esc: the string holds an
 * escape or a NUL byte (a key then needs decoding before it is compared). */
static bool string(cz_t *z, bool *esc)
{
    z->p++;
    *esc = false;
    for (;;) {
        const unsigned char *q = z->p;
        while (q < z->end && *q != '"' && *q != '\\' && *q != '\0')
            q++;
        z->p = q;
        if (q >= z->end)
            return false;
        if (*q == '"') {
            z->p++;
            return true;
        }
        *esc = true;
        if (*q == '\0') {
            z->p++;
            continue;
        }
        /* a backslash */
        if (q + 1 >= z->end)
            return false;
        switch (q[1]) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
            z->p = q + 2;
            break;
        case 'u':
            if (z->end - q < 6)
                return false;
            for (int i = 2; i < 6; i++)
                if (rd_hexval(q[i]) < 0)
                    return false;
            z->p = q + 6;
            break;
        default:
            return false;
        }
    }
}

/* The key between s and e (no quotes; escapes already validated) decoded as
 * json-c stores it, cut at a NUL, into buf; false when it cannot be a kept key
 * (longer than any, or not ASCII). */
static bool decode_key(const unsigned char *s, const unsigned char *e, char *buf, size_t cap,
                       size_t *n)
{
    size_t k = 0;
    while (s < e) {
        unsigned c = *s++;
        if (c == '\\') {
            c = *s++;
            switch (c) {
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'n':
                c = '\n';
                break;
            case 'r':
                c = '\r';
                break;
            case 't':
                c = '\t';
                break;
            case 'u':
                c = (unsigned)(rd_hexval(s[0]) << 12 | rd_hexval(s[1]) << 8 | rd_hexval(s[2]) << 4 |
                               rd_hexval(s[3]));
                s += 4;
                break;
            default: /* " \ / stand for themselves */
                break;
            }
        }
        if (c == 0)
            break;
        if (c >= 0x80 || k + 1 >= cap)
            return false;
        buf[k++] = (char)c;
    }
    buf[k] = '\0';
    *n = k;
    return true;
}

static bool key_kept(const unsigned char *s, const unsigned char *e, bool esc)
{
    if (!esc)
        return rd_ghjson_key_kept((const char *)s, (size_t)(e - s));
    char buf[64];
    size_t n;
    return decode_key(s, e, buf, sizeof(buf), &n) && rd_ghjson_key_kept(buf, n);
}

static bool literal(cz_t *z, const char *lit, size_t n)
{
    if ((size_t)(z->end - z->p) < n || memcmp(z->p, lit, n) != 0)
        return false;
    z->p += n;
    return true;
}

/* A digit, optionally after '-', then json-c's number bytes [0-9.eE+-]. Looser
 * than RFC 8259 and than json-c itself (which takes leading zeros, "1." and
 * "1E+2" but not "1-2"): a kept number is parsed by json-c afterwards, a
 * dropped one cannot matter, and refusing one json-c's strict mode takes would
 * refuse a page the old path read. */
static bool number(cz_t *z)
{
    if (*z->p == '-')
        z->p++;
    if (z->p >= z->end || !(*z->p >= '0' && *z->p <= '9'))
        return false;
    while (z->p < z->end && ((*z->p >= '0' && *z->p <= '9') || *z->p == '.' || *z->p == 'e' ||
                             *z->p == 'E' || *z->p == '+' || *z->p == '-'))
        z->p++;
    return true;
}

/* One value at depth; copied (filtered) to the output when emit. */
static bool value(cz_t *z, int depth, bool emit)
{
    if (depth > COMPACT_MAX_DEPTH)
        return false;
    if (emit && depth > COMPACT_KEEP_DEPTH) {
        if (!value(z, depth, false))
            return false;
        put(z, "null", 4);
        return true;
    }
    ws(z);
    if (z->p >= z->end)
        return false;
    const unsigned char *start = z->p;
    bool esc;
    switch (*z->p) {
    case '{': {
        z->p++;
        if (emit)
            put(z, "{", 1);
        bool first = true;
        ws(z);
        if (z->p < z->end && *z->p == '}') {
            z->p++;
        } else {
            for (;;) {
                ws(z);
                if (z->p >= z->end || *z->p != '"')
                    return false;
                const unsigned char *ks = z->p;
                if (!string(z, &esc))
                    return false;
                const unsigned char *ke = z->p;
                ws(z);
                if (z->p >= z->end || *z->p != ':')
                    return false;
                z->p++;
                bool keep = emit && key_kept(ks + 1, ke - 1, esc);
                if (keep) {
                    if (!first)
                        put(z, ",", 1);
                    first = false;
                    put(z, ks, (size_t)(ke - ks));
                    put(z, ":", 1);
                }
                if (!value(z, depth + 1, keep))
                    return false;
                ws(z);
                if (z->p < z->end && *z->p == ',') {
                    z->p++;
                    continue;
                }
                if (z->p < z->end && *z->p == '}') {
                    z->p++;
                    break;
                }
                return false;
            }
        }
        if (emit)
            put(z, "}", 1);
        return true;
    }
    case '[': {
        z->p++;
        if (emit)
            put(z, "[", 1);
        ws(z);
        if (z->p < z->end && *z->p == ']') {
            z->p++;
        } else {
            for (bool first = true;; first = false) {
                if (emit && !first)
                    put(z, ",", 1);
                if (!value(z, depth + 1, emit))
                    return false;
                ws(z);
                if (z->p < z->end && *z->p == ',') {
                    z->p++;
                    continue;
                }
                if (z->p < z->end && *z->p == ']') {
                    z->p++;
                    break;
                }
                return false;
            }
        }
        if (emit)
            put(z, "]", 1);
        return true;
    }
    case '"':
        if (!string(z, &esc))
            return false;
        break;
    case 't':
        if (!literal(z, "true", 4))
            return false;
        break;
    case 'f':
        if (!literal(z, "false", 5))
            return false;
        break;
    case 'n':
        if (!literal(z, "null", 4))
            return false;
        break;
    case 'N':
        if (!literal(z, "NaN", 3))
            return false;
        break;
    case 'I':
        if (!literal(z, "Infinity", 8))
            return false;
        break;
    default:
        if (*z->p == '-' && z->end - z->p > 1 && z->p[1] == 'I') {
            if (!literal(z, "-Infinity", 9))
                return false;
        } else if (!number(z)) {
            return false;
        }
        break;
    }
    if (emit)
        put(z, start, (size_t)(z->p - start));
    return true;
}

char *rd_ghjson_compact(const char *body, size_t len, size_t *out_len)
{
    if (body == NULL || len == 0 || len > RD_GHJSON_MAX_BODY || len > INT_MAX)
        return NULL;
    cz_t z = {.p = (const unsigned char *)body, .end = (const unsigned char *)body + len};
    ws(&z);
    bool top_null = z.p < z.end && *z.p == 'n';
    bool ok = !top_null && value(&z, 0, true);
    /* Only whitespace (or NULs) may follow the document. */
    for (; ok && z.p < z.end; z.p++)
        if (!isspace(*z.p) && *z.p != '\0')
            ok = false;
    if (!ok) {
        free(z.out.s);
        return NULL;
    }
    *out_len = z.out.len;
    return z.out.s;
}
