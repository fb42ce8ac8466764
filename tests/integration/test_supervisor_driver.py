#!/usr/bin/env python3
"""The supervisor against the fake GitHub and the fake docker, through tests/tools/supervise.c.

Cases: jobs served and everything cleaned up (JIT config never in argv, logs or
/proc/*/cmdline), startup timeout, a failing docker backs off instead of looping,
restart adoption after kill -9 (no second runner, orphans removed), drain of a
busy runner after the grace.
"""
import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rdtest  # noqa: E402

SRC = os.environ.get("RUNNERD_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("RUNNERD_BUILD", os.path.join(SRC, "build"))
DRIVER = os.path.join(BUILD, "rd_supervise")
FAKE_GH = os.path.join(SRC, "tests", "fake_github", "fake_github.py")
FAKE_DOCKER = os.path.join(SRC, "tests", "fake_docker", "fake_docker")
TOKEN = "ghp_supervisortest0123456789"
# base64 of '{".runner"': how every fake JIT config starts.
JIT_MARK = base64.b64encode(b'{".runner"').decode()[:12]
LABELS = ["self-hosted", "linux", "x64"]

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL: " + msg, flush=True)
    return cond


class FakeGitHub:
    def __init__(self, tmp):
        self.port_file = os.path.join(tmp, "gh.port")
        self.proc = subprocess.Popen(
            [sys.executable, FAKE_GH, "--port", "0", "--port-file", self.port_file,
             "--token", TOKEN], stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "gh.log"), "w"))
        deadline = time.time() + 15
        while not os.path.exists(self.port_file):
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("fake GitHub did not start")
            time.sleep(0.05)
        self.port = int(open(self.port_file).read().strip())
        self.url = "http://127.0.0.1:%d" % self.port

    def req(self, method, path, body=None, auth=False):
        data = json.dumps(body).encode() if body is not None else None
        r = urllib.request.Request(self.url + path, data=data, method=method)
        r.add_header("Content-Type", "application/json")
        if auth:
            r.add_header("Authorization", "Bearer " + TOKEN)
        with urllib.request.urlopen(r, timeout=10) as resp:
            raw = resp.read()
            return json.loads(raw) if raw else None

    def state(self):
        return self.req("GET", "/_control/state")

    def reset(self):
        self.req("POST", "/_control/reset", {})
        self.req("POST", "/_control/repos", {"owner": "o", "names": ["r"]})

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def write_config(tmp, gh, image="runner:latest", startup="20s", job="60s", binary=FAKE_DOCKER):
    token = os.path.join(tmp, "token")
    with open(token, "w") as f:
        f.write(TOKEN + "\n")
    path = os.path.join(tmp, "runnerd.yaml")
    with open(path, "w") as f:
        f.write("""github:
  api_url: %s
  token_file: %s
  poll_interval: 2s
host:
  cpus: 8
  memory: 16GiB
  max_runners: 8
docker:
  binary: %s
  network: host
instance: svtest
pools:
  - name: linux-x64
    labels: [self-hosted, linux, x64]
    image: %s
    cpus: 1
    memory: 1GiB
    pull: never
    startup_timeout: %s
    job_timeout: %s
targets:
  - repo: o/r
""" % (gh.url, token, binary, image, startup, job))
    return path


class Driver:
    def __init__(self, tmp, cfg, args, dstate, tag):
        self.log_path = os.path.join(tmp, "driver-%s.log" % tag)
        env = dict(os.environ, FAKE_DOCKER_STATE=dstate)
        self.proc = subprocess.Popen(
            rdtest.wrap([DRIVER, "-c", cfg, "--reconcile", "1000", "--log-level", "debug"] + args),
            stdout=subprocess.PIPE, stderr=open(self.log_path, "w"), env=env, text=True)

    def wait(self, timeout):
        timeout = rdtest.scaled(timeout)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
            check(False, "driver did not finish within %ss" % timeout)
        return self.proc.returncode, [json.loads(l) for l in out.splitlines() if l.startswith("{")]

    def log(self):
        return open(self.log_path).read()


def docker(dstate, *args):
    env = dict(os.environ, FAKE_DOCKER_STATE=dstate)
    return subprocess.run([FAKE_DOCKER] + list(args), env=env, capture_output=True, text=True, timeout=30)


def containers(dstate):
    r = docker(dstate, "ps", "-a", "--filter", "label=runnerd.instance=svtest", "--format", "{{.Names}}")
    return [l for l in r.stdout.splitlines() if l.strip()]


def scan_cmdlines():
    """Return the pids whose argv carries a JIT config or the variable with a value."""
    bad = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cl = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        # Only this test's world: the driver and the docker runs it names
        # runnerd-svtest-* (test_fake_docker, which may run at the same time, puts a
        # dummy JIT config in argv on purpose to prove the double refuses it).
        if "rd_supervise" not in cl and "svtest" not in cl:
            continue
        if JIT_MARK in cl or "ACTIONS_RUNNER_INPUT_JITCONFIG=" in cl:
            bad.append(pid)
    return bad


def run_for(ms):
    """--run-for: the most the driver may run (it ends once its runners are gone);
    stretched under valgrind (RD_TEST_TIMEOUT_SCALE)."""
    return str(int(rdtest.scaled(ms)))


def wait_for(pred, timeout, what):
    deadline = time.time() + rdtest.scaled(timeout)
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    check(False, "timed out waiting for " + what)
    return None


def check_clean(gh, dstate, log, what, allow_busy=False):
    st = gh.state()
    ours = [r for r in st["runners"] if r["name"].startswith("runnerd-svtest-")
            and not (allow_busy and r["busy"])]
    check(not ours, "%s: registrations left: %s" % (what, [r["name"] for r in ours]))
    check(not containers(dstate), "%s: containers left: %s" % (what, containers(dstate)))
    check(JIT_MARK not in log, "%s: JIT config in the log" % what)
    calls = os.path.join(dstate, "calls.jsonl")
    if os.path.exists(calls):
        for line in open(calls):
            c = json.loads(line)
            check(not c.get("jit_in_argv"), "%s: JIT config in docker argv: %s" % (what, c["argv"]))
            if c["cmd"] == "run" and "--rm" in c["argv"]:
                check(c["jit_env"], "%s: docker run without the JIT config in its environment" % what)
                check("ACTIONS_RUNNER_INPUT_JITCONFIG" in c["argv"], "%s: run argv lacks -e VAR" % what)


def case_jobs_served(tmp, gh):
    gh.reset()
    dstate = os.path.join(tmp, "d1")
    cfg = write_config(tmp, gh)
    ids = gh.req("POST", "/_control/jobs", {"repo": "o/r", "labels": LABELS, "count": 3,
                                            "duration_ms": 1000})["job_ids"]
    d = Driver(tmp, cfg, sum([["--job", str(i)] for i in ids], []) + ["--run-for", run_for(60000)], dstate, "served")
    bad = set()
    deadline = time.time() + rdtest.scaled(60)
    while d.proc.poll() is None and time.time() < deadline:
        bad.update(scan_cmdlines())
        time.sleep(0.1)
    rc, out = d.wait(30)
    check(rc == 0, "served: driver exit %s" % rc)
    check(not bad, "served: JIT config in /proc/*/cmdline of pids %s" % sorted(bad))
    st = gh.state()
    done = [j for j in st["jobs"] if j["id"] in ids and j["status"] == "completed"]
    check(len(done) == 3, "served: %d of 3 jobs completed" % len(done))
    created = [e for e in st["events"] if e["kind"] == "jit_created"]
    check(len(created) == 3, "served: %d registrations created, want 3" % len(created))
    check(out and out[-1].get("runners_left") == 0 and out[-1].get("failures") == 0,
          "served: summary %s" % out)
    check_clean(gh, dstate, d.log(), "served")


def case_startup_timeout(tmp, gh):
    gh.reset()
    dstate = os.path.join(tmp, "d2")
    cfg = write_config(tmp, gh, image="slowstart", startup="2s")
    d = Driver(tmp, cfg, ["--start", "1", "--run-for", run_for(40000)], dstate, "startup")
    rc, out = d.wait(60)
    log = d.log()
    check(rc == 0, "startup: driver exit %s" % rc)
    check("startup timeout" in log, "startup: no startup timeout logged")
    check(out and out[-1].get("failures") == 1, "startup: summary %s" % out)
    st = gh.state()
    check(any(e["kind"] == "runner_deleted" for e in st["events"]), "startup: registration not deleted")
    check_clean(gh, dstate, log, "startup")


def case_backoff(tmp, gh):
    gh.reset()
    # A docker that fails at once, as with a missing image or a dead daemon: without
    # backoff this would spawn hundreds of times in 10 s.
    calls = os.path.join(tmp, "baddocker.calls")
    bad = os.path.join(tmp, "baddocker")
    with open(bad, "w") as f:
        f.write("#!/bin/sh\necho \"$1\" >> %s\n"
                "echo 'docker: Error response from daemon: No such image: missing:latest.' >&2\n"
                "exit 125\n" % calls)
    os.chmod(bad, 0o755)
    cfg = write_config(tmp, gh, binary=bad)
    t0 = time.time()
    d = Driver(tmp, cfg, ["--keep-one", "--run-for", "12000", "--grace", "1000"], os.path.join(tmp, "d3"), "backoff")
    rc, out = d.wait(40)
    runs = [l.strip() for l in open(calls)] if os.path.exists(calls) else []
    nrun = runs.count("run")
    check(rc == 0, "backoff: driver exit %s" % rc)
    check(3 <= nrun <= 8, "backoff: %d docker run calls in %.1fs, want 3..8" % (nrun, time.time() - t0))
    check(out and out[-1].get("degraded") is True, "backoff: pool not degraded: %s" % out)
    log = d.log()
    check(log.count("is degraded") == 1, "backoff: degraded logged %d times, want 1" % log.count("is degraded"))
    st = gh.state()
    ours = [r for r in st["runners"] if r["name"].startswith("runnerd-svtest-")]
    check(not ours, "backoff: registrations left: %s" % [r["name"] for r in ours])
    print("backoff: %d docker run calls in 12 s" % nrun)


def case_output_redacted(tmp, gh):
    """A container that prints its JIT config and an endless line: redacted and capped in the log."""
    gh.reset()
    script = os.path.join(tmp, "echodocker")
    with open(script, "w") as f:
        f.write("#!/bin/sh\n"
                "[ \"$1\" = run ] || exit 0\n"
                "echo \"leak: $ACTIONS_RUNNER_INPUT_JITCONFIG\"\n"
                "sleep 0.3\n"
                "echo \"again: $ACTIONS_RUNNER_INPUT_JITCONFIG\" >&2\n"
                "head -c 100000 /dev/zero | tr '\\\\0' x; echo\n"
                "echo after-the-long-line\n"
                "exit 0\n")
    os.chmod(script, 0o755)
    cfg = write_config(tmp, gh, binary=script)
    d = Driver(tmp, cfg, ["--start", "1", "--run-for", run_for(20000)], os.path.join(tmp, "d6"), "redact")
    rc, out = d.wait(40)
    log = d.log()
    check(rc == 0, "redact: driver exit %s" % rc)
    check(JIT_MARK not in log, "redact: JIT config printed by the container reached the log")
    check(log.count("[REDACTED]") >= 2, "redact: no [REDACTED] for the container's JIT lines")
    check("[truncated]" in log and "after-the-long-line" in log, "redact: long line not capped")
    check(max(len(l) for l in log.splitlines()) < 4096, "redact: a log line longer than 4 KiB")


def case_adoption(tmp, gh):
    gh.reset()
    dstate = os.path.join(tmp, "d4")
    # The job timeout stretches with the job (below).
    cfg = write_config(tmp, gh, job="%ds" % int(rdtest.scaled(60)))
    # Long enough that the job outlives the restart and its adoption on a loaded machine
    # (and under valgrind, where the second driver alone takes seconds to start).
    ids = gh.req("POST", "/_control/jobs", {"repo": "o/r", "labels": LABELS, "count": 1,
                                            "duration_ms": int(rdtest.scaled(20000))})["job_ids"]
    d1 = Driver(tmp, cfg, ["--job", str(ids[0]), "--run-for", run_for(60000)], dstate, "adopt1")

    def running():
        return [j for j in gh.state()["jobs"] if j["id"] == ids[0] and j["status"] == "in_progress"]
    wait_for(running, 30, "the job to start")
    os.kill(d1.proc.pid, signal.SIGKILL)
    d1.wait(10)
    check(len(containers(dstate)) == 1, "adopt: container did not survive kill -9: %s" % containers(dstate))
    # An orphan registration (daemon killed between JIT and docker run) and a dead container.
    gh.req("POST", "/repos/o/r/actions/runners/generate-jitconfig",
           {"name": "runnerd-svtest-linux-x64-orphan1", "runner_group_id": 1, "labels": LABELS}, auth=True)
    docker(dstate, "run", "--name", "runnerd-svtest-linux-x64-dead1", "--label", "runnerd.instance=svtest",
           "--label", "runnerd.pool=linux-x64", "--network", "host", "runner:latest")
    d2 = Driver(tmp, cfg, ["--adopt", "--run-for", run_for(60000)], dstate, "adopt2")
    rc, out = d2.wait(60)
    log = d2.log()
    check(rc == 0, "adopt: driver exit %s" % rc)
    check(out and out[0].get("adopted") == 1, "adopt: %s" % out)
    check("adopted runnerd-svtest-linux-x64-" in log, "adopt: nothing adopted in the log")
    st = gh.state()
    job = [j for j in st["jobs"] if j["id"] == ids[0]][0]
    check(job["status"] == "completed" and job.get("conclusion") == "success",
          "adopt: job %s/%s" % (job["status"], job.get("conclusion")))
    created = [e for e in st["events"] if e["kind"] == "jit_created"]
    check(len(created) == 2, "adopt: %d registrations created, want 2 (runner + orphan)" % len(created))
    check("orphan1" in log and "no container" in log, "adopt: orphan registration not deleted")
    check_clean(gh, dstate, d1.log() + log, "adopt")


def case_close_without_drain(tmp, gh):
    """rd_supervisor_close with live children closes every handle; the next start adopts."""
    gh.reset()
    dstate = os.path.join(tmp, "d7")
    cfg = write_config(tmp, gh)
    ids = gh.req("POST", "/_control/jobs", {"repo": "o/r", "labels": LABELS, "count": 2,
                                            "duration_ms": 15000})["job_ids"]
    d1 = Driver(tmp, cfg, ["--job", str(ids[0]), "--job", str(ids[1]), "--abandon", "--run-for", run_for(60000)],
                dstate, "abandon1")
    wait_for(lambda: len([j for j in gh.state()["jobs"] if j["status"] == "in_progress"]) == 2, 40,
             "both jobs to start")
    d1.proc.send_signal(signal.SIGTERM)
    rc, out = d1.wait(30)
    check(rc == 0, "abandon: driver exit %s (handles left open or sanitizer report?)" % rc)
    check(out and out[0].get("abandoned") == 2, "abandon: %s" % out)
    left = containers(dstate)
    check(len(left) == 2, "abandon: close killed the containers: %s" % left)
    d2 = Driver(tmp, cfg, ["--adopt", "--run-for", run_for(60000)], dstate, "abandon2")
    rc, out = d2.wait(60)
    check(rc == 0, "abandon: adopting driver exit %s" % rc)
    st = gh.state()
    done = [j for j in st["jobs"] if j["id"] in ids and j["status"] == "completed"]
    check(len(done) == 2, "abandon: %d of 2 jobs completed" % len(done))
    created = [e for e in st["events"] if e["kind"] == "jit_created"]
    check(len(created) == 2, "abandon: %d registrations created, want 2" % len(created))
    check_clean(gh, dstate, d1.log() + d2.log(), "abandon")


def case_drain(tmp, gh):
    gh.reset()
    dstate = os.path.join(tmp, "d5")
    cfg = write_config(tmp, gh)
    ids = gh.req("POST", "/_control/jobs", {"repo": "o/r", "labels": LABELS, "count": 1,
                                            "duration_ms": 60000})["job_ids"]
    d = Driver(tmp, cfg, ["--job", str(ids[0]), "--start", "1", "--grace", "2000", "--run-for", run_for(90000)],
               dstate, "drain")
    wait_for(lambda: [j for j in gh.state()["jobs"] if j["status"] == "in_progress"], 30, "the job to start")
    time.sleep(1.5)  # let the reconcile see the busy runner
    t0 = time.time()
    d.proc.send_signal(signal.SIGTERM)
    rc, out = d.wait(60)
    took = time.time() - t0
    log = d.log()
    check(rc == 0, "drain: driver exit %s" % rc)
    check("shutdown grace over" in log, "drain: busy runner not stopped after the grace")
    check(took >= 2.0, "drain: finished in %.1fs, before the grace" % took)
    check(took < 2.0 + rdtest.scaled(15.0), "drain: took %.1fs after SIGTERM" % took)
    # docker stop cancels the job (as the real runner does on a shutdown signal),
    # so the registration goes away and nothing is left.
    job = [j for j in gh.state()["jobs"] if j["id"] == ids[0]][0]
    check(job.get("conclusion") == "cancelled", "drain: busy job ended %s" % job.get("conclusion"))
    check_clean(gh, dstate, log, "drain")


def main():
    if not os.path.exists(DRIVER):
        print("FAIL: %s not built (CMake builds it with the other tools)" % DRIVER)
        return 1
    for p in (FAKE_GH, FAKE_DOCKER):
        if not os.path.exists(p):
            print("FAIL: %s missing" % p)
            return 1
    with tempfile.TemporaryDirectory(prefix="rd-sup-") as tmp:
        gh = FakeGitHub(tmp)
        try:
            for case in [c for c in (case_jobs_served, case_startup_timeout, case_backoff, case_output_redacted,
                         case_adoption, case_close_without_drain, case_drain) if not os.environ.get('ONLY') or c.__name__ == os.environ['ONLY']]:
                t0 = time.time()
                print("== %s" % case.__name__, flush=True)
                n = len(failures)
                case(tmp, gh)
                print("   %s in %.1fs" % ("ok" if len(failures) == n else "FAILED", time.time() - t0), flush=True)
        finally:
            gh.stop()
            # Leave nothing behind even when a case failed.
            for dstate in ("d1", "d2", "d4", "d5", "d6", "d7"):
                p = os.path.join(tmp, dstate)
                if os.path.isdir(p):
                    for name in containers(p):
                        docker(p, "rm", "-f", name)
    if failures:
        print("%d failures" % len(failures))
        return 1
    print("all supervisor driver cases passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
