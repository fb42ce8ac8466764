/* hostfacts_parse.c: pure parsers behind hostfacts.h (meminfo text, uname -m). */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "runnerd/core/common.h"
#include "runnerd/core/hostfacts_parse.h"

int rd_hostfacts_parse_meminfo(const char *text, size_t len, uint64_t *out_bytes)
{
    static const char key[] = "MemTotal:";
    const size_t klen = sizeof(key) - 1;
    const char *p = text, *end = text + len;
    *out_bytes = 0;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - p) >= klen && memcmp(p, key, klen) == 0) {
            const char *q = p + klen;
            while (q < eol && (*q == ' ' || *q == '\t'))
                q++;
            if (q == eol || !isdigit((unsigned char)*q))
                return RD_EINVAL;
            uint64_t v = 0;
            while (q < eol && isdigit((unsigned char)*q)) {
                unsigned d = (unsigned)(*q - '0');
                if (v > (UINT64_MAX - d) / 10)
                    return RD_EINVAL;
                v = v * 10 + d;
                q++;
            }
            while (q < eol && (*q == ' ' || *q == '\t'))
                q++;
            /* The kernel always writes "kB" (meaning KiB); accept a bare number as bytes. */
            uint64_t mult = 1;
            size_t rest = (size_t)(eol - q);
            while (rest > 0 && (q[rest - 1] == ' ' || q[rest - 1] == '\t' || q[rest - 1] == '\r'))
                rest--;
            if (rest == 2 && strncasecmp(q, "kB", 2) == 0)
                mult = 1024;
            else if (rest != 0)
                return RD_EINVAL;
            if (v > UINT64_MAX / mult)
                return RD_EINVAL;
            *out_bytes = v * mult;
            return 0;
        }
        p = eol + 1;
    }
    return RD_ENOENT;
}

rd_arch_t rd_hostfacts_arch_from_machine(const char *m)
{
    if (m == NULL)
        return RD_ARCH_UNKNOWN;
    if (strcasecmp(m, "x86_64") == 0 || strcasecmp(m, "amd64") == 0 || strcasecmp(m, "x64") == 0)
        return RD_ARCH_X64;
    if (strcasecmp(m, "aarch64") == 0 || strcasecmp(m, "arm64") == 0 ||
        strcasecmp(m, "aarch64_be") == 0)
        return RD_ARCH_ARM64;
    /* 32-bit ARM: arm, armv6l, armv7l, armv8l (32-bit userland on a 64-bit core), armhf. */
    if (strncasecmp(m, "arm", 3) == 0)
        return RD_ARCH_ARM;
    return RD_ARCH_UNKNOWN;
}
