/* config_units.c: durations, sizes, architectures and names as the config
 * spells them, and their formatting for messages and the summary. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"
#include "runnerd/core/common.h"
#include "runnerd/core/labels.h"

int rd_parse_duration_ms(const char *s, uint64_t *out_ms)
{
    if (s == NULL || *s == '\0')
        return RD_EINVAL;
    const char *p = s;
    uint64_t total = 0;
    bool all_digits = true;
    for (const char *q = s; *q; q++)
        if (!isdigit((unsigned char)*q))
            all_digits = false;
    if (all_digits) {
        if (strlen(s) > 12)
            return RD_ERANGE;
        *out_ms = strtoull(s, NULL, 10) * 1000;
        return RD_OK;
    }
    /* One or more NUMBER UNIT parts: "1h30m", "250ms". */
    while (*p) {
        if (!isdigit((unsigned char)*p))
            return RD_EINVAL;
        uint64_t v = 0;
        int ndig = 0;
        while (isdigit((unsigned char)*p)) {
            if (++ndig > 12)
                return RD_ERANGE;
            v = v * 10 + (uint64_t)(*p - '0');
            p++;
        }
        uint64_t mult;
        if (strncmp(p, "ms", 2) == 0) {
            mult = 1;
            p += 2;
        } else if (*p == 's') {
            mult = 1000;
            p++;
        } else if (*p == 'm') {
            mult = 60 * 1000;
            p++;
        } else if (*p == 'h') {
            mult = 3600 * 1000;
            p++;
        } else if (*p == 'd') {
            mult = 24 * 3600 * 1000;
            p++;
        } else {
            return RD_EINVAL;
        }
        total += v * mult;
        if (total > (uint64_t)1 << 53)
            return RD_ERANGE;
    }
    *out_ms = total;
    return RD_OK;
}

int rd_parse_size(const char *s, uint64_t *out_bytes)
{
    if (s == NULL || *s == '\0')
        return RD_EINVAL;
    const char *p = s;
    int ndig = 0, nfrac = 0;
    uint64_t ip = 0, fp = 0, fdiv = 1;
    while (isdigit((unsigned char)*p)) {
        if (++ndig > 15)
            return RD_ERANGE;
        ip = ip * 10 + (uint64_t)(*p++ - '0');
    }
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) {
            if (++nfrac > 6)
                return RD_EINVAL;
            fp = fp * 10 + (uint64_t)(*p++ - '0');
            fdiv *= 10;
        }
        if (nfrac == 0)
            return RD_EINVAL;
    }
    if (ndig == 0)
        return RD_EINVAL;
    uint64_t unit = 1;
    char u = (char)tolower((unsigned char)*p);
    if (u != '\0') {
        switch (u) {
        case 'b':
            unit = 1;
            break;
        case 'k':
            unit = 1024ULL;
            break;
        case 'm':
            unit = RD_CFG_MIB;
            break;
        case 'g':
            unit = RD_CFG_GIB;
            break;
        case 't':
            unit = RD_CFG_GIB * 1024;
            break;
        default:
            return RD_EINVAL;
        }
        p++;
        if (u != 'b') {
            /* K, KB, KiB (any case) all mean 1024, as docker reads them. */
            if (tolower((unsigned char)p[0]) == 'i' && tolower((unsigned char)p[1]) == 'b')
                p += 2;
            else if (tolower((unsigned char)p[0]) == 'b')
                p++;
        }
        if (*p != '\0')
            return RD_EINVAL;
    }
    if (nfrac > 0 && unit == 1)
        return RD_EINVAL; /* "1.5" bytes makes no sense */
    if (ip > UINT64_MAX / unit / 2)
        return RD_ERANGE;
    *out_bytes = ip * unit + (fp * unit) / fdiv;
    return RD_OK;
}

const char *rd_arch_name(rd_arch_t arch)
{
    switch (arch) {
    case RD_ARCH_X64:
        return "x64";
    case RD_ARCH_ARM64:
        return "arm64";
    case RD_ARCH_ARM:
        return "arm";
    case RD_ARCH_UNKNOWN:
        break;
    }
    return "unknown";
}

rd_arch_t rd_arch_parse(const char *w)
{
    if (w == NULL)
        return RD_ARCH_UNKNOWN;
    if (strcasecmp(w, "x64") == 0 || strcasecmp(w, "amd64") == 0 || strcasecmp(w, "x86_64") == 0)
        return RD_ARCH_X64;
    if (strcasecmp(w, "arm64") == 0 || strcasecmp(w, "aarch64") == 0)
        return RD_ARCH_ARM64;
    if (strcasecmp(w, "arm") == 0 || strcasecmp(w, "armv7l") == 0 || strcasecmp(w, "armv7") == 0 ||
        strcasecmp(w, "armhf") == 0)
        return RD_ARCH_ARM;
    return RD_ARCH_UNKNOWN;
}

/* Docker's platform spelling of an arch. */
const char *rd_cfg_arch_docker(rd_arch_t a)
{
    switch (a) {
    case RD_ARCH_X64:
        return "amd64";
    case RD_ARCH_ARM64:
        return "arm64";
    case RD_ARCH_ARM:
        return "arm";
    case RD_ARCH_UNKNOWN:
        break;
    }
    return "unknown";
}

void rd_cfg_fmt_duration(uint64_t ms, char *buf, size_t len)
{
    if (ms % 1000 != 0)
        snprintf(buf, len, "%llums", (unsigned long long)ms);
    else if (ms % 86400000 == 0 && ms >= 2 * 86400000ULL)
        snprintf(buf, len, "%llud", (unsigned long long)(ms / 86400000));
    else if (ms % 3600000 == 0 && ms != 0)
        snprintf(buf, len, "%lluh", (unsigned long long)(ms / 3600000));
    else if (ms % 60000 == 0 && ms != 0)
        snprintf(buf, len, "%llum", (unsigned long long)(ms / 60000));
    else
        snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
}

void rd_cfg_fmt_size(uint64_t b, char *buf, size_t len)
{
    if (b >= RD_CFG_GIB && b % RD_CFG_GIB == 0)
        snprintf(buf, len, "%lluGiB", (unsigned long long)(b / RD_CFG_GIB));
    else if (b >= RD_CFG_GIB)
        snprintf(buf, len, "%.2fGiB", (double)b / (double)RD_CFG_GIB);
    else if (b >= RD_CFG_MIB && b % RD_CFG_MIB == 0)
        snprintf(buf, len, "%lluMiB", (unsigned long long)(b / RD_CFG_MIB));
    else if (b >= 1024 && b % 1024 == 0)
        snprintf(buf, len, "%lluKiB", (unsigned long long)(b / 1024));
    else
        snprintf(buf, len, "%lluB", (unsigned long long)b);
}

void rd_cfg_fmt_cpus(double v, char *buf, size_t len)
{
    snprintf(buf, len, "%.3f", v);
    /* Trim "2.000" -> "2", "0.500" -> "0.5". */
    char *dot = strchr(buf, '.');
    if (dot != NULL) {
        char *e = buf + strlen(buf) - 1;
        while (e > dot && *e == '0')
            *e-- = '\0';
        if (e == dot)
            *e = '\0';
    }
}

/* ------------------------------------------------------------------ names */

bool rd_config_owner_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 39 || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) || (unsigned char)s[i] > 127)
            if (s[i] != '-')
                return false;
    return true;
}

bool rd_config_repo_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 100 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!(isalnum(ch) || ch == '.' || ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

/* What GitHub accepts as a runner label; a NUL from a YAML escape cuts it short. */
bool rd_cfg_label_ok(const char *s, size_t len)
{
    return strlen(s) == len && rd_label_valid(s);
}

/* Pool names and the instance become container names, runner names and label
 * values, so they are held to [a-z0-9][a-z0-9_.-]*: never a flag, never a space. */
bool rd_cfg_name_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n < 1 || n > max)
        return false;
    if (!(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0])))
        return false;
    for (size_t i = 1; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!(islower(ch) || isdigit(ch) || ch == '_' || ch == '.' || ch == '-'))
            return false;
    }
    return true;
}

bool rd_cfg_env_key_ok(const char *s)
{
    if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_'))
            return false;
    return true;
}

/* Printable, no whitespace: image names, network names, binaries. */
bool rd_cfg_token_ok(const char *s)
{
    if (*s == '\0')
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return false;
    return true;
}

bool rd_cfg_has_ctl(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return true;
    return false;
}

void rd_cfg_url_host(const char *url, const char **host, size_t *len, const char **path)
{
    const char *a = strstr(url, "://");
    a = a ? a + 3 : url;
    size_t alen = strcspn(a, "/?#");
    if (path != NULL)
        *path = a + alen;
    /* userinfo@ ends at the authority's last '@'. */
    for (size_t i = alen; i > 0; i--)
        if (a[i - 1] == '@') {
            alen -= i;
            a += i;
            break;
        }
    size_t hl;
    if (a[0] == '[') {
        const char *close = memchr(a, ']', alen);
        hl = close ? (size_t)(close - a) + 1 : alen;
    } else {
        const char *colon = memchr(a, ':', alen);
        hl = colon ? (size_t)(colon - a) : alen;
    }
    *host = a;
    *len = hl;
}

/* A dotted quad whose first byte is 127 (each part 0-255, decimal, no sign). */
static bool ipv4_loopback(const char *s, size_t len)
{
    unsigned parts = 0, v = 0, digits = 0, first = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            if (digits == 0 || v > 255 || parts == 4)
                return false;
            if (parts++ == 0)
                first = v;
            v = digits = 0;
        } else if (isdigit((unsigned char)s[i]) && digits < 3) {
            v = v * 10 + (unsigned)(s[i] - '0');
            digits++;
        } else {
            return false;
        }
    }
    return parts == 4 && first == 127;
}

bool rd_config_host_is_loopback(const char *host, size_t len)
{
    if (len == 9 && strncasecmp(host, "localhost", 9) == 0)
        return true;
    if ((len == 3 && memcmp(host, "::1", 3) == 0) || (len == 5 && memcmp(host, "[::1]", 5) == 0))
        return true;
    return ipv4_loopback(host, len);
}
