/* main.c: the runnerd command line. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "runnerd/core/common.h"
#include "runnerd/core/config.h"
#include "runnerd/core/log.h"
#include "runnerd/io/configfile.h"
#include "runnerd/io/daemon.h"
#include "runnerd/io/hostfacts.h"
#include "runnerd/io/logsink.h"

#define RD_DEFAULT_CONFIG "/etc/runnerd/runnerd.yaml"
#define RD_DEFAULT_CONTROL "/run/runnerd/runnerd.sock" /* as config.c's default */

static void usage(FILE *fp)
{
    fprintf(
        fp,
        "usage: runnerd [-c FILE] [--check-config] [--once] [--dry-run]\n"
        "               [--log-level debug|info|warn|error] [--log-format text|json]\n"
        "               [--version] [--help]\n"
        "\n"
        "Autoscale ephemeral GitHub Actions runners in docker containers.\n"
        "\n"
        "  -c, --config FILE     configuration file (default " RD_DEFAULT_CONFIG ")\n"
        "      --check-config    validate FILE as a reload would, print a summary, exit 0 or 1\n"
        "      --once            one poll-and-schedule cycle, then exit\n"
        "      --dry-run         decide and log, start nothing, create nothing on GitHub\n"
        "                        (with --once: print the plan as JSON lines on stdout)\n"
        "      --log-level LEVEL debug, info (default), warn or error\n"
        "      --log-format FMT  text (default) or json; logs go to stderr\n"
        "      --control-socket PATH  runnerctl's socket (default: control_socket: of FILE,\n"
        "                        else " RD_DEFAULT_CONTROL "; \"\" for none)\n"
        "  -V, --version         print \"runnerd VERSION\" and exit\n"
        "  -h, --help            print this help and exit\n");
}

static int bad_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "runnerd: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n"
                    "usage: runnerd [-c FILE] [--check-config] [--once] [--dry-run]\n"
                    "               [--log-level debug|info|warn|error] [--log-format text|json]\n"
                    "               [--version] [--help]\n");
    return 2;
}

/* Load and validate exactly as a (re)load does: the pure loader, then the files
 * and environment it names. Errors go to stderr, the summary to stdout. */
static int check_config(const char *path)
{
    rd_host_facts_t facts;
    char hostname[256];
    /* A fact that cannot be read is reported by the loader only if it is needed. */
    (void)rd_hostfacts_gather(&facts, hostname, sizeof(hostname));
    rd_config_errors_t errs = {0}, warnings = {0};
    rd_config_t *cfg = NULL;
    int rc = rd_config_load_checked(path, &facts, &cfg, &errs, &warnings);
    rd_config_errors_print(&warnings, stderr);
    rd_config_errors_free(&warnings);
    if (rc != RD_OK) {
        rd_config_errors_print(&errs, stderr);
        rd_config_errors_free(&errs);
        return 1;
    }
    rd_config_print_summary(cfg, stdout);
    rd_config_errors_free(&errs);
    rd_config_free(cfg);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* The listener takes up to 1024 connections besides the API connections, child
 * pipes and containers' log pipes: a service manager's default soft limit (1024)
 * is too low. Raise the soft limit to the hard one (capped); never fail on it. */
static void raise_nofile_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            rd_debug("main", "open files limit raised from %llu to %llu", (unsigned long long)old,
                     (unsigned long long)want);
        else
            rd_warn("main", "open files limit %llu is low for the listener; set LimitNOFILE=",
                    (unsigned long long)old);
    }
}

/* runnerd holds the GitHub token, installation tokens, JIT configs and the
 * webhook secret in memory: a core dump would write them to disk, where the
 * service's sandbox no longer protects them, and a dumpable process can be
 * read through /proc/PID/mem by anything running as the same user. So no
 * cores (soft and hard limit 0, inherited by the docker CLI children, which
 * carry a JIT config in their environment) and not dumpable, before anything
 * secret is read. Failing to set either is not fatal: systemd's LimitCORE=0
 * covers the first. */
static void no_core_dumps(void)
{
    struct rlimit rl = {.rlim_cur = 0, .rlim_max = 0};
    (void)setrlimit(RLIMIT_CORE, &rl);
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

int main(int argc, char **argv)
{
    rd_logsink_install_abort_hook();
    no_core_dumps();
    enum { OPT_CHECK = 256, OPT_ONCE, OPT_DRY_RUN, OPT_LOG_LEVEL, OPT_LOG_FORMAT, OPT_CONTROL };
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, OPT_CHECK},
        {"once", no_argument, NULL, OPT_ONCE},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
        {"control-socket", required_argument, NULL, OPT_CONTROL},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = RD_DEFAULT_CONFIG;
    bool check = false, once = false, dry_run = false;
    const char *level = "info", *format = "text", *control = NULL;

    opterr = 0; /* our own messages, then the usage */
    int ch;
    while ((ch = getopt_long(argc, argv, ":c:hV", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            config = optarg;
            break;
        case OPT_CHECK:
            check = true;
            break;
        case OPT_ONCE:
            once = true;
            break;
        case OPT_DRY_RUN:
            dry_run = true;
            break;
        case OPT_LOG_LEVEL:
            level = optarg;
            break;
        case OPT_LOG_FORMAT:
            format = optarg;
            break;
        case OPT_CONTROL:
            control = optarg;
            break;
        case 'V':
            printf("runnerd %s\n", RD_VERSION_STRING);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        case ':':
            return bad_usage("option %s needs an argument", argv[optind - 1]);
        default: {
            /* A long option arrives whole in argv ("--bogus", "--version=1"); a short
             * one may sit inside a cluster ("-Vx"), so name it by optopt. */
            const char *arg = argv[optind - 1];
            if (strncmp(arg, "--", 2) == 0)
                return bad_usage("invalid option %s", arg);
            char opt[3] = {'-', (char)optopt, '\0'};
            return bad_usage("invalid option %s", opt);
        }
        }
    }
    if (optind < argc)
        return bad_usage("unexpected argument \"%s\"", argv[optind]);
    rd_log_level_t log_level;
    rd_log_format_t log_format;
    if (rd_log_parse_level(level, &log_level) != 0)
        return bad_usage("--log-level must be debug, info, warn or error, not \"%s\"", level);
    if (rd_log_parse_format(format, &log_format) != 0)
        return bad_usage("--log-format must be text or json, not \"%s\"", format);
    rd_logsink_setup(log_level, log_format, stderr);
    if (config[0] == '\0')
        return bad_usage("-c needs a file name%s", "");

    if (check)
        return check_config(config);
    if (!once)
        raise_nofile_limit();
    rd_daemon_opts_t opts = {
        .config_path = config, .once = once, .dry_run = dry_run, .control_socket = control};
    return rd_daemon_run(&opts);
}
