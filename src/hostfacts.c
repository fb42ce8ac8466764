/* hostfacts.c: read the host's cores, memory, arch and name (I/O side). */
#include "runnerd/hostfacts.h"

#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <uv.h>

static unsigned long long meminfo_total(void)
{
    FILE *fp = fopen("/proc/meminfo", "re");
    if (fp == NULL)
        return 0;
    char line[256];
    unsigned long long kib = 0;
    while (fgets(line, sizeof(line), fp) != NULL) {
        if (sscanf(line, "MemTotal: %llu kB", &kib) == 1)
            break;
    }
    fclose(fp);
    return kib * 1024ULL;
}

void rd_hostfacts_gather(rd_host_facts_t *out, char *hostbuf, size_t hostbuf_len)
{
    memset(out, 0, sizeof(*out));
    /* Honours the CPU affinity mask (taskset, cpusets), unlike sysconf(). */
    out->cores = uv_available_parallelism();
    out->mem_total = meminfo_total();
    struct utsname u;
    if (uname(&u) == 0)
        out->arch = rd_arch_parse(u.machine);
    if (hostbuf_len > 0) {
        hostbuf[0] = '\0';
        if (gethostname(hostbuf, hostbuf_len) != 0)
            hostbuf[0] = '\0';
        hostbuf[hostbuf_len - 1] = '\0';
    }
    out->hostname = hostbuf;
}
