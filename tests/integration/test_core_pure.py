#!/usr/bin/env python3
"""The pure library rd_core does no I/O (issue 13 item 1, docs/architecture.md):
`nm -u librd_core.a` names no stream, file, clock, environment, process or
socket call. The shell (src/io, the programs) does those and hands the core
text, values and `now`; the core builds text and the shell writes it."""
import os
import re
import shutil
import subprocess
import sys

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("RUNNERD_BUILD") or os.path.join(SRC, "build")

# Calls the core must not make. Fortified (__fprintf_chk) and large-file
# (open64, fstat64) spellings are folded onto these names first.
FORBIDDEN = {
    # streams
    "fprintf", "vfprintf", "printf", "vprintf", "dprintf", "vdprintf", "fputc", "fputs",
    "putc", "putchar", "puts", "fwrite", "fflush", "fopen", "fdopen", "fclose", "fread",
    "fgets", "getline", "perror", "stdin", "stdout", "stderr", "open_memstream", "syslog",
    # files and descriptors
    "open", "openat", "creat", "read", "pread", "write", "pwrite", "close", "stat", "lstat",
    "fstat", "fstatat", "access", "realpath", "unlink", "rename", "mkdir", "opendir",
    "readdir", "dup", "dup2", "pipe", "pipe2", "ioctl", "fcntl", "mmap",
    # environment, identity, clock
    "getenv", "secure_getenv", "setenv", "geteuid", "getuid", "getegid", "getgid",
    "getpid", "clock_gettime", "gettimeofday", "time", "sleep", "usleep", "nanosleep",
    # processes
    "fork", "vfork", "kill", "waitpid", "system", "popen", "posix_spawn", "posix_spawnp",
    # sockets
    "socket", "connect", "bind", "listen", "accept", "accept4", "send", "recv", "sendto",
    "recvfrom", "sendmsg", "recvmsg",
}


def canonical(sym):
    s = sym.split("@", 1)[0]
    m = re.fullmatch(r"__(\w+?)_chk", s)
    if m:
        s = m.group(1)
    if s.endswith("64") and s[:-2] in FORBIDDEN:
        s = s[:-2]
    return s


def main():
    lib = os.path.join(BUILD, "librd_core.a")
    assert os.path.isfile(lib), "no %s (build first)" % lib
    nm = shutil.which("nm")
    assert nm, "nm not found (binutils)"
    out = subprocess.run([nm, "-u", lib], check=True, capture_output=True, text=True).stdout
    # nm -u of an archive: "member.o:" headers, then "                 U sym" lines
    bad = {}
    member = "?"
    for line in out.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.endswith(":"):
            member = line[:-1]
            continue
        sym = line.split()[-1]
        name = canonical(sym)
        if name in FORBIDDEN or name.startswith("exec"):
            bad.setdefault(sym, set()).add(member)
    if bad:
        for sym in sorted(bad):
            print("rd_core calls %s from %s" % (sym, ", ".join(sorted(bad[sym]))), file=sys.stderr)
        print("FAIL: the pure core does I/O: %s" % " ".join(sorted(bad)), file=sys.stderr)
        sys.exit(1)
    print("ok: librd_core.a names no I/O call")


if __name__ == "__main__":
    main()
