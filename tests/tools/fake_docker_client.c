/* rd_fake_docker: a thin front door for the docker double (tests/fake_docker).
 *
 * The double is a Python script; starting python3 for every `docker` call costs
 * ~100 ms of CPU, too much for a burst of 100 `docker run`s on a small machine.
 * `fake_docker --zygote` preloads it once and serves calls over a unix socket;
 * this client hands it a call the way the real docker CLI hands one to dockerd:
 *
 *   1. connect to $FAKE_DOCKER_ZYGOTE, else $FAKE_DOCKER_STATE/zygote.sock. If
 *      nothing answers there, exec the Python double directly
 *      (/usr/bin/python3 $FAKE_DOCKER_PY|RD_FAKE_DOCKER_PY argv...), so the
 *      behaviour is the same with or without a server.
 *   2. send a 4-byte big-endian length with our fds 0, 1, 2 (SCM_RIGHTS), then
 *      the request: "RDFD1", cwd, umask (octal), argc, argv..., environ...,
 *      each NUL-terminated.
 *   3. the server's child answers "pid N\n" (it then runs the double's main()
 *      on our fds) and, when main() returns, "exit N\n". We exit with N.
 *      SIGTERM/SIGINT/SIGHUP are forwarded to that child (the double's `run`
 *      proxies TERM/INT to its container and ignores HUP; other commands die of
 *      them, and so do we: an EOF without "exit" after a forwarded signal
 *      re-raises it here). EOF without a code otherwise: exit 125.
 *
 * If we are killed -9, the server's child goes on (as the double's `run`
 * process survives runnerd), and its container can be adopted with ps/wait.
 * The environment travels in the request, never in argv: it holds the JIT config.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef RD_FAKE_DOCKER_PY
#define RD_FAKE_DOCKER_PY "tests/fake_docker/fake_docker"
#endif
#define PYTHON "/usr/bin/python3"
#define PID_TIMEOUT_MS 60000
#define MAX_REQUEST (64u << 20)

extern char **environ;

static volatile sig_atomic_t g_child;     /* the server's child running our call */
static volatile sig_atomic_t g_forwarded; /* last signal forwarded to it, 0 if none */

static void die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("rd_fake_docker: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(code);
}

static void exec_python(char **argv)
{
    const char *script = getenv("FAKE_DOCKER_PY");
    if (script == NULL || *script == '\0')
        script = RD_FAKE_DOCKER_PY;
    int argc = 0;
    while (argv[argc])
        argc++;
    char **args = calloc((size_t)argc + 3, sizeof *args);
    if (args == NULL)
        die(125, "out of memory");
    args[0] = (char *)"python3";
    args[1] = (char *)script;
    for (int i = 1; i < argc; i++)
        args[i + 1] = argv[i];
    execv(PYTHON, args);
    execvp("python3", args);
    die(125, "cannot exec python3 %s: %s", script, strerror(errno));
}

/* Connected socket to the server, or -1 when nothing answers there. */
static int zygote_connect(void)
{
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    const char *z = getenv("FAKE_DOCKER_ZYGOTE");
    int n;
    if (z && *z) {
        n = snprintf(path, sizeof path, "%s", z);
    } else {
        const char *st = getenv("FAKE_DOCKER_STATE");
        if (st == NULL || *st == '\0')
            return -1;
        n = snprintf(path, sizeof path, "%s/zygote.sock", st);
    }
    if (n < 0 || (size_t)n >= sizeof path)
        return -1; /* too long for a unix socket address: no server can be there */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, (size_t)n + 1);
    int rc;
    do {
        rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

struct buf {
    char *p;
    size_t len, cap;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (np == NULL)
            die(125, "out of memory");
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void buf_str(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s) + 1);
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Our fd i if open, else /dev/null (the server child needs three fds). */
static int stdio_fd(int i, int *opened)
{
    if (fcntl(i, F_GETFD) >= 0)
        return i;
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        die(125, "cannot open /dev/null: %s", strerror(errno));
    *opened = fd;
    return fd;
}

static int send_request(int sock, char **argv)
{
    struct buf b = {0};
    char tmp[64];
    char *cwd = getcwd(NULL, 0);
    buf_str(&b, "RDFD1");
    buf_str(&b, cwd ? cwd : "/");
    free(cwd);
    mode_t um = umask(022);
    umask(um);
    snprintf(tmp, sizeof tmp, "%o", (unsigned)um);
    buf_str(&b, tmp);
    int argc = 0;
    while (argv[argc])
        argc++;
    snprintf(tmp, sizeof tmp, "%d", argc);
    buf_str(&b, tmp);
    for (int i = 0; i < argc; i++)
        buf_str(&b, argv[i]);
    for (char **e = environ; e && *e; e++)
        buf_str(&b, *e);
    if (b.len > MAX_REQUEST)
        die(125, "request too large (%zu bytes)", b.len);

    unsigned char hdr[4] = {(unsigned char)(b.len >> 24), (unsigned char)(b.len >> 16),
                            (unsigned char)(b.len >> 8), (unsigned char)b.len};
    int opened[3] = {-1, -1, -1};
    int fds[3];
    for (int i = 0; i < 3; i++)
        fds[i] = stdio_fd(i, &opened[i]);
    union {
        char buf[CMSG_SPACE(sizeof fds)];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct iovec iov = {.iov_base = hdr, .iov_len = sizeof hdr};
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl.buf;
    mh.msg_controllen = sizeof ctl.buf;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof fds);
    memcpy(CMSG_DATA(cm), fds, sizeof fds);
    ssize_t w;
    do {
        w = sendmsg(sock, &mh, MSG_NOSIGNAL);
    } while (w < 0 && errno == EINTR);
    int rc = 0;
    if (w < 0)
        rc = -1;
    else if ((size_t)w < sizeof hdr)
        rc = send_all(sock, (const char *)hdr + w, sizeof hdr - (size_t)w);
    if (rc == 0)
        rc = send_all(sock, b.p, b.len);
    for (int i = 0; i < 3; i++)
        if (opened[i] >= 0)
            close(opened[i]);
    /* Scrub: the environment holds the JIT config. */
    memset(b.p, 0, b.len);
    free(b.p);
    return rc;
}

static void on_signal(int sig)
{
    int saved = errno;
    if (g_child > 0 && kill((pid_t)g_child, sig) == 0)
        g_forwarded = sig;
    errno = saved;
}

/* Read one "\n"-terminated line into line[cap]; 1 = got one, 0 = EOF, -1 = error/timeout. */
static int read_line(int sock, char *line, size_t cap, size_t *have, int timeout_ms)
{
    for (;;) {
        char *nl = memchr(line, '\n', *have);
        if (nl) {
            *nl = '\0';
            return 1;
        }
        if (*have + 1 >= cap)
            return -1;
        if (timeout_ms >= 0) {
            struct pollfd pfd = {.fd = sock, .events = POLLIN};
            int pr = poll(&pfd, 1, timeout_ms);
            if (pr < 0 && errno == EINTR)
                continue;
            if (pr <= 0)
                return -1;
        }
        ssize_t r = recv(sock, line + *have, cap - 1 - *have, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            return 0;
        *have += (size_t)r;
    }
}

int main(int argc, char **argv)
{
    (void)argc;
    /* Held until the server's child is known, then forwarded to it. */
    sigset_t fwd, old;
    sigemptyset(&fwd);
    sigaddset(&fwd, SIGTERM);
    sigaddset(&fwd, SIGINT);
    sigaddset(&fwd, SIGHUP);
    sigprocmask(SIG_BLOCK, &fwd, &old);

    int sock = zygote_connect();
    if (sock < 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        exec_python(argv);
    }
    signal(SIGPIPE, SIG_IGN);
    if (send_request(sock, argv) != 0)
        die(125, "cannot send the call to the fake docker server: %s", strerror(errno));

    char line[128];
    size_t have = 0;
    int r = read_line(sock, line, sizeof line, &have, PID_TIMEOUT_MS);
    long pid = 0;
    if (r == 1 && sscanf(line, "pid %ld", &pid) == 1 && pid > 0) {
        /* keep whatever followed the pid line */
        size_t used = strlen(line) + 1;
        memmove(line, line + used, have - used);
        have -= used;
    } else {
        die(125, "the fake docker server did not take the call (%s)",
            r == 0  ? "connection closed"
            : r < 0 ? "no answer"
                    : "bad answer");
    }
    g_child = (sig_atomic_t)pid;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigprocmask(SIG_SETMASK, &old, NULL); /* pending ones are forwarded now */

    r = read_line(sock, line, sizeof line, &have, -1);
    int code;
    if (r == 1 && sscanf(line, "exit %d", &code) == 1)
        return code & 0xff;
    int sig = g_forwarded;
    if (r == 0 && sig != 0) {
        /* It died of the signal we passed on, as we would have without a server. */
        signal(sig, SIG_DFL);
        sigset_t one;
        sigemptyset(&one);
        sigaddset(&one, sig);
        sigprocmask(SIG_UNBLOCK, &one, NULL);
        raise(sig);
    }
    die(125, "the fake docker server's child %ld ended without an exit code", pid);
    return 125;
}
