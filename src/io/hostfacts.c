/* hostfacts.c: read this host's cores, memory, architecture and name (I/O side). */
#include "runnerd/io/hostfacts.h"

#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <uv.h>

#include "runnerd/core/common.h"

int rd_hostfacts_gather(rd_host_facts_t *out, char *hostname_buf, size_t hostname_size)
{
    int rc = 0;
    memset(out, 0, sizeof(*out));

    out->cores = uv_available_parallelism();

    char buf[8192];
    FILE *fp = fopen("/proc/meminfo", "re");
    if (fp != NULL) {
        size_t n = fread(buf, 1, sizeof(buf), fp);
        fclose(fp);
        if (rd_hostfacts_parse_meminfo(buf, n, &out->mem_total) != 0)
            rc = RD_EIO;
    } else {
        rc = RD_EIO;
    }

    struct utsname u;
    if (uname(&u) == 0)
        out->arch = rd_hostfacts_arch_from_machine(u.machine);
    else
        rc = RD_EIO;

    out->hostname = "";
    if (hostname_buf != NULL && hostname_size > 0) {
        size_t sz = hostname_size;
        if (uv_os_gethostname(hostname_buf, &sz) != 0) {
            hostname_buf[0] = '\0';
            rc = RD_EIO;
        }
        out->hostname = hostname_buf;
    }
    return rc;
}

void rd_hostfacts_get(rd_host_facts_t *out, char *hostbuf, size_t hostbuf_len)
{
    (void)rd_hostfacts_gather(out, hostbuf, hostbuf_len);
}
