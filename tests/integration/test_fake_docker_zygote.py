#!/usr/bin/env python3
"""The docker double through its fast front door: rd_fake_docker + `fake_docker --zygote`.

Runs the scenario of test_fake_docker.py (run/ps/inspect/stop/kill/rm/wait, a
runner taking and completing a job against the fake GitHub, exit codes, the
JIT config kept out of argv/output/state) with every `docker` call going
through the C client to a running server, then what only the front door has:
the calls really were served by the server, `run` proxies SIGTERM to its
container (sig-proxy), a SIGTERM to another command kills it as it would kill
python3, the client killed -9 leaves the container running and adoptable, a
client with no server behind it falls back to the Python double, the server
leaves no zombie nor child behind and removes its socket on SIGTERM.
Standard library only. Exit 0 = pass, 1 = fail.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import test_fake_docker as tfd  # noqa: E402
from test_fake_docker import check  # noqa: E402

SRC = tfd.SRC
BUILD = os.environ.get("RUNNERD_BUILD") or os.path.join(SRC, "build")
CLIENT = os.path.join(BUILD, "rd_fake_docker")
LABELS = ["self-hosted", "linux", "x64"]
FD_PY = tfd.FD  # the Python double (the server); tfd.FD becomes the client


class ZEnv(tfd.Env):
    """tfd.Env whose `docker` is the client (tfd.FD is patched to it for run_argv)."""

    def docker(self, *args, timeout=30, **extra):
        p = subprocess.run([CLIENT] + list(args), env=self.env(**extra), timeout=timeout,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.outputs.append(p.stdout + p.stderr)
        return p

    def calls(self, cmd):
        try:
            with open(os.path.join(self.state, "calls.jsonl")) as f:
                return [c for c in map(json.loads, f) if c["cmd"] == cmd]
        except OSError:
            return []

    def start_wait(self, name):
        before = len(self.calls("wait"))
        w = subprocess.Popen([CLIENT, "wait", name], env=self.env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while len(self.calls("wait")) == before and time.monotonic() < deadline and w.poll() is None:
            time.sleep(0.05)
        time.sleep(1.0)
        return w


def children(pid):
    """(pid, state) of the live processes whose parent is pid."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                data = f.read()
        except OSError:
            continue
        rest = data[data.rfind(")") + 2:].split()
        if int(rest[1]) == pid:
            out.append((int(d), rest[0]))
    return out


def test_served(t, zpid):
    """The calls go through the server: its child (not the client) records them."""
    p = subprocess.Popen([CLIENT, "version", "--format", "{{.Server.Version}}"], env=t.env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, errout = p.communicate(timeout=30)
    check(p.returncode == 0 and out.strip().endswith("+fake"), "version through the server")
    rec = t.calls("version")[-1]
    check(rec["pid"] != p.pid, "the call ran in a server child (pid %d), not the client (%d)"
          % (rec["pid"], p.pid))
    r = t.docker("ps", "--filter", "bogus=1")
    check(r.returncode == 1 and "Invalid filter 'bogus'" in r.stderr, "stderr and exit 1 come back")
    r = t.docker("run", "--bogus", "x")
    check(r.returncode == 125, "exit 125 comes back")


def test_sig_proxy(t):
    """docker run (sig-proxy on): SIGTERM to the client reaches the container -> 143."""
    jit = t.gh.jit("rn-proxy", LABELS)
    argv = [a for a in t.run_argv("rn-proxy", "hang:1") if a != "--sig-proxy=false"]
    p = subprocess.Popen(argv, env=t.env(jit=jit), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    check(t.wait_runner("rn-proxy") is not None, "sig-proxy runner online")
    p.send_signal(signal.SIGTERM)
    rc, out, _ = t.finish(p)
    check(rc == 143, "run exits 143 after SIGTERM proxied to the container (rc=%s)" % rc)
    check("Received SIGTERM" in out, "the container got the SIGTERM")

    # --sig-proxy=false: the run process ignores SIGTERM, the container goes on
    p, _ = t.start_run("rn-noproxy", "hang:1", LABELS)
    check(t.wait_runner("rn-noproxy") is not None, "no-proxy runner online")
    p.send_signal(signal.SIGTERM)
    p.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    check(p.poll() is None, "--sig-proxy=false: run survives SIGTERM and SIGHUP")
    s = t.docker("stop", "-t", "10", "rn-noproxy")
    rc, _, _ = t.finish(p)
    check(s.returncode == 0 and rc == 143, "then docker stop ends it: 143 (rc=%s)" % rc)

    # another command dies of the signal, as python3 would
    p, _ = t.start_run("rn-waitsig", "hang:1", LABELS)
    check(t.wait_state("rn-waitsig", "running"), "rn-waitsig running")
    w = t.start_wait("rn-waitsig")
    w.send_signal(signal.SIGTERM)
    w.communicate(timeout=20)
    check(w.returncode == -signal.SIGTERM, "docker wait dies of SIGTERM (rc=%s)" % w.returncode)
    w = t.start_wait("rn-waitsig")
    w.send_signal(signal.SIGINT)
    w.communicate(timeout=20)
    check(w.returncode == 130, "docker wait exits 130 on SIGINT like python3 (rc=%s)" % w.returncode)
    t.docker("kill", "rn-waitsig")
    t.finish(p)


def test_client_kill9(t):
    """The client killed -9: the container goes on, takes a job, can be adopted."""
    jit = t.gh.jit("rn-k9", LABELS)
    p = subprocess.Popen(t.run_argv("rn-k9", "runner:1"), env=t.env(jit=jit),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    check(t.wait_runner("rn-k9") is not None, "rn-k9 online")
    p.kill()
    p.wait(10)  # not communicate(): the run process and its container still hold the pipes
    p.stdout.close()
    p.stderr.close()
    time.sleep(0.5)
    ps = t.docker("ps", "--filter", "name=rn-k9", "--format", "{{.Names}} {{.State}}")
    check(ps.stdout.strip() == "rn-k9 running", "container running after its client died: %r" % ps.stdout)
    w = t.start_wait("rn-k9")
    q = t.gh.call("POST", "/_control/jobs", {"repo": "o/r", "labels": LABELS, "count": 1,
                                             "duration_ms": 1000})
    wout, _ = w.communicate(timeout=60)
    check(w.returncode == 0 and wout.strip() == "0", "adopted container: wait prints 0 (%r)" % wout)
    j = t.gh.job(q["job_ids"][0])
    check(j["status"] == "completed" and j["runner_name"] == "rn-k9", "its job completed")


def test_fallback(t):
    """No server at FAKE_DOCKER_ZYGOTE: the client execs the Python double itself."""
    nowhere = os.path.join(t.tmp, "nobody-here.sock")
    p = subprocess.Popen([CLIENT, "info", "--format", "{{.OperatingSystem}}"],
                         env=t.env(FAKE_DOCKER_ZYGOTE=nowhere), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    out, _ = p.communicate(timeout=30)
    check(p.returncode == 0 and out.strip() == "fake_docker", "fallback: info works")
    rec = t.calls("info")[-1]
    check(rec["pid"] == p.pid, "fallback: the client exec'd the double (same pid)")
    r = t.docker("wait", "nope", FAKE_DOCKER_ZYGOTE=nowhere)
    check(r.returncode == 1 and "No such container: nope" in r.stderr, "fallback: exit code 1")
    q = t.gh.call("POST", "/_control/jobs", {"repo": "o/r", "labels": LABELS, "count": 1,
                                             "duration_ms": 100})
    jit = t.gh.jit("rn-fallback", LABELS)
    p = subprocess.Popen(t.run_argv("rn-fallback", "runner:1"),
                         env=t.env(jit=jit, FAKE_DOCKER_ZYGOTE=nowhere),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rc, out, _ = t.finish(p)
    check(rc == 0 and "completed with result: Succeeded" in out, "fallback: a runner runs a job")
    check(t.gh.job(q["job_ids"][0])["status"] == "completed", "fallback: job completed")


def main():
    if not os.access(CLIENT, os.X_OK):
        print("FAIL: %s not built" % CLIENT)
        return 1
    tfd.FD = CLIENT  # run_argv's argv[0]
    tmp = tempfile.mkdtemp(prefix="test_fake_docker_zygote.")
    gh = tfd.FakeGitHub(tmp)
    t = ZEnv(tmp, gh)
    os.makedirs(t.state)
    zlog_path = os.path.join(tmp, "zygote.log")
    zlog = open(zlog_path, "w")
    zenv = dict(t.env())
    zygote = subprocess.Popen([FD_PY, "--zygote"], env=zenv, stdout=zlog,
                              stderr=subprocess.STDOUT)
    sock = os.path.join(t.state, "zygote.sock")
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(sock) and zygote.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if not check(os.path.exists(sock), "server listens at $FAKE_DOCKER_STATE/zygote.sock"):
            return 1
        gh.call("POST", "/_control/repos", {"owner": "o", "names": ["r"]})
        tests = [lambda t: test_served(t, zygote.pid), tfd.test_job_lifecycle, tfd.test_stop_kill,
                 tfd.test_errors, tfd.test_survives_parent, test_sig_proxy, test_client_kill9,
                 test_fallback]
        for test in tests:
            name = getattr(test, "__name__", "test")
            print("== %s" % (name if name != "<lambda>" else "test_served"))
            try:
                test(t)
            except Exception as e:  # report and go on with the next test
                check(False, "%s raised %s: %s" % (name, type(e).__name__, e))

        # no zombies, and no server child left once every call has returned
        deadline = time.monotonic() + 10
        while children(zygote.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        kids = children(zygote.pid)
        check(not any(s == "Z" for _, s in kids), "no zombie children of the server: %s" % kids)
        check(not kids, "no server child left behind: %s" % kids)

        zlog.flush()
        blob = "\n".join(t.outputs)
        with open(zlog_path, errors="replace") as f:
            blob += f.read()
        for root, _, files in os.walk(t.state):
            for fn in files:
                try:
                    with open(os.path.join(root, fn), errors="replace") as f:
                        blob += f.read()
                except OSError:
                    pass  # the socket
        leaked = [s for s in t.secrets if s in blob]
        check(not leaked, "no JIT config in any output, server log or state file")
        runs = [c for c in t.calls("run") if c.get("jit_env")]
        check(len(runs) >= 5, "calls.jsonl records run calls with jit_env=true")
    finally:
        ids = t.docker("ps", "-q", "--no-trunc").stdout.split()
        if ids:
            t.docker("kill", *ids)
        zygote.send_signal(signal.SIGTERM)
        try:
            zygote.wait(10)
            check(zygote.returncode == 0, "server exits 0 on SIGTERM (rc=%s)" % zygote.returncode)
        except subprocess.TimeoutExpired:
            zygote.kill()
            zygote.wait()
            check(False, "server exits on SIGTERM")
        check(not os.path.exists(sock), "server removed its socket")
        zlog.close()
        gh.stop()
        if not tfd.FAILS:
            shutil.rmtree(tmp, ignore_errors=True)
    if tfd.FAILS:
        print("%d check(s) failed (state kept in %s)" % (len(tfd.FAILS), tmp))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
