#!/usr/bin/env python3
"""No core dumps with secrets in them (issue 17 F4, DESIGN.md section 7).

runnerd runs with its core limit raised to unlimited by whoever started it
(here the test, as a careless shell or service manager would) and a token
file whose token it reads at start (runnerd + fake GitHub + fake docker):

1. /proc/PID/limits shows "Max core file size" 0 for soft and hard limit: runnerd
   lowered both itself, so neither it nor its docker children can dump core;
2. SIGABRT kills it (the signal that dumps core) and no file named core* or
   vgcore* appears in its working directory, and no file under the test's
   directory holds the token. On the old code the kernel (core_pattern "core"
   here) wrote a core holding the token several times.
"""
import os
import resource
import signal
import subprocess
import sys
import time

import opskit
import rdtest

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def core_limits(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max core file size"):
                return line.split()[4:6]
    return None


def files_holding(root, needle):
    hits = []
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            try:
                with open(p, "rb") as f:
                    if needle in f.read():
                        hits.append(p)
            except OSError:
                pass
    return hits


def unlimited_cores():
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def main():
    try:
        with open("/proc/sys/kernel/core_pattern") as f:
            pattern = f.read().strip()
    except OSError:
        pattern = "?"
    print("core_pattern: %s" % pattern)
    with rdtest.TempDir() as tmp:
        s = opskit.Setup(tmp, instance="nocore", secret=None, listen=True,
                         targets=[{"repo": "nocore-org/app"}])
        proc = None
        try:
            s.gh.repos("nocore-org", ["app"])
            tok = os.path.join(tmp, "token")
            with open(tok, "w") as f:
                f.write(rdtest.TOKEN + "\n")
            os.chmod(tok, 0o600)
            cfg_path = os.path.join(tmp, "runnerd.yaml")
            with open(cfg_path, "w") as f:
                f.write(rdtest.to_yaml(s.config(github={"token_file": tok})) + "\n")
            cwd = os.path.join(tmp, "cwd")
            os.mkdir(cwd)
            log = open(os.path.join(tmp, "runnerd.log"), "w")
            env = dict(os.environ, **s.env)
            proc = subprocess.Popen(rdtest.wrap([rdtest.RUNNERD, "-c", cfg_path]), cwd=cwd,
                                    stdout=log, stderr=log, env=env, preexec_fn=unlimited_cores)

            def up():
                if proc.poll() is not None:
                    raise AssertionError("runnerd exited")
                try:
                    return opskit.get(s.port, "/healthz", timeout=2)[0] in (200, 503)
                except OSError:
                    return False
            rdtest.wait_until(up, 20, 0.05, "the listener")
            # The token has been used: a poll went out with it.
            rdtest.wait_until(lambda: s.gh.stats().get("requests_total", 0) > 0, 20, 0.1,
                              "a request to the fake GitHub")
            lim = core_limits(proc.pid)
            check(lim == ["0", "0"], "core file size limit soft and hard 0 (got %r)" % (lim,))

            proc.send_signal(signal.SIGABRT)
            rc = proc.wait(rdtest.scaled(30))
            check(rc == -signal.SIGABRT or rc == 128 + signal.SIGABRT or rc == 134,
                  "SIGABRT killed runnerd (exit %r)" % rc)
            time.sleep(0.5)
            cores = [n for n in os.listdir(cwd) if n.startswith("core") or n.startswith("vgcore")]
            check(cores == [], "no core file in runnerd's working directory (found %r)" % cores)
            hits = [h for h in files_holding(tmp, rdtest.TOKEN.encode()) if h != tok]
            check(hits == [], "no file but the token file holds the token (found %r)" % hits)
        finally:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
            s.close()
    if failures:
        print("FAILED: %d check(s)" % len(failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
